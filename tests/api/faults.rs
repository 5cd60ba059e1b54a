//! Faults through the running server: a database that cannot write in time and an object store
//! that stops answering are answered 503 with `Retry-After` within their deadlines (never a 500
//! after a long hang, never bytes without a durable event), and the instance recovers by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, TransactionTrait};

use crate::cases::served_case;
use crate::helpers::{TestApp, assert_status, header, spawn_app_with};
use crate::materials::{PDF, decide, uploaded};

/// A served case with one released PDF: (staff, party, case, material, download URL).
async fn released(app: &TestApp, number: &str) -> (TestApp, TestApp, String, String, String) {
    let (staff, party, case) = served_case(app, number).await;
    let id = uploaded(&staff, &case, "survey_record", "勘查笔录", "r.pdf", PDF).await;
    decide(&staff, &case, &id, "release", &[]).await;
    let url = format!("{}/cases/{case}/materials/{id}/download", app.address);
    (staff, party, case, id, url)
}

/// Another writer holds the database's write lock (SQLite) or the chain head's row lock
/// (PostgreSQL) longer than the 1 s database deadline: a download cannot be audited, so it is
/// refused with 503 and `Retry-After` in about that time, sending nothing; once the lock goes,
/// the next download works without a restart.
#[tokio::test]
async fn a_database_that_cannot_write_in_time_is_a_quick_503_and_recovers() {
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_DB_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let (_, party, _, _, url) = released(&app, "2026-F01").await;
    let db_url = app
        .env
        .get("PORTAL_DATABASE_URL")
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/portal.db", app.env["PORTAL_DATA_DIR"]));
    let other = sea_orm::Database::connect(&db_url).await.unwrap();
    let txn = other.begin().await.unwrap();
    txn.execute_unprepared("UPDATE audit_chain_head SET seq = seq WHERE id = 1")
        .await
        .unwrap();

    let started = Instant::now();
    let res = party.client.get(&url).send().await.unwrap();
    let took = started.elapsed();
    assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!header(&res, "retry-after").is_empty());
    assert!(took < Duration::from_secs(8), "{took:?}");
    let body = res.bytes().await.unwrap();
    assert!(
        !body.windows(PDF.len()).any(|w| w == PDF),
        "no evidence byte"
    );

    txn.rollback().await.unwrap();
    let res = party.client.get(&url).send().await.unwrap();
    assert_status(&res, StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().as_ref(), PDF);
}

/// A TCP proxy in front of the S3 server that can be made to hang: it accepts connections and
/// never answers, as a frozen store does.
async fn hanging_proxy(upstream: String) -> (String, Arc<AtomicBool>) {
    let hang = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let flag = hang.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let hang = flag.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if hang.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_secs(120)).await;
                    return;
                }
                if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (address, hang)
}

/// The object store stops answering (S3 leg only; the local directory cannot hang): a
/// download, a bundle and an upload each answer 503 with `Retry-After` within the 2 s store
/// deadline plus a little, the download's access is recorded as failed, and all work again
/// once the store answers — without a restart.
#[tokio::test]
async fn a_hung_store_is_a_quick_503_and_recovers() {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT") else {
        eprintln!(
            "skipped: the store is a local directory (set PORTAL_TEST_STORE_URL and AWS_ENDPOINT)"
        );
        return;
    };
    if std::env::var("PORTAL_TEST_STORE_URL").is_err() {
        eprintln!("skipped: no S3 store in this leg");
        return;
    }
    let (proxy, hang) = hanging_proxy(endpoint).await;
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_STORE_TIMEOUT_SECONDS".into(), "2".into());
        env.insert("TEST_STORE_ENDPOINT".into(), proxy.clone());
    })
    .await;
    let (staff, party, case, _, url) = released(&app, "2026-F02").await;

    hang.store(true, Ordering::SeqCst);
    for target in [
        url.clone(),
        format!("{}/cases/{case}/bundle.zip", app.address),
    ] {
        let started = Instant::now();
        let res = party.client.get(&target).send().await.unwrap();
        let took = started.elapsed();
        assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!header(&res, "retry-after").is_empty());
        assert!(took < Duration::from_secs(9), "{target}: {took:?}");
    }
    let started = Instant::now();
    let res = crate::materials::upload(&staff, &case, "other", "x", "x.pdf", PDF).await;
    assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(9));
    let failed = crate::auth::events(&app, "transfer.end").await;
    assert!(
        failed
            .iter()
            .any(|e| e.outcome == "failed" && e.details.contains("\"bytes_sent\":0")),
        "{failed:?}"
    );

    hang.store(false, Ordering::SeqCst);
    let res = party.client.get(&url).send().await.unwrap();
    assert_status(&res, StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().as_ref(), PDF);
}
