//! The gate every case route goes through: the case, the actor's relation to it, `policy`'s
//! decision, and the audit event of every refusal.

use super::*;
use crate::vocab::Role;

fn audit_action(action: CaseAction) -> Action {
    match action {
        CaseAction::View => Action::CaseView,
        CaseAction::ViewMaterial => Action::MaterialView,
        CaseAction::Download => Action::MaterialDownload,
        CaseAction::ViewAccessHistory => Action::AuditView,
        CaseAction::Manage => Action::CaseUpdate,
    }
}

/// Loads what policy needs about `actor` and the case, asks it, and audits a denial. A case that
/// does not exist is denied like one the actor may not know of (404).
pub async fn authorize(
    db: &DatabaseConnection,
    audit: &Audit,
    actor: &account::Model,
    client: (Option<String>, Option<String>),
    action: CaseAction,
    case_id: Uuid,
) -> Result<(CasePermit, CaseFacts), AppError> {
    use sea_orm::{ConnectionTrait, QuerySelect, QueryTrait, SelectorTrait};
    // Its SQL written once: every case page and action runs it (db::Reused).
    static CASE: crate::db::Reused = crate::db::Reused::new();
    let backend = db.get_database_backend();
    let values = vec![actor.id.into(), case_id.into(), 1u64.into()];
    let statement = CASE.statement(backend, values, || {
        case_with_own_party(actor.id, case_id)
            .limit(1)
            .build(backend)
    });
    let found = match db.query_one_raw(statement).await? {
        Some(row) => Some(
            sea_orm::SelectTwoModel::<case::Model, case_party::Model>::from_raw_query_result(row)?,
        ),
        None => None,
    };
    decide(db, audit, actor, client, action, case_id, found).await
}

/// The case and `actor_id`'s own party row in it (if any), as one statement: this runs for
/// every page and every byte range of evidence.
fn case_with_own_party(
    actor_id: Uuid,
    case_id: Uuid,
) -> sea_orm::SelectTwo<case::Entity, case_party::Entity> {
    let own_party = case_party::Relation::Case
        .def()
        .rev()
        .on_condition(move |_, party| {
            Expr::col((party, case_party::Column::AccountId))
                .eq(actor_id)
                .into_condition()
        });
    case::Entity::find_by_id(case_id)
        .join(JoinType::LeftJoin, own_party)
        .select_also(case_party::Entity)
}

/// The rest of `authorize` once the case (`None`: it does not exist) and the actor's party row
/// are loaded: an agent's delegations, then policy; a denial is audited.
async fn decide(
    db: &DatabaseConnection,
    audit: &Audit,
    actor: &account::Model,
    client: (Option<String>, Option<String>),
    action: CaseAction,
    case_id: Uuid,
    found: Option<(case::Model, Option<case_party::Model>)>,
) -> Result<(CasePermit, CaseFacts), AppError> {
    let who = Actor::account(actor.id, actor.role);
    let denied = |reason: &'static str| {
        Event::new(who.clone(), audit_action(action), Outcome::Denied)
            .case(case_id)
            .client(client.0.clone(), client.1.clone())
            .details(serde_json::json!({ "reason": reason, "action": format!("{action:?}") }))
    };
    let Some((case, party)) = found else {
        audit.record(denied("no_such_case")).await?;
        return Err(AppError::NotFound);
    };
    let delegations = if actor.role == Role::Agent {
        delegation::Entity::find()
            .filter(delegation::Column::CaseId.eq(case_id))
            .filter(delegation::Column::AgentAccountId.eq(actor.id))
            .all(db)
            .await?
    } else {
        Vec::new()
    };
    let grants = if matches!(actor.role, Role::Owner | Role::Insurer) {
        use crate::db::entities::access_application;
        access_application::Entity::find()
            .filter(access_application::Column::CaseId.eq(case_id))
            .filter(access_application::Column::AccountId.eq(actor.id))
            .filter(access_application::Column::AccountVerified.eq(true))
            // Revoked ones too: policy then says the grant was revoked, not that none exists.
            .filter(access_application::Column::State.is_in([
                crate::vocab::AccessState::Approved,
                crate::vocab::AccessState::Revoked,
            ]))
            .all(db)
            .await?
    } else {
        Vec::new()
    };
    let facts = CaseFacts {
        case,
        party,
        delegations,
        grants,
    };
    match policy::decide(actor, action, &facts, audit.now()) {
        Ok(permit) => Ok((permit, facts)),
        Err(d) => {
            audit.record(denied(d.reason)).await?;
            Err(if d.hide {
                AppError::NotFound
            } else if EXPLAINED.contains(&d.reason) {
                AppError::Refused {
                    reason: d.reason,
                    contact: brigade_contact(db, facts.case.department_id).await?,
                }
            } else {
                AppError::Forbidden
            })
        }
    }
}

