//! Showing without handing over (issue 32): where the law allows a person to view evidence but
//! not to copy it (the `disclosing` stage, an owner's or insurer's view-only grant), what they
//! receive is a rendering of the stored original — an image re-encoded (metadata such as EXIF
//! and GPS gone), or one page of a PDF drawn by Debian's `pdftoppm` in a child process under
//! limits — with the viewer burned into its pixels: tiled across the whole picture at an angle,
//! naming them, the case, the time and the code of the access event that delivered it. Routes
//! call this layer; it never decides who may see what (`policy` does) and never opens an
//! original itself (`store::Store::open_evidence` does, told the purpose).
//!
//! A view is made in two steps: the plain raster (`plain_image`, `plain_pdf`: decoded or drawn,
//! scaled), which `cache` keeps for the next view, then `marked`: the viewer burned into it and
//! the whole encoded as JPEG, on every request.

pub mod cache;
pub mod copy;
mod jpeg;
mod mark;
pub mod pdf;
pub mod redact;
pub mod video;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;

pub use cache::{Cache, Key, Raster};
pub use mark::Mark;
pub use pdf::page_count;

/// What can be rendered: images the decoders read, and PDFs.
pub fn renderable(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/jpeg" | "image/png" | "image/webp" | "image/gif" | "application/pdf"
    )
}

/// The widest a rendered view is, in pixels (a phone shows it scaled).
pub const VIEW_WIDTH: u32 = 1600;
/// The width of a PDF page for a phone's screen (`?w=800`: the viewer offers it in `srcset`).
pub const PHONE_WIDTH: u32 = 800;
/// Originals larger than this are not rendered online (the page says to view them at the
/// brigade): decoding is bounded in memory.
pub const MAX_SOURCE: u64 = 64 * 1024 * 1024;
/// The most pixels a decoded image or a rendered page may have (a decompression bomb stops here).
const MAX_PIXELS: u64 = 50_000_000;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The watermark font is missing: nothing is rendered rather than something unmarked.
    #[error("the watermark font {0} cannot be read: no view-only material is shown")]
    NoFont(String),
    /// Every render slot is taken, and stayed taken for a while: come back.
    #[error("every rendering slot is busy")]
    Busy,
    /// The file cannot be shown online (broken, encrypted, too large, of a kind not rendered).
    #[error("this file cannot be shown online: {0}")]
    Unreadable(String),
    /// The renderer itself is not installed (`pdftoppm`).
    #[error("the renderer is not installed: {0}")]
    Missing(String),
}

/// At most one render per core at a time; a request waits a few seconds for a slot.
static SLOTS: LazyLock<Arc<tokio::sync::Semaphore>> =
    LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(cores())));
const SLOT_WAIT: Duration = Duration::from_secs(5);

async fn slot() -> Result<tokio::sync::OwnedSemaphorePermit, RenderError> {
    tokio::time::timeout(SLOT_WAIT, SLOTS.clone().acquire_owned())
        .await
        .map_err(|_| RenderError::Busy)?
        .map_err(|_| RenderError::Busy)
}

/// The font at `path` (the Simplified Chinese face of a Noto CJK collection where the file is
/// one), read once per path and kept. A font that cannot be read is not remembered: once the
/// package is installed, the next view renders, without a restart.
fn font(path: &std::path::Path) -> Result<&'static ab_glyph::FontVec, RenderError> {
    type Loaded = Vec<(std::path::PathBuf, &'static ab_glyph::FontVec)>;
    static FONTS: std::sync::Mutex<Loaded> = std::sync::Mutex::new(Vec::new());
    let mut fonts = FONTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, font)) = fonts.iter().find(|(p, _)| p == path) {
        return Ok(font);
    }
    // One installation has one font path: what is kept here stays small.
    let font: &'static ab_glyph::FontVec = Box::leak(Box::new(load_font(path)?));
    fonts.push((path.to_owned(), font));
    Ok(font)
}

fn load_font(path: &std::path::Path) -> Result<ab_glyph::FontVec, RenderError> {
    let bytes =
        std::fs::read(path).map_err(|e| RenderError::NoFont(format!("{}: {e}", path.display())))?;
    // Noto Sans CJK collections hold JP, KR, SC, TC, HK: SC is the third.
    ab_glyph::FontVec::try_from_vec_and_index(bytes.clone(), 2)
        .or_else(|_| ab_glyph::FontVec::try_from_vec_and_index(bytes, 0))
        .map_err(|e| RenderError::NoFont(format!("{}: {e}", path.display())))
}

/// Whether rendering can work here: the font reads (the readiness check and the log say so
/// when not).
pub fn ready(font_path: &std::path::Path) -> Result<(), RenderError> {
    font(font_path).map(|_| ())
}

/// An image original (JPEG, PNG, WebP, GIF) as a plain raster: decoded under limits, scaled to
/// at most `width` pixels wide (metadata such as EXIF and GPS stays behind).
pub async fn plain_image(original: Bytes, width: u32) -> Result<Raster, RenderError> {
    let _slot = slot().await?;
    blocking(move || {
        let decoded = decode(&original)?;
        Ok(scaled(decoded, width))
    })
    .await
}

