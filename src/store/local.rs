//! Reads from a directory store: big blocks in one blocking task, and reads that end with an
//! error when they stop short.

use super::*;

/// How much of a local file one blocking read takes.
const LOCAL_CHUNK: u64 = 512 * 1024;

/// Whether a backend's error (or any error under it) is about the requested range: backends
/// report a range past the end in their own words (S3: 416 "InvalidRange"; the memory store:
/// "StartTooLarge" inside a generic error).
pub(super) fn about_the_range(e: &object_store::Error) -> bool {
    let mut next: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = next {
        if err.to_string().to_ascii_lowercase().contains("range") {
            return true;
        }
        next = err.source();
    }
    false
}

/// A local object (or `range` of it, clamped to its size like object_store does): opening it,
/// reading its size and its first block happen in one blocking task, so a small file costs one
/// hand-off to the blocking pool, not two.
pub(super) async fn local_get(
    fs: &LocalFileSystem,
    key: &ObjectKey,
    range: Option<Range<u64>>,
) -> Result<Fetched, StoreError> {
    use std::io::{Read, Seek, SeekFrom};
    let path = fs.path_to_filesystem(&key.0)?;
    let name = key.as_str().to_owned();
    let opened = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let mut file = std::fs::File::open(&path)?;
        let total = file.metadata()?.len();
        let range = match range {
            None => 0..total,
            Some(r) if r.start >= total => return Ok(Err(total)),
            Some(r) => r.start..r.end.min(total),
        };
        file.seek(SeekFrom::Start(range.start))?;
        let want = (range.end - range.start).min(LOCAL_CHUNK);
        let mut first = Vec::with_capacity(want as usize);
        (&mut file).take(want).read_to_end(&mut first)?;
        Ok(Ok((file, total, range, first)))
    })
    .await
    .map_err(|e| local_failure(Box::new(e)))?;
    let (file, total_size, range, first) = match opened {
        Ok(Ok(found)) => found,
        Ok(Err(_)) => return Err(StoreError::RangeNotSatisfiable),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::NotFound(name));
        }
        Err(e) => return Err(local_failure(Box::new(e))),
    };
    let after = range.start + first.len() as u64;
    let head =
        futures_util::stream::once(async move { Ok::<_, object_store::Error>(Bytes::from(first)) });
    // A short first block means the file ended early: nothing more to read, `exact` reports it.
    let raw = if after < range.end && after > range.start {
        head.chain(local_chunks(file, after..range.end)).boxed()
    } else {
        head.boxed()
    };
    Ok(Fetched {
        total_size,
        body: exact(raw, range.end - range.start),
        range,
    })
}

pub(super) fn local_failure(e: Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    StoreError::Backend(object_store::Error::Generic {
        store: "LocalFileSystem",
        source: e,
    })
}

/// `range` of a local file in 512 KiB blocking reads. A file that ends early yields an empty
/// chunk, which [`exact`] turns into [`StoreError::Truncated`].
pub(super) fn local_chunks(
    file: std::fs::File,
    range: Range<u64>,
) -> BoxStream<'static, Result<Bytes, object_store::Error>> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: e,
    };
    futures_util::stream::try_unfold(
        (file, range.start, range.end, false),
        move |(file, pos, end, positioned)| async move {
            if pos >= end {
                return Ok(None);
            }
            let read = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                use std::io::{Read, Seek, SeekFrom};
                let mut file = file;
                if !positioned {
                    file.seek(SeekFrom::Start(pos))?;
                }
                let want = (end - pos).min(LOCAL_CHUNK);
                // read_to_end fills the spare capacity directly: no zeroing of 512 KiB first.
                let mut buf = Vec::with_capacity(want as usize);
                (&mut file).take(want).read_to_end(&mut buf)?;
                Ok((file, buf))
            })
            .await
            .map_err(|e| failed(Box::new(e)))?;
            let (file, buf) = read.map_err(|e| failed(Box::new(e)))?;
            // Nothing read: the file is shorter than promised; stop after this (empty) chunk.
            let next = if buf.is_empty() {
                end
            } else {
                pos + buf.len() as u64
            };
            Ok(Some((Bytes::from(buf), (file, next, end, true))))
        },
    )
    .boxed()
}

/// Passes a read through, but ends it with an error if it stops short of `expected` bytes or
/// stalls on empty chunks: object_store's local reader yields empty chunks forever when a file
/// shrinks under it, which would spin a worker and leave the client waiting.
pub(super) fn exact(
    inner: BoxStream<'static, Result<Bytes, object_store::Error>>,
    expected: u64,
) -> BoxStream<'static, Result<Bytes, StoreError>> {
    futures_util::stream::unfold(
        (inner, 0u64, false),
        move |(mut inner, got, done)| async move {
            if done {
                return None;
            }
            match inner.next().await {
                Some(Ok(chunk)) if chunk.is_empty() && got < expected => Some((
                    Err(StoreError::Truncated { got, expected }),
                    (inner, got, true),
                )),
                Some(Ok(chunk)) => {
                    let got = got + chunk.len() as u64;
                    Some((Ok(chunk), (inner, got, false)))
                }
                Some(Err(e)) => Some((Err(StoreError::Backend(e)), (inner, got, true))),
                None if got < expected => Some((
                    Err(StoreError::Truncated { got, expected }),
                    (inner, got, true),
                )),
                None => None,
            }
        },
    )
    .boxed()
}
