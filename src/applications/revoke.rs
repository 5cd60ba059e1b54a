//! Ending an approved grant early: revoked now (with a reason, which the applicant reads on
//! their status page), or its last day moved earlier (not before today). Each is checked
//! against the grant as the officer saw it — still approved, with the last day their page
//! showed — in the one statement that changes it, so two officers acting at once change it
//! once; audited (`access.revoke`, `access.shorten`) and told to the applicant in the
//! transaction of the change.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};
use time::{Date, Duration, OffsetDateTime};

use super::{ApplicationError, clean_text, date_between, today};
use crate::audit::{Action, Actor, Audit, Event as AuditEvent, Outcome};
use crate::db::entities::{access_application, account, case};
use crate::notifications::{Channels, Event};
use crate::policy::{CaseAction, CasePermit};
use crate::vocab::AccessState;

/// What the officer asks, as the form sends it.
pub enum Amendment {
    /// End the grant now, for `reason`.
    Revoke { reason: String },
    /// Make `until` (`YYYY-MM-DD`) the grant's last day.
    Shorten { until: String },
}

/// An amendment that passed its checks, against the last day the officer's page showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub change: Change,
    pub shown_until: Date,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Revoke { reason: String },
    Shorten { until: Date },
}

fn changed_meanwhile() -> ApplicationError {
    ApplicationError::refused(
        "grant_changed",
        "该申请的查询许可刚刚已被更改（可能由他人操作），请刷新页面后再操作 (this grant has just been changed, perhaps by someone else: reload the page)",
    )
}

/// Checks an amendment of `app` at `now`, against `shown_until`, the last day the officer's
/// page showed: the grant must be approved and in force, the reason 2 to 200 characters, the
/// new last day from today to the day before the current one.
pub fn check(
    app: &access_application::Model,
    amendment: Amendment,
    shown_until: &str,
    now: OffsetDateTime,
) -> Result<Checked, ApplicationError> {
    if app.state != AccessState::Approved || !app.in_force(now) {
        return Err(ApplicationError::refused(
            "grant_not_in_force",
            "只有已批准且仍在查询期限内的申请可以撤销或缩短 (only an approved grant still in force can be revoked or shortened)",
        ));
    }
    let current = app.granted_until.ok_or_else(changed_meanwhile)?;
    let shown = date_between(shown_until, Date::MIN, Date::MAX)
        .filter(|d| *d == current)
        .ok_or_else(changed_meanwhile)?;
    let change = match amendment {
        Amendment::Revoke { reason } => {
            let reason = clean_text(&reason);
            if !(2..=200).contains(&reason.chars().count()) {
                return Err(ApplicationError::field(
                    "reason",
                    "请写明撤销的理由（2至200字），申请人会看到 (give the reason for revoking, 2 to 200 characters: the applicant will read it)",
                ));
            }
            Change::Revoke { reason }
        }
        Amendment::Shorten { until } => {
            let until = date_between(&until, today(now), current - Duration::days(1))
                .ok_or_else(|| {
                    ApplicationError::field(
                        "until",
                        "新的最后一日应早于原定的最后一日，且不早于今天；要立即结束查询，请撤销 (the new last day must be before the current one and not before today; to end it now, revoke it)",
                    )
                })?;
            Change::Shorten { until }
        }
    };
    Ok(Checked {
        change,
        shown_until: shown,
    })
}

/// What `checked` changes: the update of the application's row, the audited action and its
/// details, and what the applicant is told.
fn what_changes(
    app: &access_application::Model,
    checked: &Checked,
) -> (
    sea_orm::UpdateMany<access_application::Entity>,
    Action,
    serde_json::Value,
    Event,
) {
    let update = access_application::Entity::update_many();
    match &checked.change {
        Change::Revoke { reason } => {
            // The reason is kept where a refusal's is: the applicant's status page shows it.
            (
                update
                    .col_expr(
                        access_application::Column::State,
                        AccessState::Revoked.as_str().into(),
                    )
                    .col_expr(
                        access_application::Column::RefusalReason,
                        reason.clone().into(),
                    ),
                Action::AccessRevoke,
                serde_json::json!({
                    "application_id": app.id, "receipt": app.receipt_no,
                    "until_before": checked.shown_until.to_string(), "reason": reason,
                }),
                Event::AccessRevoked {
                    receipt: app.receipt_no.clone(),
                },
            )
        }
        Change::Shorten { until } => (
            update.col_expr(access_application::Column::GrantedUntil, (*until).into()),
            Action::AccessShorten,
            serde_json::json!({
                "application_id": app.id, "receipt": app.receipt_no,
                "until_before": checked.shown_until.to_string(),
                "until": until.to_string(),
            }),
            Event::AccessShortened {
                receipt: app.receipt_no.clone(),
                until: *until,
            },
        ),
    }
}

