//! The keyboard alone (issue 35): a party signs in, opens the case, reads a PDF's pages and
//! zooms a picture with the keys the viewer tells of, downloads, and reaches the review
//! application form, with nothing but Tab, Shift+Tab, Enter, Space, arrow and page keys sent to
//! the focused element; every control that takes the focus shows it (an outline or a ring).

use fantoccini::key::Key;
use serde_json::{Value, json};

use crate::driver::{Browser, Outcome};
use crate::ensure;
use crate::helpers::spawn_app;
use crate::setup::{PARTY_A, PASSWORD, ServedCase, release, served_case, upload};

/// What has the focus, and whether it shows: an outline or a box shadow on it (or, for a check
/// box, on its label).
const FOCUSED: &str = r#"
const e = document.activeElement;
if (!e || e === document.body) return { what: null, visible: false };
const shows = x => { const s = getComputedStyle(x);
  return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'; };
const label = e.closest('label');
return { what: e.outerHTML.slice(0, 120), matches: e.matches(arguments[0]),
         visible: shows(e) || (label !== null && shows(label)) };
"#;

/// Sends `keys` to whatever has the focus (the page's body when nothing has).
async fn press(b: &Browser, keys: &str) -> Outcome {
    b.client.active_element().await?.send_keys(keys).await?;
    Ok(())
}

/// Tabs (forwards, or backwards with Shift) until `css` has the focus, checking on the way
/// that every focused control shows its focus.
async fn tab_to(b: &Browser, css: &str, backwards: bool) -> Outcome {
    let key = if backwards {
        format!("{}{}", &*Key::Shift, &*Key::Tab)
    } else {
        Key::Tab.to_string()
    };
    for _ in 0..120 {
        press(b, &key).await?;
        let f: Value = b.js(FOCUSED, vec![json!(css)]).await?;
        if f["what"].is_null() {
            continue;
        }
        ensure!(
            f["visible"] == json!(true),
            "the focus shows on every control: {f}"
        );
        if f["matches"] == json!(true) {
            return Ok(());
        }
    }
    Err(format!("{css} never took the focus").into())
}

/// The text of `css` as the page has it (shown or scrolled away).
async fn content(b: &Browser, css: &str) -> Outcome<String> {
    let v = b
        .js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            vec![json!(css)],
        )
        .await?;
    Ok(v.as_str().ok_or(format!("no {css}"))?.to_owned())
}

/// Enter on the focused link or button, then waits for `path`.
async fn enter_to(b: &Browser, path: &str) -> Outcome {
    press(b, &Key::Enter).await?;
    b.wait_for_path(path).await
}

