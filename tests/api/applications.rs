//! Applications made online (issue 21), through the running server: a party's review
//! application from filing to conclusion; an insurer's application, its approval for two kinds
//! of material for 30 days, the voucher, the download of exactly those kinds as a signed bundle,
//! and the refusal on day 31; refusals, races and limits.

use evidence_portal::db::entities::{
    access_application, material, notification, review_application,
};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::auth::{PASSWORD, activate, events, sign_in};
use crate::cases::{registered, served_case};
use crate::helpers::{TestApp, client, csrf_in, csrf_in_action, header, spawn_app, spawn_app_with};
use crate::materials::{PDF, PNG, decide, uploaded};

pub const INSURER_MOBILE: &str = "13700001111";

fn today() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
}

/// Posts a multipart form to `path` with the CSRF token of `page`'s form action.
async fn post_multipart(
    who: &TestApp,
    page: &str,
    path: &str,
    form: reqwest::multipart::Form,
) -> reqwest::Response {
    let html = who.get(page).await.text().await.unwrap();
    // The page's upload form, or (where the page has none any more) the session's token.
    let csrf = if html.contains("?csrf_token=") {
        csrf_in_action(&html)
    } else {
        who.csrf_from("/account").await
    };
    who.client
        .post(format!("{}{path}?csrf_token={csrf}", who.address))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

fn file(name: &str, bytes: &[u8]) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned())
}

pub async fn file_review(
    party: &TestApp,
    case_id: &str,
    grounds: &str,
    contested: &[&str],
    attachments: &[(&str, &[u8])],
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new().text("grounds", grounds.to_owned());
    for c in contested {
        form = form.text("contested", (*c).to_owned());
    }
    for (name, bytes) in attachments {
        form = form.part("attachment", file(name, bytes));
    }
    let page = format!("/cases/{case_id}/review");
    post_multipart(party, &page, &page, form).await
}

async fn review_step(
    staff: &TestApp,
    case_id: &str,
    application: &str,
    step: &str,
    fields: &[(&str, &str)],
    conclusion: Option<&[u8]>,
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text((*k).to_owned(), (*v).to_owned());
    }
    if let Some(bytes) = conclusion {
        form = form.part("conclusion", file("复核结论.pdf", bytes));
    }
    post_multipart(
        staff,
        &format!("/staff/cases/{case_id}"),
        &format!("/staff/cases/{case_id}/reviews/{application}/{step}"),
        form,
    )
    .await
}

async fn objects_of(app: &TestApp, case_id: &str) -> usize {
    app.state
        .store
        .objects_under(&format!("cases/{case_id}"))
        .await
        .unwrap()
        .len()
}

async fn materials_of(app: &TestApp, case_id: &str) -> u64 {
    material::Entity::find()
        .filter(material::Column::CaseId.eq(uuid::Uuid::parse_str(case_id).unwrap()))
        .count(&app.state.db)
        .await
        .unwrap()
}

