//! The applicant's way back to an application's status page from another browser (issue 31
//! item 2): the receipt number and the mobile number it gave bring a one-time code by SMS —
//! through a stand-in of the signed gateway here — and the code a fresh status link, the old one
//! retired. The page answers alike whether or not the pair exists; codes end after five wrong
//! tries; without an SMS gateway no form is offered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use evidence_portal::db::entities::{access_application, application_lookup, notification, outbox};
use reqwest::StatusCode;
use sea_orm::EntityTrait;

use crate::applications::{INSURER_MOBILE, application_id, applies};
use crate::cases::served_case;
use crate::helpers::{TestApp, audit_actions, client, csrf_in, header, spawn_app, spawn_app_with};

const SECRET: &str = "stand-in-lookup-gateway-2026";
const SENT: &str = "如果受理编号和手机号码相符，验证码已发送";

/// A stand-in SMS gateway that keeps the bodies of the requests whose signature holds.
struct Gateway {
    url: String,
    received: Arc<Mutex<Vec<serde_json::Value>>>,
    _handle: actix_web::dev::ServerHandle,
}

impl Gateway {
    async fn start() -> Gateway {
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = received.clone();
        let server = HttpServer::new(move || {
            let kept = kept.clone();
            App::new().route(
                "/sms",
                web::post().to(move |req: HttpRequest, body: web::Bytes| {
                    let kept = kept.clone();
                    async move {
                        let get = |name: &str| {
                            req.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned()
                        };
                        let body_text = std::str::from_utf8(&body).unwrap_or("");
                        let ts: i64 = get("X-Portal-Timestamp").parse().unwrap_or(0);
                        let expected =
                            evidence_portal::notifications::sms::sign(SECRET, ts, body_text);
                        if expected != get("X-Portal-Signature") {
                            return HttpResponse::Unauthorized().finish();
                        }
                        kept.lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap_or_default());
                        HttpResponse::Ok().json(serde_json::json!({"code": "OK"}))
                    }
                }),
            )
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Gateway {
            url: format!("http://127.0.0.1:{port}/sms"),
            received,
            _handle: handle,
        }
    }

    fn codes(&self) -> Vec<serde_json::Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b["template"] == "access.lookup_code")
            .cloned()
            .collect()
    }

    /// The `n`th lookup code texted (counting from 1), waited for (at most 15 s).
    async fn code(&self, n: usize) -> serde_json::Value {
        for _ in 0..150 {
            if let Some(sms) = self.codes().get(n - 1) {
                return sms.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no code number {n}: {:?}", self.received.lock().unwrap());
    }
}

/// An instance that sends SMS through `gateway`, its dispatcher looking every second.
async fn app_with(gateway: &Gateway) -> TestApp {
    let url = gateway.url.clone();
    spawn_app_with(move |env| {
        env.insert("PORTAL_SMS_URL".into(), url);
        env.insert("PORTAL_SMS_SECRET".into(), SECRET.into());
        env.insert("PORTAL_NOTIFY_TIMEOUT_SECONDS".into(), "1".into());
        env.insert("PORTAL_NOTIFY_SECONDS".into(), "1".into());
    })
    .await
}

/// An insurer's application to a served case `number`, filed in a browser that is then lost:
/// its status path and receipt number.
async fn filed(app: &TestApp, number: &str) -> (String, String) {
    served_case(app, number).await;
    let status = applies(app, "insurer", INSURER_MOBILE, "110105", number).await;
    let status = status.replace("&new=1", "");
    let id: uuid::Uuid = application_id(&status).parse().unwrap();
    let receipt = access_application::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .receipt_no;
    (status, receipt)
}

/// Asks for a code with `receipt` and `mobile` from the find page: the answer.
async fn ask(browser: &TestApp, receipt: &str, mobile: &str) -> reqwest::Response {
    let csrf = csrf_in(&browser.get("/apply/find").await.text().await.unwrap());
    browser
        .post_form(
            "/apply/find",
            &[
                ("csrf_token", &csrf),
                ("receipt_no", receipt),
                ("mobile", mobile),
            ],
        )
        .await
}

/// Types `code` for `receipt` on the code form: the answer.
async fn enter(browser: &TestApp, receipt: &str, code: &str) -> reqwest::Response {
    let csrf = csrf_in(&browser.get("/apply/find").await.text().await.unwrap());
    browser
        .post_form(
            "/apply/find/code",
            &[
                ("csrf_token", &csrf),
                ("receipt_no", receipt),
                ("code", code),
            ],
        )
        .await
}

/// The page without what differs on every rendering (the masked CSRF token).
fn same_parts(html: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let mut out = String::new();
    let mut rest = html;
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at + marker.len()]);
        rest = &rest[at + marker.len()..];
        rest = &rest[rest.find('"').unwrap_or(0)..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn the_receipt_and_the_mobile_bring_a_code_by_sms_that_opens_a_new_link_and_retires_the_old()
{
    let gateway = Gateway::start().await;
    let app = app_with(&gateway).await;
    let (old, receipt) = filed(&app, "2026-找回-2").await;
    assert_eq!(app.get(&old).await.status(), StatusCode::OK);

    // Another browser: from the landing page to the list, and from there to the form.
    let browser = app.with_client(client());
    let landing = browser.get("/").await.text().await.unwrap();
    assert!(landing.contains(r#"href="/apply/mine""#), "{landing}");
    let mine = browser.get("/apply/mine").await.text().await.unwrap();
    assert!(mine.contains(r#"href="/apply/find""#), "{mine}");
    let form = browser.get("/apply/find").await.text().await.unwrap();
    assert!(
        form.contains(r#"name="receipt_no""#) && form.contains(r#"name="mobile""#),
        "{form}"
    );
    assert!(
        form.contains("原链接"),
        "the old link's end is said first: {form}"
    );

    // Typed as people do: lower case, spaces around.
    let res = ask(
        &browser,
        &format!(" {} ", receipt.to_lowercase()),
        INSURER_MOBILE,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(
        page.contains(SENT) && page.contains(r#"name="code""#),
        "{page}"
    );

    let sms = gateway.code(1).await;
    assert_eq!(sms["phone"], INSURER_MOBILE);
    let code = sms["params"]["code"].as_str().unwrap().to_owned();
    assert!(
        code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
        "{code}"
    );
    let text = sms["text"].as_str().unwrap();
    assert!(text.contains(&code) && text.contains(&receipt), "{text}");
    assert_eq!(
        evidence_portal::notifications::sms_segments(text),
        1,
        "{text}"
    );
    // Texted to the number the application gave; the code is in no row of the database.
    let rows = outbox::Entity::find().all(&app.state.db).await.unwrap();
    // Sealed at rest (`at_rest`): opened with the server key.
    let mobile = evidence_portal::keys::Contact::Mobile;
    assert!(rows.iter().any(
        |r| app.state.key.open_contact(mobile, &r.address).as_deref() == Some(INSURER_MOBILE)
    ));
    let notes = notification::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    let note = notes
        .iter()
        .find(|n| n.event == "access.lookup_code")
        .expect("a notification of the application's account");
    assert!(!note.params.contains(&code), "{}", note.params);
    let lookups = application_lookup::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(lookups.len(), 1);
    assert!(lookups[0].code_hash.len() == 64 && !lookups[0].code_hash.contains(&code));

    let res = enter(&browser, &receipt, &code).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    let new = header(&res, "location").to_owned();
    let id = application_id(&old);
    assert!(new.starts_with(&format!("/apply/{id}?key=")), "{new}");
    assert_ne!(new, old);
    let page = browser.get(&new).await.text().await.unwrap();
    assert!(page.contains("原链接已失效"), "{page}");
    assert_eq!(app.get(&old).await.status(), StatusCode::NOT_FOUND);
    // This browser remembers it.
    let mine = browser.get("/apply/mine").await.text().await.unwrap();
    assert!(
        mine.contains(&new.replace('&', "&amp;")) || mine.contains(&new),
        "{mine}"
    );

    // Used once: the same code again opens nothing, and the new link stays.
    let again = enter(&browser, &receipt, &code).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(browser.get(&new).await.status(), StatusCode::OK);

    let audited = audit_actions(&app, "access.lookup").await;
    assert!(audited.len() >= 3, "{audited:?}");
    assert!(
        audited
            .iter()
            .all(|(_, d)| !d.contains(&code) && !d.contains(INSURER_MOBILE)),
        "{audited:?}"
    );
    assert!(
        audited
            .iter()
            .any(|(o, d)| o == "allowed" && d.contains("rotated")),
        "{audited:?}"
    );
}

#[tokio::test]
async fn a_wrong_mobile_or_an_unknown_receipt_gets_the_same_page_and_no_sms() {
    let gateway = Gateway::start().await;
    let app = app_with(&gateway).await;
    let (_, receipt) = filed(&app, "2026-找回-3").await;
    let browser = app.with_client(client());

    let wrong = ask(&browser, &receipt, "13911112222").await;
    assert_eq!(wrong.status(), StatusCode::OK);
    let wrong = wrong.text().await.unwrap();
    let right = ask(&browser, &receipt, INSURER_MOBILE)
        .await
        .text()
        .await
        .unwrap();
    assert!(wrong.contains(SENT), "{wrong}");
    assert_eq!(same_parts(&wrong), same_parts(&right));
    let unknown = ask(&browser, "CX20260101-00000000", INSURER_MOBILE).await;
    assert_eq!(unknown.status(), StatusCode::OK);
    assert!(unknown.text().await.unwrap().contains(SENT));

    // Only the right pair was texted.
    gateway.code(1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(gateway.codes().len(), 1);
    let audited = audit_actions(&app, "access.lookup").await;
    assert_eq!(
        audited.iter().filter(|(o, _)| o == "denied").count(),
        2,
        "{audited:?}"
    );

    // Malformed input is marked on its field (which says nothing of any application).
    let res = ask(&browser, "12345", "138").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert!(page.contains(r#"aria-invalid="true""#), "{page}");
}

#[tokio::test]
async fn five_wrong_codes_end_the_code_and_a_new_one_can_be_asked_for() {
    let gateway = Gateway::start().await;
    let app = app_with(&gateway).await;
    let (old, receipt) = filed(&app, "2026-找回-4").await;
    let browser = app.with_client(client());
    ask(&browser, &receipt, INSURER_MOBILE).await;
    let code = gateway.code(1).await["params"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut pages = Vec::new();
    for _ in 0..5 {
        let res = enter(&browser, &receipt, wrong).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        pages.push(same_parts(&res.text().await.unwrap()));
    }
    assert!(pages[0].contains("验证码不正确或已失效"), "{}", pages[0]);
    // The right code, sixth: too late.
    let res = enter(&browser, &receipt, &code).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(same_parts(&res.text().await.unwrap()), pages[0]);
    assert_eq!(
        app.get(&old).await.status(),
        StatusCode::OK,
        "the link is unchanged"
    );

    // A code asked for again works.
    ask(&browser, &receipt, INSURER_MOBILE).await;
    let second = gateway.code(2).await["params"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = enter(&browser, &receipt, &second).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get(&old).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_form_cannot_spam_a_phone_or_serve_to_guess_from_one_address() {
    let gateway = Gateway::start().await;
    let app = app_with(&gateway).await;
    let (_, receipt) = filed(&app, "2026-找回-5").await;
    let browser = app.with_client(client());
    // Three codes an hour for an application; a fourth request answers alike and texts nothing.
    for _ in 0..4 {
        let page = ask(&browser, &receipt, INSURER_MOBILE)
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains(SENT), "{page}");
    }
    gateway.code(3).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(gateway.codes().len(), 3);
    // Ten requests an hour from one address: the eleventh is refused, whatever it names.
    for _ in 4..10 {
        ask(&browser, "CX20260101-00000000", INSURER_MOBILE).await;
    }
    let res = ask(&browser, "CX20260101-00000000", INSURER_MOBILE).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let page = res.text().await.unwrap();
    assert!(page.contains("北京时间"), "says until when: {page}");
}

#[tokio::test]
async fn without_an_sms_gateway_no_form_is_offered_and_the_ways_back_are_named() {
    let app = spawn_app().await;
    let (_, receipt) = filed(&app, "2026-找回-6").await;
    let browser = app.with_client(client());
    let mine = browser.get("/apply/mine").await.text().await.unwrap();
    assert!(!mine.contains(r#"href="/apply/find""#), "{mine}");
    assert!(mine.contains("本站未开通短信"), "{mine}");
    let page = browser.get("/apply/find").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        !page.contains(r#"name="receipt_no""#) && !page.contains(r#"name="code""#),
        "{page}"
    );
    assert!(
        page.contains("本站未开通短信") && page.contains("交警大队"),
        "{page}"
    );
    // A post made anyway sends nothing and promises nothing.
    let csrf = browser.csrf_from("/login").await;
    let res = browser
        .post_form(
            "/apply/find",
            &[
                ("csrf_token", &csrf),
                ("receipt_no", &receipt),
                ("mobile", INSURER_MOBILE),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.text().await.unwrap().contains(SENT));
    assert!(
        outbox::Entity::find()
            .all(&app.state.db)
            .await
            .unwrap()
            .is_empty()
    );
}
