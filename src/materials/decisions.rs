//! What staff decide about a material — release or withhold, with the statutory grounds — and
//! telling the case's parties and agents of a release in the same transaction.

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{MaterialError, staff_actor};
use crate::db::entities::material;
use crate::vocab::{MaterialKind, MaterialState, WithholdGround};

/// What staff decide about a material.
pub enum Decision {
    Release,
    Withhold { ground: String, note: String },
}

/// One decision checked against the rules, not yet recorded.
struct Checked {
    current: material::Model,
    action: crate::audit::Action,
    state: MaterialState,
    ground: Option<WithholdGround>,
    note: Option<String>,
    /// The material's current redaction (issue 34): a release makes it what the parties see.
    redaction: Option<crate::db::entities::redaction::Model>,
}

async fn check_decision(
    db: &sea_orm::DatabaseConnection,
    permit: &crate::policy::CasePermit,
    material_id: Uuid,
    decision: Decision,
) -> Result<Checked, MaterialError> {
    use sea_orm::EntityTrait;
    debug_assert_eq!(permit.action, crate::policy::CaseAction::Manage);
    let current = material::Entity::find_by_id(material_id)
        .one(db)
        .await?
        .filter(|m| m.case_id == permit.case_id)
        .ok_or(MaterialError::NotFound)?;
    if !current.kind.is_evidence() || current.superseded_by.is_some() {
        return Err(MaterialError::Invalid(
            "此材料不能公开或不予公开 (this material cannot be released or withheld)".into(),
        ));
    }
    let (action, state, ground, note) = match decision {
        Decision::Release => (
            crate::audit::Action::MaterialRelease,
            MaterialState::Released,
            None,
            None,
        ),
        Decision::Withhold { ground, note } => {
            let Some(ground) = WithholdGround::parse(&ground) else {
                return Err(MaterialError::Invalid(
                    "不予公开须选择法定理由（第六十五条） (withholding needs one of the grounds of Art. 65)".into(),
                ));
            };
            let note = note.trim().to_owned();
            if note.is_empty() || note.chars().count() > 2000 {
                return Err(MaterialError::Invalid(
                    "请填写不予公开的说明（存档，不向当事人显示） (explain the withholding: kept on file, not shown to the parties)".into(),
                ));
            }
            (
                crate::audit::Action::MaterialWithhold,
                MaterialState::Withheld,
                Some(ground),
                Some(note),
            )
        }
    };
    // A redacted copy not ready to be shown holds the release back (a video's waits for an
    // officer to have watched all of it): releasing would show nothing, or the wrong thing.
    let redaction = super::redactions::current_of(db, material_id).await?;
    if state == MaterialState::Released
        && let Some(r) = &redaction
        && r.state != crate::vocab::RedactionState::Ready
    {
        return Err(MaterialError::Invalid(
            "这份材料的遮挡副本尚未生成或尚未逐帧复核，复核后才能公开 (this material's redacted copy is not made or not reviewed frame by frame yet: release it once it is reviewed)".into(),
        ));
    }
    Ok(Checked {
        current,
        action,
        state,
        ground,
        note,
        redaction,
    })
}

async fn audit_decision(
    audit: &crate::audit::Audit,
    staff: &crate::db::entities::account::Model,
    c: &Checked,
) -> Result<(), MaterialError> {
    audit
        .record(
            crate::audit::Event::new(staff_actor(staff), c.action, crate::audit::Outcome::Allowed)
                .case(c.current.case_id)
                .material(c.current.id)
                .details(serde_json::json!({
                    "from": c.current.state, "to": c.state, "ground": c.ground,
                })),
        )
        .await?;
    // What goes out is the redacted copy: said as such (`redaction.release`).
    if let Some(r) = &c.redaction
        && c.state == MaterialState::Released
        && c.current.state != MaterialState::Released
    {
        audit
            .record(
                crate::audit::Event::new(
                    staff_actor(staff),
                    crate::audit::Action::RedactionRelease,
                    crate::audit::Outcome::Allowed,
                )
                .case(c.current.case_id)
                .material(c.current.id)
                .details(serde_json::json!({
                    "redaction": r.id,
                    "reasons": r.reasons.split(',').collect::<Vec<_>>(),
                })),
            )
            .await?;
    }
    Ok(())
}

