//! A party's journey: from the printed notice to the evidence on their own screen and on disk.

use fantoccini::wd::{PrintConfiguration, PrintSize};
use serde_json::json;

use crate::driver::{Browser, browser_available};
use crate::ensure;
use crate::helpers::spawn_app;
use crate::setup::{
    PARTY_A, PARTY_A_MASKED, PASSWORD, open_case, pdf, release, scene_diagram_png, serve, staff,
    upload,
};

const CASE_NUMBER: &str = "京公交认字[2026]第00321号";

#[tokio::test]
async fn a_party_activates_from_the_notice_views_the_evidence_and_downloads_the_bundle() {
    if !browser_available("party") {
        return;
    }
    let app = spawn_app().await;
    let office = staff(&app, "wang.li").await;
    let case_id = open_case(&office, CASE_NUMBER).await;
    let diagram_png = scene_diagram_png();
    let diagram = upload(
        &office,
        &case_id,
        "scene_diagram",
        "现场图",
        "现场图.png",
        &diagram_png,
    )
    .await;
    let survey_pdf = pdf("Survey record");
    let survey = upload(
        &office,
        &case_id,
        "survey_record",
        "现场勘查笔录",
        "勘查笔录.pdf",
        &survey_pdf,
    )
    .await;
    for id in [&diagram, &survey] {
        release(&office, &case_id, id).await;
    }
    serve(&office, &case_id).await;
    // Released once the party is registered: the party is told (step 04b).
    let opinion = upload(
        &office,
        &case_id,
        "expert_opinion",
        "鉴定意见",
        "鉴定意见.pdf",
        &pdf("Expert opinion"),
    )
    .await;

    let b = Browser::open("party", &app.address).await.unwrap();
    let case_page = format!("/cases/{case_id}");

    b.step("01-staff-sign-in", async {
        b.sign_in("wang.li", PASSWORD, "/staff").await
    })
    .await;

    let code = b
        .step("02-staff-print-notice", async {
            b.goto(&format!("/staff/cases/{case_id}")).await?;
            b.fill("#p-label", "甲").await?;
            b.fill("#p-name", "张伟").await?;
            b.find("#p-kind")
                .await?
                .select_by_value("citizen_id")
                .await?;
            b.fill("#p-id", PARTY_A).await?;
            b.fill("#p-mobile", "13800138000").await?;
            b.find("#p-role").await?.select_by_value("driver").await?;
            b.click(r#"form[action$="/parties#parties"] button[type="submit"]"#)
                .await?;
            let code = b.text("#access-code").await?;
            let page = b.text("main").await?;
            ensure!(page.contains(CASE_NUMBER), "the notice names the case");
            ensure!(
                page.contains(PARTY_A_MASKED) && !page.contains(PARTY_A),
                "the notice shows the masked ID only"
            );
            // The notice is printed on A4: one sheet.
            let print = PrintConfiguration::builder()
                .size(PrintSize::A4)
                .build()
                .map_err(|e| format!("{e:?}"))?;
            let sheet = b.client.print(print).await?;
            ensure!(sheet.starts_with(b"%PDF"), "printing gives a PDF");
            // Chromium writes one `/Type /Page` object per sheet (and `/Type /Pages` once).
            let sheets = sheet
                .windows(11)
                .enumerate()
                .filter(|(i, w)| *w == b"/Type /Page" && sheet.get(i + 11) != Some(&b's'))
                .count();
            ensure!(
                sheets == 1,
                "the notice prints on one A4 sheet, not {sheets}"
            );
            std::fs::write(
                crate::driver::screenshot_dir("party").join("02-notice-print.pdf"),
                &sheet,
            )?;
            Ok(code)
        })
        .await;

    b.step("03-party-activate", async {
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.activate(PARTY_A, &code, PASSWORD).await
    })
    .await;

    b.step("04-party-sign-in", async {
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.sign_in(PARTY_A, PASSWORD, "/cases").await?;
        b.find(&format!(r#"a[href="{case_page}"]"#)).await?;
        Ok(())
    })
    .await;

    release(&office, &case_id, &opinion).await;
    b.step("04b-inbox", async {
        b.goto("/cases").await?;
        let badge = b.text(".inbox-link.has-unread").await?;
        ensure!(
            badge == "消息（1条未读）",
            "the header counts the message: {badge}"
        );
        b.click_and_load(".inbox-link").await?;
        b.wait_for_path("/inbox").await?;
        let message = b.text(".inbox li.unread").await?;
        ensure!(
            message.contains("有1份证据材料已公开") && message.contains("查看案件"),
            "the message says what and links the case: {message}"
        );
        b.click_and_load(r#"form[action="/inbox/read"] button[type="submit"]"#)
            .await?;
        let flash = b.text(".flash").await?;
        ensure!(flash.contains("已将1条消息标为已读"), "said: {flash}");
        let badge = b.text(".inbox-link").await?;
        ensure!(badge == "消息", "no unread count left: {badge}");
        Ok(())
    })
    .await;

    b.step("05-case", async {
        b.click(&format!(r#"a[href="{case_page}"]"#)).await?;
        b.wait_for_path(&case_page).await?;
        b.find(&format!("#material-{diagram}")).await?;
        b.find(&format!("#material-{survey}")).await?;
        // The scene diagram's thumbnail is made and shown.
        b.wait_js(
            "the thumbnail",
            "const img = document.querySelector(arguments[0]);
             return !!img && img.complete && img.naturalWidth > 0;",
            vec![json!(format!("#material-{diagram} img.thumb"))],
        )
        .await
    })
    .await;

    b.step("06-scene-diagram-viewer", async {
        b.click(&format!("#material-{diagram} .material-text a"))
            .await?;
        b.wait_for_path(&format!("{case_page}/materials/{diagram}"))
            .await?;
        b.wait_js(
            "the scene diagram",
            "const img = document.querySelector('#image-stage img');
             return !!img && img.complete && img.naturalWidth === 640;",
            vec![],
        )
        .await?;
        ensure!(
            b.find("#zoom-controls").await?.is_displayed().await?,
            "the zoom controls are shown"
        );
        // At 100 % a finger or a plain wheel scrolls the page: the image does not trap it.
        const TOUCH: &str =
            "return getComputedStyle(document.getElementById('image-stage')).touchAction;";
        let at_100 = b.js(TOUCH, vec![]).await?;
        ensure!(
            at_100 == json!("pan-x pan-y"),
            "page scroll by finger: {at_100}"
        );
        b.js(
            "document.getElementById('image-stage').dispatchEvent(
                 new WheelEvent('wheel', { deltaY: -100, bubbles: true, cancelable: true }));",
            vec![],
        )
        .await?;
        let zoom = b.text("#zoom-level").await?;
        ensure!(zoom == "100%", "a plain wheel does not zoom: {zoom}");
        b.click("#zoom-in").await?;
        let zoom = b.text("#zoom-level").await?;
        ensure!(zoom == "125%", "zoomed in to 125%, shows {zoom}");
        let zoomed = b.js(TOUCH, vec![]).await?;
        ensure!(
            zoomed == json!("none"),
            "zoomed, fingers move the image: {zoomed}"
        );
        let mark = b
            .find(".watermark span")
            .await?
            .attr("data-mark")
            .await?
            .unwrap_or_default();
        ensure!(
            mark.contains(PARTY_A_MASKED),
            "the watermark names the viewer: {mark}"
        );
        Ok(())
    })
    .await;

    b.step("07-survey-record-viewer", async {
        b.goto(&case_page).await?;
        b.click(&format!("#material-{survey} .material-text a"))
            .await?;
        b.wait_for_path(&format!("{case_page}/materials/{survey}"))
            .await?;
        // Viewing is always a rendering: the pages as pictures with the party burned in; the
        // original is the download.
        let page = b.find("#pdf-pages img").await?;
        let src = page.attr("src").await?.ok_or("the page has no src")?;
        ensure!(
            src == format!("{case_page}/materials/{survey}/view?page=1"),
            "the page shows the material: {src}"
        );
        let answer = b
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch(arguments[0]).then(r => done([r.status, r.headers.get('content-type')]));",
                vec![json!(src)],
            )
            .await?;
        ensure!(
            answer[0] == json!(200) && answer[1] == json!("image/jpeg"),
            "the page is a rendering: {answer}"
        );
        ensure!(
            b.find("#rendered-note").await.is_ok(),
            "the page says what is shown"
        );
        Ok(())
    })
    .await;

    b.step("08-download-bundle", async {
        b.goto(&case_page).await?;
        let before = b.downloaded()?;
        b.click(&format!(r#"a[href="{case_page}/bundle.zip"]"#))
            .await?;
        let zip_path = b.wait_for_download("zip", &before).await?;
        let entries = Browser::unzip(&zip_path)?;
        let names: Vec<&String> = entries.keys().collect();
        for wanted in ["manifest.json", "manifest.jws", "SHA256SUMS"] {
            ensure!(
                entries.contains_key(wanted),
                "{wanted} in the bundle: {names:?}"
            );
        }
        let (_, bytes) = entries
            .iter()
            .find(|(n, _)| n.starts_with("现场图/"))
            .ok_or(format!("the scene diagram in the bundle: {names:?}"))?;
        ensure!(*bytes == diagram_png, "the scene diagram arrives intact");
        ensure!(
            names.iter().any(|n| n.starts_with("勘查笔录/")),
            "the survey record in the bundle: {names:?}"
        );
        Ok(())
    })
    .await;

    b.step("09-access-history", async {
        b.goto(&case_page).await?;
        // Entries, not their wording (which follows the page's language): the case views, both
        // viewers and the bundle are there, named by the materials' titles — the party's own,
        // folded away until opened.
        b.click("#access-history details.own-accesses summary")
            .await?;
        let rows = b
            .js(
                "return [...document.querySelectorAll('#access-history li.access')]
                     .map(li => li.textContent);",
                vec![],
            )
            .await?;
        let rows: Vec<String> = serde_json::from_value(rows)?;
        ensure!(
            rows.len() >= 4,
            "the access history lists the visits: {rows:?}"
        );
        for title in ["现场图", "现场勘查笔录"] {
            ensure!(
                rows.iter().any(|r| r.contains(title)),
                "the access history names {title}: {rows:?}"
            );
        }
        Ok(())
    })
    .await;

    // The party lost their password: the brigade resets the account (a separate, confirmed
    // action with a reason), and the party is told at their next sign-in.
    b.step("10-staff-reset-form", async {
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.sign_in("wang.li", PASSWORD, "/staff").await?;
        b.goto(&format!("/staff/cases/{case_id}")).await?;
        b.click("details.reset-account summary").await?;
        b.fill(
            r#"form[action$="/reset"] input[name="reason"]"#,
            "当事人到队申请，遗失密码",
        )
        .await?;
        b.click(r#"form[action$="/reset"] input[name="confirm"]"#)
            .await
    })
    .await;
    let new_code = b
        .step("11-staff-reset-notice", async {
            b.click(r#"form[action$="/reset"] button[type="submit"]"#)
                .await?;
            b.text("#access-code").await
        })
        .await;
    b.step("12-party-told-of-reset", async {
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.activate(PARTY_A, &new_code, "Another-Lotus-Pass-9")
            .await?;
        let told = b.text(".account-reset").await?;
        ensure!(
            told.contains("当事人到队申请") || told.contains("遗失密码"),
            "the party is told why: {told}"
        );
        Ok(())
    })
    .await;

    // The same case in English: whom to ask, the review window, the history, in its words.
    b.step("13-case-in-english", async {
        b.goto(&case_page).await?;
        b.click_and_load("a.lang-switch").await?;
        let lang = b
            .js("return document.documentElement.lang;", vec![])
            .await?;
        ensure!(lang == json!("en"), "the page is English: {lang}");
        let handling = b.text("#handling-title").await?;
        ensure!(
            handling == "Who handles your case, and what comes next",
            "{handling}"
        );
        let window = b.text("#review-window").await?;
        ensure!(window.contains("days left"), "{window}");
        Ok(())
    })
    .await;

    b.close().await;
}
