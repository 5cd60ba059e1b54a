//! The second factor of staff and administrators (issue 22), through the running server: a
//! password alone opens nothing; an authenticator app is enrolled from the page's key; codes
//! are accepted once and wrong ones lock the account like wrong passwords; recovery codes work
//! once; the most sensitive acts ask again after five minutes; an administrator resets a staff
//! member's factor (the CLI an administrator's); `create-admin` may grant a grace.

use evidence_portal::db::entities::{notification, second_factor, session};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::auth::{PASSWORD, admin, events, location, password_only};
use crate::cases::{open_case, staff_of};
use crate::helpers::{TestApp, client, csrf_in, enrolled, spawn_app};

/// Posts a second-factor code from the challenge page (then to `/staff/cases`).
pub async fn post_code(who: &TestApp, code: &str) -> reqwest::Response {
    let page = who.get("/login/second-factor").await.text().await.unwrap();
    who.post_form(
        "/login/second-factor",
        &[
            ("csrf_token", &csrf_in(&page)),
            ("code", code),
            ("next", "/staff/cases"),
        ],
    )
    .await
}

/// A fresh browser of the staff member `login` with the password given, the second factor not.
async fn password_alone(app: &TestApp, login: &str) -> TestApp {
    let browser = app.with_client(client());
    let res = password_only(&browser, login, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    browser
}

/// An administrator `new.admin` created and activated as the admin pages do, the factor not yet
/// enrolled: their browser, and the answer to the activation.
pub async fn admin_without_factor(app: &TestApp) -> (TestApp, reqwest::Response) {
    let (_, code) = evidence_portal::accounts::create(
        &app.state.db,
        &app.state.key,
        &app.state.audit,
        evidence_portal::audit::Actor::SYSTEM,
        evidence_portal::accounts::NewAccount {
            role: evidence_portal::vocab::Role::Admin,
            identifier: evidence_portal::auth::identifier::Identifier::Username("new.admin".into()),
            display_name: "新管理员".into(),
            department_id: None,
        },
    )
    .await
    .unwrap();
    let browser = app.with_client(client());
    let csrf = browser.csrf_from("/activate").await;
    let res = browser
        .post_form(
            "/activate",
            &[
                ("csrf_token", &csrf),
                ("identifier", "new.admin"),
                ("code", &code.code),
                ("password", PASSWORD),
                ("password_repeat", PASSWORD),
            ],
        )
        .await;
    (browser, res)
}

#[tokio::test]
async fn a_password_alone_opens_nothing_until_an_app_is_enrolled() {
    let app = spawn_app().await;
    let (browser, res) = admin_without_factor(&app).await;
    assert_eq!(location(&res), "/admin");
    for page in ["/admin", "/staff/audit", "/account", "/inbox"] {
        let res = browser.get(page).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{page}");
        assert!(
            location(&res).starts_with("/login/second-factor?next="),
            "{page}: {}",
            location(&res)
        );
    }
    let res = browser.get_json("/api/whoami").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "second_factor_required");
    // No factor yet: the challenge sends them to enrol one; the enrolment page shows the QR code.
    assert_eq!(
        location(&browser.get("/login/second-factor").await),
        "/account/second-factor"
    );
    let page = browser
        .get("/account/second-factor")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"id="no-factor""#));
    let res = browser
        .post_form(
            "/account/second-factor/totp",
            &[("csrf_token", &csrf_in(&page))],
        )
        .await;
    let enrol = res.text().await.unwrap();
    assert!(enrol.contains("<svg") && enrol.contains(r#"id="totp-secret""#));
    // A wrong first code is refused, the same key shown again.
    let factor = enrol
        .split(r#"name="factor_id" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let res = browser
        .post_form(
            "/account/second-factor/totp/confirm",
            &[
                ("csrf_token", &csrf_in(&enrol)),
                ("factor_id", &factor),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.text().await.unwrap().contains(&factor),
        "the same key again"
    );
    crate::helpers::enrol_second_factor(&browser, "new.admin").await;
    assert_eq!(browser.get("/admin").await.status(), StatusCode::OK);
    let enrolled_events = events(&app, "second_factor.enrol").await;
    assert_eq!(
        enrolled_events
            .iter()
            .map(|e| e.outcome.as_str())
            .collect::<Vec<_>>(),
        ["denied", "allowed"]
    );
    // The secret is sealed, never stored in the clear.
    let row = second_factor::Entity::find()
        .filter(second_factor::Column::Confirmed.eq(true))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let secret = enrolled(&app.address, "new.admin").unwrap().secret;
    let stored = row.secret.unwrap();
    assert!(!stored.contains(&hex::encode(&secret)));
    assert!(
        !stored.contains(&evidence_portal::auth::second_factor::base32(&secret).replace(' ', ""))
    );
}

#[tokio::test]
async fn codes_are_accepted_once_and_wrong_ones_lock_the_account() {
    let app = spawn_app().await;
    let _staff = staff_of(&app, "110105", "wang.li").await;
    let laptop = password_alone(&app, "wang.li").await;
    assert_eq!(laptop.get("/staff").await.status(), StatusCode::SEE_OTHER);

    // The code the enrolment used is refused as used (or, a step later, as no longer current);
    // a wrong one as wrong.
    let enrolment = enrolled(&app.address, "wang.li").unwrap();
    let used = evidence_portal::auth::second_factor::code_at(
        &enrolment.secret,
        time::OffsetDateTime::from_unix_timestamp(enrolment.last_step * 30).unwrap(),
    )
    .unwrap();
    let res = post_code(&laptop, &used).await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "never accepted twice"
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains("已经使用过") || text.contains("不正确"),
        "{text}"
    );
    let res = post_code(&laptop, "000000").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let code = crate::helpers::next_second_factor_code(&app.address, "wang.li").unwrap();
    let res = post_code(&laptop, &code).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/staff/cases");
    assert_eq!(laptop.get("/staff/cases").await.status(), StatusCode::OK);
    let checks = events(&app, "auth.second_factor").await;
    assert!(
        checks
            .iter()
            .any(|e| e.outcome == "denied" && e.details.contains("wrong_second_factor"))
    );
    assert!(
        checks
            .iter()
            .any(|e| e.outcome == "allowed" && e.details.contains("totp"))
    );

    // Five wrong codes lock the account: the sixth is refused even if right.
    let phone = password_alone(&app, "wang.li").await;
    for _ in 0..5 {
        assert_eq!(
            post_code(&phone, "123456").await.status(),
            StatusCode::BAD_REQUEST
        );
    }
    let code = crate::helpers::next_second_factor_code(&app.address, "wang.li").unwrap();
    let res = post_code(&phone, &code).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("锁定"));
    assert_eq!(phone.get("/staff").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_recovery_code_replaces_the_app_once() {
    let app = spawn_app().await;
    let _staff = staff_of(&app, "110105", "wang.li").await;
    let recovery = enrolled(&app.address, "wang.li").unwrap().recovery;
    assert_eq!(recovery.len(), 10);
    let browser = password_alone(&app, "wang.li").await;
    let res = post_code(&browser, &recovery[3].to_lowercase()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "lower case and all");
    assert_eq!(browser.get("/staff/cases").await.status(), StatusCode::OK);
    let again = password_alone(&app, "wang.li").await;
    let res = post_code(&again, &recovery[3]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "used once");
    let checks = events(&app, "auth.second_factor").await;
    assert!(
        checks
            .iter()
            .any(|e| e.details.contains("\"recovery_codes_left\":9"))
    );
}

/// Makes every session look as if it passed its second factor ten minutes ago.
pub async fn age_second_factor(app: &TestApp) {
    session::Entity::update_many()
        .col_expr(
            session::Column::SecondFactorAt,
            sea_orm::sea_query::Expr::value(Some(
                time::OffsetDateTime::now_utc() - time::Duration::minutes(10),
            )),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_most_sensitive_acts_ask_again_after_five_minutes() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-二次-1", false).await;
    age_second_factor(&app).await;
    // Ordinary work goes on.
    assert_eq!(
        staff.get(&format!("/staff/cases/{case_id}")).await.status(),
        StatusCode::OK
    );
    // Bulk release and the audit export ask again.
    let csrf = staff.csrf_from(&format!("/staff/cases/{case_id}")).await;
    let res = staff
        .post_form(
            &format!("/staff/cases/{case_id}/release"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&res),
        format!("/login/second-factor?next=%2Fstaff%2Fcases%2F{case_id}%23materials")
    );
    let res = staff.get("/staff/audit.csv").await;
    assert!(location(&res).starts_with("/login/second-factor?next=%2Fstaff%2Faudit.csv"));
    let code = crate::helpers::next_second_factor_code(&app.address, "wang.li").unwrap();
    let page = staff
        .get("/login/second-factor")
        .await
        .text()
        .await
        .unwrap();
    let res = staff
        .post_form(
            "/login/second-factor",
            &[
                ("csrf_token", &csrf_in(&page)),
                ("code", &code),
                ("next", "/staff/audit.csv"),
            ],
        )
        .await;
    assert_eq!(location(&res), "/staff/audit.csv");
    let res = staff.get("/staff/audit.csv").await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_administrator_resets_a_staff_members_second_factor_and_the_cli_an_administrators() {
    let app = spawn_app().await;
    let admin = admin(&app).await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let staff_id = evidence_portal::db::entities::account::Entity::find()
        .filter(evidence_portal::db::entities::account::Column::LoginMasked.eq("wang.li"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    let csrf = admin.csrf_from("/admin").await;
    let path = format!("/admin/accounts/{staff_id}/reset-second-factor");
    let res = admin
        .post_form(&path, &[("csrf_token", &csrf), ("reason", "手机丢失")])
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "not confirmed");
    let res = admin
        .post_form(
            &path,
            &[
                ("csrf_token", &csrf),
                ("reason", "手机丢失"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // Their sessions ended; at the next sign-in they enrol anew; they were told.
    assert!(location(&staff.get("/staff").await).starts_with("/login"));
    let again = password_alone(&app, "wang.li").await;
    assert_eq!(
        location(&again.get("/login/second-factor").await),
        "/account/second-factor"
    );
    let reset = events(&app, "second_factor.reset").await;
    assert_eq!(reset.len(), 1);
    assert!(reset[0].details.contains("手机丢失"));
    let told = notification::Entity::find()
        .filter(notification::Column::Event.eq("second_factor.reset"))
        .filter(notification::Column::AccountId.eq(staff_id))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(told, 1);

    // The CLI resets the administrator's own.
    let out = crate::cli::run(
        &[
            "account",
            "reset-second-factor",
            "--username",
            "root.admin",
            "--reason",
            "手机丢失",
        ],
        &app.env,
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::stderr(&out));
    assert!(crate::cli::stdout(&out).contains("removed 1 second factor"));
    assert!(location(&admin.get("/admin").await).starts_with("/login"));
}

#[tokio::test]
async fn create_admin_may_grant_a_grace_before_the_second_factor() {
    let app = spawn_app().await;
    let out = crate::cli::run(
        &[
            "create-admin",
            "--username",
            "first.admin",
            "--name",
            "首任管理员",
            // The most there is: the CLI runs on the real clock, the instance (in the CI's night
            // leg) on a faked one hours ahead.
            "--second-factor-grace-hours",
            "72",
        ],
        &app.env,
        "Quartz-河边-Falcon-42\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::stderr(&out));
    let browser = app.with_client(client());
    let res = password_only(&browser, "first.admin", "Quartz-河边-Falcon-42").await;
    assert_eq!(location(&res), "/admin");
    assert_eq!(
        browser.get("/admin").await.status(),
        StatusCode::OK,
        "in grace"
    );
    let out = crate::cli::run(
        &[
            "create-admin",
            "--username",
            "second.admin",
            "--name",
            "X",
            "--second-factor-grace-hours",
            "100",
        ],
        &app.env,
        "Quartz-河边-Falcon-42\n",
    );
    assert_eq!(out.status.code(), Some(1), "at most 72 hours");
}

async fn post_json(who: &TestApp, path: &str, body: &str) -> reqwest::Response {
    let csrf = who.csrf_from("/account/second-factor").await;
    who.client
        .post(format!("{}{path}", who.address))
        .header("X-CSRF-Token", csrf)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn passkeys_need_a_domain_and_refuse_what_is_not_an_answer() {
    // Reached by an IP address: no passkeys, said so.
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let res = post_json(&staff, "/account/second-factor/passkey/begin", "{}").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "passkeys_unavailable");

    // Reached as localhost: the options name it; garbage and stray answers are refused.
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert("PORTAL_PUBLIC_URL".into(), "http://localhost:8080/".into());
    })
    .await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let res = post_json(&staff, "/account/second-factor/passkey/begin", "{}").await;
    assert_eq!(res.status(), StatusCode::OK);
    let options: serde_json::Value = res.json().await.unwrap();
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    for garbage in ["", "{", "[]", r#"{"credential": 1}"#, &"x".repeat(10_000)] {
        let res = post_json(&staff, "/account/second-factor/passkey/finish", garbage).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{garbage:.20}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_passkey_answer");
    }
    // No passkey registered: nothing to sign in with.
    let res = post_json(&staff, "/login/second-factor/passkey/begin", "{}").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_passkey");
    // None of the refused answers left a passkey behind.
    assert_eq!(
        second_factor::Entity::find()
            .filter(second_factor::Column::Kind.eq("passkey"))
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
}
