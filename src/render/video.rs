//! Video for a person who may view but not copy (issue 32): a transcode of the original for
//! that one viewer — at most 1280 × 720, H.264 and AAC in an MP4 whose index comes first
//! (`+faststart`, so a browser seeks before it has the whole), metadata and subtitles left
//! behind — with the viewer burned into every frame, made by Debian's `ffmpeg` in a child
//! process under limits (address space, CPU, wall time in proportion to the length, with a
//! cap), one at a time, a few more waiting, none past that (`RenderError::Busy`).
//!
//! The mark is the one the pictures carry (`mark::Burner`: tiled, at 30°, a fifth of full
//! strength), drawn once onto a transparent canvas the size of the video and laid over every
//! frame (`overlay`), rather than `drawtext`, which cannot draw at an angle nor tile. A picture
//! is marked light on its dark parts and dark on its light ones, pixel by pixel; a canvas laid
//! over moving pictures cannot know what lies under it, so it carries both: the light glyphs
//! with a dark copy two pixels down and to the right, one of which shows on any background.
//!
//! Kept in `{data_dir}/render-cache/video/` as `{material}-{account}.{sha256}.mp4` for
//! [`KEEP`] after it was made, then removed — when next asked for, and by `gc`. Everything
//! being written there is a `.tmp-` file that its writer holds an exclusive lock on (`flock`):
//! one that no one holds is a dead writer's, and goes. The lock on `.tmp-{material}-{account}.mp4`
//! also keeps two processes sharing the directory from transcoding the same thing at once.
//! A finished transcode is renamed into place only after `Job::finished` (its `material.rendered`
//! event) succeeded: nothing is served whose SHA-256 the audit log does not hold.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::{Mark, RenderError};
use crate::store::StoreError;
use ffmpeg::{ffprobe_of, fitted, found, overlay, probe, run_ffmpeg};

mod ffmpeg;
pub mod redact;

/// The transcodes' directory under the render cache's.
pub const DIR: &str = "video";
/// How long a finished transcode is kept (and served) after it was made.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);
/// The largest a transcode's picture is: 720 lines, 1,280 columns.
pub const MAX_SIZE: (u32, u32) = (1280, 720);
/// Longer videos are viewed at the brigade: a transcode of two hours would hold the queue.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Transcodes waiting or under way in this process, at most; past that a viewer is told to
/// come back (503, `Retry-After`).
pub const QUEUE: usize = 4;
const TEMP: &str = ".tmp-";
/// A temporary file younger than this is never taken for a dead writer's: its writer may be
/// between creating and locking it.
const GRACE: Duration = Duration::from_secs(60);
/// How long a failure is remembered (and said) before the transcode is tried again.
const FAILURE_KEPT: Duration = Duration::from_secs(600);

/// Whose transcode of what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub material: Uuid,
    pub account: Uuid,
}

impl Key {
    fn stem(&self) -> String {
        format!("{}-{}", self.material, self.account)
    }
}

/// A finished transcode: its file, SHA-256 (the strong validator, and what tracing finds) and
/// length.
#[derive(Clone, Debug)]
pub struct Ready {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

/// Where a viewer's transcode stands.
#[derive(Clone, Debug)]
pub enum State {
    Ready(Ready),
    /// Waiting (`ahead` others before it) or under way (`percent` done, when the length is
    /// known); `None` and 0 when another process sharing the directory makes it.
    Preparing {
        percent: Option<u8>,
        ahead: usize,
    },
    /// It failed a short while ago (a broken file, too long, over its limits): said, not retried
    /// at once.
    Failed(String),
    Absent,
}

#[derive(Clone, Debug)]
enum Phase {
    Queued,
    Running(Option<u8>),
    Failed(String, Instant),
}

/// A transcode of this process: its directory and key.
type Slot = (PathBuf, Key);

/// The transcodes of this process, in the order they were queued.
static JOBS: LazyLock<Mutex<Vec<(Slot, Phase)>>> = LazyLock::new(|| Mutex::new(Vec::new()));
/// One transcode at a time: each takes every core it is given for minutes.
static TURN: LazyLock<Arc<tokio::sync::Semaphore>> =
    LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(1)));

