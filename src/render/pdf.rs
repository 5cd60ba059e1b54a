//! PDF pages drawn by Debian's `pdftoppm` (poppler-utils), in a child process: PDFs come from
//! outside, and renderers crash, loop and allocate on hostile files. The child gets at most
//! 1 GiB of address space and 15 s of CPU (`setrlimit` before it starts), 15 s of wall time
//! (then it is killed), writes into a private temporary directory, and its failure is an
//! unreadable file, never the portal's. `pdftoppm` substitutes a CJK font for the
//! non-embedded SimSun/SimHei of government PDFs (through fontconfig, the lang of the font's
//! character collection — Adobe-GB1 is zh-cn — and Debian's Noto CJK; the character maps such
//! as `UniGB-UCS2-H` are Debian's poppler-data).

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{Raster, RenderError};

const MEMORY: u64 = 1024 * 1024 * 1024;
/// The child's CPU and wall time: with a 5-s wait for a slot they end inside the portal's
/// deadline for an answer (25 s by default, `limits::answer_in_time`), so a file too costly to
/// draw is answered "cannot be shown online", not a 503 that invites the same wait again.
const CPU_SECONDS: u64 = 15;
pub(super) const WALL: Duration = Duration::from_secs(15);
/// The most pages a PDF may have to be shown online.
pub const MAX_PAGES: u32 = 2000;

fn limited(program: &str) -> tokio::process::Command {
    super::child(program, MEMORY, CPU_SECONDS)
}

fn spawn_error(e: std::io::Error, program: &str) -> RenderError {
    super::spawn_error(e, program)
}

async fn run(
    mut command: tokio::process::Command,
    program: &str,
) -> Result<std::process::Output, RenderError> {
    let child = command.spawn().map_err(|e| spawn_error(e, program))?;
    match tokio::time::timeout(WALL, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(RenderError::Unreadable(e.to_string())),
        // Dropped on timeout: kill_on_drop ends the child.
        Err(_) => Err(RenderError::Unreadable("the renderer took too long".into())),
    }
}

/// How many pages the PDF at `path` has (`pdfinfo`); a broken file, or one encrypted under a
/// password (`pdfinfo` cannot open it), is unreadable. A file encrypted with an owner password
/// only — as Chinese offices publish PDFs to forbid copying and printing — opens in every reader
/// without one: it is counted, and its pages are drawn (`pdftoppm` opens it alike), for viewing
/// is what its permissions allow.
pub async fn page_count(path: &Path) -> Result<u32, RenderError> {
    let mut command = limited("pdfinfo");
    command.arg(path);
    let out = run(command, "pdfinfo").await?;
    if !out.status.success() {
        return Err(RenderError::Unreadable(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .filter(|n| (1..=MAX_PAGES).contains(n))
        .ok_or_else(|| RenderError::Unreadable("no pages".into()))
}

/// Page `page` (from 1) of the PDF at `path`, `width` pixels wide, as `pdftoppm` draws it: a
/// PPM on its standard output, refused past `max_pixels` before it is read. No compression on
/// either side: pdftoppm took 5 s to deflate a PNG of a scanned A4 page at 1,600 px, and 0.1 s to
/// write it as PPM.
pub async fn page_raster(
    path: &Path,
    page: u32,
    width: u32,
    max_pixels: u64,
) -> Result<Raster, RenderError> {
    let mut command = limited("pdftoppm");
    command
        .arg("-f")
        .arg(page.to_string())
        .arg("-l")
        .arg(page.to_string())
        .arg("-scale-to-x")
        .arg(width.to_string())
        .arg("-scale-to-y")
        .arg("-1")
        .arg("-singlefile")
        .arg(path);
    let mut child = command.spawn().map_err(|e| spawn_error(e, "pdftoppm"))?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(RenderError::Unreadable("no pipes to the renderer".into()));
    };
    // Drained alongside, so that a child writing many warnings never blocks on a full pipe.
    let complaints = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = (&mut stderr).take(16 * 1024).read_to_end(&mut text).await;
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        String::from_utf8_lossy(&text).trim().to_owned()
    });
    let drawn = tokio::time::timeout(WALL, async {
        let raster = read_ppm(&mut tokio::io::BufReader::new(stdout), max_pixels).await;
        if raster.is_err() {
            // Refused or cut short: nothing more worth waiting for.
            let _ = child.start_kill();
        }
        (raster, child.wait().await)
    })
    .await;
    // Dropped on timeout: kill_on_drop ends the child.
    let Ok((raster, status)) = drawn else {
        return Err(RenderError::Unreadable("the renderer took too long".into()));
    };
    let complaints = complaints.await.unwrap_or_default();
    match (raster, status) {
        // Asked for `width` columns (rows, on a page turned by /Rotate), it drew something
        // else: a page it could not allocate (pdftoppm says "Bogus memory allocation size",
        // draws 1 × 1 and exits 0).
        (Ok(raster), Ok(s))
            if s.success()
                && raster.width.abs_diff(width) > 2
                && raster.height.abs_diff(width) > 2 =>
        {
            Err(RenderError::Unreadable(format!(
                "the page could not be drawn: {complaints}"
            )))
        }
        (Ok(raster), Ok(s)) if s.success() => Ok(raster),
        // It failed by itself (a broken, encrypted or missing page): what it said.
        (_, Ok(s)) if s.code().is_some_and(|c| c != 0) => Err(RenderError::Unreadable(complaints)),
        (Err(e), _) => Err(e),
        (Ok(_), Ok(s)) => Err(RenderError::Unreadable(format!(
            "the renderer stopped: {s}"
        ))),
        (Ok(_), Err(e)) => Err(RenderError::Unreadable(e.to_string())),
    }
}

/// A binary PPM (P6) or PGM (P5) of depth 255: header, then exactly the pixels it announces.
pub(super) async fn read_ppm<R: tokio::io::AsyncBufRead + Unpin>(
    out: &mut R,
    max_pixels: u64,
) -> Result<Raster, RenderError> {
    let bad = |why: &str| RenderError::Unreadable(format!("the renderer's picture: {why}"));
    let mut fields: Vec<u64> = Vec::with_capacity(4);
    let mut magic = [0u8; 2];
    out.read_exact(&mut magic).await.map_err(|_| bad("empty"))?;
    let channels = match &magic {
        b"P6" => 3,
        b"P5" => 1,
        _ => return Err(bad("not a PPM")),
    };
    let mut number: Option<u64> = None;
    while fields.len() < 3 {
        let byte = out.read_u8().await.map_err(|_| bad("short header"))?;
        match byte {
            b'0'..=b'9' => {
                let n = number.unwrap_or(0) * 10 + u64::from(byte - b'0');
                if n > 1 << 20 {
                    return Err(bad("header number too large"));
                }
                number = Some(n);
            }
            b' ' | b'\t' | b'\n' | b'\r' => fields.extend(number.take()),
            _ => return Err(bad("header")),
        }
    }
    let (w, h, depth) = (fields[0], fields[1], fields[2]);
    if depth != 255 || w == 0 || h == 0 {
        return Err(bad("depth or size"));
    }
    if w * h > max_pixels {
        return Err(RenderError::Unreadable("too many pixels".into()));
    }
    let mut pixels = vec![0u8; (w * h) as usize * channels];
    out.read_exact(&mut pixels)
        .await
        .map_err(|_| bad("short pixels"))?;
    Ok(Raster {
        width: w as u32,
        height: h as u32,
        channels: channels as u8,
        pixels,
    })
}
