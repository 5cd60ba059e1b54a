//! Multipart forms as browsers — and those who are not browsers — send them (issues 30 and 31):
//! a form of thousands of long fields is refused at its cap without being read to its end; a
//! file input left empty is no file, a chosen file of 0 bytes is refused on its field; junk
//! sent to the public application form does not use up a case's day, and the page that refuses
//! says which limit was reached and until when.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use evidence_portal::db::entities::{access_application, review_application};
use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::applications::{brigade_on_form, insurer_form};
use crate::cases::served_case;
use crate::helpers::{TestApp, client, csrf_in_action, header, spawn_app, spawn_app_with};
use crate::materials::{PDF, PNG, decide, uploaded};

/// The boundary a Chromium browser would choose (any will do).
const BOUNDARY: &str = "----WebKitFormBoundaryq3PortalTestb7Zx";

/// One part of a form as a browser writes it: a text field (`file: None`), or a file input's
/// part with its file name ("" when no file was chosen) and bytes.
struct Part<'a> {
    name: &'a str,
    file: Option<&'a str>,
    bytes: &'a [u8],
}

fn text<'a>(name: &'a str, value: &'a str) -> Part<'a> {
    Part {
        name,
        file: None,
        bytes: value.as_bytes(),
    }
}

fn file<'a>(name: &'a str, file_name: &'a str, bytes: &'a [u8]) -> Part<'a> {
    Part {
        name,
        file: Some(file_name),
        bytes,
    }
}

fn part_head(name: &str, file: Option<&str>) -> String {
    match file {
        // A file input left empty: `filename=""`, `application/octet-stream`, no bytes.
        Some(f) => format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ),
        None => format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
    }
}

