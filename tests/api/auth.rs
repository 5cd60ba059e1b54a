//! Accounts and sign-in through the running server: activation by access code, sign in and out,
//! throttling, sessions, tampered tokens, CSRF, admin pages and agents' API tokens.

use evidence_portal::accounts::{self, NewAccount};
use evidence_portal::audit::Actor;
use evidence_portal::auth::identifier::Identifier;
use evidence_portal::db::entities::{activation, audit_event, session};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::helpers::{TestApp, assert_status, client, csrf_in, header, spawn_app};

const PARTY_ID: &str = "110101199003070011";
pub const PASSWORD: &str = "Lotus-桥-Harbor-2026";

/// Creates an inactive account directly through the library (as the admin pages would) and
/// returns its access code.
pub async fn seed(app: &TestApp, role: &'static str, id: Identifier, name: &str) -> String {
    let (_, code) = accounts::create(
        &app.state.db,
        &app.state.key,
        &app.state.audit,
        Actor::SYSTEM,
        NewAccount {
            role: evidence_portal::vocab::Role::parse(role).expect("a role"),
            identifier: id,
            display_name: name.into(),
            department_id: None,
        },
    )
    .await
    .unwrap();
    code.code
}

pub async fn activate(
    app: &TestApp,
    identifier: &str,
    code: &str,
    password: &str,
) -> reqwest::Response {
    let csrf = app.csrf_from("/activate").await;
    let res = app
        .post_form(
            "/activate",
            &[
                ("csrf_token", &csrf),
                ("identifier", identifier),
                ("code", code),
                ("password", password),
                ("password_repeat", password),
            ],
        )
        .await;
    crate::helpers::second_factor_after(app, identifier, &res).await;
    res
}

pub async fn sign_in(app: &TestApp, identifier: &str, password: &str) -> reqwest::Response {
    let res = password_only(app, identifier, password).await;
    crate::helpers::second_factor_after(app, identifier, &res).await;
    res
}

/// Signs in with the password alone (a staff member's session then still needs its second
/// factor).
pub async fn password_only(app: &TestApp, identifier: &str, password: &str) -> reqwest::Response {
    let csrf = app.csrf_from("/login").await;
    app.post_form(
        "/login",
        &[
            ("csrf_token", &csrf),
            ("identifier", identifier),
            ("password", password),
        ],
    )
    .await
}

async fn sign_out(app: &TestApp) -> reqwest::Response {
    let csrf = app.csrf_from("/account").await;
    app.post_form("/logout", &[("csrf_token", &csrf)]).await
}

/// An activated party, signed in on `app.client`.
async fn party(app: &TestApp) {
    let code = seed(app, "party", Identifier::CitizenId(PARTY_ID.into()), "张伟").await;
    let res = activate(app, PARTY_ID, &code, PASSWORD).await;
    assert_status(&res, StatusCode::SEE_OTHER);
}

pub fn location(res: &reqwest::Response) -> String {
    header(res, "location").to_owned()
}

pub async fn events(app: &TestApp, action: &str) -> Vec<audit_event::Model> {
    audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq(action))
        .order_by_asc(audit_event::Column::Seq)
        .all(&app.state.db)
        .await
        .unwrap()
}

