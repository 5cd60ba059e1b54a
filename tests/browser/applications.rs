//! Applications made online, in the browser: a party applies for review on a phone and follows
//! it to its conclusion on the timeline; an insurer applies on the public form, is approved by
//! the brigade for the scene diagram, collects the printed voucher, and downloads exactly that.

use fantoccini::wd::{PrintConfiguration, PrintSize};

use crate::driver::{Browser, browser_available};
use crate::ensure;
use crate::helpers::{TestApp, csrf_in, spawn_app};
use crate::setup::{PARTY_A, PASSWORD, ServedCase, pdf, release, served_case, today, upload};

const PHONE: (u32, u32) = (360, 740);
const INSURER_MOBILE: &str = "13700001111";

/// Staff record a step on the case's (only) review application over HTTP, as its form does.
async fn review_step(
    office: &TestApp,
    case_id: &str,
    step: &str,
    fields: &[(&str, &str)],
    file: Option<Vec<u8>>,
) {
    let page = office
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let marker = "/reviews/";
    let at = page.find(marker).expect("the review panel offers a step") + marker.len();
    let application = page[at..].split('/').next().unwrap().to_owned();
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text((*k).to_owned(), (*v).to_owned());
    }
    if let Some(bytes) = file {
        form = form.part(
            "conclusion",
            reqwest::multipart::Part::bytes(bytes).file_name("复核结论.pdf"),
        );
    }
    let res = office
        .client
        .post(format!(
            "{}/staff/cases/{case_id}/reviews/{application}/{step}?csrf_token={}",
            office.address,
            csrf_in(&page)
        ))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER, "{step}");
}

/// How many A4 sheets the current page prints on.
async fn printed_sheets(b: &Browser) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let print = PrintConfiguration::builder()
        .size(PrintSize::A4)
        .build()
        .map_err(|e| format!("{e:?}"))?;
    let sheet = b.client.print(print).await?;
    ensure!(sheet.starts_with(b"%PDF"), "printing gives a PDF");
    Ok(sheet
        .windows(11)
        .enumerate()
        .filter(|(i, w)| *w == b"/Type /Page" && sheet.get(i + 11) != Some(&b's'))
        .count())
}

