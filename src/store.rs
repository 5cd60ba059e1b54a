//! The one place that talks to the object store: evidence bytes in and out, streamed.
//!
//! One `Store` wraps an `Arc<dyn ObjectStore>` built from the store URL (a local directory, an
//! S3-compatible bucket, or memory). Keys are made here from server-side ids only
//! (`cases/{case_id}/{material_id}`); nothing a user sends becomes part of a key.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::StoreUrl;

/// Bodies up to this size are sent in one request; larger ones as multipart parts of this size.
const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts in flight at once during a multipart upload (memory ≈ PART_SIZE × (this + 1)).
const PARTS_IN_FLIGHT: usize = 2;
/// Where the readiness probe writes.
const PROBE_KEY: &str = "_portal/readyz";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {0} not found")]
    NotFound(String),
    #[error("upload exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the requested range is not satisfiable")]
    RangeNotSatisfiable,
    /// The incoming body failed (client disconnected, malformed multipart, …).
    #[error("request body failed")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("object store failed")]
    Backend(#[source] object_store::Error),
    #[error("invalid store configuration: {0}")]
    Config(String),
    #[error("object store did not answer within {0:?}")]
    Timeout(Duration),
    /// The object ended before the bytes it promised (changed or damaged under a read).
    #[error("object ended after {got} of {expected} bytes")]
    Truncated { got: u64, expected: u64 },
}

impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => StoreError::NotFound(path),
            other => StoreError::Backend(other),
        }
    }
}

/// A key made by the server. The only ways to make one are the constructors below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectKey(Path);

impl ObjectKey {
    /// The key of a material's bytes.
    pub fn material(case_id: Uuid, material_id: Uuid) -> Self {
        ObjectKey(Path::from(format!("cases/{case_id}/{material_id}")))
    }

    /// The key of an audit-chain checkpoint (zero-padded, so keys sort by sequence number).
    pub fn audit_checkpoint(seq: i64) -> Self {
        ObjectKey(Path::from(format!("audit/checkpoints/{seq:020}.jws")))
    }

    /// A key read back from the database (`materials.object_key`).
    pub fn from_stored(stored: &str) -> Result<Self, StoreError> {
        Path::parse(stored)
            .map(ObjectKey)
            .map_err(|e| StoreError::Config(format!("stored key {stored:?} is invalid: {e}")))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

/// What a completed upload measured on the way through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    pub crc32: u32,
}

/// An object being read: its full size, the byte range coming, and the bytes.
pub struct Fetched {
    pub total_size: u64,
    pub range: Range<u64>,
    pub body: BoxStream<'static, Result<Bytes, StoreError>>,
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// The same store when it is a local directory: reads open, size and fill the first block
    /// in one blocking task (object_store's `get` opens in one and we read in another).
    local: Option<Arc<LocalFileSystem>>,
    kind: &'static str,
    /// How long a call may wait for the store to start answering (and, on S3, between reads).
    deadline: Duration,
    /// The directory of a directory store.
    root: Option<std::path::PathBuf>,
    /// The same store through its multipart API (S3): large uploads go through it so that each
    /// upload's id is known and written down (see [`Store::put_stream`]).
    multipart: Option<Arc<dyn MultipartStore>>,
}

/// Where the portal notes the multipart uploads in progress: one small object per upload, naming
/// the object and the upload id, removed when the upload completes or is aborted. What a killed
/// process leaves here, `gc` aborts.
const UPLOADS_PREFIX: &str = "_portal/uploads";

#[derive(serde::Serialize, serde::Deserialize)]
struct UploadNote {
    path: String,
    upload_id: String,
}

/// The default of `PORTAL_STORE_TIMEOUT_SECONDS`.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("kind", &self.kind).finish()
    }
}

impl Store {
    /// Builds the store named by the settings. A directory is created if missing; S3 takes its
    /// credentials, region and endpoint from the standard `AWS_*` variables, then `options`.
    pub fn open(url: &StoreUrl, options: &[(String, String)]) -> Result<Self, StoreError> {
        Self::open_with(url, options, DEFAULT_DEADLINE)
    }

