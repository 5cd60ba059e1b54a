//! Redaction burned into a video (issue 34): staff black out faces and number plates, the
//! original is kept, and this makes the new derivative — H.264 (4:2:0, CRF 20) and AAC in an
//! MP4 whose index comes first, at the size the original is shown (turned as the file says, at
//! most 1920 × 1080 either way up), metadata, chapters, subtitles and data left behind — by
//! Debian's `ffmpeg` in a child process under the limits of `ffmpeg.rs`.
//!
//! A box is a [`Track`]: places (fractions of the picture as shown) at keyframe times, moving in
//! straight lines between them. `drawbox` cannot follow it (its x, y, w and h are not functions
//! of time, in 5.1 as in 7, and `sendcmd`, which could move it step by step, keeps every parsed
//! word in an allocation as large as the rest of its file: a few thousand steps pass 2 GiB of
//! address space). So a track is burned as black pictures laid over the video by `overlay`,
//! whose corner is an expression of each picture's own time (`eval=frame`): the track's edges,
//! straight between keyframes, computed per picture. A picture laid over has one size, so a
//! track becomes one box per run of keyframes whose sizes differ little (see [`plan`]), each as
//! large as the largest place in its run; every box is widened each side by [`PAD`] pixels
//! (4:2:0 chroma, and the ringing of H.264 at a hard edge, which reaches 5 pixels into black)
//! and by the most its edges move in one picture's time, and is shown (`enable`) from one
//! picture's time before its start to [`SLACK`] after its end: a picture stays on screen until
//! the next, so the one on screen at `start`, where staff drew the box, began earlier. A box may
//! cover a few pixels too many, never one too few.
//!
//! Nothing from the input reaches the filter graph as text: tracks are checked ([`check`]), and
//! the graph is written here from numbers, into a private file.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::Path;

use super::ffmpeg::{FORMATS, THREADS, ffprobe_of, fitted_within, limited, probe, supervise, wall};
use super::io_error;
use crate::render::RenderError;

/// The most boxes one video may have.
pub const MAX_TRACKS: usize = 200;
/// The most keyframes one box may have.
pub const MAX_KEYFRAMES: usize = 500;
/// The largest picture made (either way up); a larger original is scaled down.
pub const MAX_SIZE: (u32, u32) = (1920, 1080);
/// The latest time, in seconds, a box may start or end at (two days).
pub const MAX_TIME: f64 = 172_800.0;
/// Pixels added around each box, past its edges.
pub const PAD: i64 = 4;
/// The most boxes laid over one video, all tracks together (each is an `overlay`).
pub const MAX_BOXES: usize = 400;
/// The most knots the boxes follow, all together (a box's own few more): past that, a box
/// follows every second, third… of them, widened by how far that strays. ffmpeg's expressions
/// are costly: 200 tracks of 500 keyframes followed in full took 2.6 GB of address space, and
/// at this many 1.15 GB, encoder included (0.69 GB without boxes).
pub const MAX_KNOTS: usize = 10_000;
/// How far a box's time is widened on each side, in seconds, against rounding.
pub const SLACK: f64 = 0.001;
/// The time between pictures when it is not known, and the most it is taken to be.
const LEAD: f64 = 0.1;
const MAX_LEAD: f64 = 1.0;

/// One box's place at one time: fractions of the picture as shown (0.0..=1.0), x/y the top-left
/// corner.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Place {
    pub t: f64,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// A box drawn from `start` to `end` (seconds from the video's first picture), moving linearly
/// between its keyframes, at its first keyframe's place before that one and at its last's after
/// (one keyframe: a still box from `start` to `end`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Track {
    pub start: f64,
    pub end: f64,
    pub keyframes: Vec<Place>,
}