/// Applies a checked amendment to an approved application of the permit's case: audited
/// first, then changed only if the grant is still approved with the last day the officer saw
/// (else refused as changed meanwhile, and a `failed` event says the recorded one did not take
/// effect), and told to the applicant in the same transaction.
#[allow(clippy::too_many_arguments)]
pub async fn amend(
    db: &DatabaseConnection,
    audit: &Audit,
    channels: Channels,
    staff: &account::Model,
    permit: &CasePermit,
    app: &access_application::Model,
    case: &case::Model,
    checked: Checked,
) -> Result<access_application::Model, ApplicationError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    debug_assert_eq!(permit.case_id, app.case_id);
    let now = audit.now();
    let (update, action, details, event) = what_changes(app, &checked);
    let who = Actor::account(staff.id, staff.role);
    let recorded = audit
        .record(
            AuditEvent::new(who.clone(), action, Outcome::Allowed)
                .case(case.id)
                .details(details),
        )
        .await?;
    let txn = db.begin().await?;
    let moved = update
        .filter(access_application::Column::Id.eq(app.id))
        .filter(access_application::Column::State.eq(AccessState::Approved))
        .filter(access_application::Column::GrantedUntil.eq(checked.shown_until))
        .exec(&txn)
        .await?;
    if moved.rows_affected != 1 {
        txn.rollback().await?;
        // The log says the act it recorded did not happen: another officer's came first.
        audit
            .record(
                AuditEvent::new(who, action, Outcome::Failed)
                    .case(case.id)
                    .details(serde_json::json!({
                        "application_id": app.id, "of": recorded.seq,
                        "reason": "changed_meanwhile",
                    })),
            )
            .await?;
        return Err(changed_meanwhile());
    }
    if let Some(applicant) = match app.account_id {
        Some(id) => account::Entity::find_by_id(id).one(&txn).await?,
        None => None,
    } {
        crate::notifications::notify(&txn, channels, &[applicant], Some(case), &event, now).await?;
    }
    let row = access_application::Entity::find_by_id(app.id)
        .one(&txn)
        .await?
        .ok_or(ApplicationError::NotFound)?;
    txn.commit().await?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20:00 CST on 24 November 2026.
    const NOW: OffsetDateTime = time::macros::datetime!(2026-11-24 12:00 UTC);

    fn approved_until(last: Date) -> access_application::Model {
        access_application::Model {
            id: uuid::Uuid::now_v7(),
            receipt_no: "CX".into(),
            kind: crate::vocab::Role::Insurer,
            case_id: uuid::Uuid::nil(),
            department_id: uuid::Uuid::nil(),
            applicant_name: "李明".into(),
            organisation: None,
            credit_code: None,
            plate: "京A12345".into(),
            policy_no: None,
            mobile: "13700001111".into(),
            email: None,
            mobile_hash: None,
            proof_key: "k".into(),
            proof_name: "p.pdf".into(),
            proof_type: "application/pdf".into(),
            proof_size: 1,
            proof_sha256: String::new(),
            state: AccessState::Approved,
            status_key_hash: String::new(),
            filed_at: NOW,
            decided_by: None,
            decided_at: None,
            refusal_reason: None,
            granted_kinds: Some("scene_diagram".into()),
            granted_mode: None,
            granted_until: Some(last),
            account_id: None,
            account_verified: true,
            voucher_code: None,
            voucher_code_expires_at: None,
        }
    }

    fn shorten(until: &str) -> Amendment {
        Amendment::Shorten {
            until: until.into(),
        }
    }

    #[test]
    fn a_grant_is_shortened_to_a_day_from_today_to_before_its_last() {
        let app = approved_until(time::macros::date!(2026 - 12 - 24));
        let shown = "2026-12-24";
        assert_eq!(
            check(&app, shorten("2026-11-24"), shown, NOW)
                .unwrap()
                .change,
            Change::Shorten {
                until: time::macros::date!(2026 - 11 - 24)
            }
        );
        assert!(check(&app, shorten("2026-12-23"), shown, NOW).is_ok());
        for refused in ["2026-11-23", "2026-12-24", "2026-12-25", "", "tomorrow"] {
            assert!(
                check(&app, shorten(refused), shown, NOW).is_err(),
                "{refused}"
            );
        }
        // A page drawn before another officer's change.
        let err = check(&app, shorten("2026-12-01"), "2026-12-30", NOW).unwrap_err();
        assert_eq!(err.code(), "grant_changed");
    }

    #[test]
    fn a_revocation_needs_a_reason_and_a_grant_in_force() {
        let app = approved_until(time::macros::date!(2026 - 12 - 24));
        let revoke = |reason: &str| Amendment::Revoke {
            reason: reason.into(),
        };
        assert!(check(&app, revoke(" 授权已撤回 "), "2026-12-24", NOW).is_ok());
        assert_eq!(
            check(&app, revoke(" "), "2026-12-24", NOW)
                .unwrap_err()
                .code(),
            "invalid_application"
        );
        let ended = approved_until(time::macros::date!(2026 - 11 - 23));
        assert_eq!(
            check(&ended, revoke("授权已撤回"), "2026-11-23", NOW)
                .unwrap_err()
                .code(),
            "grant_not_in_force"
        );
        let mut revoked = app.clone();
        revoked.state = AccessState::Revoked;
        assert!(check(&revoked, revoke("授权已撤回"), "2026-12-24", NOW).is_err());
    }
}
