//! Checkpoints anchor the chain outside the database. A checkpoint is the chain head (sequence
//! number and hash) at a moment, signed with the portal's manifest key (a JWS, like a bundle's
//! manifest) and kept in the object store. Someone who can rewrite the database — delete the
//! newest events and rewind the head — cannot rewrite the store's checkpoints or forge the
//! signature: `audit verify` then finds the chain shorter than a checkpoint, or different at it.
//!
//! Where the installation has an SM2 key (every running portal does), the same payload is also
//! signed with SM2 (`signing::sm2_key`, DER) into `audit/sm2-checkpoints/<seq>.sig` beside it;
//! reading a checkpoint checks that signature when it is there (checkpoints written before
//! issue 36 have none).
//!
//! Written after every successful verification and, by each running instance, every few
//! minutes while the chain grows.

use bytes::Bytes;
use sea_orm::{ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::entities::audit_event;
use crate::signing::ManifestKey;
use crate::store::{ObjectKey, Store, StoreError};

const PREFIX: &str = "audit/checkpoints";

/// A signed statement of the chain head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Always `"audit-checkpoint"`: a signed manifest is not a checkpoint.
    #[serde(rename = "type")]
    pub kind: String,
    pub seq: i64,
    pub hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot reach the checkpoint store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot read the audit log: {0}")]
    Db(#[from] DbErr),
    #[error("checkpoint {0} is not signed by this portal's key")]
    Forged(String),
    #[error("checkpoint {0}: its SM2 signature does not verify with this portal's SM2 key")]
    ForgedSm2(String),
    #[error("cannot sign the checkpoint: {0}")]
    Sign(String),
}

/// Signs and stores a checkpoint of `seq`/`hash`.
pub async fn write(
    store: &Store,
    key: &ManifestKey,
    seq: i64,
    hash: &str,
) -> Result<Checkpoint, CheckpointError> {
    let checkpoint = Checkpoint {
        kind: "audit-checkpoint".into(),
        seq,
        hash: hash.to_owned(),
        at: OffsetDateTime::now_utc(),
    };
    let payload =
        serde_json::to_vec(&checkpoint).map_err(|e| CheckpointError::Sign(e.to_string()))?;
    let jws = key
        .sign(&payload)
        .map_err(|e| CheckpointError::Sign(e.to_string()))?;
    // The SM2 signature first: a checkpoint is only read once its JWS is there.
    if let Some(sm2) = key.sm2() {
        let signature = sm2
            .sign(&payload)
            .map_err(|e| CheckpointError::Sign(e.to_string()))?;
        store
            .put_small(&sm2_object(seq)?, Bytes::from(signature))
            .await?;
    }
    store
        .put_small(&ObjectKey::audit_checkpoint(seq), Bytes::from(jws))
        .await?;
    Ok(checkpoint)
}

/// Where the SM2 signature of checkpoint `seq` is kept.
fn sm2_object(seq: i64) -> Result<ObjectKey, StoreError> {
    ObjectKey::from_stored(&format!("audit/sm2-checkpoints/{seq:020}.sig"))
}

/// Whether checkpoint `seq` has an SM2 signature beside it (checked when it was read).
pub async fn has_sm2(store: &Store, seq: i64) -> Result<bool, CheckpointError> {
    match store.get_small(&sm2_object(seq)?).await {
        Ok(_) => Ok(true),
        Err(StoreError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The newest checkpoint in the store, its signature checked.
pub async fn latest(
    store: &Store,
    key: &ManifestKey,
) -> Result<Option<Checkpoint>, CheckpointError> {
    let Some(newest) = store.keys_under(PREFIX).await?.into_iter().max() else {
        return Ok(None);
    };
    read(store, key, &ObjectKey::from_stored(&newest)?)
        .await
        .map(Some)
}

/// The checkpoint of `seq`, if the store has one, its signature checked.
pub async fn at(
    store: &Store,
    key: &ManifestKey,
    seq: i64,
) -> Result<Option<Checkpoint>, CheckpointError> {
    match read(store, key, &ObjectKey::audit_checkpoint(seq)).await {
        Ok(cp) => Ok(Some(cp)),
        Err(CheckpointError::Store(StoreError::NotFound(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn read(
    store: &Store,
    key: &ManifestKey,
    object: &ObjectKey,
) -> Result<Checkpoint, CheckpointError> {
    let name = object.as_str().to_owned();
    let jws = store.get_small(object).await?;
    let payload = key
        .verify(&String::from_utf8_lossy(&jws))
        .map_err(|_| CheckpointError::Forged(name.clone()))?;
    let checkpoint: Checkpoint =
        serde_json::from_slice(&payload).map_err(|_| CheckpointError::Forged(name.clone()))?;
    if checkpoint.kind != "audit-checkpoint" {
        return Err(CheckpointError::Forged(name));
    }
    match store.get_small(&sm2_object(checkpoint.seq)?).await {
        // Checked where this reader has the SM2 key (the health check reads with Ed25519 alone).
        Ok(signature) => {
            if let Some(public) = key.sm2_public()
                && public.verify(&payload, &signature).is_err()
            {
                return Err(CheckpointError::ForgedSm2(name));
            }
        }
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(checkpoint)
}

/// What a verified chain says about a checkpoint: `None` if it agrees, else why not.
pub async fn disagreement(
    db: &DatabaseConnection,
    events: u64,
    checkpoint: &Checkpoint,
) -> Result<Option<(i64, String)>, DbErr> {
    let at = checkpoint.at.to_offset(crate::db::times::CST);
    if checkpoint.seq > events as i64 {
        return Ok(Some((
            events as i64 + 1,
            format!(
                "events {}–{} are missing: the signed checkpoint of {at} recorded the chain at {} (hash {})",
                events + 1,
                checkpoint.seq,
                checkpoint.seq,
                checkpoint.hash
            ),
        )));
    }
    if checkpoint.seq == 0 {
        return Ok(None);
    }
    let event = audit_event::Entity::find()
        .filter(audit_event::Column::Seq.eq(checkpoint.seq))
        .one(db)
        .await?;
    Ok(match event {
        Some(e) if e.hash == checkpoint.hash => None,
        _ => Some((
            checkpoint.seq,
            format!(
                "event {} differs from the signed checkpoint of {at}",
                checkpoint.seq
            ),
        )),
    })
}

/// The chain head as the database has it now.
pub async fn head(db: &DatabaseConnection) -> Result<Option<(i64, String)>, DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend: DbBackend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT seq, hash FROM audit_chain_head WHERE id = 1",
        ))
        .await?;
    Ok(match row {
        Some(r) => Some((r.try_get("", "seq")?, r.try_get("", "hash")?)),
        None => None,
    })
}

/// Runs for the life of the process: every `every`, if the chain has grown since the last
/// checkpoint this process wrote, writes one of the current head.
pub async fn keep_anchoring(
    db: DatabaseConnection,
    store: Store,
    key: std::sync::Arc<ManifestKey>,
    every: std::time::Duration,
) {
    let mut last = 0i64;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match head(&db).await {
            Ok(Some((seq, hash))) if seq > last => match write(&store, &key, seq, &hash).await {
                Ok(_) => last = seq,
                Err(e) => tracing::warn!(error = %e, "cannot write an audit checkpoint"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the audit chain head"),
        }
    }
}
