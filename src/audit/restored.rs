//! A restore from a backup, as the chain records it. A restore rewinds the chain to the backup's
//! head, so the signed checkpoints in the store may be ahead of it — exactly what deleting the
//! newest events looks like. The difference is a `system.restore` event, appended right after
//! the backup's head, that names the newest checkpoint the store held (the events lost: how
//! many, between which times) and is itself anchored by a checkpoint signed with the portal's
//! key. `audit verify` accepts a checkpoint ahead of the chain only when such an event explains
//! it ([`explains`]); any other gap keeps the tampering verdict.

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::checkpoint::{self, Checkpoint};
use super::{Action, Actor, Event, Outcome};
use crate::db::entities::audit_event;
use crate::db::times::CST;

/// What a `system.restore` event's details hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    pub backup: BackupHead,
    /// The newest signed checkpoint the store held when the restore began, if any.
    pub checkpoint: Option<Seen>,
    /// The events recorded after the backup that the restore lost, when a checkpoint shows them.
    pub lost: Option<Lost>,
}

/// The backup restored: its name, when it was taken and the chain head it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHead {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub taken_at: OffsetDateTime,
    pub seq: i64,
    pub hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub seq: i64,
    pub hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    pub events: i64,
    pub first_seq: i64,
    pub last_seq: i64,
    /// The backup was taken at…
    #[serde(with = "time::serde::rfc3339")]
    pub after: OffsetDateTime,
    /// …and the newest checkpoint showing the lost events signed at.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

impl Details {
    /// The details of a restore of `backup` into a store whose newest checkpoint is `seen`.
    pub fn new(backup: BackupHead, seen: Option<&Checkpoint>) -> Self {
        let checkpoint = seen.map(|cp| Seen {
            seq: cp.seq,
            hash: cp.hash.clone(),
            at: cp.at,
        });
        let lost = seen.filter(|cp| cp.seq > backup.seq).map(|cp| Lost {
            events: cp.seq - backup.seq,
            first_seq: backup.seq + 1,
            last_seq: cp.seq,
            after: backup.taken_at,
            until: cp.at,
        });
        Details {
            backup,
            checkpoint,
            lost,
        }
    }

    /// The event to record.
    pub fn event(&self) -> Event {
        Event::new(Actor::SYSTEM, Action::SystemRestore, Outcome::Allowed)
            .details(serde_json::to_value(self).unwrap_or_default())
    }
}

/// A restore found in the chain.
#[derive(Clone, Debug)]
pub struct Restore {
    pub seq: i64,
    pub at: OffsetDateTime,
    pub details: Details,
    /// A checkpoint signed with the portal's key holds this very event.
    pub anchored: bool,
}

fn cst(t: OffsetDateTime) -> String {
    let t = t.to_offset(CST);
    format!(
        "{} {:02}:{:02}:{:02} (UTC+8)",
        t.date(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl std::fmt::Display for Restore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backup = &self.details.backup;
        let (taken, event, at) = (cst(backup.taken_at), backup.seq, cst(self.at));
        match &self.details.lost {
            Some(lost) => write!(
                f,
                "restored from a backup of {taken} (event {event}); events after it were lost in the restore of {at}: {} event(s), {}–{}, recorded between {} and {}",
                lost.events,
                lost.first_seq,
                lost.last_seq,
                cst(lost.after),
                cst(lost.until)
            )?,
            None => write!(
                f,
                "restored from a backup of {taken} (event {event}) in the restore of {at}; no signed checkpoint in the store showed later events (any recorded after the backup were lost)"
            )?,
        }
        if !self.anchored {
            write!(
                f,
                " — NOT anchored: no checkpoint signed with this portal's key holds event {}",
                self.seq
            )?;
        }
        Ok(())
    }
}

/// Every `system.restore` event of the chain, oldest first, and whether each is anchored.
/// A store that cannot be read leaves them unanchored.
pub async fn find(
    db: &DatabaseConnection,
    store: &crate::store::Store,
    key: &crate::signing::ManifestKey,
) -> Result<Vec<Restore>, DbErr> {
    let rows = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq(Action::SystemRestore.as_str()))
        .order_by_asc(audit_event::Column::Seq)
        .all(db)
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let Ok(details) = serde_json::from_str::<Details>(&row.details) else {
            continue; // not one the portal wrote: explains nothing
        };
        if row.actor_role != Actor::SYSTEM.role
            || row.outcome != Outcome::Allowed.as_str()
            || row.seq != details.backup.seq + 1
            || row.prev_hash != details.backup.hash
        {
            continue;
        }
        let anchored = matches!(
            checkpoint::at(store, key, row.seq).await,
            Ok(Some(cp)) if cp.hash == row.hash
        );
        out.push(Restore {
            seq: row.seq,
            at: row.occurred_at,
            details,
            anchored,
        });
    }
    Ok(out)
}

