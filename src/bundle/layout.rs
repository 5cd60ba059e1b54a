//! The zip's layout: its structure written by the `zip` crate into a [`LayoutSink`] with a hole
//! for each object's data, and the stream that fills the holes from the store.

use super::*;

/// One entry of a bundle.
pub enum Entry {
    /// Evidence: stored, its bytes come from the store when served.
    Object {
        path: String,
        key: ObjectKey,
        size: u64,
        crc32: u32,
        modified: zip::DateTime,
    },
    /// Small generated text: deflated, kept in memory.
    Generated {
        path: String,
        bytes: Vec<u8>,
        modified: zip::DateTime,
    },
}

/// The bytes of a bundle as a sequence of parts: literal (headers, directory, generated files)
/// or a whole stored object.
pub struct Layout {
    pub(super) parts: Vec<(u64, Part)>,
    pub total: u64,
}

#[derive(Clone)]
pub(super) enum Part {
    Literal(Bytes),
    Object { key: ObjectKey, len: u64 },
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Part::Literal(b) => b.len() as u64,
            Part::Object { len, .. } => *len,
        }
    }
}

impl Layout {
    /// Checks, before anything is sent, that every object of the bundle is in the store with
    /// the size the layout expects (a `HEAD` per object, 16 at a time): a bundle is answered
    /// whole or refused cleanly, never cut after its status line.
    pub async fn check_objects(&self, store: &crate::store::Store) -> Result<(), StoreError> {
        use futures_util::{StreamExt, TryStreamExt};
        futures_util::stream::iter(self.parts.iter().filter_map(|(_, p)| match p {
            Part::Object { key, len } => Some((key, *len)),
            Part::Literal(_) => None,
        }))
        .map(|(key, len)| async move {
            let size = store.size(key).await?;
            if size == len {
                Ok(())
            } else {
                Err(StoreError::Truncated {
                    got: size,
                    expected: len,
                })
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await
    }

    /// Has the `zip` crate write the archive's structure, with a hole for each object's data.
    pub fn build(entries: Vec<Entry>) -> zip::result::ZipResult<Layout> {
        let mut zip = ZipWriter::new(LayoutSink::default());
        let mut keys = Vec::new();
        for entry in entries {
            match entry {
                Entry::Object {
                    path,
                    key,
                    size,
                    crc32,
                    modified,
                } => {
                    let options = SimpleFileOptions::default()
                        .compression_method(CompressionMethod::Stored)
                        .last_modified_time(modified)
                        .unix_permissions(0o644)
                        .large_file(size >= u64::from(u32::MAX));
                    zip.start_file(path, options)?;
                    // SAFETY (both calls): the data of this entry is written "independently" —
                    // a hole of exactly `size` bytes that the served response fills with the
                    // stored object, whose size and CRC-32 were measured while it was uploaded
                    // (and the store read is checked to deliver exactly `size` bytes). The sink
                    // is left at the end of that hole, where the `ZipWriter` expects it.
                    unsafe {
                        let sink = zip.get_mut().ok_or(zip::result::ZipError::Io(
                            std::io::Error::other("the zip writer has no sink"),
                        ))?;
                        sink.hole(keys.len(), size)?;
                        zip.set_file_metadata(size, crc32)?;
                    }
                    keys.push((key, size));
                }
                Entry::Generated {
                    path,
                    bytes,
                    modified,
                } => {
                    let options = SimpleFileOptions::default()
                        .compression_method(CompressionMethod::Deflated)
                        .last_modified_time(modified)
                        .unix_permissions(0o644);
                    zip.start_file(path, options)?;
                    zip.write_all(&bytes)?;
                }
            }
        }
        let sink = zip.finish()?;
        let mut parts = Vec::with_capacity(sink.pieces.len());
        let mut total = 0u64;
        for (start, piece) in sink.starts.iter().zip(sink.pieces) {
            let part = match piece {
                Piece::Bytes(v) => Part::Literal(Bytes::from(v)),
                Piece::Hole { object, len } => Part::Object {
                    key: keys[object].0.clone(),
                    len,
                },
            };
            total = start + part.len();
            if part.len() > 0 {
                parts.push((*start, part));
            }
        }
        Ok(Layout { parts, total })
    }

    /// The bytes in `range` (end exclusive, within `0..total`): literal parts from memory,
    /// objects opened (for a bundle, through the gate on originals: `originals` is whether the
    /// person may receive them) only when their turn comes.
    pub fn stream(
        &self,
        store: Store,
        range: Range<u64>,
        originals: bool,
    ) -> BoxStream<'static, Result<Bytes, StoreError>> {
        let mut segments: Vec<Part> = Vec::new();
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for (start, part) in &self.parts {
            let end = start + part.len();
            if end <= range.start || *start >= range.end {
                continue;
            }
            let from = range.start.max(*start) - start;
            let to = range.end.min(end) - start;
            segments.push(part.clone());
            ranges.push(from..to);
        }
        futures_util::stream::iter(segments.into_iter().zip(ranges))
            .then(move |(part, within)| {
                let store = store.clone();
                async move {
                    match part {
                        Part::Literal(b) => {
                            let slice = b.slice(within.start as usize..within.end as usize);
                            Ok(futures_util::stream::once(async move { Ok(slice) }).boxed())
                        }
                        Part::Object { key, .. } => store
                            .open_evidence(
                                &key,
                                Some(within),
                                crate::store::Purpose::Bundle,
                                originals,
                            )
                            .await
                            .map(|f| f.body),
                    }
                }
            })
            .try_flatten()
            .boxed()
    }
}

enum Piece {
    Bytes(Vec<u8>),
    Hole { object: usize, len: u64 },
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Piece::Bytes(v) => v.len() as u64,
            Piece::Hole { len, .. } => *len,
        }
    }
}

