//! Sign-in throttling, kept in the database so it holds across instances: 5 failures lock an
//! account for 15 minutes; 20 failures from one address within 15 minutes block that address for
//! 15 minutes.
//!
//! Every attempt is counted **before** any password is checked, by one atomic statement
//! (`UPDATE … SET n = n + 1 … RETURNING`, an upsert for addresses) on SQLite and PostgreSQL
//! alike, so parallel attempts each see their own count: 30 at once against one account get
//! counts 1…30, and all past the limit are refused without the argon2 work. An attempt that
//! turns out to succeed gives its count back; one made while a lock holds does not count.
//!
//! Second-factor codes are counted apart ([`Counter::SecondFactor`]): five wrong lock the
//! second factor for 15 minutes, whatever happens to the password, and only a passed second
//! factor (or an administrator's reset of the factors) clears them.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::db::times;

pub const ACCOUNT_FAILURES: i32 = 5;
pub const ACCOUNT_LOCK: Duration = Duration::minutes(15);
pub const ADDRESS_FAILURES: i32 = 20;
pub const ADDRESS_WINDOW: Duration = Duration::minutes(15);

/// The bucket a client address is counted in: an IPv4 address as it is, an IPv6 address by its
/// /64 network (one subscriber's line or one host's allocation: an attacker holding a /64 has
/// 2⁶⁴ addresses, each of which would otherwise be a fresh count), an IPv4-mapped IPv6 address
/// as the IPv4 address it maps. Anything else (no address, a proxy's odd header) is counted
/// as the text it is, bounded.
pub fn address_bucket(address: &str) -> String {
    use std::net::IpAddr;
    match address.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => address.chars().take(64).collect(),
    }
}

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

/// Which failures of an account an attempt counts: passwords and access codes, or second-factor
/// codes — kept apart, so a right password never clears wrong codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Password,
    SecondFactor,
}

impl Counter {
    /// The account's columns: the count and the lock.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            Counter::Password => ("failed_logins", "locked_until"),
            Counter::SecondFactor => ("second_factor_failures", "second_factor_locked_until"),
        }
    }
}

/// An attempt on an account, as counted.
#[derive(Clone, Copy, Debug)]
pub struct AccountAttempt {
    pub account_id: Uuid,
    pub counter: Counter,
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
    attempt(db, Counter::Password, account_id).await
}

