//! A staff member's journey: a new case, a party, three files uploaded with progress, two
//! released and one withheld, the determination served.

use std::collections::HashMap;

use evidence_portal::db::entities::{case, material};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::driver::{Browser, browser_available};
use crate::ensure;
use crate::helpers::{TestApp, spawn_app};
use crate::setup::{PARTY_A, PASSWORD, mp4, pdf, scene_diagram_png, staff, today};

const CASE_NUMBER: &str = "京公交认字[2026]第00555号";

async fn materials(app: &TestApp, case_id: &str) -> HashMap<String, material::Model> {
    let id: uuid::Uuid = case_id.parse().unwrap();
    material::Entity::find()
        .filter(material::Column::CaseId.eq(id))
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.title.clone(), m))
        .collect()
}

#[tokio::test]
async fn staff_open_a_case_upload_with_progress_decide_and_record_service() {
    if !browser_available("staff") {
        return;
    }
    let app = spawn_app().await;
    staff(&app, "wang.li").await;
    let files = tempfile::tempdir().unwrap();
    let diagram_path = files.path().join("现场图.png");
    let survey_path = files.path().join("勘查笔录.pdf");
    let video_path = files.path().join("行车记录仪.mp4");
    std::fs::write(&diagram_path, scene_diagram_png()).unwrap();
    std::fs::write(&survey_path, pdf("Survey record")).unwrap();
    std::fs::write(&video_path, mp4(6)).unwrap();

    let b = Browser::open("staff", &app.address).await.unwrap();

    b.step("01-sign-in", async {
        b.sign_in("wang.li", PASSWORD, "/staff").await
    })
    .await;

    let case_id = b
        .step("02-new-case", async {
            b.click(r#"a[href="/staff/cases/new"]"#).await?;
            b.wait_for_path("/staff/cases/new").await?;
            b.fill("#case_number", CASE_NUMBER).await?;
            // Typing into a datetime-local field depends on the locale's field order; set it.
            b.js(
                "document.getElementById('occurred_at').value = arguments[0];",
                vec![json!("2026-11-20T08:30")],
            )
            .await?;
            b.fill("#place", "朝阳路与建国路交叉口").await?;
            b.fill("#summary", "小型轿车与电动自行车相撞。").await?;
            b.click(r#"input[name="fatal"]"#).await?;
            b.click(r#"form[action="/staff/cases"] button[type="submit"]"#)
                .await?;
            b.find("#case-status").await?;
            let path = b.path().await?;
            let id = path
                .strip_prefix("/staff/cases/")
                .filter(|id| id.parse::<uuid::Uuid>().is_ok())
                .ok_or(format!("on the new case's page, not {path}"))?;
            Ok(id.to_owned())
        })
        .await;
    let case_page = format!("/staff/cases/{case_id}");

    b.step("03-register-party", async {
        b.fill("#p-label", "甲").await?;
        b.fill("#p-name", "张伟").await?;
        b.fill("#p-id", PARTY_A).await?;
        b.click(r#"form[action$="/parties#parties"] button[type="submit"]"#)
            .await?;
        let code = b.text("#access-code").await?;
        ensure!(code.len() >= 10, "an access code on the notice: {code}");
        let flash = b.text(r#".flash[role="status"]"#).await?;
        ensure!(flash.starts_with("已登记当事人甲。"), "registered: {flash}");
        Ok(())
    })
    .await;

    // A reload of the printed notice neither registers the party again nor shows the code again;
    // it says how to get a new one.
    b.step("03b-notice-reloaded", async {
        b.reload().await?;
        let shown = b
            .js(
                "return document.querySelectorAll('#access-code, .flash').length;",
                vec![],
            )
            .await?;
        ensure!(shown == json!(0), "neither the code nor the message again");
        let page = b.text("main").await?;
        ensure!(
            page.contains("访问码只在告知书第一次打开时显示"),
            "how to get a new code: {page}"
        );
        Ok(())
    })
    .await;
    let parties = evidence_portal::cases::parties(&app.state.db, case_id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        parties.len(),
        1,
        "one party, however often the notice loads"
    );

    b.step("04-upload-choose-files", async {
        b.goto(&format!("{case_page}/upload")).await?;
        let paths = [&diagram_path, &survey_path, &video_path]
            .map(|p| p.display().to_string())
            .join("\n");
        b.find("#upload-picker").await?.send_keys(&paths).await?;
        b.wait_js(
            "three rows",
            "return document.querySelectorAll('#upload-list li').length === 3;",
            vec![],
        )
        .await?;
        for (row, kind, title) in [
            (1, "scene_diagram", "现场图"),
            (2, "survey_record", "现场勘查笔录"),
            (3, "video", "行车记录仪视频"),
        ] {
            b.find(&format!("#f{row}-kind"))
                .await?
                .select_by_value(kind)
                .await?;
            b.fill(&format!("#f{row}-title"), title).await?;
        }
        ensure!(
            b.find("#upload-start").await?.is_enabled().await?,
            "the start button is enabled"
        );
        Ok(())
    })
    .await;

    b.step("05-uploading", async {
        // A slow office line, so that the video's bar is seen part-way.
        b.throttle_upload(Some(3 * 1024 * 1024)).await?;
        b.click("#upload-start").await?;
        b.wait_js(
            "a progress bar part-way",
            "return [...document.querySelectorAll('#upload-list progress')]
                 .some(p => p.value > 0 && p.value < p.max);",
            vec![],
        )
        .await
    })
    .await;

    b.step("06-uploaded", async {
        b.wait_js(
            "all three uploads to finish",
            "return !document.getElementById('upload-done').hidden;",
            vec![],
        )
        .await?;
        b.throttle_upload(None).await?;
        let rows = b
            .js(
                "return [...document.querySelectorAll('#upload-list li')].map(li => [
                     li.classList.contains('done'),
                     li.querySelector('progress').value === li.querySelector('progress').max,
                     li.querySelector('.status').textContent]);",
                vec![],
            )
            .await?;
        for row in rows.as_array().ok_or("rows")? {
            ensure!(
                row[0] == json!(true) && row[1] == json!(true),
                "every upload done with a full bar: {rows}"
            );
        }
        let summary = b.text("#upload-summary").await?;
        ensure!(
            summary == "3 个文件：3 个成功，0 个失败",
            "the batch summed up: {summary}"
        );
        Ok(())
    })
    .await;

    b.step("06b-a-failed-upload", async {
        // A file the portal does not take: its row turns red with the reason, and it can go.
        let note = files.path().join("备注.txt");
        std::fs::write(&note, "not evidence").map_err(|e| e.to_string())?;
        b.goto(&format!("{case_page}/upload")).await?;
        let accept = b.find("#upload-picker").await?.attr("accept").await?;
        ensure!(
            accept
                .as_deref()
                .is_some_and(|a| a.contains("application/pdf")),
            "the picker filters by type: {accept:?}"
        );
        b.find("#upload-picker")
            .await?
            .send_keys(&note.display().to_string())
            .await?;
        b.click("#upload-start").await?;
        b.wait_js(
            "the summary",
            "return !document.getElementById('upload-summary').hidden;",
            vec![],
        )
        .await?;
        let summary = b.text("#upload-summary").await?;
        ensure!(
            summary == "1 个文件：0 个成功，1 个失败",
            "the failure counted: {summary}"
        );
        let status = b.text("#upload-list li.failed .status").await?;
        ensure!(status.starts_with("失败："), "the reason shown: {status}");
        b.click("#upload-list li.failed .remove").await?;
        b.wait_js(
            "the row gone",
            "return document.querySelectorAll('#upload-list li').length === 0;",
            vec![],
        )
        .await
    })
    .await;

    let uploaded = materials(&app, &case_id).await;
    b.step("07-release-and-withhold", async {
        ensure!(
            uploaded.len() == 3,
            "three materials stored: {:?}",
            uploaded.keys()
        );
        let video = &uploaded["行车记录仪视频"];
        ensure!(
            video.content_type == "video/mp4" && video.size == mp4(6).len() as i64,
            "the video stored whole: {} {}",
            video.content_type,
            video.size
        );
        b.goto(&case_page).await?;
        let id = uploaded["现场图"].id;
        b.click_and_load(&format!(
            r#"form[action="{case_page}/materials/{id}/release"] button[type="submit"]"#
        ))
        .await?;
        let flash = b.text(r#".flash[role="status"]"#).await?;
        ensure!(flash.starts_with("已公开：现场图。"), "released: {flash}");
        let at = b.js("return location.hash;", vec![]).await?;
        ensure!(at == json!("#materials"), "back at the materials: {at}");
        // Several at once: the ticked drafts (here one) released by one button.
        let id = uploaded["现场勘查笔录"].id;
        b.click(&format!(r#"input[name="material"][value="{id}"]"#))
            .await?;
        b.click_and_load(r#"#bulk-release button[type="submit"]"#)
            .await?;
        let flash = b.text(r#".flash[role="status"]"#).await?;
        ensure!(flash.starts_with("已公开 1 份材料。"), "released: {flash}");
        let id = video.id;
        let withhold = format!(r#"form[action="{case_page}/materials/{id}/withhold"]"#);
        b.js(
            "document.querySelector(arguments[0]).closest('details').open = true;",
            vec![json!(withhold)],
        )
        .await?;
        b.find(&format!("#g-{id}"))
            .await?
            .select_by_value("personal_privacy")
            .await?;
        b.fill(&format!("#n-{id}"), "视频中可见无关人员面部")
            .await?;
        b.click_and_load(&format!(r#"{withhold} button[type="submit"]"#))
            .await
    })
    .await;
    let decided = materials(&app, &case_id).await;
    let states: Vec<(&str, &str, Option<&str>)> = ["现场图", "现场勘查笔录", "行车记录仪视频"]
        .into_iter()
        .map(|t| {
            (
                t,
                decided[t].state.as_str(),
                decided[t].withhold_ground.map(|g| g.as_str()),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("现场图", "released", None),
            ("现场勘查笔录", "released", None),
            ("行车记录仪视频", "withheld", Some("personal_privacy")),
        ]
    );

    // A milestone for the parties, typed into the timeline form; it lands back at the timeline.
    b.step("07b-record-milestone", async {
        b.find("#ms-stage")
            .await?
            .select_by_value("detention")
            .await?;
        b.fill("#ms-note", "肇事车辆已依法扣留，待检验后返还")
            .await?;
        b.fill("#ms-internal", "停车场B区12号").await?;
        b.click_and_load(r#"form[action$="/milestones"] button[type="submit"]"#)
            .await?;
        let flash = b.text(r#".flash[role="status"]"#).await?;
        ensure!(
            flash.starts_with("已记录办理进度：扣留扣押"),
            "said: {flash}"
        );
        let timeline = b.text("#timeline .timeline").await?;
        ensure!(
            timeline.contains("扣留扣押") && timeline.contains("肇事车辆已依法扣留"),
            "on the timeline: {timeline}"
        );
        ensure!(
            timeline.contains("案件受理"),
            "with the portal's own entry: {timeline}"
        );
        // Back to the top of the case page, where service is recorded.
        b.goto(&format!("/staff/cases/{case_id}")).await
    })
    .await;

    b.step("08-record-service", async {
        b.find("#service_kind")
            .await?
            .select_by_value("determination")
            .await?;
        let date = b.find("#served_on").await?.prop("value").await?;
        ensure!(
            date.as_deref() == Some(today().as_str()),
            "service date defaults to today: {date:?}"
        );
        b.click_and_load(r#"form:has(input[name="to"][value="served"]) button[type="submit"]"#)
            .await
    })
    .await;
    // Irreversible: the officer is told what it starts (the review window, downloads) first.
    b.step("09-confirm-service", async {
        let consequence = b.text("#consequence").await?;
        ensure!(
            consequence.contains("复核申请期") && consequence.contains(&today()),
            "the consequence in plain words: {consequence}"
        );
        b.click_and_load(r#"form.confirm-actions button[type="submit"]"#)
            .await?;
        let flash = b.text(r#".flash[role="status"]"#).await?;
        ensure!(flash.starts_with("已记录送达"), "confirmed: {flash}");
        Ok(())
    })
    .await;
    let row = case::Entity::find_by_id(case_id.parse::<uuid::Uuid>().unwrap())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status.as_str(), "served");
    assert_eq!(row.service_kind.map(|k| k.as_str()), Some("determination"));
    assert_eq!(row.served_on.map(|d| d.to_string()), Some(today()));

    b.step("10-case-list-sorted", async {
        b.goto("/staff/cases").await?;
        b.click_and_load(r#"thead a[href*="sort=number"]"#).await?;
        let sorted = b.text(r#"th[aria-sort="ascending"]"#).await?;
        ensure!(
            sorted == "事故编号",
            "sorted by the accident number: {sorted}"
        );
        b.find(&format!(r#"a[href="{case_page}"]"#)).await?;
        Ok(())
    })
    .await;

    b.close().await;
}
