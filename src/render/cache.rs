//! The plain rasters views are drawn from (issue 32): each rendered page or image, scaled and
//! unmarked, kept in `{data_dir}/render-cache/` so that a second view of it opens no original and
//! runs no renderer. Derived data, on the instance's own disk (instances that share a data
//! directory share it), bounded by `PORTAL_RENDER_CACHE_BYTES` (0 turns it off), least recently
//! used out first, and rebuilt on demand: a missing, short or corrupt file is a miss, rendered
//! again and replaced. Never served as such: `render::marked` burns the viewer into every view.
//!
//! One file per raster, `{sha256}-p{page}-w{width}.raster`: a 24-byte header (magic, width,
//! height, channels, CRC-32 of the pixels), then the pixels uncompressed, one channel for a grey
//! page. Measured on an A4 page at 1,600 px (11 MB in RGB): read and checked in ~1 ms, against
//! ~15 ms to decode the same page as a fast-deflated PNG (7 MB) — and a marked view has 30 ms.
//!
//! Every change holds an exclusive lock on `.lock` (`flock`, which excludes threads and
//! processes alike): evict the least recently used files (oldest modification time; a hit
//! touches it) until the new one fits, write a temporary file, rename it into place. So the
//! files never add up to more than the bound, and a temporary file seen under the lock is a dead
//! writer's and goes. Reads take no lock: a file is whole (renamed into place) or absent.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The cache's directory under the data directory.
pub const DIR: &str = "render-cache";
const MAGIC: &[u8; 8] = b"EPRAST01";
const HEADER: usize = 24;
const SUFFIX: &str = ".raster";
const LOCK: &str = ".lock";
const TEMP: &str = ".tmp";

/// A plain picture: `channels` bytes a pixel (1: grey, 3: RGB), row after row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Raster {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub pixels: Vec<u8>,
}

impl Raster {
    /// The same picture with one channel when every pixel is grey, as scans and text pages
    /// often are: a third of the bytes to keep, mark and encode.
    pub fn squeezed(self) -> Self {
        if self.channels != 3
            || !self
                .pixels
                .chunks_exact(3)
                .all(|p| p[0] == p[1] && p[1] == p[2])
        {
            return self;
        }
        Raster {
            pixels: self.pixels.chunks_exact(3).map(|p| p[0]).collect(),
            channels: 1,
            ..self
        }
    }
}

/// Which raster: the original's SHA-256, the page (1 for an image) and the width drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    /// `None` when `sha256` is not 64 hex digits (nothing else ever names a file here).
    pub fn new(sha256: &str, page: u32, width: u32) -> Option<Self> {
        (sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
            Key(format!(
                "{}-p{page}-w{width}{SUFFIX}",
                sha256.to_ascii_lowercase()
            ))
        })
    }
}

/// A file of the cache: its name, size and last use.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub bytes: u64,
    pub used: SystemTime,
}

/// What `Cache::beyond_bound` found: the files beyond the bound (least recently used first),
/// the temporary files dead writers left, and what stays.
#[derive(Debug, Default)]
pub struct Trim {
    pub beyond: Vec<Entry>,
    pub dead_temporaries: Vec<Entry>,
    pub kept: usize,
    pub kept_bytes: u64,
}

/// The cache of one data directory. Holds no state of its own: the files are the index, so
/// every worker, and every process on the directory, sees the same cache.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    bound: u64,
}

