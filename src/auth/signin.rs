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

/// What the first checks of a sign-in or an activation found, each refusal audited.
enum Screened {
    /// Too many attempts from this address.
    Blocked,
    /// The input is no identifier.
    Malformed(IdError),
    /// The account it names, if any (boxed: an account row is large).
    Found(Box<Option<(Identifier, account::Model)>>),
}

/// The first checks of a sign-in or an activation: the attempt counted against the address
/// before anything costly, atomically (a blocked address gets nothing more), then the account
/// the input names looked up. A refusal is recorded with `event`.
async fn screen<E: From<DbErr> + From<AuditError>>(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    input: &str,
    address: &str,
    event: &dyn Fn(Actor, Outcome, serde_json::Value) -> Event,
) -> Result<Screened, E> {
    if throttle::address_attempt(db, address).await? {
        audit
            .record(event(
                Actor::ANONYMOUS,
                Outcome::Denied,
                serde_json::json!({ "identifier": masked_input(input), "reason": "address_blocked" }),
            ))
            .await?;
        return Ok(Screened::Blocked);
    }
    match find_account(db, key, input).await? {
        Ok(found) => Ok(Screened::Found(Box::new(found))),
        Err(malformed) => {
            audit
                .record(event(
                    Actor::ANONYMOUS,
                    Outcome::Denied,
                    serde_json::json!({ "identifier": "(malformed)", "reason": "malformed_identifier" }),
                ))
                .await?;
            Ok(Screened::Malformed(malformed))
        }
    }
}

/// Why an activation is refused, if it is: no such account, locked, the code's own reason, or
/// disabled.
fn code_refusal_of(
    found: Option<&account::Model>,
    locked: bool,
    checked: &Result<uuid::Uuid, access_code::Refused>,
) -> Option<&'static str> {
    match (found, checked) {
        (None, _) => Some("unknown_identifier"),
        (Some(_), _) if locked => Some("locked"),
        (Some(_), Err(why)) => Some(why.as_str()),
        (Some(a), Ok(_)) if a.disabled => Some("disabled"),
        (Some(_), Ok(_)) => None,
    }
}

/// Verifies `secret` against `stored` (against a dummy hash if none, so the answer takes as
/// long); whether it matched a real hash. Too busy to judge: neither count stands.
async fn check_password(
    db: &DatabaseConnection,
    address: &str,
    attempt: Option<throttle::AccountAttempt>,
    secret: String,
    stored: Option<String>,
) -> Result<bool, SignInError> {
    let has_hash = stored.is_some();
    match password::verify_bounded(secret, stored.unwrap_or_else(|| DUMMY_HASH.clone())).await {
        Ok(ok) => Ok(ok && has_hash),
        Err(busy) => {
            throttle::address_refund(db, address).await?;
            if let Some(a) = attempt {
                throttle::account_refund(db, a.account_id).await?;
            }
            Err(SignInError::Busy(busy))
        }
    }
}

/// Why a sign-in is refused, if it is: no such account, disabled, not activated, locked, or the
/// wrong password.
fn refusal_of(
    found: Option<&account::Model>,
    locked: bool,
    verified: bool,
) -> Option<&'static str> {
    match found {
        None => Some("unknown_identifier"),
        Some(a) if a.disabled => Some("disabled"),
        Some(a) if a.password_hash.is_none() => Some("not_activated"),
        Some(_) if locked => Some("locked"),
        Some(_) if !verified => Some("wrong_password"),
        Some(_) => None,
    }
}