    /// [`Store::open`] with the deadline of every call: to the first byte of a read, for each
    /// write, listing or removal, and between two reads of a body on S3.
    pub fn open_with(
        url: &StoreUrl,
        options: &[(String, String)],
        deadline: Duration,
    ) -> Result<Self, StoreError> {
        match url {
            StoreUrl::Memory => Ok(Store {
                inner: Arc::new(InMemory::new()),
                local: None,
                kind: "memory",
                deadline,
                root: None,
                multipart: None,
            }),
            StoreUrl::Directory(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Config(format!("cannot create directory {}: {e}", dir.display()))
                })?;
                let fs = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| StoreError::Config(format!("{}: {e}", dir.display())))?
                    .with_automatic_cleanup(true);
                let fs = Arc::new(fs);
                Ok(Store {
                    inner: fs.clone(),
                    local: Some(fs),
                    kind: "directory",
                    deadline,
                    root: Some(dir.clone()),
                    multipart: None,
                })
            }
            StoreUrl::S3 { bucket, prefix } => {
                // No whole-request timeout: a 5 GB download legitimately takes long. `AWS_*`
                // variables (as `AmazonS3Builder::from_env` reads them), then `options`, may
                // override these.
                let mut client = ClientOptions::new()
                    .with_timeout_disabled()
                    .with_connect_timeout(Duration::from_secs(5).min(deadline))
                    .with_read_timeout(deadline);
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    // A fast failure beats a request hanging for minutes of retries.
                    .with_retry(RetryConfig {
                        max_retries: 3,
                        retry_timeout: deadline,
                        ..RetryConfig::default()
                    });
                let from_env = std::env::vars()
                    .filter(|(k, _)| k.starts_with("AWS_"))
                    .filter_map(|(k, v)| k.to_ascii_lowercase().parse().ok().map(|k| (k, v)));
                let mut settings: Vec<(AmazonS3ConfigKey, String)> = from_env.collect();
                for (key, value) in options {
                    let parsed = key
                        .parse()
                        .map_err(|e| StoreError::Config(format!("option {key}: {e}")))?;
                    settings.push((parsed, value.clone()));
                }
                for (key, value) in settings {
                    match key {
                        AmazonS3ConfigKey::Client(key) => client = client.with_config(key, value),
                        AmazonS3ConfigKey::Bucket => {} // the URL names the bucket
                        other => builder = builder.with_config(other, value),
                    }
                }
                let builder = builder.with_client_options(client);
                let s3 = builder
                    .build()
                    .map_err(|e| StoreError::Config(e.to_string()))?;
                let (inner, multipart): (Arc<dyn ObjectStore>, Arc<dyn MultipartStore>) =
                    if prefix.is_empty() {
                        let s3 = Arc::new(s3);
                        (s3.clone(), s3)
                    } else {
                        let s3 = Arc::new(PrefixStore::new(s3, prefix.as_str()));
                        (s3.clone(), s3)
                    };
                Ok(Store {
                    inner,
                    local: None,
                    kind: "s3",
                    deadline,
                    root: None,
                    multipart: Some(multipart),
                })
            }
        }
    }

    /// `directory`, `s3` or `memory`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Streams `body` into the object at `key`, hashing on the way, in bounded memory.
    ///
    /// Refuses (and leaves nothing behind) once more than `limit` bytes arrive, or when the body
    /// or the store fails. The object becomes visible only when complete.
    #[tracing::instrument(skip_all, err, fields(key = key.as_str()))]
    pub async fn put_stream<S, E>(
        &self,
        key: &ObjectKey,
        body: S,
        limit: u64,
    ) -> Result<Stored, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut body = std::pin::pin!(body);
        let mut meter = Meter::new(limit);
        // Gather the first part: small bodies go up in one request.
        let mut head: Vec<Bytes> = Vec::new();
        let mut head_len = 0usize;
        while head_len <= PART_SIZE {
            match body.next().await {
                Some(Ok(chunk)) => {
                    meter.add(&chunk)?;
                    head_len += chunk.len();
                    head.push(chunk);
                }
                Some(Err(e)) => return Err(StoreError::Body(e.into())),
                None => {
                    self.within(async {
                        self.inner.put(&key.0, PutPayload::from_iter(head)).await?;
                        Ok(())
                    })
                    .await?;
                    return Ok(meter.finish());
                }
            }
        }

        if let Some(multipart) = self.multipart.clone() {
            return self
                .put_noted_multipart(multipart, key, head, body, meter)
                .await;
        }
        let upload = self
            .within(async { Ok(self.inner.put_multipart(&key.0).await?) })
            .await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        for chunk in head {
            writer.put(chunk);
        }
        let outcome: Result<(), StoreError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| StoreError::Body(e.into()))?;
                meter.add(&chunk)?;
                self.within(async { Ok(writer.wait_for_capacity(PARTS_IN_FLIGHT).await?) })
                    .await?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                self.within(async { Ok(writer.finish().await?) }).await?;
                Ok(meter.finish())
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "aborting a multipart upload failed; gc will collect it");
                }
                Err(e)
            }
        }
    }

    /// A multipart upload whose id is noted in the store first (`_portal/uploads/…`) and the
    /// note removed once the upload is completed or aborted, so that `gc` can abort what a
    /// killed process left. Parts of `PART_SIZE`, `PARTS_IN_FLIGHT` at a time.
    async fn put_noted_multipart<S, E>(
        &self,
        multipart: Arc<dyn MultipartStore>,
        key: &ObjectKey,
        head: Vec<Bytes>,
        mut body: std::pin::Pin<&mut S>,
        mut meter: Meter,
    ) -> Result<Stored, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        use futures_util::stream::FuturesOrdered;
        let id = self
            .within(async { Ok(multipart.create_multipart(&key.0).await?) })
            .await?;
        let note_key = ObjectKey(Path::from(format!("{UPLOADS_PREFIX}/{}", Uuid::now_v7())));
        let note = serde_json::to_vec(&UploadNote {
            path: key.0.to_string(),
            upload_id: id.clone(),
        })
        .map_err(|e| StoreError::Config(e.to_string()))?;
        if let Err(e) = self.put_small(&note_key, Bytes::from(note)).await {
            let _ = multipart.abort_multipart(&key.0, &id).await;
            return Err(e);
        }
        let outcome: Result<Vec<PartId>, StoreError> = async {
            let mut parts: Vec<PartId> = Vec::new();
            let mut in_flight = FuturesOrdered::new();
            let mut pending: Vec<Bytes> = head;
            let mut pending_len: usize = pending.iter().map(Bytes::len).sum();
            let mut index = 0usize;
            let mut ended = false;
            while !ended || pending_len > 0 {
                if !ended && pending_len < PART_SIZE {
                    match body.next().await {
                        Some(Ok(chunk)) => {
                            meter.add(&chunk)?;
                            pending_len += chunk.len();
                            pending.push(chunk);
                        }
                        Some(Err(e)) => return Err(StoreError::Body(e.into())),
                        None => ended = true,
                    }
                    continue;
                }
                let payload = PutPayload::from_iter(std::mem::take(&mut pending));
                pending_len = 0;
                let (multipart, path, id) = (multipart.clone(), key.0.clone(), id.clone());
                let part = index;
                index += 1;
                in_flight.push_back(async move {
                    Ok::<_, StoreError>(multipart.put_part(&path, &id, part, payload).await?)
                });
                if in_flight.len() >= PARTS_IN_FLIGHT {
                    let next = self
                        .within(async { in_flight.next().await.transpose() })
                        .await?;
                    parts.extend(next);
                }
            }
            while let Some(done) = self
                .within(async { in_flight.next().await.transpose() })
                .await?
            {
                parts.push(done);
            }
            Ok(parts)
        }
        .await;
        let result = match outcome {
            Ok(parts) => self
                .within(async { Ok(multipart.complete_multipart(&key.0, &id, parts).await?) })
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                if let Err(e) = self.delete(&note_key).await {
                    tracing::warn!(error = %e, "a completed upload's note stays; gc removes it");
                }
                Ok(meter.finish())
            }
            Err(e) => {
                match multipart.abort_multipart(&key.0, &id).await {
                    Ok(()) => {
                        let _ = self.delete(&note_key).await;
                    }
                    Err(abort) => {
                        tracing::warn!(error = %abort, "aborting a multipart upload failed; gc aborts it")
                    }
                }
                Err(e)
            }
        }
    }

    /// Incomplete multipart uploads noted by an upload that did not finish (its process was
    /// killed, or its abort failed), older than `older_than`: the object each was becoming.
    /// Aborted, and their notes removed, when `delete`. Stores without a multipart API have none.
    pub async fn abandoned_uploads(
        &self,
        older_than: time::OffsetDateTime,
        delete: bool,
    ) -> Result<Vec<(String, time::OffsetDateTime)>, StoreError> {
        let Some(multipart) = self.multipart.clone() else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        for (note, modified) in self.objects_under(UPLOADS_PREFIX).await? {
            if modified > older_than {
                continue;
            }
            let note_key = ObjectKey::from_stored(&note)?;
            let Ok(upload) =
                serde_json::from_slice::<UploadNote>(&self.get_small(&note_key).await?)
            else {
                continue;
            };
            if delete {
                let path = Path::parse(&upload.path)
                    .map_err(|e| StoreError::Config(format!("note {note}: {e}")))?;
                match self
                    .within(async {
                        Ok(multipart.abort_multipart(&path, &upload.upload_id).await?)
                    })
                    .await
                {
                    // Already gone (completed, or aborted by a lifecycle rule): only the note stays.
                    Ok(()) | Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                self.delete(&note_key).await?;
            }
            found.push((upload.path, modified));
        }
        Ok(found)
    }

    /// Streams the object at `key`, or the byte range `range` of it (end exclusive).
    #[tracing::instrument(skip_all, err, fields(key = key.as_str()))]
    pub async fn get(
        &self,
        key: &ObjectKey,
        range: Option<Range<u64>>,
    ) -> Result<Fetched, StoreError> {
        self.within(self.get_now(key, range)).await
    }

    /// Runs a store call within the deadline.
    async fn within<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.deadline, call)
            .await
            .unwrap_or(Err(StoreError::Timeout(self.deadline)))
    }

    async fn get_now(
        &self,
        key: &ObjectKey,
        range: Option<Range<u64>>,
    ) -> Result<Fetched, StoreError> {
        if range.as_ref().is_some_and(|r| r.start >= r.end) {
            return Err(StoreError::RangeNotSatisfiable);
        }
        if let Some(local) = &self.local {
            return local_get(local, key, range).await;
        }
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self
            .inner
            .get_opts(&key.0, options)
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { path, .. } => StoreError::NotFound(path),
                object_store::Error::NotModified { .. }
                | object_store::Error::Precondition { .. } => StoreError::RangeNotSatisfiable,
                other if about_the_range(&other) => StoreError::RangeNotSatisfiable,
                other => StoreError::Backend(other),
            })?;
        let total_size = result.meta.size;
        let range = result.range.clone();
        let raw = match result.payload {
            // object_store reads local files 8 KiB per blocking task (~300 MB/s here); big reads.
            object_store::GetResultPayload::File(file, _) => local_chunks(file, range.clone()),
            object_store::GetResultPayload::Stream(stream) => stream,
        };
        let body = exact(raw, range.end - range.start);
        Ok(Fetched {
            total_size,
            range,
            body,
        })
    }

    /// Stores a small object whole (generated text: checkpoints).
    #[tracing::instrument(skip_all, err, fields(key = key.as_str()))]
    pub async fn put_small(&self, key: &ObjectKey, bytes: Bytes) -> Result<(), StoreError> {
        self.within(async {
            self.inner.put(&key.0, PutPayload::from(bytes)).await?;
            Ok(())
        })
        .await
    }

    /// A small object's bytes, whole.
    #[tracing::instrument(skip_all, err, fields(key = key.as_str()))]
    pub async fn get_small(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
        self.within(async { Ok(self.inner.get(&key.0).await?.bytes().await?) })
            .await
    }

    /// The size of the object at `key`.
    #[tracing::instrument(skip_all, err, fields(key = key.as_str()))]
    pub async fn size(&self, key: &ObjectKey) -> Result<u64, StoreError> {
        self.within(async { Ok(self.inner.head(&key.0).await?.size) })
            .await
    }

    /// Removes the object at `key` (used only for objects no row references).
    #[tracing::instrument(skip_all, err, fields(key = key.as_str()))]
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.within(async { Ok(self.inner.delete(&key.0).await?) })
            .await
    }

    /// The keys of every object under `prefix` (e.g. `cases/{case_id}`), for gc and checks.
    pub async fn keys_under(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .objects_under(prefix)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// The staging files of uploads a dead process left in a directory store (`…#N` beside
    /// the object they were becoming; object_store's listing never shows them), older than
    /// `older_than`: their paths relative to the store, modification times and sizes. Removed
    /// too when `delete`. Other stores have none (on S3, incomplete multipart uploads are
    /// aborted by the bucket's lifecycle rule: see the README).
    pub async fn staging_leftovers(
        &self,
        older_than: time::OffsetDateTime,
        delete: bool,
    ) -> Result<Vec<(String, time::OffsetDateTime, u64)>, StoreError> {
        let Some(root) = self.root.clone() else {
            return Ok(Vec::new());
        };
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            let mut dirs = vec![root.clone()];
            while let Some(dir) = dirs.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let Ok(meta) = entry.metadata() else { continue };
                    if meta.is_dir() {
                        dirs.push(path);
                        continue;
                    }
                    if !entry.file_name().to_string_lossy().contains('#') {
                        continue;
                    }
                    let modified = meta
                        .modified()
                        .ok()
                        .map(time::OffsetDateTime::from)
                        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                    if modified > older_than {
                        continue;
                    }
                    if delete {
                        std::fs::remove_file(&path).map_err(|e| {
                            StoreError::Config(format!("cannot remove {}: {e}", path.display()))
                        })?;
                    }
                    let relative = path
                        .strip_prefix(&root)
                        .unwrap_or(&path)
                        .display()
                        .to_string();
                    found.push((relative, modified, meta.len()));
                }
            }
            Ok(found)
        })
        .await
        .map_err(|e| StoreError::Config(format!("cannot walk the store: {e}")))?
    }

    /// Every object under `prefix` with its last-modified time.
    pub async fn objects_under(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, time::OffsetDateTime)>, StoreError> {
        use futures_util::TryStreamExt;
        let prefix = Path::from(prefix);
        let metas: Vec<object_store::ObjectMeta> = self
            .within(async { Ok(self.inner.list(Some(&prefix)).try_collect().await?) })
            .await?;
        Ok(metas
            .into_iter()
            .map(|m| {
                let at = time::OffsetDateTime::from_unix_timestamp(m.last_modified.timestamp())
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                (m.location.to_string(), at)
            })
            .collect())
    }

    /// Proves the store is reachable and writable, within `within`.
    pub async fn check(&self, within: Duration) -> Result<(), StoreError> {
        let probe = async {
            self.inner
                .put(&Path::from(PROBE_KEY), PutPayload::from_static(b"ok"))
                .await
                .map(|_| ())
                .map_err(StoreError::from)
        };
        tokio::time::timeout(within, probe)
            .await
            .map_err(|_| StoreError::Timeout(within))?
    }
}

