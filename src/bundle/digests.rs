//! What a bundle states of each file beyond the material row (issue 36): SM3 filled in before
//! the layout for rows recorded before it was measured, the `SHA256SUMS` and `SM3SUMS`
//! listings, and the pages of a material where known.

use std::collections::HashMap;

use uuid::Uuid;

use super::Delivered;
use crate::db::entities::material;
use crate::error::AppError;
use crate::store::Store;

/// Gives every chosen material (as shown) and delivered copy its SM3 before the bundle is laid
/// out: those recorded before SM3 was measured have it computed from the store now, and kept.
pub async fn prepare(
    db: &sea_orm::DatabaseConnection,
    store: &Store,
    chosen: &mut [material::Model],
    delivered: &mut HashMap<Uuid, Delivered>,
) -> Result<(), AppError> {
    use crate::materials::sm3::{FillError, ensure, fill};
    let failed = |e: FillError| match e {
        FillError::Db(e) => AppError::from(e),
        FillError::Store(e) => AppError::Unavailable {
            part: "store",
            cause: Some(Box::new(e)),
        },
    };
    for m in chosen.iter_mut() {
        ensure(db, store, m).await.map_err(failed)?;
    }
    for d in delivered.values_mut() {
        if d.sm3.is_none() {
            d.sm3 = Some(fill(db, store, d.key.as_str()).await.map_err(failed)?);
        }
    }
    Ok(())
}

/// The (SHA-256, SM3) of the bytes a bundle holds for `m`: its delivered copy's, or its own.
pub fn of_entry<'a>(
    m: &'a material::Model,
    delivered: &'a HashMap<Uuid, Delivered>,
) -> Result<(&'a str, &'a str), AppError> {
    let (sha, sm3) = match delivered.get(&m.id) {
        Some(d) => (&d.sha256, &d.sm3),
        None => (&m.sha256, &m.sm3),
    };
    let sm3 = sm3
        .as_deref()
        .ok_or_else(|| AppError::internal("a bundle's file has no SM3 (prepare first)"))?;
    Ok((sha, sm3))
}

/// A sums file (`sha256sum`/`sm3sum` format: hex, two spaces, path) of `lines`.
pub fn sums<'a>(lines: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut out = String::new();
    for (hash, path) in lines {
        out.push_str(hash);
        out.push_str("  ");
        out.push_str(path);
        out.push('\n');
    }
    out.into_bytes()
}

/// The pages of a material where known without reading it: a picture is one page; a PDF's
/// count is not recorded (left blank).
pub fn pages(m: &material::Model, delivered: Option<&Delivered>) -> Option<u32> {
    let content_type = delivered.map_or(m.content_type.as_str(), |d| d.content_type.as_str());
    content_type.starts_with("image/").then_some(1)
}