impl Cache {
    pub fn new(data_dir: &Path, bound: u64) -> Self {
        Cache {
            dir: data_dir.join(DIR),
            bound,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn bound(&self) -> u64 {
        self.bound
    }

    /// The raster kept under `key`, its use noted; `None` when absent, unreadable or corrupt
    /// (the caller renders it again and `put` replaces the file). Blocking.
    pub fn get(&self, key: &Key) -> Option<Raster> {
        if self.bound == 0 {
            return None;
        }
        let mut file = File::open(self.dir.join(&key.0)).ok()?;
        let size = file.metadata().ok()?.len();
        let mut head = [0u8; HEADER];
        file.read_exact(&mut head).ok()?;
        let raster = parse(&head, size).and_then(|(mut raster, crc)| {
            file.read_exact(&mut raster.pixels).ok()?;
            (crc32fast::hash(&raster.pixels) == crc).then_some(raster)
        });
        let Some(raster) = raster else {
            tracing::warn!(file = %key.0, "a cached rendering is corrupt: it is drawn again");
            return None;
        };
        // The least recently used go first: a hit is a use.
        if let Err(e) = file.set_modified(SystemTime::now()) {
            tracing::debug!(error = %e, "a cached rendering's use could not be noted");
        }
        Some(raster)
    }

    /// Keeps `raster` under `key`, first evicting the least recently used files until it fits
    /// the bound; a raster larger than the whole bound is not kept. Blocking.
    pub fn put(&self, key: &Key, raster: &Raster) -> io::Result<()> {
        let len = (HEADER + raster.pixels.len()) as u64;
        if len > self.bound {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        let _lock = self.lock()?;
        let (entries, _) = self.scan(true)?;
        let mut total: u64 = entries
            .iter()
            .filter(|e| e.name != key.0)
            .map(|e| e.bytes)
            .sum();
        for old in entries.iter().filter(|e| e.name != key.0) {
            if total + len <= self.bound {
                break;
            }
            remove(&self.dir.join(&old.name))?;
            total -= old.bytes;
        }
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP)
            .tempfile_in(&self.dir)?;
        temp.write_all(&header(raster))?;
        temp.write_all(&raster.pixels)?;
        // Its use noted by the same clock as a hit's (`get`), not the file system's: the two
        // order the evictions, and may differ (a clock moved in tests, or set by hand).
        temp.as_file().set_modified(SystemTime::now())?;
        temp.persist(self.dir.join(&key.0)).map_err(|e| e.error)?;
        Ok(())
    }

    /// For `gc`: the files beyond the bound — those eviction takes first — and dead writers'
    /// temporary files, removed when `delete`. With a bound of 0, every file. Blocking.
    pub fn beyond_bound(&self, delete: bool) -> io::Result<Trim> {
        if !self.dir.is_dir() {
            return Ok(Trim::default());
        }
        let _lock = self.lock()?;
        let (entries, dead_temporaries) = self.scan(delete)?;
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        let mut trim = Trim {
            dead_temporaries,
            ..Trim::default()
        };
        for entry in entries {
            if total > self.bound {
                if delete {
                    remove(&self.dir.join(&entry.name))?;
                }
                total -= entry.bytes;
                trim.beyond.push(entry);
            } else {
                trim.kept += 1;
                trim.kept_bytes += entry.bytes;
            }
        }
        Ok(trim)
    }

    /// The exclusive lock every change holds; released when dropped.
    fn lock(&self) -> io::Result<File> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK))?;
        file.lock()?;
        Ok(file)
    }

    /// The cached files, least recently used first, and the temporary files of dead writers
    /// (removed when `remove_dead`). Only under the lock.
    fn scan(&self, remove_dead: bool) -> io::Result<(Vec<Entry>, Vec<Entry>)> {
        let (mut entries, mut dead) = (Vec::new(), Vec::new());
        for item in std::fs::read_dir(&self.dir)? {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            let Ok(meta) = item.metadata() else { continue };
            let entry = Entry {
                bytes: meta.len(),
                used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                name,
            };
            if entry.name.starts_with(TEMP) {
                if remove_dead {
                    remove(&item.path())?;
                }
                dead.push(entry);
            } else if entry.name.ends_with(SUFFIX) && meta.is_file() {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| a.used.cmp(&b.used).then_with(|| a.name.cmp(&b.name)));
        Ok((entries, dead))
    }
}

/// Removes a file another process may have removed first.
fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn header(raster: &Raster) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&raster.width.to_le_bytes());
    h[12..16].copy_from_slice(&raster.height.to_le_bytes());
    h[16..20].copy_from_slice(&u32::from(raster.channels).to_le_bytes());
    h[20..24].copy_from_slice(&crc32fast::hash(&raster.pixels).to_le_bytes());
    h
}

/// The raster a header announces, its pixels zeroed, and their CRC-32: `None` when the header
/// does not add up or the file's `size` does not match it.
fn parse(head: &[u8; HEADER], size: u64) -> Option<(Raster, u32)> {
    let word = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    let (width, height, channels) = (word(8), word(12), u8::try_from(word(16)).ok()?);
    let len = u64::from(width) * u64::from(height) * u64::from(channels);
    let sound = &head[..8] == MAGIC && matches!(channels, 1 | 3) && size == HEADER as u64 + len;
    sound.then(|| {
        let pixels = vec![0; len as usize];
        let raster = Raster {
            width,
            height,
            channels,
            pixels,
        };
        (raster, word(20))
    })
}
