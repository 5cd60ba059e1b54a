//! Real and hostile files through the view-only rendering (issue 32, item 10): a party in the
//! `disclosing` stage views each file of a corpus the tests make (`corpus`) through the running
//! server. Real files — scans, vector diagrams, Chinese text in embedded and non-embedded fonts,
//! a 200-page file, photos carrying EXIF GPS — are shown, marked, with no metadata; hostile ones —
//! deep nesting, huge pages, decompression bombs, a truncated and an encrypted file — are shown or
//! refused with a clear page (`cannot_show_online`), never a 500 or 503, each within the renderer's
//! wall limit, and the portal serves on after all of them.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sha2::Digest;

use crate::auth::{PASSWORD, activate};
use crate::cases::{open_case, registered, set_status, staff_of};
use crate::corpus;
use crate::helpers::{TestApp, client, spawn_app};
use crate::materials::{decide, uploaded};

/// What a file must come to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// A marked JPEG (200).
    Shown,
    /// The clear refusal: 400 `cannot_show_online`, saying to ask the brigade.
    Refused,
    /// Either of the two (what the renderer makes of it is its business), never anything else.
    Either,
}

struct Item {
    name: &'static str,
    kind: &'static str,
    bytes: Vec<u8>,
    page: u32,
    expect: Expect,
}

fn item(name: &'static str, bytes: Vec<u8>, expect: Expect) -> Item {
    let kind = if name.ends_with(".pdf") {
        "survey_record"
    } else {
        "scene_photo"
    };
    Item {
        name,
        kind,
        bytes,
        page: 1,
        expect,
    }
}

/// The most a view may take: the wait for a slot, the renderer's wall limit (15 s), the audit
/// and the marking — under the portal's 25-s deadline, past which it would be a bare 503.
const BOUND: Duration = Duration::from_secs(22);

/// Whether pdftoppm, poppler's CJK maps and the Noto CJK fonts are here; with `CI` set they
/// must be (the CI run installs them).
pub fn renderers_missing() -> bool {
    let needed = [
        "/usr/bin/pdftoppm",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
        "/usr/share/poppler/cMap/Adobe-GB1/UniGB-UCS2-H",
    ];
    let missing: Vec<&str> = needed
        .into_iter()
        .filter(|p| !std::path::Path::new(p).exists())
        .collect();
    assert!(
        missing.is_empty() || std::env::var_os("CI").is_none(),
        "CI installs poppler-utils, poppler-data and fonts-noto-cjk: missing {missing:?}"
    );
    !missing.is_empty()
}

/// A case in the disclosure stage with every item uploaded and released, party 甲 signed in:
/// (staff, party, case id, material ids in the order of `items`).
async fn shelf(app: &TestApp, items: &[Item]) -> (TestApp, TestApp, String, Vec<String>) {
    let staff = staff_of(app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-语料", true).await;
    let code = registered(&staff, &case_id, "甲", "110101199003070011", "张伟").await;
    let mut ids = Vec::new();
    for it in items {
        let id = uploaded(&staff, &case_id, it.kind, it.name, it.name, &it.bytes).await;
        decide(&staff, &case_id, &id, "release", &[]).await;
        ids.push(id);
    }
    set_status(&staff, &case_id, &[("to", "disclosing")]).await;
    let party = app.with_client(client());
    activate(&party, "110101199003070011", &code, PASSWORD).await;
    (staff, party, case_id, ids)
}

/// One viewing: its status, the stable code of a refusal, the time, the body.
struct Seen {
    status: StatusCode,
    code: &'static str,
    took: Duration,
    body: Vec<u8>,
}

async fn view(party: &TestApp, case_id: &str, id: &str, it: &Item) -> Seen {
    let started = Instant::now();
    let res = party
        .get(&format!(
            "/cases/{case_id}/materials/{id}/view?page={}",
            it.page
        ))
        .await;
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.bytes().await.unwrap().to_vec();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&body);
    let code = if status == StatusCode::OK && content_type == "image/jpeg" {
        "-"
    } else if status == StatusCode::BAD_REQUEST
        && text.contains("cannot_show_online")
        && text.contains("无法在线显示，请到办案大队查阅")
    {
        "cannot_show_online"
    } else {
        "UNCLEAR"
    };
    Seen {
        status,
        code,
        took,
        body,
    }
}