/// A refused attempt on an account: counted towards the lock if the password was wrong (or the
/// account is locked), else given back.
async fn count_refusal(
    db: &DatabaseConnection,
    attempt: Option<throttle::AccountAttempt>,
    reason: &str,
) -> Result<(), DbErr> {
    if let Some(attempt) = attempt {
        if matches!(reason, "wrong_password" | "locked") {
            throttle::account_refused(db, attempt).await?;
        } else {
            throttle::account_refund(db, attempt.account_id).await?;
        }
    }
    Ok(())
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
    let found = match screen::<SignInError>(db, key, audit, input, &address, &event).await? {
        Screened::Blocked => return Err(SignInError::AddressBlocked),
        Screened::Malformed(malformed) => return Err(SignInError::Malformed(malformed)),
        Screened::Found(found) => *found,
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
    let verified = check_password(db, &address, attempt, secret, stored).await?;
    let refusal = refusal_of(found.as_ref().map(|(_, a)| a), locked, verified);
    let masked = found
        .as_ref()
        .map_or_else(|| masked_input(input), |(id, _)| id.masked());
    if let Some(reason) = refusal {
        let actor = match &found {
            Some((_, a)) => {
                count_refusal(db, attempt, reason).await?;
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

/// The new password's hash: typed twice alike, strong enough for the role, not containing the
/// sign-in identifier or the name.
async fn new_password_hash(
    id: &Identifier,
    account: &account::Model,
    new_password: String,
    repeated: &str,
) -> Result<String, ActivateError> {
    if new_password != repeated {
        return Err(ActivateError::PasswordsDiffer);
    }
    let min = if account.role == Role::Admin {
        password::MIN_LENGTH_ADMIN
    } else {
        password::MIN_LENGTH
    };
    let plain_id = match id {
        Identifier::CitizenId(s)
        | Identifier::Passport(s)
        | Identifier::Mobile(s)
        | Identifier::LawyerLicence(s)
        | Identifier::Username(s) => s.clone(),
    };
    password::check_strength(&new_password, &[&plain_id, &account.display_name], min)
        .map_err(ActivateError::WeakPassword)?;
    password::hash_bounded(new_password)
        .await
        .map_err(ActivateError::Busy)?
        .map_err(|_| ActivateError::Hash)
}

/// In one transaction: the code marked used, the password set (failures cleared), the
/// account's sessions replaced by a new one. `None` if the code was used meanwhile (nothing
/// changed).
async fn commit_activation(
    db: &DatabaseConnection,
    key: &ServerKey,
    code_id: uuid::Uuid,
    account_id: uuid::Uuid,
    hash: String,
    client: &Client,
) -> Result<Option<(crate::db::entities::session::Model, String)>, ActivateError> {
    let now = OffsetDateTime::now_utc();
    let txn = db.begin().await?;
    if !access_code::mark_used(&txn, code_id).await? {
        txn.rollback().await?;
        return Ok(None);
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
        .filter(account::Column::Id.eq(account_id))
        .exec(&txn)
        .await?;
    session::revoke_all(&txn, account_id, None).await?;
    let (row, token) = session::start(
        &txn,
        key,
        account_id,
        client.ip.clone(),
        client.user_agent.clone(),
    )
    .await?;
    txn.commit().await?;
    Ok(Some((row, token)))
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
    let found = match screen::<ActivateError>(db, key, audit, input, &address, &event).await? {
        Screened::Blocked => return Err(ActivateError::AddressBlocked),
        Screened::Malformed(malformed) => return Err(ActivateError::Malformed(malformed)),
        Screened::Found(found) => *found,
    };
    let account_id = found.as_ref().map_or(uuid::Uuid::nil(), |(_, a)| a.id);
    let attempt = throttle::account_attempt(db, account_id).await?;
    let checked = access_code::check(db, key, account_id, code).await?;
    let locked = attempt.is_some_and(|a| a.locked);
    let refusal = code_refusal_of(found.as_ref().map(|(_, a)| a), locked, &checked);
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
    let hash = new_password_hash(&id, &account, new_password, repeated).await?;

    audit
        .record(event(
            actor.clone(),
            Outcome::Allowed,
            serde_json::json!({ "identifier": id.masked() }),
        ))
        .await?;
    let Some((row, token)) = commit_activation(db, key, code_id, account.id, hash, client).await?
    else {
        audit
            .record(event(
                actor,
                Outcome::Failed,
                serde_json::json!({ "identifier": id.masked(), "reason": "used_code" }),
            ))
            .await?;
        return Err(ActivateError::Refused);
    };
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
