//! PDF pages drawn by Debian's `pdftoppm` (poppler-utils), in a child process: PDFs come from
//! outside, and renderers crash, loop and allocate on hostile files. The child gets at most
//! 1 GiB of address space and 20 s of CPU (`setrlimit` before it starts), 30 s of wall time
//! (then it is killed), writes into a private temporary directory, and its failure is an
//! unreadable file, never the portal's. `pdftoppm` substitutes a CJK font for the
//! non-embedded SimSun/SimHei of government PDFs (through fontconfig and Debian's Noto CJK).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::RenderError;

const MEMORY: u64 = 1024 * 1024 * 1024;
const CPU_SECONDS: u64 = 20;
const WALL: Duration = Duration::from_secs(30);
/// The most pages a PDF may have to be shown online.
pub const MAX_PAGES: u32 = 2000;

fn limited(program: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: between fork and exec only async-signal-safe calls (setrlimit) run.
    unsafe {
        command.pre_exec(|| {
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
            set(libc::RLIMIT_AS, MEMORY)?;
            set(libc::RLIMIT_CPU, CPU_SECONDS)?;
            set(libc::RLIMIT_CORE, 0)?;
            Ok(())
        });
    }
    command
}

async fn run(
    mut command: tokio::process::Command,
    program: &str,
) -> Result<std::process::Output, RenderError> {
    let child = command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            RenderError::Missing(program.to_owned())
        } else {
            RenderError::Unreadable(e.to_string())
        }
    })?;
    match tokio::time::timeout(WALL, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(RenderError::Unreadable(e.to_string())),
        // Dropped on timeout: kill_on_drop ends the child.
        Err(_) => Err(RenderError::Unreadable("the renderer took too long".into())),
    }
}

/// How many pages the PDF at `path` has (`pdfinfo`); an encrypted or broken file is unreadable.
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
    if text
        .lines()
        .any(|l| l.starts_with("Encrypted:") && l.contains("yes"))
    {
        return Err(RenderError::Unreadable("encrypted".into()));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .filter(|n| (1..=MAX_PAGES).contains(n))
        .ok_or_else(|| RenderError::Unreadable("no pages".into()))
}

/// Page `page` (from 1) of the PDF at `path` as a PNG `width` pixels wide.
pub async fn page_image(path: &Path, page: u32, width: u32) -> Result<Vec<u8>, RenderError> {
    let dir = tempfile::tempdir().map_err(|e| RenderError::Unreadable(e.to_string()))?;
    let root = dir.path().join("page");
    let mut command = limited("pdftoppm");
    command
        .arg("-png")
        .arg("-f")
        .arg(page.to_string())
        .arg("-l")
        .arg(page.to_string())
        .arg("-scale-to-x")
        .arg(width.to_string())
        .arg("-scale-to-y")
        .arg("-1")
        .arg("-singlefile")
        .arg(path)
        .arg(&root);
    let out = run(command, "pdftoppm").await?;
    if !out.status.success() {
        return Err(RenderError::Unreadable(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    tokio::fs::read(root.with_extension("png"))
        .await
        .map_err(|e| RenderError::Unreadable(e.to_string()))
}