/// Views every item and checks what each came to; prints the table (`--nocapture`).
async fn view_all(party: &TestApp, case_id: &str, ids: &[String], items: &[Item]) -> Vec<Seen> {
    let mut seen = Vec::new();
    eprintln!("{:<28} {:>6} {:<20} {:>8}", "file", "status", "code", "ms");
    for (it, id) in items.iter().zip(ids) {
        let s = view(party, case_id, id, it).await;
        eprintln!(
            "{:<28} {:>6} {:<20} {:>8}",
            it.name,
            s.status.as_u16(),
            s.code,
            s.took.as_millis()
        );
        let ok = match it.expect {
            Expect::Shown => s.code == "-",
            Expect::Refused => s.code == "cannot_show_online",
            Expect::Either => s.code != "UNCLEAR",
        };
        assert!(
            ok,
            "{}: expected {:?}, got {} {} ({} bytes: {})",
            it.name,
            it.expect,
            s.status,
            s.code,
            s.body.len(),
            String::from_utf8_lossy(&s.body[..s.body.len().min(300)])
        );
        assert!(s.took < BOUND, "{} took {:?}", it.name, s.took);
        assert_ne!(
            hex::encode(sha2::Sha256::digest(&s.body)),
            hex::encode(sha2::Sha256::digest(&it.bytes)),
            "{}: the original went out",
            it.name
        );
        // The viewer page around it is a page, whatever the file.
        let viewer = party.get(&format!("/cases/{case_id}/materials/{id}")).await;
        assert_eq!(
            viewer.status(),
            StatusCode::OK,
            "{}: the viewer page",
            it.name
        );
        let page = viewer.text().await;
        assert!(page.is_ok(), "{}: the viewer page {page:?}", it.name);
        seen.push(s);
    }
    seen
}

/// How many pixels of a rendering are dark (text or drawing, not the faint mark: it is drawn
/// at a fifth of full strength, never darker than ~200 of 255).
fn dark_pixels(jpeg: &[u8]) -> usize {
    image::load_from_memory(jpeg)
        .unwrap()
        .to_luma8()
        .pixels()
        .filter(|p| p.0[0] < 110)
        .count()
}

#[tokio::test]
async fn real_files_are_shown_marked_with_their_text_and_without_their_metadata() {
    if renderers_missing() {
        return;
    }
    let app = spawn_app().await;
    let mut items = vec![
        item("blank.pdf", corpus::blank_page(), Expect::Shown),
        item("scanned.pdf", corpus::scanned(), Expect::Shown),
        item("scene-diagram.pdf", corpus::scene_diagram(), Expect::Shown),
        item("embedded-type3.pdf", corpus::cjk_embedded(), Expect::Shown),
    ];
    // Non-embedded Chinese fonts as government PDFs name them: in ASCII, and 宋体 in GBK.
    let fonts = [
        "SimSun",
        "SimHei",
        "FangSong",
        "KaiTi_GB2312",
        "#CB#CE#CC#E5",
    ];
    let names = [
        "simsun.pdf",
        "simhei.pdf",
        "fangsong.pdf",
        "kaiti.pdf",
        "songti-gbk-name.pdf",
    ];
    for (font, name) in fonts.into_iter().zip(names) {
        items.push(item(name, corpus::cjk_not_embedded(font), Expect::Shown));
    }
    // Noto Sans CJK SC embedded whole (the renderers being here, so is the font).
    let embedded = corpus::cjk_embedded_font().unwrap();
    items.push(item("embedded-otf.pdf", embedded, Expect::Shown));
    // Encrypted with an owner password only: every reader opens it, so it is shown.
    items.push(item(
        "permissions-only.pdf",
        corpus::permissions_only(),
        Expect::Shown,
    ));
    let mut last = item("200-pages.pdf", corpus::many_pages(200), Expect::Shown);
    last.page = 200;
    items.push(last);
    for (name, bytes) in [
        ("gps.jpg", corpus::jpeg_with_gps()),
        ("gps.png", corpus::png_with_gps()),
        ("gps.webp", corpus::webp_with_gps()),
    ] {
        assert!(corpus::carries_exif(&bytes), "{name} carries its GPS");
        items.push(item(name, bytes, Expect::Shown));
    }
    let (_, party, case_id, ids) = shelf(&app, &items).await;
    let seen = view_all(&party, &case_id, &ids, &items).await;

    // Decoded off the test's one runtime thread: blocking it for seconds would leave the
    // client's pooled connections unpolled while the server closes them (keep-alive, 5 s).
    let bodies: Vec<Vec<u8>> = seen.iter().map(|s| s.body.clone()).collect();
    let dark: Vec<usize> =
        tokio::task::spawn_blocking(move || bodies.iter().map(|b| dark_pixels(b)).collect())
            .await
            .unwrap();
    eprintln!("dark pixels: {dark:?}");
    let blank = dark[0];
    assert!(
        blank < 500,
        "a blank page is blank under its mark ({blank})"
    );
    for (i, it) in items.iter().enumerate().skip(1) {
        // Substituted CJK glyphs: ~85,000 dark pixels on these pages; the empty boxes drawn
        // where no CJK font is found ("tofu"), ~25,000; text dropped for want of poppler's
        // character maps, none.
        let cjk = names.contains(&it.name) || it.name == "embedded-otf.pdf";
        let least = if cjk { 50_000 } else { 5_000 };
        if it.name.ends_with(".pdf") {
            assert!(
                dark[i] > least.max(blank * 20),
                "{}: its text or drawing is on the page ({} dark pixels, blank {blank})",
                it.name,
                dark[i]
            );
        }
        if !it.name.ends_with(".pdf") {
            assert!(
                !corpus::carries_exif(&seen[i].body),
                "{}: EXIF or GPS survived the rendering",
                it.name
            );
            let shown = image::load_from_memory(&seen[i].body).unwrap();
            assert_eq!((shown.width(), shown.height()), (800, 600), "{}", it.name);
        }
    }
    // The file encrypted for its permissions only is shown page by page, as it is drawn.
    let at = items
        .iter()
        .position(|i| i.name == "permissions-only.pdf")
        .unwrap();
    let viewer = party
        .get(&format!("/cases/{case_id}/materials/{}", ids[at]))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        viewer.contains(r#"id="pdf-pages""#) && !viewer.contains(r#"id="view-at-brigade""#),
        "{viewer}"
    );
    // The 200-page file is shown as 200 pages.
    let at = items
        .iter()
        .position(|i| i.name == "200-pages.pdf")
        .unwrap();
    let viewer = party
        .get(&format!("/cases/{case_id}/materials/{}", ids[at]))
        .await
        .text()
        .await
        .unwrap();
    assert!(viewer.contains("共 200 页"), "{viewer}");
}

