//! Signing in and activating: the checks, the throttles and the audit events, in one place.
//!
//! Unknown identifier, wrong password, locked, disabled and not-yet-activated accounts all give
//! the same answer, after the same argon2 work, so the form reveals nothing about who has an
//! account. Every attempt is audited with the masked identifier only.

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, TransactionTrait};
use time::OffsetDateTime;

use super::identifier::{self, IdError, Identifier};
use super::{access_code, password, session, throttle};
use crate::audit::{Action, Actor, Audit, AuditError, Event, Outcome};
use crate::db::entities::account;
use crate::keys::ServerKey;
use crate::vocab::Role;

/// An argon2id hash to verify against when there is no account, so failures cost the same.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| password::hash("no account has this password").unwrap_or_default());

/// Where a request came from, for throttling and the audit log.
#[derive(Clone, Debug, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Shown next to the identifier field: it cannot be any identifier.
    #[error("{0}")]
    Malformed(IdError),
    /// The one generic refusal.
    #[error("账号或密码不正确 (wrong identifier or password)")]
    Refused,
    #[error("too many attempts from this address")]
    AddressBlocked,
    #[error(transparent)]
    Busy(password::Busy),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

pub struct SignedIn {
    pub account: account::Model,
    pub session_id: uuid::Uuid,
    pub token: String,
}

/// Finds the account an input identifies (the first of its readings that exists).
pub async fn find_account(
    db: &DatabaseConnection,
    key: &ServerKey,
    input: &str,
) -> Result<Result<Option<(Identifier, account::Model)>, IdError>, DbErr> {
    let candidates = match identifier::sign_in_candidates(input) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let keys: Vec<String> = candidates.iter().map(|c| c.login_key(key)).collect();
    let found = account::Entity::find()
        .filter(account::Column::LoginKey.is_in(keys.clone()))
        .one(db)
        .await?;
    Ok(Ok(found.and_then(|acc| {
        keys.iter()
            .position(|k| *k == acc.login_key)
            .map(|i| (candidates[i].clone(), acc))
    })))
}

fn masked_input(input: &str) -> String {
    identifier::sign_in_candidates(input)
        .ok()
        .and_then(|c| c.into_iter().next())
        .map_or_else(|| "(malformed)".to_owned(), |id| id.masked())
}

