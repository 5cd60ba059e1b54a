//! The ends of transfers, made durable. An access to evidence is recorded before its first
//! byte; its end — how many bytes went, whether it completed — is recorded when the body ends.
//! That second event is retried until the log takes it (a database outage at the end of a
//! download must not lose it), and the transfers a dead process left open are closed as
//! "interrupted" by whichever instance notices first: every instance beats a heartbeat in the
//! `instances` table, and one whose heartbeat stops is swept.

use std::collections::HashSet;
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Set,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Action, Actor, Audit, Event, Outcome};
use crate::db::entities::{audit_event, instance};
use crate::db::times;

/// The accesses that stream evidence and end with a `transfer.end`.
const STREAMED: [&str; 3] = ["material.download", "material.view", "bundle.download"];

/// Records a transfer's end, retrying (0.25 s, doubling to 10 s) for up to 15 minutes while the
/// log cannot take it. Runs in the background: the response is already over.
pub fn record_end(audit: Audit, event: Event) {
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(250);
        loop {
            match audit.record(event.clone()).await {
                Ok(_) => return,
                Err(e) if started.elapsed() > Duration::from_secs(15 * 60) => {
                    tracing::error!(error = %e, details = %event.details, "a transfer end could not be recorded; it will be closed as interrupted");
                    return;
                }
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    });
}

/// Runs for the life of the process: registers `id`, then every `every` renews its heartbeat and
/// sweeps instances whose heartbeat stopped three beats ago.
pub async fn keep_beating(db: DatabaseConnection, audit: Audit, id: Uuid, every: Duration) {
    let started = OffsetDateTime::now_utc();
    let registered = instance::ActiveModel {
        id: Set(id),
        started_at: Set(started),
        seen_at: Set(started),
    }
    .insert(&db)
    .await;
    if let Err(e) = registered {
        tracing::warn!(error = %e, "cannot register this instance");
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let beat = instance::Entity::update_many()
            .col_expr(
                instance::Column::SeenAt,
                sea_orm::sea_query::Expr::value(OffsetDateTime::now_utc()),
            )
            .filter(instance::Column::Id.eq(id))
            .exec(&db)
            .await;
        if let Err(e) = beat {
            tracing::warn!(error = %e, "cannot renew this instance's heartbeat");
            continue;
        }
        match close_dead(&db, &audit, every * 3).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                transfers = n,
                "closed the open transfers of a stopped instance as interrupted"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot sweep stopped instances"),
        }
    }
}

/// Closes, as interrupted, every transfer left open by an instance whose heartbeat is older
/// than `dead_after`; returns how many. Each dead instance is claimed by deleting its row, so
/// two sweepers never close the same transfers twice.
pub async fn close_dead(
    db: &DatabaseConnection,
    audit: &Audit,
    dead_after: Duration,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let cutoff = OffsetDateTime::now_utc() - dead_after;
    let dead = instance::Entity::find()
        .filter(times::before(backend, instance::Column::SeenAt, cutoff))
        .all(db)
        .await?;
    let mut closed = 0;
    for gone in dead {
        let claimed = instance::Entity::delete_many()
            .filter(instance::Column::Id.eq(gone.id))
            .filter(times::before(backend, instance::Column::SeenAt, cutoff))
            .exec(db)
            .await?
            .rows_affected
            == 1;
        if !claimed {
            continue;
        }
        let mine = format!("%\"instance\":\"{}\"%", gone.id);
        let since = times::at_or_after(backend, audit_event::Column::OccurredAt, gone.started_at);
        let ended: HashSet<i64> = audit_event::Entity::find()
            .select_only()
            .column(audit_event::Column::Details)
            .filter(audit_event::Column::Action.eq("transfer.end"))
            .filter(audit_event::Column::Details.like(mine.clone()))
            .filter(since.clone())
            .into_tuple::<String>()
            .all(db)
            .await?
            .iter()
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok()?["of"].as_i64())
            .collect();
        let started = audit_event::Entity::find()
            .filter(audit_event::Column::Action.is_in(STREAMED))
            .filter(audit_event::Column::Outcome.eq("allowed"))
            .filter(audit_event::Column::Details.like(mine))
            .filter(since)
            .all(db)
            .await?;
        for access in started {
            if ended.contains(&access.seq) {
                continue;
            }
            let details: serde_json::Value =
                serde_json::from_str(&access.details).unwrap_or_default();
            let streamed = details["bytes"].as_u64().unwrap_or(0) > 0
                && details["head"] != true
                && details["not_modified"] != true;
            if !streamed {
                continue;
            }
            let actor = Actor::recorded(access.actor_id, &access.actor_role);
            let mut event = Event::new(actor, Action::TransferEnd, Outcome::Failed)
                .client(access.client_ip.clone(), access.user_agent.clone())
                .details(serde_json::json!({
                    "of": access.seq, "completed": false, "interrupted": true,
                    "source_failed": false, "instance": gone.id,
                    "reason": "the process serving it stopped",
                }));
            if let Some(case) = access.case_id {
                event = event.case(case);
            }
            if let Some(material) = access.material_id {
                event = event.material(material);
            }
            audit
                .record(event)
                .await
                .map_err(|e| DbErr::Custom(e.to_string()))?;
            closed += 1;
        }
    }
    Ok(closed)
}