/// Whether `tracks` may be burned: at most [`MAX_TRACKS`] of at most [`MAX_KEYFRAMES`]
/// keyframes (at least one), every number finite, times within `0..=MAX_TIME` and start ≤ end,
/// keyframe times running forward (equal allowed: a jump) within them, places within the
/// picture with a width and height above 0. Refused as [`RenderError::Unreadable`], saying which
/// box (counted from 1) and why.
pub fn check(tracks: &[Track]) -> Result<(), RenderError> {
    let refuse = |why: String| Err(RenderError::Unreadable(format!("redaction: {why}")));
    if tracks.len() > MAX_TRACKS {
        return refuse(format!(
            "{} boxes, at most {MAX_TRACKS} are drawn in one video",
            tracks.len()
        ));
    }
    let time = |t: f64| t.is_finite() && (0.0..=MAX_TIME).contains(&t);
    let fraction = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
    for (n, track) in tracks.iter().enumerate().map(|(i, t)| (i + 1, t)) {
        if !time(track.start) || !time(track.end) {
            return refuse(format!(
                "box {n}: its start and end must be seconds from 0 to {MAX_TIME}"
            ));
        }
        if track.start > track.end {
            return refuse(format!("box {n}: it ends before it starts"));
        }
        if track.keyframes.is_empty() {
            return refuse(format!("box {n}: it has no place"));
        }
        if track.keyframes.len() > MAX_KEYFRAMES {
            return refuse(format!(
                "box {n}: {} keyframes, at most {MAX_KEYFRAMES}",
                track.keyframes.len()
            ));
        }
        let mut last = track.start;
        for (k, p) in track.keyframes.iter().enumerate().map(|(i, p)| (i + 1, p)) {
            if !time(p.t) || p.t < last || p.t > track.end {
                return refuse(format!(
                    "box {n}, keyframe {k}: times must run forward from the box's start to its end"
                ));
            }
            last = p.t;
            if ![p.x, p.y, p.w, p.h].into_iter().all(fraction) {
                return refuse(format!(
                    "box {n}, keyframe {k}: places are fractions of the picture, from 0 to 1"
                ));
            }
            if p.w <= 0.0 || p.h <= 0.0 {
                return refuse(format!(
                    "box {n}, keyframe {k}: its width and height must be above 0"
                ));
            }
        }
    }
    Ok(())
}

/// Burns `tracks` into `source`, writing the new video to `out` (a temporary path of the
/// caller's, overwritten), telling `progress` how far it is (0.0 to 1.0, 1.0 once done). On any
/// failure after the tracks were checked, `out` is removed. Errors: [`RenderError::Missing`]
/// when `ffmpeg` or its `ffprobe` is not there, otherwise [`RenderError::Unreadable`] (tracks
/// refused, an original ffmpeg cannot read, over its limits).
pub async fn burn(
    ffmpeg: &Path,
    source: &Path,
    out: &Path,
    tracks: &[Track],
    progress: impl Fn(f32) + Send + 'static,
) -> Result<(), RenderError> {
    check(tracks)?;
    let made = burned(ffmpeg, source, out, tracks, &progress).await;
    match made {
        Ok(()) => progress(1.0),
        Err(_) => {
            if let Err(e) = std::fs::remove_file(out)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(error = %e, file = %out.display(), "a failed redaction could not be removed");
            }
        }
    }
    made
}

