//! Targets and reflow (issue 35, for everyone): on every page of a party's journey and of a staff
//! member's case page the browser finds the smallest thing a person presses and checks it is at
//! least 44 × 44 CSS px (60 × 60 in the care mode), at a phone's and a desktop's width; and with
//! the text at 200 % on a 320 px wide screen, no page scrolls sideways (WCAG 1.4.4, 1.4.10).
//!
//! What counts as a target: every `a`, `button`, `input`, `select`, `textarea` and `summary`;
//! a check box or radio button inside a `label` is measured by its label's box (the label is
//! what a finger presses), and a field hidden for a label styled as a button (the upload page's
//! file picker) by that label. Folded `details` are opened first, so that what they hide is
//! measured too. Left out, and only these: the skip link while it waits off the screen (it
//! shows, large, on focus), hidden inputs, and whatever is not displayed at this width. Inline
//! links are NOT excused (WCAG 2.5.8's exception is not used): the stylesheet makes them 44 px.
//! The browser's own video controls are not elements of the page and are not measured.

use serde_json::{Value, json};

use crate::driver::{Browser, Outcome, SIZES, browser_available};
use crate::ensure;
use crate::helpers::spawn_app;
use crate::setup::{
    PARTY_A, PASSWORD, ServedCase, pdf, release, scene_diagram_png, served_case, upload,
};

/// Every target under `arguments[0]` px (its box, which one), and the smallest.
pub const TARGETS: &str = r#"
const least = arguments[0];
for (const d of document.querySelectorAll('details')) d.open = true;
const shown = e => e.checkVisibility({ visibilityProperty: true, opacityProperty: false })
  && e.getBoundingClientRect().width > 0;
let smallest = null;
const under = [];
for (const e of document.querySelectorAll('a, button, input, select, textarea, summary')) {
  if (e.matches('.skip-link:not(:focus), input[type=hidden]')) continue;
  // A check box or radio: its label. A field hidden for a styled label (the upload page's
  // file picker): that label.
  const labelled = (e.matches('input[type=checkbox], input[type=radio]') && e.closest('label'))
    || (e.matches('.visually-hidden') && e.labels && e.labels[0]);
  const box = labelled || e;
  if (!shown(box)) continue;
  const r = box.getBoundingClientRect();
  const size = Math.min(r.width, r.height);
  const what = { size, width: Math.round(r.width), height: Math.round(r.height),
                 what: box.outerHTML.slice(0, 140) };
  if (!smallest || size < smallest.size) smallest = what;
  if (size < least - 0.5) under.push(what);
}
return { care: document.documentElement.classList.contains('care'), smallest, under };
"#;

/// With the root font at 200 % on the current width: whether the page scrolls sideways, and the
/// elements that stick out on the right (the first few).
pub const REFLOW: &str = r#"
document.documentElement.style.fontSize = '200%';
const html = document.documentElement;
const width = html.clientWidth;
const out = [];
for (const e of document.body.querySelectorAll('*')) {
  const r = e.getBoundingClientRect();
  if (r.width > 0 && r.right > width + 0.5 && out.length < 5)
    out.push(Math.round(r.right) + ': ' + e.outerHTML.slice(0, 120));
}
const result = { scroll: html.scrollWidth, client: width,
                 font: parseFloat(getComputedStyle(document.body).fontSize), out };
html.style.fontSize = '';
return result;
"#;

/// Checks the page's targets at both sizes: ≥ 60 px in the care mode, else ≥ 44.
pub async fn targets(b: &Browser) -> Outcome<Value> {
    let mut phone = Value::Null;
    for size in SIZES {
        b.set_viewport(size).await?;
        let care = b
            .js(
                "return document.documentElement.classList.contains('care');",
                vec![],
            )
            .await?;
        let least = if care == json!(true) { 60 } else { 44 };
        let m = b.js(TARGETS, vec![json!(least)]).await?;
        eprintln!(
            "targets at {} px, {}, care {care}: smallest {}",
            size.0,
            b.path().await?,
            m["smallest"]
        );
        ensure!(
            m["under"].as_array().is_some_and(Vec::is_empty),
            "every target ≥ {least} × {least} px at {} px: {}",
            size.0,
            m["under"]
        );
        if size.0 < 600 {
            phone = m;
        }
    }
    Ok(phone)
}

