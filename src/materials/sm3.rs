//! SM3 (GB/T 32905) beside SHA-256 (issue 36). Measured at ingest in the store's one pass over
//! the bytes (`store::Stored::sm3`); for rows recorded before, computed from the stored object:
//! by `gc`, in the background when `serve` starts (`keep_filling`), or by the first bundle that
//! needs it (`ensure`). Written by object key, so a material, its redacted copy and a delivered
//! copy each get the digest of their own bytes.

use futures_util::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};
use sm3::{Digest, Sm3};

use crate::db::entities::{delivered_copy, material, redaction};
use crate::store::{ObjectKey, Store, StoreError};

/// Lower-case hex SM3 of `bytes`.
pub fn hex_of(bytes: &[u8]) -> String {
    hex::encode(Sm3::digest(bytes))
}

/// The SM3 of the object at `key`, streamed from the store (integrity work, never served).
pub async fn of_object(store: &Store, key: &ObjectKey) -> Result<String, StoreError> {
    let mut body = store.get(key, None).await?.body;
    let mut hasher = Sm3::new();
    while let Some(chunk) = body.next().await {
        hasher.update(&chunk?);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Writes `sm3` to whichever row holds the object at `object_key` and has none yet.
async fn write(db: &impl ConnectionTrait, object_key: &str, sm3: &str) -> Result<(), DbErr> {
    material::Entity::update_many()
        .col_expr(material::Column::Sm3, Expr::value(sm3))
        .filter(material::Column::ObjectKey.eq(object_key))
        .filter(material::Column::Sm3.is_null())
        .exec(db)
        .await?;
    redaction::Entity::update_many()
        .col_expr(redaction::Column::Sm3, Expr::value(sm3))
        .filter(redaction::Column::ObjectKey.eq(object_key))
        .filter(redaction::Column::Sm3.is_null())
        .exec(db)
        .await?;
    delivered_copy::Entity::update_many()
        .col_expr(delivered_copy::Column::Sm3, Expr::value(sm3))
        .filter(delivered_copy::Column::ObjectKey.eq(object_key))
        .filter(delivered_copy::Column::Sm3.is_null())
        .exec(db)
        .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The SM3 of an object whose row has none: computed from the store and kept.
pub async fn fill(
    db: &impl ConnectionTrait,
    store: &Store,
    object_key: &str,
) -> Result<String, FillError> {
    let key = ObjectKey::from_stored(object_key)?;
    let sm3 = of_object(store, &key).await?;
    write(db, object_key, &sm3).await?;
    Ok(sm3)
}

/// A material as shown (its own bytes or its redacted copy's) with its SM3 filled in.
pub async fn ensure(
    db: &impl ConnectionTrait,
    store: &Store,
    shown: &mut material::Model,
) -> Result<(), FillError> {
    if shown.sm3.is_none() {
        shown.sm3 = Some(fill(db, store, &shown.object_key).await?);
    }
    Ok(())
}

/// What a backfill did.
#[derive(Debug, Default)]
pub struct Filled {
    pub filled: usize,
    /// Objects missing or unreadable: left without SM3, reported.
    pub failed: Vec<(String, String)>,
}

/// Fills the SM3 of up to `max` materials and redacted copies recorded without one (`max` at
/// most `i64::MAX`: SQL limits are signed).
pub async fn backfill(db: &impl ConnectionTrait, store: &Store, max: u64) -> Result<Filled, DbErr> {
    let max = max.min(i64::MAX as u64);
    let mut keys: Vec<String> = material::Entity::find()
        .select_only()
        .column(material::Column::ObjectKey)
        .filter(material::Column::Sm3.is_null())
        .limit(max)
        .into_tuple()
        .all(db)
        .await?;
    keys.extend(
        redaction::Entity::find()
            .select_only()
            .column(redaction::Column::ObjectKey)
            .filter(redaction::Column::Sm3.is_null())
            .filter(redaction::Column::Sha256.is_not_null())
            .limit(max)
            .into_tuple::<String>()
            .all(db)
            .await?,
    );
    let mut done = Filled::default();
    for key in keys {
        match fill(db, store, &key).await {
            Ok(_) => done.filled += 1,
            Err(FillError::Db(e)) => return Err(e),
            Err(FillError::Store(e)) => done.failed.push((key, e.to_string())),
        }
    }
    Ok(done)
}

/// Run once by `serve` in the background: fills what rows recorded before issue 36 lack, a
/// hundred at a time, and stops when none is left (or only unreadable ones).
pub async fn keep_filling(db: sea_orm::DatabaseConnection, store: Store) {
    loop {
        match backfill(&db, &store, 100).await {
            Ok(f) if f.filled == 0 => {
                if !f.failed.is_empty() {
                    tracing::warn!(
                        objects = f.failed.len(),
                        "SM3 could not be computed for some stored objects; gc reports them"
                    );
                }
                return;
            }
            Ok(f) => tracing::info!(filled = f.filled, "SM3 filled in for earlier materials"),
            Err(e) => {
                tracing::warn!(error = %e, "filling in SM3 stopped");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hex_of;

    /// GB/T 32905-2016, Appendix A: the two example messages.
    #[test]
    fn sm3_matches_the_standards_examples() {
        assert_eq!(
            hex_of(b"abc"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            hex_of("abcd".repeat(16).as_bytes()),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
    }
}