fn body(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(part_head(p.name, p.file).as_bytes());
        out.extend_from_slice(p.bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// Posts `body` to `path` with the CSRF token of the upload form on `page`, from `address`
/// (as a trusted proxy forwards it) if given.
async fn post(
    who: &TestApp,
    page: &str,
    path: &str,
    from: Option<&str>,
    body: reqwest::Body,
    length: usize,
) -> Result<reqwest::Response, reqwest::Error> {
    let html = who.get(page).await.text().await.unwrap();
    let csrf = csrf_in_action(&html);
    let mut req = who
        .client
        .post(format!("{}{path}?csrf_token={csrf}", who.address))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("content-length", length.to_string())
        .body(body);
    if let Some(a) = from {
        req = req.header("x-forwarded-for", a);
    }
    req.send().await
}

async fn post_parts(
    who: &TestApp,
    page: &str,
    path: &str,
    from: Option<&str>,
    parts: &[Part<'_>],
) -> reqwest::Response {
    let bytes = body(parts);
    let length = bytes.len();
    post(who, page, path, from, bytes.into(), length)
        .await
        .unwrap()
}

async fn reviews(app: &TestApp) -> u64 {
    review_application::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap()
}

async fn objects_of(app: &TestApp, case_id: &str) -> usize {
    app.state
        .store
        .keys_under(&format!("cases/{case_id}"))
        .await
        .unwrap()
        .len()
}

/// `fields` parts named `name`, each of `size` bytes, streamed as a slow line sends them (a
/// millisecond a part: a form read to its end takes seconds) and never all in memory; `sent`
/// counts the bytes handed to the connection.
fn flood(
    name: &'static str,
    fields: usize,
    size: usize,
    sent: Arc<AtomicUsize>,
) -> (reqwest::Body, usize) {
    use futures_util::StreamExt;
    let head = part_head(name, None).into_bytes();
    let one = head.len() + size + 2;
    let tail = format!("--{BOUNDARY}--\r\n").into_bytes();
    let length = one * fields + tail.len();
    let chunks = (0..fields)
        .map(move |_| {
            let mut part = head.clone();
            part.resize(head.len() + size, b'a');
            part.extend_from_slice(b"\r\n");
            part
        })
        .chain(std::iter::once(tail));
    let stream = futures_util::stream::iter(chunks).then(move |chunk| {
        let sent = sent.clone();
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            sent.fetch_add(chunk.len(), Ordering::Relaxed);
            Ok::<_, std::io::Error>(chunk)
        }
    });
    (reqwest::Body::wrap_stream(stream), length)
}

#[tokio::test]
async fn a_review_form_of_thousands_of_long_fields_is_refused_at_its_cap_and_files_nothing() {
    let app = spawn_app().await;
    let (_staff, party, case_id) = served_case(&app, "2026-表单-1").await;
    let page = format!("/cases/{case_id}/review");
    let objects = objects_of(&app, &case_id).await;

    for (name, fields, size) in [("grounds", 3_072, 32_000), ("contested", 3_072, 36)] {
        let sent = Arc::new(AtomicUsize::new(0));
        let (stream, length) = flood(name, fields, size, sent.clone());
        let started = std::time::Instant::now();
        let res = post(&party, &page, &page, None, stream, length).await;
        let elapsed = started.elapsed();
        let res = res.expect("an answer, not a dropped connection");
        let at_answer = sent.load(Ordering::Relaxed);
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{name}");
        let html = res.text().await.unwrap();
        assert!(html.contains("form_too_large"), "{html}");
        assert!(
            html.contains("表单文字过多") || html.contains("表单字段过多"),
            "the page says why: {html}"
        );
        // Answered at the cap, not once the body was read to its end.
        assert!(
            at_answer < length / 4,
            "{name}: answered after {at_answer} of {length} bytes, in {elapsed:?}"
        );
    }
    assert_eq!(reviews(&app).await, 0);
    assert_eq!(objects_of(&app, &case_id).await, objects);
}

#[tokio::test]
async fn a_file_input_left_empty_is_no_file_and_a_chosen_empty_file_is_refused_on_its_field() {
    let app = spawn_app().await;
    let (staff, party, case_id) = served_case(&app, "2026-表单-2").await;
    let diagram = uploaded(&staff, &case_id, "scene_diagram", "现场图", "d.png", PNG).await;
    decide(&staff, &case_id, &diagram, "release", &[]).await;
    let page = format!("/cases/{case_id}/review");
    let grounds = "认定事实不清：现场图未标明对方车辆的制动痕迹，责任划分不当。";
    let objects = objects_of(&app, &case_id).await;

    // A chosen file of 0 bytes: refused, naming the field and the file, nothing kept.
    let res = post_parts(
        &party,
        &page,
        &page,
        None,
        &[
            text("grounds", grounds),
            text("contested", &diagram),
            file("attachment", "说明.pdf", b""),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("“attachment”中的文件“说明.pdf”是空文件"),
        "{html}"
    );
    assert_eq!(reviews(&app).await, 0);
    assert_eq!(objects_of(&app, &case_id).await, objects);

    // The same form with the file input left empty, exactly as a browser sends it: filed.
    let res = post_parts(
        &party,
        &page,
        &page,
        None,
        &[
            text("grounds", grounds),
            text("contested", &diagram),
            file("attachment", "", b""),
        ],
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    let filed = review_application::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(filed.len(), 1);
    assert_eq!(filed[0].attachments, "[]");
    assert_eq!(objects_of(&app, &case_id).await, objects);

    // The public form: an empty proof input is no proof (asked for), not "the file is empty".
    let public = app.with_client(client());
    let brigade = brigade_on_form(&public, "110105").await;
    let res = post_parts(
        &public,
        "/apply",
        "/apply",
        None,
        &[
            text("kind", "insurer"),
            text("brigade", &brigade),
            text("case_number", "2026-表单-2"),
            text("applicant_name", "李明"),
            text("organisation", "中国人民财产保险"),
            text("credit_code", "91110000710931141J"),
            text("plate", "京A·12345"),
            text("policy_no", "PDAA202611000001"),
            text("mobile", "13700001111"),
            text("email", ""),
            file("proof", "", b""),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("请上传签字的授权书或证明材料"), "{html}");
    assert!(!html.contains("文件为空"), "{html}");
}

/// Posts the insurer's form for `case_number` from `address`, with `proof` as the file.
async fn apply_from(
    app: &TestApp,
    address: &str,
    brigade: &str,
    case_number: &str,
    proof: (&str, &[u8]),
) -> reqwest::Response {
    let public = app.with_client(client());
    let html = public.get("/apply").await.text().await.unwrap();
    let csrf = csrf_in_action(&html);
    // The same applicant files again and again on purpose: the duplicate is confirmed.
    let form = insurer_form(brigade, case_number, None)
        .text("confirm_duplicate", "1")
        .part(
            "proof",
            reqwest::multipart::Part::bytes(proof.1.to_vec()).file_name(proof.0.to_owned()),
        );
    public
        .client
        .post(format!("{}/apply?csrf_token={csrf}", public.address))
        .header("x-forwarded-for", address)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn applications(app: &TestApp) -> u64 {
    access_application::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn junk_does_not_use_up_a_cases_day_and_the_limit_page_says_which_limit_and_until_when() {
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_APPLICATIONS_PER_HOUR".into(), "100".into());
        env.insert("PORTAL_TRUSTED_PROXIES".into(), "127.0.0.1".into());
    })
    .await;
    let (_staff, _party, case_id) = served_case(&app, "2026-保险-30").await;
    let brigade = brigade_on_form(&app.with_client(client()), "110105").await;
    let objects = objects_of(&app, &case_id).await;

    // Ten refusals (a text file as proof) from two addresses.
    for i in 0..10 {
        let from = if i % 2 == 0 {
            "203.0.113.1"
        } else {
            "203.0.113.2"
        };
        let res = apply_from(
            &app,
            from,
            &brigade,
            "2026-保险-30",
            ("授权书.txt", b"not a proof"),
        )
        .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(applications(&app).await, 0);
    assert_eq!(objects_of(&app, &case_id).await, objects);

    // The genuine applicant is not stopped; the case takes ten well-formed ones a day.
    for i in 0..10 {
        let res = apply_from(
            &app,
            "198.51.100.7",
            &brigade,
            "2026-保险-30",
            ("查询授权书.pdf", PDF),
        )
        .await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "application {i}: {}",
            res.text().await.unwrap()
        );
    }
    let kept = objects_of(&app, &case_id).await;
    let res = apply_from(
        &app,
        "198.51.100.8",
        &brigade,
        "2026-保险-30",
        ("查询授权书.pdf", PDF),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&res, "retry-after").parse::<i64>().unwrap() > 23 * 3600);
    let html = res.text().await.unwrap();
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .to_offset(time::macros::offset!(+8))
        .date()
        .to_string();
    assert!(
        html.contains("这起事故今天收到的查询申请已达每天 10 份的上限")
            && html.contains("与您的网络地址无关")
            && html.contains(&format!("请于 {tomorrow} "))
            && html.contains("北京时间")
            && html.contains("too_many_attempts"),
        "{html}"
    );
    assert_eq!(applications(&app).await, 10);
    assert_eq!(
        objects_of(&app, &case_id).await,
        kept,
        "its proof is not kept"
    );
}

#[tokio::test]
async fn the_address_limit_page_names_the_address_and_until_when() {
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_APPLICATIONS_PER_HOUR".into(), "1".into());
        env.insert("PORTAL_TRUSTED_PROXIES".into(), "127.0.0.1".into());
    })
    .await;
    let (_staff, _party, _case_id) = served_case(&app, "2026-保险-31").await;
    let brigade = brigade_on_form(&app.with_client(client()), "110105").await;
    let proof = ("查询授权书.pdf", PDF);
    let res = apply_from(&app, "203.0.113.9", &brigade, "2026-保险-31", proof).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = apply_from(&app, "203.0.113.9", &brigade, "2026-保险-31", proof).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = header(&res, "retry-after").parse().unwrap();
    assert!((1..=3600 + 60).contains(&wait), "{wait}");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("此网络地址一小时内最多提交 1 份申请") && html.contains("北京时间"),
        "{html}"
    );
    assert!(!html.contains("这起事故"), "{html}");
    // Another address is not held by this one's limit.
    let res = apply_from(&app, "203.0.113.10", &brigade, "2026-保险-31", proof).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(applications(&app).await, 2);
}
