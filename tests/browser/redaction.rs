//! Redaction in the browser (issue 34): an officer draws a box over the scene diagram with the
//! pointer, gives its reason, previews it black and saves; the history shows the copy in
//! effect; the party's case page says a material was redacted and why, and the party's picture
//! is the redacted one. Every step is photographed at 360 and 1280 px with axe, so the editor
//! is checked usable on a phone too.

use serde_json::json;

use crate::driver::{Browser, browser_available};
use crate::ensure;
use crate::helpers::spawn_app;
use crate::setup::{PARTY_A, PASSWORD, served_case};

#[tokio::test]
async fn an_officer_redacts_a_region_and_the_party_is_told_and_shown_the_copy() {
    if !browser_available("redaction") {
        return;
    }
    let app = spawn_app().await;
    let case = served_case(&app, "京公交认字[2026]第00888号").await;
    let editor = format!(
        "/staff/cases/{}/materials/{}/redact",
        case.case_id, case.diagram
    );

    let b = Browser::open("redaction", &app.address).await.unwrap();
    b.step("01-sign-in", async {
        b.sign_in("wang.li", PASSWORD, "/staff").await
    })
    .await;
    b.step("02-editor", async {
        b.goto(&format!("/staff/cases/{}", case.case_id)).await?;
        b.click(&format!(r#"a[href="{editor}"]"#)).await?;
        b.wait_for_path(&editor).await?;
        b.wait_js(
            "the original is shown to draw on",
            "const i = document.querySelector('#redact-stage img'); return i.complete && i.naturalWidth > 0;",
            vec![],
        )
        .await?;
        // On a phone the page does not scroll sideways (the table of boxes scrolls in its frame).
        b.set_viewport((360, 740)).await?;
        let wide = b
            .js(
                "if (document.documentElement.scrollWidth <= window.innerWidth) { return []; }
                 return [...document.querySelectorAll('body *')]
                   .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                     && !(e.parentElement && e.parentElement.closest('.table-wrap, .redact-frame')))
                   .map(e => e.tagName + '.' + e.className + '#' + e.id).slice(0, 12);",
                vec![],
            )
            .await?;
        ensure!(wide == json!([]), "wider than a phone: {wide}");
        Ok(())
    })
    .await;
    b.step("03-draw", async {
        // A drag across the picture's top-left quarter, as a mouse or finger makes it.
        b.js(
            "const l = document.getElementById('redact-layer'); const r = l.getBoundingClientRect();
             const at = (type, fx, fy) => l.dispatchEvent(new PointerEvent(type, {
               bubbles: true, button: 0, pointerId: 1, isPrimary: true,
               clientX: r.left + r.width * fx, clientY: r.top + r.height * fy }));
             at('pointerdown', 0.1, 0.1); at('pointermove', 0.3, 0.3); at('pointerup', 0.4, 0.4);",
            vec![],
        )
        .await?;
        let x = b.find(r#"input[name="box0.x"]"#).await?.prop("value").await?;
        let w = b.find(r#"input[name="box0.w"]"#).await?.prop("value").await?;
        let near = |v: Option<String>, to: f64| {
            v.and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| (v - to).abs() < 1.5)
        };
        ensure!(
            near(x.clone(), 10.0) && near(w.clone(), 30.0),
            "the drag filled the first row: {x:?} {w:?}"
        );
        // The reason by keyboard, as the drawing left the focus on it.
        let focused = b
            .js("return document.activeElement.name;", vec![])
            .await?;
        ensure!(focused == json!("box0.reason"), "{focused}");
        b.js(
            "const s = document.activeElement; s.value = 'third_party_face'; s.dispatchEvent(new Event('change', {bubbles: true}));",
            vec![],
        )
        .await?;
        b.click("#redact-preview").await?;
        let solid = b
            .js("return document.querySelectorAll('.redact-box.solid').length;", vec![])
            .await?;
        ensure!(solid == json!(1), "the preview shows one solid box: {solid}");
        Ok(())
    })
    .await;
    b.step("04-saved", async {
        b.click_and_load(r#"#redact-form button[type="submit"]"#)
            .await?;
        let history = b.text("#history").await?;
        ensure!(
            history.contains("当前生效") && history.contains("无关人员面部"),
            "{history}"
        );
        Ok(())
    })
    .await;
    b.close().await;

    let p = Browser::open("redaction-party", &app.address)
        .await
        .unwrap();
    p.step("01-activate", async {
        p.activate(PARTY_A, &case.code, PASSWORD).await
    })
    .await;
    p.step("02-told", async {
        p.goto(&format!("/cases/{}", case.case_id)).await?;
        let note = p.text("#redacted-note").await?;
        ensure!(
            note.contains("1 份材料作了遮挡处理（无关人员面部）"),
            "{note}"
        );
        Ok(())
    })
    .await;
    p.step("03-redacted-picture", async {
        p.goto(&format!("/cases/{}/materials/{}", case.case_id, case.diagram))
            .await?;
        // The picture's top-left region is black in what the party is shown.
        let dark = p
            .js(
                "const i = document.querySelector('#image-stage img');
                 if (!i.complete || !i.naturalWidth) { return -1; }
                 const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
                 const g = c.getContext('2d'); g.drawImage(i, 0, 0);
                 const d = g.getImageData(Math.round(c.width * 0.15), Math.round(c.height * 0.15), 20, 20).data;
                 let sum = 0; for (let k = 0; k < d.length; k += 4) { sum += d[k] + d[k + 1] + d[k + 2]; }
                 return Math.round(sum / (d.length / 4));",
                vec![],
            )
            .await?;
        ensure!(
            dark.as_i64().is_some_and(|v| (0..120).contains(&v)),
            "the box is dark in the party's picture: {dark}"
        );
        Ok(())
    })
    .await;
}