/// Page `page` (from 1) of the PDF at `original` as a plain raster `width` pixels wide, drawn by
/// `pdftoppm` in a child process under limits.
pub async fn plain_pdf(
    original: &std::path::Path,
    page: u32,
    width: u32,
) -> Result<Raster, RenderError> {
    let _slot = slot().await?;
    let raster = pdf::page_raster(original, page, width, MAX_PIXELS).await?;
    blocking(move || Ok(raster.squeezed())).await
}

/// `raster` as a viewer receives it: `mark` burned in, encoded as JPEG (no metadata), a strip
/// per core.
pub async fn marked(
    mut raster: Raster,
    mark: &Mark,
    font_path: &std::path::Path,
) -> Result<Vec<u8>, RenderError> {
    let font = font(font_path)?;
    let _slot = slot().await?;
    let mark = mark.clone();
    blocking(move || {
        let (Ok(w), Ok(h)) = (u16::try_from(raster.width), u16::try_from(raster.height)) else {
            return Err(RenderError::Unreadable("too large to encode".into()));
        };
        let channels = usize::from(raster.channels);
        let burner = mark::Burner::new(&mark, font, (raster.width, raster.height), channels);
        jpeg::encode(
            &mut raster.pixels,
            (w, h),
            channels,
            cores(),
            |rows, first| burner.burn(rows, first),
        )
        .map_err(|e| RenderError::Unreadable(e.to_string()))
    })
    .await
}

/// A renderer's child process (`pdftoppm`, `ffmpeg`…): no standard input, its output piped,
/// killed when dropped, and before it starts at most `memory` bytes of address space, `cpu`
/// seconds of CPU and no core file (`setrlimit`).
fn child(program: impl AsRef<std::ffi::OsStr>, memory: u64, cpu: u64) -> tokio::process::Command {
    use std::process::Stdio;
    let mut command = tokio::process::Command::new(program);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: between fork and exec only async-signal-safe calls (setrlimit) run.
    unsafe {
        command.pre_exec(move || {
            let set = |resource, limit: u64| {
                let rl = libc::rlimit {
                    rlim_cur: limit as libc::rlim_t,
                    rlim_max: limit as libc::rlim_t,
                };
                if libc::setrlimit(resource, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            set(libc::RLIMIT_AS, memory)?;
            set(libc::RLIMIT_CPU, cpu)?;
            set(libc::RLIMIT_CORE, 0)?;
            Ok(())
        });
    }
    command
}

/// A renderer that could not start: not installed (the installation's fault), or another error.
fn spawn_error(e: std::io::Error, program: &str) -> RenderError {
    if e.kind() == std::io::ErrorKind::NotFound {
        RenderError::Missing(program.to_owned())
    } else {
        RenderError::Unreadable(e.to_string())
    }
}

/// The cores this machine has (two when it cannot tell).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// The raster `cache` keeps under `key`, looked up off the async workers.
pub async fn cached(cache: &Cache, key: &Key) -> Option<Raster> {
    let (cache, key) = (cache.clone(), key.clone());
    tokio::task::spawn_blocking(move || cache.get(&key))
        .await
        .ok()
        .flatten()
}

/// Keeps `raster` in `cache` under `key` off the async workers, and hands it back: a cache
/// that cannot be written is logged, never the viewer's failure.
pub async fn keep(cache: &Cache, key: &Key, raster: Raster) -> Result<Raster, RenderError> {
    let (cache, key) = (cache.clone(), key.clone());
    blocking(move || {
        if let Err(e) = cache.put(&key, &raster) {
            tracing::warn!(error = %e, dir = %cache.dir().display(), "a rendering could not be cached");
        }
        Ok(raster)
    })
    .await
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RenderError> + Send + 'static,
) -> Result<T, RenderError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RenderError::Unreadable(e.to_string()))?
}

fn decode(bytes: &[u8]) -> Result<image::DynamicImage, RenderError> {
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| RenderError::Unreadable(e.to_string()))
    };
    // Refused from its header, before a pixel is inflated: a grey 64-megapixel bomb is under
    // the allocation limit below, and would otherwise be decompressed whole and then refused.
    let (w, h) = reader()?
        .into_dimensions()
        .map_err(|e| RenderError::Unreadable(e.to_string()))?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(RenderError::Unreadable("too many pixels".into()));
    }
    let mut reader = reader()?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4);
    limits.max_image_width = Some(30_000);
    limits.max_image_height = Some(30_000);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|e| RenderError::Unreadable(e.to_string()))?;
    if u64::from(decoded.width()) * u64::from(decoded.height()) > MAX_PIXELS {
        return Err(RenderError::Unreadable("too many pixels".into()));
    }
    Ok(decoded)
}

/// At most `width` wide (area-averaged: a 12-megapixel photo in ~60 ms, against ~130 with a
/// triangle filter), grey kept grey (blocking work).
fn scaled(decoded: image::DynamicImage, width: u32) -> Raster {
    let scaled = if decoded.width() > width {
        let height = (u64::from(decoded.height()) * u64::from(width) / u64::from(decoded.width()))
            .max(1) as u32;
        decoded.thumbnail_exact(width, height)
    } else {
        decoded
    };
    let (width, height) = (scaled.width(), scaled.height());
    match scaled {
        image::DynamicImage::ImageLuma8(grey) => Raster {
            width,
            height,
            channels: 1,
            pixels: grey.into_raw(),
        },
        other => Raster {
            width,
            height,
            channels: 3,
            pixels: other.into_rgb8().into_raw(),
        },
    }
}

#[cfg(test)]
mod tests;
