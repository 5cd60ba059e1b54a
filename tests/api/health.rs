//! Probes, metrics and the behaviour of a running instance when a dependency goes away.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_status, spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_says_alive() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_status(&res, StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "alive");
}

#[tokio::test]
async fn readyz_is_ready_when_database_and_store_answer() {
    let app = spawn_app().await;
    let res = app.get("/readyz").await;
    assert_status(&res, StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert!(body.get("failing").is_none());
}

#[tokio::test]
async fn readyz_names_the_store_when_the_object_directory_is_gone() {
    // Always a local directory here, whatever the run's backend: it is the one store a test can
    // take away from a running instance.
    let objects = tempfile::tempdir().unwrap();
    let root = objects.path().join("objects");
    let root_for_env = root.display().to_string();
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_STORE_URL".into(), root_for_env);
    })
    .await;
    assert_status(&app.get("/readyz").await, StatusCode::OK);

    std::fs::remove_dir_all(&root).unwrap();
    std::fs::write(&root, b"no longer a directory").unwrap();

    let res = app.get("/readyz").await;
    assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["failing"], serde_json::json!(["store"]));
}

#[tokio::test]
async fn readyz_names_the_database_when_it_stops_answering() {
    let app = spawn_app().await;
    assert_status(&app.get("/readyz").await, StatusCode::OK);

    app.state.db.close_by_ref().await.unwrap();

    let res = app.get("/readyz").await;
    assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["failing"], serde_json::json!(["database"]));
    // Liveness is about the process, not its dependencies.
    assert_status(&app.get("/healthz").await, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_served_on_their_own_address_only() {
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_METRICS_BIND".into(), "127.0.0.1:0".into());
    })
    .await;
    let metrics = app.metrics_address.clone().expect("metrics listener bound");
    assert_status(&app.get("/").await, StatusCode::OK);
    assert_status(&app.get("/no-such-page").await, StatusCode::NOT_FOUND);

    let text = app
        .client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"portal_http_requests_total{method="GET",route="/",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(
        text.contains("portal_http_request_duration_seconds_bucket"),
        "{text}"
    );
    let sent = text
        .lines()
        .find(|l| l.starts_with(r#"portal_http_response_bytes_total{route="/"}"#))
        .expect("bytes sent for the landing page");
    let bytes: u64 = sent.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(bytes > 1000, "{sent}");

    // Never on the public address.
    assert_status(&app.get("/metrics").await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn two_instances_start_together_on_one_database() {
    use crate::helpers::{spawn_with_env, test_env};
    let dir = tempfile::tempdir().unwrap();
    let env = test_env(dir.path()).await;
    let (a, b) = tokio::join!(
        spawn_with_env(env.clone(), tempfile::tempdir().unwrap()),
        spawn_with_env(env.clone(), tempfile::tempdir().unwrap())
    );
    assert_status(&a.get("/readyz").await, StatusCode::OK);
    assert_status(&b.get("/readyz").await, StatusCode::OK);
}
