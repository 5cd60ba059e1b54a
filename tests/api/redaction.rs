//! Redaction with the original kept (issue 34), through the running server: staff black out a
//! region of a photo and a band of a scanned page, giving reasons; the party sees, downloads and
//! bundles only the redacted copies (the pixels under the box black, no text under it), is told
//! why; staff still open the originals; a redaction without a reason is refused and leaves
//! nothing; every step is audited.

use reqwest::StatusCode;
use sha2::Digest;

use crate::auth::events;
use crate::helpers::{TestApp, assert_status};
use crate::materials::{decide, released, uploaded};
use crate::rendering::{renderers_missing, two_page_pdf};

/// A photo with a pure red square (the "bystander's face") at 200..300 × 100..200.
fn photo() -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        if (200..300).contains(&x) && (100..200).contains(&y) {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([(x * 255 / 640) as u8, 200, 90])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Staff post the redaction form of `material` with `fields` (`box0.x` …).
async fn redact(
    staff: &TestApp,
    case_id: &str,
    material: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let page = format!("/staff/cases/{case_id}/materials/{material}/redact");
    let csrf = staff.csrf_from(&page).await;
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    staff.post_form(&page, &all).await
}

/// Red-ish pixels in the square 205..295 × 105..195 of a picture scaled from 640 × 480.
fn red_in_square(picture: &image::RgbImage) -> usize {
    let (sx, sy) = (
        f64::from(picture.width()) / 640.0,
        f64::from(picture.height()) / 480.0,
    );
    let mut red = 0;
    for y in (105.0 * sy) as u32..(195.0 * sy) as u32 {
        for x in (205.0 * sx) as u32..(295.0 * sx) as u32 {
            let p = picture.get_pixel(x, y);
            if p[0] > 150 && p[1] < 80 && p[2] < 80 {
                red += 1;
            }
        }
    }
    red
}

#[tokio::test]
async fn a_redacted_photo_is_all_the_party_receives_and_staff_keep_the_original() {
    if renderers_missing() {
        return;
    }
    let app = crate::helpers::spawn_app().await;
    let original = photo();
    let (staff, party, case_id, id) = released(&app, "现场照片.png", &original, true).await;
    let material = format!("/cases/{case_id}/materials/{id}");

    // Before: the party's view shows the red square (so the check below can fail).
    let before = party.get(&format!("{material}/view")).await;
    assert_status(&before, StatusCode::OK);
    let before = image::load_from_memory(&before.bytes().await.unwrap()).unwrap();
    assert!(red_in_square(&before.to_rgb8()) > 1000);

    // A box without a reason is refused, with the reason, and nothing is made.
    let square = [
        ("box0.x", "31.25"),
        ("box0.y", "20.8333"),
        ("box0.w", "15.625"),
        ("box0.h", "20.8334"),
    ];
    let res = redact(&staff, &case_id, &id, &square).await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert!(page.contains("请选择遮挡理由"), "{page}");
    assert!(
        page.contains(r#"value="31.25""#),
        "what was typed comes back"
    );
    assert!(events(&app, "redaction.create").await.is_empty());
    let objects = app
        .state
        .store
        .keys_under(&format!("cases/{case_id}/redactions"))
        .await
        .unwrap();
    assert!(objects.is_empty(), "{objects:?}");

    // With a reason: made, audited, and in effect at once (the material is out).
    let mut fields = square.to_vec();
    fields.push(("box0.reason", "third_party_face"));
    let res = redact(&staff, &case_id, &id, &fields).await;
    assert_status(&res, StatusCode::SEE_OTHER);
    let created = events(&app, "redaction.create").await;
    assert_eq!(created.len(), 1);
    let details: serde_json::Value = serde_json::from_str(&created[0].details).unwrap();
    assert_eq!(details["reasons"]["third_party_face"], 1);
    assert_eq!(details["source_sha256"], sha(&original));
    let copy_sha = details["sha256"].as_str().unwrap().to_owned();
    assert_ne!(copy_sha, sha(&original));
    assert_eq!(events(&app, "redaction.release").await.len(), 1);

    // The party downloads the copy: the square exactly black, the rest as it was.
    let res = party.get(&format!("{material}/download")).await;
    assert_status(&res, StatusCode::OK);
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.contains("%E9%81%AE%E6%8C%A1"), "{disposition}"); // 遮挡
    let body = res.bytes().await.unwrap();
    assert_eq!(sha(&body), copy_sha);
    let copy = image::load_from_memory(&body).unwrap().to_rgb8();
    let plain = image::load_from_memory(&original).unwrap().to_rgb8();
    assert_eq!(copy.dimensions(), (640, 480));
    for (x, y, p) in copy.enumerate_pixels() {
        let inside = (200..300).contains(&x) && (100..200).contains(&y);
        if inside {
            assert_eq!(p.0, [0, 0, 0], "({x}, {y}) under the box");
        } else if !(199..=300).contains(&x) || !(99..=200).contains(&y) {
            assert_eq!(p, plain.get_pixel(x, y), "({x}, {y}) outside the box");
        }
    }
    // Its view is drawn from the copy: no red under the mark.
    let view = party.get(&format!("{material}/view")).await;
    assert_status(&view, StatusCode::OK);
    let view = image::load_from_memory(&view.bytes().await.unwrap()).unwrap();
    assert_eq!(red_in_square(&view.to_rgb8()), 0);
    // Its thumbnail too, and the bundle, whose manifest names both hashes.
    let thumb = party.get(&format!("{material}/thumbnail")).await;
    assert_status(&thumb, StatusCode::OK);
    let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!(red_in_square(&thumb.to_rgb8()), 0);
    let zip = party.get(&format!("/cases/{case_id}/bundle.zip")).await;
    assert_status(&zip, StatusCode::OK);
    let zip = zip.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let manifest: serde_json::Value = {
        let mut f = archive.by_name("manifest.json").unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut f, &mut text).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let file = &manifest["files"][0];
    assert_eq!(file["sha256"], copy_sha);
    assert_eq!(file["redaction"]["original_sha256"], sha(&original));
    let path = file["path"].as_str().unwrap().to_owned();
    let mut inside = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name(&path).unwrap(), &mut inside).unwrap();
    assert_eq!(sha(&inside), copy_sha);
    // Another of the material's copies, asked for by id, is no party's to open.
    let redaction_id = details["redaction"].as_str().unwrap();
    let asked = party
        .get(&format!("{material}/download?redaction={redaction_id}"))
        .await;
    assert_status(&asked, StatusCode::NOT_FOUND);

    // The case page says so, with the reason; the download is recorded as of the copy.
    let case_page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        case_page.contains("1 份材料作了遮挡处理（无关人员面部）"),
        "{case_page}"
    );
    assert!(
        case_page.contains("勘查笔录（遮挡处理后的副本）"),
        "the history says which copy was downloaded"
    );
    let downloads = events(&app, "material.download").await;
    let last: serde_json::Value = serde_json::from_str(&downloads.last().unwrap().details).unwrap();
    assert_eq!(last["redaction"], redaction_id);

    // Staff still get the original, and open the copy by its id.
    let res = staff.get(&format!("{material}/download")).await;
    assert_eq!(sha(&res.bytes().await.unwrap()), sha(&original));
    let res = staff
        .get(&format!("{material}/download?redaction={redaction_id}"))
        .await;
    assert_eq!(sha(&res.bytes().await.unwrap()), copy_sha);
    // The editor shows the history and starts from the current box.
    let editor = staff
        .get(&format!("/staff/cases/{case_id}/materials/{id}/redact"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        editor.contains(&copy_sha) && editor.contains(r#"value="31.25""#),
        "{editor}"
    );

    // A second redaction replaces the first, made from the original again; nothing deleted.
    fields[0] = ("box0.x", "0");
    let res = redact(&staff, &case_id, &id, &fields).await;
    assert_status(&res, StatusCode::SEE_OTHER);
    let objects = app
        .state
        .store
        .keys_under(&format!("cases/{case_id}/redactions"))
        .await
        .unwrap();
    assert_eq!(objects.len(), 2);
    let res = party.get(&format!("{material}/download")).await;
    let second = image::load_from_memory(&res.bytes().await.unwrap())
        .unwrap()
        .to_rgb8();
    assert_eq!(second.get_pixel(10, 150).0, [0, 0, 0]);
    assert_eq!(
        second.get_pixel(250, 150).0,
        [255, 0, 0],
        "the first box is gone"
    );
}

#[tokio::test]
async fn a_box_over_a_scanned_pages_text_leaves_no_text_in_the_delivered_file() {
    if renderers_missing() {
        return;
    }
    let app = crate::helpers::spawn_app().await;
    let (staff, party, case_id, _) = released(&app, "现场照片.png", &photo(), true).await;
    let pdf = two_page_pdf();
    let pdf_id = uploaded(&staff, &case_id, "survey_record", "勘查笔录", "r.pdf", &pdf).await;
    // Redacted while still a draft: nothing is released yet.
    let res = redact(
        &staff,
        &case_id,
        &pdf_id,
        &[
            ("box0.page", "1"),
            ("box0.x", "5"),
            ("box0.y", "10"),
            ("box0.w", "90"),
            ("box0.h", "10"),
            ("box0.reason", "third_party_identity"),
        ],
    )
    .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert!(events(&app, "redaction.release").await.is_empty());
    decide(&staff, &case_id, &pdf_id, "release", &[]).await;
    let released = events(&app, "redaction.release").await;
    assert_eq!(released.len(), 1, "released with its redaction, said so");

    let res = party
        .get(&format!("/cases/{case_id}/materials/{pdf_id}/download"))
        .await;
    assert_status(&res, StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let body = res.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("copy.pdf");
    std::fs::write(&file, &body).unwrap();
    // The original has its text; the copy none at all (its pages are pictures).
    let original = dir.path().join("original.pdf");
    std::fs::write(&original, &pdf).unwrap();
    let text = |p: &std::path::Path| {
        let out = std::process::Command::new("pdftotext")
            .arg(p)
            .arg("-")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(text(&original).contains("Survey record page 1"));
    let copied = text(&file);
    assert!(!copied.contains("Survey"), "{copied}");
    // Both pages are there, and page 1's band is black where the text was.
    let out = std::process::Command::new("pdftoppm")
        .args(["-r", "50", "-gray", "-png"])
        .arg(&file)
        .arg(dir.path().join("page"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut pages: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pages.sort();
    assert_eq!(pages.len(), 2);
    let first = image::open(&pages[0]).unwrap().to_luma8();
    let (w, h) = first.dimensions();
    for (fx, fy) in [(0.2, 0.12), (0.5, 0.15), (0.8, 0.18)] {
        let p = first.get_pixel((fx * f64::from(w)) as u32, (fy * f64::from(h)) as u32);
        assert!(p[0] <= 16, "({fx}, {fy}) is {p:?}");
    }
    let second = image::open(&pages[1]).unwrap().to_luma8();
    assert!(
        second.get_pixel(w / 2, h / 2)[0] > 200,
        "page 2 is untouched"
    );
}

#[tokio::test]
async fn a_redacted_video_is_shown_and_released_only_after_an_officer_watched_it() {
    if renderers_missing() || crate::video::ffmpeg_missing() {
        return;
    }
    use sea_orm::EntityTrait;
    let app = crate::helpers::spawn_app().await;
    let (staff, party, case_id, _) = released(&app, "现场照片.png", &photo(), true).await;
    let video = crate::video::dashcam_video();
    let id = uploaded(&staff, &case_id, "video", "行车记录", "dash.mp4", &video).await;
    let res = redact(
        &staff,
        &case_id,
        &id,
        &[
            ("box0.x", "0"),
            ("box0.y", "0"),
            ("box0.w", "50"),
            ("box0.h", "50"),
            ("box0.start", "0"),
            ("box0.end", "2"),
            ("box0.reason", "uninvolved_plate"),
        ],
    )
    .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    // Not released while it is being made or waits for review.
    let res = decide(&staff, &case_id, &id, "release", &[]).await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("逐帧复核"));
    let row = loop {
        let rows = crate_redactions(&app).await;
        let row = rows.into_iter().next().unwrap();
        if row.state != evidence_portal::vocab::RedactionState::Pending {
            break row;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        row.state,
        evidence_portal::vocab::RedactionState::Unreviewed,
        "{:?}",
        row.failure
    );
    let review = format!("/staff/cases/{case_id}/redactions/{}/review", row.id);
    let editor = format!("/staff/cases/{case_id}/materials/{id}/redact");
    let csrf = staff.csrf_from(&editor).await;
    let res = staff.post_form(&review, &[("csrf_token", &csrf)]).await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let res = staff
        .post_form(&review, &[("csrf_token", &csrf), ("watched", "yes")])
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_eq!(events(&app, "redaction.review").await.len(), 1);
    let res = decide(&staff, &case_id, &id, "release", &[]).await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_eq!(events(&app, "redaction.release").await.len(), 1);

    // The party downloads the redacted video: its top-left quarter black.
    let res = party
        .get(&format!("/cases/{case_id}/materials/{id}/download"))
        .await;
    assert_status(&res, StatusCode::OK);
    let body = res.bytes().await.unwrap();
    let row = evidence_portal::db::entities::redaction::Entity::find_by_id(row.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Some(sha(&body)), row.sha256);
    assert_ne!(sha(&body), sha(&video));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("copy.mp4");
    std::fs::write(&file, &body).unwrap();
    let frame = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-ss", "1", "-i"])
        .arg(&file)
        .args([
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-s",
            "64x36",
            "-",
        ])
        .output()
        .unwrap();
    assert_eq!(frame.stdout.len(), 64 * 36);
    for y in 2..16 {
        for x in 2..30 {
            assert!(frame.stdout[y * 64 + x] <= 20, "({x}, {y})");
        }
    }
    let pixels = &frame.stdout;
    let rest: u32 = (20..34)
        .flat_map(|y| (34..62).map(move |x| u32::from(pixels[y * 64 + x])))
        .sum();
    assert!(
        rest / (14 * 28) > 40,
        "the rest of the picture is not black"
    );
}

async fn crate_redactions(
    app: &crate::helpers::TestApp,
) -> Vec<evidence_portal::db::entities::redaction::Model> {
    use sea_orm::EntityTrait;
    evidence_portal::db::entities::redaction::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_file_that_cannot_be_drawn_is_refused_with_the_reason_and_leaves_nothing() {
    if renderers_missing() {
        return;
    }
    let app = crate::helpers::spawn_app().await;
    let (staff, _party, case_id, _) = released(&app, "现场照片.png", &photo(), true).await;
    // A PNG signature, then nothing a decoder can read.
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend_from_slice(&[0x42; 4096]);
    let id = uploaded(
        &staff,
        &case_id,
        "scene_photo",
        "残缺照片",
        "broken.png",
        &broken,
    )
    .await;
    let res = redact(
        &staff,
        &case_id,
        &id,
        &[
            ("box0.x", "10"),
            ("box0.y", "10"),
            ("box0.w", "10"),
            ("box0.h", "10"),
            ("box0.reason", "minor"),
        ],
    )
    .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert!(page.contains("无法生成遮挡副本"), "{page}");
    assert!(page.contains(r#"value="10""#), "what was typed comes back");
    assert!(crate_redactions(&app).await.is_empty());
    assert!(events(&app, "redaction.create").await.is_empty());
    let objects = app
        .state
        .store
        .keys_under(&format!("cases/{case_id}/redactions"))
        .await
        .unwrap();
    assert!(objects.is_empty(), "{objects:?}");
}