#[tokio::test]
async fn a_party_applies_for_review_on_a_phone_and_follows_it_to_its_conclusion() {
    if !browser_available("review") {
        return;
    }
    let app = spawn_app().await;
    let ServedCase {
        office,
        case_id,
        code,
        diagram,
    } = served_case(&app, "京公交认字[2026]第00901号").await;
    let b = Browser::open("review", &app.address).await.unwrap();
    let case_page = format!("/cases/{case_id}");

    b.step("01-activate", async {
        b.activate(PARTY_A, &code, PASSWORD).await
    })
    .await;

    b.step("02-case-on-a-phone", async {
        b.set_viewport(PHONE).await?;
        b.goto(&case_page).await?;
        b.click_and_load("#apply-review").await?;
        b.wait_for_path(&format!("{case_page}/review")).await
    })
    .await;

    let receipt = b
        .step("03-file-on-a-phone", async {
            b.set_viewport(PHONE).await?;
            b.fill(
                "#grounds",
                "认定事实不清：现场图未标明对方车辆的制动痕迹，责任划分不当。",
            )
            .await?;
            b.click(&format!(r#"input[name="contested"][value="{diagram}"]"#))
                .await?;
            // No file chosen: the browser still sends the attachment as an empty part, which
            // is no attachment (issue 31), not a refusal.
            b.click_and_load(r#"form[enctype="multipart/form-data"] button[type="submit"]"#)
                .await?;
            b.wait_for_path(&format!("{case_page}/review")).await?;
            let flash = b.text(".flash").await?;
            ensure!(flash.contains("复核申请已提交"), "told: {flash}");
            let receipt = b.text("#receipt-no").await?;
            ensure!(receipt.starts_with("FH"), "a receipt number: {receipt}");
            let sheet = b.text("#review-application").await?;
            ensure!(
                sheet.contains("现场图") && !sheet.contains("行车记录仪截图"),
                "the application lists the contested diagram and no attachment: {sheet}"
            );
            ensure!(
                sheet.contains("申请人（签名）") && sheet.contains("致："),
                "addressed and signed on paper: {sheet}"
            );
            let sheets = printed_sheets(&b).await?;
            ensure!(
                sheets == 1,
                "the application prints on one A4 sheet, not {sheets}"
            );
            Ok(receipt)
        })
        .await;

    b.step("03b-staff-case", async {
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.sign_in("wang.li", PASSWORD, "/staff").await?;
        let queue = b.text("#applications").await?;
        ensure!(queue.contains(&receipt), "the queue lists it: {queue}");
        b.click_and_load("#applications a").await?;
        let panel = b.text("#review-applications").await?;
        ensure!(
            panel.contains("制动痕迹"),
            "the grounds are on the case page: {panel}"
        );
        Ok(())
    })
    .await;
    b.step("03c-staff-forwards", async {
        b.fill(r#"input[name="authority"]"#, "北京市公安局公安交通管理局")
            .await?;
        b.click_and_load(r#"form[action*="/forward?"] button[type="submit"]"#)
            .await?;
        let flash = b.text(".flash").await?;
        ensure!(flash.contains(&receipt), "told: {flash}");
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.sign_in(PARTY_A, PASSWORD, "/cases").await
    })
    .await;
    let on = today();
    review_step(&office, &case_id, "accept", &[("on", &on)], None).await;
    review_step(
        &office,
        &case_id,
        "conclude",
        &[("on", &on)],
        Some(pdf("Review conclusion")),
    )
    .await;
    let conclusion_id = {
        use evidence_portal::db::entities::material;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        material::Entity::find()
            .filter(material::Column::Kind.eq("review_conclusion"))
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap()
            .id
            .to_string()
    };
    release(&office, &case_id, &conclusion_id).await;

    b.step("04-followed-to-the-conclusion", async {
        b.set_viewport(PHONE).await?;
        b.goto(&case_page).await?;
        let timeline = b.text("#timeline").await?;
        for step in [
            "申请复核",
            "复核申请已转交北京市公安局公安交通管理局",
            "复核机关已受理",
            "复核结论",
        ] {
            ensure!(
                timeline.contains(step),
                "the timeline shows {step}: {timeline}"
            );
        }
        let state = b.text("#review-application-state").await?;
        ensure!(state.contains("已作出复核结论"), "{state}");
        b.find(&format!("#material-{conclusion_id}")).await?;
        b.goto("/inbox").await?;
        let inbox = b.text("main").await?;
        ensure!(
            inbox.contains(&receipt) && inbox.contains("复核已作出结论"),
            "the inbox tells each step: {inbox}"
        );
        Ok(())
    })
    .await;

    b.close().await;
}

#[tokio::test]
async fn an_insurer_applies_is_approved_for_the_scene_diagram_and_downloads_exactly_that() {
    if !browser_available("insurer") {
        return;
    }
    let app = spawn_app().await;
    let ServedCase {
        office,
        case_id,
        code: _,
        diagram,
    } = served_case(&app, "京公交认字[2026]第00902号").await;
    let survey = upload(
        &office,
        &case_id,
        "survey_record",
        "现场勘查笔录",
        "勘查笔录.pdf",
        &pdf("Survey"),
    )
    .await;
    release(&office, &case_id, &survey).await;
    let proof = std::env::temp_dir().join(format!("查询授权书-{case_id}.pdf"));
    std::fs::write(&proof, pdf("Letter of authorisation")).unwrap();
    let b = Browser::open("insurer", &app.address).await.unwrap();
    let case_page = format!("/cases/{case_id}");

    let status = b
        .step("01-apply", async {
            b.goto("/").await?;
            b.click_and_load("#apply-link").await?;
            b.wait_for_path("/apply").await?;
            b.fill("#case_number", "京公交认字[2026]第00902号").await?;
            b.fill("#applicant_name", "李明").await?;
            b.fill("#organisation", "中国人民财产保险").await?;
            b.fill("#credit_code", "91110000710931141J").await?;
            b.fill("#plate", "京A12345").await?;
            b.fill("#policy_no", "PDAA202611000001").await?;
            b.fill("#mobile", INSURER_MOBILE).await?;
            b.find("#proof")
                .await?
                .send_keys(&proof.display().to_string())
                .await?;
            b.click_and_load(r#"form[action^="/apply"] button[type="submit"]"#)
                .await?;
            let filed = b.text("#apply-filed").await?;
            ensure!(filed.contains("申请已提交"), "{filed}");
            let state = b.text("#apply-state").await?;
            ensure!(state == "待审核", "{state}");
            Ok(b.client.current_url().await?.to_string())
        })
        .await;

    b.step("01b-find-it-again", async {
        // The tab closed, the link lost: the landing page leads back to it in this browser.
        b.goto("/").await?;
        b.click_and_load("#apply-mine-link").await?;
        b.click_and_load(".mine-link").await?;
        let state = b.text("#apply-state").await?;
        ensure!(state == "待审核", "back on the status page: {state}");
        b.find("#status-link").await?;
        Ok(())
    })
    .await;

    b.step("02-staff-approve", async {
        b.sign_in("wang.li", PASSWORD, "/staff").await?;
        let queue = b.text("#applications").await?;
        ensure!(queue.contains("查询申请"), "the queue lists it: {queue}");
        b.goto("/staff/applications").await?;
        b.click_and_load("#ledger tbody a").await?;
        // The officer decides with the proof in front of them, not behind a download.
        b.find("#proof iframe.pdf-frame").await?;
        b.click(r#"input[name="kind"][value="scene_diagram"]"#)
            .await?;
        b.click(r#"input[name="mode"][value="download"]"#).await?;
        b.click_and_load(r#"form[action$="/approve"] button[type="submit"]"#)
            .await?;
        let scope = b.text("#access-scope").await?;
        ensure!(
            scope.contains("现场图") && !scope.contains("勘查笔录"),
            "{scope}"
        );
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await
    })
    .await;

    let code = b
        .step("03-voucher", async {
            b.client.goto(&status).await?;
            b.click_and_load("#get-voucher").await?;
            let code = b.text("#access-code").await?;
            // A reload shows the same code (the voucher is a page, not a post that issues anew).
            b.client.refresh().await?;
            let again = b.text("#access-code").await?;
            ensure!(again == code, "a reload issued {again} instead of {code}");
            let sheets = printed_sheets(&b).await?;
            ensure!(
                sheets == 1,
                "the voucher prints on one A4 sheet, not {sheets}"
            );
            Ok(code)
        })
        .await;

    b.step("04-activate-and-case", async {
        b.activate(INSURER_MOBILE, &code, PASSWORD).await?;
        b.click_and_load(&format!(r#"a[href="{case_page}"]"#))
            .await?;
        let scope = b.text("#grant-scope").await?;
        ensure!(scope.contains("现场图"), "{scope}");
        b.find(&format!("#material-{diagram}")).await?;
        let page = b.text("main").await?;
        ensure!(
            !page.contains("现场勘查笔录"),
            "the survey record was not granted"
        );
        Ok(())
    })
    .await;

    b.step("05-bundle", async {
        let before = b.downloaded()?;
        b.click(&format!(r#"a[href="{case_page}/bundle.zip"]"#))
            .await?;
        let zip_path = b.wait_for_download("zip", &before).await?;
        let entries = Browser::unzip(&zip_path)?;
        let manifest: serde_json::Value =
            serde_json::from_slice(entries.get("manifest.json").ok_or("a manifest")?)?;
        let files = manifest["files"].as_array().ok_or("files")?;
        ensure!(
            files.len() == 1 && files[0]["kind"] == "scene_diagram",
            "{manifest}"
        );
        ensure!(
            manifest["scope"]["kinds"] == serde_json::json!(["scene_diagram"]),
            "{manifest}"
        );
        Ok(())
    })
    .await;

    b.close().await;
    let _ = std::fs::remove_file(&proof);
}
