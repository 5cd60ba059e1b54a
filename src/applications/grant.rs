//! Deciding an owner's or insurer's application (approve with a scope, or refuse with a
//! reason), and the query voucher of an approved one.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};
use time::Duration;

use super::access::LONGEST_GRANT_DAYS;
use super::{ApplicationError, clean_text, date_between, today};
use crate::audit::{Action, Actor, Audit, Event as AuditEvent, Outcome};
use crate::auth::access_code::{self, IssuedCode};
use crate::db::entities::{access_application, account, case};
use crate::keys::ServerKey;
use crate::notifications::{Channels, Event};
use crate::policy::{CaseAction, CasePermit};
use crate::vocab::{AccessMode, AccessState, MaterialKind};

/// What staff decide.
pub enum Decision {
    /// Approve: the kinds of material (stored values), `view` or `download`, the last day.
    Approve {
        kinds: Vec<String>,
        mode: String,
        until: String,
    },
    Refuse {
        reason: String,
    },
}

/// Decides a pending application of the permit's case: audited (`access.decide`), told to the
/// applicant; on approval the applicant's owner or insurer account holds the grant. Decided
/// once: a second decision is refused.
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    db: &DatabaseConnection,
    audit: &Audit,
    channels: Channels,
    staff: &account::Model,
    permit: &CasePermit,
    app: &access_application::Model,
    case: &case::Model,
    decision: Decision,
) -> Result<access_application::Model, ApplicationError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    debug_assert_eq!(permit.case_id, app.case_id);
    let now = audit.now();
    let decided_already = || {
        ApplicationError::refused(
            "application_decided",
            "该申请已经审核过（可能刚由他人审核），请刷新页面 (this application has already been decided, perhaps just now by someone else: reload the page)",
        )
    };
    if app.state != AccessState::Pending {
        return Err(decided_already());
    }
    let mut update = access_application::Entity::update_many()
        .col_expr(access_application::Column::DecidedBy, staff.id.into())
        .col_expr(access_application::Column::DecidedAt, now.into());
    let (details, event) = match decision {
        Decision::Approve { kinds, mode, until } => {
            let mut granted: Vec<MaterialKind> = kinds
                .iter()
                .filter_map(|k| MaterialKind::parse(k.trim()))
                .filter(|k| k.is_evidence())
                .collect();
            granted.sort();
            granted.dedup();
            if granted.is_empty() || granted.len() != kinds.len() {
                return Err(ApplicationError::field(
                    "kinds",
                    "请选择批准查询的材料类别 (choose the kinds of material the applicant may see)",
                ));
            }
            let mode = AccessMode::parse(mode.trim()).ok_or_else(|| {
                ApplicationError::field(
                    "mode",
                    "请选择查看方式：仅查看或查看和下载 (choose view only, or view and download)",
                )
            })?;
            let first = today(now);
            let last = first + Duration::days(LONGEST_GRANT_DAYS);
            let until = date_between(&until, first, last).ok_or_else(|| {
                ApplicationError::field(
                    "until",
                    "查询期限应在今天起180日内 (the last day must lie within 180 days from today)",
                )
            })?;
            let account_id = match app.account_id {
                Some(id) => id,
                None => {
                    return Err(ApplicationError::refused(
                        "mobile_in_use",
                        "申请人的手机号码已用于其他类型的账户或已停用的账户，无法批准；请联系申请人更换号码后重新申请 (the applicant's mobile number belongs to another kind of account, or a disabled one, so this cannot be approved: ask them to apply again with another number)",
                    ));
                }
            };
            let kinds_text = granted
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(",");
            update = update
                .col_expr(
                    access_application::Column::State,
                    AccessState::Approved.as_str().into(),
                )
                .col_expr(access_application::Column::GrantedKinds, kinds_text.into())
                .col_expr(
                    access_application::Column::GrantedMode,
                    mode.as_str().into(),
                )
                .col_expr(access_application::Column::GrantedUntil, until.into())
                .col_expr(access_application::Column::AccountId, account_id.into());
            (
                serde_json::json!({
                    "application_id": app.id, "receipt": app.receipt_no, "decision": "approve",
                    "kinds": granted, "mode": mode, "until": until.to_string(),
                    "account_id": account_id,
                }),
                Event::AccessApproved {
                    receipt: app.receipt_no.clone(),
                    until,
                },
            )
        }
        Decision::Refuse { reason } => {
            let reason = clean_text(&reason);
            if !(2..=200).contains(&reason.chars().count()) {
                return Err(ApplicationError::field(
                    "reason",
                    "请写明不予批准的理由（2至200字），申请人会看到 (give the reason, 2 to 200 characters: the applicant will read it)",
                ));
            }
            update = update
                .col_expr(
                    access_application::Column::State,
                    AccessState::Refused.as_str().into(),
                )
                .col_expr(access_application::Column::RefusalReason, reason.into());
            (
                serde_json::json!({
                    "application_id": app.id, "receipt": app.receipt_no, "decision": "refuse",
                }),
                Event::AccessRefused {
                    receipt: app.receipt_no.clone(),
                },
            )
        }
    };
    audit
        .record(
            AuditEvent::new(
                Actor::account(staff.id, staff.role),
                Action::AccessDecide,
                Outcome::Allowed,
            )
            .case(case.id)
            .details(details),
        )
        .await?;
    let txn = db.begin().await?;
    let moved = update
        .filter(access_application::Column::Id.eq(app.id))
        .filter(access_application::Column::State.eq(AccessState::Pending))
        .exec(&txn)
        .await?;
    if moved.rows_affected != 1 {
        txn.rollback().await?;
        return Err(decided_already());
    }
    // The applicant is told through their account (SMS, e-mail; the inbox once activated).
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

/// An approved application's query voucher: a fresh one-time code while its account is not
/// activated (issuing revokes earlier ones), none once it is (the holder signs in).
pub struct Voucher {
    pub code: Option<IssuedCode>,
    /// The sign-in identifier as printed (masked mobile).
    pub login: String,
}

/// Issues the voucher of an approved application to its applicant (who proved it with the
/// status link), audited (`access.voucher`).
pub async fn voucher(
    db: &DatabaseConnection,
    audit: &Audit,
    key: &ServerKey,
    app: &access_application::Model,
    client: (Option<String>, Option<String>),
) -> Result<Voucher, ApplicationError> {
    let not_approved = || {
        ApplicationError::refused(
            "application_not_approved",
            "该申请尚未获批准，没有查询凭证 (this application has not been approved: there is no voucher)",
        )
    };
    if app.state != AccessState::Approved {
        return Err(not_approved());
    }
    let account_id = app.account_id.ok_or_else(not_approved)?;
    let account = account::Entity::find_by_id(account_id)
        .one(db)
        .await?
        .ok_or(ApplicationError::NotFound)?;
    let activated = account.password_hash.is_some();
    audit
        .record(
            AuditEvent::new(Actor::ANONYMOUS, Action::AccessVoucher, Outcome::Allowed)
                .case(app.case_id)
                .client(client.0, client.1)
                .details(serde_json::json!({
                    "application_id": app.id, "receipt": app.receipt_no,
                    "account_id": account_id, "code_issued": !activated,
                })),
        )
        .await?;
    let code = if activated {
        None
    } else {
        let txn = db.begin().await?;
        let code = access_code::issue(&txn, key, account_id, None).await?;
        txn.commit().await?;
        Some(code)
    };
    Ok(Voucher {
        code,
        login: account.login_masked,
    })
}
