//! A party's review application (复核申请, Order 146 Art. 71): within three days of service of
//! the determination or certificate a party may apply once, through the brigade, for review by
//! the next-level authority. Filed by the party or their agent; staff record its forwarding, the
//! authority's acceptance or refusal and its conclusion (uploaded as a material, released like
//! the others). Each step moves the row from one state to the next with a conditional update,
//! so two officers recording the same step at once record it once.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{ApplicationError, clean_text, date_between, receipt_no, today};
use crate::audit::{Action, Actor, Audit, Event as AuditEvent, Outcome};
use crate::db::entities::{account, case, case_party, delegation, material, review_application};
use crate::materials::Received;
use crate::notifications::{Channels, Event};
use crate::policy::{CaseAction, CasePermit};
use crate::vocab::{CaseStatus, MaterialKind, MaterialState, ReviewState, Stage};

/// Attachments one application may carry.
pub const MAX_ATTACHMENTS: usize = 5;
/// The grounds: at least 10 characters, at most 5,000.
pub const GROUNDS: std::ops::RangeInclusive<usize> = 10..=5000;

/// What the party's form sends.
pub struct NewReview {
    pub grounds: String,
    /// Ids of released materials the party contests (others are refused).
    pub contested: Vec<Uuid>,
}

/// Whether a party of `case` may still apply at `now`: `Ok(last day)` or why not.
pub fn window(case: &case::Model, now: OffsetDateTime) -> Result<Date, ApplicationError> {
    let deadline =
        crate::cases::review_deadline(case).filter(|_| case.status == CaseStatus::Served);
    match deadline {
        None => Err(ApplicationError::refused(
            "review_not_open",
            "本案尚未送达事故认定书（证明），或已结案，不能申请复核 (a review can be applied for only after the determination or certificate is served and before the case is closed)",
        )),
        Some(d) if today(now) > d => Err(ApplicationError::refused(
            "review_window_passed",
            "复核申请期限已过（送达之日起三日内） (the review period, three days from service, has passed)",
        )),
        Some(d) => Ok(d),
    }
}

/// The review application made for `party_id` on `case_id`, if any.
pub async fn of_party(
    db: &impl ConnectionTrait,
    case_id: Uuid,
    party_id: Uuid,
) -> Result<Option<review_application::Model>, sea_orm::DbErr> {
    review_application::Entity::find()
        .filter(review_application::Column::CaseId.eq(case_id))
        .filter(review_application::Column::PartyId.eq(party_id))
        .one(db)
        .await
}

/// Every review application of a case, oldest first (staff).
pub async fn of_case(
    db: &impl ConnectionTrait,
    case_id: Uuid,
) -> Result<Vec<review_application::Model>, sea_orm::DbErr> {
    review_application::Entity::find()
        .filter(review_application::Column::CaseId.eq(case_id))
        .order_by_asc(review_application::Column::FiledAt)
        .all(db)
        .await
}

/// Ids stored as a JSON array.
pub fn ids(json: &str) -> Vec<Uuid> {
    serde_json::from_str(json).unwrap_or_default()
}

/// The party and the agents acting for them at `now`: who is told of the application's steps.
async fn party_audience(
    db: &impl ConnectionTrait,
    party_id: Uuid,
    now: OffsetDateTime,
) -> Result<Vec<account::Model>, sea_orm::DbErr> {
    let mut ids: Vec<Uuid> = case_party::Entity::find_by_id(party_id)
        .one(db)
        .await?
        .map(|p| vec![p.account_id])
        .unwrap_or_default();
    ids.extend(
        delegation::Entity::find()
            .filter(delegation::Column::PrincipalPartyId.eq(party_id))
            .all(db)
            .await?
            .into_iter()
            .filter(|d| d.current(now))
            .map(|d| d.agent_account_id),
    );
    account::Entity::find()
        .filter(account::Column::Id.is_in(ids))
        .filter(account::Column::Disabled.eq(false))
        .all(db)
        .await
}

