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

async fn verify_off_thread(secret: String, stored: Option<String>) -> bool {
    let has_hash = stored.is_some();
    let ok = tokio::task::spawn_blocking(move || {
        let hash = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        password::verify(&secret, &hash)
    })
    .await
    .unwrap_or(false);
    ok && has_hash
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
    if throttle::address_blocked(db, &address).await? {
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
            throttle::address_failed(db, &address).await?;
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
    let stored = found.as_ref().and_then(|(_, a)| a.password_hash.clone());
    let verified = verify_off_thread(secret, stored).await;

    let refusal = match &found {
        None => Some("unknown_identifier"),
        Some((_, a)) if a.disabled => Some("disabled"),
        Some((_, a)) if a.password_hash.is_none() => Some("not_activated"),
        Some((_, a)) if throttle::account_locked(a) => Some("locked"),
        Some(_) if !verified => Some("wrong_password"),
        Some(_) => None,
    };
    let masked = found
        .as_ref()
        .map_or_else(|| masked_input(input), |(id, _)| id.masked());
    if let Some(reason) = refusal {
        throttle::address_failed(db, &address).await?;
        let actor = match &found {
            Some((_, a)) => {
                if reason == "wrong_password" {
                    throttle::account_failed(db, a).await?;
                }
                Actor {
                    id: Some(a.id),
                    role: super::extract::role_name(&a.role),
                }
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
    throttle::account_succeeded(db, &account).await?;
    let actor = Actor {
        id: Some(account.id),
        role: super::extract::role_name(&account.role),
    };
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
    Db(#[from] DbErr),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("cannot hash the password")]
    Hash,
}

/// Identifier + access code + new password (twice) → the account is active and signed in.
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
    if throttle::address_blocked(db, &address).await? {
        return Err(ActivateError::AddressBlocked);
    }
    let (id, account) = match find_account(db, key, input).await? {
        Err(malformed) => return Err(ActivateError::Malformed(malformed)),
        Ok(Some(found)) => found,
        Ok(None) => {
            throttle::address_failed(db, &address).await?;
            audit
                .record(event(
                    Actor::ANONYMOUS,
                    Outcome::Denied,
                    serde_json::json!({ "identifier": masked_input(input), "reason": "unknown_identifier" }),
                ))
                .await?;
            return Err(ActivateError::Refused);
        }
    };
    let actor = Actor {
        id: Some(account.id),
        role: super::extract::role_name(&account.role),
    };
    if new_password != repeated {
        return Err(ActivateError::PasswordsDiffer);
    }
    let min = if account.role == "admin" {
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
    let hash = tokio::task::spawn_blocking(move || password::hash(&new_password))
        .await
        .map_err(|_| ActivateError::Hash)?
        .map_err(|_| ActivateError::Hash)?;

    // Audit events are recorded outside the transaction: on SQLite the audit writer needs the
    // write lock this transaction would hold.
    let checked = access_code::check(db, key, account.id, code).await?;
    let refusal = match &checked {
        Err(why) => Some(why.as_str()),
        Ok(_) if account.disabled => Some("disabled"),
        Ok(_) => None,
    };
    if let Some(reason) = refusal {
        throttle::address_failed(db, &address).await?;
        if reason != "disabled" {
            throttle::account_failed(db, &account).await?;
        }
        audit
            .record(event(
                actor,
                Outcome::Denied,
                serde_json::json!({ "identifier": id.masked(), "reason": reason }),
            ))
            .await?;
        return Err(ActivateError::Refused);
    }
    let Ok(code_id) = checked else {
        return Err(ActivateError::Refused);
    };
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