/// A `Write + Seek` target that keeps what the `zip` crate writes (headers and the like, which
/// it may seek back to rewrite) and records holes where data will go.
#[derive(Default)]
pub struct LayoutSink {
    pos: u64,
    starts: Vec<u64>,
    pieces: Vec<Piece>,
}

impl LayoutSink {
    fn end(&self) -> u64 {
        match (self.starts.last(), self.pieces.last()) {
            (Some(s), Some(p)) => s + p.len(),
            _ => 0,
        }
    }

    /// Appends a hole of `len` bytes for object number `object`.
    fn hole(&mut self, object: usize, len: u64) -> std::io::Result<()> {
        if self.pos != self.end() {
            return Err(std::io::Error::other("a hole must be appended at the end"));
        }
        self.starts.push(self.pos);
        self.pieces.push(Piece::Hole { object, len });
        self.pos += len;
        Ok(())
    }
}

impl Write for LayoutSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let end = self.end();
        if self.pos == end {
            match self.pieces.last_mut() {
                Some(Piece::Bytes(v)) => v.extend_from_slice(buf),
                _ => {
                    self.starts.push(end);
                    self.pieces.push(Piece::Bytes(buf.to_vec()));
                }
            }
            self.pos += buf.len() as u64;
            return Ok(buf.len());
        }
        // Rewriting earlier bytes (a local header's CRC and sizes).
        let index = self.starts.partition_point(|s| *s <= self.pos) - 1;
        let start = self.starts[index];
        match &mut self.pieces[index] {
            Piece::Bytes(v) => {
                let offset = (self.pos - start) as usize;
                let n = buf.len().min(v.len() - offset);
                v[offset..offset + n].copy_from_slice(&buf[..n]);
                self.pos += n as u64;
                Ok(n)
            }
            Piece::Hole { .. } => Err(std::io::Error::other(
                "the zip writer tried to write into an object's data",
            )),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for LayoutSink {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let end = self.end();
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => end.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(t) if t <= end => {
                self.pos = t;
                Ok(t)
            }
            _ => Err(std::io::Error::other("seek outside the bundle layout")),
        }
    }
}
