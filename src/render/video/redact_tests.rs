//! Redaction on real video: a busy test picture made by ffmpeg, boxes burned in, every picture
//! of the result decoded and looked at where the boxes are and are not.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::*;

/// Whether ffmpeg is missing here: CI installs it, so there a missing one fails the test
/// instead of skipping it.
fn ffmpeg_missing() -> bool {
    let missing = !Path::new("/usr/bin/ffmpeg").exists() || !Path::new("/usr/bin/ffprobe").exists();
    assert!(
        !(missing && std::env::var_os("CI").is_some()),
        "CI installs ffmpeg"
    );
    missing
}

const FFMPEG: &str = "/usr/bin/ffmpeg";
const SIZE: (usize, usize) = (320, 240);
const RATE: f64 = 25.0;

/// Runs ffmpeg with `args` (split at spaces), writing `out`.
fn ffmpeg(args: &str, out: &Path) {
    let made = std::process::Command::new(FFMPEG)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args.split_whitespace())
        .arg(out)
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg {args}");
}

/// Three seconds of a bright, busy 320 × 240 picture at 25 a second with a tone, as a phone's
/// MP4, titled "secret".
fn source(dir: &Path) -> PathBuf {
    let out = dir.join("source.mp4");
    ffmpeg(
        "-f lavfi -i testsrc2=size=320x240:rate=25:duration=3 \
         -f lavfi -i sine=frequency=440:duration=3 \
         -metadata title=secret -metadata:s:v:0 handler_name=secret \
         -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest",
        &out,
    );
    out
}

