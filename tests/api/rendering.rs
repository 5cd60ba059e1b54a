//! Showing without handing over (issue 32), through the running server: in the `disclosing`
//! stage a party's `/view` is a rendering with the viewer burned in — never the original's
//! bytes, different for two viewers — downloads and thumbnails are refused and audited, a PDF
//! is shown page by page, what went out is recorded with its SHA-256 and the code in the
//! picture; once the determination is served, originals flow again.

use reqwest::StatusCode;
use sha2::Digest;

use crate::auth::{PASSWORD, activate, events};
use crate::cases::{registered, set_status};
use crate::helpers::{assert_status, client, header, spawn_app};
use crate::materials::{decide, released, uploaded};

/// A photo worth marking (a gradient as PNG).
pub fn photo() -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x * 255 / 640) as u8, (y * 255 / 480) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A two-page PDF with text on each page.
pub fn two_page_pdf() -> Vec<u8> {
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 >>".to_owned(),
    ];
    for (page, content) in [(3, 4), (5, 6)] {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 7 0 R >> >> /Contents {content} 0 R >>"
        ));
        let text = format!(
            "BT /F1 36 Tf 72 700 Td (Survey record page {}) Tj ET",
            page / 2
        );
        objects.push(format!(
            "<< /Length {} >>\nstream\n{text}\nendstream",
            text.len()
        ));
    }
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned());
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer << /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

/// A staff member uploads a file found outside to `/staff/trace`, as the form sends it.
pub async fn traced(
    staff: &crate::helpers::TestApp,
    bytes: Vec<u8>,
    name: &str,
) -> reqwest::Response {
    let csrf = staff.csrf_from("/staff/trace").await;
    staff
        .client
        .post(format!("{}/staff/trace?csrf_token={csrf}", staff.address))
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        ))
        .send()
        .await
        .unwrap()
}

pub fn renderers_missing() -> bool {
    let font = std::path::Path::new("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc");
    let missing = !font.exists() || !std::path::Path::new("/usr/bin/pdftoppm").exists();
    assert!(
        !(missing && std::env::var_os("CI").is_some()),
        "CI installs fonts-noto-cjk and poppler-utils"
    );
    missing
}

/// A case in the disclosure stage with a photo and a two-page PDF released, party 甲 signed in.
struct Disclosed {
    app: crate::helpers::TestApp,
    staff: crate::helpers::TestApp,
    party: crate::helpers::TestApp,
    case_id: String,
    picture: Vec<u8>,
    photo_id: String,
    pdf: Vec<u8>,
    pdf_id: String,
}

async fn disclosed() -> Disclosed {
    let app = spawn_app().await;
    let picture = photo();
    let (staff, party, case_id, photo_id) = released(&app, "现场照片.png", &picture, false).await;
    let pdf = two_page_pdf();
    let pdf_id = uploaded(&staff, &case_id, "survey_record", "勘查笔录", "r.pdf", &pdf).await;
    decide(&staff, &case_id, &pdf_id, "release", &[]).await;
    Disclosed {
        app,
        staff,
        party,
        case_id,
        picture,
        photo_id,
        pdf,
        pdf_id,
    }
}

