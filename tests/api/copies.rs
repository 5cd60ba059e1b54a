//! Copies that say who received them (issue 32, item 7), through the running server with
//! `PORTAL_WATERMARK_COPIES=on`: after the determination a party's download of a picture or a
//! PDF is a copy naming them — never the original's bytes, different from another party's,
//! the same bytes again (and resumable) for a week — their bundle holds those copies with the
//! manifest naming both hashes, a staff member traces a copy back to its access event, and
//! staff still receive originals.

use std::io::Read;

use reqwest::StatusCode;
use sha2::Digest;

use crate::auth::{PASSWORD, activate, events};
use crate::cases::registered;
use crate::helpers::{assert_status, client, header, spawn_app_with};
use crate::materials::{decide, released, uploaded};
use crate::rendering::{photo, renderers_missing, two_page_pdf};

fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn with_copies_on_downloads_and_bundles_name_their_recipient_and_staff_get_originals() {
    if renderers_missing() {
        return;
    }
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_WATERMARK_COPIES".into(), "on".into());
    })
    .await;
    let picture = photo();
    let (staff, party, case_id, photo_id) = released(&app, "现场照片.png", &picture, true).await;
    let pdf = two_page_pdf();
    let pdf_id = uploaded(&staff, &case_id, "survey_record", "勘查笔录", "r.pdf", &pdf).await;
    decide(&staff, &case_id, &pdf_id, "release", &[]).await;
    let code = registered(&staff, &case_id, "乙", "110101199003070038", "刘洋").await;
    let other = app.with_client(client());
    activate(&other, "110101199003070038", &code, PASSWORD).await;

    // The picture: a JPEG copy named like the original, marked, not the original.
    let photo_url = format!("/cases/{case_id}/materials/{photo_id}/download");
    let res = party.get(&photo_url).await;
    assert_status(&res, StatusCode::OK);
    assert_eq!(header(&res, "content-type"), "image/jpeg");
    assert!(
        header(&res, "content-disposition").contains(".jpg"),
        "{}",
        header(&res, "content-disposition")
    );
    let mine = res.bytes().await.unwrap();
    assert_ne!(sha(&mine), sha(&picture));
    let decoded = image::load_from_memory(&mine).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (640, 480));
    // Again: the same copy, and a cut download resumes on it.
    let again = party.get(&photo_url).await.bytes().await.unwrap();
    assert_eq!(sha(&again), sha(&mine), "one copy per person, kept");
    let part = party
        .client
        .get(format!("{}{photo_url}", party.address))
        .header("Range", "bytes=100-199")
        .header("If-Range", format!("\"{}\"", sha(&mine)))
        .send()
        .await
        .unwrap();
    assert_status(&part, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&part.bytes().await.unwrap()[..], &mine[100..200]);
    // Another party's copy is another picture.
    let theirs = other.get(&photo_url).await.bytes().await.unwrap();
    assert_ne!(sha(&theirs), sha(&mine));
    assert_ne!(sha(&theirs), sha(&picture));

    // The PDF: a PDF of its two pages, marked.
    let pdf_url = format!("/cases/{case_id}/materials/{pdf_id}/download");
    let res = party.get(&pdf_url).await;
    assert_status(&res, StatusCode::OK);
    assert_eq!(header(&res, "content-type"), "application/pdf");
    let pdf_copy = res.bytes().await.unwrap();
    assert!(pdf_copy.starts_with(b"%PDF-"));
    assert_ne!(sha(&pdf_copy), sha(&pdf));
    if std::path::Path::new("/usr/bin/pdfinfo").exists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.pdf");
        std::fs::write(&path, &pdf_copy).unwrap();
        let info = std::process::Command::new("/usr/bin/pdfinfo")
            .arg(&path)
            .output()
            .unwrap();
        assert!(info.status.success());
        assert!(
            String::from_utf8_lossy(&info.stdout)
                .lines()
                .any(|l| l.starts_with("Pages:") && l.ends_with(" 2"))
        );
    }

    // Staff receive originals.
    let original = staff.get(&photo_url).await.bytes().await.unwrap();
    assert_eq!(sha(&original), sha(&picture));

    // The bundle holds the same copies; the signed manifest names both hashes.
    let res = party.get(&format!("/cases/{case_id}/bundle.zip")).await;
    assert_status(&res, StatusCode::OK);
    let zip = res.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut contents = std::collections::HashMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        contents.insert(entry.name().unwrap().into_owned(), bytes);
    }
    let hashes: Vec<String> = contents.values().map(|b| sha(b)).collect();
    assert!(
        hashes.contains(&sha(&mine)),
        "the picture's copy is in the bundle"
    );
    assert!(
        hashes.contains(&sha(&pdf_copy)),
        "the PDF's copy is in the bundle"
    );
    assert!(!hashes.contains(&sha(&picture)) && !hashes.contains(&sha(&pdf)));
    let manifest: serde_json::Value = serde_json::from_slice(&contents["manifest.json"]).unwrap();
    for file in manifest["files"].as_array().unwrap() {
        let delivered = file["delivered"]["sha256"].as_str().unwrap();
        assert!(contents.keys().any(|k| k == file["path"].as_str().unwrap()));
        assert!([sha(&mine), sha(&pdf_copy)].contains(&delivered.to_owned()));
        assert!([sha(&picture), sha(&pdf)].contains(&file["sha256"].as_str().unwrap().to_owned()));
    }
    let sums = String::from_utf8(contents["SHA256SUMS"].clone()).unwrap();
    assert!(sums.contains(&sha(&mine)) && !sums.contains(&sha(&picture)));

    // Three copies made (the party's two, the other party's one), each recorded with its hash
    // and the code of the event that began it; the bundle made none.
    let rendered = events(&app, "material.rendered").await;
    let made: Vec<serde_json::Value> = rendered
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(&e.details).unwrap())
        .filter(|d| d["copy"] == true)
        .collect();
    assert_eq!(made.len(), 3, "{made:?}");
    let photo_copy = made
        .iter()
        .find(|d| d["sha256"] == sha(&mine))
        .expect("the picture's copy is recorded");
    let begun = rendered
        .iter()
        .find(|e| e.seq == photo_copy["of"].as_i64().unwrap())
        .unwrap();
    assert_eq!(photo_copy["code"].as_str().unwrap(), &begun.hash[..8]);

    // Staff trace the copy found outside to the party.
    let traced = crate::rendering::traced(&staff, mine.to_vec(), "转发的照片.jpg").await;
    let traced = traced.text().await.unwrap();
    assert!(
        traced.contains("trace-row") && traced.contains("张"),
        "{traced}"
    );

    // A week on, gc removes the copies (object and row); the next download makes a new one.
    use evidence_portal::db::entities::delivered_copy;
    use sea_orm::EntityTrait;
    use sea_orm::sea_query::Expr;
    delivered_copy::Entity::update_many()
        .col_expr(
            delivered_copy::Column::ExpiresAt,
            Expr::value(time::OffsetDateTime::now_utc() - time::Duration::minutes(1)),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    let swept = evidence_portal::copies::sweep(&app.state, time::Duration::ZERO, true)
        .await
        .unwrap();
    assert_eq!(swept.len(), 3, "{swept:?}");
    assert!(swept.iter().all(|(_, why)| *why == "expired"));
    assert!(
        app.state
            .store
            .keys_under("copies")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        delivered_copy::Entity::find()
            .all(&app.state.db)
            .await
            .unwrap()
            .is_empty()
    );
    let fresh = party.get(&photo_url).await.bytes().await.unwrap();
    assert_ne!(sha(&fresh), sha(&mine), "a new copy, with a new code");
}
