//! Showing without handing over (issue 32), in the browser: in the disclosure stage a party on
//! a phone and on a desktop sees the scene diagram and a survey record's pages as pictures that
//! name them, is told why there is no download, and the pictures are not the originals.

use crate::driver::{Browser, browser_available};
use crate::ensure;
use crate::helpers::spawn_app;
use crate::setup::{
    PARTY_A, PASSWORD, pdf, register_party, release, scene_diagram_png, staff, upload,
};

#[tokio::test]
async fn a_party_views_marked_pages_in_the_disclosure_stage() {
    if !browser_available("view-only") {
        return;
    }
    let app = spawn_app().await;
    let office = staff(&app, "wang.li").await;
    // A fatal case: its evidence is shown to the parties before the determination (Art. 63).
    let csrf = office.csrf_from("/staff/cases/new").await;
    let res = office
        .post_form(
            "/staff/cases",
            &[
                ("csrf_token", csrf.as_str()),
                ("case_number", "京公交认字[2026]第00777号"),
                ("occurred_at", "2026-11-20T08:30"),
                ("place", "朝阳路与建国路交叉口"),
                ("summary", "小型轿车与行人相撞，行人死亡。"),
                ("fatal", "on"),
            ],
        )
        .await;
    let case_id = crate::helpers::header(&res, "location")
        .trim_start_matches("/staff/cases/")
        .to_owned();
    let code = register_party(&office, &case_id).await;
    let diagram = upload(
        &office,
        &case_id,
        "scene_diagram",
        "现场图",
        "现场图.png",
        &scene_diagram_png(),
    )
    .await;
    release(&office, &case_id, &diagram).await;
    let survey = upload(
        &office,
        &case_id,
        "survey_record",
        "现场勘查笔录",
        "勘查笔录.pdf",
        &pdf("Survey record"),
    )
    .await;
    release(&office, &case_id, &survey).await;
    let page = format!("/staff/cases/{case_id}");
    let csrf = office.csrf_from(&page).await;
    let res = office
        .post_form(
            &format!("{page}/status"),
            &[
                ("csrf_token", csrf.as_str()),
                ("confirmed", "yes"),
                ("to", "disclosing"),
            ],
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);

    let b = Browser::open("view-only", &app.address).await.unwrap();
    let case_page = format!("/cases/{case_id}");
    b.step("01-activate", async {
        b.activate(PARTY_A, &code, PASSWORD).await
    })
    .await;
    b.step("02-diagram", async {
        b.goto(&format!("{case_page}/materials/{diagram}")).await?;
        let note = b.text("#view-only-note").await?;
        ensure!(note.contains("查看件"), "{note}");
        // The picture is drawn: the browser decoded a JPEG the server rendered.
        let shown: bool = b
            .client
            .execute(
                "const i = document.querySelector('#image-stage img'); return i.complete && i.naturalWidth > 0;",
                vec![],
            )
            .await?
            .as_bool()
            .unwrap_or(false);
        ensure!(shown, "the rendered diagram is shown");
        ensure!(
            b.client.find_all(fantoccini::Locator::Css("a[href$='/download']")).await?.is_empty(),
            "no download in the disclosure stage"
        );
        Ok(())
    })
    .await;
    b.step("03-survey-pages", async {
        b.goto(&format!("{case_page}/materials/{survey}")).await?;
        let alt = b
            .find("#pdf-pages img")
            .await?
            .attr("alt")
            .await?
            .unwrap_or_default();
        ensure!(alt == "第 1 页，共 1 页", "{alt}");
        b.client
            .execute(
                "document.querySelector('#pdf-pages img').scrollIntoView();",
                vec![],
            )
            .await?;
        Ok(())
    })
    .await;
}
