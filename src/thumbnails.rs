//! Thumbnails of image evidence for the case page. Made on first request from the stored original
//! — decoded under hard limits, two at a time per instance — and kept in the store under
//! `thumbnails/` (derived data: never garbage, and `gc` only looks under `cases/`), so every
//! instance serves the same one.

use std::io::Cursor;
use std::sync::LazyLock;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path;

use crate::db::entities::material;
use crate::store::{ObjectKey, Store, StoreError};

/// The longest side of a thumbnail, in pixels: twice the 96 px the case page shows it at, for
/// high-density screens.
pub const SIDE: u32 = 192;
/// Originals above this are not thumbnailed (the page shows the kind's label instead).
const MAX_SOURCE: u64 = 48 * 1024 * 1024;

/// Decoding is CPU- and memory-heavy: at most two at a time in one process.
static DECODERS: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(2));

#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("no thumbnail for this material")]
    NotApplicable,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the image cannot be decoded: {0}")]
    Decode(String),
}

/// Whether the case page shows a thumbnail for `m`.
pub fn applies(m: &material::Model) -> bool {
    matches!(
        m.content_type.as_str(),
        "image/jpeg" | "image/png" | "image/webp" | "image/gif"
    ) && (m.size as u64) <= MAX_SOURCE
}

fn key_of(m: &material::Model) -> Result<ObjectKey, StoreError> {
    // The size is in the name: thumbnails of another size (320 px before) are not served. So
    // are the first bytes of what it shows: a redacted copy (issue 34) has a thumbnail of its
    // own, and the original's is never shown in its place.
    let source = m.sha256.get(..16).unwrap_or("");
    ObjectKey::from_stored(
        Path::from(format!(
            "thumbnails/{}/{}-{source}-{SIDE}.jpg",
            m.case_id, m.id
        ))
        .as_ref(),
    )
}

/// The JPEG thumbnail of `m`, made and stored if it does not exist yet.
pub async fn get_or_make(store: &Store, m: &material::Model) -> Result<Bytes, ThumbnailError> {
    if !applies(m) {
        return Err(ThumbnailError::NotApplicable);
    }
    let key = key_of(m)?;
    match read_all(store, &key, 4 * 1024 * 1024).await {
        Ok(bytes) => return Ok(bytes),
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let _permit = DECODERS
        .acquire()
        .await
        .map_err(|e| ThumbnailError::Decode(e.to_string()))?;
    let original = read_all(store, &ObjectKey::from_stored(&m.object_key)?, MAX_SOURCE).await?;
    let thumbnail = tokio::task::spawn_blocking(move || make(&original))
        .await
        .map_err(|e| ThumbnailError::Decode(e.to_string()))??;
    let size = thumbnail.len();
    let body = futures_util::stream::once({
        let t = thumbnail.clone();
        async move { Ok::<_, std::io::Error>(t) }
    });
    store.put_stream(&key, body, size as u64 + 1).await?;
    Ok(thumbnail)
}

async fn read_all(store: &Store, key: &ObjectKey, limit: u64) -> Result<Bytes, StoreError> {
    // Read to draw a thumbnail: the gate on originals lets it, whoever sees the thumbnail.
    let fetched = store
        .open_evidence(key, None, crate::store::Purpose::Render, false)
        .await?;
    if fetched.total_size > limit {
        return Err(StoreError::TooLarge { limit });
    }
    let mut out = Vec::with_capacity(fetched.total_size as usize);
    let mut body = fetched.body;
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(Bytes::from(out))
}

/// Decodes under limits (no image wider or taller than 16 384 px, 512 MiB of pixels at most),
/// shrinks to fit `SIDE`, and encodes as JPEG.
fn make(original: &[u8]) -> Result<Bytes, ThumbnailError> {
    let mut reader = image::ImageReader::new(Cursor::new(original))
        .with_guessed_format()
        .map_err(|e| ThumbnailError::Decode(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| ThumbnailError::Decode(e.to_string()))?;
    let small = image::DynamicImage::ImageRgb8(image.thumbnail(SIDE, SIDE).to_rgb8());
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&small)
        .map_err(|e| ThumbnailError::Decode(e.to_string()))?;
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_image_becomes_a_small_jpeg() {
        let big = image::RgbImage::from_fn(1600, 1200, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(big)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let thumb = make(&png).unwrap();
        let back = image::load_from_memory(&thumb).unwrap();
        assert_eq!(
            (back.width(), back.height()),
            (192, 144),
            "twice the 96 px it is shown at"
        );
        assert_eq!(&thumb[..3], &[0xFF, 0xD8, 0xFF]);
        assert!(matches!(
            make(b"not an image"),
            Err(ThumbnailError::Decode(_))
        ));
    }
}
