//! Walks the whole chain (in one read snapshot, streamed: constant memory) and names the first
//! sequence number at which a check of [`super::chain`] fails.

use futures_util::TryStreamExt;
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, IsolationLevel,
    QueryOrder, Statement, TransactionTrait,
};

use super::chain::{self, Fields, GENESIS};
use crate::db::entities::audit_event;

/// A chain that checked out.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub events: u64,
    /// The last event's hash (64 zeros for an empty log): publish it to anchor the chain.
    pub head_hash: String,
}

/// The first failing check.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at sequence number {seq}: {reason}")]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Broken(#[from] Broken),
    #[error("cannot read the audit log: {0}")]
    Db(#[from] DbErr),
}

fn broken(seq: i64, reason: impl Into<String>) -> VerifyError {
    VerifyError::Broken(Broken {
        seq,
        reason: reason.into(),
    })
}

/// Checks one event of the chain: the next number (`expected`), not beyond the head, linked to
/// the event before (`prev`, its hash) and matching its own hash.
fn check_link(
    row: &audit_event::Model,
    expected: i64,
    prev: &str,
    head: Option<&(i64, String)>,
) -> Result<(), VerifyError> {
    if row.seq > expected {
        return Err(broken(expected, format!("event {expected} is missing")));
    }
    if row.seq < expected {
        return Err(broken(row.seq, "sequence number repeated or out of order"));
    }
    if let Some((head_seq, _)) = head
        && row.seq > *head_seq
    {
        return Err(broken(
            row.seq,
            format!("event beyond the chain head ({head_seq})"),
        ));
    }
    if row.prev_hash != prev {
        return Err(broken(
            row.seq,
            format!("previous hash does not match event {}", row.seq - 1),
        ));
    }
    let fields = Fields {
        seq: row.seq,
        occurred_at: row.occurred_at,
        actor_id: row.actor_id,
        actor_role: &row.actor_role,
        action: &row.action,
        case_id: row.case_id,
        material_id: row.material_id,
        client_ip: row.client_ip.as_deref(),
        user_agent: row.user_agent.as_deref(),
        outcome: &row.outcome,
        details: &row.details,
    };
    if chain::hash(&row.prev_hash, &fields).as_deref() != Some(row.hash.as_str()) {
        return Err(broken(
            row.seq,
            "the event's content does not match its hash",
        ));
    }
    Ok(())
}

#[tracing::instrument(skip_all, err)]
pub async fn verify(db: &DatabaseConnection) -> Result<Verified, VerifyError> {
    let backend = db.get_database_backend();
    // One snapshot: rows and head as of one moment, while writers go on appending.
    let txn = match backend {
        DbBackend::Postgres => {
            db.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await?
        }
        _ => db.begin().await?,
    };
    let head = txn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT seq, hash FROM audit_chain_head WHERE id = 1",
        ))
        .await?;
    let head: Option<(i64, String)> = match head {
        Some(row) => Some((row.try_get("", "seq")?, row.try_get("", "hash")?)),
        None => None,
    };

    let mut rows = audit_event::Entity::find()
        .order_by_asc(audit_event::Column::Seq)
        .stream(&txn)
        .await?;
    let mut last_seq = 0i64;
    let mut prev = GENESIS.to_owned();
    while let Some(row) = rows.try_next().await? {
        check_link(&row, last_seq + 1, &prev, head.as_ref())?;
        last_seq = row.seq;
        prev = row.hash;
    }
    drop(rows);
    txn.commit().await?;

    match head {
        None if last_seq > 0 => Err(broken(last_seq, "the chain head record is missing")),
        None => Ok(Verified {
            events: 0,
            head_hash: GENESIS.to_owned(),
        }),
        Some((head_seq, _)) if last_seq < head_seq => Err(broken(
            last_seq + 1,
            format!(
                "event {} is missing (the chain head is at {head_seq})",
                last_seq + 1
            ),
        )),
        Some((head_seq, head_hash)) if head_hash != prev => Err(broken(
            head_seq,
            "the last event does not match the chain head",
        )),
        Some(_) => Ok(Verified {
            events: last_seq as u64,
            head_hash: prev,
        }),
    }
}

/// A verification checked against the newest signed checkpoint outside the database.
#[derive(Debug)]
pub struct Anchored {
    pub verified: Verified,
    /// The newest checkpoint after this run (this run writes one when the chain has grown).
    pub checkpoint: Option<super::checkpoint::Checkpoint>,
    /// The checkpoints could not be read or written (the chain itself verified).
    pub checkpoint_problem: Option<String>,
    /// The signatures the newest checkpoint carries, each checked: `Ed25519`, and
    /// `SM2-with-SM3` where it has one (checkpoints of before issue 36 have none).
    pub checkpoint_algorithms: Vec<&'static str>,
    /// The restores from backups the chain records (`system.restore`), oldest first.
    pub restores: Vec<super::restored::Restore>,
}

/// [`verify`], then the chain must reach and match the newest signed checkpoint in the store
/// (deleting the newest events and rewinding the head is found here) — unless a signed,
/// anchored restore from a backup explains the difference ([`super::restored::explains`]);
/// then a checkpoint of the verified head is written.
pub async fn verify_anchored(
    db: &DatabaseConnection,
    store: &crate::store::Store,
    key: &crate::signing::ManifestKey,
) -> Result<Anchored, VerifyError> {
    use super::checkpoint;
    let verified = verify(db).await?;
    let restores = super::restored::find(db, store, key).await?;
    let newest = match checkpoint::latest(store, key).await {
        Ok(newest) => newest,
        Err(e) => {
            return Ok(Anchored {
                verified,
                checkpoint: None,
                checkpoint_problem: Some(e.to_string()),
                checkpoint_algorithms: Vec::new(),
                restores,
            });
        }
    };
    if let Some(cp) = &newest
        && let Some((seq, reason)) = checkpoint::disagreement(db, verified.events, cp).await?
        && super::restored::explains(&restores, cp).is_none()
    {
        return Err(broken(seq, reason));
    }
    let events = verified.events as i64;
    if newest.as_ref().is_some_and(|cp| cp.seq >= events) || events == 0 {
        let checkpoint_algorithms = algorithms(store, newest.as_ref()).await;
        return Ok(Anchored {
            verified,
            checkpoint: newest,
            checkpoint_problem: None,
            checkpoint_algorithms,
            restores,
        });
    }
    match checkpoint::write(store, key, events, &verified.head_hash).await {
        Ok(cp) => Ok(Anchored {
            verified,
            checkpoint_algorithms: algorithms(store, Some(&cp)).await,
            checkpoint: Some(cp),
            checkpoint_problem: None,
            restores,
        }),
        Err(e) => Ok(Anchored {
            verified,
            checkpoint_algorithms: algorithms(store, newest.as_ref()).await,
            checkpoint: newest,
            checkpoint_problem: Some(e.to_string()),
            restores,
        }),
    }
}

/// The signatures `checkpoint` carries (its reading checked each): Ed25519, and SM2 beside it.
async fn algorithms(
    store: &crate::store::Store,
    checkpoint: Option<&super::checkpoint::Checkpoint>,
) -> Vec<&'static str> {
    let Some(cp) = checkpoint else {
        return Vec::new();
    };
    let mut out = vec!["Ed25519"];
    if super::checkpoint::has_sm2(store, cp.seq)
        .await
        .unwrap_or(false)
    {
        out.push(crate::signing::sm2_key::ALGORITHM);
    }
    out
}