/// Files a review application for the permit's party, with its attachments (already in the
/// store: the caller removes them if this refuses). Audited (`review.file`), on the timeline,
/// told to the party and their agents, all in one transaction.
#[allow(clippy::too_many_arguments)]
pub async fn file(
    db: &DatabaseConnection,
    audit: &Audit,
    channels: Channels,
    actor: &account::Model,
    permit: &CasePermit,
    case: &case::Model,
    new: NewReview,
    attachments: &[Received],
) -> Result<review_application::Model, ApplicationError> {
    debug_assert_eq!(permit.action, CaseAction::View);
    let now = audit.now();
    let Checked {
        party_id,
        grounds,
        contested,
    } = checked(db, actor, permit, case, new, attachments.len(), now).await?;
    let id = Uuid::now_v7();
    let receipt = receipt_no("FH", now);
    let attachment_ids: Vec<Uuid> = attachments.iter().map(|a| a.material_id).collect();
    audit
        .record(
            AuditEvent::new(
                Actor::account(actor.id, actor.role),
                Action::ReviewFile,
                Outcome::Allowed,
            )
            .case(case.id)
            .details(serde_json::json!({
                "application_id": id, "receipt": receipt, "party_id": party_id,
                "contested": contested, "attachments": attachment_ids,
                "grounds_chars": grounds.chars().count(),
            })),
        )
        .await?;
    let txn = db.begin().await?;
    for a in attachments {
        crate::materials::record(
            &txn,
            case.id,
            a,
            MaterialKind::ReviewAttachment,
            &a.original_name,
            MaterialState::Draft,
            actor.id,
        )
        .await?;
    }
    let row = review_application::ActiveModel {
        id: Set(id),
        case_id: Set(case.id),
        party_id: Set(party_id),
        filed_by: Set(actor.id),
        receipt_no: Set(receipt.clone()),
        grounds: Set(grounds),
        contested: Set(serde_json::to_string(&contested).unwrap_or_else(|_| "[]".into())),
        attachments: Set(serde_json::to_string(&attachment_ids).unwrap_or_else(|_| "[]".into())),
        state: Set(ReviewState::Filed),
        filed_at: Set(now),
        forwarded_on: Set(None),
        authority: Set(None),
        decided_on: Set(None),
        refusal_reason: Set(None),
        concluded_on: Set(None),
        conclusion_material_id: Set(None),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| match e.sql_err() {
        // Two submissions at once: the unique index lets one in.
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => ApplicationError::refused(
            "review_already_filed",
            "该当事人已提出复核申请，每名当事人只能申请一次 (this party has already applied; each party may apply once)",
        ),
        _ => ApplicationError::Db(e),
    })?;
    on_the_timeline(&txn, case.id, party_id, now).await?;
    let to = party_audience(&txn, party_id, now).await?;
    let event = Event::Review {
        state: ReviewState::Filed,
        receipt: receipt.clone(),
    };
    crate::notifications::notify(&txn, channels, &to, Some(case), &event, now).await?;
    txn.commit().await?;
    Ok(row)
}

/// The filing on the case's timeline: "当事人甲提出复核申请".
async fn on_the_timeline(
    txn: &sea_orm::DatabaseTransaction,
    case_id: Uuid,
    party_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), ApplicationError> {
    let label = case_party::Entity::find_by_id(party_id)
        .one(txn)
        .await?
        .map(|p| p.label)
        .unwrap_or_default();
    crate::db::cases::add_milestone_noted(
        txn,
        case_id,
        Stage::ReviewApplied,
        today(now),
        &format!(
            "当事人{label}提出复核申请 (party {} applied for a review)",
            crate::i18n::Locale::En.party_label(&label)
        ),
        now,
    )
    .await?;
    Ok(())
}

/// What a filing says, once it may be filed: the party it is for, the grounds cleaned, and the
/// contested materials (sorted, each released evidence the actor can see).
struct Checked {
    party_id: Uuid,
    grounds: String,
    contested: Vec<Uuid>,
}

