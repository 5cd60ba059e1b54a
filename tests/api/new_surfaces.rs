//! The outside review of the newest surfaces (issue 30), through the running server, each a
//! regression test that failed before its fix: a voucher opens only what its own application
//! granted (a shared mobile number no longer hands over another applicant's account); wrong
//! second-factor codes are counted apart from the password; IPv6 clients are counted per /64;
//! creating and re-enabling accounts and the applications export ask for a fresh second factor;
//! a pending enrolment belongs to the session that began it.

use evidence_portal::db::entities::{access_application, account, notification, second_factor};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::applications::{applies, applies_again, approve};
use crate::auth::{PASSWORD, admin, events, location, password_only};
use crate::cases::{served_case, set_status, staff_of};
use crate::helpers::{TestApp, client, csrf_in, spawn_app, spawn_app_with};

const SHARED_MOBILE: &str = "13900002222";

fn until() -> String {
    (time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        + time::Duration::days(30))
    .to_string()
}

/// Collects the voucher of the application at `status_path` in a fresh browser: the page.
async fn voucher_page(app: &TestApp, status_path: &str) -> String {
    let public = app.with_client(client());
    let res = public
        .get(&crate::applications::voucher_path(status_path))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// A served case of a second brigade (110106), its staff member signed in.
async fn second_brigade_case(app: &TestApp, number: &str) -> (TestApp, String) {
    let staff = staff_of(app, "110106", "zhao.min").await;
    let case_id = crate::cases::open_case(&staff, number, true).await;
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        .to_string();
    set_status(
        &staff,
        &case_id,
        &[
            ("to", "served"),
            ("service_kind", "determination"),
            ("served_on", &today),
        ],
    )
    .await;
    (staff, case_id)
}

#[tokio::test]
async fn a_voucher_opens_only_what_its_own_application_granted() {
    let app = spawn_app().await;
    let (staff1, _party, case1) = served_case(&app, "2026-共号-1").await;
    let (staff2, case2) = second_brigade_case(&app, "2026-共号-2").await;

    // The victim applies to brigade 1 with their number; approved, voucher not yet collected.
    let victim_status = applies(&app, "insurer", SHARED_MOBILE, "110105", "2026-共号-1").await;
    let res = approve(
        &staff1,
        &victim_status,
        &["scene_diagram"],
        "view",
        &until(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // The attacker applies to brigade 2 giving the same number; brigade 2's officer is warned.
    let attacker_status = applies(&app, "insurer", SHARED_MOBILE, "110106", "2026-共号-2").await;
    let attacker_id = attacker_status
        .trim_start_matches("/apply/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let decision = staff2
        .get(&format!("/staff/applications/{attacker_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(decision.contains(r#"id="shared-number""#), "{decision}");
    let res = approve(
        &staff2,
        &attacker_status,
        &["scene_diagram"],
        "view",
        &until(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // The attacker's voucher issues no code for the number's account, and says why.
    let page = voucher_page(&app, &attacker_status).await;
    assert!(
        crate::cases::code_on(&page).is_none(),
        "no code for an account this application did not make"
    );
    assert!(page.contains(r#"id="voucher-claim""#), "{page}");
    let issued = events(&app, "access.voucher").await;
    assert!(issued[0].details.contains(r#""code_issued":false"#));

    // The victim's voucher still carries a code; they activate and see brigade 1's case only.
    let page = voucher_page(&app, &victim_status).await;
    let code = crate::cases::code_on(&page).expect("the victim's code");
    let victim = app.with_client(client());
    let res = crate::auth::activate(&victim, SHARED_MOBILE, &code, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let mine = victim.get("/cases").await.text().await.unwrap();
    assert!(mine.contains(&case1));
    assert!(
        !mine.contains(&case2),
        "a stranger's application grants this account nothing"
    );
    assert_eq!(
        victim.get(&format!("/cases/{case2}")).await.status(),
        StatusCode::NOT_FOUND
    );

    // The attacker's application, once approved, opens nothing for anyone: not even its claim
    // page for a signed-in account without its key.
    let res = victim
        .get(&format!("/apply/{attacker_id}/claim?key=00"))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // The real holder applying to brigade 2 with their own number: approved, then added to their
    // account by signing in from its status link — and only then does case 2 open.
    crate::cases::registered(&staff2, &case2, "甲", "110101199003070038", "刘洋").await;
    // The attacker's application, made with their number, is shown to them as their own earlier
    // one: they confirm filing theirs.
    let own_status = applies_again(&app, "insurer", SHARED_MOBILE, "110106", "2026-共号-2").await;
    // Two pending at brigade 2 now (the attacker's was decided): approve the newest.
    let res = approve(&staff2, &own_status, &["scene_diagram"], "view", &until()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = voucher_page(&app, &own_status).await;
    assert!(crate::cases::code_on(&page).is_none());
    let claim = page
        .split(r#"id="claim-link" href=""#)
        .next()
        .and_then(|_| {
            page.split("href=\"/apply/")
                .find(|s| s.contains("/claim?key="))
        })
        .map(|s| {
            format!(
                "/apply/{}",
                s.split('"').next().unwrap().replace("&amp;", "&")
            )
        })
        .expect("a link to claim it");
    assert!(
        !victim
            .get("/cases")
            .await
            .text()
            .await
            .unwrap()
            .contains(&case2),
        "approved, not yet claimed"
    );
    // Not signed in: the claim page sends to sign-in first.
    let stranger = app.with_client(client());
    let res = stranger.get(&claim).await;
    assert!(location(&res).starts_with("/login?next="));
    let form = victim.get(&claim).await.text().await.unwrap();
    assert!(form.contains(r#"id="claim""#), "{form}");
    let own_id = own_status
        .trim_start_matches("/apply/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let key = claim.split("key=").nth(1).unwrap().to_owned();
    let res = victim
        .post_form(
            &format!("/apply/{own_id}/claim"),
            &[("csrf_token", &csrf_in(&form)), ("key", &key)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        victim
            .get("/cases")
            .await
            .text()
            .await
            .unwrap()
            .contains(&case2)
    );
    let claimed = events(&app, "access.claim").await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].outcome, "allowed");
    // The attacker's application is still unverified and grants nothing.
    let attacker_row =
        access_application::Entity::find_by_id(attacker_id.parse::<uuid::Uuid>().unwrap())
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap();
    assert!(!attacker_row.account_verified);

    // Another account signed in cannot claim an application of another number.
    let other_status = applies(&app, "insurer", "13900003333", "110105", "2026-共号-1").await;
    let other_claim = other_status.replacen('?', "/claim?", 1);
    let page = victim.get(&other_claim).await.text().await.unwrap();
    assert!(page.contains(r#"id="claim-other""#), "{page}");
    let other_id = other_status
        .trim_start_matches("/apply/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let other_key = other_status
        .split("key=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let res = victim
        .post_form(
            &format!("/apply/{other_id}/claim"),
            &[("csrf_token", &csrf_in(&page)), ("key", other_key)],
        )
        .await;
    assert!(res.status().is_client_error(), "{}", res.status());
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("不是您当前登录账户的号码"),
        "the refusal says why"
    );
}

#[tokio::test]
async fn a_right_password_never_clears_wrong_second_factor_codes() {
    let app = spawn_app().await;
    let _staff = staff_of(&app, "110105", "wang.li").await;
    // Four wrong codes, then the right password again, four times: before the fix the password
    // wiped the count each round and guessing never ended.
    let mut refusals = Vec::new();
    for _ in 0..4 {
        let browser = app.with_client(client());
        assert_eq!(
            password_only(&browser, "wang.li", PASSWORD).await.status(),
            StatusCode::SEE_OTHER,
            "the password stays right"
        );
        for _ in 0..4 {
            let res = crate::second_factor::post_code(&browser, "000000").await;
            assert_eq!(res.status(), StatusCode::BAD_REQUEST);
            refusals.push(res.text().await.unwrap());
        }
    }
    assert!(
        refusals[4..].iter().all(|r| r.contains("锁定")),
        "locked from the fifth wrong code on"
    );
    // Locked: the right code is refused too; the person is told.
    let browser = app.with_client(client());
    password_only(&browser, "wang.li", PASSWORD).await;
    let code = crate::helpers::next_second_factor_code(&app.address, "wang.li").unwrap();
    let res = crate::second_factor::post_code(&browser, &code).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("锁定"));
    assert_eq!(browser.get("/staff").await.status(), StatusCode::SEE_OTHER);
    let told = notification::Entity::find()
        .filter(notification::Column::Event.eq("second_factor.locked"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert!(told >= 1, "the person is told of the lock");

    // The lock runs out: the right code passes and clears the count.
    account::Entity::update_many()
        .col_expr(
            account::Column::SecondFactorLockedUntil,
            sea_orm::sea_query::Expr::value(Some(
                time::OffsetDateTime::now_utc() - time::Duration::minutes(1),
            )),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    let code = crate::helpers::next_second_factor_code(&app.address, "wang.li").unwrap();
    let res = crate::second_factor::post_code(&browser, &code).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let staff = account::Entity::find()
        .filter(account::Column::LoginMasked.eq("wang.li"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(staff.second_factor_failures, 0);
    assert!(staff.second_factor_locked_until.is_none());
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_64() {
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_TRUSTED_PROXIES".into(), "127.0.0.1".into());
        env.insert("PORTAL_APPLICATIONS_PER_HOUR".into(), "2".into());
    })
    .await;
    // Wrong passwords from 21 addresses of one /64: the network is blocked, another is not.
    let mut last = StatusCode::OK;
    for i in 0..22u32 {
        let browser = app.with_client(client());
        let csrf = browser.csrf_from("/login").await;
        last = browser
            .client
            .post(format!("{}/login", browser.address))
            .header("X-Forwarded-For", format!("2001:db8:7:1::{:x}", i + 1))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("identifier", "nobody.here"),
                ("password", "wrong wrong wrong"),
            ])
            .send()
            .await
            .unwrap()
            .status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS, "one /64, one count");
    let browser = app.with_client(client());
    let csrf = browser.csrf_from("/login").await;
    let other = browser
        .client
        .post(format!("{}/login", browser.address))
        .header("X-Forwarded-For", "2001:db8:7:2::1")
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("identifier", "nobody.here"),
            ("password", "wrong wrong wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_ne!(other.status(), StatusCode::TOO_MANY_REQUESTS, "another /64");

    // Applications: two an hour per /64, whichever of its addresses they come from.
    let mut statuses = Vec::new();
    for i in 0..3u32 {
        let public = app.with_client(client());
        let html = public.get("/apply").await.text().await.unwrap();
        let csrf = crate::helpers::csrf_in_action(&html);
        let form = reqwest::multipart::Form::new().text("kind", "insurer");
        statuses.push(
            public
                .client
                .post(format!("{}/apply?csrf_token={csrf}", public.address))
                .header("X-Forwarded-For", format!("2001:db8:9:1:{:x}::1", i + 1))
                .multipart(form)
                .send()
                .await
                .unwrap()
                .status(),
        );
    }
    assert_eq!(statuses[2], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}

#[tokio::test]
async fn creating_and_enabling_accounts_and_the_applications_export_ask_again() {
    let app = spawn_app().await;
    let admin = admin(&app).await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let department = evidence_portal::accounts::departments(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.code == "110105")
        .unwrap();
    crate::second_factor::age_second_factor(&app).await;
    let before = account::Entity::find().count(&app.state.db).await.unwrap();
    let csrf = admin.csrf_from("/admin").await;
    let res = admin
        .post_form(
            "/admin/accounts",
            &[
                ("csrf_token", &csrf),
                ("role", "staff"),
                ("identifier", "li.qiang"),
                ("name", "李强"),
                ("department_id", &department.id.to_string()),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&res).starts_with("/login/second-factor?next="),
        "{}",
        location(&res)
    );
    assert_eq!(
        account::Entity::find().count(&app.state.db).await.unwrap(),
        before,
        "no account, no code, without a fresh second factor"
    );

    // Re-enabling a disabled account asks too.
    let target = account::Entity::find()
        .filter(account::Column::LoginMasked.eq("wang.li"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    account::Entity::update_many()
        .col_expr(
            account::Column::Disabled,
            sea_orm::sea_query::Expr::value(true),
        )
        .filter(account::Column::Id.eq(target.id))
        .exec(&app.state.db)
        .await
        .unwrap();
    let res = admin
        .post_form(
            &format!("/admin/accounts/{}/enable", target.id),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert!(location(&res).starts_with("/login/second-factor?next="));
    let still = account::Entity::find_by_id(target.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert!(still.disabled, "still disabled");

    // The applications ledger's export (every applicant's name) asks like the audit export.
    account::Entity::update_many()
        .col_expr(
            account::Column::Disabled,
            sea_orm::sea_query::Expr::value(false),
        )
        .filter(account::Column::Id.eq(target.id))
        .exec(&app.state.db)
        .await
        .unwrap();
    let res = staff.get("/staff/applications.csv").await;
    assert!(
        location(&res).starts_with("/login/second-factor?next=%2Fstaff%2Fapplications.csv"),
        "{}",
        location(&res)
    );
    // With a fresh pass it downloads.
    let code = crate::helpers::next_second_factor_code(&app.address, "wang.li").unwrap();
    assert_eq!(
        crate::second_factor::post_code(&staff, &code)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let res = staff.get("/staff/applications.csv").await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// Posts the code that confirms enrolment `factor_id`, with the CSRF token of `page`.
async fn confirm(
    who: &TestApp,
    page: &str,
    factor_id: &str,
    name: &str,
    code: &str,
) -> reqwest::Response {
    who.post_form(
        "/account/second-factor/totp/confirm",
        &[
            ("csrf_token", &csrf_in(page)),
            ("factor_id", factor_id),
            ("name", name),
            ("code", code),
        ],
    )
    .await
}

/// The key and the enrolment id on an enrolment page.
fn enrolment_on(page: &str) -> (String, String) {
    let secret = page
        .split(r#"id="totp-secret">"#)
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the key is shown")
        .replace(' ', "");
    let id = page
        .split(r#"name="factor_id" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the enrolment's id")
        .to_owned();
    (secret, id)
}

#[tokio::test]
async fn a_pending_enrolment_belongs_to_the_session_that_began_it() {
    let app = spawn_app().await;
    // An administrator without a factor yet, signed in twice with the password alone.
    let (first, _) = crate::second_factor::admin_without_factor(&app).await;
    let second = app.with_client(client());
    assert_eq!(
        password_only(&second, "new.admin", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );

    let page = first
        .get("/account/second-factor")
        .await
        .text()
        .await
        .unwrap();
    let res = first
        .post_form(
            "/account/second-factor/totp",
            &[("csrf_token", &csrf_in(&page))],
        )
        .await;
    let page = res.text().await.unwrap();
    let (secret_text, factor_id) = enrolment_on(&page);

    // The other session: a wrong code shows no key, and the right one does not confirm.
    let other_page = second
        .get("/account/second-factor")
        .await
        .text()
        .await
        .unwrap();
    let res = confirm(&second, &other_page, &factor_id, "x", "000000").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(
        !html.contains(&secret_text[..8]) && !html.contains(r#"id="totp-secret""#),
        "another session never sees the key"
    );
    let secret = totp_rs::Secret::try_from_base32(&secret_text)
        .unwrap()
        .as_bytes()
        .to_vec();
    let right =
        evidence_portal::auth::second_factor::code_at(&secret, time::OffsetDateTime::now_utc())
            .unwrap();
    let res = confirm(&second, &other_page, &factor_id, "x", &right).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "not its enrolment");
    assert_eq!(second.get("/admin").await.status(), StatusCode::SEE_OTHER);
    let confirmed = second_factor::Entity::find()
        .filter(second_factor::Column::Confirmed.eq(true))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(confirmed, 0);

    // An enrolment left waiting expires: even its own session cannot confirm it later.
    second_factor::Entity::update_many()
        .col_expr(
            second_factor::Column::CreatedAt,
            sea_orm::sea_query::Expr::value(
                time::OffsetDateTime::now_utc() - time::Duration::minutes(20),
            ),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    let res = confirm(&first, &page, &factor_id, "手机", &right).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "expired");
    assert!(!res.text().await.unwrap().contains(r#"id="totp-secret""#));
}

#[tokio::test]
async fn twenty_wrong_codes_at_once_lock_once_and_tell_the_person_once() {
    let app = spawn_app().await;
    let _staff = staff_of(&app, "110105", "wang.li").await;
    let browser = app.with_client(client());
    password_only(&browser, "wang.li", PASSWORD).await;
    let page = browser
        .get("/login/second-factor")
        .await
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&page);
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("code", "000000"),
        ("next", ""),
    ];
    let tries = (0..20).map(|_| browser.post_form("/login/second-factor", &fields));
    for res in futures_util::future::join_all(tries).await {
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
    let told = notification::Entity::find()
        .filter(notification::Column::Event.eq("second_factor.locked"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(told, 1, "one lock, one message");
    let staff = account::Entity::find()
        .filter(account::Column::LoginMasked.eq("wang.li"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert!(staff.second_factor_locked_until.is_some());
}
