//! `ffmpeg` and `ffprobe` for `render::video`, each in a child process under limits: 2 GiB of
//! address space (with two malloc arenas, so that threads do not reserve it all), CPU seconds
//! for its threads over the wall time, which grows with the video's length up to a cap, no core
//! file, an environment of its own; only the demuxers of the formats evidence is uploaded in, and
//! only local files, so a hostile file cannot have it follow a playlist elsewhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use super::{MAX_SIZE, io_error};
use crate::render::{Mark, RenderError};

const MEMORY: u64 = 2 * 1024 * 1024 * 1024;
pub(super) const THREADS: u64 = 2;

pub(super) fn found(program: &Path) -> bool {
    let runnable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 {
        return runnable(program);
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| runnable(&dir.join(program))))
}

/// The `ffprobe` beside `ffmpeg` (both come in Debian's `ffmpeg` package).
pub(super) fn ffprobe_of(ffmpeg: &Path) -> PathBuf {
    let name = ffmpeg
        .file_name()
        .map(|n| n.to_string_lossy().replacen("ffmpeg", "ffprobe", 1))
        .unwrap_or_else(|| "ffprobe".into());
    ffmpeg.with_file_name(name)
}

/// What `ffprobe` says of a video: the picture's size as shown (turned where the file says to
/// turn it), its length and the average time between its pictures, when known.
#[derive(Debug)]
pub(super) struct Probed {
    pub size: (u32, u32),
    pub duration: Option<Duration>,
    pub frame: Option<Duration>,
}

/// Only these demuxers open the original: a hostile file cannot have `ffmpeg` follow a playlist
/// to another file or address.
pub(super) const FORMATS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi";

pub(super) async fn probe(ffprobe: &Path, source: &Path) -> Result<Probed, RenderError> {
    let mut command = limited(ffprobe, Duration::from_secs(30));
    command
        .args([
            "-v",
            "error",
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            FORMATS,
        ])
        .args(["-select_streams", "v:0", "-show_entries"])
        .arg("format=duration:stream=width,height,avg_frame_rate:stream_side_data=rotation:stream_tags=rotate")
        .args(["-of", "json"])
        .arg(source);
    let child = command.spawn().map_err(|e| spawn_error(e, ffprobe))?;
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .map_err(|_| RenderError::Unreadable("ffprobe took too long".into()))?
        .map_err(io_error)?;
    if !out.status.success() {
        return Err(RenderError::Unreadable(
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .chars()
                .take(300)
                .collect(),
        ));
    }
    parse_probe(&out.stdout)
}

fn parse_probe(json: &[u8]) -> Result<Probed, RenderError> {
    let v: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| RenderError::Unreadable(format!("ffprobe: {e}")))?;
    let stream = &v["streams"][0];
    let (Some(w), Some(h)) = (stream["width"].as_u64(), stream["height"].as_u64()) else {
        return Err(RenderError::Unreadable("no picture in this video".into()));
    };
    if w == 0 || h == 0 || w > 16_384 || h > 16_384 {
        return Err(RenderError::Unreadable("the picture's size".into()));
    }
    let rotation = stream["side_data_list"]
        .as_array()
        .and_then(|l| l.iter().find_map(|s| s["rotation"].as_f64()))
        .or_else(|| {
            stream["tags"]["rotate"]
                .as_str()
                .and_then(|r| r.parse().ok())
        })
        .unwrap_or(0.0);
    let turned = (rotation.abs().round() as i64) % 180 == 90;
    let duration = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
        .map(Duration::from_secs_f64);
    // "30000/1001"; "0/0" when not known.
    let frame = stream["avg_frame_rate"]
        .as_str()
        .and_then(|r| r.split_once('/'))
        .and_then(|(n, d)| Some((n.parse::<f64>().ok()?, d.parse::<f64>().ok()?)))
        .map(|(n, d)| d / n)
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 3600.0)
        .map(Duration::from_secs_f64);
    Ok(Probed {
        size: if turned {
            (h as u32, w as u32)
        } else {
            (w as u32, h as u32)
        },
        duration,
        frame,
    })
}

