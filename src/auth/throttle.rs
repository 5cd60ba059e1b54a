//! Sign-in throttling, kept in the database so it holds across instances: 5 failures lock an
//! account for 15 minutes; 20 failures from one address within 15 minutes block that address for
//! 15 minutes.

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, Set};
use time::{Duration, OffsetDateTime};

use crate::db::entities::{account, login_throttle};

pub const ACCOUNT_FAILURES: i32 = 5;
pub const ACCOUNT_LOCK: Duration = Duration::minutes(15);
pub const ADDRESS_FAILURES: i32 = 20;
pub const ADDRESS_WINDOW: Duration = Duration::minutes(15);

pub fn account_locked(account: &account::Model) -> bool {
    account
        .locked_until
        .is_some_and(|until| until > OffsetDateTime::now_utc())
}

/// Counts a failure against the account; locks it at the limit.
pub async fn account_failed(
    db: &impl ConnectionTrait,
    account: &account::Model,
) -> Result<(), DbErr> {
    let now = OffsetDateTime::now_utc();
    let failures = account.failed_logins + 1;
    let mut row: account::ActiveModel = account.clone().into();
    if failures >= ACCOUNT_FAILURES {
        row.failed_logins = Set(0);
        row.locked_until = Set(Some(now + ACCOUNT_LOCK));
    } else {
        row.failed_logins = Set(failures);
    }
    row.updated_at = Set(now);
    row.update(db).await?;
    Ok(())
}

pub async fn account_succeeded(
    db: &impl ConnectionTrait,
    account: &account::Model,
) -> Result<(), DbErr> {
    if account.failed_logins == 0 && account.locked_until.is_none() {
        return Ok(());
    }
    let mut row: account::ActiveModel = account.clone().into();
    row.failed_logins = Set(0);
    row.locked_until = Set(None);
    row.update(db).await?;
    Ok(())
}

pub async fn address_blocked(db: &impl ConnectionTrait, address: &str) -> Result<bool, DbErr> {
    let row = login_throttle::Entity::find_by_id(address.to_owned())
        .one(db)
        .await?;
    Ok(row
        .and_then(|r| r.blocked_until)
        .is_some_and(|until| until > OffsetDateTime::now_utc()))
}

pub async fn address_failed(db: &impl ConnectionTrait, address: &str) -> Result<(), DbErr> {
    let now = OffsetDateTime::now_utc();
    match login_throttle::Entity::find_by_id(address.to_owned())
        .one(db)
        .await?
    {
        None => {
            let inserted = login_throttle::ActiveModel {
                address: Set(address.to_owned()),
                window_start: Set(now),
                failures: Set(1),
                blocked_until: Set(None),
            }
            .insert(db)
            .await;
            match inserted {
                Ok(_) => Ok(()),
                // Another instance counted this address's first failure at the same moment.
                Err(e)
                    if matches!(
                        e.sql_err(),
                        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                    ) =>
                {
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Some(existing) => {
            let mut row: login_throttle::ActiveModel = existing.clone().into();
            if existing.window_start + ADDRESS_WINDOW <= now {
                row.window_start = Set(now);
                row.failures = Set(1);
            } else {
                let failures = existing.failures + 1;
                row.failures = Set(failures);
                if failures >= ADDRESS_FAILURES {
                    row.blocked_until = Set(Some(now + ADDRESS_WINDOW));
                }
            }
            row.update(db).await?;
            Ok(())
        }
    }
}