fn probe_text(path: &Path, what: &[&str]) -> String {
    let out = std::process::Command::new("/usr/bin/ffprobe")
        .args(["-v", "error"])
        .args(what)
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// A picture's time and its pixels as RGB.
type Picture = (f64, Vec<u8>);

/// Every picture of `path`, and the pictures' size.
fn decode(path: &Path) -> ((usize, usize), Vec<Picture>) {
    let v0 = ["-select_streams", "v:0", "-of", "csv=p=0", "-show_entries"];
    let size = probe_text(path, &[&v0[..], &["stream=width,height"]].concat());
    let (w, h) = size.trim().split_once(',').unwrap();
    let size = (w.parse().unwrap(), h.parse().unwrap());
    let times: Vec<f64> = probe_text(path, &[&v0[..], &["frame=pts_time"]].concat())
        .split_whitespace()
        .map(|t| t.trim_end_matches(',').parse().unwrap())
        .collect();
    let raw = std::process::Command::new(FFMPEG)
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-fps_mode", "passthrough"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
        .output()
        .unwrap();
    assert!(raw.status.success());
    let frame = size.0 * size.1 * 3;
    assert_eq!(raw.stdout.len() % frame, 0);
    assert_eq!(
        raw.stdout.len() / frame,
        times.len(),
        "a time for each picture"
    );
    let frames = raw
        .stdout
        .chunks(frame)
        .zip(times)
        .map(|(pixels, t)| (t, pixels.to_vec()))
        .collect();
    (size, frames)
}

/// The pixels of a box in fractions, its edges rounded inward and shrunk by 2 pixels (chroma
/// is shared between pairs of pixels): `[x0, y0, x1, y1)`.
fn inside(r: Rect, (w, h): (usize, usize)) -> [usize; 4] {
    let (w, h) = (w as f64, h as f64);
    [
        (r.left * w).ceil() as usize + 2,
        (r.top * h).ceil() as usize + 2,
        (r.right * w).floor() as usize - 2,
        (r.bottom * h).floor() as usize - 2,
    ]
}

/// How many pixels of `region` are black (each channel ≤ 16), of how many, and the brightest
/// channel met there.
fn black(frame: &[u8], width: usize, [x0, y0, x1, y1]: [usize; 4]) -> (usize, usize, u8) {
    let (mut dark, mut all, mut worst) = (0, 0, 0u8);
    for y in y0..y1 {
        for x in x0..x1 {
            let px = &frame[(y * width + x) * 3..][..3];
            let top = px.iter().copied().max().unwrap();
            worst = worst.max(top);
            all += 1;
            dark += usize::from(top <= 16);
        }
    }
    (dark, all, worst)
}

fn place(t: f64, x: f64, y: f64, w: f64, h: f64) -> Place {
    Place { t, x, y, w, h }
}

fn rect(x: f64, y: f64, w: f64, h: f64) -> Rect {
    Rect::of(&place(0.0, x, y, w, h))
}

/// Burns `tracks` into `source`, into `out`: the progress it told and how long it took.
async fn timed_burn(source: &Path, out: &Path, tracks: &[Track]) -> (Vec<f32>, f64) {
    let told = Arc::new(Mutex::new(Vec::new()));
    let tell = told.clone();
    let began = Instant::now();
    burn(Path::new(FFMPEG), source, out, tracks, move |p| {
        tell.lock().unwrap().push(p)
    })
    .await
    .unwrap();
    let took = began.elapsed().as_secs_f64();
    (told.lock().unwrap().clone(), took)
}

#[tokio::test]
async fn a_still_box_blacks_out_its_region_from_its_start_to_its_end_and_nothing_more() {
    if ffmpeg_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = source(dir.path());
    let out = dir.path().join("redacted.mp4");
    let region = (0.25, 0.3, 0.3, 0.35);
    let track = still(1.0, 2.0, place(1.0, region.0, region.1, region.2, region.3));
    let (told, took) = timed_burn(&source, &out, &[track]).await;
    eprintln!("a still box burned into 3 s of 320 × 240 in {took:.2} s");
    assert!(told.windows(2).all(|p| p[0] <= p[1]), "{told:?}");
    assert_eq!(told.last(), Some(&1.0));
    assert!(told.len() >= 2, "told how far it got: {told:?}");

    let (size, frames) = decode(&out);
    assert_eq!(size, SIZE);
    assert_eq!(frames.len(), 75);
    let area = inside(rect(region.0, region.1, region.2, region.3), size);
    let (mut covered, mut open) = (0, 0);
    for (t, frame) in &frames {
        let (dark, all, worst) = black(frame, size.0, area);
        if (1.0..=2.0).contains(t) {
            assert_eq!(dark, all, "at {t} s the box lets through {worst}");
            covered += 1;
        } else if *t < 1.0 - 1.0 / RATE - 2.0 * SLACK || *t > 2.0 + 2.0 * SLACK {
            assert!(
                dark * 2 < all,
                "at {t} s the region is black outside the box's time"
            );
            open += 1;
        }
    }
    assert_eq!((covered, open), (26, 48), "pictures looked at");

    // H.264 in 4:2:0 and AAC; the title and the handler's name stayed behind.
    let what = [
        "-show_entries",
        "stream=codec_name,pix_fmt",
        "-of",
        "csv=p=0",
    ];
    let streams = probe_text(&out, &what);
    assert_eq!(
        streams.split_whitespace().collect::<Vec<_>>(),
        ["h264,yuv420p", "aac"]
    );
    let everything = probe_text(&out, &["-show_format", "-show_streams"]);
    assert!(!everything.contains("secret"), "{everything}");
    assert!(probe_text(&source, &["-show_format"]).contains("secret"));
}

/// Where the moving box of the test is at `t`: straight lines between its keyframes.
fn moving_at(keyframes: &[Place], t: f64) -> Rect {
    let i = keyframes
        .windows(2)
        .position(|p| t <= p[1].t)
        .unwrap_or(keyframes.len() - 2);
    let (a, b) = (keyframes[i], keyframes[i + 1]);
    let f = ((t - a.t) / (b.t - a.t)).clamp(0.0, 1.0);
    let mix = |u: f64, v: f64| u + (v - u) * f;
    rect(mix(a.x, b.x), mix(a.y, b.y), mix(a.w, b.w), mix(a.h, b.h))
}

#[tokio::test]
async fn a_moving_box_covers_its_place_in_every_picture() {
    if ffmpeg_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = source(dir.path());
    let out = dir.path().join("redacted.mp4");
    // Across the picture and back, growing and shrinking on the way.
    let keyframes = vec![
        place(0.0, 0.05, 0.05, 0.2, 0.2),
        place(1.5, 0.6, 0.5, 0.35, 0.4),
        place(3.0, 0.1, 0.7, 0.15, 0.25),
    ];
    let track = Track {
        start: 0.0,
        end: 3.0,
        keyframes: keyframes.clone(),
    };
    let (_, took) = timed_burn(&source, &out, &[track]).await;
    let (size, frames) = decode(&out);
    assert_eq!(frames.len(), 75);
    let far = inside(rect(0.6, 0.5, 0.35, 0.4), size);
    let mut darkest = 0u8;
    for (t, frame) in &frames {
        let (dark, all, worst) = black(frame, size.0, inside(moving_at(&keyframes, *t), size));
        assert_eq!(dark, all, "at {t} s the box lets through {worst}");
        darkest = darkest.max(worst);
        // Where the box will be at 1.5 s is not black at the start: it is not drawn all over.
        if *t < 0.4 {
            let (dark, all, _) = black(frame, size.0, far);
            assert!(
                dark * 2 < all,
                "at {t} s the box covers where it is not yet"
            );
        }
    }
    let n = frames.len();
    eprintln!("a moving box burned in {took:.2} s; {n} pictures, brightest in the box {darkest}");
}

#[tokio::test]
async fn a_turned_video_is_redacted_as_shown_and_one_without_sound_stays_so() {
    if ffmpeg_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.mp4");
    ffmpeg(
        "-f lavfi -i testsrc2=size=320x240:rate=25:duration=1 \
         -c:v libx264 -preset ultrafast -pix_fmt yuv420p",
        &plain,
    );
    // A phone held upright: stored lying down, turned a quarter when shown.
    let turned = dir.path().join("turned.mp4");
    let turn = format!("-i {} -c copy -metadata:s:v:0 rotate=90", plain.display());
    ffmpeg(&turn, &turned);
    let out = dir.path().join("redacted.mp4");
    let track = Track {
        start: 0.0,
        end: 1.0,
        keyframes: vec![place(0.0, 0.0, 0.0, 0.5, 0.25)],
    };
    timed_burn(&turned, &out, &[track]).await;
    let (size, frames) = decode(&out);
    assert_eq!(size, (240, 320), "as shown");
    for (t, frame) in &frames {
        let (dark, all, worst) = black(frame, size.0, [0, 0, 118, 78]);
        assert_eq!(dark, all, "at {t} s the box lets through {worst}");
        let (dark, all, _) = black(frame, size.0, [122, 82, 240, 320]);
        assert!(dark * 2 < all, "at {t} s the rest is black");
    }
    let streams = probe_text(
        &out,
        &["-show_entries", "stream=codec_type", "-of", "csv=p=0"],
    );
    assert_eq!(streams.trim(), "video");
}

fn still(start: f64, end: f64, p: Place) -> Track {
    Track {
        start,
        end,
        keyframes: vec![p],
    }
}

#[tokio::test]
async fn tracks_that_do_not_hold_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("redacted.mp4");
    let fine = place(0.5, 0.1, 0.1, 0.2, 0.2);
    let bad = |x, y, w, h| vec![still(0.0, 1.0, place(0.5, x, y, w, h))];
    let moving = |keyframes| {
        vec![Track {
            start: 0.0,
            end: 1.0,
            keyframes,
        }]
    };
    let cases: Vec<(&str, Vec<Track>)> = vec![
        (
            "NaN",
            vec![still(0.0, 1.0, place(f64::NAN, 0.1, 0.1, 0.2, 0.2))],
        ),
        ("NaN place", bad(f64::NAN, 0.1, 0.2, 0.2)),
        ("infinite end", vec![still(0.0, f64::INFINITY, fine)]),
        ("no width", bad(0.1, 0.1, 0.0, 0.2)),
        ("no height", bad(0.1, 0.1, 0.2, -0.1)),
        ("off the picture", bad(1.2, 0.1, 0.2, 0.2)),
        ("negative", vec![still(-1.0, 1.0, fine)]),
        ("backwards", vec![still(2.0, 1.0, fine)]),
        ("far too late", vec![still(0.0, 1e300, fine)]),
        ("keyframe after the end", vec![still(0.0, 0.4, fine)]),
        ("keyframe before the start", vec![still(0.6, 1.0, fine)]),
        ("no keyframe", moving(vec![])),
        (
            "out of order",
            moving(vec![fine, place(0.2, 0.1, 0.1, 0.2, 0.2)]),
        ),
        ("too many keyframes", moving(vec![fine; MAX_KEYFRAMES + 1])),
        ("10,000 boxes", vec![still(0.0, 1.0, fine); 10_000]),
    ];
    for (what, tracks) in cases {
        // No ffmpeg at that path: refused before it is looked for.
        let refused = burn(
            Path::new("/nonexistent/ffmpeg"),
            &out,
            &out,
            &tracks,
            |_| {},
        )
        .await;
        match refused {
            Err(RenderError::Unreadable(why)) => assert!(why.starts_with("redaction: "), "{why}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(!out.exists());
    // The edges hold: a box over the whole picture, a jump, a box as long as the limits allow.
    let edges = [
        still(0.0, MAX_TIME, place(0.0, 0.0, 0.0, 1.0, 1.0)),
        Track {
            start: 0.0,
            end: 1.0,
            keyframes: vec![fine, fine, place(1.0, 1.0, 1.0, 0.01, 0.01)],
        },
    ];
    check(&edges).unwrap();
    check(&vec![still(0.0, 1.0, fine); MAX_TRACKS]).unwrap();
}

#[tokio::test]
async fn without_ffmpeg_nothing_is_burned_and_the_output_goes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("redacted.mp4");
    std::fs::write(&out, b"left over").unwrap();
    let track = still(0.0, 1.0, place(0.5, 0.1, 0.1, 0.2, 0.2));
    let missing = burn(
        Path::new("/nonexistent/bin/ffmpeg"),
        &out,
        &out,
        &[track],
        |_| {},
    )
    .await;
    assert!(
        matches!(missing, Err(RenderError::Missing(_))),
        "{missing:?}"
    );
    assert!(!out.exists());
}

#[tokio::test]
async fn an_original_ffmpeg_cannot_read_is_unreadable_and_leaves_nothing() {
    if ffmpeg_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (source, out) = (dir.path().join("broken.mp4"), dir.path().join("out.mp4"));
    std::fs::write(&source, b"\0\0\0\x20ftypisom not really a video").unwrap();
    std::fs::write(&out, b"left over").unwrap();
    let track = still(0.0, 1.0, place(0.5, 0.1, 0.1, 0.2, 0.2));
    let refused = burn(Path::new(FFMPEG), &source, &out, &[track], |_| {}).await;
    assert!(
        matches!(refused, Err(RenderError::Unreadable(_))),
        "{refused:?}"
    );
    assert!(!out.exists());
}

/// Where `overlay` draws a box at `t`, if it is shown then: `[x0, y0, x1, y1)`. Its corner
/// is the edge less the shift, floored, at least -2, truncated to even (4:2:0).
fn drawn(b: &Boxed, t: f64) -> Option<[i64; 4]> {
    let corner = |knots: &[(f64, f64)], shift: i64| {
        ((edge(knots, t) - shift as f64).floor().max(-2.0) as i64) & !1
    };
    (b.from <= t && t <= b.to).then(|| {
        let (x, y) = (corner(&b.x, b.shift.0), corner(&b.y, b.shift.1));
        [x, y, x + b.size.0, y + b.size.1]
    })
}

/// The pixels a place needs covered: its edges outward, [`PAD`] more, within the picture.
fn needed(r: Rect, (w, h): (u32, u32)) -> [i64; 4] {
    let (fw, fh) = (f64::from(w), f64::from(h));
    let clip = |v: f64, size: u32| (v as i64).clamp(0, i64::from(size));
    [
        clip((r.left * fw).floor() - PAD as f64, w),
        clip((r.top * fh).floor() - PAD as f64, h),
        clip((r.right * fw).ceil() + PAD as f64, w),
        clip((r.bottom * fh).ceil() + PAD as f64, h),
    ]
}

#[test]
fn a_still_box_is_padded_and_laid_on_even_pixels() {
    let size = (320, 240);
    let boxes = plan(
        &[still(0.0, 1.0, place(0.5, 0.1, 0.1, 0.1, 0.1))],
        size,
        0.04,
    );
    let [b] = &boxes[..] else { panic!("{boxes:?}") };
    assert_eq!((b.from, b.to, b.shift), (-0.041, 1.001, (PAD, PAD)));
    // 32..64 × 24..48: 4 pixels more each way, and 2 for the corner's rounding to even.
    assert_eq!(drawn(b, 0.5), Some([28, 20, 70, 54]));
    assert_eq!(drawn(b, -0.05), None);
    // At the far corner, partly off the picture: still over all of it that is there.
    let corner = plan(
        &[still(0.0, 1.0, place(0.5, 0.95, 0.9, 0.05, 0.1))],
        size,
        0.04,
    );
    let [x0, y0, x1, y1] = drawn(&corner[0], 0.5).unwrap();
    assert!(
        x0 <= 300 && y0 <= 212 && x1 >= 320 && y1 >= 240,
        "{:?}",
        [x0, y0, x1, y1]
    );
    // The whole picture, and no larger than it and a corner before it.
    let all = plan(
        &[still(0.0, 1.0, place(0.5, 0.0, 0.0, 1.0, 1.0))],
        size,
        0.04,
    );
    assert_eq!(drawn(&all[0], 0.5), Some([-2, -2, 322, 242]));
}

#[test]
fn the_largest_picture_made_is_1080p_either_way_up() {
    use super::super::ffmpeg::fitted_within;
    assert_eq!(fitted_within((3840, 2160), MAX_SIZE), (1920, 1080));
    assert_eq!(fitted_within((1280, 720), MAX_SIZE), (1280, 720));
    assert_eq!(fitted_within((2160, 3840), (1080, 1920)), (1080, 1920));
}

/// A deterministic stream of numbers in 0..1.
fn numbers(mut seed: u64) -> impl FnMut() -> f64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Wild tracks: each keyframe anywhere, of any size, at any later time (a tenth of them jumps).
fn wild(count: usize, keyframes: usize, length: f64, seed: u64) -> Vec<Track> {
    let mut next = numbers(seed);
    (0..count)
        .map(|_| {
            let start = next() * length / 2.0;
            let end = start + next() * length / 2.0;
            let mut times: Vec<f64> = (0..keyframes)
                .map(|_| start + next() * (end - start))
                .collect();
            times.sort_by(f64::total_cmp);
            for i in 1..times.len() {
                if next() < 0.1 {
                    times[i] = times[i - 1];
                }
            }
            let keyframes = times
                .into_iter()
                .map(|t| {
                    let (x, y) = (next(), next());
                    let (w, h) = (next() * (1.0 - x), next() * (1.0 - y));
                    place(t, x, y, w.max(0.001), h.max(0.001))
                })
                .collect();
            Track {
                start,
                end,
                keyframes,
            }
        })
        .collect()
}

/// At many times `t`, every place a track passes through while the picture at `t` is on
/// screen (until `t + lead`) lies inside a box shown at `t`.
fn covered(tracks: &[Track], size: (u32, u32), lead: f64, samples: usize) -> Vec<Boxed> {
    let boxes = plan(tracks, size, lead);
    assert!(boxes.len() <= MAX_BOXES, "{} boxes", boxes.len());
    let mut next = numbers(7);
    for track in tracks {
        for i in 0..samples {
            let t = match i {
                0 => track.start - lead,
                1 => track.start,
                2 => track.end,
                _ => track.start + next() * (track.end - track.start),
            };
            let shown: Vec<[i64; 4]> = boxes.iter().filter_map(|b| drawn(b, t)).collect();
            for s in [t, t + lead * next(), t + lead] {
                if s < track.start || s > track.end {
                    continue;
                }
                let [x0, y0, x1, y1] = needed(at(&track.keyframes, s), size);
                assert!(
                    shown
                        .iter()
                        .any(|d| d[0] <= x0 && d[1] <= y0 && d[2] >= x1 && d[3] >= y1),
                    "the place at {s} is not covered at {t}: {:?} in {shown:?}",
                    [x0, y0, x1, y1]
                );
            }
        }
    }
    boxes
}

#[test]
fn every_box_covers_every_place_its_track_passes_while_a_picture_is_shown() {
    covered(&wild(20, 12, 30.0, 1), (1920, 1080), 1.0 / 30.0, 2000);
    covered(&wild(5, 3, 3.0, 2), (320, 240), 0.04, 2000);
    // Pictures far apart (a camera taking five a second): boxes widen with the motion.
    covered(&wild(10, 40, 60.0, 4), (1280, 720), 0.2, 2000);
}

#[test]
fn the_most_tracks_and_keyframes_fit_the_budget_and_still_cover() {
    let tracks = wild(MAX_TRACKS, MAX_KEYFRAMES, 3600.0, 3);
    let boxes = covered(&tracks, (1920, 1080), 0.04, 100);
    // All keyframes within a few pictures: quick to plan, and covered still.
    covered(
        &wild(MAX_TRACKS, MAX_KEYFRAMES, 0.05, 9),
        (1920, 1080),
        0.04,
        20,
    );
    let graph = script((1920, 1080), &boxes);
    assert_eq!(graph.matches("overlay=").count(), boxes.len());
    assert!(graph.len() < 16 * 1024 * 1024, "{} bytes", graph.len());
}

#[test]
fn the_graph_is_made_of_numbers() {
    let tracks = [
        still(1.0, 2.0, place(1.0, 0.25, 0.3, 0.3, 0.35)),
        Track {
            start: 0.0,
            end: 1.0,
            keyframes: vec![
                place(0.0, 0.0, 0.0, 0.1, 0.1),
                place(1.0, 0.5, 0.5, 0.1, 0.1),
            ],
        },
    ];
    let graph = script((320, 240), &plan(&tracks, (320, 240), 0.04));
    assert!(graph.starts_with("[0:v:0]scale=320:240,setsar=1,format=yuv420p[v0];\n"));
    assert!(graph.contains("split=2[k0][k1];"), "{graph}");
    let still = "overlay=eval=frame:format=yuv420\
        :x='max(-2,floor(if(lt(t,1.000000),80.000000,80.000000)-4))'\
        :y='max(-2,floor(if(lt(t,1.000000),72.000000,72.000000)-4))'\
        :enable='between(t,0.959000,2.001000)'";
    assert!(graph.contains(still), "{graph}");
    // The moving box: 160 pixels a second across, so 7 more each side in 0.042 s.
    let moving = ":x='max(-2,floor(if(lt(t,0.000000),0.000000,if(lt(t,1.000000),\
        (0.000000+(t-0.000000)*(160.000000)),160.000000))-11))'";
    assert!(graph.contains(moving), "{graph}");
    assert!(graph.ends_with("[out]\n"));
    let allowed = |c: char| c.is_ascii_alphanumeric() || " \n.,;:=_-+*()[]'".contains(c);
    assert!(graph.chars().all(allowed), "{graph}");
}