fn jobs() -> std::sync::MutexGuard<'static, Vec<(Slot, Phase)>> {
    JOBS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a transcode needs besides its key: the mark, the font, the original (opened only when
/// its turn comes), and what to do with the result before it may be served.
pub struct Job {
    pub mark: Mark,
    pub font: PathBuf,
    pub open: Open,
    /// Called with the SHA-256 and length of the finished transcode; only when it succeeds is
    /// the transcode kept and served.
    pub finished: Finished,
}

/// Opens the original (for rendering only) when the transcode's turn comes.
pub type Open = Box<
    dyn FnOnce() -> BoxFuture<
            'static,
            Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError>,
        > + Send,
>;
/// Records what was made (its SHA-256 and length); an error keeps it from being served.
pub type Finished = Box<dyn FnOnce(String, u64) -> BoxFuture<'static, Result<(), String>> + Send>;

/// The transcodes of one data directory, made with one `ffmpeg`.
#[derive(Clone, Debug)]
pub struct Videos {
    dir: PathBuf,
    ffmpeg: PathBuf,
}

/// A place in the queue taken for a key; given back when dropped unless the job was run.
pub struct Claim {
    slot: Slot,
    ffmpeg: PathBuf,
    run: bool,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.run {
            jobs().retain(|(slot, _)| *slot != self.slot);
        }
    }
}

/// What `Videos::sweep` found: finished transcodes past [`KEEP`] and dead writers' files.
#[derive(Debug, Default)]
pub struct Swept {
    pub expired: Vec<super::cache::Entry>,
    pub dead_temporaries: Vec<super::cache::Entry>,
    pub kept: usize,
    pub kept_bytes: u64,
}

impl Videos {
    pub fn new(data_dir: &Path, ffmpeg: &Path) -> Self {
        Videos {
            dir: data_dir.join(super::cache::DIR).join(DIR),
            ffmpeg: ffmpeg.to_owned(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `ffmpeg` and its `ffprobe` are there to run (a name is looked up on `PATH`).
    pub fn installed(&self) -> bool {
        found(&self.ffmpeg) && found(&ffprobe_of(&self.ffmpeg))
    }

    /// Where the transcode of `key` stands. A finished one past [`KEEP`] is removed here, and is
    /// then absent. Blocking (a directory listing).
    pub fn state(&self, key: Key, now: SystemTime) -> State {
        if let Some(ready) = self.finished(key, now) {
            return State::Ready(ready);
        }
        let slot = (self.dir.clone(), key);
        {
            let mut all = jobs();
            all.retain(|(_, p)| !matches!(p, Phase::Failed(_, at) if at.elapsed() > FAILURE_KEPT));
            let mut ahead = 0;
            for (s, phase) in all.iter() {
                match phase {
                    _ if *s == slot => {
                        return match phase {
                            Phase::Queued => State::Preparing {
                                percent: Some(0),
                                ahead,
                            },
                            Phase::Running(p) => State::Preparing {
                                percent: *p,
                                ahead: 0,
                            },
                            Phase::Failed(why, _) => State::Failed(why.clone()),
                        };
                    }
                    Phase::Queued | Phase::Running(_) => ahead += 1,
                    Phase::Failed(..) => {}
                }
            }
        }
        // Made by another process on this directory?
        if held(&self.dir.join(format!("{TEMP}{}.mp4", key.stem()))) {
            return State::Preparing {
                percent: None,
                ahead: 0,
            };
        }
        State::Absent
    }

    /// A place in the queue for `key`: `None` when it is queued or under way already, `Busy`
    /// when the queue is full.
    pub fn claim(&self, key: Key) -> Result<Option<Claim>, RenderError> {
        let slot = (self.dir.clone(), key);
        let mut all = jobs();
        if all
            .iter()
            .any(|(s, p)| *s == slot && !matches!(p, Phase::Failed(..)))
        {
            return Ok(None);
        }
        let waiting = all
            .iter()
            .filter(|(_, p)| !matches!(p, Phase::Failed(..)))
            .count();
        if waiting >= QUEUE {
            return Err(RenderError::Busy);
        }
        all.retain(|(s, _)| *s != slot);
        all.push((slot.clone(), Phase::Queued));
        Ok(Some(Claim {
            slot,
            ffmpeg: self.ffmpeg.clone(),
            run: false,
        }))
    }

    /// The finished transcode of `key`, if one younger than [`KEEP`] is there; older ones go.
    fn finished(&self, key: Key, now: SystemTime) -> Option<Ready> {
        let prefix = format!("{}.", key.stem());
        let mut found: Vec<(SystemTime, Ready)> = Vec::new();
        for item in std::fs::read_dir(&self.dir).ok()?.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            let Some(sha256) = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".mp4"))
                .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            else {
                continue;
            };
            let Ok(meta) = item.metadata() else { continue };
            let made = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if expired(made, now) {
                remove(&item.path());
                continue;
            }
            found.push((
                made,
                Ready {
                    path: item.path(),
                    sha256: sha256.to_owned(),
                    bytes: meta.len(),
                },
            ));
        }
        found.sort_by_key(|(made, _)| *made);
        found.pop().map(|(_, ready)| ready)
    }

