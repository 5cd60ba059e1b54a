//! The public pages, error pages, security headers and static assets, as a browser sees them.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_status, header, spawn_app};

#[tokio::test]
async fn landing_page_explains_the_service_in_chinese() {
    let app = spawn_app().await;
    let res = app.get("/").await;
    assert_status(&res, StatusCode::OK);
    assert!(header(&res, "content-type").starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"<html lang="zh-CN">"#));
    assert!(html.contains("交通事故证据材料网上查阅"));
    assert!(html.contains("访问码"), "tells how a party gets access");
    assert!(html.contains("复核"), "tells about the review deadline");
    assert!(
        !html.contains("style="),
        "no inline styles: the CSP forbids them"
    );
    assert!(!html.contains("<script>"), "no inline scripts");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/", "/healthz", "/no-such-page"] {
        let res = app.get(path).await;
        let csp = header(&res, "content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        assert_eq!(header(&res, "referrer-policy"), "no-referrer");
        assert_eq!(header(&res, "cache-control"), "no-store", "{path}");
        assert_eq!(header(&res, "x-request-id").len(), 32, "{path}");
    }
}

#[tokio::test]
async fn unknown_pages_get_a_404_page_or_json_by_accept() {
    let app = spawn_app().await;
    let res = app.get("/no/such/page").await;
    assert_status(&res, StatusCode::NOT_FOUND);
    let request_id = header(&res, "x-request-id").to_owned();
    let html = res.text().await.unwrap();
    assert!(html.contains("页面不存在"));
    assert!(html.contains("not_found"), "the stable code is on the page");
    assert!(html.contains(&request_id), "the request id is on the page");

    let res = app.get_json("/no/such/page").await;
    assert_status(&res, StatusCode::NOT_FOUND);
    assert!(header(&res, "content-type").starts_with("application/json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(body["error"]["request_id"].as_str().unwrap().len(), 32);
}

#[tokio::test]
async fn wrong_methods_get_a_405_with_a_stable_code() {
    let app = spawn_app().await;
    // With a valid CSRF token, so that the method, not the missing token, is what is refused.
    let csrf = app.csrf_from("/login").await;
    let res = app.post_form("/", &[("csrf_token", &csrf)]).await;
    assert_status(&res, StatusCode::METHOD_NOT_ALLOWED);
    assert!(res.text().await.unwrap().contains("method_not_allowed"));

    let res = app
        .client
        .delete(format!("{}/readyz", app.address))
        .header("Accept", "application/json")
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn head_requests_answer_like_get_without_a_body() {
    let app = spawn_app().await;
    let res = app
        .client
        .head(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::OK);
    assert!(res.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn static_assets_have_versioned_urls_and_long_caching() {
    let app = spawn_app().await;
    let html = app.get("/").await.text().await.unwrap();
    let css_url = html
        .split('"')
        .find(|s| s.starts_with("/static/") && s.ends_with("/portal.css"))
        .expect("the page links its stylesheet by a versioned URL")
        .to_owned();

    let res = app.get(&css_url).await;
    assert_status(&res, StatusCode::OK);
    assert_eq!(header(&res, "content-type"), "text/css");
    assert_eq!(
        header(&res, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    let etag = header(&res, "etag").to_owned();
    assert!(res.text().await.unwrap().contains("--blue"));

    let res = app
        .client
        .get(format!("{}{css_url}", app.address))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::NOT_MODIFIED);

    // Another version (a page from an older instance): served, but not cached for long.
    let res = app.get("/static/000000000000/portal.css").await;
    assert_status(&res, StatusCode::OK);
    assert_eq!(header(&res, "cache-control"), "no-cache");

    assert_status(
        &app.get("/static/000000000000/nope.js").await,
        StatusCode::NOT_FOUND,
    );
    assert_status(
        &app.get("/static/x/..%2Fsecret.key").await,
        StatusCode::NOT_FOUND,
    );
}
