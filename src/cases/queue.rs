//! What a brigade's officers have to do next, for the page they land on: drafts waiting for a
//! decision, parties who have not activated their account (and when their code runs out), and
//! cases whose review window is open.

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::db::entities::{account, activation, case, case_party, material};
use crate::vocab::{CaseStatus, MaterialKind, MaterialState};

/// A party still to activate their account, with the expiry of their newest usable code.
pub struct Waiting {
    pub case: case::Model,
    pub party: case_party::Model,
    /// `None`: no usable code (expired, revoked, or none issued): a new notice is needed.
    pub code_expires: Option<OffsetDateTime>,
}

pub struct Queue {
    /// Cases with evidence uploaded but neither released nor withheld, and how many items.
    pub drafts: Vec<(case::Model, usize)>,
    pub waiting: Vec<Waiting>,
    /// Served cases whose review window is still open, with its last day.
    pub reviews: Vec<(case::Model, Date)>,
}

/// The queue of the brigade `department_id` on `today` (China Standard Time) at `now`.
pub async fn work_queue(
    db: &DatabaseConnection,
    department_id: Uuid,
    today: Date,
    now: OffsetDateTime,
) -> Result<Queue, DbErr> {
    let cases = case::Entity::find()
        .filter(case::Column::DepartmentId.eq(department_id))
        .filter(case::Column::Status.ne(CaseStatus::Closed))
        .order_by_desc(case::Column::OccurredAt)
        .all(db)
        .await?;
    let ids: Vec<Uuid> = cases.iter().map(|c| c.id).collect();
    let of = |id: Uuid| cases.iter().find(|c| c.id == id).cloned();

    let drafts = material::Entity::find()
        .filter(material::Column::CaseId.is_in(ids.clone()))
        .filter(material::Column::State.eq(MaterialState::Draft))
        .filter(material::Column::Kind.is_in(MaterialKind::EVIDENCE))
        .filter(material::Column::SupersededBy.is_null())
        .all(db)
        .await?;
    let drafts = cases
        .iter()
        .filter_map(|c| {
            let n = drafts.iter().filter(|m| m.case_id == c.id).count();
            (n > 0).then(|| (c.clone(), n))
        })
        .collect();

    let parties = case_party::Entity::find()
        .filter(case_party::Column::CaseId.is_in(ids.clone()))
        .find_also_related(account::Entity)
        .all(db)
        .await?;
    let inactive: Vec<(case_party::Model, account::Model)> = parties
        .into_iter()
        .filter_map(|(p, a)| a.filter(|a| a.password_hash.is_none()).map(|a| (p, a)))
        .collect();
    let codes = activation::Entity::find()
        .filter(
            activation::Column::AccountId
                .is_in(inactive.iter().map(|(_, a)| a.id).collect::<Vec<_>>()),
        )
        .filter(activation::Column::UsedAt.is_null())
        .filter(activation::Column::RevokedAt.is_null())
        .all(db)
        .await?;
    let waiting = inactive
        .into_iter()
        .filter_map(|(party, account)| {
            let code_expires = codes
                .iter()
                .filter(|c| c.account_id == account.id && c.expires_at > now)
                .map(|c| c.expires_at)
                .max();
            Some(Waiting {
                case: of(party.case_id)?,
                party,
                code_expires,
            })
        })
        .collect();

    let reviews = cases
        .iter()
        .filter(|c| c.status == CaseStatus::Served)
        .filter_map(|c| {
            super::review_days_left(c, today)?;
            Some((c.clone(), super::review_deadline(c)?))
        })
        .collect();
    Ok(Queue {
        drafts,
        waiting,
        reviews,
    })
}