    /// For `gc` (and before each transcode): finished transcodes past [`KEEP`] and files that
    /// dead writers left, removed when `delete`. Blocking.
    pub fn sweep(&self, delete: bool, now: SystemTime) -> std::io::Result<Swept> {
        let mut swept = Swept::default();
        if !self.dir.is_dir() {
            return Ok(swept);
        }
        for item in std::fs::read_dir(&self.dir)? {
            let item = item?;
            let Ok(meta) = item.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let entry = super::cache::Entry {
                name: item.file_name().to_string_lossy().into_owned(),
                bytes: meta.len(),
                used,
            };
            let old = now.duration_since(used).unwrap_or_default();
            if entry.name.starts_with(TEMP) {
                if old > GRACE && !held(&item.path()) {
                    if delete {
                        remove(&item.path());
                    }
                    swept.dead_temporaries.push(entry);
                }
            } else if expired(used, now) {
                if delete {
                    remove(&item.path());
                }
                swept.expired.push(entry);
            } else {
                swept.kept += 1;
                swept.kept_bytes += entry.bytes;
            }
        }
        Ok(swept)
    }
}

impl Claim {
    /// Runs `job` in the background when its turn comes; the page follows it through
    /// `Videos::state`.
    pub fn run(mut self, job: Job) {
        self.run = true;
        let (slot, ffmpeg) = (self.slot.clone(), self.ffmpeg.clone());
        tokio::spawn(async move {
            let Ok(_turn) = TURN.clone().acquire_owned().await else {
                return;
            };
            set(&slot, Phase::Running(Some(0)));
            let outcome = transcode(&slot.0, slot.1, &ffmpeg, job, |p| {
                set(&slot, Phase::Running(p));
            })
            .await;
            match outcome {
                Ok(()) => jobs().retain(|(s, _)| *s != slot),
                Err(e) => {
                    tracing::info!(error = %e, "a video could not be transcoded");
                    set(&slot, Phase::Failed(e.to_string(), Instant::now()));
                }
            }
        });
    }
}

fn set(slot: &Slot, phase: Phase) {
    if let Some(entry) = jobs().iter_mut().find(|(s, _)| s == slot) {
        entry.1 = phase;
    }
}

fn expired(made: SystemTime, now: SystemTime) -> bool {
    now.duration_since(made).unwrap_or_default() > KEEP
}

/// Removes a file another process may have removed first.
fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, file = %path.display(), "a video transcode could not be removed");
    }
}

