//! Sign-in throttling, kept in the database so it holds across instances: 5 failures lock an
//! account for 15 minutes; 20 failures from one address within 15 minutes block that address for
//! 15 minutes.
//!
//! Every attempt is counted **before** any password is checked, by one atomic statement
//! (`UPDATE … SET n = n + 1 … RETURNING`, an upsert for addresses) on SQLite and PostgreSQL
//! alike, so parallel attempts each see their own count: 30 at once against one account get
//! counts 1…30, and all past the limit are refused without the argon2 work. An attempt that
//! turns out to succeed gives its count back; one made while a lock holds does not count.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::db::times;

pub const ACCOUNT_FAILURES: i32 = 5;
pub const ACCOUNT_LOCK: Duration = Duration::minutes(15);
pub const ADDRESS_FAILURES: i32 = 20;
pub const ADDRESS_WINDOW: Duration = Duration::minutes(15);

fn statement(
    db: &impl ConnectionTrait,
    postgres: &str,
    sqlite: &str,
    values: Vec<Value>,
) -> Statement {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => postgres,
        _ => sqlite,
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// An attempt on an account, as counted.
#[derive(Clone, Copy, Debug)]
pub struct AccountAttempt {
    pub account_id: Uuid,
    /// This attempt's number among the failures since the last success or lock.
    pub count: i32,
    /// A lock holds, or this attempt is past the limit: refuse without checking the password.
    pub locked: bool,
    /// The lock was already in force (the attempt is not counted: see [`account_refused`]).
    lock_in_force: bool,
}

/// Counts an attempt on `account_id` atomically and says whether it may be checked at all;
/// `None` if there is no such account (callers without an account pass `Uuid::nil()`, so an
/// unknown identifier costs the same statements as a known one).
pub async fn account_attempt(
    db: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<Option<AccountAttempt>, DbErr> {
    let Some(row) = db
        .query_one_raw(statement(
            db,
            "UPDATE accounts SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins, locked_until",
            "UPDATE accounts SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins, locked_until",
            vec![account_id.into()],
        ))
        .await?
    else {
        return Ok(None);
    };
    let count: i32 = row.try_get("", "failed_logins")?;
    let until: Option<OffsetDateTime> = row.try_get("", "locked_until")?;
    let lock_in_force = until.is_some_and(|u| u > OffsetDateTime::now_utc());
    Ok(Some(AccountAttempt {
        account_id,
        count,
        locked: lock_in_force || count > ACCOUNT_FAILURES,
        lock_in_force,
    }))
}

/// The attempt failed (or was refused as locked): at the limit the account locks for
/// [`ACCOUNT_LOCK`] and its count starts again; an attempt made while the lock held gives its
/// count back, so a lock ends when it says it does.
pub async fn account_refused(
    db: &impl ConnectionTrait,
    attempt: AccountAttempt,
) -> Result<(), DbErr> {
    if attempt.lock_in_force {
        account_refund(db, attempt.account_id).await?;
    } else if attempt.count >= ACCOUNT_FAILURES {
        let until = OffsetDateTime::now_utc() + ACCOUNT_LOCK;
        db.execute_raw(statement(
            db,
            "UPDATE accounts SET locked_until = $1, failed_logins = 0 WHERE id = $2",
            "UPDATE accounts SET locked_until = ?, failed_logins = 0 WHERE id = ?",
            vec![until.into(), attempt.account_id.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The attempt was not a failure (the code was right but the new password was not acceptable,
/// or the server was busy): its count is given back.
pub async fn account_refund(db: &impl ConnectionTrait, account_id: Uuid) -> Result<(), DbErr> {
    db.execute_raw(statement(
        db,
        "UPDATE accounts SET failed_logins = failed_logins - 1 WHERE id = $1 AND failed_logins > 0",
        "UPDATE accounts SET failed_logins = failed_logins - 1 WHERE id = ? AND failed_logins > 0",
        vec![account_id.into()],
    ))
    .await?;
    Ok(())
}

/// The password was right: the account's count and lock are cleared.
pub async fn account_succeeded(db: &impl ConnectionTrait, account_id: Uuid) -> Result<(), DbErr> {
    db.execute_raw(statement(
        db,
        "UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = $1",
        "UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = ?",
        vec![account_id.into()],
    ))
    .await?;
    Ok(())
}

/// Counts an attempt from `address` atomically; true if the address is blocked (answer 429
/// before any other work).
pub async fn address_attempt(db: &impl ConnectionTrait, address: &str) -> Result<bool, DbErr> {
    let now = OffsetDateTime::now_utc();
    let backend = db.get_database_backend();
    let cutoff = times::bound(backend, now - ADDRESS_WINDOW);
    let row = db
        .query_one_raw(statement(
            db,
            "INSERT INTO login_throttles (address, window_start, failures, blocked_until) VALUES ($1, $2, 1, NULL) \
             ON CONFLICT (address) DO UPDATE SET \
             failures = CASE WHEN login_throttles.window_start < $3 THEN 1 ELSE login_throttles.failures + 1 END, \
             window_start = CASE WHEN login_throttles.window_start < $3 THEN excluded.window_start ELSE login_throttles.window_start END \
             RETURNING failures, blocked_until",
            "INSERT INTO login_throttles (address, window_start, failures, blocked_until) VALUES (?, ?, 1, NULL) \
             ON CONFLICT (address) DO UPDATE SET \
             failures = CASE WHEN login_throttles.window_start < ? THEN 1 ELSE login_throttles.failures + 1 END, \
             window_start = CASE WHEN login_throttles.window_start < ? THEN excluded.window_start ELSE login_throttles.window_start END \
             RETURNING failures, blocked_until",
            match backend {
                DbBackend::Postgres => vec![address.into(), now.into(), cutoff],
                _ => vec![address.into(), now.into(), cutoff.clone(), cutoff],
            },
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("login_throttles".into()))?;
    let failures: i32 = row.try_get("", "failures")?;
    let until: Option<OffsetDateTime> = row.try_get("", "blocked_until")?;
    if until.is_some_and(|u| u > now) {
        return Ok(true);
    }
    if failures > ADDRESS_FAILURES {
        db.execute_raw(statement(
            db,
            "UPDATE login_throttles SET blocked_until = $1 WHERE address = $2",
            "UPDATE login_throttles SET blocked_until = ? WHERE address = ?",
            vec![(now + ADDRESS_WINDOW).into(), address.into()],
        ))
        .await?;
        return Ok(true);
    }
    Ok(false)
}

/// The attempt succeeded (or was never judged, e.g. the server was busy): its count is given back.
pub async fn address_refund(db: &impl ConnectionTrait, address: &str) -> Result<(), DbErr> {
    db.execute_raw(statement(
        db,
        "UPDATE login_throttles SET failures = failures - 1 WHERE address = $1 AND failures > 0",
        "UPDATE login_throttles SET failures = failures - 1 WHERE address = ? AND failures > 0",
        vec![address.into()],
    ))
    .await?;
    Ok(())
}

/// Counts one submission under `key` (an address, a case number) atomically — one upsert, so
/// fifty at once each see their own count — and says whether it is within `limit` per `window`.
/// A window starts with the first submission after the previous one ended.
pub async fn within_rate(
    db: &impl ConnectionTrait,
    key: &str,
    window: Duration,
    limit: i32,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let cutoff = times::bound(backend, now - window);
    let row = db
        .query_one_raw(statement(
            db,
            "INSERT INTO rate_limits (\"key\", window_start, count) VALUES ($1, $2, 1) \
             ON CONFLICT (\"key\") DO UPDATE SET \
             count = CASE WHEN rate_limits.window_start < $3 THEN 1 ELSE rate_limits.count + 1 END, \
             window_start = CASE WHEN rate_limits.window_start < $3 THEN excluded.window_start ELSE rate_limits.window_start END \
             RETURNING count",
            "INSERT INTO rate_limits (\"key\", window_start, count) VALUES (?, ?, 1) \
             ON CONFLICT (\"key\") DO UPDATE SET \
             count = CASE WHEN rate_limits.window_start < ? THEN 1 ELSE rate_limits.count + 1 END, \
             window_start = CASE WHEN rate_limits.window_start < ? THEN excluded.window_start ELSE rate_limits.window_start END \
             RETURNING count",
            match backend {
                DbBackend::Postgres => vec![key.into(), now.into(), cutoff],
                _ => vec![key.into(), now.into(), cutoff.clone(), cutoff],
            },
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("rate_limits".into()))?;
    let count: i32 = row.try_get("", "count")?;
    Ok(count <= limit)
}