/// The text of the page's alert, the part that differs between refusals if anything does.
pub async fn alert(res: reqwest::Response) -> (StatusCode, String) {
    let status = res.status();
    let html = res.text().await.unwrap();
    let alert = html
        .split(r#"role="alert">"#)
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or("")
        .to_owned();
    (status, alert)
}

#[tokio::test]
async fn a_party_activates_with_the_access_code_and_signs_in_and_out() {
    let app = spawn_app().await;
    party(&app).await;
    let res = app.get("/account").await;
    assert_status(&res, StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("张伟"));
    assert!(
        html.contains("1101**********0011"),
        "masked identifier shown"
    );
    assert!(!html.contains(PARTY_ID), "never the clear ID number");

    assert_status(&sign_out(&app).await, StatusCode::SEE_OTHER);
    let res = app.get("/account").await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/login?next="));

    let res = sign_in(&app, PARTY_ID, PASSWORD).await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/cases", "a party lands on their cases");
    assert_status(&app.get("/account").await, StatusCode::OK);

    // Every step was audited, with the masked identifier and never the clear one.
    assert_eq!(events(&app, "auth.activate").await.len(), 1);
    assert_eq!(events(&app, "auth.logout").await.len(), 1);
    let logins = events(&app, "auth.login").await;
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].outcome, "allowed");
    assert!(logins[0].details.contains("1101**********0011"));
    let all = audit_event::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert!(all.iter().all(|e| !e.details.contains(PARTY_ID)));
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_strict() {
    let app = spawn_app().await;
    let code = seed(
        &app,
        "party",
        Identifier::CitizenId(PARTY_ID.into()),
        "张伟",
    )
    .await;
    let res = activate(&app, PARTY_ID, &code, PASSWORD).await;
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("portal-session="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
}

#[tokio::test]
async fn wrong_password_and_unknown_identifier_get_the_same_answer() {
    let app = spawn_app().await;
    party(&app).await;
    let other = spawn_app_client(&app);
    let wrong = alert(sign_in(&other, PARTY_ID, "Not-The-Password-1").await).await;
    let unknown = alert(sign_in(&other, "440304198511223338", PASSWORD).await).await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.0, StatusCode::OK);
    assert!(wrong.1.contains("账号或密码不正确"), "{wrong:?}");
    let reasons: Vec<String> = events(&app, "auth.login")
        .await
        .into_iter()
        .filter(|e| e.outcome == "denied")
        .map(|e| e.details)
        .collect();
    assert!(reasons[0].contains("wrong_password"), "{reasons:?}");
    assert!(reasons[1].contains("unknown_identifier"), "{reasons:?}");
    assert!(
        reasons[1].contains("4403**********3338"),
        "masked: {reasons:?}"
    );
}