#[tokio::test]
async fn hostile_files_are_shown_or_refused_clearly_within_the_limits_and_the_portal_stays_up() {
    if renderers_missing() {
        return;
    }
    let app = spawn_app().await;
    let mut garbage = b"%PDF-1.7\n".to_vec();
    garbage.extend(std::iter::repeat_n(b'[', 200_000));
    let items = vec![
        item(
            "nested-arrays.pdf",
            corpus::nested_arrays(100_000),
            Expect::Either,
        ),
        item("only-brackets.pdf", garbage, Expect::Refused),
        // Grows past the child's 1 GiB of address space: the limit ends it, not the machine.
        item("deep-content.pdf", corpus::deep_content(), Expect::Refused),
        item(
            "huge-page.pdf",
            corpus::page_of_size(200_000, 200_000),
            Expect::Either,
        ),
        // 1,600 px wide, this page would be 32 million pixels tall.
        item(
            "tall-page.pdf",
            corpus::page_of_size(10, 200_000),
            Expect::Refused,
        ),
        item(
            "flate-bomb.pdf",
            corpus::flate_bomb_pdf(512 << 20),
            Expect::Either,
        ),
        // 16 GiB of spaces: a minute of inflating, ended by the child's 15 s of CPU (or wall).
        item(
            "cpu-bomb.pdf",
            corpus::flate_bomb_pdf(16 << 30),
            Expect::Refused,
        ),
        item("image-bomb.pdf", corpus::image_bomb_pdf(), Expect::Either),
        item(
            "bomb.png",
            corpus::png_bomb(30_000, false, 16),
            Expect::Refused,
        ),
        // 64 million grey pixels: under the decoder's allocation limit, over the pixel limit.
        item(
            "grey-bomb.png",
            corpus::png_bomb(8_000, true, 8_000),
            Expect::Refused,
        ),
        item("truncated.pdf", corpus::truncated(), Expect::Refused),
        item("encrypted.pdf", corpus::encrypted(), Expect::Refused),
    ];
    let (_, party, case_id, ids) = shelf(&app, &items).await;
    let started = Instant::now();
    view_all(&party, &case_id, &ids, &items).await;
    eprintln!("the hostile corpus took {:?}", started.elapsed());

    // A script asking for JSON reads the same stable code.
    let at = items
        .iter()
        .position(|i| i.name == "encrypted.pdf")
        .unwrap();
    let res = party
        .get_json(&format!("/cases/{case_id}/materials/{}/view", ids[at]))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "cannot_show_online", "{body}");

    // The portal serves on: health, the case page, and a real file viewed after all of them.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(
        party.get(&format!("/cases/{case_id}")).await.status(),
        StatusCode::OK
    );
    let staff = staff_of(&app, "110105", "li.na").await;
    let id = uploaded(
        &staff,
        &case_id,
        "survey_record",
        "勘查笔录",
        "r.pdf",
        &corpus::scene_diagram(),
    )
    .await;
    decide(&staff, &case_id, &id, "release", &[]).await;
    let after = view(&party, &case_id, &id, &item("r.pdf", vec![], Expect::Shown)).await;
    assert_eq!(
        after.code, "-",
        "a real file is shown after the hostile ones"
    );
}
