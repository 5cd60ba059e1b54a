//! The care mode (长辈版, issue 35): a switch in every page's header, remembered in a cookie,
//! that marks the page for large text and targets and simplifies the party's case page.

use reqwest::StatusCode;

use crate::helpers::{assert_status, client, header, spawn_app};

/// Whether the page's `<html>` carries the care class.
fn in_care_mode(page: &str) -> bool {
    page.contains(r#"<html lang="zh-CN" class="care">"#)
        || page.contains(r#"<html lang="en" class="care">"#)
}

#[tokio::test]
async fn the_switch_remembers_the_care_mode_and_goes_back_only_to_this_site() {
    let app = spawn_app().await;
    // Every page offers the switch, leading back to itself; the landing page offers it twice
    // (header and first screen) so that a first visit sees it.
    let page = app.get("/activate").await.text().await.unwrap();
    assert!(!in_care_mode(&page), "off by default");
    assert!(
        page.contains(r#"href="/care?to=on&#38;next=%2Factivate" class="care-switch" id="care-switch">长辈版</a>"#),
        "{page}"
    );
    let landing = app.get("/").await.text().await.unwrap();
    assert!(landing.contains(r#"id="care-landing""#), "{landing}");

    // On: a cookie for a year, not for scripts, back to the page.
    let res = app.get("/care?to=on&next=%2Factivate").await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_eq!(header(&res, "location"), "/activate");
    let cookie = header(&res, "set-cookie").to_owned();
    assert!(
        cookie.starts_with("portal-care=on")
            && cookie.contains("Max-Age=31536000")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/"),
        "{cookie}"
    );
    let page = app.get("/activate").await.text().await.unwrap();
    assert!(in_care_mode(&page), "{page}");
    assert!(
        page.contains(r#"href="/care?to=off&#38;next=%2Factivate" class="care-switch" id="care-switch">标准版</a>"#),
        "the switch now leads back to the standard page: {page}"
    );
    assert!(!page.contains(r#"id="care-landing""#));
    // Error pages are in care mode too.
    let page = app.get("/no/such/page").await.text().await.unwrap();
    assert!(in_care_mode(&page), "{page}");
    // In English as well.
    app.get("/language?to=en&next=%2F").await;
    let page = app.get("/login").await.text().await.unwrap();
    assert!(
        in_care_mode(&page) && page.contains(">Standard mode</a>"),
        "{page}"
    );

    // Off again.
    let res = app
        .get("/care?to=off&next=%2Flogin%3Fnext%3D%252Fcases")
        .await;
    assert_eq!(header(&res, "location"), "/login?next=%2Fcases");
    assert!(header(&res, "set-cookie").starts_with("portal-care=off"));
    let page = app.get("/login").await.text().await.unwrap();
    assert!(
        !in_care_mode(&page) && page.contains(">Care mode</a>"),
        "{page}"
    );

    // Only this site's pages to go back to.
    for next in [
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example%2F",
        "%2F%5Cevil.example",
        "javascript%3Aalert(1)",
        "",
    ] {
        let res = app.get(&format!("/care?to=on&next={next}")).await;
        assert_status(&res, StatusCode::SEE_OTHER);
        assert_eq!(header(&res, "location"), "/", "next={next}");
    }
    let res = app.get("/care?to=on").await;
    assert_eq!(header(&res, "location"), "/");
    // Only on or off.
    let res = app.get_json("/care?to=maybe").await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_care_mode");
    // Another browser is not affected.
    let other = app.with_client(client());
    let page = other.get("/activate").await.text().await.unwrap();
    assert!(!in_care_mode(&page));
}

#[tokio::test]
async fn in_care_mode_the_party_case_page_keeps_what_a_party_acts_on() {
    use crate::auth::{PASSWORD, activate};
    use crate::cases::{open_case, registered, set_status, staff_of};
    use crate::materials::{PDF, decide, upload};
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-735", false).await;
    let code = registered(&staff, &case_id, "甲", "110101199003070011", "张伟").await;
    let res = upload(&staff, &case_id, "survey_record", "勘查笔录", "s.pdf", PDF).await;
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decide(&staff, &case_id, &id, "release", &[]).await;
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    set_status(
        &staff,
        &case_id,
        &[
            ("to", "served"),
            ("service_kind", "determination"),
            ("served_on", &today.to_string()),
        ],
    )
    .await;
    let party = app.with_client(client());
    activate(&party, "110101199003070011", &code, PASSWORD).await;
    let case_page = format!("/cases/{case_id}");
    let material = format!("/cases/{case_id}/materials/{id}");

    // Standard: checkboxes to choose a bundle, sizes in the line, plain links.
    let page = party.get(&case_page).await.text().await.unwrap();
    assert!(!in_care_mode(&page));
    assert!(page.contains(r#"name="material""#), "{page}");
    assert!(page.contains(&format!(r#"<a href="{material}/download">下载</a>"#)));
    // The review deadline is a warning in words, not only in colour.
    assert!(
        page.contains(r#"<dd class="warn"><strong>注意："#),
        "{page}"
    );
    assert!(page.contains(r#"<p class="notice warn" id="review-window"><strong>注意：</strong>"#));

    // Care mode: the same page, simplified.
    party.get("/care?to=on&next=%2F").await;
    let page = party.get(&case_page).await.text().await.unwrap();
    assert!(in_care_mode(&page), "{page}");
    assert!(
        !page.contains(r#"name="material""#),
        "no selection checkboxes"
    );
    assert!(
        page.contains(&format!(r#"<a class="button" href="{material}">查看</a>"#))
            && page.contains(&format!(
                r#"<a class="button secondary" href="{material}/download">下载</a>"#
            )),
        "large view and download buttons: {page}"
    );
    // Sizes and times, the bundle's signature and the access history fold away.
    let details = page
        .split(r#"<details class="care-fold"><summary>详细信息</summary>"#)
        .nth(1);
    assert!(
        details.is_some_and(|d| d.split("</details>").next().unwrap().contains("上传")),
        "{page}"
    );
    assert!(page.contains("<summary>关于打包下载</summary>"));
    assert!(
        page.contains("带防篡改签章") && !page.contains("SHA256SUMS"),
        "plain words"
    );
    assert!(page.contains("<summary>查看谁查阅过本案材料</summary>"));
    // What a party acts on stays in view: the deadline, the next step, the whole bundle.
    assert!(page.contains(r#"id="review-window""#) && page.contains(r#"id="apply-review""#));
    assert!(page.contains(&format!(r#"href="/cases/{case_id}/bundle.zip""#)));
    assert!(page.contains(r#"id="timeline""#));
    // The material's page is in care mode as well.
    let viewer = party.get(&material).await.text().await.unwrap();
    assert!(in_care_mode(&viewer));
}