/// Counts a second-factor code (or passkey answer) of `account_id`, as [`account_attempt`]
/// counts a password, on the second factor's own count and lock.
pub async fn second_factor_attempt(
    db: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<Option<AccountAttempt>, DbErr> {
    attempt(db, Counter::SecondFactor, account_id).await
}

async fn attempt(
    db: &impl ConnectionTrait,
    counter: Counter,
    account_id: Uuid,
) -> Result<Option<AccountAttempt>, DbErr> {
    let (count_column, lock_column) = counter.columns();
    let Some(row) = db
        .query_one_raw(statement(
            db,
            &format!(
                "UPDATE accounts SET {count_column} = {count_column} + 1 WHERE id = $1 RETURNING {count_column}, {lock_column}"
            ),
            &format!(
                "UPDATE accounts SET {count_column} = {count_column} + 1 WHERE id = ? RETURNING {count_column}, {lock_column}"
            ),
            vec![account_id.into()],
        ))
        .await?
    else {
        return Ok(None);
    };
    let count: i32 = row.try_get("", count_column)?;
    let until: Option<OffsetDateTime> = row.try_get("", lock_column)?;
    let lock_in_force = until.is_some_and(|u| u > OffsetDateTime::now_utc());
    Ok(Some(AccountAttempt {
        account_id,
        counter,
        count,
        locked: lock_in_force || count > ACCOUNT_FAILURES,
        lock_in_force,
    }))
}

/// The attempt failed (or was refused as locked): at the limit the account locks for
/// [`ACCOUNT_LOCK`] and its count starts again; an attempt made while the lock held gives its
/// count back, so a lock ends when it says it does. True when this attempt set the lock.
pub async fn account_refused(
    db: &impl ConnectionTrait,
    attempt: AccountAttempt,
) -> Result<bool, DbErr> {
    let (count_column, lock_column) = attempt.counter.columns();
    if attempt.lock_in_force {
        refund(db, attempt.counter, attempt.account_id).await?;
    } else if attempt.count >= ACCOUNT_FAILURES {
        // Only where no lock holds yet: of many failures at once, one sets the lock (and is
        // told so: the person is told once), the others find it set.
        let now = OffsetDateTime::now_utc();
        let backend = db.get_database_backend();
        let set = db
            .execute_raw(statement(
                db,
                &format!(
                    "UPDATE accounts SET {lock_column} = $1, {count_column} = 0 WHERE id = $2 AND ({lock_column} IS NULL OR {lock_column} <= $3)"
                ),
                &format!(
                    "UPDATE accounts SET {lock_column} = ?, {count_column} = 0 WHERE id = ? AND ({lock_column} IS NULL OR {lock_column} <= ?)"
                ),
                vec![
                    (now + ACCOUNT_LOCK).into(),
                    attempt.account_id.into(),
                    times::bound(backend, now),
                ],
            ))
            .await?;
        return Ok(set.rows_affected() == 1);
    }
    Ok(false)
}

/// The attempt was not a failure (the code was right but the new password was not acceptable,
/// or the server was busy): its count is given back.
pub async fn account_refund(db: &impl ConnectionTrait, account_id: Uuid) -> Result<(), DbErr> {
    refund(db, Counter::Password, account_id).await
}

async fn refund(
    db: &impl ConnectionTrait,
    counter: Counter,
    account_id: Uuid,
) -> Result<(), DbErr> {
    let (count_column, _) = counter.columns();
    db.execute_raw(statement(
        db,
        &format!(
            "UPDATE accounts SET {count_column} = {count_column} - 1 WHERE id = $1 AND {count_column} > 0"
        ),
        &format!(
            "UPDATE accounts SET {count_column} = {count_column} - 1 WHERE id = ? AND {count_column} > 0"
        ),
        vec![account_id.into()],
    ))
    .await?;
    Ok(())
}

/// The password was right: the account's password count and lock are cleared (never the
/// second factor's).
pub async fn account_succeeded(db: &impl ConnectionTrait, account_id: Uuid) -> Result<(), DbErr> {
    cleared(db, Counter::Password, account_id).await
}

/// A second factor was passed (or reset by an administrator): its count and lock are cleared.
pub async fn second_factor_passed(
    db: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<(), DbErr> {
    cleared(db, Counter::SecondFactor, account_id).await
}

async fn cleared(
    db: &impl ConnectionTrait,
    counter: Counter,
    account_id: Uuid,
) -> Result<(), DbErr> {
    let (count_column, lock_column) = counter.columns();
    db.execute_raw(statement(
        db,
        &format!("UPDATE accounts SET {count_column} = 0, {lock_column} = NULL WHERE id = $1"),
        &format!("UPDATE accounts SET {count_column} = 0, {lock_column} = NULL WHERE id = ?"),
        vec![account_id.into()],
    ))
    .await?;
    Ok(())
}

/// Counts an attempt from `address` atomically; true if the address is blocked (answer 429
/// before any other work).
pub async fn address_attempt(db: &impl ConnectionTrait, address: &str) -> Result<bool, DbErr> {
    let bucket = address_bucket(address);
    let address = bucket.as_str();
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
    let bucket = address_bucket(address);
    let address = bucket.as_str();
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
    Ok(count_rate(db, key, window, limit, now).await?.within)
}

/// A submission counted by [`count_rate`]: whether it is within the limit, and when the window
/// it was counted in ends (what a refusal tells the person to wait for).
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    pub within: bool,
    pub until: OffsetDateTime,
}

/// [`within_rate`], telling also when the window ends.
pub async fn count_rate(
    db: &impl ConnectionTrait,
    key: &str,
    window: Duration,
    limit: i32,
    now: OffsetDateTime,
) -> Result<Rate, DbErr> {
    let backend = db.get_database_backend();
    let cutoff = times::bound(backend, now - window);
    let row = db
        .query_one_raw(statement(
            db,
            "INSERT INTO rate_limits (\"key\", window_start, count) VALUES ($1, $2, 1) \
             ON CONFLICT (\"key\") DO UPDATE SET \
             count = CASE WHEN rate_limits.window_start < $3 THEN 1 ELSE rate_limits.count + 1 END, \
             window_start = CASE WHEN rate_limits.window_start < $3 THEN excluded.window_start ELSE rate_limits.window_start END \
             RETURNING count, window_start",
            "INSERT INTO rate_limits (\"key\", window_start, count) VALUES (?, ?, 1) \
             ON CONFLICT (\"key\") DO UPDATE SET \
             count = CASE WHEN rate_limits.window_start < ? THEN 1 ELSE rate_limits.count + 1 END, \
             window_start = CASE WHEN rate_limits.window_start < ? THEN excluded.window_start ELSE rate_limits.window_start END \
             RETURNING count, window_start",
            match backend {
                DbBackend::Postgres => vec![key.into(), now.into(), cutoff],
                _ => vec![key.into(), now.into(), cutoff.clone(), cutoff],
            },
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("rate_limits".into()))?;
    let count: i32 = row.try_get("", "count")?;
    let start: OffsetDateTime = row.try_get("", "window_start")?;
    Ok(Rate {
        within: count <= limit,
        until: start + window,
    })
}

#[cfg(test)]
mod tests {
    use super::address_bucket;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn buckets_of_known_addresses() {
        assert_eq!(address_bucket("203.0.113.7"), "203.0.113.7");
        assert_eq!(address_bucket("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(address_bucket("2001:db8:1:2::ffff"), "2001:db8:1:2::/64");
        assert_ne!(
            address_bucket("2001:db8:1:3::1"),
            address_bucket("2001:db8:1:2::1")
        );
        assert_eq!(address_bucket("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(address_bucket(""), "");
        assert_eq!(address_bucket(&"x".repeat(500)).len(), 64);
    }

    proptest! {
        /// Every address of one /64 falls in one bucket, whatever its interface identifier.
        #[test]
        fn one_network_one_bucket(net in any::<u64>(), a in any::<u64>(), b in any::<u64>()) {
            prop_assume!(net >> 32 != 0);
            let x = Ipv6Addr::from(((net as u128) << 64) | a as u128);
            let y = Ipv6Addr::from(((net as u128) << 64) | b as u128);
            prop_assert_eq!(address_bucket(&x.to_string()), address_bucket(&y.to_string()));
        }

        /// Different /64 networks never share a bucket, and IPv4 addresses stay apart.
        #[test]
        fn networks_stay_apart(n1 in any::<u64>(), n2 in any::<u64>(), i in any::<u64>(), v4a in any::<u32>(), v4b in any::<u32>()) {
            prop_assume!(n1 != n2 && n1 >> 32 != 0 && n2 >> 32 != 0);
            let x = Ipv6Addr::from(((n1 as u128) << 64) | i as u128);
            let y = Ipv6Addr::from(((n2 as u128) << 64) | i as u128);
            prop_assert_ne!(address_bucket(&x.to_string()), address_bucket(&y.to_string()));
            prop_assume!(v4a != v4b);
            prop_assert_ne!(
                address_bucket(&Ipv4Addr::from(v4a).to_string()),
                address_bucket(&Ipv4Addr::from(v4b).to_string())
            );
        }

        /// Any text is bucketed without panicking, to at most 64 characters or a network.
        #[test]
        fn any_text_is_bucketed(raw in "\\PC{0,200}") {
            prop_assert!(address_bucket(&raw).chars().count() <= 64);
        }
    }
}