async fn burned(
    ffmpeg: &Path,
    source: &Path,
    out: &Path,
    tracks: &[Track],
    progress: &impl Fn(f32),
) -> Result<(), RenderError> {
    let probed = probe(&ffprobe_of(ffmpeg), source).await?;
    let (w, h) = probed.size;
    let size = fitted_within(
        probed.size,
        if h > w {
            (MAX_SIZE.1, MAX_SIZE.0)
        } else {
            MAX_SIZE
        },
    );
    let lead = probed.frame.map_or(LEAD, |f| f.as_secs_f64().min(MAX_LEAD));
    let graph = tempfile::Builder::new()
        .prefix("redact-")
        .suffix(".txt")
        .tempfile()
        .map_err(io_error)?;
    tokio::fs::write(graph.path(), script(size, &plan(tracks, size, lead)))
        .await
        .map_err(io_error)?;
    let wall = wall(probed.duration);
    let mut command = limited(ffmpeg, wall);
    let threads = THREADS.to_string();
    command
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-threads", &threads, "-protocol_whitelist", "file"])
        // A picture without a time could not be placed: times are made from the stream's.
        .args(["-format_whitelist", FORMATS, "-fflags", "+genpts", "-i"])
        .arg(source)
        .arg("-filter_complex_script")
        // Read through ffmpeg's own I/O: `file:` keeps a colon in the path from naming a protocol.
        .arg({
            let mut path = std::ffi::OsString::from("file:");
            path.push(graph.path());
            path
        })
        .args(["-map", "[out]", "-map", "0:a:0?"])
        .args(["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "20"])
        .args(["-pix_fmt", "yuv420p", "-threads", &threads])
        .args(["-c:a", "aac", "-b:a", "128k", "-ac", "2"])
        .args(["-movflags", "+faststart", "-progress", "pipe:1", "-nostats"])
        .args(["-f", "mp4"])
        .arg(out);
    let total = probed.duration.map(|d| d.as_secs_f64() * 1e6);
    supervise(command, ffmpeg, wall, |done| {
        if let (Ok(done), Some(total)) = (done.trim().parse::<f64>(), total) {
            progress((done / total.max(1.0)).clamp(0.0, 0.99) as f32);
        }
    })
    .await?;
    drop(graph);
    Ok(())
}

/// A rectangle in fractions of the picture.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rect {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

impl Rect {
    fn of(p: &Place) -> Rect {
        Rect {
            left: p.x,
            top: p.y,
            right: p.x + p.w,
            bottom: p.y + p.h,
        }
    }
}

/// Where a track's box is at `t`: between two keyframes on the straight line from one to the
/// other, before the first at the first, after the last at the last (at a jump, the later).
fn at(keyframes: &[Place], t: f64) -> Rect {
    let next = keyframes.partition_point(|k| k.t <= t);
    match (
        next.checked_sub(1).and_then(|i| keyframes.get(i)),
        keyframes.get(next),
    ) {
        (Some(a), Some(b)) => {
            // a.t <= t < b.t: the span is above 0.
            let f = ((t - a.t) / (b.t - a.t)).clamp(0.0, 1.0);
            let (a, b) = (Rect::of(a), Rect::of(b));
            let mix = |u: f64, v: f64| u + (v - u) * f;
            Rect {
                left: mix(a.left, b.left),
                top: mix(a.top, b.top),
                right: mix(a.right, b.right),
                bottom: mix(a.bottom, b.bottom),
            }
        }
        (Some(last), None) => Rect::of(last),
        (None, Some(first)) => Rect::of(first),
        (None, None) => Rect {
            left: 0.0,
            top: 0.0,
            right: 1.0,
            bottom: 1.0,
        },
    }
}

/// A track's edge as it moves: (time, pixels) at each knot, straight between them, held before
/// the first and after the last; at two knots of one time, the later from then on.
type Knots = Vec<(f64, f64)>;

/// Rounded to whole microseconds (times) or millionths of a pixel: what the graph says.
fn sixth(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The slope (pixels a second) between two knots of different times, as the graph says it.
fn slope((t0, v0): (f64, f64), (t1, v1): (f64, f64)) -> f64 {
    sixth((v1 - v0) / (t1 - t0))
}

/// The edge at `t`, computed as the graph's expression computes it (see [`expression`]).
fn edge(knots: &[(f64, f64)], t: f64) -> f64 {
    let next = knots.partition_point(|k| k.0 <= t);
    match (
        next.checked_sub(1).and_then(|i| knots.get(i)),
        knots.get(next),
    ) {
        (Some(&a), Some(&b)) => a.1 + (t - a.0) * slope(a, b),
        (Some(&(_, v)), None) | (None, Some(&(_, v))) => v,
        (None, None) => 0.0,
    }
}

/// The edge just before `t` (the earlier place at a jump).
fn edge_before(knots: &[(f64, f64)], t: f64) -> f64 {
    let next = knots.partition_point(|k| k.0 < t);
    match (
        next.checked_sub(1).and_then(|i| knots.get(i)),
        knots.get(next),
    ) {
        // a.0 < t <= b.0.
        (Some(&a), Some(&b)) => a.1 + (t - a.0) * slope(a, b),
        (Some(&(_, v)), None) | (None, Some(&(_, v))) => v,
        (None, None) => 0.0,
    }
}

/// The edge as an expression of `t`: its pieces (held before the first knot, straight from
/// each knot to the next of a later time, held after the last) chosen by a balanced tree of
/// `if(lt(t,…),…,…)` at the knot times — evaluated in a few steps a picture, and nested no
/// deeper than ffmpeg's parser allows (about 100: a flat sum of 100 pieces is refused).
fn expression(knots: &[(f64, f64)]) -> String {
    let mut pieces: Vec<(f64, String)> = Vec::new();
    if let Some(&(t, v)) = knots.first() {
        pieces.push((t, format!("{v:.6}")));
    }
    for (i, &(t, v)) in knots.iter().enumerate() {
        match knots.get(i + 1) {
            Some(&next) if next.0 > t => pieces.push((
                t,
                format!("({v:.6}+(t-{t:.6})*({:.6}))", slope((t, v), next)),
            )),
            Some(_) => {}
            None => pieces.push((t, format!("{v:.6}"))),
        }
    }
    let mut text = String::new();
    tree(&mut text, &pieces);
    text
}

/// Pieces, each from its time on (the first from the start of time), as nested `if`s.
fn tree(text: &mut String, pieces: &[(f64, String)]) {
    match pieces {
        [] => text.push('0'),
        [(_, piece)] => text.push_str(piece),
        _ => {
            let (before, after) = pieces.split_at(pieces.len() / 2);
            let _ = write!(text, "if(lt(t,{:.6}),", after[0].0);
            tree(text, before);
            text.push(',');
            tree(text, after);
            text.push(')');
        }
    }
}

/// The most an edge moves within `window` seconds: over pairs of its knots, and of the places
/// `window` before and after each knot, no further apart in time than `window` (a straight
/// piece between two such places moves no more than its ends); the lowest and highest of the
/// window before each point kept in order (a monotonic queue), so it is quick for many knots.
fn motion(knots: &[(f64, f64)], window: f64) -> f64 {
    let mut points: Vec<(f64, f64)> = knots.to_vec();
    for &(t, _) in knots {
        points.extend([t - window, t + window].map(|c| (c, edge(knots, c))));
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut lows, mut highs) = (VecDeque::new(), VecDeque::new());
    let mut most: f64 = 0.0;
    for &(t, v) in &points {
        while lows.back().is_some_and(|&(_, low)| low >= v) {
            lows.pop_back();
        }
        while highs.back().is_some_and(|&(_, high)| high <= v) {
            highs.pop_back();
        }
        lows.push_back((t, v));
        highs.push_back((t, v));
        // A microsecond over: `t + window - t` may round above `window`.
        let gone = |&(at, _): &(f64, f64)| t - at > window + 1e-6;
        while lows.front().is_some_and(gone) {
            lows.pop_front();
        }
        while highs.front().is_some_and(gone) {
            highs.pop_front();
        }
        if let (Some(&(_, low)), Some(&(_, high))) = (lows.front(), highs.front()) {
            most = most.max(v - low).max(high - v);
        }
    }
    most
}

/// One black box laid over the video: `size` pixels, shown from `from` to `to` (seconds), its
/// top-left corner at the `x` and `y` edges less `shift`, floored, at least -2, and even
/// (`overlay` truncates it so in 4:2:0).
#[derive(Debug)]
struct Boxed {
    pub from: f64,
    pub to: f64,
    pub size: (i64, i64),
    pub x: Knots,
    pub y: Knots,
    pub shift: (i64, i64),
}

/// The boxes that burn `tracks` into a `size` picture whose pictures are `lead` seconds apart.
///
/// A track becomes boxes over runs of its keyframes (each run's last the next one's first),
/// a run's box as large as the largest place in it: runs end where the size has changed by
/// more than a spread (long pieces are cut, on their line, so that they can) and at jumps. Each
/// box is widened each side by [`PAD`] and by the most its edges move in a picture's time (the
/// picture at `t` stays on screen until `t + lead`), and shown from `lead` before its run. The
/// spread starts at 16 pixels (more where the sizes change so much that the cuts alone would
/// pass [`MAX_BOXES`]) and doubles, then jumps stop ending runs, until every track fits in
/// [`MAX_BOXES`] (one box per track: 200); and boxes follow fewer knots where all together
/// they would pass [`MAX_KNOTS`].
fn plan(tracks: &[Track], (w, h): (u32, u32), lead: f64) -> Vec<Boxed> {
    let picture = (f64::from(w), f64::from(h));
    let changes: f64 = tracks
        .iter()
        .flat_map(|t| t.keyframes.windows(2))
        .map(|k| {
            ((k[1].w - k[0].w) * picture.0)
                .abs()
                .max(((k[1].h - k[0].h) * picture.1).abs())
        })
        .sum();
    let mut spread = (changes / MAX_BOXES as f64).max(16.0);
    loop {
        let jumps = spread <= picture.0.max(picture.1);
        let runs: Vec<(&Track, Vec<Vec<[f64; 5]>>)> = tracks
            .iter()
            .map(|track| (track, runs(track, picture, spread, jumps)))
            .collect();
        if runs.iter().map(|(_, r)| r.len()).sum::<usize>() <= MAX_BOXES || !jumps {
            let knots: usize = runs.iter().flat_map(|(_, r)| r).map(Vec::len).sum();
            let stride = knots.div_ceil(MAX_KNOTS).max(1);
            return runs
                .into_iter()
                .flat_map(|(track, runs)| {
                    let count = runs.len();
                    runs.into_iter().enumerate().map(move |(i, run)| {
                        let from = if i == 0 { track.start } else { run[0][0] };
                        let to = match run.last() {
                            Some(last) if i + 1 < count => last[0],
                            _ => track.end,
                        };
                        let shown = (from - lead - SLACK, to + SLACK);
                        boxed(&run, shown, lead, picture, stride)
                    })
                })
                .collect();
        }
        spread *= 2.0;
    }
}

/// A track's keyframes in pixels (time, left, top, right, bottom), cut on their lines where the
/// size changes by more than `spread`, in runs (see [`plan`]).
fn runs(track: &Track, (fw, fh): (f64, f64), spread: f64, jumps: bool) -> Vec<Vec<[f64; 5]>> {
    let px = |t: f64, r: Rect| [t, r.left * fw, r.top * fh, r.right * fw, r.bottom * fh];
    let mut knots: Vec<[f64; 5]> = Vec::new();
    for (i, k) in track.keyframes.iter().enumerate() {
        if let Some(prev) = i.checked_sub(1).and_then(|i| track.keyframes.get(i))
            && k.t > prev.t
        {
            let change = ((k.w - prev.w) * fw).abs().max(((k.h - prev.h) * fh).abs());
            let cuts = (change / spread).ceil().min(64.0) as u32;
            for c in 1..cuts {
                let t = sixth(prev.t + (k.t - prev.t) * f64::from(c) / f64::from(cuts));
                if t > prev.t && t < k.t {
                    knots.push(px(t, at(&[*prev, *k], t)));
                }
            }
        }
        knots.push(px(sixth(k.t), Rect::of(k)));
    }
    let size = |k: &[f64; 5]| (k[3] - k[1], k[4] - k[2]);
    let mut runs = Vec::new();
    let mut first = 0;
    loop {
        let mut last = first;
        // The narrowest and widest, the lowest and highest of the run.
        let (w, h) = size(&knots[first]);
        let mut range = [w, w, h, h];
        while let Some(next) = knots.get(last + 1) {
            let (w, h) = size(next);
            let wider = [
                range[0].min(w),
                range[1].max(w),
                range[2].min(h),
                range[3].max(h),
            ];
            let fits = wider[1] - wider[0] <= spread && wider[3] - wider[2] <= spread;
            let jump = next[0] <= knots[last][0];
            if (jump && jumps) || (last > first && !fits) {
                break;
            }
            range = wider;
            last += 1;
        }
        runs.push(knots[first..=last].to_vec());
        let Some(next) = knots.get(last + 1) else {
            return runs;
        };
        first = if jumps && next[0] <= knots[last][0] {
            last + 1
        } else {
            last
        };
    }
}

/// The box of one run of knots (time, left, top, right, bottom in pixels), shown `(from, to)`,
/// following every `stride`th knot (and the last) of the run.
fn boxed(
    run: &[[f64; 5]],
    (from, to): (f64, f64),
    lead: f64,
    (fw, fh): (f64, f64),
    stride: usize,
) -> Boxed {
    let window = lead + 2.0 * SLACK;
    // An axis: the near edge followed, how far it may be from where the box is (its motion in
    // a picture's time, and how far the followed knots stray from all of them), the largest
    // size. The far edge is within the largest size of the near one.
    let axis = |near: usize, far: usize, picture: f64| {
        let all: Knots = run.iter().map(|k| (k[0], sixth(k[near]))).collect();
        let followed: Knots = all
            .iter()
            .enumerate()
            .filter(|(i, _)| i % stride == 0 || i + 1 == all.len())
            .map(|(_, k)| *k)
            .collect();
        let stray = all.iter().fold(0.0, |m: f64, &(t, v)| {
            m.max((v - edge(&followed, t)).abs())
                .max((v - edge_before(&followed, t)).abs())
        });
        let moved = (motion(&followed, window) + stray).ceil() as i64;
        let largest = run.iter().map(|k| k[far] - k[near]).fold(0.0, f64::max);
        // The corner lands up to 2 pixels before the edge less the shift (floored, then even);
        // no box need be larger than the picture and a corner before it (-2 or more).
        let side = (largest.ceil() as i64 + 2 * (PAD + moved) + 2 + 1) & !1;
        (followed, PAD + moved, side.min(picture as i64 + 4))
    };
    let (x, shift_x, width) = axis(1, 3, fw);
    let (y, shift_y, height) = axis(2, 4, fh);
    Boxed {
        // Whole microseconds, outward.
        from: (from * 1e6).floor() / 1e6,
        to: (to * 1e6).ceil() / 1e6,
        size: (width, height),
        x,
        y,
        shift: (shift_x, shift_y),
    }
}

/// The filter graph: the video scaled to `(w, h)`, then each box cut from one black picture
/// (`crop` of a `split`: one picture in memory) and laid over it where its expressions say.
fn script((w, h): (u32, u32), boxes: &[Boxed]) -> String {
    let mut graph = format!("[0:v:0]scale={w}:{h},setsar=1,format=yuv420p");
    if boxes.is_empty() {
        graph.push_str("[out]\n");
        return graph;
    }
    let (bw, bh) = boxes
        .iter()
        .fold((2, 2), |(w, h), b| (w.max(b.size.0), h.max(b.size.1)));
    let _ = write!(
        graph,
        "[v0];\ncolor=c=black:s={bw}x{bh}:r=1:d=1,format=yuva420p,split={}",
        boxes.len()
    );
    for i in 0..boxes.len() {
        let _ = write!(graph, "[k{i}]");
    }
    graph.push_str(";\n");
    for (i, b) in boxes.iter().enumerate() {
        let (bw, bh) = b.size;
        let next = if i + 1 == boxes.len() {
            "[out]\n".to_owned()
        } else {
            format!("[v{}];\n", i + 1)
        };
        let _ = write!(
            graph,
            "[k{i}]crop={bw}:{bh}:0:0[c{i}];\n[v{i}][c{i}]overlay=eval=frame:format=yuv420\
             :x='max(-2,floor({}-{}))':y='max(-2,floor({}-{}))'\
             :enable='between(t,{:.6},{:.6})'{next}",
            expression(&b.x),
            b.shift.0,
            expression(&b.y),
            b.shift.1,
            b.from,
            b.to,
        );
    }
    graph
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
