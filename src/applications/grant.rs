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

/// A refusal, with the reason the applicant will read (2 to 200 characters). Returns the
/// row's changes, the audit details and what the applicant is told.
fn refusal(
    app: &access_application::Model,
    reason: &str,
    mut update: sea_orm::UpdateMany<access_application::Entity>,
) -> Result<
    (
        sea_orm::UpdateMany<access_application::Entity>,
        serde_json::Value,
        Event,
    ),
    ApplicationError,
> {
    let reason = clean_text(reason);
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
    Ok((
        update,
        serde_json::json!({
            "application_id": app.id, "receipt": app.receipt_no, "decision": "refuse",
        }),
        Event::AccessRefused {
            receipt: app.receipt_no.clone(),
        },
    ))
}

/// An approval as asked: the kinds (evidence only, each known), the mode and the last day
/// (within `LONGEST_GRANT_DAYS`) checked, and the applicant's account there to hold it. Returns
/// the row's changes, the audit details, what the applicant is told and what the parties are.
fn approval(
    app: &access_application::Model,
    kinds: &[String],
    mode: &str,
    until: &str,
    now: time::OffsetDateTime,
    mut update: sea_orm::UpdateMany<access_application::Entity>,
) -> Result<
    (
        sea_orm::UpdateMany<access_application::Entity>,
        serde_json::Value,
        Event,
        Option<Event>,
    ),
    ApplicationError,