/// Whether this filing may be made: a party's (or their agent's), in the window, the first for
/// the party, with grounds of the right length, few enough attachments, and contested items
/// the actor can see (another case's ids, drafts and withheld items are refused as unknown).
async fn checked(
    db: &DatabaseConnection,
    actor: &account::Model,
    permit: &CasePermit,
    case: &case::Model,
    new: NewReview,
    attachments: usize,
    now: OffsetDateTime,
) -> Result<Checked, ApplicationError> {
    let Some(party_id) = permit.as_party else {
        return Err(ApplicationError::refused(
            "review_parties_only",
            "只有当事人或其代理人可以申请复核 (only a party or their agent may apply for a review)",
        ));
    };
    window(case, now)?;
    if of_party(db, case.id, party_id).await?.is_some() {
        return Err(ApplicationError::refused(
            "review_already_filed",
            "该当事人已提出复核申请，每名当事人只能申请一次 (this party has already applied; each party may apply once)",
        ));
    }
    let grounds = clean_text(&new.grounds);
    if !GROUNDS.contains(&grounds.chars().count()) {
        return Err(ApplicationError::field(
            "grounds",
            "请写明复核的理由（10至5000字） (give the grounds for the review, 10 to 5,000 characters)",
        ));
    }
    if attachments > MAX_ATTACHMENTS {
        return Err(ApplicationError::field(
            "attachments",
            "附件最多5个 (at most five attachments)",
        ));
    }
    // Contested items: released evidence the actor can see, nothing else (another case's ids,
    // drafts and withheld items are refused as unknown).
    let mut contested = new.contested;
    contested.sort();
    contested.dedup();
    if !contested.is_empty() {
        let visible = material::Entity::find()
            .filter(material::Column::CaseId.eq(case.id))
            .filter(material::Column::Id.is_in(contested.clone()))
            .all(db)
            .await?
            .into_iter()
            .filter(|m| crate::policy::material_visible(permit, actor, m).is_ok())
            .count();
        if visible != contested.len() {
            return Err(ApplicationError::field(
                "contested",
                "只能选择本案已公开的材料 (choose only released materials of this case)",
            ));
        }
    }
    Ok(Checked {
        party_id,
        grounds,
        contested,
    })
}

/// What `step` changes on the application's row, what it adds to the audit event's
/// `details`, and the timeline's stage and note; a forward names the authority and a refusal
/// its reason, each checked.
fn changes(
    step: &Step,
    on: Date,
    mut update: sea_orm::UpdateMany<review_application::Entity>,
    details: &mut serde_json::Value,
) -> Result<
    (
        sea_orm::UpdateMany<review_application::Entity>,
        Stage,
        String,
    ),
    ApplicationError,
> {
    let (stage, note) = match step {
        Step::Forward { authority, .. } => {
            let authority = clean_text(authority);
            if !(2..=100).contains(&authority.chars().count()) {
                return Err(ApplicationError::field(
                    "authority",
                    "请填写复核机关名称（2至100字） (name the reviewing authority, 2 to 100 characters)",
                ));
            }
            details["authority"] = authority.clone().into();
            let note = format!("复核申请已转交{authority} (forwarded to {authority} for review)");
            update = update
                .col_expr(review_application::Column::ForwardedOn, on.into())
                .col_expr(review_application::Column::Authority, authority.into());
            (Stage::ReviewApplied, note)
        }
        Step::Accept { .. } => {
            update = update.col_expr(review_application::Column::DecidedOn, on.into());
            (
                Stage::ReviewApplied,
                "复核机关已受理复核申请 (the reviewing authority accepted the application)"
                    .to_owned(),
            )
        }
        Step::Refuse { reason, .. } => {
            let reason = clean_text(reason);
            if !(2..=500).contains(&reason.chars().count()) {
                return Err(ApplicationError::field(
                    "reason",
                    "请写明不予受理的理由（2至500字） (give the authority's reason, 2 to 500 characters)",
                ));
            }
            details["reason"] = true.into();
            update = update
                .col_expr(review_application::Column::DecidedOn, on.into())
                .col_expr(review_application::Column::RefusalReason, reason.into());
            (
                Stage::ReviewApplied,
                "复核机关决定不予受理复核申请 (the reviewing authority did not accept the application)"
                    .to_owned(),
            )
        }
        Step::Conclude { conclusion, .. } => {
            details["conclusion_material_id"] = conclusion.material_id.to_string().into();
            update = update
                .col_expr(review_application::Column::ConcludedOn, on.into())
                .col_expr(
                    review_application::Column::ConclusionMaterialId,
                    conclusion.material_id.into(),
                );
            (Stage::ReviewConcluded, String::new())
        }
    };
    Ok((update, stage, note))
}

