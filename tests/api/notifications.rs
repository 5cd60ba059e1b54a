//! Notifications through the running server: the inbox and its badge, and SMS through a signed
//! HTTP gateway — a local stand-in here that checks the signature and can be made to fail or
//! hang — delivered once, retried after an outage, never carrying a name, an ID or evidence.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use evidence_portal::db::entities::{account, outbox};
use evidence_portal::notifications::{self, Channels, Event, dispatch};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use sha2::Sha256;

use crate::auth::{PASSWORD, activate, events};
use crate::cases::{open_case, registered, set_status, staff_of, today};
use crate::helpers::{TestApp, assert_status, client, csrf_in, header, spawn_app_with};
use crate::materials::{PDF, uploaded};

const SECRET: &str = "stand-in-gateway-secret-2026";
const PARTY_ID: &str = "110101199003070011";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Accept,
    Fail(u16),
    Hang,
}

/// What the stand-in gateway was sent, with whether the signature held.
#[derive(Clone, Debug)]
struct Received {
    body: serde_json::Value,
    key: String,
    signed: bool,
}

struct Gateway {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    mode: Arc<Mutex<Mode>>,
    _handle: actix_web::dev::ServerHandle,
}

impl Gateway {
    async fn start() -> Gateway {
        let received = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mutex::new(Mode::Accept));
        let (r, m) = (received.clone(), mode.clone());
        let server = HttpServer::new(move || {
            let (r, m) = (r.clone(), m.clone());
            App::new().route(
                "/sms",
                web::post().to(move |req: HttpRequest, body: web::Bytes| {
                    let (r, m) = (r.clone(), m.clone());
                    async move { gateway_answer(req, body, r, m).await }
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
            mode,
            _handle: handle,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` signed messages have arrived (at most 15 s).
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..150 {
            let got = self.received();
            if got.iter().filter(|r| r.signed).count() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the gateway received {:?}", self.received());
    }
}

async fn gateway_answer(
    req: HttpRequest,
    body: web::Bytes,
    received: Arc<Mutex<Vec<Received>>>,
    mode: Arc<Mutex<Mode>>,
) -> HttpResponse {
    let get = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    // The signature, computed here independently of the portal's code.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(get("X-Portal-Timestamp").as_bytes());
    mac.update(b"\n");
    mac.update(&body);
    let signed = hex::encode(mac.finalize().into_bytes()) == get("X-Portal-Signature");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let mode = *mode.lock().unwrap();
    if mode == Mode::Hang {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    received.lock().unwrap().push(Received {
        body,
        key: get("Idempotency-Key"),
        signed,
    });
    match mode {
        _ if !signed => HttpResponse::Unauthorized().finish(),
        Mode::Fail(code) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).finish()
        }
        _ => HttpResponse::Ok().json(serde_json::json!({"code": "OK"})),
    }
}

/// An instance that sends SMS through `gateway`, looking every second.
async fn app_with(gateway: &Gateway) -> TestApp {
    app_looking_every(gateway, "1").await
}

/// An instance whose own dispatcher looks only every ten minutes (once at start): the test runs
/// the rounds itself, so no background round races it.
async fn driven_app(gateway: &Gateway) -> TestApp {
    app_looking_every(gateway, "600").await
}

async fn app_looking_every(gateway: &Gateway, seconds: &'static str) -> TestApp {
    let url = gateway.url.clone();
    spawn_app_with(move |env| {
        env.insert("PORTAL_SMS_URL".into(), url);
        env.insert("PORTAL_SMS_SECRET".into(), SECRET.into());
        env.insert("PORTAL_NOTIFY_TIMEOUT_SECONDS".into(), "1".into());
        env.insert("PORTAL_NOTIFY_SECONDS".into(), seconds.into());
    })
    .await
}

/// A case with one registered, activated party (mobile 13800138000, as the brigade took it
/// down); returns (staff, party, case id).
async fn case_with_party(app: &TestApp, number: &str) -> (TestApp, TestApp, String) {
    let staff = staff_of(app, "110105", "wang.li").await;
    let case_id = open_case(&staff, number, false).await;
    let code = registered(&staff, &case_id, "甲", PARTY_ID, "张伟").await;
    let party = app.with_client(client());
    assert_status(
        &activate(&party, PARTY_ID, &code, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
    (staff, party, case_id)
}

async fn deliveries(app: &TestApp) -> Vec<outbox::Model> {
    outbox::Entity::find().all(&app.state.db).await.unwrap()
}

/// The deliveries once every one is recorded as sent (the gateway answers before the dispatcher
/// audits and records, so a test that saw the message waits for the record; at most 10 s).
async fn all_sent(app: &TestApp) -> Vec<outbox::Model> {
    for _ in 0..100 {
        let rows = deliveries(app).await;
        if !rows.is_empty() && rows.iter().all(|d| d.state == "sent") {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not all recorded as sent: {:?}", deliveries(app).await);
}

#[tokio::test]
async fn a_release_and_the_service_reach_the_party_in_the_inbox_and_by_signed_sms() {
    let gateway = Gateway::start().await;
    let app = app_with(&gateway).await;
    let (staff, party, case_id) = case_with_party(&app, "京公交[2026]第00517号").await;
    let a = uploaded(&staff, &case_id, "scene_diagram", "现场图", "a.pdf", PDF).await;
    let b = uploaded(&staff, &case_id, "survey_record", "勘查笔录", "b.pdf", PDF).await;
    // Two materials released at once: one message, saying two.
    let page = format!("/staff/cases/{case_id}");
    let csrf = csrf_in(&staff.get(&page).await.text().await.unwrap());
    let res = staff
        .post_form(
            &format!("{page}/release"),
            &[("csrf_token", &csrf), ("material", &a), ("material", &b)],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    let served_on = today();
    let res = set_status(
        &staff,
        &case_id,
        &[
            ("to", "served"),
            ("service_kind", "determination"),
            ("served_on", &served_on),
        ],
    )
    .await;
    assert_status(&res, StatusCode::SEE_OTHER);

    let got = gateway.wait_for(2).await;
    assert_eq!(got.len(), 2, "one SMS per event: {got:?}");
    let deadline = time::Date::parse(
        &served_on,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap()
    .checked_add(time::Duration::days(3))
    .unwrap()
    .to_string();
    let released = got
        .iter()
        .find(|r| r.body["template"] == "material.released")
        .expect("the release was texted");
    assert_eq!(released.body["phone"], "13800138000");
    assert_eq!(released.body["params"]["count"], 2);
    assert_eq!(released.body["params"]["case"], "京公****517号");
    assert_eq!(released.key, released.body["out_id"].as_str().unwrap());
    let served = got
        .iter()
        .find(|r| r.body["template"] == "case.served")
        .expect("the service was texted");
    assert_eq!(served.body["params"]["deadline"], deadline.as_str());
    assert!(served.body["text"].as_str().unwrap().contains(&deadline));
    for r in &got {
        let all = r.body.to_string();
        assert!(r.signed, "signed with the shared secret");
        for secret in ["张伟", PARTY_ID, "00517", "现场图", "勘查笔录"] {
            assert!(!all.contains(secret), "{secret} in an SMS: {all}");
        }
        assert!(
            all.contains(app.state.settings.public_url.as_str()),
            "the portal's address"
        );
    }
    // Sent, recorded, and audited without the number.
    let rows = all_sent(&app).await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|d| d.state == "sent" && d.attempts == 1));
    let sent = events(&app, "notification.sent").await;
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|e| !e.details.contains("13800138000")));

    // The inbox: a badge with the count, both messages in the party's language, read state.
    let html = party.get("/cases").await.text().await.unwrap();
    assert!(html.contains("消息（2条未读）"), "badge");
    let inbox = party.get("/inbox").await.text().await.unwrap();
    assert!(inbox.contains("有2份证据材料已公开"));
    assert!(
        inbox.contains(&format!("可在{deadline}前申请复核")),
        "{inbox}"
    );
    assert!(inbox.contains(&format!("/cases/{case_id}")));
    let upto = inbox
        .split(r#"name="upto" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("mark-read form")
        .to_owned();
    let res = party
        .post_form(
            "/inbox/read",
            &[("csrf_token", &csrf_in(&inbox)), ("upto", &upto)],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_eq!(header(&res, "location"), "/inbox");
    let html = party.get("/inbox").await.text().await.unwrap();
    assert!(html.contains("已将2条消息标为已读"), "{html}");
    assert!(!html.contains("未读）") && !html.contains(r#"class="unread""#));
    // Another person's message id marks nothing of theirs.
    let staff_inbox = staff.get("/inbox").await.text().await.unwrap();
    assert!(staff_inbox.contains("暂无消息"));
    let html = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        html.matches("短信 138****8000：已发送").count(),
        2,
        "{html}"
    );
}

#[tokio::test]
async fn an_outage_delays_but_loses_nothing_a_hung_gateway_is_cut_off_and_a_refusal_is_final() {
    let gateway = Gateway::start().await;
    let app = driven_app(&gateway).await;
    let senders =
        dispatch::Senders::from_settings(&app.state.settings).with_code_key(app.state.key.clone());
    let (staff, _party, case_id) = case_with_party(&app, "2026-518").await;
    gateway.set(Mode::Fail(503));
    let a = uploaded(&staff, &case_id, "scene_diagram", "现场图", "a.pdf", PDF).await;
    crate::materials::decide(&staff, &case_id, &a, "release", &[]).await;
    dispatch::dispatch_due(&app.state.db, &app.state.audit, &app.state.clock, &senders)
        .await
        .unwrap();
    assert_eq!(gateway.received().len(), 1);
    // Failed once, kept for later with the reason; audited as a failed attempt to retry.
    let row = deliveries(&app).await.remove(0);
    assert_eq!((row.state.as_str(), row.attempts), ("pending", 1));
    assert_eq!(row.last_error.as_deref(), Some("gateway answered 503"));
    let failed = events(&app, "notification.failed").await;
    assert_eq!(failed.len(), 1);
    assert!(failed[0].details.contains(r#""will_retry":true"#));

    // The gateway hangs: the attempt is cut off after the deadline (1 s here), not waited on.
    gateway.set(Mode::Hang);
    app.state
        .clock
        .set(app.state.clock.now() + time::Duration::minutes(2));
    let t0 = std::time::Instant::now();
    dispatch::dispatch_due(&app.state.db, &app.state.audit, &app.state.clock, &senders)
        .await
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let row = deliveries(&app).await.remove(0);
    assert_eq!(row.state, "pending");
    assert_eq!(
        row.last_error.as_deref(),
        Some("gateway did not answer in time")
    );

    // Back: the next due round sends it, with the same idempotency key every time.
    gateway.set(Mode::Accept);
    app.state
        .clock
        .set(app.state.clock.now() + time::Duration::minutes(5));
    dispatch::dispatch_due(&app.state.db, &app.state.audit, &app.state.clock, &senders)
        .await
        .unwrap();
    let row = deliveries(&app).await.remove(0);
    assert_eq!(row.state, "sent");
    let got = gateway.received();
    let keys: std::collections::BTreeSet<&str> = got.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), 1, "one message, one key: {got:?}");
    assert_eq!(events(&app, "notification.sent").await.len(), 1);

    // A refusal by the gateway (a wrong number) is final at once, and says why.
    gateway.set(Mode::Fail(400));
    let b = uploaded(&staff, &case_id, "survey_record", "勘查笔录", "b.pdf", PDF).await;
    crate::materials::decide(&staff, &case_id, &b, "release", &[]).await;
    dispatch::dispatch_due(&app.state.db, &app.state.audit, &app.state.clock, &senders)
        .await
        .unwrap();
    let mut rows = deliveries(&app).await;
    rows.sort_by_key(|d| d.created_at);
    let last = rows.last().unwrap();
    assert_eq!(last.state, "failed");
    assert_eq!(last.last_error.as_deref(), Some("gateway answered 400"));

    // Staff see where each message stands on the case page; administrators see what failed.
    let html = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("短信 138****8000：已发送"), "{html}");
    assert!(
        html.contains("短信 138****8000：发送失败（gateway answered 400，共1次），请电话告知"),
        "{html}"
    );
    assert!(html.contains(r#"class="alert-row""#));
    let admin = crate::auth::admin(&app).await;
    let html = admin.get("/admin").await.text().await.unwrap();
    assert!(html.contains("未能送达的通知"));
    assert!(html.contains("发送失败（gateway answered 400"), "{html}");
    assert_eq!(html.matches("请电话告知").count(), 1, "only the failed one");
}

#[tokio::test]
async fn two_instances_sharing_one_outbox_send_each_message_exactly_once() {
    let gateway = Gateway::start().await;
    let a = app_with(&gateway).await;
    // The second instance: the same database (and, on SQLite, the same file).
    let mut env = a.env.clone();
    env.entry("PORTAL_DATABASE_URL".into())
        .or_insert_with(|| format!("sqlite://{}/portal.db?mode=rwc", a.env["PORTAL_DATA_DIR"]));
    let b = crate::helpers::spawn_with_env(env, tempfile::tempdir().unwrap()).await;
    let (_staff, _party, case_id) = case_with_party(&a, "2026-519").await;
    let case_id: uuid::Uuid = case_id.parse().unwrap();
    let case = evidence_portal::db::entities::case::Entity::find_by_id(case_id)
        .one(&a.state.db)
        .await
        .unwrap()
        .unwrap();
    let party = account::Entity::find()
        .filter(account::Column::LoginMasked.eq("1101**********0011"))
        .one(&a.state.db)
        .await
        .unwrap()
        .unwrap();
    const N: u32 = 40;
    let now = a.state.clock.now();
    let txn = a.state.db.begin().await.unwrap();
    for count in 1..=N {
        notifications::notify(
            &txn,
            Channels {
                sms: true,
                email: false,
            },
            std::slice::from_ref(&party),
            Some(&case),
            &Event::MaterialReleased { count },
            now,
        )
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    // Both instances' dispatchers run on their own; two more rounds each, at the same time.
    let (sa, sb) = (
        dispatch::Senders::from_settings(&a.state.settings).with_code_key(a.state.key.clone()),
        dispatch::Senders::from_settings(&b.state.settings).with_code_key(b.state.key.clone()),
    );
    let (ra, rb) = tokio::join!(
        dispatch::dispatch_due(&a.state.db, &a.state.audit, &a.state.clock, &sa),
        dispatch::dispatch_due(&b.state.db, &b.state.audit, &b.state.clock, &sb),
    );
    ra.unwrap();
    rb.unwrap();
    let got = gateway.wait_for(N as usize).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = if got.len() < gateway.received().len() {
        gateway.received()
    } else {
        got
    };
    let mut keys: Vec<&str> = got.iter().map(|r| r.key.as_str()).collect();
    keys.sort();
    let before = keys.len();
    keys.dedup();
    assert_eq!(before, keys.len(), "a message was sent twice");
    assert_eq!(keys.len(), N as usize);
    let rows = all_sent(&a).await;
    assert!(rows.iter().all(|d| d.state == "sent" && d.attempts == 1));
    assert_eq!(events(&a, "notification.sent").await.len(), N as usize);
}

#[tokio::test]
async fn people_choose_their_channels_and_bad_addresses_are_refused_with_the_field_marked() {
    let gateway = Gateway::start().await;
    let app = app_with(&gateway).await;
    let (staff, party, case_id) = case_with_party(&app, "2026-520").await;
    let html = party.get("/account").await.text().await.unwrap();
    assert!(
        html.contains(r#"value="13800138000""#),
        "the brigade's number"
    );
    assert!(html.contains(r#"name="sms" type="checkbox" value="on" checked"#));
    assert!(html.contains("本站暂未开通邮件通知"));
    let csrf = csrf_in(&html);
    let res = party
        .post_form(
            "/account/notifications",
            &[("csrf_token", &csrf), ("mobile", "12345"), ("sms", "on")],
        )
        .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"id="notify-error""#) && html.contains(r#"aria-invalid="true""#));
    assert!(html.contains(r#"value="12345""#), "what was typed is kept");
    for bad in ["zhang wei@example.com", "no-at-sign", "a@b", "a@@b.example"] {
        let res = party
            .post_form(
                "/account/notifications",
                &[("csrf_token", &csrf), ("email", bad), ("email_on", "on")],
            )
            .await;
        assert_status(&res, StatusCode::BAD_REQUEST);
        let html = res.text().await.unwrap();
        assert!(html.contains("电子邮箱地址格式不对"), "{bad}");
        assert!(html.contains(r#"id="email" name="email" type="email""#));
    }
    assert!(
        events(&app, "account.notifications").await.is_empty(),
        "a refused choice changes and records nothing"
    );
    // SMS off: a release reaches the inbox only.
    let res = party
        .post_form(
            "/account/notifications",
            &[("csrf_token", &csrf), ("mobile", "13900139000")],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    let changed = events(&app, "account.notifications").await;
    assert_eq!(changed.len(), 1);
    assert!(changed[0].details.contains("139****9000"));
    assert!(!changed[0].details.contains("13900139000"));
    let a = uploaded(&staff, &case_id, "scene_diagram", "现场图", "a.pdf", PDF).await;
    crate::materials::decide(&staff, &case_id, &a, "release", &[]).await;
    assert!(
        deliveries(&app).await.is_empty(),
        "no SMS chosen, none queued"
    );
    let html = party.get("/inbox").await.text().await.unwrap();
    assert!(html.contains("有1份证据材料已公开"));
    assert!(gateway.received().is_empty());
}

#[tokio::test]
async fn without_a_gateway_nothing_is_queued_and_the_account_page_says_so() {
    let app = crate::helpers::spawn_app().await;
    let (staff, party, case_id) = case_with_party(&app, "2026-521").await;
    let html = party.get("/account").await.text().await.unwrap();
    assert!(html.contains("本站暂未开通短信通知"));
    let a = uploaded(&staff, &case_id, "scene_diagram", "现场图", "a.pdf", PDF).await;
    crate::materials::decide(&staff, &case_id, &a, "release", &[]).await;
    assert!(deliveries(&app).await.is_empty());
    assert!(
        party
            .get("/cases")
            .await
            .text()
            .await
            .unwrap()
            .contains("消息（1条未读）")
    );
}

/// The SMTP server of the test rig: Python's aiosmtpd (from PyPI; `.ci/run` installs it and
/// names it in `PORTAL_TEST_AIOSMTPD`) writing what it receives into a maildir.
struct MailServer {
    port: u16,
    maildir: tempfile::TempDir,
    child: std::process::Child,
}

impl Drop for MailServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MailServer {
    /// Starts one, or `None` outside CI where aiosmtpd is not installed (CI fails instead).
    async fn start() -> Option<MailServer> {
        let program = std::env::var("PORTAL_TEST_AIOSMTPD")
            .ok()
            .filter(|p| !p.is_empty())
            .or_else(|| {
                std::process::Command::new("sh")
                    .args(["-c", "command -v aiosmtpd"])
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            });
        let Some(program) = program else {
            assert!(
                std::env::var("CI").is_err(),
                "aiosmtpd is missing: .ci/run installs it and sets PORTAL_TEST_AIOSMTPD"
            );
            eprintln!("skipped: aiosmtpd is not installed (pip install aiosmtpd)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(&program)
            .args(["-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} does not start: {e}"));
        // Owned at once, so that it is stopped and reaped however this ends.
        let server = MailServer {
            port,
            maildir,
            child,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("aiosmtpd did not listen on {port}");
    }

    /// The messages received so far, each parsed by Python's `email` package as a mail client
    /// would: To, the decoded Subject, Message-ID, then the decoded body.
    fn messages(&self) -> Vec<String> {
        let new = self.maildir.path().join("mail").join("new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        let script = "import email, email.header, sys\n\
            m = email.message_from_binary_file(open(sys.argv[1], 'rb'))\n\
            print(m['To'])\n\
            print(str(email.header.make_header(email.header.decode_header(m['Subject']))))\n\
            print(m['Message-ID'])\n\
            print(m.get_payload(decode=True).decode())";
        entries
            .map(|e| {
                let out = std::process::Command::new("python3")
                    .args(["-c", script])
                    .arg(e.unwrap().path())
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{out:?}");
                String::from_utf8(out.stdout).unwrap()
            })
            .collect()
    }
}

#[tokio::test]
async fn a_party_who_chose_e_mail_receives_the_release_from_a_real_smtp_server() {
    let Some(mail) = MailServer::start().await else {
        return;
    };
    let port = mail.port;
    let app = spawn_app_with(move |env| {
        env.insert("PORTAL_SMTP_URL".into(), format!("smtp://127.0.0.1:{port}"));
        env.insert(
            "PORTAL_MAIL_FROM".into(),
            "交通事故证据公开 <noreply@evidence.example.gov.cn>".into(),
        );
        env.insert("PORTAL_NOTIFY_SECONDS".into(), "1".into());
    })
    .await;
    let (staff, party, case_id) = case_with_party(&app, "京公交[2026]第00522号").await;
    let html = party.get("/account").await.text().await.unwrap();
    assert!(html.contains("本站暂未开通短信通知"), "no gateway here");
    let res = party
        .post_form(
            "/account/notifications",
            &[
                ("csrf_token", &csrf_in(&html)),
                ("email", "zhang.wei@example.com"),
                ("email_on", "on"),
            ],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    let a = uploaded(&staff, &case_id, "scene_diagram", "现场图", "a.pdf", PDF).await;
    crate::materials::decide(&staff, &case_id, &a, "release", &[]).await;
    let mut got = Vec::new();
    for _ in 0..150 {
        got = mail.messages();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got.len(), 1, "one e-mail: {got:?}");
    let message = &got[0];
    assert!(message.starts_with("zhang.wei@example.com\n"), "{message}");
    assert!(
        message.contains("【交通事故证据公开】案件京公****522号有新消息"),
        "{message}"
    );
    assert!(
        message.contains("案件京公****522号：有1份证据材料已公开"),
        "{message}"
    );
    assert!(
        !message.contains("evidence item"),
        "in the party's language alone: {message}"
    );
    for secret in ["张伟", PARTY_ID, "现场图", "00522"] {
        assert!(
            !message.contains(secret),
            "{secret} in the e-mail: {message}"
        );
    }
    let rows = all_sent(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].channel.as_str(), rows[0].state.as_str()),
        ("email", "sent")
    );
    assert!(
        message.contains(&rows[0].idempotency_key),
        "Message-ID carries the key"
    );
    let sent = events(&app, "notification.sent").await;
    assert_eq!(sent.len(), 1);
    assert!(!sent[0].details.contains("zhang.wei"));
}

#[tokio::test]
async fn reminders_and_security_notices_reach_people_once() {
    use evidence_portal::cases::reminders;
    let gateway = Gateway::start().await;
    let app = app_with(&gateway).await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    // Served today, party 甲 registered (13800138000) and not activated yet.
    let (case_id, party_id) = crate::cases::served_case_with_party(&staff).await;
    let start = app.state.clock.now();
    let in_four_days =
        (start.to_offset(time::macros::offset!(+8)).date() + time::Duration::days(4)).to_string();
    let res = crate::cases::grant(
        &staff,
        &case_id,
        &party_id,
        &in_four_days,
        Some(("授权委托书.pdf", PDF)),
    )
    .await;
    assert_status(&res, StatusCode::OK);

    // Two days on, the review period ends tomorrow and the agency within three days: each
    // reminder once, however often (and by however many instances) the scan runs.
    app.state.clock.set(start + time::Duration::days(2));
    let channels = app.state.channels;
    let written = reminders::scan(&app.state.db, channels, app.state.clock.now())
        .await
        .unwrap();
    assert_eq!(written, 4, "review and agency, to the party and the agent");
    let again = reminders::scan(&app.state.db, channels, app.state.clock.now())
        .await
        .unwrap();
    assert_eq!(again, 0, "nobody is reminded twice");
    // Near the end of the access codes' fortnight, both unused codes.
    app.state
        .clock
        .set(start + time::Duration::days(13) + time::Duration::hours(12));
    let written = reminders::scan(&app.state.db, channels, app.state.clock.now())
        .await
        .unwrap();
    assert_eq!(written, 2, "the party's and the agent's codes");

    // A reset is a security notice to the person.
    let party = account::Entity::find()
        .filter(account::Column::LoginMasked.eq("1101**********0011"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    evidence_portal::accounts::reset(
        &app.state.db,
        &app.state.key,
        &app.state.audit,
        channels,
        evidence_portal::accounts::ResetBy {
            actor: evidence_portal::audit::Actor::SYSTEM,
            label: "系统管理员".into(),
            reason: "当事人申请".into(),
        },
        party.id,
    )
    .await
    .unwrap();

    // With the service of the determination, told to the party at the start.
    let got = gateway.wait_for(10).await;
    let count = |template: &str, phone: &str| {
        got.iter()
            .filter(|r| r.body["template"] == template && r.body["phone"] == phone)
            .count()
    };
    for phone in ["13800138000", crate::cases::AGENT_MOBILE] {
        assert_eq!(count("delegation.registered", phone), 1, "{phone}: {got:?}");
        assert_eq!(count("review.closing", phone), 1, "{phone}");
        assert_eq!(count("delegation.ending", phone), 1, "{phone}");
        assert_eq!(count("code.expiring", phone), 1, "{phone}");
    }
    assert_eq!(count("account.reset", "13800138000"), 1);
    assert_eq!(count("case.served", "13800138000"), 1);
    assert_eq!(got.len(), 10, "{got:?}");
    let closing = got
        .iter()
        .find(|r| r.body["template"] == "review.closing")
        .unwrap();
    let deadline =
        (start.to_offset(time::macros::offset!(+8)).date() + time::Duration::days(3)).to_string();
    assert_eq!(closing.body["params"]["deadline"], deadline.as_str());
    assert!(closing.body["text"].as_str().unwrap().contains("明天"));
    for r in &got {
        let all = r.body.to_string();
        for secret in ["张伟", "赵律师", "北京某某律师事务所"] {
            assert!(!all.contains(secret), "{secret} in an SMS: {all}");
        }
    }
}

#[tokio::test]
async fn a_delivery_left_claimed_by_a_dead_instance_is_sent_after_its_lease_with_the_same_key() {
    use sea_orm::ActiveModelTrait;
    let gateway = Gateway::start().await;
    let app = driven_app(&gateway).await;
    let (staff, _party, case_id) = case_with_party(&app, "2026-531").await;
    // The background round at start-up has run; from here the test runs the rounds.
    let a = uploaded(&staff, &case_id, "scene_diagram", "现场图", "a.pdf", PDF).await;
    crate::materials::decide(&staff, &case_id, &a, "release", &[]).await;
    // An instance claimed the row, then died before sending or recording anything.
    let row = deliveries(&app).await.remove(0);
    let key = row.idempotency_key.clone();
    let now = app.state.clock.now();
    let mut claimed: outbox::ActiveModel = row.into();
    claimed.claimed_until = sea_orm::Set(Some(now + dispatch::LEASE));
    claimed.attempts = sea_orm::Set(1);
    claimed.update(&app.state.db).await.unwrap();

    let senders =
        dispatch::Senders::from_settings(&app.state.settings).with_code_key(app.state.key.clone());
    let round =
        || dispatch::dispatch_due(&app.state.db, &app.state.audit, &app.state.clock, &senders);
    assert_eq!(
        round().await.unwrap(),
        0,
        "still leased: nobody else sends it"
    );
    assert!(gateway.received().is_empty());
    app.state
        .clock
        .set(now + dispatch::LEASE + time::Duration::seconds(1));
    assert_eq!(round().await.unwrap(), 1, "the lease ran out: sent now");
    let got = gateway.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].key, key,
        "with the key the dead instance would have used"
    );
    let row = deliveries(&app).await.remove(0);
    assert_eq!((row.state.as_str(), row.attempts), ("sent", 2));
}

/// The first signed message of `template` the gateway receives (at most 15 s).
async fn texted(gateway: &Gateway, template: &str) -> Received {
    for _ in 0..150 {
        if let Some(r) = gateway
            .received()
            .into_iter()
            .find(|r| r.signed && r.body["template"] == template)
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {template}: {:?}", gateway.received());
}

/// An insurer's application to the case, filed through /apply by `public`'s browser (in the
/// language it reads the portal in): the status page's path.
async fn applies_in(public: &TestApp, case_number: &str) -> String {
    use crate::applications::{brigade_on_form, insurer_form};
    let brigade = brigade_on_form(public, "110105").await;
    let html = public.get("/apply").await.text().await.unwrap();
    let csrf = crate::helpers::csrf_in_action(&html);
    let res = public
        .client
        .post(format!("{}/apply?csrf_token={csrf}", public.address))
        .multipart(insurer_form(&brigade, case_number, Some(PDF)))
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::SEE_OTHER);
    header(&res, "location").to_owned()
}

/// Staff approve the application of `status`; the page they are sent back to, with its
/// confirmation.
async fn approved(staff: &TestApp, status: &str) -> String {
    let until = (today_date() + time::Duration::days(30)).to_string();
    let res = crate::applications::approve(staff, status, &["scene_diagram"], "view", &until).await;
    assert_status(&res, StatusCode::SEE_OTHER);
    staff
        .get(header(&res, "location"))
        .await
        .text()
        .await
        .unwrap()
}

fn today_date() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
}

#[tokio::test]
async fn without_a_gateway_nobody_is_promised_an_sms_and_the_officer_is_not_told_one_was_sent() {
    let app = crate::helpers::spawn_app().await;
    let (staff, _party, case_id) = crate::cases::served_case(&app, "2026-告知-1").await;
    let public = app.with_client(client());
    let form = public.get("/apply").await.text().await.unwrap();
    assert!(
        form.contains("审核结果不会以短信或邮件通知：提交后请收藏申请进度页面"),
        "{form}"
    );
    assert!(
        !form.contains("短信发") && !form.contains("以短信通知"),
        "{form}"
    );
    let status = applies_in(&public, "2026-告知-1").await;
    let page = public.get(&status).await.text().await.unwrap();
    assert!(
        page.contains(r#"<p id="pending-hint">交警大队正在审核。结果不会以短信或邮件通知您"#),
        "{page}"
    );

    let page = approved(&staff, &status).await;
    assert!(
        page.contains("未发送短信或邮件：申请人可通过申请进度页面查看结果"),
        "{page}"
    );
    assert!(
        !page.contains("短信通知") && !page.contains("已通知申请人"),
        "{page}"
    );
    assert!(deliveries(&app).await.is_empty());
    // Where the message stands: in an inbox its applicant cannot open yet, and nowhere else.
    let case_page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        case_page.contains("站内消息：账户未激活，尚不能查看 · 未发短信或邮件"),
        "{case_page}"
    );
    // The applicant, once activated, reads in the inbox what happened.
    let insurer =
        crate::applications::insurer_signed_in(&app, &status, crate::applications::INSURER_MOBILE)
            .await;
    let inbox = insurer.get("/inbox").await.text().await.unwrap();
    assert!(
        inbox.contains("您的查询申请CX") && inbox.contains("已批准"),
        "{inbox}"
    );
    assert!(!inbox.contains("有新进展"), "{inbox}");
}

#[tokio::test]
async fn with_a_gateway_sms_is_promised_sent_in_one_chinese_segment_and_confirmed_to_the_officer() {
    let gateway = Gateway::start().await;
    let app = app_with(&gateway).await;
    let (staff, _party, case_id) = crate::cases::served_case(&app, "2026-告知-2").await;
    let public = app.with_client(client());
    let form = public.get("/apply").await.text().await.unwrap();
    assert!(
        form.contains("审核结果会以短信发到您填写的手机号码"),
        "{form}"
    );
    let status = applies_in(&public, "2026-告知-2").await;
    let page = public.get(&status).await.text().await.unwrap();
    assert!(
        page.contains("结果会以短信通知您，也会显示在本页"),
        "{page}"
    );

    let page = approved(&staff, &status).await;
    assert!(page.contains("已通过短信通知申请人领取查询凭证"), "{page}");
    let sms = texted(&gateway, "access.approved").await;
    assert_eq!(sms.body["phone"], crate::applications::INSURER_MOBILE);
    assert_eq!(sms.body["lang"], "zh-CN");
    let text = sms.body["text"].as_str().unwrap();
    assert!(
        text.contains("已批准") && text.contains("领取凭证"),
        "{text}"
    );
    assert!(
        !text.contains("approved") && !text.contains(" ("),
        "Chinese alone: {text}"
    );
    assert_eq!(notifications::sms_segments(text), 1, "{text}");
    let case_page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        case_page.contains("站内消息：账户未激活，尚不能查看 · 短信 137****1111："),
        "{case_page}"
    );
}

#[tokio::test]
async fn an_sms_to_someone_who_uses_the_portal_in_english_is_in_english_alone() {
    let gateway = Gateway::start().await;
    let app = app_with(&gateway).await;
    let (staff, party, case_id) = case_with_party(&app, "京公交[2026]第00533号").await;
    let language = |app: &TestApp| {
        let db = app.state.db.clone();
        async move {
            account::Entity::find()
                .filter(account::Column::LoginMasked.eq("1101**********0011"))
                .one(&db)
                .await
                .unwrap()
                .unwrap()
                .language
        }
    };
    // Signed in, the party switches to English: their messages follow.
    let res = party.get("/language?to=en&next=/cases").await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_eq!(language(&app).await.as_deref(), Some("en"));
    let a = uploaded(&staff, &case_id, "scene_diagram", "现场图", "a.pdf", PDF).await;
    crate::materials::decide(&staff, &case_id, &a, "release", &[]).await;
    let sms = texted(&gateway, "material.released").await;
    assert_eq!(sms.body["lang"], "en");
    let text = sms.body["text"].as_str().unwrap();
    assert!(text.contains("1 evidence item(s) released"), "{text}");
    let words = text
        .replacen(notifications::SIGNATURE, "", 1)
        .replace("京公****533号", "");
    assert!(
        !words
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "no Chinese but the signature and the case number: {text}"
    );
    assert_eq!(notifications::sms_segments(text), 1, "{text}");

    // Switched back, then signed in again from a browser set to English: English again.
    party.get("/language?to=zh-CN&next=/cases").await;
    assert_eq!(language(&app).await.as_deref(), Some("zh-CN"));
    let browser = app.with_client(client());
    browser.get("/language?to=en&next=/login").await;
    assert_eq!(
        language(&app).await.as_deref(),
        Some("zh-CN"),
        "not signed in"
    );
    crate::auth::sign_in(&browser, PARTY_ID, PASSWORD).await;
    assert_eq!(language(&app).await.as_deref(), Some("en"));

    // An applicant who applied in English is told in English.
    let applicant = app.with_client(client());
    applicant.get("/language?to=en&next=/apply").await;
    let form = applicant.get("/apply").await.text().await.unwrap();
    assert!(
        form.contains("The outcome is texted to the mobile number you give"),
        "{form}"
    );
    let status = applies_in(&applicant, "京公交[2026]第00533号").await;
    approved(&staff, &status).await;
    let sms = texted(&gateway, "access.approved").await;
    assert_eq!(sms.body["lang"], "en");
    let text = sms.body["text"].as_str().unwrap();
    assert!(
        text.contains("approved: voucher on your status page"),
        "{text}"
    );
    assert!(!text.contains("已批准"), "{text}");
}