async fn inbox_events(app: &TestApp, event: &str) -> u64 {
    notification::Entity::find()
        .filter(notification::Column::Event.eq(event))
        .count(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_party_files_a_review_once_within_the_window_and_follows_it_to_its_conclusion() {
    let app = spawn_app().await;
    let (staff, party, case_id) = served_case(&app, "2026-复核-1").await;
    let diagram = uploaded(&staff, &case_id, "scene_diagram", "现场图", "d.png", PNG).await;
    decide(&staff, &case_id, &diagram, "release", &[]).await;

    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"id="apply-review""#),
        "the case page offers the application"
    );

    // Refused, with the reason and nothing kept: grounds too short; a material of no case.
    let res = file_review(&party, &case_id, "不服", &[&diagram], &[("证据.png", PNG)]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(r#"id="review-error""#) && html.contains("10至5000字"),
        "{html}"
    );
    let stranger = uuid::Uuid::now_v7().to_string();
    let res = file_review(
        &party,
        &case_id,
        "认定事实不清，责任划分不当。",
        &[&stranger],
        &[],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("只能选择本案已公开的材料")
    );
    assert_eq!(
        review_application::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        objects_of(&app, &case_id).await as u64,
        materials_of(&app, &case_id).await
    );

    let grounds = "认定事实不清：现场图未标明对方车辆的制动痕迹，责任划分不当。";
    let res = file_review(
        &party,
        &case_id,
        grounds,
        &[&diagram],
        &[("行车记录仪截图.png", PNG), ("说明.pdf", PDF)],
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    assert_eq!(header(&res, "location"), format!("/cases/{case_id}/review"));
    let printable = party
        .get(&format!("/cases/{case_id}/review"))
        .await
        .text()
        .await
        .unwrap();
    let receipt = printable
        .split(r#"id="receipt-no">"#)
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    assert!(
        receipt.starts_with("FH") && receipt.len() == 19,
        "{receipt}"
    );
    assert!(printable.contains("现场图：现场图") && printable.contains("行车记录仪截图.png"));
    assert!(printable.contains(grounds));
    assert!(
        printable.contains("notice-sheet"),
        "printed on the A4 sheet"
    );
    // Addressed, with contact, signature and date lines, and a button that prints it.
    assert!(printable.contains("致：上一级公安机关交通管理部门（经"));
    assert!(printable.contains(r#"id="review-contact""#));
    assert!(printable.contains("申请人（签名）") && printable.contains("日期："));
    assert!(printable.contains(r#"id="print-review""#) && printable.contains("page-actions.js"));
    // The case page now shows the application and its next step, not the countdown or the offer.
    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&receipt) && page.contains(r#"id="review-next-step""#));
    assert!(
        page.contains("二日内"),
        "the brigade forwards it within two days"
    );
    assert!(!page.contains(r#"id="review-window""#) && !page.contains(r#"id="apply-review""#));
    let filed = events(&app, "review.file").await;
    assert_eq!(filed.len(), 1);
    assert!(filed[0].details.contains(&receipt));
    assert!(
        !filed[0].details.contains("制动痕迹"),
        "the grounds' words are not in the log"
    );
    assert_eq!(inbox_events(&app, "review.filed").await, 1);
    // Attachments are internal: staff open them; the party's case page does not list them.
    let attachments: Vec<material::Model> = material::Entity::find()
        .filter(material::Column::Kind.eq("review_attachment"))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(attachments.len(), 2);
    let res = party
        .get(&format!(
            "/cases/{case_id}/materials/{}/view",
            attachments[0].id
        ))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = staff
        .get(&format!(
            "/cases/{case_id}/materials/{}/view",
            attachments[0].id
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // Once per party.
    let res = file_review(&party, &case_id, grounds, &[], &[("再次.png", PNG)]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        review_application::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        objects_of(&app, &case_id).await as u64,
        materials_of(&app, &case_id).await
    );

    // Staff follow it: out of order is refused; forward, accept, conclude.
    let app_id = review_application::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string();
    let on = today().to_string();
    let res = review_step(&staff, &case_id, &app_id, "accept", &[("on", &on)], None).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = review_step(
        &staff,
        &case_id,
        &app_id,
        "forward",
        &[("on", &on), ("authority", "北京市公安局公安交通管理局")],
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = review_step(&staff, &case_id, &app_id, "accept", &[("on", &on)], None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let before = objects_of(&app, &case_id).await;
    let res = review_step(
        &staff,
        &case_id,
        &app_id,
        "conclude",
        &[("on", "2020-01-01")],
        Some(PDF),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "a date before the application"
    );
    assert_eq!(
        objects_of(&app, &case_id).await,
        before,
        "the refused conclusion is not kept"
    );
    let res = review_step(
        &staff,
        &case_id,
        &app_id,
        "conclude",
        &[("on", &on)],
        Some(PDF),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let conclusion = material::Entity::find()
        .filter(material::Column::Kind.eq("review_conclusion"))
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the conclusion is a material");
    assert_eq!(conclusion.state.as_str(), "draft");
    decide(&staff, &case_id, &conclusion.id.to_string(), "release", &[]).await;

    let case_page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        case_page.contains("复核结论"),
        "the released conclusion is on the case page"
    );
    assert!(case_page.contains(r#"id="review-application-state""#));
    assert!(case_page.contains("已作出复核结论"));
    assert!(
        case_page.contains("复核申请已转交北京市公安局公安交通管理局"),
        "on the timeline"
    );
    let printable = party
        .get(&format!("/cases/{case_id}/review"))
        .await
        .text()
        .await
        .unwrap();
    assert!(printable.contains("复核机关受理") && printable.contains("已作出复核结论"));
    assert_eq!(events(&app, "review.step").await.len(), 3);
    for event in ["review.forwarded", "review.accepted", "review.concluded"] {
        assert_eq!(inbox_events(&app, event).await, 1, "{event}");
    }
    // The ledger lists it, and its CSV export too.
    let ledger = staff
        .get("/staff/applications?kind=review")
        .await
        .text()
        .await
        .unwrap();
    assert!(ledger.contains(&receipt));
    let csv = staff.get("/staff/applications.csv?state=concluded").await;
    assert_eq!(header(&csv, "content-type"), "text/csv; charset=utf-8");
    assert!(csv.text().await.unwrap().contains(&receipt));
    let csv = staff
        .get("/staff/applications.csv?state=filed")
        .await
        .text()
        .await
        .unwrap();
    assert!(!csv.contains(&receipt), "the filter holds");
    // Filing dates are days in China Standard Time, whatever the hour the test runs at.
    let day = today();
    for (from, to, listed) in [
        (day, day, true),
        (day.next_day().unwrap(), day.next_day().unwrap(), false),
        (
            day.previous_day().unwrap(),
            day.previous_day().unwrap(),
            false,
        ),
    ] {
        let csv = staff
            .get(&format!("/staff/applications.csv?from={from}&to={to}"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(csv.contains(&receipt), listed, "{from}..{to}");
    }

    // After the window: another party of the case is told it has passed.
    let code = registered(&staff, &case_id, "乙", "310101197001011235", "赵敏").await;
    let other = app.with_client(client());
    activate(&other, "310101197001011235", &code, PASSWORD).await;
    app.state
        .clock
        .set(time::OffsetDateTime::now_utc() + time::Duration::days(4));
    let page = other
        .get(&format!("/cases/{case_id}/review"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"id="review-closed""#) && page.contains("复核申请期限已过"));
    let res = file_review(&other, &case_id, grounds, &[], &[("late.png", PNG)]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("复核申请期限已过"));
    assert_eq!(
        review_application::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        objects_of(&app, &case_id).await as u64,
        materials_of(&app, &case_id).await
    );
    app.state.clock.set(time::OffsetDateTime::now_utc());
}

#[tokio::test]
async fn twenty_applications_at_once_file_one_and_leave_no_attachment_behind() {
    let app = spawn_app().await;
    let (_staff, party, case_id) = served_case(&app, "2026-复核-2").await;
    let page = format!("/cases/{case_id}/review");
    let html = party.get(&page).await.text().await.unwrap();
    let csrf = csrf_in_action(&html);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = party.client.clone();
        let url = format!("{}{page}?csrf_token={csrf}", party.address);
        tasks.push(tokio::spawn(async move {
            let form = reqwest::multipart::Form::new()
                .text("grounds", format!("第{i}份：认定事实不清，责任划分不当。"))
                .part("attachment", file("a.png", PNG));
            client
                .post(url)
                .multipart(form)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut filed = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::SEE_OTHER => filed += 1,
            StatusCode::BAD_REQUEST => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(filed, 1);
    assert_eq!(
        review_application::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        objects_of(&app, &case_id).await as u64,
        materials_of(&app, &case_id).await
    );
    assert_eq!(
        materials_of(&app, &case_id).await,
        1,
        "one attachment, of the one filed"
    );
}

/// The application id in a status page's path (`/apply/{id}?key=…`).
pub fn application_id(status_path: &str) -> String {
    let rest = status_path.trim_start_matches("/apply/");
    rest.split('?').next().unwrap_or(rest).to_owned()
}

/// The private key in a status page's path.
fn status_key(status_path: &str) -> String {
    let rest = status_path.split("key=").nth(1).expect("a key");
    rest.split('&').next().unwrap_or(rest).to_owned()
}

/// The voucher page of the application whose status page is at `status_path`.
pub fn voucher_path(status_path: &str) -> String {
    format!(
        "/apply/{}/voucher?key={}",
        application_id(status_path),
        status_key(status_path)
    )
}

/// The insurer's form, filled in; `case_number` and `brigade` say which case.
pub fn insurer_form(
    brigade: &str,
    case_number: &str,
    proof: Option<&[u8]>,
) -> reqwest::multipart::Form {
    applicant_form("insurer", INSURER_MOBILE, brigade, case_number, proof)
}

/// An owner's (`owner`) or an insurer's (`insurer`) form, filled in.
fn applicant_form(
    kind: &str,
    mobile: &str,
    brigade: &str,
    case_number: &str,
    proof: Option<&[u8]>,
) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new()
        .text("kind", kind.to_owned())
        .text("brigade", brigade.to_owned())
        .text("case_number", case_number.to_owned())
        .text("applicant_name", "李明")
        .text("organisation", "中国人民财产保险")
        .text("credit_code", "91110000710931141J")
        .text("plate", "京A·12345")
        .text("policy_no", "PDAA202611000001")
        .text("mobile", mobile.to_owned())
        .text("email", "");
    if let Some(bytes) = proof {
        form = form.part("proof", file("查询授权书.pdf", bytes));
    }
    form
}

/// The brigade id `/apply` lists for the staff member's brigade named `name`.
pub async fn brigade_on_form(public: &TestApp, name_part: &str) -> String {
    let html = public.get("/apply").await.text().await.unwrap();
    let at = html.find(name_part).expect("the brigade is listed");
    let before = &html[..at];
    let start = before.rfind(r#"<option value=""#).unwrap() + 15;
    before[start..].split('"').next().unwrap().to_owned()
}

/// An insurer's application filed through the public form: the status page's path.
pub async fn insurer_applies(app: &TestApp, brigade_name: &str, case_number: &str) -> String {
    applies(app, "insurer", INSURER_MOBILE, brigade_name, case_number).await
}

/// An owner's or insurer's application filed through the public form: the status page's path.
pub async fn applies(
    app: &TestApp,
    kind: &str,
    mobile: &str,
    brigade_name: &str,
    case_number: &str,
) -> String {
    files(app, kind, mobile, brigade_name, case_number, false).await
}

/// As [`applies`], with the box ticked that files it even though the same applicant (case,
/// plate, name and mobile number) has an application pending or approved.
pub async fn applies_again(
    app: &TestApp,
    kind: &str,
    mobile: &str,
    brigade_name: &str,
    case_number: &str,
) -> String {
    files(app, kind, mobile, brigade_name, case_number, true).await
}

async fn files(
    app: &TestApp,
    kind: &str,
    mobile: &str,
    brigade_name: &str,
    case_number: &str,
    confirm_duplicate: bool,
) -> String {
    let public = app.with_client(client());
    let brigade = brigade_on_form(&public, brigade_name).await;
    let mut form = applicant_form(kind, mobile, &brigade, case_number, Some(PDF));
    if confirm_duplicate {
        form = form.text("confirm_duplicate", "1");
    }
    let res = post_multipart(&public, "/apply", "/apply", form).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    header(&res, "location").to_owned()
}

/// Staff approve the (only pending) application of the case with these kinds and mode, until
/// `until`.
pub async fn approve(
    staff: &TestApp,
    status_path: &str,
    kinds: &[&str],
    mode: &str,
    until: &str,
) -> reqwest::Response {
    let id = application_id(status_path);
    let page = staff
        .get(&format!("/staff/applications/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&page);
    let mut fields = vec![
        ("csrf_token", csrf.as_str()),
        ("mode", mode),
        ("until", until),
    ];
    for k in kinds {
        fields.push(("kind", k));
    }
    staff
        .post_form(&format!("/staff/applications/{id}/approve"), &fields)
        .await
}

/// The applicant collects the voucher and activates the account: their signed-in browser.
pub async fn insurer_signed_in(app: &TestApp, status_path: &str, mobile: &str) -> TestApp {
    let public = app.with_client(client());
    let page = public.get(status_path).await.text().await.unwrap();
    assert!(page.contains(r#"id="get-voucher""#), "{page}");
    let voucher = public
        .get(&voucher_path(status_path))
        .await
        .text()
        .await
        .unwrap();
    let code = crate::cases::code_on(&voucher).expect("the voucher carries a query code");
    assert!(voucher.contains("道路交通事故材料查询凭证"));
    let insurer = app.with_client(client());
    activate(&insurer, mobile, &code, PASSWORD).await;
    insurer
}

#[tokio::test]
async fn an_insurer_is_approved_for_two_kinds_for_30_days_downloads_exactly_those_and_is_refused_on_day_31()
 {
    let app = spawn_app().await;
    let (staff, party, case_id) = served_case(&app, "2026-保险-1").await;
    let diagram = uploaded(&staff, &case_id, "scene_diagram", "现场图", "d.png", PNG).await;
    let photo = uploaded(&staff, &case_id, "scene_photo", "现场照片", "p.png", PNG).await;
    let record = uploaded(&staff, &case_id, "survey_record", "勘查笔录", "r.pdf", PDF).await;
    for id in [&diagram, &photo, &record] {
        decide(&staff, &case_id, id, "release", &[]).await;
    }

    // Refused with the field and the reason, nothing kept: a case number the brigade lacks; no proof.
    let public = app.with_client(client());
    let brigade = brigade_on_form(&public, "110105").await;
    let before = objects_of(&app, &case_id).await;
    let res = post_multipart(
        &public,
        "/apply",
        "/apply",
        insurer_form(&brigade, "2026-不存在", Some(PDF)),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("所选大队没有这个事故编号") && html.contains(r#"id="case_number""#));
    assert!(html.contains("李明"), "what was typed is kept");
    let res = post_multipart(
        &public,
        "/apply",
        "/apply",
        insurer_form(&brigade, "2026-保险-1", None),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        access_application::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(objects_of(&app, &case_id).await, before);

    let status = insurer_applies(&app, "110105", "2026-保险-1").await;
    assert!(status.contains("key=") && status.contains("new=1"));
    let page = public.get(&status).await.text().await.unwrap();
    assert!(page.contains(r#"id="apply-filed""#) && page.contains("待审核"));
    assert_eq!(
        public.get(&status.replace("key=", "key=0")).await.status(),
        StatusCode::NOT_FOUND
    );
    let applied = events(&app, "access.apply").await;
    assert_eq!(applied.len(), 1);
    assert!(
        applied[0].details.contains("137****1111") && !applied[0].details.contains(INSURER_MOBILE)
    );

    // Staff see it in their queue and decide: scene diagram and photos, download, 30 days.
    let queue = staff.get("/staff").await.text().await.unwrap();
    assert!(queue.contains("查询申请"));
    let until = (today() + time::Duration::days(30)).to_string();
    let res = approve(
        &staff,
        &status,
        &["scene_diagram", "bogus"],
        "download",
        &until,
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "an unknown kind is refused"
    );
    let res = approve(
        &staff,
        &status,
        &["scene_diagram", "scene_photo"],
        "download",
        &until,
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = approve(&staff, &status, &["scene_diagram"], "view", &until).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "decided once");
    let decided = events(&app, "access.decide").await;
    assert_eq!(decided.len(), 1);
    assert_eq!(
        inbox_events(&app, "access.approved").await,
        1,
        "the applicant is told"
    );

    let insurer = insurer_signed_in(&app, &status, INSURER_MOBILE).await;
    let mine = insurer.get("/cases").await.text().await.unwrap();
    assert!(mine.contains(&case_id) && mine.contains("保险公司"));
    let page = insurer
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"id="grant-scope""#));
    assert!(page.contains(&diagram) && page.contains(&photo));
    assert!(!page.contains(&record), "the survey record was not granted");
    assert!(
        !page.contains(r#"id="access-history""#),
        "not the parties' history"
    );
    assert!(!page.contains(r#"id="apply-review""#));
    let res = insurer
        .get(&format!("/cases/{case_id}/materials/{record}/download"))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = insurer
        .get(&format!("/cases/{case_id}/materials/{diagram}/download"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let res = insurer.get(&format!("/cases/{case_id}/bundle.zip")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = res.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let manifest: serde_json::Value = {
        use std::io::Read;
        let mut text = String::new();
        zip.by_name("manifest.json")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let files: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "{manifest}");
    assert!(files.contains(&"scene_diagram") && files.contains(&"scene_photo"));
    assert_eq!(
        manifest["scope"]["kinds"],
        serde_json::json!(["scene_diagram", "scene_photo"])
    );
    assert_eq!(manifest["scope"]["until"], until);
    assert_eq!(manifest["generated_for"]["role"], "insurer");

    // The party sees the insurer in the access history: its role, the company in full, the
    // person's name masked.
    let history = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        history.contains("保险公司 中国人民财产保险 李**"),
        "{history}"
    );

    // Day 31: refused, and told why.
    app.state
        .clock
        .set(time::OffsetDateTime::now_utc() + time::Duration::days(31));
    let res = insurer.get(&format!("/cases/{case_id}")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("查询期限已届满"));
    let res = insurer.get(&format!("/cases/{case_id}/bundle.zip")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let denied = events(&app, "case.view").await;
    assert!(
        denied
            .iter()
            .any(|e| e.outcome == "denied" && e.details.contains("grant_expired"))
    );
    app.state.clock.set(time::OffsetDateTime::now_utc());

    // The ledger has it.
    let ledger = staff
        .get("/staff/applications?kind=access&state=approved")
        .await
        .text()
        .await
        .unwrap();
    assert!(ledger.contains("李明（中国人民财产保险）"));
}

#[tokio::test]
async fn a_refused_application_tells_the_applicant_why_and_grants_nothing() {
    let app = spawn_app().await;
    let (staff, _party, case_id) = served_case(&app, "2026-保险-2").await;
    let status = insurer_applies(&app, "110105", "2026-保险-2").await;
    let id = application_id(&status);
    let page = staff
        .get(&format!("/staff/applications/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&page);
    let res = staff
        .post_form(
            &format!("/staff/applications/{id}/refuse"),
            &[("csrf_token", &csrf), ("reason", "")],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "a reason is required"
    );
    let res = staff
        .post_form(
            &format!("/staff/applications/{id}/refuse"),
            &[("csrf_token", &csrf), ("reason", "授权书未加盖公章")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let public = app.with_client(client());
    let page = public.get(&status).await.text().await.unwrap();
    assert!(page.contains("不予批准") && page.contains("授权书未加盖公章"));
    assert!(!page.contains(r#"id="get-voucher""#));
    assert_eq!(inbox_events(&app, "access.refused").await, 1);
    let res = public.get(&voucher_path(&status)).await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "no voucher for a refused application"
    );
    // The applicant's account exists (they were told through it) but was never given a code:
    // it cannot be activated, and signs no one in.
    let codes = evidence_portal::db::entities::activation::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    let staff_and_party_codes = 2;
    assert_eq!(codes, staff_and_party_codes, "no query code was issued");
    let res = sign_in(&app.with_client(client()), INSURER_MOBILE, PASSWORD).await;
    assert_ne!(res.status(), StatusCode::SEE_OTHER);
    let _ = case_id;
}

#[tokio::test]
async fn applications_from_one_address_are_limited_and_the_excess_keeps_nothing() {
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_APPLICATIONS_PER_HOUR".into(), "2".into());
    })
    .await;
    let (_staff, _party, case_id) = served_case(&app, "2026-保险-3").await;
    insurer_applies(&app, "110105", "2026-保险-3").await;
    // Another applicant (the same one again would be asked to confirm a duplicate).
    applies(&app, "insurer", "13700002222", "110105", "2026-保险-3").await;
    let public = app.with_client(client());
    let brigade = brigade_on_form(&public, "110105").await;
    let before = objects_of(&app, &case_id).await;
    let res = post_multipart(
        &public,
        "/apply",
        "/apply",
        insurer_form(&brigade, "2026-保险-3", Some(PDF)),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(objects_of(&app, &case_id).await, before);
    assert_eq!(
        access_application::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn when_the_audit_log_cannot_commit_no_application_is_kept() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let (_staff, party, case_id) = served_case(&app, "2026-审计-1").await;
    let public = app.with_client(client());
    let brigade = brigade_on_form(&public, "110105").await;
    let review_page = format!("/cases/{case_id}/review");
    let review_csrf = csrf_in_action(&party.get(&review_page).await.text().await.unwrap());
    let apply_csrf = csrf_in_action(&public.get("/apply").await.text().await.unwrap());
    // The audit log alone breaks (its chain head disappears); the rest of the database works.
    app.state
        .db
        .execute_unprepared("DROP TABLE audit_chain_head")
        .await
        .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("grounds", "认定事实不清，责任划分不当。")
        .part("attachment", file("a.png", PNG));
    let res = party
        .client
        .post(format!(
            "{}{review_page}?csrf_token={review_csrf}",
            party.address
        ))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let res = public
        .client
        .post(format!("{}/apply?csrf_token={apply_csrf}", public.address))
        .multipart(insurer_form(&brigade, "2026-审计-1", Some(PDF)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        review_application::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        access_application::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(materials_of(&app, &case_id).await, 0);
    assert_eq!(
        objects_of(&app, &case_id).await,
        0,
        "no unrecorded file is left"
    );
}

#[tokio::test]
async fn gc_keeps_an_applications_proof_and_ten_approvals_at_once_decide_once() {
    let app = spawn_app().await;
    let (staff, _party, case_id) = served_case(&app, "2026-保险-4").await;
    let status = insurer_applies(&app, "110105", "2026-保险-4").await;
    let id = application_id(&status);
    // The proof is no material, yet gc must not take it for an orphan.
    let before = objects_of(&app, &case_id).await;
    assert_eq!(before, 1);
    let out = crate::cli::run(&["gc", "--delete", "--min-age-minutes", "0"], &app.env, "");
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::stderr(&out));
    assert_eq!(objects_of(&app, &case_id).await, before, "the proof stays");
    let proof = staff.get(&format!("/staff/applications/{id}/proof")).await;
    assert_eq!(proof.status(), StatusCode::OK);
    assert_eq!(proof.bytes().await.unwrap().as_ref(), PDF);
    assert_eq!(events(&app, "access.proof_view").await.len(), 1);

    // Ten officers' approvals at once: one takes effect, the rest are told it was decided.
    let page = staff
        .get(&format!("/staff/applications/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&page);
    let until = (today() + time::Duration::days(30)).to_string();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let client = staff.client.clone();
        let url = format!("{}/staff/applications/{id}/approve", staff.address);
        let fields = vec![
            ("csrf_token".to_owned(), csrf.clone()),
            ("kind".to_owned(), "scene_diagram".to_owned()),
            ("mode".to_owned(), "view".to_owned()),
            ("until".to_owned(), until.clone()),
        ];
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .form(&fields)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut approved = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::SEE_OTHER => approved += 1,
            StatusCode::BAD_REQUEST => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(approved, 1);
    assert_eq!(inbox_events(&app, "access.approved").await, 1, "told once");
}

#[tokio::test]
async fn review_steps_refuse_what_is_missing_or_out_of_bounds() {
    let app = spawn_app().await;
    let (staff, party, case_id) = served_case(&app, "2026-复核-3").await;
    let res = file_review(&party, &case_id, "认定事实不清，责任划分不当。", &[], &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let id = review_application::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string();
    let on = today().to_string();
    let future = (today() + time::Duration::days(1)).to_string();
    for (step, fields) in [
        ("forward", vec![("on", on.as_str()), ("authority", "")]),
        (
            "forward",
            vec![("on", on.as_str()), ("authority", &"局".repeat(101))],
        ),
        (
            "forward",
            vec![("on", future.as_str()), ("authority", "上级交管局")],
        ),
        (
            "forward",
            vec![("on", "not a date"), ("authority", "上级交管局")],
        ),
    ] {
        let res = review_step(&staff, &case_id, &id, step, &fields, None).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{fields:?}");
    }
    let res = review_step(
        &staff,
        &case_id,
        &id,
        "forward",
        &[("on", &on), ("authority", "上级交管局")],
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = review_step(
        &staff,
        &case_id,
        &id,
        "refuse",
        &[("on", &on), ("reason", " ")],
        None,
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "a refusal needs its reason"
    );
    // An unknown step, another case's application: not found.
    let res = review_step(&staff, &case_id, &id, "approve", &[("on", &on)], None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let other = uuid::Uuid::now_v7().to_string();
    let res = review_step(&staff, &case_id, &other, "accept", &[("on", &on)], None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        events(&app, "review.step").await.len(),
        1,
        "only the one step recorded"
    );
}

#[tokio::test]
async fn the_voucher_is_a_page_whose_reload_shows_the_same_code_and_activates_in_place() {
    let app = spawn_app().await;
    let (staff, _party, case_id) = served_case(&app, "2026-凭证-1").await;
    let status = insurer_applies(&app, "110105", "2026-凭证-1").await;
    let until = (today() + time::Duration::days(30)).to_string();
    let res = approve(&staff, &status, &["scene_diagram"], "view", &until).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let codes = || async {
        evidence_portal::db::entities::activation::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap()
    };
    let before = codes().await;
    let public = app.with_client(client());
    let first = public.get(&voucher_path(&status)).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header(&first, "cache-control"), "no-store");
    let first = first.text().await.unwrap();
    let code = crate::cases::code_on(&first).expect("a code");
    let again = public
        .get(&voucher_path(&status))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        crate::cases::code_on(&again).as_deref(),
        Some(code.as_str()),
        "a reload shows the same code"
    );
    let issued = events(&app, "access.voucher").await;
    assert_eq!(issued.len(), 2, "each showing is audited");
    assert!(issued[1].details.contains(r#""code_shown_again":true"#));
    assert_eq!(codes().await, before + 1, "one code issued");
    // The old button's post lands on the page.
    let id = application_id(&status);
    let res = public
        .post_form(
            &format!("/apply/{id}/voucher"),
            &[
                ("csrf_token", &csrf_in(&first)),
                ("key", &status_key(&status)),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&res, "location"), voucher_path(&status));

    // Activated from the voucher's own form (the number filled in): signed in, the case listed.
    assert!(first.contains(r#"id="activate-now""#));
    let csrf = csrf_in(
        first
            .split(r#"id="activate-now""#)
            .nth(1)
            .expect("the activation form"),
    );
    let res = public
        .post_form(
            "/activate",
            &[
                ("csrf_token", &csrf),
                ("identifier", INSURER_MOBILE),
                ("code", &code),
                ("password", PASSWORD),
                ("password_repeat", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        public
            .get("/cases")
            .await
            .text()
            .await
            .unwrap()
            .contains(&case_id)
    );
    // Afterwards the voucher shows no code and says to sign in.
    let after = app
        .with_client(client())
        .get(&voucher_path(&status))
        .await
        .text()
        .await
        .unwrap();
    assert!(crate::cases::code_on(&after).is_none());
    assert!(after.contains("您的账户已激活"));
}

#[tokio::test]
async fn the_browser_that_applied_finds_its_applications_again_and_others_do_not() {
    let app = spawn_app().await;
    let (_staff, _party, _case_id) = served_case(&app, "2026-找回-1").await;
    let applicant = app.with_client(client());
    let brigade = brigade_on_form(&applicant, "110105").await;
    let form = insurer_form(&brigade, "2026-找回-1", Some(PDF));
    let res = post_multipart(&applicant, "/apply", "/apply", form).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let status = header(&res, "location").to_owned();
    // The status page offers its own link to copy and as a QR code.
    let page = applicant.get(&status).await.text().await.unwrap();
    assert!(page.contains(r#"id="status-link""#) && page.contains("<svg"));
    assert!(page.contains(&status.replace("&new=1", "").replace('&', "&amp;")[1..]));

    // The tab is closed, the link lost: the landing page leads to the list of this browser's.
    let landing = applicant.get("/").await.text().await.unwrap();
    assert!(landing.contains(r#"href="/apply/mine""#));
    let mine = applicant.get("/apply/mine").await;
    assert_eq!(header(&mine, "cache-control"), "no-store");
    let mine = mine.text().await.unwrap();
    let id = application_id(&status);
    assert!(mine.contains(&format!("/apply/{id}?key=")), "{mine}");
    assert!(mine.contains("2026-找回-1"));
    // Another browser sees nothing of it, and a forged cookie is ignored.
    let other = app.with_client(client());
    let theirs = other.get("/apply/mine").await.text().await.unwrap();
    assert!(theirs.contains(r#"id="mine-none""#) && !theirs.contains(&id));
    let forged = other
        .client
        .get(format!("{}/apply/mine", other.address))
        .header("cookie", "portal-applications=AAAA")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(forged.contains(r#"id="mine-none""#));
}

#[tokio::test]
async fn case_numbers_are_found_as_people_type_them_and_credit_codes_are_checked() {
    let app = spawn_app().await;
    let (_staff, _party, case_id) = served_case(&app, "京公交认字〔2026〕第00017号").await;
    let public = app.with_client(client());
    let form_page = public.get("/apply").await.text().await.unwrap();
    assert!(
        form_page.contains("京公交认字〔××××〕第×××××号"),
        "the brigade's format, digits hidden"
    );
    assert!(!form_page.contains("00017"), "no case's own number");
    let brigade = brigade_on_form(&public, "110105").await;

    // A check character that does not fit: refused on its field.
    let form = reqwest::multipart::Form::new()
        .text("kind", "insurer")
        .text("brigade", brigade.clone())
        .text("case_number", "京公交认字〔2026〕第00017号")
        .text("applicant_name", "李明")
        .text("organisation", "中国人民财产保险")
        .text("credit_code", "91110000710931141K")
        .text("plate", "京A·12345")
        .text("policy_no", "PDAA202611000001")
        .text("mobile", INSURER_MOBILE)
        .part("proof", file("查询授权书.pdf", PDF));
    let res = post_multipart(&public, "/apply", "/apply", form).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("校验码"), "{html}");

    // Half-width brackets, no leading zeros, spaces: the same case.
    let form = applicant_form(
        "insurer",
        INSURER_MOBILE,
        &brigade,
        "京公交认字 (2026) 第17号",
        Some(PDF),
    );
    let res = post_multipart(&public, "/apply", "/apply", form).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    let filed = access_application::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(filed.case_id.to_string(), case_id);
}

#[tokio::test]
async fn someone_signed_in_can_use_the_public_forms() {
    // An insurer with an account applying again, an officer checking a bundle: their browser
    // holds a session, and the public forms must carry the token the session expects.
    let app = spawn_app().await;
    let (staff, party, _case_id) = served_case(&app, "2026-登录-1").await;
    let brigade = brigade_on_form(&party, "110105").await;
    let form = applicant_form("owner", "13700007777", &brigade, "2026-登录-1", Some(PDF));
    let res = post_multipart(&party, "/apply", "/apply", form).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    let page = staff.get("/verify").await.text().await.unwrap();
    let csrf = csrf_in_action(&page);
    let res = staff
        .client
        .post(format!("{}/verify?csrf_token={csrf}", staff.address))
        .multipart(reqwest::multipart::Form::new().text("jws_text", "x"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        res.status(),
        StatusCode::FORBIDDEN,
        "not refused as a forged form"
    );
}