#[tokio::test]
async fn in_the_disclosure_stage_a_party_sees_a_marked_rendering_and_never_the_original() {
    if renderers_missing() {
        return;
    }
    let Disclosed {
        app,
        staff,
        party,
        case_id,
        picture,
        photo_id,
        pdf: _,
        pdf_id,
    } = disclosed().await;
    // A second party of the case.
    let code = registered(&staff, &case_id, "乙", "110101199003070038", "刘洋").await;
    let other = app.with_client(client());
    activate(&other, "110101199003070038", &code, PASSWORD).await;

    let view = format!("/cases/{case_id}/materials/{photo_id}/view");
    let mine = party.get(&view).await;
    assert_status(&mine, StatusCode::OK);
    assert_eq!(header(&mine, "content-type"), "image/jpeg");
    assert_eq!(header(&mine, "cache-control"), "no-store");
    let mine = mine.bytes().await.unwrap();
    let theirs = other.get(&view).await.bytes().await.unwrap();
    let original = hex::encode(sha2::Sha256::digest(&picture));
    for body in [&mine, &theirs] {
        assert_ne!(hex::encode(sha2::Sha256::digest(body)), original);
        let decoded = image::load_from_memory(body).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (640, 480));
    }
    assert_ne!(mine, theirs, "two viewers, two different pictures");
    std::fs::write("/tmp/rendered-view.jpg", &mine).ok();

    // What went out is recorded: its SHA-256, and the code burned in is the view's own hash.
    let views = events(&app, "material.view").await;
    let rendered = events(&app, "material.rendered").await;
    assert_eq!(rendered.len(), 2);
    let first: serde_json::Value = serde_json::from_str(&rendered[0].details).unwrap();
    assert_eq!(first["sha256"], hex::encode(sha2::Sha256::digest(&mine)));
    let of = first["of"].as_i64().unwrap();
    let view_event = views.iter().find(|e| e.seq == of).expect("the view event");
    assert_eq!(first["code"].as_str().unwrap(), &view_event.hash[..8]);
    // The second viewer's picture was drawn from the first one's plain raster, marked anew.
    let second: serde_json::Value = serde_json::from_str(&rendered[1].details).unwrap();
    assert_eq!(
        (&first["cached"], &second["cached"]),
        (&false.into(), &true.into())
    );
    assert_eq!(second["sha256"], hex::encode(sha2::Sha256::digest(&theirs)));

    // A staff member traces the saved picture, and the code typed off it, to that viewing.
    let traced = traced(&staff, mine.to_vec(), "转发的图片.jpg").await;
    assert_status(&traced, StatusCode::OK);
    let traced = traced.text().await.unwrap();
    assert!(
        traced.contains("trace-row") && traced.contains("张伟") && traced.contains("勘查笔录"),
        "{traced}"
    );
    let code = first["code"].as_str().unwrap().to_uppercase();
    let by_code = staff
        .get(&format!("/staff/trace?code={code}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(by_code.contains("trace-row") && by_code.contains("张伟"));
    let stranger = crate::rendering::traced(&staff, picture.clone(), "原图.png")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        stranger.contains(r#"id="trace-none""#),
        "not a rendering this portal made"
    );
    let traces = events(&app, "audit.view").await;
    assert!(
        traces
            .iter()
            .filter(|e| e.details.contains("trace"))
            .count()
            >= 3,
        "tracing is audited"
    );

    // No original by any other door: download, thumbnail — refused, said why, audited.
    for door in ["download", "thumbnail"] {
        let res = party
            .get(&format!("/cases/{case_id}/materials/{photo_id}/{door}"))
            .await;
        assert_status(&res, StatusCode::FORBIDDEN);
    }
    let case_page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !case_page.contains("/thumbnail"),
        "no unmarked thumbnails on the page"
    );

    // A PDF is shown page by page, each page a marked picture.
    let viewer = party
        .get(&format!("/cases/{case_id}/materials/{pdf_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        viewer.contains(r#"id="pdf-pages""#) && viewer.contains("第 2 页，共 2 页"),
        "{viewer}"
    );
    assert!(viewer.contains(r#"id="view-only-note""#));
    let page2 = party
        .get(&format!("/cases/{case_id}/materials/{pdf_id}/view?page=2"))
        .await;
    assert_status(&page2, StatusCode::OK);
    let page2 = page2.bytes().await.unwrap();
    assert!(image::load_from_memory(&page2).unwrap().width() == 1600);
    assert!(!page2.starts_with(b"%PDF"));
    // A phone's width where the viewer's `srcset` asks for it; any other width is the full one.
    assert!(viewer.contains("?page=2&amp;w=800 800w"), "{viewer}");
    for (asked, got) in [("800", 800), ("123", 1600), ("99999", 1600)] {
        let page = party
            .get(&format!(
                "/cases/{case_id}/materials/{pdf_id}/view?page=2&w={asked}"
            ))
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            image::load_from_memory(&page).unwrap().width(),
            got,
            "w={asked}"
        );
    }

    // Served: originals flow again by the download (Art. 65 copying); viewing stays a rendering.
    set_status(
        &staff,
        &case_id,
        &[
            ("to", "served"),
            ("service_kind", "determination"),
            (
                "served_on",
                &time::OffsetDateTime::now_utc()
                    .to_offset(time::macros::offset!(+8))
                    .date()
                    .to_string(),
            ),
        ],
    )
    .await;
    let after = party.get(&view).await;
    assert_eq!(header(&after, "content-type"), "image/jpeg");
    let after = after.bytes().await.unwrap();
    assert_ne!(hex::encode(sha2::Sha256::digest(&after)), original);
    let download = party
        .get(&format!("/cases/{case_id}/materials/{photo_id}/download"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(hex::encode(sha2::Sha256::digest(&download)), original);
}

#[tokio::test]
async fn a_broken_pdf_says_it_cannot_be_shown_and_the_portal_serves_on() {
    if renderers_missing() {
        return;
    }
    let app = spawn_app().await;
    let mut broken = b"%PDF-1.7\n".to_vec();
    broken.extend(std::iter::repeat_n(b'[', 200_000));
    let (_, party, case_id, id) = released(&app, "坏文件.pdf", &broken, false).await;
    let res = party
        .get(&format!("/cases/{case_id}/materials/{id}/view?page=1"))
        .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("无法在线显示"));
    let viewer = party.get(&format!("/cases/{case_id}/materials/{id}")).await;
    assert_status(&viewer, StatusCode::OK);
    assert!(
        viewer
            .text()
            .await
            .unwrap()
            .contains(r#"id="view-at-brigade""#)
    );
    assert_status(&party.get("/cases").await, StatusCode::OK);
}

/// Every way bytes of a material leave, as a view-only person might try them: the viewer page,
/// `view`, `download` and `thumbnail` (whole, ranged, `HEAD`), the bundle, and an agent's token.
async fn doors(
    who: &crate::helpers::TestApp,
    case_id: &str,
    id: &str,
    token: Option<&str>,
) -> Vec<(String, reqwest::StatusCode, Vec<u8>)> {
    let mut out = Vec::new();
    let mut paths = vec![
        format!("/cases/{case_id}/materials/{id}"),
        format!("/cases/{case_id}/bundle.zip"),
    ];
    for mode in ["view", "download", "thumbnail"] {
        paths.push(format!("/cases/{case_id}/materials/{id}/{mode}"));
        paths.push(format!("/cases/{case_id}/materials/{id}/{mode}?page=1"));
    }
    for path in paths {
        for range in [None, Some("bytes=0-"), Some("bytes=0-99")] {
            let mut req = who.client.get(format!("{}{path}", who.address));
            if let Some(r) = range {
                req = req.header("Range", r);
            }
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            let status = res.status();
            out.push((
                format!("{path} {range:?}"),
                status,
                res.bytes().await.unwrap().to_vec(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn no_door_hands_a_view_only_person_any_part_of_an_original() {
    if renderers_missing() {
        return;
    }
    let Disclosed {
        app,
        staff,
        party,
        case_id,
        picture,
        photo_id,
        pdf,
        pdf_id,
    } = disclosed().await;
    let party_id = crate::cases::party_id_on(&staff, &case_id).await;
    let (agent, token) = crate::cases::agent_with_token(&app, &staff, &case_id, &party_id).await;

    let mut served = 0;
    for (original, id) in [(&picture, &photo_id), (&pdf, &pdf_id)] {
        let digest = hex::encode(sha2::Sha256::digest(original));
        // Any 64 bytes of the original (past its first 16, a format's common magic) betray it.
        let sample = &original[16..80];
        for (who, token) in [
            (&party, None),
            (&agent, None),
            (&agent, Some(token.as_str())),
        ] {
            for (door, status, body) in doors(who, &case_id, id, token).await {
                if status.is_success() {
                    served += 1;
                }
                assert_ne!(
                    hex::encode(sha2::Sha256::digest(&body)),
                    digest,
                    "{door} ({status}) answered the original"
                );
                assert!(
                    !body.windows(sample.len()).any(|w| w == sample),
                    "{door} ({status}) answered part of the original"
                );
            }
        }
    }
    assert!(
        served >= 12,
        "the views and viewer pages are served ({served})"
    );
}

/// The plain rasters kept by the render cache (`{data_dir}/render-cache/*.raster`).
fn cached_rasters(app: &crate::helpers::TestApp) -> Vec<String> {
    let dir = app.state.settings.data_dir.join("render-cache");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".raster"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_page_viewed_again_is_drawn_from_the_cache_and_marked_anew_each_time() {
    if renderers_missing() {
        return;
    }
    let app = spawn_app().await;
    let pdf = two_page_pdf();
    let (_, party, case_id, id) = released(&app, "勘查笔录.pdf", &pdf, false).await;
    let page = |n: u32| format!("/cases/{case_id}/materials/{id}/view?page={n}");
    let mut bodies = Vec::new();
    for n in [1, 1, 2, 1] {
        let res = party.get(&page(n)).await;
        assert_status(&res, StatusCode::OK);
        bodies.push(res.bytes().await.unwrap());
    }
    let cached: Vec<serde_json::Value> = events(&app, "material.rendered")
        .await
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(&e.details).unwrap()["cached"].clone())
        .collect();
    // pdftoppm ran once per page: the second and third views of page 1 ran nothing.
    assert_eq!(cached, [false, true, false, true]);
    let sha = hex::encode(sha2::Sha256::digest(&pdf));
    assert_eq!(
        cached_rasters(&app),
        [
            format!("{sha}-p1-w1600.raster"),
            format!("{sha}-p2-w1600.raster")
        ]
    );
    // Every view its own mark (its own access code), never a copy of an earlier answer.
    assert_ne!(bodies[0], bodies[1]);
    assert_ne!(bodies[1], bodies[3]);
    let first = image::load_from_memory(&bodies[0]).unwrap();
    let again = image::load_from_memory(&bodies[1]).unwrap();
    assert_eq!(first.width(), 1600);
    assert_eq!(
        (first.width(), first.height()),
        (again.width(), again.height())
    );

    // A cached file damaged on disk is a miss: drawn again, and replaced.
    let file = app
        .state
        .settings
        .data_dir
        .join("render-cache")
        .join(format!("{sha}-p1-w1600.raster"));
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    assert_status(&party.get(&page(1)).await, StatusCode::OK);
    assert_status(&party.get(&page(1)).await, StatusCode::OK);
    let last: Vec<serde_json::Value> = events(&app, "material.rendered")
        .await
        .iter()
        .rev()
        .take(2)
        .map(|e| serde_json::from_str::<serde_json::Value>(&e.details).unwrap()["cached"].clone())
        .collect();
    assert_eq!(last, [true, false], "drawn again, then found");
}

#[tokio::test]
async fn gc_lists_the_render_cache_beyond_its_bound_and_empties_it_at_a_bound_of_zero() {
    use crate::cli::{run, stdout};
    use evidence_portal::render::{Cache, Key, Raster};
    let tmp = tempfile::tempdir().unwrap();
    let mut env = crate::helpers::test_env(tmp.path()).await;
    let cache = Cache::new(tmp.path(), 1 << 20);
    for n in 1..=3u8 {
        let key = Key::new(&format!("{n:02x}").repeat(32), 1, 1600).unwrap();
        let card = Raster {
            width: 100,
            height: 100,
            channels: 1,
            pixels: vec![n; 10_000],
        };
        cache.put(&key, &card).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(15));
    }
    // Room for two of the three: the least recently used is beyond the bound.
    env.insert("PORTAL_RENDER_CACHE_BYTES".into(), "20100".into());
    let listed = stdout(&run(&["gc"], &env, ""));
    assert!(
        listed.contains("cached  ") && listed.contains(&"01".repeat(32)),
        "{listed}"
    );
    assert!(!listed.contains(&"02".repeat(32)), "{listed}");
    assert!(
        listed.contains("render cache: 2 file(s)") && listed.contains("run with --delete"),
        "{listed}"
    );
    let deleted = stdout(&run(&["gc", "--delete"], &env, ""));
    assert!(deleted.contains("deleted  "), "{deleted}");
    assert_eq!(cached_files(tmp.path()), 2);
    env.insert("PORTAL_RENDER_CACHE_BYTES".into(), "0".into());
    let emptied = stdout(&run(&["gc", "--delete"], &env, ""));
    assert!(emptied.contains("render cache: 0 file(s)"), "{emptied}");
    assert_eq!(cached_files(tmp.path()), 0);
}

fn cached_files(data_dir: &std::path::Path) -> usize {
    std::fs::read_dir(data_dir.join("render-cache"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".raster")
        })
        .count()
}

#[tokio::test]
async fn without_its_font_nothing_unmarked_is_shown_and_readiness_says_so() {
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert(
            "PORTAL_WATERMARK_FONT".into(),
            "/nonexistent/NotoSansCJK-Regular.ttc".into(),
        );
    })
    .await;
    let picture = photo();
    let (_, party, case_id, id) = released(&app, "现场照片.png", &picture, false).await;
    let res = party
        .get(&format!("/cases/{case_id}/materials/{id}/view"))
        .await;
    assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
    let body = res.bytes().await.unwrap();
    assert_ne!(
        hex::encode(sha2::Sha256::digest(&body)),
        hex::encode(sha2::Sha256::digest(&picture))
    );
    assert!(events(&app, "material.rendered").await.is_empty());
    let ready: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready", "the rest of the portal serves on");
    assert_eq!(ready["degraded"][0], "rendering");
}