/// A step staff record on an application.
pub enum Step {
    /// Forwarded to the reviewing authority (named) on a date.
    Forward { on: String, authority: String },
    /// The authority accepted the application on a date.
    Accept { on: String },
    /// The authority refused it, on a date, for a reason the party is told.
    Refuse { on: String, reason: String },
    /// The authority concluded (复核结论), on a date: the conclusion is uploaded (already in
    /// the store; the caller removes it if this refuses) and recorded as a draft material.
    Conclude { on: String, conclusion: Received },
}

impl Step {
    /// The state it moves from, and to.
    fn states(&self) -> (ReviewState, ReviewState) {
        match self {
            Step::Forward { .. } => (ReviewState::Filed, ReviewState::Forwarded),
            Step::Accept { .. } => (ReviewState::Forwarded, ReviewState::Accepted),
            Step::Refuse { .. } => (ReviewState::Forwarded, ReviewState::Refused),
            Step::Conclude { .. } => (ReviewState::Accepted, ReviewState::Concluded),
        }
    }

    fn on(&self) -> &str {
        match self {
            Step::Forward { on, .. }
            | Step::Accept { on }
            | Step::Refuse { on, .. }
            | Step::Conclude { on, .. } => on,
        }
    }
}

/// Records `step` on the application `id` of the permit's case: audited (`review.step`), on the
/// timeline, told to the party and their agents, in one transaction; a step out of order (or
/// recorded by someone else a moment before) is refused.
#[allow(clippy::too_many_arguments)]
pub async fn step(
    db: &DatabaseConnection,
    audit: &Audit,
    channels: Channels,
    staff: &account::Model,
    permit: &CasePermit,
    case: &case::Model,
    id: Uuid,
    step: Step,
) -> Result<review_application::Model, ApplicationError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    let now = audit.now();
    let app = review_application::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|a| a.case_id == case.id)
        .ok_or(ApplicationError::NotFound)?;
    let (from, to) = step.states();
    if app.state != from {
        return Err(ApplicationError::refused(
            "review_step_out_of_order",
            "该申请当前状态下不能办理这一步（可能已由他人办理），请刷新页面 (this step does not follow the application's current state; it may just have been recorded by someone else: reload the page)",
        ));
    }
    let filed = today(app.filed_at);
    let on = date_between(step.on(), filed, today(now)).ok_or_else(|| {
        ApplicationError::field(
            "on",
            "日期应在申请之日与今天之间 (the date must lie between the application and today)",
        )
    })?;
    let update = review_application::Entity::update_many()
        .col_expr(review_application::Column::State, to.as_str().into())
        .col_expr(review_application::Column::UpdatedAt, now.into());
    let mut details = serde_json::json!({
        "application_id": app.id, "receipt": app.receipt_no, "from": from, "to": to,
        "on": on.to_string(),
    });
    let (update, stage, note) = changes(&step, on, update, &mut details)?;
    audit
        .record(
            AuditEvent::new(
                Actor::account(staff.id, staff.role),
                Action::ReviewStep,
                Outcome::Allowed,
            )
            .case(case.id)
            .details(details),
        )
        .await?;
    let txn = db.begin().await?;
    if let Step::Conclude { conclusion, .. } = &step {
        crate::materials::record(
            &txn,
            case.id,
            conclusion,
            MaterialKind::ReviewConclusion,
            &format!("{} {}", app.receipt_no, conclusion.original_name),
            MaterialState::Draft,
            staff.id,
        )
        .await?;
    }
    let moved = update
        .filter(review_application::Column::Id.eq(app.id))
        .filter(review_application::Column::State.eq(from))
        .exec(&txn)
        .await?;
    if moved.rows_affected != 1 {
        txn.rollback().await?;
        return Err(ApplicationError::refused(
            "review_step_out_of_order",
            "该申请当前状态下不能办理这一步（可能已由他人办理），请刷新页面 (this step does not follow the application's current state; it may just have been recorded by someone else: reload the page)",
        ));
    }
    crate::db::cases::add_milestone_noted(&txn, case.id, stage, on, &note, now).await?;
    let audience = party_audience(&txn, app.party_id, now).await?;
    let event = Event::Review {
        state: to,
        receipt: app.receipt_no.clone(),
    };
    crate::notifications::notify(&txn, channels, &audience, Some(case), &event, now).await?;
    let row = review_application::Entity::find_by_id(app.id)
        .one(&txn)
        .await?
        .ok_or(ApplicationError::NotFound)?;
    txn.commit().await?;
    Ok(row)
}
