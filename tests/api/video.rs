//! Video in the view-only stage (issue 32), through the running server: in the `disclosing`
//! stage a party's video is a transcode made for them — 720 lines, their mark burned in, never
//! the original's bytes, different for two parties — prepared in the background while the
//! viewer says how far it is, then served with ranges and validators, each request audited, its
//! SHA-256 recorded so that `/staff/trace` finds a copy; without `ffmpeg`, video is viewed at
//! the brigade; `gc` removes transcodes past their time and what a killed transcode left.

use std::path::Path;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use sha2::Digest;

use crate::auth::{PASSWORD, activate, events};
use crate::cases::registered;
use crate::helpers::{TestApp, assert_status, client, header, spawn_app, spawn_app_with};
use crate::materials::released;

/// Whether ffmpeg (and the watermark's font) are missing here: CI installs them, so there a
/// missing one fails the test instead of skipping it.
pub fn ffmpeg_missing() -> bool {
    let font = Path::new("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc");
    let missing = !font.exists()
        || !Path::new("/usr/bin/ffmpeg").exists()
        || !Path::new("/usr/bin/ffprobe").exists();
    assert!(
        !(missing && std::env::var_os("CI").is_some()),
        "CI installs ffmpeg and fonts-noto-cjk"
    );
    missing
}

/// A two-second 1080p test picture with a tone, as a dashcam's MP4 (H.264 + AAC).
pub fn dashcam_video() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dashcam.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=1920x1080:rate=25",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=2"])
        .args([
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-c:a", "aac", "-shortest"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::read(out).unwrap()
}

/// What ffprobe says of a video's first picture stream and its audio: `(width, height, codec,
/// audio codec)`.
fn probed(bytes: &[u8]) -> (u64, u64, String, String) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height",
        ])
        .args(["-of", "json"])
        .arg(file.path())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .map(|s| s["codec_name"].as_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        video["width"].as_u64().unwrap(),
        video["height"].as_u64().unwrap(),
        video["codec_name"].as_str().unwrap().to_owned(),
        audio,
    )
}