> {
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
    let until = date_between(until, first, last).ok_or_else(|| {
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
    Ok((
        update,
        serde_json::json!({
            "application_id": app.id, "receipt": app.receipt_no, "decision": "approve",
            "kinds": granted, "mode": mode, "until": until.to_string(),
            "account_id": account_id,
        }),
        Event::AccessApproved {
            receipt: app.receipt_no.clone(),
            until,
        },
        Some(Event::AccessGrantedToOther {
            role: app.kind,
            organisation: app.organisation.clone(),
            person: masked_name(&app.applicant_name),
            kinds: granted,
            until,
        }),
    ))
}

/// Decides a pending application of the permit's case: audited (`access.decide`), told to the
/// applicant; on approval the applicant's owner or insurer account holds the grant, and the
/// case's parties and their agents are told who may now query their evidence, which kinds and
/// until when. Decided once: a second decision is refused.
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
    let (details, event, to_parties) = match decision {
        Decision::Approve { kinds, mode, until } => {
            let (approved, details, event, to_parties) =
                approval(app, &kinds, &mode, &until, now, update)?;
            update = approved;
            (details, event, to_parties)
        }
        Decision::Refuse { reason } => {
            let (refused, details, event) = refusal(app, &reason, update)?;
            update = refused;
            (details, event, None)
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
    if let Some(granted) = to_parties {
        let audience = crate::notifications::case_audience(&txn, case.id, now).await?;
        crate::notifications::notify(&txn, channels, &audience, Some(case), &granted, now).await?;
    }
    let row = access_application::Entity::find_by_id(app.id)
        .one(&txn)
        .await?
        .ok_or(ApplicationError::NotFound)?;
    txn.commit().await?;
    Ok(row)
}

/// A person's name as the parties read it: its first character, the rest masked (`李**`).
fn masked_name(name: &str) -> String {
    name.chars()
        .next()
        .map(|c| format!("{c}**"))
        .unwrap_or_default()
}

/// An approved application's query voucher: a fresh one-time code while its account is not
/// activated (issuing revokes earlier ones), none once it is (the holder signs in). Only the
/// application that made the account issues its code: one giving a number whose account
/// another application made is claimed instead, by signing in to that account ([`claim`]).
pub struct Voucher {
    pub code: Option<IssuedCode>,
    /// The sign-in identifier as printed (masked mobile).
    pub login: String,
    /// The account has a password (its holder signs in).
    pub activated: bool,
    /// This application opens nothing until its applicant signs in to the account of the
    /// number it gives and adds it there.
    pub to_claim: bool,
}

/// What the voucher's code is sealed for (with the application's id).
const VOUCHER_CODE: &str = "voucher-code";

/// The code this application's voucher issued before, if it still opens the account (not
/// used, expired or replaced by a newer one).
async fn kept_code(
    db: &DatabaseConnection,
    key: &ServerKey,
    app: &access_application::Model,
    account_id: uuid::Uuid,
) -> Result<Option<IssuedCode>, ApplicationError> {
    let (Some(sealed), Some(expires_at)) = (&app.voucher_code, app.voucher_code_expires_at) else {
        return Ok(None);
    };
    let Some(code) = key
        .open(VOUCHER_CODE, app.id.as_bytes(), sealed)
        .and_then(|c| String::from_utf8(c).ok())
    else {
        return Ok(None);
    };
    Ok(access_code::check(db, key, account_id, &code)
        .await?
        .ok()
        .map(|_| IssuedCode { code, expires_at }))
}

/// Issues the voucher of an approved application to its applicant (who proved it with the
/// status link), audited (`access.voucher`): the code it issued before while that still
/// works (a reload shows the same code), else a new one.
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
    // A code opens the account: only the application that made it may issue one, so another
    // applicant giving the same number never receives the first applicant's account.
    let issue = !activated && app.account_verified;
    let kept = if issue {
        kept_code(db, key, app, account_id).await?
    } else {
        None
    };
    audit
        .record(
            AuditEvent::new(Actor::ANONYMOUS, Action::AccessVoucher, Outcome::Allowed)
                .case(app.case_id)
                .client(client.0, client.1)
                .details(serde_json::json!({
                    "application_id": app.id, "receipt": app.receipt_no,
                    "account_id": account_id, "code_issued": issue && kept.is_none(),
                    "code_shown_again": kept.is_some(),
                    "account_verified": app.account_verified,
                })),
        )
        .await?;
    let code = match (issue, kept) {
        (false, _) => None,
        (true, Some(kept)) => Some(kept),
        (true, None) => Some(new_voucher_code(db, key, app, account_id).await?),
    };
    Ok(Voucher {
        code,
        login: account.login_masked,
        activated,
        to_claim: !app.account_verified,
    })
}

/// Issues the voucher's code and keeps it sealed on the application, in one transaction. Two
/// voucher pages opened at once issue one code: the one whose update finds the row as it read
/// it keeps its code; the other rolls back (its code never existed) and shows that one.
async fn new_voucher_code(
    db: &DatabaseConnection,
    key: &ServerKey,
    app: &access_application::Model,
    account_id: uuid::Uuid,
) -> Result<IssuedCode, ApplicationError> {
    use sea_orm::sea_query::Expr;
    let txn = db.begin().await?;
    let code = access_code::issue(&txn, key, account_id, None).await?;
    let sealed = key
        .seal(VOUCHER_CODE, app.id.as_bytes(), code.code.as_bytes())
        .ok_or_else(|| ApplicationError::Db(sea_orm::DbErr::Custom("cannot seal a code".into())))?;
    let mut update = access_application::Entity::update_many()
        .col_expr(access_application::Column::VoucherCode, Expr::value(sealed))
        .col_expr(
            access_application::Column::VoucherCodeExpiresAt,
            Expr::value(code.expires_at),
        )
        .filter(access_application::Column::Id.eq(app.id));
    update = match &app.voucher_code {
        Some(before) => update.filter(access_application::Column::VoucherCode.eq(before.clone())),
        None => update.filter(access_application::Column::VoucherCode.is_null()),
    };
    if update.exec(&txn).await?.rows_affected == 1 {
        txn.commit().await?;
        return Ok(code);
    }
    txn.rollback().await?;
    let now = access_application::Entity::find_by_id(app.id)
        .one(db)
        .await?
        .ok_or(ApplicationError::NotFound)?;
    kept_code(db, key, &now, account_id)
        .await?
        .ok_or(ApplicationError::NotFound)
}

/// Adds an application to the account of the person signed in, who holds its private status
/// link: they proved control of the account (its password, and its second factor where one is
/// required) and of the application (its key), so its grant may now open the case for them.
/// Audited (`access.claim`); claiming an application already added is no change.
pub async fn claim(
    db: &DatabaseConnection,
    audit: &Audit,
    app: &access_application::Model,
    person: &account::Model,
    client: (Option<String>, Option<String>),
) -> Result<access_application::Model, ApplicationError> {
    if app.account_id != Some(person.id) || app.kind != person.role {
        audit
            .record(
                AuditEvent::new(
                    Actor::account(person.id, person.role),
                    Action::AccessClaim,
                    Outcome::Denied,
                )
                .case(app.case_id)
                .client(client.0, client.1)
                .details(serde_json::json!({
                    "application_id": app.id, "receipt": app.receipt_no,
                    "reason": "other_account",
                })),
            )
            .await?;
        return Err(ApplicationError::refused(
            "claim_other_account",
            "本申请填写的手机号码不是您当前登录账户的号码，不能加入此账户；请退出后用申请时填写的手机号码登录 (this application gives another mobile number than the account you are signed in to: sign out and sign in with the number it gives)",
        ));
    }
    if app.state == AccessState::Refused {
        return Err(ApplicationError::refused(
            "application_refused",
            "该申请未获批准，无需加入账户 (this application was refused: there is nothing to add)",
        ));
    }
    if app.account_verified {
        return Ok(app.clone());
    }
    audit
        .record(
            AuditEvent::new(
                Actor::account(person.id, person.role),
                Action::AccessClaim,
                Outcome::Allowed,
            )
            .case(app.case_id)
            .client(client.0, client.1)
            .details(serde_json::json!({
                "application_id": app.id, "receipt": app.receipt_no, "account_id": person.id,
            })),
        )
        .await?;
    access_application::Entity::update_many()
        .col_expr(access_application::Column::AccountVerified, true.into())
        .filter(access_application::Column::Id.eq(app.id))
        .filter(access_application::Column::AccountId.eq(person.id))
        .exec(db)
        .await?;
    access_application::Entity::find_by_id(app.id)
        .one(db)
        .await?
        .ok_or(ApplicationError::NotFound)
}