/// `size` scaled to fit [`MAX_SIZE`] (never up), both sides even as H.264's 4:2:0 needs.
pub(super) fn fitted(size: (u32, u32)) -> (u32, u32) {
    fitted_within(size, MAX_SIZE)
}

/// `size` scaled to fit `max` (never up), both sides even.
pub(super) fn fitted_within((w, h): (u32, u32), max: (u32, u32)) -> (u32, u32) {
    let scale = (f64::from(max.0) / f64::from(w))
        .min(f64::from(max.1) / f64::from(h))
        .min(1.0);
    let even = |v: f64| ((v / 2.0).round() as u32 * 2).max(2);
    (even(f64::from(w) * scale), even(f64::from(h) * scale))
}

/// The mark on a transparent canvas of `size`, as RGBA: the glyphs' coverage burned into a
/// black picture by the pictures' own `Burner` (light ink on dark: the values are the ink's
/// strength), then laid out as light ink with a dark copy two pixels down and to the right.
pub(super) fn overlay(mark: &Mark, font: &ab_glyph::FontVec, (w, h): (u32, u32)) -> Vec<u8> {
    let (width, height) = (w as usize, h as usize);
    let mut ink = vec![0u8; width * height];
    crate::render::mark::Burner::new(mark, font, (w, h), 1).burn(&mut ink, 0);
    let shift = (height / 360).max(1);
    let mut rgba = vec![0u8; width * height * 4];
    for y in 0..height {
        for x in 0..width {
            let light = ink[y * width + x];
            let dark = if x >= shift && y >= shift {
                ink[(y - shift) * width + x - shift]
            } else {
                0
            };
            let pixel = &mut rgba[(y * width + x) * 4..][..4];
            if light >= dark && light > 0 {
                pixel.copy_from_slice(&[255, 255, 255, light]);
            } else if dark > 0 {
                pixel.copy_from_slice(&[0, 0, 0, dark]);
            }
        }
    }
    rgba
}

/// How long a transcode may take: two minutes, and three times the video's length, at most
/// three hours (a length not known: the cap).
pub(super) fn wall(duration: Option<Duration>) -> Duration {
    let cap = Duration::from_secs(3 * 3600);
    duration.map_or(cap, |d| (Duration::from_secs(120) + d * 3).min(cap))
}

pub(super) async fn run_ffmpeg(
    ffmpeg: &Path,
    source: &Path,
    mark: &Path,
    out: &Path,
    (w, h): (u32, u32),
    duration: Option<Duration>,
    progress: &impl Fn(Option<u8>),
) -> Result<(), RenderError> {
    let wall = wall(duration);
    let mut command = limited(ffmpeg, wall);
    let threads = THREADS.to_string();
    command
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args([
            "-threads",
            &threads,
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            FORMATS,
        ])
        .arg("-i")
        .arg(source)
        .args([
            "-f",
            "rawvideo",
            "-pixel_format",
            "rgba",
            "-video_size",
            &format!("{w}x{h}"),
        ])
        .arg("-i")
        .arg(mark)
        .arg("-filter_complex")
        .arg(format!(
            "[0:v:0]scale={w}:{h},setsar=1[v];[v][1:v]overlay=0:0:format=yuv420,format=yuv420p[out]"
        ))
        .args(["-map", "[out]", "-map", "0:a:0?"])
        .args(["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-threads", &threads,
        ])
        .args(["-c:a", "aac", "-b:a", "96k", "-ac", "2"])
        .args([
            "-movflags",
            "+faststart",
            "-progress",
            "pipe:1",
            "-nostats",
            "-f",
            "mp4",
        ])
        .arg(out);
    supervise(command, ffmpeg, wall, |done| {
        progress(percent(done, duration))
    })
    .await
}

