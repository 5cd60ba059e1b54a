//! "My cases": the cases a party is registered on, an agent acts in, or an owner or insurer
//! holds an approved application for, with what each can open.

use super::*;

/// A case as its party or agent sees it in "my cases".
pub struct MyCase {
    pub case: case::Model,
    /// The label of the party the person is or acts for.
    pub label: String,
    /// For agents: the principal's name and the delegation's end.
    pub acting_for: Option<(String, OffsetDateTime)>,
    /// Released, current evidence (what a party can open).
    pub released: u64,
    /// For owners and insurers: the grant in force (its last day, mode and kinds).
    pub granted: Option<crate::db::entities::access_application::Model>,
}

/// How many materials of a case its parties can see: released, current, evidence.
pub async fn released_count(db: &DatabaseConnection, case_id: Uuid) -> Result<u64, DbErr> {
    released_of_kinds(db, case_id, &MaterialKind::EVIDENCE).await
}

/// How many released, current materials of `kinds` a case has (an owner's or insurer's: those
/// their application was granted).
async fn released_of_kinds(
    db: &DatabaseConnection,
    case_id: Uuid,
    kinds: &[MaterialKind],
) -> Result<u64, DbErr> {
    use crate::db::entities::material;
    material::Entity::find()
        .filter(material::Column::CaseId.eq(case_id))
        .filter(material::Column::State.eq(MaterialState::Released))
        .filter(material::Column::Kind.is_in(kinds.iter().copied()))
        .filter(material::Column::SupersededBy.is_null())
        .count(db)
        .await
}

/// How many released, current materials of each kind a case has (kinds with none are absent):
/// what an owner or insurer would see of each kind if granted it.
pub async fn released_by_kind(
    db: &DatabaseConnection,
    case_id: Uuid,
) -> Result<std::collections::HashMap<MaterialKind, u64>, DbErr> {
    use crate::db::entities::material;
    use sea_orm::QuerySelect;
    let rows: Vec<(MaterialKind, i64)> = material::Entity::find()
        .select_only()
        .column(material::Column::Kind)
        .column_as(material::Column::Id.count(), "n")
        .filter(material::Column::CaseId.eq(case_id))
        .filter(material::Column::State.eq(MaterialState::Released))
        .filter(material::Column::SupersededBy.is_null())
        .group_by(material::Column::Kind)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, n)| (kind, u64::try_from(n).unwrap_or(0)))
        .collect())
}

/// The cases a party is registered on, an agent holds a current delegation for, or an owner or
/// insurer holds a grant in force for.
pub async fn my_cases(
    db: &DatabaseConnection,
    person: &account::Model,
) -> Result<Vec<MyCase>, DbErr> {
    let mut out = Vec::new();
    if person.role == Role::Party {
        let rows = case_party::Entity::find()
            .filter(case_party::Column::AccountId.eq(person.id))
            .all(db)
            .await?;
        for p in rows {
            if let Some(c) = case::Entity::find_by_id(p.case_id).one(db).await? {
                let released = released_count(db, c.id).await?;
                out.push(MyCase {
                    case: c,
                    label: p.label,
                    acting_for: None,
                    released,
                    granted: None,
                });
            }
        }
    } else if person.role == Role::Agent {
        let now = OffsetDateTime::now_utc();
        let rows = delegation::Entity::find()
            .filter(delegation::Column::AgentAccountId.eq(person.id))
            .all(db)
            .await?;
        for d in rows.into_iter().filter(|d| d.current(now)) {
            let principal = case_party::Entity::find_by_id(d.principal_party_id)
                .one(db)
                .await?;
            if let (Some(c), Some(p)) = (
                case::Entity::find_by_id(d.case_id).one(db).await?,
                principal,
            ) {
                let released = released_count(db, c.id).await?;
                out.push(MyCase {
                    case: c,
                    label: p.label,
                    acting_for: Some((p.name, d.valid_until)),
                    released,
                    granted: None,
                });
            }
        }
    } else if matches!(person.role, Role::Owner | Role::Insurer) {
        use crate::db::entities::access_application;
        let now = OffsetDateTime::now_utc();
        let grants = access_application::Entity::find()
            .filter(access_application::Column::AccountId.eq(person.id))
            .filter(access_application::Column::AccountVerified.eq(true))
            .filter(access_application::Column::State.eq(crate::vocab::AccessState::Approved))
            .all(db)
            .await?;
        for g in grants.into_iter().filter(|g| g.in_force(now)) {
            if let Some(c) = case::Entity::find_by_id(g.case_id).one(db).await? {
                let released = released_of_kinds(db, c.id, &g.kinds()).await?;
                out.push(MyCase {
                    case: c,
                    label: String::new(),
                    acting_for: None,
                    released,
                    granted: Some(g),
                });
            }
        }
    }
    out.sort_by_key(|m| std::cmp::Reverse(m.case.occurred_at));
    Ok(out)
}