/// Whether someone holds the lock on the file at `path` (its writer is alive).
fn held(path: &Path) -> bool {
    match File::open(path) {
        Ok(file) => matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// A new `.tmp-` file in `dir`, locked for as long as it is open; removed when dropped.
fn locked_temp(dir: &Path, what: &str) -> Result<tempfile::NamedTempFile, RenderError> {
    let file = tempfile::Builder::new()
        .prefix(&format!("{TEMP}{what}-"))
        .tempfile_in(dir)
        .map_err(io_error)?;
    file.as_file().try_lock().map_err(|e| io_error(e.into()))?;
    Ok(file)
}

fn io_error(e: std::io::Error) -> RenderError {
    RenderError::Unreadable(format!("the transcode's files: {e}"))
}

/// The transcode of `key`: the original spooled to a locked temporary file, measured, the mark
/// drawn at the transcode's size, `ffmpeg` run (reporting how far it got), the result hashed,
/// handed to `job.finished`, and renamed into place.
async fn transcode(
    dir: &Path,
    key: Key,
    ffmpeg: &Path,
    job: Job,
    progress: impl Fn(Option<u8>),
) -> Result<(), RenderError> {
    std::fs::create_dir_all(dir).map_err(io_error)?;
    let videos = Videos {
        dir: dir.to_owned(),
        ffmpeg: ffmpeg.to_owned(),
    };
    if let Err(e) = videos.sweep(true, SystemTime::now()) {
        tracing::warn!(error = %e, "the video transcodes could not be swept");
    }
    let out_path = dir.join(format!("{TEMP}{}.mp4", key.stem()));
    // Renderings of evidence: as private as the render cache's files.
    let out = std::os::unix::fs::OpenOptionsExt::mode(
        File::options().create(true).truncate(false).write(true),
        0o600,
    )
    .open(&out_path)
    .map_err(io_error)?;
    if out.try_lock().is_err() {
        // Another process on this directory makes it: its file appears when done.
        return Ok(());
    }
    let result = made(dir, &out_path, ffmpeg, job, &progress).await;
    match result {
        Ok((sha256, final_name)) => {
            // Older transcodes of the same key go: the newest is what is served.
            let prefix = format!("{}.", key.stem());
            for item in std::fs::read_dir(dir).map_err(io_error)?.flatten() {
                let name = item.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && !name.contains(&sha256) {
                    remove(&item.path());
                }
            }
            std::fs::rename(&out_path, dir.join(format!("{}{final_name}", key.stem())))
                .map_err(io_error)?;
            drop(out);
            Ok(())
        }
        Err(e) => {
            remove(&out_path);
            drop(out);
            Err(e)
        }
    }
}

/// Makes the transcode into `out_path`: its SHA-256, and the name it is kept under (after the
/// key's stem), once `job.finished` took it.
async fn made(
    dir: &Path,
    out_path: &Path,
    ffmpeg: &Path,
    job: Job,
    progress: &impl Fn(Option<u8>),
) -> Result<(String, String), RenderError> {
    let source = locked_temp(dir, "source")?;
    let mut body = (job.open)()
        .await
        .map_err(|e| RenderError::Unreadable(e.to_string()))?;
    {
        let mut file = tokio::fs::File::from_std(source.as_file().try_clone().map_err(io_error)?);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| RenderError::Unreadable(e.to_string()))?;
            file.write_all(&chunk).await.map_err(io_error)?;
        }
        file.flush().await.map_err(io_error)?;
    }
    let probed = probe(&ffprobe_of(ffmpeg), source.path()).await?;
    if probed.duration.is_some_and(|d| d > MAX_DURATION) {
        return Err(RenderError::Unreadable(
            "too long to be shown online".into(),
        ));
    }
    let size = fitted(probed.size);
    let font = super::font(&job.font)?;
    let mark = job.mark.clone();
    let canvas = tokio::task::spawn_blocking(move || overlay(&mark, font, size))
        .await
        .map_err(|e| RenderError::Unreadable(e.to_string()))?;
    let mut mark_file = locked_temp(dir, "mark")?;
    std::io::Write::write_all(&mut mark_file, &canvas).map_err(io_error)?;
    run_ffmpeg(
        ffmpeg,
        source.path(),
        mark_file.path(),
        out_path,
        size,
        probed.duration,
        progress,
    )
    .await?;
    drop((source, mark_file));
    let path = out_path.to_owned();
    let (sha256, bytes) = tokio::task::spawn_blocking(move || hash(&path))
        .await
        .map_err(|e| RenderError::Unreadable(e.to_string()))?
        .map_err(io_error)?;
    (job.finished)(sha256.clone(), bytes)
        .await
        .map_err(RenderError::Unreadable)?;
    Ok((sha256.clone(), format!(".{sha256}.mp4")))
}

fn hash(path: &Path) -> std::io::Result<(String, u64)> {
    use sha2::Digest;
    let mut file = File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = std::io::Read::read(&mut file, &mut buffer)?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), bytes));
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_turns_viewers_away_until_a_place_frees() {
        let dir = tempfile::tempdir().unwrap();
        let videos = Videos::new(dir.path(), Path::new("ffmpeg"));
        let key = |n: u128| Key {
            material: Uuid::from_u128(n),
            account: Uuid::from_u128(7),
        };
        let mut claims: Vec<Claim> = (1..=QUEUE as u128)
            .map(|n| videos.claim(key(n)).unwrap().expect("a place"))
            .collect();
        assert!(videos.claim(key(1)).unwrap().is_none(), "queued already");
        assert!(matches!(videos.claim(key(99)), Err(RenderError::Busy)));
        assert!(matches!(
            videos.state(key(3), SystemTime::now()),
            State::Preparing { ahead: 2, .. }
        ));
        claims.remove(0);
        assert!(videos.claim(key(99)).unwrap().is_some());
        assert!(matches!(
            videos.state(key(1), SystemTime::now()),
            State::Absent
        ));
    }
}
