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
    // Deadlines read one way: the day, inclusive, the days left.
    assert!(
        page.contains("复核申请期限：截至 ") && page.contains("（含当日），还剩 3 天。"),
        "{page}"
    );
    // Plain words on a party's pages: no hash, signature format or manifest named.
    let viewer = party.get(&material).await.text().await.unwrap();
    for technical in ["SHA-256", "SHA256", "JWS", "jws", "manifest", "Ed25519"] {
        assert!(
            !page.contains(technical) && !viewer.contains(technical),
            "{technical} on a party's page"
        );
    }
    assert!(page.contains("带防篡改签章，可在核验页面检查"));
    // Activation says which code: the notice's 访问码 or the voucher's 查询码.
    let activate = app.get("/activate").await.text().await.unwrap();
    assert!(activate.contains("访问码") && activate.contains("查询码"));

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

#[tokio::test]
async fn signed_in_the_care_mode_is_kept_on_the_account_and_follows_the_person() {
    use crate::auth::{PASSWORD, activate, seed, sign_in};
    use evidence_portal::auth::identifier::Identifier;
    use evidence_portal::db::entities::account;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    const ID: &str = "110101199003070011";
    let app = spawn_app().await;
    let care_on_account = || async {
        account::Entity::find()
            .filter(account::Column::DisplayName.eq("张伟"))
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap()
            .care
    };
    let code = seed(&app, "party", Identifier::CitizenId(ID.into()), "张伟").await;

    // A choice made on this device before signing in carries over to the account: the page
    // does not change mode as the person signs in.
    let phone = app.with_client(client());
    phone.get("/care?to=on&next=%2F").await;
    activate(&phone, ID, &code, PASSWORD).await;
    assert!(care_on_account().await, "kept on the account at activation");
    let page = phone.get("/cases").await.text().await.unwrap();
    assert!(in_care_mode(&page), "{page}");

    // On another device with no choice of its own, signing in brings the account's mode, and
    // a cookie with it (so that every page there follows it, error pages too).
    let computer = app.with_client(client());
    let page = computer.get("/login").await.text().await.unwrap();
    assert!(!in_care_mode(&page));
    let res = sign_in(&computer, ID, PASSWORD).await;
    assert!(
        res.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("portal-care=on")),
        "{res:?}"
    );
    let page = computer.get("/cases").await.text().await.unwrap();
    assert!(in_care_mode(&page), "{page}");

    // Switched off while signed in: the account keeps it, and the phone's pages follow the
    // account although its cookie still says on.
    computer.get("/care?to=off&next=%2Fcases").await;
    assert!(!care_on_account().await, "switched off on the account");
    let page = phone.get("/cases").await.text().await.unwrap();
    assert!(
        !in_care_mode(&page) && page.contains(r#"href="/care?to=on&#38;next=%2Fcases""#),
        "the account decides, and the switch offers the other mode: {page}"
    );
    // Switched on again from the phone.
    phone.get("/care?to=on&next=%2Fcases").await;
    assert!(care_on_account().await);

    // An explicit standard choice made before signing in carries over as well.
    let kiosk = app.with_client(client());
    kiosk.get("/care?to=off&next=%2F").await;
    sign_in(&kiosk, ID, PASSWORD).await;
    assert!(!care_on_account().await, "the last choice wins");
}

#[tokio::test]
async fn a_warned_person_stays_signed_in_with_one_press() {
    use crate::auth::{PASSWORD, activate, seed};
    use evidence_portal::auth::identifier::Identifier;
    use evidence_portal::db::entities::session;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    const ID: &str = "110101199003070011";
    let app = spawn_app().await;
    let code = seed(&app, "party", Identifier::CitizenId(ID.into()), "张伟").await;
    activate(&app, ID, &code, PASSWORD).await;
    // Signed-in pages carry the warning (hidden until the script shows it) and its script.
    let page = app.get("/cases").await.text().await.unwrap();
    assert!(
        page.contains(r#"id="session-warning""#)
            && page.contains(r#"data-idle="1800""#)
            && page.contains("session.js")
            && page.contains("您的登录将在 2 分钟后过期"),
        "{page}"
    );
    let csrf = crate::helpers::csrf_in(&page);
    let idle_for = |minutes: i64| {
        let db = app.state.db.clone();
        async move {
            session::Entity::update_many()
                .col_expr(
                    session::Column::LastSeenAt,
                    Expr::value(time::OffsetDateTime::now_utc() - time::Duration::minutes(minutes)),
                )
                .filter(session::Column::RevokedAt.is_null())
                .exec(&db)
                .await
                .unwrap();
        }
    };
    let last_seen = || async {
        session::Entity::find()
            .filter(session::Column::RevokedAt.is_null())
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at
    };
    let extend = |token: Option<String>| {
        let mut req = app.client.post(format!("{}/session/extend", app.address));
        if let Some(t) = token {
            req = req.header("X-CSRF-Token", t);
        }
        req.send()
    };

    // 28 minutes unused: the warning is up; the press keeps the session.
    idle_for(28).await;
    assert_status(
        &extend(Some(csrf.clone())).await.unwrap(),
        StatusCode::NO_CONTENT,
    );
    let seen = last_seen().await;
    assert!(
        time::OffsetDateTime::now_utc() - seen < time::Duration::minutes(1),
        "the session's last use is now: {seen}"
    );
    assert_status(&app.get("/cases").await, StatusCode::OK);
    // Not without the form's token.
    assert_status(&extend(None).await.unwrap(), StatusCode::FORBIDDEN);
    // Too late: the session has ended; the press leads to the sign-in.
    idle_for(31).await;
    let res = extend(Some(csrf)).await.unwrap();
    assert_status(&res, StatusCode::SEE_OTHER);
    assert!(header(&res, "location").starts_with("/login"), "{res:?}");
}