/// Runs `command`, an `ffmpeg` told `-progress pipe:1`, to its end within `wall` (killed past
/// it), handing `done` each `out_time_us` it reports; its complaints make the error.
pub(super) async fn supervise(
    mut command: tokio::process::Command,
    ffmpeg: &Path,
    wall: Duration,
    done: impl Fn(&str),
) -> Result<(), RenderError> {
    let mut child = command.spawn().map_err(|e| spawn_error(e, ffmpeg))?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(RenderError::Unreadable("no pipes to ffmpeg".into()));
    };
    let complaints = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = (&mut stderr).take(16 * 1024).read_to_end(&mut text).await;
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        String::from_utf8_lossy(&text).trim().to_owned()
    });
    let worked = tokio::time::timeout(wall, async {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(value) = line.strip_prefix("out_time_us=") {
                done(value);
            }
        }
        child.wait().await
    })
    .await;
    // Dropped on timeout: kill_on_drop ends the child.
    let Ok(status) = worked else {
        return Err(RenderError::Unreadable(
            "the transcode took too long".into(),
        ));
    };
    let status = status.map_err(io_error)?;
    let complaints = complaints.await.unwrap_or_default();
    if !status.success() {
        return Err(RenderError::Unreadable(format!(
            "ffmpeg {status}: {}",
            complaints.chars().take(300).collect::<String>()
        )));
    }
    Ok(())
}

/// How far a transcode is, from `out_time_us` and the length (below 100 until it is done).
fn percent(out_time_us: &str, duration: Option<Duration>) -> Option<u8> {
    let done = out_time_us.trim().parse::<u64>().ok()?;
    let total = duration?.as_micros().max(1) as u64;
    Some((done.saturating_mul(100) / total).min(99) as u8)
}

/// `program` to run under limits: 2 GiB of address space (with two malloc arenas, so its
/// threads do not reserve it all), CPU seconds for its threads over `wall`, no core file, an
/// environment of its own.
pub(super) fn limited(program: &Path, wall: Duration) -> tokio::process::Command {
    let mut command = super::super::child(program, MEMORY, wall.as_secs() * (THREADS + 1));
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("MALLOC_ARENA_MAX", "2");
    command
}

fn spawn_error(e: std::io::Error, program: &Path) -> RenderError {
    super::super::spawn_error(e, &program.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcode_fits_720p_and_keeps_sides_even() {
        assert_eq!(fitted((1920, 1080)), (1280, 720));
        assert_eq!(fitted((1280, 720)), (1280, 720));
        assert_eq!(fitted((640, 480)), (640, 480));
        assert_eq!(fitted((1080, 1920)), (406, 720));
        assert_eq!(fitted((3840, 1080)), (1280, 360));
        assert_eq!(fitted((641, 361)), (642, 362));
    }

    #[test]
    fn progress_is_read_against_the_length_and_stays_below_done() {
        let three = Some(Duration::from_secs(3));
        assert_eq!(percent("1200000", three), Some(40));
        assert_eq!(percent("3018594", three), Some(99));
        assert_eq!(percent("N/A", three), None);
        assert_eq!(percent("100", None), None);
    }

    #[test]
    fn a_turned_phone_video_is_measured_as_shown() {
        let json = br#"{"streams":[{"width":1920,"height":1080,"side_data_list":[{"rotation":-90}]}],"format":{"duration":"12.5"}}"#;
        let probed = parse_probe(json).unwrap();
        assert_eq!(probed.size, (1080, 1920));
        assert_eq!(probed.duration, Some(Duration::from_millis(12_500)));
        assert!(parse_probe(br#"{"streams":[],"format":{}}"#).is_err());
    }

    #[test]
    fn the_wall_time_grows_with_the_length_up_to_a_cap() {
        assert_eq!(
            wall(Some(Duration::from_secs(10))),
            Duration::from_secs(150)
        );
        assert_eq!(wall(None), Duration::from_secs(3 * 3600));
        assert_eq!(
            wall(Some(Duration::from_secs(36_000))),
            Duration::from_secs(3 * 3600)
        );
    }

    #[test]
    fn ffprobe_is_found_beside_ffmpeg() {
        assert_eq!(ffprobe_of(Path::new("ffmpeg")), PathBuf::from("ffprobe"));
        assert_eq!(
            ffprobe_of(Path::new("/opt/ff/bin/ffmpeg")),
            PathBuf::from("/opt/ff/bin/ffprobe")
        );
        assert!(
            !crate::render::video::Videos::new(Path::new("/tmp"), Path::new("/nonexistent/ffmpeg"))
                .installed()
        );
    }
}