/// Passes a read through, but ends it with an error if it stops short of `expected` bytes or
/// stalls on empty chunks: object_store's local reader yields empty chunks forever when a file
/// shrinks under it, which would spin a worker and leave the client waiting.
/// How much of a local file one blocking read takes.
const LOCAL_CHUNK: u64 = 512 * 1024;

/// Whether a backend's error (or any error under it) is about the requested range: backends
/// report a range past the end in their own words (S3: 416 "InvalidRange"; the memory store:
/// "StartTooLarge" inside a generic error).
fn about_the_range(e: &object_store::Error) -> bool {
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
async fn local_get(
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

fn local_failure(e: Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    StoreError::Backend(object_store::Error::Generic {
        store: "LocalFileSystem",
        source: e,
    })
}

/// `range` of a local file in 512 KiB blocking reads. A file that ends early yields an empty
/// chunk, which [`exact`] turns into [`StoreError::Truncated`].
fn local_chunks(
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

fn exact(
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

/// Counts, hashes and limits the bytes of an upload.
struct Meter {
    size: u64,
    limit: u64,
    sha256: Sha256,
    crc32: crc32fast::Hasher,
}

impl Meter {
    fn new(limit: u64) -> Self {
        Meter {
            size: 0,
            limit,
            sha256: Sha256::new(),
            crc32: crc32fast::Hasher::new(),
        }
    }

    fn add(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(StoreError::TooLarge { limit: self.limit });
        }
        self.sha256.update(chunk);
        self.crc32.update(chunk);
        Ok(())
    }

    fn finish(self) -> Stored {
        Stored {
            size: self.size,
            sha256: hex::encode(self.sha256.finalize()),
            crc32: self.crc32.finalize(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;

    fn chunks(data: &[u8], size: usize) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        let owned: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures_util::stream::iter(owned)
    }

    fn sample(len: usize) -> Vec<u8> {
        // Deterministic, non-repeating at part boundaries.
        (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
    }

    async fn read_all(store: &Store, key: &ObjectKey, range: Option<Range<u64>>) -> Vec<u8> {
        let fetched = store.get(key, range).await.unwrap();
        let parts: Vec<Bytes> = fetched.body.try_collect().await.unwrap();
        parts.concat()
    }

    async fn round_trip(store: Store) {
        let case = Uuid::now_v7();
        for len in [0usize, 1, 70_000, PART_SIZE + 1, 3 * PART_SIZE + 12_345] {
            let data = sample(len);
            let key = ObjectKey::material(case, Uuid::now_v7());
            let stored = store
                .put_stream(&key, chunks(&data, 64 * 1024), u64::MAX)
                .await
                .unwrap();
            assert_eq!(stored.size, len as u64);
            assert_eq!(stored.sha256, hex::encode(Sha256::digest(&data)));
            assert_eq!(stored.crc32, crc32fast::hash(&data));
            assert_eq!(store.size(&key).await.unwrap(), len as u64);
            assert_eq!(read_all(&store, &key, None).await, data);
            if len > 10 {
                let r = 3..(len as u64 - 2);
                assert_eq!(
                    read_all(&store, &key, Some(r.clone())).await,
                    data[3..len - 2]
                );
            }
        }
    }

    async fn refuses_oversize_and_leaves_nothing(store: Store) {
        let case = Uuid::now_v7();
        for len in [1000usize, 2 * PART_SIZE + 5] {
            let key = ObjectKey::material(case, Uuid::now_v7());
            let err = store
                .put_stream(&key, chunks(&sample(len), 8192), len as u64 - 1)
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::TooLarge { .. }), "{err:?}");
            assert!(matches!(
                store.size(&key).await,
                Err(StoreError::NotFound(_))
            ));
        }
    }

    async fn failing_body_leaves_nothing(store: Store) {
        let key = ObjectKey::material(Uuid::now_v7(), Uuid::now_v7());
        let data = sample(PART_SIZE * 2);
        let failing = chunks(&data, 1 << 20).chain(futures_util::stream::iter([Err(
            std::io::Error::other("client went away"),
        )]));
        let err = store.put_stream(&key, failing, u64::MAX).await.unwrap_err();
        assert!(matches!(err, StoreError::Body(_)), "{err:?}");
        assert!(matches!(
            store.size(&key).await,
            Err(StoreError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn memory_store_round_trips_and_limits() {
        let store = Store::open(&StoreUrl::Memory, &[]).unwrap();
        round_trip(store.clone()).await;
        refuses_oversize_and_leaves_nothing(store.clone()).await;
        failing_body_leaves_nothing(store.clone()).await;
        store.check(Duration::from_secs(1)).await.unwrap();
    }

    #[tokio::test]
    async fn directory_store_round_trips_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("objects");
        let store = Store::open(&StoreUrl::Directory(root.clone()), &[]).unwrap();
        assert!(root.is_dir(), "the directory is created on open");
        round_trip(store.clone()).await;
        refuses_oversize_and_leaves_nothing(store.clone()).await;
        failing_body_leaves_nothing(store.clone()).await;
        store.check(Duration::from_secs(1)).await.unwrap();
    }

    /// The directory store reads through its own path (`local_get`); both paths must answer
    /// alike at the edges.
    async fn missing_objects_and_ranges_at_the_edges(store: Store) {
        let key = ObjectKey::material(Uuid::now_v7(), Uuid::now_v7());
        assert!(matches!(
            store.get(&key, None).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.get(&key, Some(5..5)).await,
            Err(StoreError::RangeNotSatisfiable)
        ));
        let data = sample(1000);
        store
            .put_stream(&key, chunks(&data, 300), u64::MAX)
            .await
            .unwrap();
        let beyond = store.get(&key, Some(1000..1001)).await.map(|f| f.range);
        assert!(
            matches!(beyond, Err(StoreError::RangeNotSatisfiable)),
            "{beyond:?}"
        );
        let fetched = store.get(&key, Some(990..2000)).await.unwrap();
        assert_eq!(
            (fetched.total_size, fetched.range.clone()),
            (1000, 990..1000)
        );
        assert_eq!(read_all(&store, &key, Some(990..2000)).await, data[990..]);
        let empty = ObjectKey::material(Uuid::now_v7(), Uuid::now_v7());
        store
            .put_stream(&empty, chunks(&[], 1), u64::MAX)
            .await
            .unwrap();
        assert_eq!(read_all(&store, &empty, None).await, Vec::<u8>::new());
    }

    #[tokio::test]
    async fn missing_objects_and_ranges_at_the_edges_memory() {
        missing_objects_and_ranges_at_the_edges(Store::open(&StoreUrl::Memory, &[]).unwrap()).await;
    }

    #[tokio::test]
    async fn missing_objects_and_ranges_at_the_edges_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreUrl::Directory(dir.path().join("objects")), &[]).unwrap();
        missing_objects_and_ranges_at_the_edges(store).await;
    }

    #[tokio::test]
    async fn a_read_that_stops_short_ends_with_an_error_not_a_spin() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("objects");
        let store = Store::open(&StoreUrl::Directory(root.clone()), &[]).unwrap();
        let key = ObjectKey::material(Uuid::now_v7(), Uuid::now_v7());
        let data = sample(3 * 1024 * 1024);
        store
            .put_stream(&key, chunks(&data, 65536), u64::MAX)
            .await
            .unwrap();
        let mut fetched = store.get(&key, None).await.unwrap();
        let first = fetched.body.next().await.unwrap().unwrap();
        assert!(!first.is_empty());
        std::fs::OpenOptions::new()
            .write(true)
            .open(root.join(key.as_str()))
            .unwrap()
            .set_len(first.len() as u64)
            .unwrap();
        let rest: Vec<Result<Bytes, StoreError>> =
            tokio::time::timeout(Duration::from_secs(5), fetched.body.collect::<Vec<_>>())
                .await
                .expect("the read ends instead of spinning");
        assert!(
            matches!(rest.last(), Some(Err(StoreError::Truncated { .. }))),
            "{rest:?}"
        );
    }

    #[test]
    fn keys_are_made_from_ids_only() {
        let case = Uuid::nil();
        let key = ObjectKey::material(case, Uuid::max());
        assert_eq!(
            key.as_str(),
            "cases/00000000-0000-0000-0000-000000000000/ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
        assert_eq!(ObjectKey::from_stored(key.as_str()).unwrap(), key);
        assert!(ObjectKey::from_stored("cases/../etc").is_err());
    }
}
