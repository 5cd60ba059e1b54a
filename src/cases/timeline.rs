//! The case's timeline (办理进度): what happened when, in the national service's stages. Staff
//! record milestones with a date, a note for the parties and a note for the file; the portal
//! adds its own when the case opens, is served or closes and when an expert opinion is released
//! (`db::cases::add_milestone`, in the transaction of that change). Entries are never deleted:
//! a correction is a new entry naming the one it corrects; parties see the latest version,
//! staff see both.

use super::*;
use crate::db::entities::case_milestone;
use crate::policy::{CaseAction, CasePermit};
use crate::vocab::Stage;

/// A milestone as the staff form sends it.
pub struct NewMilestone {
    pub stage: String,
    pub occurred_on: String,
    pub note: String,
    pub internal_note: String,
    /// The entry this one corrects, if any.
    pub corrects: String,
}

const CST: time::UtcOffset = time::macros::offset!(+8);

/// Records a milestone (or a correction), audited (`case.milestone`).
pub async fn record(
    db: &DatabaseConnection,
    audit: &Audit,
    staff: &account::Model,
    permit: &CasePermit,
    case: &case::Model,
    new: NewMilestone,
) -> Result<case_milestone::Model, CaseError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    let Some(stage) = Stage::parse(new.stage.trim()) else {
        return Err(CaseError::field(
            "stage",
            "请选择办理环节 (choose the stage)",
        ));
    };
    let today = OffsetDateTime::now_utc().to_offset(CST).date();
    let accident = case.occurred_at.to_offset(CST).date();
    let occurred_on = time::Date::parse(
        new.occurred_on.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
    .filter(|d| *d <= today && *d >= accident)
    .ok_or_else(|| {
        CaseError::field(
            "occurred_on",
            "日期应在事故发生之日与今天之间 (the date must lie between the accident and today)",
        )
    })?;
    let note = new.note.trim().to_owned();
    let internal_note = new.internal_note.trim().to_owned();
    if note.chars().count() > 500 {
        return Err(CaseError::field(
            "note",
            "给当事人的说明不超过500字 (the note for the parties is at most 500 characters)",
        ));
    }
    if internal_note.chars().count() > 2000 {
        return Err(CaseError::field(
            "internal_note",
            "内部备注不超过2000字 (the note for the file is at most 2000 characters)",
        ));
    }
    let corrects = match new.corrects.trim() {
        "" => None,
        raw => {
            let entries = of_case(db, case.id).await?;
            let target = Uuid::parse_str(raw)
                .ok()
                .filter(|id| entries.iter().any(|e| e.id == *id))
                .filter(|id| !entries.iter().any(|e| e.corrects == Some(*id)));
            Some(target.ok_or_else(|| {
                CaseError::field(
                    "corrects",
                    "只能更正本案尚未更正的记录 (only an entry of this case not yet corrected can be corrected)",
                )
            })?)
        }
    };
    let id = Uuid::now_v7();
    audit
        .record(
            Event::new(actor(staff), Action::CaseMilestone, Outcome::Allowed)
                .case(case.id)
                .details(serde_json::json!({
                    "milestone_id": id, "stage": stage, "occurred_on": occurred_on.to_string(),
                    "corrects": corrects, "note": !note.is_empty(),
                    "internal_note": !internal_note.is_empty(),
                })),
        )
        .await?;
    Ok(case_milestone::ActiveModel {
        id: Set(id),
        case_id: Set(case.id),
        stage: Set(stage),
        occurred_on: Set(occurred_on),
        note: Set(Some(note).filter(|n| !n.is_empty())),
        internal_note: Set(Some(internal_note).filter(|n| !n.is_empty())),
        automatic: Set(false),
        corrects: Set(corrects),
        recorded_by: Set(Some(staff.id)),
        recorded_at: Set(OffsetDateTime::now_utc()),
    }
    .insert(db)
    .await?)
}

/// Every entry of the case's timeline, corrected ones included, in date order.
pub async fn of_case(
    db: &impl sea_orm::ConnectionTrait,
    case_id: Uuid,
) -> Result<Vec<case_milestone::Model>, DbErr> {
    case_milestone::Entity::find()
        .filter(case_milestone::Column::CaseId.eq(case_id))
        .order_by_asc(case_milestone::Column::OccurredOn)
        .order_by_asc(case_milestone::Column::RecordedAt)
        .all(db)
        .await
}

/// An entry's note for the parties in the reader's language: the portal writes its own notes
/// `中文 (English)`; staff write theirs in one language, shown as written.
pub fn note_of(entry: &case_milestone::Model) -> String {
    match &entry.note {
        Some(n) if entry.automatic => crate::i18n::pick(n),
        Some(n) => n.clone(),
        None => String::new(),
    }
}

/// The entries as the parties see them: each corrected entry replaced by its correction.
pub fn current(entries: &[case_milestone::Model]) -> Vec<&case_milestone::Model> {
    entries
        .iter()
        .filter(|e| !entries.iter().any(|c| c.corrects == Some(e.id)))
        .collect()
}

/// What a status move brings besides itself, on its transaction: the timeline's entry (served:
/// the determination on its date; closed) and the message to the case's parties and agents.
pub(super) async fn after_status_change(
    txn: &impl sea_orm::ConnectionTrait,
    channels: crate::notifications::Channels,
    case: &case::Model,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    let to = case.status;
    let event = match to {
        CaseStatus::Investigating => None,
        CaseStatus::Disclosing => Some(crate::notifications::Event::DisclosureOpened),
        CaseStatus::Served => Some(crate::notifications::Event::DeterminationServed {
            deadline: review_deadline(case),
        }),
        CaseStatus::Closed => Some(crate::notifications::Event::CaseClosed),
    };
    let today = now.to_offset(time::macros::offset!(+8)).date();
    let milestone = match to {
        CaseStatus::Served => Some((
            crate::vocab::Stage::Determination,
            case.served_on.unwrap_or(today),
        )),
        CaseStatus::Closed => Some((crate::vocab::Stage::Closed, today)),
        CaseStatus::Investigating | CaseStatus::Disclosing => None,
    };
    if let Some((stage, on)) = milestone {
        crate::db::cases::add_milestone(txn, case.id, stage, on, now).await?;
    }
    if let Some(event) = event {
        let audience = crate::notifications::case_audience(txn, case.id, now).await?;
        crate::notifications::notify(txn, channels, &audience, Some(case), &event, now).await?;
    }
    Ok(())
}