/// The anchored restore that explains a checkpoint ahead of (or different from) the chain: one
/// that saw it, or an older one of the history it replaced, before the restore.
pub fn explains<'a>(restores: &'a [Restore], cp: &Checkpoint) -> Option<&'a Restore> {
    restores.iter().find(|r| {
        let Some(seen) = &r.details.checkpoint else {
            return false;
        };
        r.anchored
            && cp.seq > r.details.backup.seq
            && (cp.seq < seen.seq || (cp.seq == seen.seq && cp.hash == seen.hash))
            && cp.at <= r.at
    })
}

/// Whether an anchored restore in the chain explains the checkpoint `cp` being ahead of (or
/// different from) the chain: for checks that look only at the newest checkpoint.
pub async fn explained(
    db: &DatabaseConnection,
    store: &crate::store::Store,
    key: &crate::signing::ManifestKey,
    cp: &Checkpoint,
) -> Result<bool, DbErr> {
    Ok(explains(&find(db, store, key).await?, cp).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn cp(seq: i64, hash: &str, at: OffsetDateTime) -> Checkpoint {
        Checkpoint {
            kind: "audit-checkpoint".into(),
            seq,
            hash: hash.into(),
            at,
        }
    }

    fn restore(seen: Option<&Checkpoint>, anchored: bool) -> Restore {
        let backup = BackupHead {
            id: "20261207T010000.000Z".into(),
            taken_at: datetime!(2026-12-07 01:00 UTC),
            seq: 10,
            hash: "b".repeat(64),
        };
        Restore {
            seq: 11,
            at: datetime!(2026-12-07 03:00 UTC),
            details: Details::new(backup, seen),
            anchored,
        }
    }

    #[test]
    fn only_an_anchored_restore_that_saw_the_checkpoint_explains_it() {
        let seen = cp(14, &"c".repeat(64), datetime!(2026-12-07 02:00 UTC));
        let lost = Details::new(restore(None, true).details.backup, Some(&seen)).lost;
        assert_eq!(
            lost.as_ref().map(|l| (l.events, l.first_seq)),
            Some((4, 11))
        );
        let r = [restore(Some(&seen), true)];
        assert!(explains(&r, &seen).is_some(), "the checkpoint it named");
        let older = cp(12, &"d".repeat(64), datetime!(2026-12-07 01:30 UTC));
        assert!(
            explains(&r, &older).is_some(),
            "one of the history it replaced"
        );
        let newer = cp(15, &"e".repeat(64), datetime!(2026-12-07 02:30 UTC));
        assert!(
            explains(&r, &newer).is_none(),
            "a checkpoint it did not see"
        );
        let forged = cp(14, &"f".repeat(64), datetime!(2026-12-07 02:00 UTC));
        assert!(
            explains(&r, &forged).is_none(),
            "another hash at the named event"
        );
        let later = cp(13, &"d".repeat(64), datetime!(2026-12-07 04:00 UTC));
        assert!(explains(&r, &later).is_none(), "written after the restore");
        let before = cp(9, &"d".repeat(64), datetime!(2026-12-07 00:30 UTC));
        assert!(
            explains(&r, &before).is_none(),
            "inside the backup: no excuse"
        );
        assert!(
            explains(&[restore(Some(&seen), false)], &seen).is_none(),
            "not anchored"
        );
        assert!(
            explains(&[restore(None, true)], &seen).is_none(),
            "saw no checkpoint"
        );
    }
}