/// A second browser on the same app (own cookies).
fn spawn_app_client(app: &TestApp) -> TestApp {
    app.with_client(client())
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_for_fifteen_minutes() {
    let app = spawn_app().await;
    party(&app).await;
    let other = spawn_app_client(&app);
    for _ in 0..5 {
        sign_in(&other, PARTY_ID, "Not-The-Password-1").await;
    }
    // Now even the right password is refused, with the same answer as any failure.
    let (status, text) = alert(sign_in(&other, PARTY_ID, PASSWORD).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("账号或密码不正确"));
    let last = events(&app, "auth.login").await.pop().unwrap();
    assert_eq!(last.outcome, "denied");
    assert!(last.details.contains("locked"), "{}", last.details);
    // The lock is in the database, so every instance honours it.
    app.state
        .db
        .execute_unprepared("UPDATE accounts SET locked_until = NULL")
        .await
        .unwrap();
    assert_status(
        &sign_in(&other, PARTY_ID, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
}

#[tokio::test]
async fn twenty_failures_from_one_address_block_it() {
    let app = spawn_app().await;
    for i in 0..20 {
        let res = sign_in(&app, &format!("user{i:02}"), "whatever-password").await;
        assert_status(&res, StatusCode::OK);
    }
    let res = sign_in(&app, "user99", "whatever-password").await;
    assert_status(&res, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.text().await.unwrap().contains("too_many_attempts"));
}

#[tokio::test]
async fn wrong_used_and_expired_access_codes_are_refused() {
    let app = spawn_app().await;
    let code = seed(
        &app,
        "party",
        Identifier::CitizenId(PARTY_ID.into()),
        "张伟",
    )
    .await;

    let (_, text) = alert(activate(&app, PARTY_ID, "ABCDE-FGHJK", PASSWORD).await).await;
    assert!(text.contains("访问码"), "wrong code: {text}");

    // Typed loosely: lower case, no hyphen.
    let loose = code.replace('-', "").to_lowercase();
    assert_status(
        &activate(&app, PARTY_ID, &loose, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );

    let other = spawn_app_client(&app);
    let (_, text) = alert(activate(&other, PARTY_ID, &code, "Another-Lotus-Pass-9").await).await;
    assert!(text.contains("访问码"), "used code: {text}");

    let id2 = "440304198511223338";
    let code2 = seed(&app, "party", Identifier::CitizenId(id2.into()), "李娜").await;
    activation::Entity::update_many()
        .col_expr(
            activation::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(
                time::OffsetDateTime::now_utc() - time::Duration::days(1),
            ),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    let (_, text) = alert(activate(&other, id2, &code2, PASSWORD).await).await;
    assert!(text.contains("访问码"), "expired code: {text}");

    let reasons: Vec<String> = events(&app, "auth.activate")
        .await
        .into_iter()
        .filter(|e| e.outcome == "denied")
        .map(|e| e.details)
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("wrong_code")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("used_code")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("expired_code")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn reissuing_a_code_invalidates_the_previous_one() {
    let app = spawn_app().await;
    let first = seed(
        &app,
        "party",
        Identifier::CitizenId(PARTY_ID.into()),
        "张伟",
    )
    .await;
    let account = evidence_portal::db::entities::account::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let by = accounts::ResetBy {
        actor: Actor::SYSTEM,
        label: "系统管理员".into(),
        reason: "测试".into(),
    };
    let (_, second) = accounts::reset(
        &app.state.db,
        &app.state.key,
        &app.state.audit,
        app.state.channels,
        by,
        account.id,
    )
    .await
    .unwrap();
    let (_, text) = alert(activate(&app, PARTY_ID, &first, PASSWORD).await).await;
    assert!(text.contains("访问码"), "{text}");
    assert_status(
        &activate(&app, PARTY_ID, &second.code, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
}

#[tokio::test]
async fn weak_passwords_are_refused_at_activation() {
    let app = spawn_app().await;
    let code = seed(
        &app,
        "party",
        Identifier::CitizenId(PARTY_ID.into()),
        "张伟",
    )
    .await;
    for weak in ["short", "password123", "12345678", "110101199003070011x"] {
        let res = activate(&app, PARTY_ID, &code, weak).await;
        assert_status(&res, StatusCode::OK);
        let html = res.text().await.unwrap();
        assert!(html.contains(r#"id="password-error""#), "{weak} accepted");
    }
    // The code was not used up by the refusals.
    assert_status(
        &activate(&app, PARTY_ID, &code, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
}

#[tokio::test]
async fn citizen_ids_are_read_as_people_type_them() {
    let app = spawn_app().await;
    party(&app).await;
    let other = spawn_app_client(&app);
    // Wrong check digit: told so next to the field, without looking up any account.
    let res = sign_in(&other, "110101199003070012", PASSWORD).await;
    let html = res.text().await.unwrap();
    assert!(
        html.contains(r#"id="identifier-error""#) && html.contains("校验位"),
        "{html}"
    );
    // Full-width digits, spaces, the 15-digit legacy form: all the same person.
    for typed in [
        "１１０１０１１９９００３０７００１１",
        "110101 19900307 0011",
        "110101900307001",
    ] {
        let b = spawn_app_client(&app);
        let res = sign_in(&b, typed, PASSWORD).await;
        assert_status(&res, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn tampered_session_tokens_are_refused() {
    use base64::Engine;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let app = spawn_app().await;
    party(&app).await;
    let session_row = session::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |sid: Uuid, exp: i64| serde_json::json!({ "sid": sid, "sub": session_row.account_id, "iat": now, "exp": exp });
    let sign = |key: &[u8], c: &serde_json::Value| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            c,
            &EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let real_key = app.state.key.derive("session-jwt");
    let genuine = sign(&real_key, &claims(session_row.id, now + 3600));

    let forged_payload = {
        let parts: Vec<&str> = genuine.split('.').collect();
        let other = claims(Uuid::now_v7(), now + 3600).to_string();
        format!("{}.{}.{}", parts[0], b64(other.as_bytes()), parts[2])
    };
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims(session_row.id, now + 3600).to_string().as_bytes())
    );
    let other_key = sign(&[7u8; 32], &claims(session_row.id, now + 3600));
    let expired = sign(&real_key, &claims(session_row.id, now - 5));

    let try_cookie = |token: String| {
        let app = &app;
        async move {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .get(format!("{}/account", app.address))
                .header("Cookie", format!("portal-session={token}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        try_cookie(genuine).await,
        StatusCode::OK,
        "the control case"
    );
    for (what, token) in [
        ("changed payload", forged_payload),
        ("alg none", alg_none),
        ("other key", other_key),
        ("expired", expired),
    ] {
        assert_eq!(try_cookie(token).await, StatusCode::SEE_OTHER, "{what}");
    }
}

#[tokio::test]
async fn signing_out_in_one_browser_ends_the_session_everywhere_it_is_used() {
    let app = spawn_app().await;
    party(&app).await;
    // A second client holding the same session cookie (copied, as a thief would).
    let cookie = session::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let _ = cookie;
    let jar_cookie = {
        let res = sign_in(&spawn_app_client(&app), PARTY_ID, PASSWORD).await;
        res.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|c| c.starts_with("portal-session="))
            .unwrap()
    };
    let thief = client();
    let get = |c: &reqwest::Client| {
        c.get(format!("{}/account", app.address))
            .header("Cookie", jar_cookie.clone())
            .send()
    };
    assert_eq!(get(&thief).await.unwrap().status(), StatusCode::OK);
    // The owner signs that session out (its own browser holds the same cookie).
    let owner = client();
    let html = owner
        .get(format!("{}/account", app.address))
        .header("Cookie", jar_cookie.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&html);
    let res = owner
        .post(format!("{}/logout", app.address))
        .header("Cookie", jar_cookie.clone())
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(get(&thief).await.unwrap().status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn idle_sessions_end_after_thirty_minutes() {
    let app = spawn_app().await;
    party(&app).await;
    assert_status(&app.get("/account").await, StatusCode::OK);
    let stale = time::OffsetDateTime::now_utc() - time::Duration::minutes(31);
    session::Entity::update_many()
        .col_expr(
            session::Column::LastSeenAt,
            sea_orm::sea_query::Expr::value(stale),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    assert_status(&app.get("/account").await, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_are_refused_and_audited() {
    let app = spawn_app().await;
    party(&app).await;
    let fields = [
        ("current", PASSWORD),
        ("new", "Brand-New-Harbor-77"),
        ("repeat", "Brand-New-Harbor-77"),
    ];
    let res = app.post_form("/account/password", &fields).await;
    assert_status(&res, StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("csrf_rejected"));

    // A token from another session (another person's page).
    let other = spawn_app_client(&app);
    let code = seed(
        &app,
        "party",
        Identifier::CitizenId("440304198511223338".into()),
        "李娜",
    )
    .await;
    activate(&other, "440304198511223338", &code, PASSWORD).await;
    let foreign = other.csrf_from("/account").await;
    let mut with_foreign = fields.to_vec();
    with_foreign.push(("csrf_token", &foreign));
    let res = app.post_form("/account/password", &with_foreign).await;
    assert_status(&res, StatusCode::FORBIDDEN);

    let rejects = events(&app, "auth.csrf_reject").await;
    assert_eq!(rejects.len(), 2);
    assert!(rejects.iter().all(|e| e.outcome == "denied"));
    assert!(rejects[0].details.contains("missing") && rejects[1].details.contains("mismatch"));

    // And with its own token the change goes through.
    let own = app.csrf_from("/account").await;
    let mut with_own = fields.to_vec();
    with_own.push(("csrf_token", &own));
    assert_status(
        &app.post_form("/account/password", &with_own).await,
        StatusCode::SEE_OTHER,
    );
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions() {
    let app = spawn_app().await;
    party(&app).await;
    let laptop = spawn_app_client(&app);
    assert_status(
        &sign_in(&laptop, PARTY_ID, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
    let csrf = app.csrf_from("/account").await;
    let res = app
        .post_form(
            "/account/password",
            &[
                ("csrf_token", &csrf),
                ("current", PASSWORD),
                ("new", "Brand-New-Harbor-77"),
                ("repeat", "Brand-New-Harbor-77"),
            ],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_status(&app.get("/account").await, StatusCode::OK);
    assert_status(&laptop.get("/account").await, StatusCode::SEE_OTHER);
}

pub async fn admin(app: &TestApp) -> TestApp {
    let id = Uuid::now_v7();
    let hash = evidence_portal::auth::password::hash(PASSWORD).unwrap();
    let key = Identifier::Username("root.admin".into()).login_key(&app.state.key);
    evidence_portal::db::accounts::create_admin(
        &app.state.db,
        evidence_portal::db::accounts::NewAdmin {
            id,
            login_key: &key,
            login_masked: "root.admin",
            display_name: "系统管理员",
            password_hash: &hash,
            second_factor_grace_until: None,
        },
    )
    .await
    .unwrap();
    let browser = app.with_client(client());
    assert_status(
        &sign_in(&browser, "root.admin", PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
    browser
}

#[tokio::test]
async fn an_admin_creates_a_brigade_and_a_staff_member_who_activates() {
    let app = spawn_app().await;
    let admin = admin(&app).await;
    let csrf = admin.csrf_from("/admin").await;
    let res = admin
        .post_form(
            "/admin/departments",
            &[
                ("csrf_token", &csrf),
                ("code", "110105"),
                ("name", "朝阳交通支队一大队"),
            ],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    let html = admin.get("/admin").await.text().await.unwrap();
    assert!(html.contains("朝阳交通支队一大队"));
    let dep = html
        .split(r#"<option value=""#)
        .map(|s| s.split('"').next().unwrap())
        .find(|v| Uuid::parse_str(v).is_ok())
        .unwrap()
        .to_owned();
    let res = admin
        .post_form(
            "/admin/accounts",
            &[
                ("csrf_token", &csrf),
                ("role", "staff"),
                ("identifier", "Wang.Li"),
                ("name", "王立"),
                ("department_id", &dep),
            ],
        )
        .await;
    // The code is shown once, on the account's own page.
    assert_status(&res, StatusCode::SEE_OTHER);
    let shown = header(&res, "location").to_owned();
    let page = admin.get(&shown).await.text().await.unwrap();
    let code = crate::cases::code_on(&page).expect("the page shows the code");
    assert!(
        page.contains(r#"<p class="flash" role="status">账户已创建。"#),
        "the creation is said"
    );
    assert_status(&admin.get(&shown).await, StatusCode::SEE_OTHER);

    let staff = app.with_client(client());
    let res = activate(&staff, "wang.li", &code, "Spruce-河-Window-58").await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_status(&staff.get("/account").await, StatusCode::OK);
    // Staff are not admins.
    assert_status(&staff.get("/admin").await, StatusCode::FORBIDDEN);

    // Bad input re-renders with a message and creates nothing.
    let res = admin
        .post_form(
            "/admin/accounts",
            &[
                ("csrf_token", &csrf),
                ("role", "party"),
                ("identifier", "110101199003070012"),
                ("name", "某"),
            ],
        )
        .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("校验位"));
    let res = admin
        .post_form(
            "/admin/accounts",
            &[
                ("csrf_token", &csrf),
                ("role", "staff"),
                ("identifier", "wang.li"),
                ("name", "重复"),
                ("department_id", &dep),
            ],
        )
        .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert_eq!(events(&app, "account.create").await.len(), 1);
}

#[tokio::test]
async fn a_disabled_account_is_signed_out_on_its_next_request() {
    let app = spawn_app().await;
    party(&app).await;
    let admin = admin(&app).await;
    let account = evidence_portal::db::entities::account::Entity::find()
        .filter(evidence_portal::db::entities::account::Column::Role.eq("party"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let csrf = admin.csrf_from("/admin").await;
    let res = admin
        .post_form(
            &format!("/admin/accounts/{}/disable", account.id),
            &[("csrf_token", &csrf), ("confirmed", "yes")],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_status(&app.get("/account").await, StatusCode::SEE_OTHER);
    let (_, text) = alert(sign_in(&app.with_client(client()), PARTY_ID, PASSWORD).await).await;
    assert!(text.contains("账号或密码不正确"));

    // Re-enabled, the same password works again.
    let res = admin
        .post_form(
            &format!("/admin/accounts/{}/enable", account.id),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_status(
        &sign_in(&app.with_client(client()), PARTY_ID, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
}

#[tokio::test]
async fn only_admins_reach_the_admin_pages() {
    let app = spawn_app().await;
    let res = app.get("/admin").await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/login?next=%2Fadmin"));
    party(&app).await;
    assert_status(&app.get("/admin").await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn agents_use_personal_tokens_for_downloads_only() {
    let app = spawn_app().await;
    let code = seed(
        &app,
        "agent",
        Identifier::Mobile("13800138000".into()),
        "赵律师",
    )
    .await;
    assert_status(
        &activate(&app, "138 0013 8000", &code, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );

    let csrf = app.csrf_from("/account").await;
    let res = app
        .post_form(
            "/account/tokens",
            &[("csrf_token", &csrf), ("name", "律所电脑")],
        )
        .await;
    // Shown once, on a page of its own that a reload cannot repeat.
    assert_status(&res, StatusCode::SEE_OTHER);
    let shown = crate::helpers::header(&res, "location").to_owned();
    assert!(shown.starts_with("/account/tokens/"), "{shown}");
    let html = app.get(&shown).await.text().await.unwrap();
    let start = html.find(r#"id="new-token">"#).unwrap() + 15;
    let token = html[start..].split('<').next().unwrap().to_owned();
    assert!(token.starts_with("ep_") && token.len() == 67, "{token}");
    assert!(
        html.contains(r#"<p class="flash" role="status">已创建访问令牌“律所电脑”。请现在复制"#),
        "the creation is said, with what to do now"
    );
    let reloaded = app.get(&shown).await;
    assert_status(&reloaded, StatusCode::SEE_OTHER);
    assert_eq!(
        crate::helpers::header(&reloaded, "location"),
        "/account#tokens"
    );
    let tokens = evidence_portal::auth::tokens::list(
        &app.state.db,
        app.state
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                app.state.db.get_database_backend(),
                "SELECT account_id FROM api_tokens",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<uuid::Uuid>("", "account_id")
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        tokens.len(),
        1,
        "one token, however often the page is loaded"
    );
    // The list shows only its beginning afterwards.
    let later = app.get("/account").await.text().await.unwrap();
    assert!(!later.contains(&token));
    assert!(later.contains(&token[..10]));

    let bare = client();
    let whoami = |t: &str| {
        bare.get(format!("{}/api/whoami", app.address))
            .header("Authorization", format!("Bearer {t}"))
            .send()
    };
    let res = whoami(&token).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["via"], "token");
    assert_eq!(body["role"], "agent");
    assert_eq!(body["login"], "138****8000");

    // Not a session: pages and forms do not take it.
    let res = bare
        .get(format!("{}/account", app.address))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = bare
        .post(format!("{}/account/tokens", app.address))
        .header("Authorization", format!("Bearer {token}"))
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Revoked, it stops working at once.
    let html = app.get("/account").await.text().await.unwrap();
    let id_start = html.find("/account/tokens/").unwrap() + 16;
    let token_id = html[id_start..].split('/').next().unwrap().to_owned();
    let csrf = csrf_in(&html);
    let res = app
        .post_form(
            &format!("/account/tokens/{token_id}/revoke"),
            &[("csrf_token", &csrf), ("confirmed", "yes")],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_eq!(
        whoami(&token).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        whoami("ep_made_up").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(events(&app, "token.create").await.len(), 1);
    assert_eq!(events(&app, "token.revoke").await.len(), 1);
}

#[tokio::test]
async fn parties_cannot_create_api_tokens() {
    let app = spawn_app().await;
    party(&app).await;
    let csrf = app.csrf_from("/account").await;
    let res = app
        .post_form("/account/tokens", &[("csrf_token", &csrf), ("name", "x")])
        .await;
    assert_status(&res, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sign_in_redirects_only_to_local_pages() {
    let app = spawn_app().await;
    party(&app).await;
    sign_out(&app).await;
    for (next, expected) in [
        ("/account?x=1", "/account?x=1"),
        ("https://evil.example/", "/cases"),
        ("//evil.example", "/cases"),
    ] {
        let csrf = app.csrf_from("/login").await;
        let res = app
            .post_form(
                "/login",
                &[
                    ("csrf_token", &csrf),
                    ("identifier", PARTY_ID),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(location(&res), expected, "next={next}");
        sign_out(&app).await;
    }
}

#[tokio::test]
async fn the_cli_creates_accounts_and_issues_codes_that_activate() {
    use crate::cli::{run, stderr, stdout};
    let app = spawn_app().await;
    let code_of = |out: &std::process::Output| {
        let text = stdout(out);
        let i = text
            .find("access code ")
            .unwrap_or_else(|| panic!("{text} {}", stderr(out)))
            + 12;
        text[i..i + 11].to_owned()
    };
    let out = run(
        &[
            "account",
            "create",
            "--role",
            "party",
            "--identifier",
            "E12345678",
            "--passport",
            "--name",
            "John Smith",
        ],
        &app.env,
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("E1*****78"), "{}", stdout(&out));
    let first = code_of(&out);

    let out = run(
        &["account", "issue-code", "--identifier", "e12345678"],
        &app.env,
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let second = code_of(&out);
    assert_ne!(first, second);

    let (_, text) = alert(activate(&app, "E12345678", &first, PASSWORD).await).await;
    assert!(
        text.contains("访问码"),
        "the first code was revoked: {text}"
    );
    assert_status(
        &activate(&app, "E12345678", &second, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );

    let out = run(
        &[
            "account",
            "create",
            "--role",
            "staff",
            "--identifier",
            "li.jing",
            "--name",
            "李静",
        ],
        &app.env,
        "",
    );
    assert_eq!(out.status.code(), Some(1), "staff need a brigade");
    let out = run(
        &[
            "account",
            "create-department",
            "--code",
            "310101",
            "--name",
            "黄浦大队",
        ],
        &app.env,
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The same code again is a brigade that exists, not an account.
    let again = run(
        &[
            "account",
            "create-department",
            "--code",
            "310101",
            "--name",
            "黄浦大队",
        ],
        &app.env,
        "",
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("a brigade with this code already exists"),
        "{}",
        stderr(&again)
    );
    let out = run(
        &[
            "account",
            "create",
            "--role",
            "staff",
            "--identifier",
            "li.jing",
            "--name",
            "李静",
            "--department",
            "310101",
        ],
        &app.env,
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(
        &[
            "account",
            "create",
            "--role",
            "party",
            "--identifier",
            "110101199003070012",
            "--name",
            "X",
        ],
        &app.env,
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("校验位"), "{}", stderr(&out));
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_throttled_on_its_own() {
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert("PORTAL_TRUSTED_PROXIES".into(), "127.0.0.1".into());
    })
    .await;
    let attempt = |client_ip: &'static str| {
        let app = &app;
        async move {
            let csrf = app.csrf_from("/login").await;
            app.client
                .post(format!("{}/login", app.address))
                .header("X-Forwarded-For", format!("203.0.113.99, {client_ip}"))
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("identifier", "nobody.here"),
                    ("password", "x"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for _ in 0..20 {
        assert_eq!(attempt("198.51.100.7").await, StatusCode::OK);
    }
    assert_eq!(attempt("198.51.100.7").await, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy is not blocked by the first one's failures.
    assert_eq!(attempt("198.51.100.8").await, StatusCode::OK);
    let last = events(&app, "auth.login").await.pop().unwrap();
    assert_eq!(last.client_ip.as_deref(), Some("198.51.100.8"));
}