/// The refusals a party or an agent meets in the course of a case, which their page explains
/// (why, what happens next, whom to ask) instead of a bare "forbidden".
const EXPLAINED: [&str; 7] = [
    "not_open",
    "view_only",
    "delegation_revoked",
    "delegation_expired",
    "grant_expired",
    "grant_revoked",
    "grant_view_only",
];

/// How the person is to reach the brigade handling a case.
async fn brigade_contact(
    db: &DatabaseConnection,
    department_id: Uuid,
) -> Result<Option<String>, AppError> {
    Ok(
        crate::db::entities::department::Entity::find_by_id(department_id)
            .one(db)
            .await?
            .map(|d| match d.phone {
                Some(phone) => format!("{}（{phone}）", d.name),
                None => d.name,
            }),
    )
}

/// `authorize` for one material: the case permit for `action`, then whether the material
/// itself may be shown (`policy::material_visible`). A material that does not exist or may not
/// be shown is denied as not found, audited.
pub async fn authorize_material(
    db: &DatabaseConnection,
    audit: &Audit,
    actor: &account::Model,
    client: (Option<String>, Option<String>),
    action: CaseAction,
    case_id: Uuid,
    material_id: Uuid,
) -> Result<(CasePermit, CaseFacts, crate::db::entities::material::Model), AppError> {
    use crate::db::entities::material;
    let found = case_and_material(db, actor.id, case_id, material_id).await?;
    let (permit, facts, material) = match found {
        Some((case, party, material)) => {
            let found = Some((case, party));
            let (permit, facts) =
                decide(db, audit, actor, client.clone(), action, case_id, found).await?;
            (permit, facts, material)
        }
        None => {
            let (permit, facts) =
                authorize(db, audit, actor, client.clone(), action, case_id).await?;
            let material = material::Entity::find_by_id(material_id).one(db).await?;
            (permit, facts, material)
        }
    };
    let mut reason = match &material {
        None => "no_such_material",
        Some(m) => match policy::material_visible(&permit, actor, m) {
            Ok(()) => "",
            Err(d) => d.reason,
        },
    };
    // Outside the brigade a redacted material is its redacted copy (issue 34), and a material
    // whose copy is not ready is not shown at all.
    let material = match material {
        Some(m) if reason.is_empty() && !permit.unredacted => {
            let current = crate::materials::redactions::current_of(db, m.id).await?;
            let shown = crate::materials::redactions::shown_as(m, current.as_ref());
            if shown.is_none() {
                reason = "redaction_pending";
            }
            shown
        }
        other => other,
    };
    if let Some(m) = material
        && reason.is_empty()
    {
        return Ok((permit, facts, m));
    }
    let who = Actor::account(actor.id, actor.role);
    audit
        .record(
            Event::new(who, audit_action(action), Outcome::Denied)
                .case(case_id)
                .material(material_id)
                .client(client.0, client.1)
                .details(serde_json::json!({ "reason": reason })),
        )
        .await?;
    if reason == "redaction_pending" {
        return Err(AppError::Refused {
            reason,
            contact: brigade_contact(db, facts.case.department_id).await?,
        });
    }
    Err(AppError::NotFound)
}

/// The case, the actor's party row and the material in one statement. No row: the case is
/// missing, or the material is (or belongs to another case); the two-step path then gives the
/// same answer and denial reason as it always did.
async fn case_and_material(
    db: &DatabaseConnection,
    actor_id: Uuid,
    case_id: Uuid,
    material_id: Uuid,
) -> Result<
    Option<(
        case::Model,
        Option<case_party::Model>,
        Option<crate::db::entities::material::Model>,
    )>,
    AppError,
> {
    use crate::db::entities::material;
    use sea_orm::{ConnectionTrait, QuerySelect, QueryTrait, SelectorTrait};
    // Its SQL written once: every byte range of evidence runs it (db::Reused).
    static CASE_AND_MATERIAL: crate::db::Reused = crate::db::Reused::new();
    let backend = db.get_database_backend();
    let values = vec![
        actor_id.into(),
        case_id.into(),
        material_id.into(),
        1u64.into(),
    ];
    let statement = CASE_AND_MATERIAL.statement(backend, values, || {
        case_with_own_party(actor_id, case_id)
            .find_also_related(material::Entity)
            .filter(material::Column::Id.eq(material_id))
            .limit(1)
            .build(backend)
    });
    Ok(match db.query_one_raw(statement).await? {
        Some(row) => Some(sea_orm::SelectThreeModel::<
            case::Model,
            case_party::Model,
            material::Model,
        >::from_raw_query_result(row)?),
        None => None,
    })
}