async fn apply_decision(
    txn: &impl ConnectionTrait,
    staff: &crate::db::entities::account::Model,
    c: Checked,
    now: OffsetDateTime,
) -> Result<material::Model, DbErr> {
    let mut row: material::ActiveModel = c.current.into();
    row.state = Set(c.state);
    row.withhold_ground = Set(c.ground);
    row.withhold_note = Set(c.note);
    row.decided_by = Set(Some(staff.id));
    row.decided_at = Set(Some(now));
    row.update(txn).await
}

/// The timeline's entry for an expert opinion released (检验鉴定), dated today (CST).
async fn examined(
    txn: &impl ConnectionTrait,
    case_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    let today = now.to_offset(time::macros::offset!(+8)).date();
    crate::db::cases::add_milestone(txn, case_id, crate::vocab::Stage::Examination, today, now)
        .await
}

/// Tells the case's parties and agents that `count` materials were released, on `txn`.
async fn tell_released(
    txn: &impl ConnectionTrait,
    channels: crate::notifications::Channels,
    case_id: Uuid,
    count: u32,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    use sea_orm::EntityTrait;
    if count == 0 {
        return Ok(());
    }
    let case = crate::db::entities::case::Entity::find_by_id(case_id)
        .one(txn)
        .await?;
    let audience = crate::notifications::case_audience(txn, case_id, now).await?;
    crate::notifications::notify(
        txn,
        channels,
        &audience,
        case.as_ref(),
        &crate::notifications::Event::MaterialReleased { count },
        now,
    )
    .await
}

/// Releases or withholds a current material of the case, audited. Released material can still
/// be withheld later (and the reverse); superseded and internal material cannot change. A
/// release tells the case's parties and agents (inbox, and SMS or e-mail as each chose), in the
/// transaction that records it.
pub async fn decide(
    db: &sea_orm::DatabaseConnection,
    audit: &crate::audit::Audit,
    channels: crate::notifications::Channels,
    staff: &crate::db::entities::account::Model,
    permit: &crate::policy::CasePermit,
    material_id: Uuid,
    decision: Decision,
) -> Result<material::Model, MaterialError> {
    use sea_orm::TransactionTrait;
    let checked = check_decision(db, permit, material_id, decision).await?;
    audit_decision(audit, staff, &checked).await?;
    let newly_released = checked.state == MaterialState::Released
        && checked.current.state != MaterialState::Released;
    let now = OffsetDateTime::now_utc();
    let txn = db.begin().await?;
    let row = apply_decision(&txn, staff, checked, now).await?;
    if newly_released {
        tell_released(&txn, channels, row.case_id, 1, now).await?;
        if row.kind == MaterialKind::ExpertOpinion {
            examined(&txn, row.case_id, now).await?;
        }
    }
    txn.commit().await?;
    Ok(row)
}

/// Releases several materials of the case at once (audited one by one), telling the parties
/// and agents once, with how many. Materials already out, or not releasable, are skipped.
/// Returns (released, skipped).
pub async fn release_many(
    db: &sea_orm::DatabaseConnection,
    audit: &crate::audit::Audit,
    channels: crate::notifications::Channels,
    staff: &crate::db::entities::account::Model,
    permit: &crate::policy::CasePermit,
    ids: &[Uuid],
) -> Result<(usize, usize), MaterialError> {
    use sea_orm::TransactionTrait;
    let mut checked = Vec::new();
    let mut skipped = 0;
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    for id in &ids {
        match check_decision(db, permit, *id, Decision::Release).await {
            Ok(c) if c.current.state != MaterialState::Released => checked.push(c),
            Ok(_) | Err(MaterialError::Invalid(_) | MaterialError::NotFound) => skipped += 1,
            Err(e) => return Err(e),
        }
    }
    // Every event durable first, then every change and the one message in one transaction
    // (the audit writer needs SQLite's write lock, which the transaction would hold).
    for c in &checked {
        audit_decision(audit, staff, c).await?;
    }
    let released = checked.len();
    let opinion = checked
        .iter()
        .any(|c| c.current.kind == MaterialKind::ExpertOpinion);
    let now = OffsetDateTime::now_utc();
    let txn = db.begin().await?;
    for c in checked {
        apply_decision(&txn, staff, c, now).await?;
    }
    if opinion {
        examined(&txn, permit.case_id, now).await?;
    }
    tell_released(&txn, channels, permit.case_id, released as u32, now).await?;
    txn.commit().await?;
    Ok((released, skipped))
}
