//! Reminders found by time rather than by an action: the review period ending tomorrow, an
//! agency ending within three days, an access code expiring within a day unused. Every instance
//! scans every ten minutes; each reminder is written once (`notifications::notify_once`, a
//! unique key), whichever instance finds it first.

use super::*;
use crate::db::entities::activation;
use crate::notifications::{Channels, Event, notify_once};

/// How often an instance looks for reminders due.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(600);

pub async fn keep_reminding(
    db: DatabaseConnection,
    channels: Channels,
    clock: crate::clock::Clock,
) {
    loop {
        if let Err(e) = scan(&db, channels, clock.now()).await {
            tracing::warn!(error = %e, "reminders: scan failed");
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// One scan at `now`; returns how many reminders were written.
pub async fn scan(
    db: &DatabaseConnection,
    channels: Channels,
    now: OffsetDateTime,
) -> Result<usize, DbErr> {
    let cst = time::macros::offset!(+8);
    let today = now.to_offset(cst).date();
    let mut written = 0;

    // The review period's last day is tomorrow: served on today − (period − 1).
    if let Some(served_on) = today.checked_sub(time::Duration::days(REVIEW_DAYS - 1)) {
        let due = case::Entity::find()
            .filter(case::Column::Status.eq(CaseStatus::Served))
            .filter(case::Column::ServiceKind.is_not_null())
            .filter(case::Column::ServedOn.eq(served_on))
            .all(db)
            .await?;
        for c in due {
            let Some(deadline) = review_deadline(&c) else {
                continue;
            };
            let txn = db.begin().await?;
            let audience = crate::notifications::case_audience(&txn, c.id, now).await?;
            let key = format!("review-closing:{}", c.id);
            let event = Event::ReviewClosingTomorrow { deadline };
            written += notify_once(&txn, channels, &audience, Some(&c), &event, now, &key).await?;
            txn.commit().await?;
        }
    }

    // Agencies ending within three days.
    let ending = delegation::Entity::find()
        .filter(delegation::Column::RevokedAt.is_null())
        .filter(delegation::Column::ValidFrom.lte(now))
        .filter(delegation::Column::ValidUntil.gt(now))
        .filter(delegation::Column::ValidUntil.lte(now + time::Duration::days(3)))
        .all(db)
        .await?;
    for d in ending {
        let Some(c) = case::Entity::find_by_id(d.case_id).one(db).await? else {
            continue;
        };
        let principal = case_party::Entity::find_by_id(d.principal_party_id)
            .one(db)
            .await?
            .map(|p| p.account_id);
        let ids: Vec<Uuid> = principal.into_iter().chain([d.agent_account_id]).collect();
        let people = account::Entity::find()
            .filter(account::Column::Id.is_in(ids))
            .filter(account::Column::Disabled.eq(false))
            .all(db)
            .await?;
        let (_, until) = delegation_days(d.valid_from, d.valid_until);
        let txn = db.begin().await?;
        let key = format!("delegation-ending:{}", d.id);
        let event = Event::DelegationEnding { until };
        written += notify_once(&txn, channels, &people, Some(&c), &event, now, &key).await?;
        txn.commit().await?;
    }

    // Access codes expiring within a day, never used: told by SMS or e-mail (the inbox needs a
    // sign-in the code is for).
    let expiring = activation::Entity::find()
        .filter(activation::Column::UsedAt.is_null())
        .filter(activation::Column::RevokedAt.is_null())
        .filter(activation::Column::ExpiresAt.gt(now))
        .filter(activation::Column::ExpiresAt.lte(now + time::Duration::days(1)))
        .all(db)
        .await?;
    for a in expiring {
        let people = account::Entity::find()
            .filter(account::Column::Id.eq(a.account_id))
            .filter(account::Column::Disabled.eq(false))
            .filter(account::Column::PasswordHash.is_null())
            .all(db)
            .await?;
        let txn = db.begin().await?;
        let key = format!("code-expiring:{}", a.id);
        let event = Event::CodeExpiring {
            until: a.expires_at,
        };
        written += notify_once(&txn, channels, &people, None, &event, now, &key).await?;
        txn.commit().await?;
    }
    Ok(written)
}