/// Asks for `view` until the transcode is ready (each answer before that a 202 saying how far
/// it is), then answers the whole of it.
async fn when_ready(who: &TestApp, view: &str) -> bytes::Bytes {
    for _ in 0..600 {
        let res = who.get(view).await;
        if res.status() == StatusCode::OK {
            assert_eq!(header(&res, "content-type"), "video/mp4");
            assert_eq!(header(&res, "cache-control"), "no-store");
            return res.bytes().await.unwrap();
        }
        assert_status(&res, StatusCode::ACCEPTED);
        let state: serde_json::Value = res.json().await.unwrap();
        assert_eq!(state["state"], "preparing", "{state}");
        assert!(
            state["percent"].is_null() || state["percent"].as_u64().unwrap() < 100,
            "{state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the transcode was not ready within two minutes");
}

#[tokio::test]
async fn in_the_disclosure_stage_a_party_gets_a_watermarked_transcode_of_a_video() {
    if ffmpeg_missing() {
        return;
    }
    let app = spawn_app().await;
    let original = dashcam_video();
    let (staff, party, case_id, id) = released(&app, "行车记录仪.mp4", &original, false).await;
    let code = registered(&staff, &case_id, "乙", "110101199003070038", "刘洋").await;
    let other = app.with_client(client());
    activate(&other, "110101199003070038", &code, PASSWORD).await;

    // The viewer starts the transcode and says how far it is, refreshing itself.
    let page = format!("/cases/{case_id}/materials/{id}");
    let viewer = party.get(&page).await;
    assert_status(&viewer, StatusCode::OK);
    let viewer = viewer.text().await.unwrap();
    assert!(
        viewer.contains(r#"id="video-preparing""#)
            && viewer.contains("正在准备带水印的视频")
            && viewer.contains(r#"http-equiv="refresh""#),
        "{viewer}"
    );
    assert!(!viewer.contains("<video"), "nothing to play yet");

    let view = format!("/cases/{case_id}/materials/{id}/view");
    let mine = when_ready(&party, &view).await;
    let theirs = when_ready(&other, &view).await;
    let digest = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    for body in [&mine, &theirs] {
        assert_ne!(digest(body), digest(&original), "never the original");
        assert!(
            !body.windows(64).any(|w| w == &original[2000..2064]),
            "no part of the original"
        );
        let (width, height, codec, audio) = probed(body);
        assert_eq!((width, height), (1280, 720));
        assert_eq!((codec.as_str(), audio.as_str()), ("h264", "aac"));
        // The index first: a browser seeks before it has the whole.
        let moov = body.windows(4).position(|w| w == b"moov").unwrap();
        let mdat = body.windows(4).position(|w| w == b"mdat").unwrap();
        assert!(moov < mdat, "+faststart");
    }
    assert_ne!(mine, theirs, "two parties, two different videos");
    std::fs::write("/tmp/transcoded-view.mp4", &mine).ok();

    // Once ready, the viewer plays it, and stops refreshing.
    let viewer = party.get(&page).await.text().await.unwrap();
    assert!(
        viewer.contains("<video") && viewer.contains(&format!(r#"src="{view}""#)),
        "{viewer}"
    );
    assert!(!viewer.contains(r#"http-equiv="refresh""#));

    // Ranges and validators on the transcode: its SHA-256 is its ETag.
    let etag = format!("\"{}\"", digest(&mine));
    let ranged = party
        .client
        .get(format!("{}{view}", party.address))
        .header("Range", "bytes=100-1123")
        .header("If-Range", &etag)
        .send()
        .await
        .unwrap();
    assert_status(&ranged, StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&ranged, "etag"), etag);
    assert_eq!(
        header(&ranged, "content-range"),
        format!("bytes 100-1123/{}", mine.len())
    );
    assert_eq!(ranged.bytes().await.unwrap(), mine.slice(100..1124));
    let stale = party
        .client
        .get(format!("{}{view}", party.address))
        .header("Range", "bytes=100-1123")
        .header("If-Range", "\"0000\"")
        .send()
        .await
        .unwrap();
    assert_status(&stale, StatusCode::OK);
    assert_eq!(stale.bytes().await.unwrap(), mine);
    let unchanged = party
        .client
        .get(format!("{}{view}", party.address))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_status(&unchanged, StatusCode::NOT_MODIFIED);

    // What went out is recorded: each transcode's SHA-256 with the code burned into it — the
    // hash of the access that started it — and every request for it.
    let rendered = events(&app, "material.rendered").await;
    assert_eq!(rendered.len(), 2, "one transcode per party");
    let views = events(&app, "material.view").await;
    let details = |d: &str| serde_json::from_str::<serde_json::Value>(d).unwrap();
    let mine_event = rendered
        .iter()
        .map(|e| details(&e.details))
        .find(|d| d["sha256"] == digest(&mine))
        .expect("the transcode's SHA-256 is recorded");
    assert_eq!(mine_event["bytes"], mine.len());
    let started = views
        .iter()
        .find(|e| e.seq == mine_event["of"].as_i64().unwrap())
        .unwrap();
    assert!(started.details.contains(r#""transcode":"started""#));
    assert_eq!(mine_event["code"].as_str().unwrap(), &started.hash[..8]);
    let served = views
        .iter()
        .filter(|e| e.details.contains(&digest(&mine)))
        .count();
    assert!(
        served >= 4,
        "every request for the transcode is audited ({served})"
    );

    // A staff member traces the saved video, and the code typed off it, to that party.
    let traced = crate::rendering::traced(&staff, mine.to_vec(), "转发的视频.mp4").await;
    assert_status(&traced, StatusCode::OK);
    let traced = traced.text().await.unwrap();
    assert!(
        traced.contains("trace-row") && traced.contains("张伟") && !traced.contains("刘洋"),
        "{traced}"
    );
    let code = mine_event["code"].as_str().unwrap().to_uppercase();
    let by_code = staff
        .get(&format!("/staff/trace?code={code}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        by_code.contains("trace-row") && by_code.contains("张伟"),
        "{by_code}"
    );

    // Kept, not made again: a later view serves the same transcode.
    assert_eq!(when_ready(&party, &view).await, mine);
    assert_eq!(events(&app, "material.rendered").await.len(), 2);
    let kept: Vec<String> =
        std::fs::read_dir(app.state.settings.data_dir.join("render-cache/video"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    assert_eq!(
        kept.len(),
        2,
        "two transcodes and nothing temporary: {kept:?}"
    );
    assert!(
        kept.iter()
            .any(|n| n.ends_with(&format!(".{}.mp4", digest(&mine))))
    );
}

/// Enough of an MP4 for the upload to take it as one (no ffmpeg needed to make it).
fn mp4_header() -> Vec<u8> {
    let mut bytes = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41".to_vec();
    bytes.extend_from_slice(b"\x00\x00\x00\x08free");
    bytes.extend(std::iter::repeat_n(0u8, 4096));
    bytes
}

#[tokio::test]
async fn without_ffmpeg_a_video_is_viewed_at_the_brigade() {
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_FFMPEG".into(), "/nonexistent/bin/ffmpeg".into());
    })
    .await;
    let (_, party, case_id, id) = released(&app, "行车记录仪.mp4", &mp4_header(), false).await;
    let viewer = party.get(&format!("/cases/{case_id}/materials/{id}")).await;
    assert_status(&viewer, StatusCode::OK);
    let viewer = viewer.text().await.unwrap();
    assert!(
        viewer.contains(r#"id="view-at-brigade""#) && !viewer.contains("<video"),
        "{viewer}"
    );
    let view = party
        .get(&format!("/cases/{case_id}/materials/{id}/view"))
        .await;
    assert_status(&view, StatusCode::FORBIDDEN);
    assert!(events(&app, "material.rendered").await.is_empty());
    assert_status(&party.get("/cases").await, StatusCode::OK);
}

#[tokio::test]
async fn a_video_ffmpeg_cannot_read_is_viewed_at_the_brigade_and_nothing_is_kept() {
    if ffmpeg_missing() {
        return;
    }
    let app = spawn_app().await;
    let (_, party, case_id, id) = released(&app, "损坏的视频.mp4", &mp4_header(), false).await;
    let view = format!("/cases/{case_id}/materials/{id}/view");
    let mut refused = false;
    for _ in 0..300 {
        let res = party.get(&view).await;
        if res.status() == StatusCode::FORBIDDEN {
            refused = true;
            break;
        }
        assert_status(&res, StatusCode::ACCEPTED);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the failed transcode is said, not retried at once");
    let viewer = party
        .get(&format!("/cases/{case_id}/materials/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(viewer.contains(r#"id="view-at-brigade""#), "{viewer}");
    assert!(events(&app, "material.rendered").await.is_empty());
    let left: Vec<_> = std::fs::read_dir(app.state.settings.data_dir.join("render-cache/video"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "nothing kept, nothing temporary: {left:?}");
}

#[tokio::test]
async fn gc_removes_transcodes_past_their_day_and_what_a_killed_transcode_left() {
    use crate::cli::{run, stdout};
    let tmp = tempfile::tempdir().unwrap();
    let env = crate::helpers::test_env(tmp.path()).await;
    let dir = tmp.path().join("render-cache/video");
    std::fs::create_dir_all(&dir).unwrap();
    let stem = format!("{}-{}", uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    // Far enough in the past whatever clock reads the files: under the night leg's libfaketime
    // the times written are real but the times read are shifted by up to a day.
    let day_old = SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
    let write = |name: &str, when: SystemTime| {
        let file = std::fs::File::create(dir.join(name)).unwrap();
        std::io::Write::write_all(&mut &file, b"transcoded bytes").unwrap();
        file.set_modified(when).unwrap();
    };
    let old = format!("{stem}.{}.mp4", "ab".repeat(32));
    let fresh = format!("{stem}.{}.mp4", "cd".repeat(32));
    write(&old, day_old);
    write(&fresh, SystemTime::now());
    write(
        ".tmp-source-dead",
        SystemTime::now() - Duration::from_secs(2 * 24 * 3600),
    );
    // One a live transcode holds: never taken.
    write(
        ".tmp-source-live",
        SystemTime::now() - Duration::from_secs(2 * 24 * 3600),
    );
    let live = std::fs::File::open(dir.join(".tmp-source-live")).unwrap();
    live.lock().unwrap();

    let listed = stdout(&run(&["gc"], &env, ""));
    assert!(
        listed.contains("expired  ") && listed.contains(&old),
        "{listed}"
    );
    assert!(listed.contains(".tmp-source-dead"), "{listed}");
    assert!(
        !listed.contains(".tmp-source-live") && !listed.contains(&fresh),
        "{listed}"
    );
    assert!(listed.contains("video transcodes: 1 file(s)"), "{listed}");
    let deleted = stdout(&run(&["gc", "--delete"], &env, ""));
    assert!(deleted.contains("deleted  "), "{deleted}");
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [".tmp-source-live".to_owned(), fresh]);
    drop(live);
}