/// A two-page PDF with text on each page (as tests/api/rendering.rs makes it).
fn two_page_pdf() -> Vec<u8> {
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

#[tokio::test]
async fn a_party_signs_in_reads_downloads_and_applies_by_keyboard_alone() {
    if !crate::driver::browser_available("keyboard") {
        return;
    }
    let app = spawn_app().await;
    let ServedCase {
        office,
        case_id,
        code,
        diagram,
    } = served_case(&app, "京公交认字[2026]第00737号").await;
    let survey = upload(
        &office,
        &case_id,
        "survey_record",
        "勘查笔录",
        "勘查笔录.pdf",
        &two_page_pdf(),
    )
    .await;
    release(&office, &case_id, &survey).await;
    // Activated beforehand (its form is the sign-in's, with two more fields).
    let phone = app.with_client(crate::helpers::client());
    let csrf = phone.csrf_from("/activate").await;
    phone
        .post_form(
            "/activate",
            &[
                ("csrf_token", &csrf),
                ("identifier", PARTY_A),
                ("code", &code),
                ("password", PASSWORD),
                ("password_repeat", PASSWORD),
            ],
        )
        .await;
    let case_page = format!("/cases/{case_id}");
    let pages = format!("{case_page}/materials/{survey}");
    let picture = format!("{case_page}/materials/{diagram}");

    let b = Browser::open("keyboard", &app.address).await.unwrap();
    b.step("01-sign-in", async {
        b.goto("/login").await?;
        tab_to(&b, "#identifier", false).await?;
        press(&b, PARTY_A).await?;
        tab_to(&b, "#password", false).await?;
        press(&b, PASSWORD).await?;
        enter_to(&b, "/cases").await
    })
    .await;
    b.step("02-case", async {
        tab_to(&b, &format!("a[href='{case_page}']"), false).await?;
        enter_to(&b, &case_page).await?;
        // "朗读" shows only where the browser has a Chinese voice (headless Chromium may have none).
        let aloud = b
            .js(
                "const zh = speechSynthesis.getVoices().some(v => v.lang.toLowerCase().startsWith('zh'));
                 return document.getElementById('read-aloud').hidden === !zh;",
                vec![],
            )
            .await?;
        ensure!(aloud == json!(true), "read aloud shown exactly where a voice is");
        Ok(())
    })
    .await;
    b.step("03-pages", async {
        tab_to(&b, &format!("a[href='{pages}']"), false).await?;
        enter_to(&b, &pages).await?;
        b.find("#pdf-pages img").await?;
        ensure!(
            content(&b, "#page-status").await? == "第 1 页，共 2 页",
            "page 1 of 2"
        );
        ensure!(
            b.text("#viewer-keys").await?.contains("PageDown"),
            "the keys are told on the page"
        );
        press(&b, &Key::PageDown).await?;
        b.wait_js(
            "page 2",
            "return document.activeElement.id === 'page-2' && document.getElementById('page-status').textContent === '第 2 页，共 2 页';",
            vec![],
        )
        .await?;
        press(&b, &Key::Left).await?;
        b.wait_js(
            "page 1 again",
            "return document.activeElement.id === 'page-1';",
            vec![],
        )
        .await?;
        press(&b, "+").await?;
        let level = content(&b, "#zoom-level").await?;
        ensure!(level == "125%", "zoomed by key: {level}");
        press(&b, "0").await?;
        // The buttons answer Space and Enter as well.
        tab_to(&b, "#page-next", false).await?;
        press(&b, &Key::Space).await?;
        ensure!(
            content(&b, "#page-status").await? == "第 2 页，共 2 页",
            "next page by button"
        );
        // The download is above: back with Shift+Tab, then Enter.
        let before = b.downloaded()?;
        tab_to(&b, &format!("a[href='{pages}/download']"), true).await?;
        press(&b, &Key::Enter).await?;
        b.wait_for_download("pdf", &before).await?;
        Ok(())
    })
    .await;
    b.step("04-picture", async {
        tab_to(&b, &format!("a[href='{case_page}']"), true).await?;
        enter_to(&b, &case_page).await?;
        tab_to(&b, &format!("a[href='{picture}']"), false).await?;
        enter_to(&b, &picture).await?;
        b.find("#image-stage img").await?;
        press(&b, "+").await?;
        press(&b, "+").await?;
        ensure!(
            content(&b, "#zoom-level").await? == "156%",
            "zoomed in twice"
        );
        let before = b
            .js(
                "return document.querySelector('#image-stage img').style.transform;",
                vec![],
            )
            .await?;
        press(&b, &Key::Right).await?;
        let after = b
            .js(
                "return document.querySelector('#image-stage img').style.transform;",
                vec![],
            )
            .await?;
        ensure!(before != after, "the arrow keys move the zoomed picture");
        press(&b, "-").await?;
        tab_to(&b, "#zoom-reset", false).await?;
        press(&b, &Key::Enter).await?;
        ensure!(
            content(&b, "#zoom-level").await? == "100%",
            "reset by button"
        );
        Ok(())
    })
    .await;
    b.step("05-review-form", async {
        tab_to(&b, &format!("a[href='{case_page}']"), true).await?;
        enter_to(&b, &case_page).await?;
        tab_to(&b, "#apply-review", false).await?;
        enter_to(&b, &format!("{case_page}/review")).await?;
        tab_to(&b, "form textarea, form input:not([type=hidden])", false).await?;
        Ok(())
    })
    .await;
    b.close().await;
}
