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

mod files;
mod leftovers;
mod local;
#[cfg(test)]
mod tests;

use local::{about_the_range, exact, local_chunks, local_get};

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
    /// An original asked for to be handed over to someone who may only view it.
    #[error("originals are not handed over to this viewer: only renderings are")]
    ViewOnly,
    /// A local file the store reads into or from (a spooled copy) failed: the local disk.
    #[error("a local copy could not be written or read")]
    Local(#[source] std::io::Error),
}

/// Why stored evidence is opened: the gate on originals decides by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Sent as it is, inline or as an attachment.
    Deliver,
    /// Put into a signed bundle.
    Bundle,
    /// Read by the server to draw a rendering (with the viewer burned in) or a thumbnail.
    Render,
}

impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => StoreError::NotFound(path),
            other => StoreError::Backend(other),
        }
    }
}

/// Where burned-in copies live in the store (`ObjectKey::copy`).
pub const COPIES_PREFIX: &str = "copies";

/// A key made by the server. The only ways to make one are the constructors below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectKey(Path);

impl ObjectKey {
    /// The key of a material's bytes.
    pub fn material(case_id: Uuid, material_id: Uuid) -> Self {
        ObjectKey(Path::from(format!("cases/{case_id}/{material_id}")))
    }

    /// The key of a redacted copy of a material (`redaction`): evidence like the original,
    /// kept as long (backed up, never collected by `gc`).
    pub fn redaction(case_id: Uuid, redaction_id: Uuid) -> Self {
        ObjectKey(Path::from(format!(
            "cases/{case_id}/redactions/{redaction_id}"
        )))
    }

    /// The key of a burned-in copy of a material made for one person (`copies`): derived data,
    /// removed by `gc` when it expires.
    pub fn copy(account_id: Uuid, material_id: Uuid, copy_id: Uuid) -> Self {
        ObjectKey(Path::from(format!(
            "{COPIES_PREFIX}/{account_id}/{material_id}/{copy_id}"
        )))
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
    /// Lower-case hex SM3 (GB/T 32905), measured in the same pass.
    pub sm3: String,
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
            StoreUrl::S3 { bucket, prefix } => Self::open_s3(bucket, prefix, options, deadline),
        }
    }

    /// An S3 bucket (under `prefix`), with retries and read deadlines bounded by `deadline`.
    fn open_s3(
        bucket: &str,
        prefix: &str,
        options: &[(String, String)],
        deadline: Duration,
    ) -> Result<Self, StoreError> {
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
                let s3 = Arc::new(PrefixStore::new(s3, prefix));
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
    /// The one way stored evidence is opened to be served: told why, and whether the person it
    /// goes to may receive originals (`policy::CasePermit::originals`). Someone who may only
    /// view gets no original delivered or bundled — only what the server renders from it.
    pub async fn open_evidence(
        &self,
        key: &ObjectKey,
        range: Option<Range<u64>>,
        purpose: Purpose,
        originals: bool,
    ) -> Result<Fetched, StoreError> {
        if !originals && purpose != Purpose::Render {
            return Err(StoreError::ViewOnly);
        }
        self.get(key, range).await
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

/// Counts, hashes and limits the bytes of an upload.
struct Meter {
    size: u64,
    limit: u64,
    sha256: Sha256,
    sm3: sm3::Sm3,
    crc32: crc32fast::Hasher,
}

impl Meter {
    fn new(limit: u64) -> Self {
        Meter {
            size: 0,
            limit,
            sha256: Sha256::new(),
            sm3: sm3::Sm3::new(),
            crc32: crc32fast::Hasher::new(),
        }
    }

    fn add(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(StoreError::TooLarge { limit: self.limit });
        }
        self.sha256.update(chunk);
        self.sm3.update(chunk);
        self.crc32.update(chunk);
        Ok(())
    }

    fn finish(self) -> Stored {
        Stored {
            size: self.size,
            sha256: hex::encode(self.sha256.finalize()),
            sm3: hex::encode(self.sm3.finalize()),
            crc32: self.crc32.finalize(),
        }
    }
}
