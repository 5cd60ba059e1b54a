//! Large transfers with the server's memory measured (ignored by default; `.ci/run` runs them
//! one at a time: `cargo test --test api big_ -- --ignored --test-threads=1 --nocapture`).
//!
//! The server runs in this test process, so the process's peak RSS (`VmHWM`, reset through
//! `/proc/self/clear_refs`) bounds the server's. The client streams in both directions and
//! holds no more than a block at a time.

use futures_util::StreamExt;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::cases::served_case;
use crate::helpers::{TestApp, assert_status, csrf_in, spawn_app};
use crate::materials::decide;

const MIB: u64 = 1024 * 1024;

fn peak_rss_reset() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

fn rss(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// `len` bytes of incompressible, reproducible content that sniffs as MP4, in 1 MiB blocks.
fn video_stream(
    len: u64,
    seed: u64,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let mut block = vec![0u8; MIB as usize];
    let mut x = seed | 1;
    for b in block.iter_mut() {
        // xorshift64: fast and good enough to defeat compression.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let head: &[u8] = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom";
    block[..head.len()].copy_from_slice(head);
    let blocks = len.div_ceil(MIB);
    futures_util::stream::iter(0..blocks).map(move |i| {
        let mut b = block.clone();
        if i > 0 {
            b[..8].copy_from_slice(&(i ^ seed).to_le_bytes());
        }
        let keep = (len - i * MIB).min(MIB) as usize;
        b.truncate(keep);
        Ok(b)
    })
}

async fn expected_sha256(len: u64, seed: u64) -> String {
    let mut h = Sha256::new();
    let mut s = std::pin::pin!(video_stream(len, seed));
    while let Some(b) = s.next().await {
        h.update(b.unwrap());
    }
    hex::encode(h.finalize())
}

async fn upload_streamed(
    staff: &TestApp,
    case_id: &str,
    title: &str,
    len: u64,
    seed: u64,
) -> String {
    let page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let part = reqwest::multipart::Part::stream_with_length(
        reqwest::Body::wrap_stream(video_stream(len, seed)),
        len,
    )
    .file_name(format!("{title}.mp4"));
    let form = reqwest::multipart::Form::new()
        .text("kind", "video")
        .text("title", title.to_owned())
        .part("file", part);
    let res = staff
        .client
        .post(format!("{}/staff/cases/{case_id}/materials", staff.address))
        .header("X-CSRF-Token", csrf_in(&page))
        .header("Accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::CREATED);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decide(staff, case_id, &id, "release", &[]).await;
    id
}

/// Streams a response to `sink`, returning (bytes, SHA-256).
async fn drain(res: reqwest::Response, mut sink: impl std::io::Write) -> (u64, String) {
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut body = res.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        n += chunk.len() as u64;
        h.update(&chunk);
        sink.write_all(&chunk).unwrap();
    }
    (n, hex::encode(h.finalize()))
}

#[tokio::test]
#[ignore = "1 GiB each way; run by .ci/run"]
async fn big_a_1_gib_material_uploads_and_downloads_in_constant_memory() {
    let app = spawn_app().await;
    let (staff, party, case_id) = served_case(&app, "2026-900").await;
    let len = 1024 * MIB;
    let idle = rss("VmRSS:");

    peak_rss_reset();
    let started = std::time::Instant::now();
    let id = upload_streamed(&staff, &case_id, "行车记录仪全程", len, 7).await;
    let upload_secs = started.elapsed().as_secs_f64();
    let upload_peak = rss("VmHWM:");

    peak_rss_reset();
    let started = std::time::Instant::now();
    let res = party
        .get(&format!("/cases/{case_id}/materials/{id}/download"))
        .await;
    assert_status(&res, StatusCode::OK);
    assert_eq!(res.content_length(), Some(len));
    let (got, sha) = drain(res, std::io::sink()).await;
    let download_secs = started.elapsed().as_secs_f64();
    let download_peak = rss("VmHWM:");

    assert_eq!(got, len);
    assert_eq!(sha, expected_sha256(len, 7).await, "byte for byte");
    println!(
        "1 GiB material: idle RSS {:.1} MiB; upload {:.1} s ({:.0} MB/s), peak RSS {:.1} MiB; \
         download {:.1} s ({:.0} MB/s), peak RSS {:.1} MiB",
        idle as f64 / MIB as f64,
        upload_secs,
        len as f64 / upload_secs / 1e6,
        upload_peak as f64 / MIB as f64,
        download_secs,
        len as f64 / download_secs / 1e6,
        download_peak as f64 / MIB as f64,
    );
    // Constant memory: far below the file's size (the process holds the test client, the
    // server, its database pool and the upload's 5 MiB multipart parts, two in flight).
    assert!(upload_peak < idle + 96 * MIB, "upload peak {upload_peak}");
    assert!(
        download_peak < idle + 96 * MIB,
        "download peak {download_peak}"
    );
}

#[tokio::test]
#[ignore = "a 1 GiB, 200-file bundle; run by .ci/run"]
async fn big_a_1_gib_200_file_bundle_streams_in_bounded_memory() {
    let app = spawn_app().await;
    let (staff, party, case_id) = served_case(&app, "2026-900").await;
    // 150 files of ~100 KiB, 40 of 2 MiB and 10 of ~92 MiB: just over 1000 MiB.
    let mut total = 0u64;
    for i in 0..200u64 {
        let len = if i < 10 {
            92 * MIB + i * 997
        } else if i < 50 {
            2 * MIB
        } else {
            100 * 1024 + i
        };
        upload_streamed(&staff, &case_id, &format!("材料{i:03}"), len, 100 + i).await;
        total += len;
    }
    assert!(total > 1000 * MIB, "{total}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.zip");
    peak_rss_reset();
    let before = rss("VmRSS:");
    let started = std::time::Instant::now();
    let res = party.get(&format!("/cases/{case_id}/bundle.zip")).await;
    assert_status(&res, StatusCode::OK);
    let first_byte = started.elapsed().as_secs_f64();
    let length = res.content_length().unwrap();
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let (got, _) = drain(res, file).await;
    let secs = started.elapsed().as_secs_f64();
    let peak = rss("VmHWM:");
    assert_eq!(got, length, "Content-Length equals the bytes sent");
    assert!(length > total);
    println!(
        "bundle of 200 files: {:.1} MiB in {:.1} s ({:.0} MB/s), first byte after {:.0} ms, \
         RSS before {:.1} MiB, peak {:.1} MiB",
        length as f64 / MIB as f64,
        secs,
        length as f64 / secs / 1e6,
        first_byte * 1000.0,
        before as f64 / MIB as f64,
        peak as f64 / MIB as f64,
    );
    assert!(peak < before + 64 * MIB, "peak {peak} from {before}");
    let test = std::process::Command::new("unzip")
        .arg("-tq")
        .arg(&path)
        .output()
        .expect("unzip is installed (.ci/run installs it)");
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stdout)
    );
    let listing = String::from_utf8_lossy(&test.stdout).into_owned();
    assert!(listing.contains("No errors"), "{listing}");
}
