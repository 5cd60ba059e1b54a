//! Telephone numbers and e-mail addresses encrypted at rest (issue 36): whatever people gave
//! (an account's channels, a party's number as the brigade took it down, an application's
//! contact, the outbox) is found nowhere in the database in clear — every column of every table
//! is searched as text — while SMS still reach them, sign-in by mobile number still works and
//! rows written in clear before the upgrade are sealed when the portal starts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use evidence_portal::db::entities::{access_application, account, case_party, outbox};
use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    Statement,
};

use crate::applications::{INSURER_MOBILE, approve, brigade_on_form, insurer_signed_in};
use crate::auth::{PASSWORD, sign_in};
use crate::cases::served_case;
use crate::helpers::{
    TestApp, assert_status, client, csrf_in, csrf_in_action, header, spawn_with_env, test_env,
};
use crate::materials::{PDF, decide, uploaded};

/// A stand-in SMS gateway that accepts every message and keeps what it was sent.
struct Gateway {
    url: String,
    received: Arc<Mutex<Vec<serde_json::Value>>>,
    _handle: actix_web::dev::ServerHandle,
}

impl Gateway {
    async fn start() -> Gateway {
        let received = Arc::new(Mutex::new(Vec::new()));
        let r = received.clone();
        let server = HttpServer::new(move || {
            let r = r.clone();
            App::new().route(
                "/sms",
                web::post().to(move |body: web::Bytes| {
                    let r = r.clone();
                    async move {
                        let body = serde_json::from_slice(&body).unwrap_or_default();
                        r.lock().unwrap().push(body);
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

    /// Waits (at most 15 s) for an SMS of `template` to `phone`.
    async fn texted(&self, template: &str, phone: &str) -> serde_json::Value {
        for _ in 0..150 {
            let got = self.received.lock().unwrap().clone();
            if let Some(m) = got
                .into_iter()
                .find(|m| m["template"] == template && m["phone"] == phone)
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no {template} to {phone}: {:?}",
            self.received.lock().unwrap()
        );
    }
}

/// The variables of an instance that texts through `gateway` (looking every second) and
/// writes e-mail deliveries (to a mail server that is not there: they wait in the outbox).
fn with_channels(env: &mut std::collections::HashMap<String, String>, gateway: &Gateway) {
    env.insert("PORTAL_SMS_URL".into(), gateway.url.clone());
    env.insert(
        "PORTAL_SMS_SECRET".into(),
        "stand-in-gateway-secret-2026".into(),
    );
    env.insert("PORTAL_NOTIFY_TIMEOUT_SECONDS".into(), "1".into());
    env.insert("PORTAL_NOTIFY_SECONDS".into(), "1".into());
    env.insert("PORTAL_SMTP_URL".into(), "smtp://127.0.0.1:9".into());
    env.insert(
        "PORTAL_MAIL_FROM".into(),
        "交通事故证据公开 <noreply@evidence.example.gov.cn>".into(),
    );
}

/// Every (table, column) of the database, from its catalog.
async fn all_columns(db: &DatabaseConnection) -> Vec<(String, String)> {
    let backend = db.get_database_backend();
    let rows = |sql: &str| db.query_all_raw(Statement::from_string(backend, sql.to_owned()));
    let mut out = Vec::new();
    if backend == DbBackend::Sqlite {
        let tables = rows("SELECT name FROM sqlite_master WHERE type = 'table'")
            .await
            .unwrap();
        for t in tables {
            let table: String = t.try_get("", "name").unwrap();
            for c in rows(&format!("PRAGMA table_info(\"{table}\")"))
                .await
                .unwrap()
            {
                out.push((table.clone(), c.try_get::<String>("", "name").unwrap()));
            }
        }
    } else {
        for r in rows(
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
             WHERE table_schema = current_schema()",
        )
        .await
        .unwrap()
        {
            out.push((r.try_get("", "t").unwrap(), r.try_get("", "c").unwrap()));
        }
    }
    assert!(out.len() > 50, "the catalog lists the tables: {out:?}");
    out
}

/// The `table.column`s where any of `needles` appears, every value read as text.
async fn cells_holding(db: &DatabaseConnection, needles: &[&str]) -> Vec<String> {
    let backend = db.get_database_backend();
    let mut found = Vec::new();
    for (table, column) in all_columns(db).await {
        let any = needles
            .iter()
            .map(|n| format!("CAST(\"{column}\" AS TEXT) LIKE '%{n}%'"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("SELECT COUNT(*) AS n FROM \"{table}\" WHERE {any}");
        let n: i64 = db
            .query_one_raw(Statement::from_string(backend, sql))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "n")
            .unwrap();
        if n > 0 {
            found.push(format!("{table}.{column}"));
        }
    }
    found
}

/// An insurer's application with a mobile number and an e-mail address, filed through the
/// public form: the status page's path.
async fn applies_with(public: &TestApp, case_number: &str, mobile: &str, email: &str) -> String {
    let brigade = brigade_on_form(public, "110105").await;
    let html = public.get("/apply").await.text().await.unwrap();
    let csrf = csrf_in_action(&html);
    let form = reqwest::multipart::Form::new()
        .text("kind", "insurer")
        .text("brigade", brigade)
        .text("case_number", case_number.to_owned())
        .text("applicant_name", "李明")
        .text("organisation", "中国人民财产保险")
        .text("credit_code", "91110000710931141J")
        .text("plate", "京A·12345")
        .text("policy_no", "PDAA202611000001")
        .text("mobile", mobile.to_owned())
        .text("email", email.to_owned())
        .part(
            "proof",
            reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("查询授权书.pdf"),
        );
    let res = public
        .client
        .post(format!("{}/apply?csrf_token={csrf}", public.address))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::SEE_OTHER);
    header(&res, "location").to_owned()
}

const PARTY_MOBILE: &str = "13800138000";
const CHOSEN_MOBILE: &str = "13900139000";
const CHOSEN_EMAIL: &str = "zhang.wei.rest@example.com";
const APPLICANT_MOBILE: &str = "13700002222";
const APPLICANT_EMAIL: &str = "li.ming.rest@example.com";

#[tokio::test]
async fn no_telephone_number_or_e_mail_address_is_stored_in_clear_yet_people_are_reached() {
    let gateway = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path()).await;
    with_channels(&mut env, &gateway);
    let app = spawn_with_env(env, tempfile::tempdir().unwrap()).await;
    // A party registered with the number the brigade took down (texted when served) …
    let (staff, party, case_id) = served_case(&app, "2026-密存-1").await;
    gateway.texted("case.served", PARTY_MOBILE).await;
    // … who then gives another number and an e-mail address of their own.
    let html = party.get("/account").await.text().await.unwrap();
    let res = party
        .post_form(
            "/account/notifications",
            &[
                ("csrf_token", &csrf_in(&html)),
                ("mobile", CHOSEN_MOBILE),
                ("sms", "on"),
                ("email", CHOSEN_EMAIL),
                ("email_on", "on"),
            ],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    let own = party.get("/account").await.text().await.unwrap();
    assert!(
        own.contains(CHOSEN_MOBILE) && own.contains(CHOSEN_EMAIL),
        "shown to their owner, opened"
    );
    let a = uploaded(&staff, &case_id, "scene_diagram", "现场图", "a.pdf", PDF).await;
    decide(&staff, &case_id, &a, "release", &[]).await;
    gateway.texted("material.released", CHOSEN_MOBILE).await;
    // An insurer applies with a number and an address; approved, they are texted, and sign in
    // with the number.
    let public = app.with_client(client());
    let status = applies_with(&public, "2026-密存-1", APPLICANT_MOBILE, APPLICANT_EMAIL).await;
    let until = (time::OffsetDateTime::now_utc().date() + time::Duration::days(30)).to_string();
    let res = approve(&staff, &status, &["scene_diagram"], "view", &until).await;
    assert_status(&res, StatusCode::SEE_OTHER);
    gateway.texted("access.approved", APPLICANT_MOBILE).await;
    insurer_signed_in(&app, &status, APPLICANT_MOBILE).await;
    let again = app.with_client(client());
    let res = sign_in(&again, APPLICANT_MOBILE, PASSWORD).await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_ne!(
        header(&res, "location"),
        "/login",
        "signed in by mobile number"
    );
    // Staff see the deliveries masked.
    let case_page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(case_page.contains("139****9000"), "{case_page}");

    let db = &app.state.db;
    let e_mails = outbox::Entity::find()
        .filter(outbox::Column::Channel.eq("email"))
        .all(db)
        .await
        .unwrap();
    assert!(
        !e_mails.is_empty(),
        "an e-mail delivery waits in the outbox"
    );
    let everything = [
        PARTY_MOBILE,
        CHOSEN_MOBILE,
        CHOSEN_EMAIL,
        APPLICANT_MOBILE,
        APPLICANT_EMAIL,
    ];
    assert_eq!(cells_holding(db, &everything).await, Vec::<String>::new());
    let sealed = account::Entity::find()
        .filter(account::Column::Mobile.is_not_null())
        .all(db)
        .await
        .unwrap();
    assert!(sealed.len() >= 2);
    assert!(
        sealed
            .iter()
            .all(|a| a.mobile.as_deref().unwrap().starts_with("sm4gcm:v1:")),
        "SM4-GCM by default"
    );
}

#[tokio::test]
async fn contacts_kept_in_clear_before_the_upgrade_are_sealed_when_the_portal_starts() {
    let gateway = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path()).await;
    with_channels(&mut env, &gateway);
    // Written under AES-256-GCM, opened after the restart under the default, SM4-GCM.
    env.insert("PORTAL_FIELD_CIPHER".into(), "aes-256-gcm".into());
    let first = spawn_with_env(env.clone(), tempfile::tempdir().unwrap()).await;
    let (staff, _party, _case_id) = served_case(&first, "2026-密存-2").await;
    gateway.texted("case.served", PARTY_MOBILE).await;
    let public = first.with_client(client());
    let status = crate::applications::insurer_applies(&public, "110105", "2026-密存-2").await;
    let until = (time::OffsetDateTime::now_utc().date() + time::Duration::days(30)).to_string();
    let res = approve(&staff, &status, &["scene_diagram"], "view", &until).await;
    assert_status(&res, StatusCode::SEE_OTHER);
    gateway.texted("access.approved", INSURER_MOBILE).await;
    let db = first.state.db.clone();
    let party_row = case_party::Entity::find().one(&db).await.unwrap().unwrap();
    assert!(
        party_row
            .mobile
            .as_deref()
            .unwrap()
            .starts_with("aes256gcm:v1:")
    );
    // As an installation before the upgrade kept them: in clear, no hash.
    account::Entity::update_many()
        .col_expr(account::Column::Mobile, Expr::value(CHOSEN_MOBILE))
        .col_expr(account::Column::Email, Expr::value(CHOSEN_EMAIL))
        .filter(account::Column::Id.eq(party_row.account_id))
        .exec(&db)
        .await
        .unwrap();
    case_party::Entity::update_many()
        .col_expr(case_party::Column::Mobile, Expr::value(PARTY_MOBILE))
        .exec(&db)
        .await
        .unwrap();
    access_application::Entity::update_many()
        .col_expr(
            access_application::Column::Mobile,
            Expr::value(INSURER_MOBILE),
        )
        .col_expr(
            access_application::Column::MobileHash,
            Expr::value(None::<String>),
        )
        .col_expr(
            access_application::Column::Email,
            Expr::value(APPLICANT_EMAIL),
        )
        .exec(&db)
        .await
        .unwrap();
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Address, Expr::value(PARTY_MOBILE))
        .filter(outbox::Column::Channel.eq("sms"))
        .exec(&db)
        .await
        .unwrap();
    let clear = [
        PARTY_MOBILE,
        CHOSEN_MOBILE,
        CHOSEN_EMAIL,
        INSURER_MOBILE,
        APPLICANT_EMAIL,
    ];
    assert!(!cells_holding(&db, &clear).await.is_empty());
    drop(first);

    env.remove("PORTAL_FIELD_CIPHER");
    let app = spawn_with_env(env, tempfile::tempdir().unwrap()).await;
    assert_eq!(
        cells_holding(&app.state.db, &clear).await,
        Vec::<String>::new()
    );
    let application = access_application::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert!(application.mobile.starts_with("sm4gcm:v1:"));
    assert_eq!(
        application.mobile_hash,
        Some(
            app.state
                .key
                .contact_hash(evidence_portal::keys::Contact::Mobile, INSURER_MOBILE)
        )
    );
    // What was sealed before the upgrade under AES-256-GCM stays as it was and opens.
    let key = &app.state.key;
    assert_eq!(
        key.open_contact(evidence_portal::keys::Contact::Mobile, &application.mobile)
            .as_deref(),
        Some(INSURER_MOBILE)
    );
    // The applicant activates their account and signs in by their number after the restart.
    insurer_signed_in(&app, &status, INSURER_MOBILE).await;
    let res = sign_in(&app.with_client(client()), INSURER_MOBILE, PASSWORD).await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_ne!(header(&res, "location"), "/login");
    // Started again: nothing more to seal, nothing changed.
    let before = access_application::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let sealed = evidence_portal::db::contacts::seal_clear(&app.state.db, &app.state.key)
        .await
        .unwrap();
    assert_eq!(sealed, 0);
    let after = access_application::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.mobile, after.mobile);
}