/// No sideways scrolling at 320 px with the text at 200 %.
pub async fn reflows(b: &Browser) -> Outcome {
    b.set_viewport((320, 640)).await?;
    let m = b.js(REFLOW, vec![]).await?;
    eprintln!("reflow at 320 px, text 200 %, {}: {m}", b.path().await?);
    ensure!(
        m["font"].as_f64().is_some_and(|f| f >= 32.0),
        "the text is at 200 %: {m}"
    );
    ensure!(
        m["scroll"]
            .as_f64()
            .zip(m["client"].as_f64())
            .is_some_and(|(scroll, client)| scroll <= client),
        "no sideways scrolling at 320 px with text at 200 %: {m}"
    );
    Ok(())
}

#[tokio::test]
async fn every_target_is_44_px_or_60_in_care_mode_and_pages_reflow_at_320_px() {
    if !browser_available("targets") {
        return;
    }
    let app = spawn_app().await;
    let ServedCase {
        office,
        case_id,
        code,
        diagram,
    } = served_case(&app, "京公交认字[2026]第00736号").await;
    // A PDF with a long title and file name, released (its pages in the viewer); and a
    // material not yet released, whose check box the staff table shows.
    let survey = upload(
        &office,
        &case_id,
        "survey_record",
        "勘查笔录（一份很长的标题，用来检查窄屏上能否换行而不横向滚动）",
        "勘查笔录_2026年11月20日_朝阳路与建国路交叉口_第一次现场勘查_0001.pdf",
        &pdf("Survey record"),
    )
    .await;
    release(&office, &case_id, &survey).await;
    upload(
        &office,
        &case_id,
        "scene_photo",
        "现场照片",
        "IMG_20261120_083512_0001_very_long_camera_file_name_without_spaces.png",
        &scene_diagram_png(),
    )
    .await;
    let case_page = format!("/cases/{case_id}");
    let material = format!("{case_page}/materials/{diagram}");
    let pages = format!("{case_page}/materials/{survey}");

    let b = Browser::open("targets", &app.address).await.unwrap();
    let anonymous = ["/", "/login", "/activate", "/verify", "/apply"];
    for (i, page) in anonymous.iter().enumerate() {
        b.step(&format!("0{i}-anonymous"), async {
            b.goto(page).await?;
            targets(&b).await?;
            reflows(&b).await
        })
        .await;
    }
    b.step("10-activate", async {
        b.activate(PARTY_A, &code, PASSWORD).await?;
        targets(&b).await?;
        reflows(&b).await
    })
    .await;
    let party = [
        case_page.clone(),
        material.clone(),
        pages.clone(),
        format!("{case_page}/review"),
        "/account".to_owned(),
    ];
    for (i, page) in party.iter().enumerate() {
        b.step(&format!("1{}-party", i + 1), async {
            b.goto(page).await?;
            targets(&b).await?;
            reflows(&b).await
        })
        .await;
    }
    b.step("20-care-mode", async {
        b.goto(&format!("/care?to=on&next={}", "%2Fcases")).await?;
        targets(&b).await
    })
    .await;
    for (i, page) in party.iter().enumerate() {
        b.step(&format!("2{}-party-care", i + 1), async {
            b.goto(page).await?;
            targets(&b).await
        })
        .await;
    }
    b.close().await;

    let b = Browser::open("targets-staff", &app.address).await.unwrap();
    b.step("01-staff-case", async {
        b.sign_in("wang.li", PASSWORD, "/staff").await?;
        targets(&b).await?;
        b.goto(&format!("/staff/cases/{case_id}")).await?;
        b.find("label.cell-check input[name=material]").await?;
        targets(&b).await?;
        reflows(&b).await
    })
    .await;
    b.step("02-staff-upload", async {
        b.goto(&format!("/staff/cases/{case_id}/upload")).await?;
        targets(&b).await
    })
    .await;
    b.close().await;
}