pub async fn sign_in(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    input: &str,
    secret: String,
    client: &Client,
) -> Result<SignedIn, SignInError> {
    let address = client.ip.clone().unwrap_or_default();
    let event = |actor: Actor, outcome, details: serde_json::Value| {
        Event::new(actor, Action::AuthLogin, outcome)
            .client(client.ip.clone(), client.user_agent.clone())
            .details(details)
    };
    // Counted before anything costly, atomically: a blocked address gets nothing more.
    if throttle::address_attempt(db, &address).await? {
        audit
            .record(event(
                Actor::ANONYMOUS,
                Outcome::Denied,
                serde_json::json!({ "identifier": masked_input(input), "reason": "address_blocked" }),
            ))
            .await?;
        return Err(SignInError::AddressBlocked);
    }
    let found = match find_account(db, key, input).await? {
        Ok(found) => found,
        Err(malformed) => {
            audit
                .record(event(
                    Actor::ANONYMOUS,
                    Outcome::Denied,
                    serde_json::json!({ "identifier": "(malformed)", "reason": "malformed_identifier" }),
                ))
                .await?;
            return Err(SignInError::Malformed(malformed));
        }
    };
    // The same statements whether or not the account exists.
    let account_id = found.as_ref().map_or(uuid::Uuid::nil(), |(_, a)| a.id);
    let attempt = throttle::account_attempt(db, account_id).await?;
    let locked = attempt.is_some_and(|a| a.locked);
    // A locked account's hash is not tried (the dummy is, so the answer takes as long).
    let stored = found
        .as_ref()
        .and_then(|(_, a)| a.password_hash.clone())
        .filter(|_| !locked);
    let has_hash = stored.is_some();
    let verified = match password::verify_bounded(
        secret,
        stored.unwrap_or_else(|| DUMMY_HASH.clone()),
    )
    .await
    {
        Ok(ok) => ok && has_hash,
        Err(busy) => {
            // Not judged: neither count stands.
            throttle::address_refund(db, &address).await?;
            if let Some(a) = attempt {
                throttle::account_refund(db, a.account_id).await?;
            }
            return Err(SignInError::Busy(busy));
        }
    };

    let refusal = match &found {
        None => Some("unknown_identifier"),
        Some((_, a)) if a.disabled => Some("disabled"),
        Some((_, a)) if a.password_hash.is_none() => Some("not_activated"),
        Some(_) if locked => Some("locked"),
        Some(_) if !verified => Some("wrong_password"),
        Some(_) => None,
    };
    let masked = found
        .as_ref()
        .map_or_else(|| masked_input(input), |(id, _)| id.masked());
    if let Some(reason) = refusal {
        let actor = match &found {
            Some((_, a)) => {
                if let Some(attempt) = attempt {
                    if matches!(reason, "wrong_password" | "locked") {
                        throttle::account_refused(db, attempt).await?;
                    } else {
                        throttle::account_refund(db, attempt.account_id).await?;
                    }
                }
                Actor::account(a.id, a.role)
            }
            None => Actor::ANONYMOUS,
        };
        audit
            .record(event(
                actor,
                Outcome::Denied,
                serde_json::json!({ "identifier": masked, "reason": reason }),
            ))
            .await?;
        return Err(SignInError::Refused);
    }
    let Some((_, account)) = found else {
        return Err(SignInError::Refused);
    };
    throttle::account_succeeded(db, account.id).await?;
    throttle::address_refund(db, &address).await?;
    let actor = Actor::account(account.id, account.role);
    // Audited before the session exists: no session is ever unaccounted for.
    audit
        .record(event(
            actor,
            Outcome::Allowed,
            serde_json::json!({ "identifier": masked }),
        ))
        .await?;
    let (row, token) = session::start(
        db,
        key,
        account.id,
        client.ip.clone(),
        client.user_agent.clone(),
    )
    .await?;
    Ok(SignedIn {
        account,
        session_id: row.id,
        token,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    #[error("{0}")]
    Malformed(IdError),
    /// Unknown identifier, or a wrong, used or expired code: one answer for all.
    #[error("账号或访问码不正确，或访问码已过期、已使用 (identifier or access code not valid)")]
    Refused,
    #[error("两次输入的密码不一致 (the passwords differ)")]
    PasswordsDiffer,
    #[error("{0}")]
    WeakPassword(password::WeakPassword),
    #[error("too many attempts from this address")]
    AddressBlocked,
    #[error(transparent)]
    Busy(password::Busy),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("cannot hash the password")]
    Hash,
}

/// Identifier + access code + new password (twice) → the account is active and signed in.
///
/// The code is checked first, with the same statements whether or not the identifier exists,
/// and every failure before it gives the one answer: what is wrong with the new password is said
/// only to someone holding a valid code. Attempts count against the address and the account
/// like sign-ins, and every refusal is audited.
#[allow(clippy::too_many_arguments)]
pub async fn activate(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    input: &str,
    code: &str,
    new_password: String,
    repeated: &str,
    client: &Client,
) -> Result<SignedIn, ActivateError> {
    let address = client.ip.clone().unwrap_or_default();
    let event = |actor: Actor, outcome, details: serde_json::Value| {
        Event::new(actor, Action::AuthActivate, outcome)
            .client(client.ip.clone(), client.user_agent.clone())
            .details(details)
    };
    if throttle::address_attempt(db, &address).await? {
        audit
            .record(event(
                Actor::ANONYMOUS,
                Outcome::Denied,
                serde_json::json!({ "identifier": masked_input(input), "reason": "address_blocked" }),
            ))
            .await?;
        return Err(ActivateError::AddressBlocked);
    }
    let found = match find_account(db, key, input).await? {
        Err(malformed) => {
            audit
                .record(event(
                    Actor::ANONYMOUS,
                    Outcome::Denied,
                    serde_json::json!({ "identifier": "(malformed)", "reason": "malformed_identifier" }),
                ))
                .await?;
            return Err(ActivateError::Malformed(malformed));
        }
        Ok(found) => found,
    };
    let account_id = found.as_ref().map_or(uuid::Uuid::nil(), |(_, a)| a.id);
    let attempt = throttle::account_attempt(db, account_id).await?;
    let checked = access_code::check(db, key, account_id, code).await?;
    let refusal = match (&found, &checked) {
        (None, _) => Some("unknown_identifier"),
        (Some(_), _) if attempt.is_some_and(|a| a.locked) => Some("locked"),
        (Some(_), Err(why)) => Some(why.as_str()),
        (Some((_, a)), Ok(_)) if a.disabled => Some("disabled"),
        (Some(_), Ok(_)) => None,
    };
    let masked = found
        .as_ref()
        .map_or_else(|| masked_input(input), |(id, _)| id.masked());
    let actor = found
        .as_ref()
        .map_or(Actor::ANONYMOUS, |(_, a)| Actor::account(a.id, a.role));
    if let Some(reason) = refusal {
        if let Some(attempt) = attempt {
            if reason == "disabled" {
                throttle::account_refund(db, attempt.account_id).await?;
            } else {
                throttle::account_refused(db, attempt).await?;
            }
        }
        audit
            .record(event(
                actor,
                Outcome::Denied,
                serde_json::json!({ "identifier": masked, "reason": reason }),
            ))
            .await?;
        return Err(ActivateError::Refused);
    }
    let (Some((id, account)), Ok(code_id)) = (found, checked) else {
        return Err(ActivateError::Refused);
    };
    // The code is right: from here a problem is the new password's, not a failed attempt.
    throttle::address_refund(db, &address).await?;
    throttle::account_refund(db, account.id).await?;
    if new_password != repeated {
        return Err(ActivateError::PasswordsDiffer);
    }
    let min = if account.role == Role::Admin {
        password::MIN_LENGTH_ADMIN
    } else {
        password::MIN_LENGTH
    };
    let plain_id = match &id {
        Identifier::CitizenId(s)
        | Identifier::Passport(s)
        | Identifier::Mobile(s)
        | Identifier::LawyerLicence(s)
        | Identifier::Username(s) => s.clone(),
    };
    password::check_strength(&new_password, &[&plain_id, &account.display_name], min)
        .map_err(ActivateError::WeakPassword)?;
    let hash = password::hash_bounded(new_password)
        .await
        .map_err(ActivateError::Busy)?
        .map_err(|_| ActivateError::Hash)?;

    audit
        .record(event(
            actor.clone(),
            Outcome::Allowed,
            serde_json::json!({ "identifier": id.masked() }),
        ))
        .await?;
    let now = OffsetDateTime::now_utc();
    let txn = db.begin().await?;
    if !access_code::mark_used(&txn, code_id).await? {
        txn.rollback().await?;
        audit
            .record(event(
                actor,
                Outcome::Failed,
                serde_json::json!({ "identifier": id.masked(), "reason": "used_code" }),
            ))
            .await?;
        return Err(ActivateError::Refused);
    }
    account::Entity::update_many()
        .col_expr(
            account::Column::PasswordHash,
            sea_orm::sea_query::Expr::value(Some(hash)),
        )
        .col_expr(
            account::Column::FailedLogins,
            sea_orm::sea_query::Expr::value(0),
        )
        .col_expr(
            account::Column::LockedUntil,
            sea_orm::sea_query::Expr::value(Option::<OffsetDateTime>::None),
        )
        .col_expr(
            account::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(account::Column::Id.eq(account.id))
        .exec(&txn)
        .await?;
    session::revoke_all(&txn, account.id, None).await?;
    let (row, token) = session::start(
        &txn,
        key,
        account.id,
        client.ip.clone(),
        client.user_agent.clone(),
    )
    .await?;
    txn.commit().await?;
    let account = account::Entity::find_by_id(account.id)
        .one(db)
        .await?
        .ok_or(ActivateError::Refused)?;
    Ok(SignedIn {
        account,
        session_id: row.id,
        token,
    })
}
