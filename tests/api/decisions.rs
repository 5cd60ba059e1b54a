//! The officer's decision on an owner's or insurer's application (issue 31, items 6 and 7),
//! through the running server: the proof shown in the page, the case's vehicles and the
//! application's plate checked against them, released materials counted per kind, revoking and
//! shortening an approved grant (once, however many officers act at once, the applicant told),
//! the queue's ages and forwarding deadlines, and the parties told of a grant, their history
//! naming the company.

use evidence_portal::db::entities::{access_application, notification};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::applications::{
    INSURER_MOBILE, application_id, approve, file_review, insurer_applies, insurer_signed_in,
};
use crate::auth::events;
use crate::cases::served_case;
use crate::helpers::{TestApp, header, spawn_app};
use crate::materials::{PDF, PNG, decide, uploaded};

fn today() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
}

/// Records a vehicle on the staff case page.
async fn add_vehicle(
    staff: &TestApp,
    case_id: &str,
    plate: &str,
    insurer: &str,
) -> reqwest::Response {
    let csrf = staff.csrf_from(&format!("/staff/cases/{case_id}")).await;
    staff
        .post_form(
            &format!("/staff/cases/{case_id}/vehicles"),
            &[
                ("csrf_token", csrf.as_str()),
                ("plate", plate),
                ("insurer", insurer),
                ("description", "小型轿车"),
            ],
        )
        .await
}

/// The id of the vehicle the staff case page lists with `plate` (as normalised).
async fn vehicle_id(staff: &TestApp, case_id: &str, plate: &str) -> String {
    let page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let row = page
        .split(r#"<tr id="vehicle-"#)
        .skip(1)
        .find(|row| row.contains(plate))
        .expect("the vehicle is listed");
    row.split('"').next().unwrap().to_owned()
}

/// Posts `decision` (`approve`, `refuse`, `revoke`, `shorten`) on the application `id` with
/// the CSRF token of its page and `fields`.
async fn act(
    staff: &TestApp,
    id: &str,
    decision: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = staff.csrf_from(&format!("/staff/applications/{id}")).await;
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    staff
        .post_form(&format!("/staff/applications/{id}/{decision}"), &all)
        .await
}

async fn told(app: &TestApp, event: &str) -> u64 {
    notification::Entity::find()
        .filter(notification::Column::Event.eq(event))
        .count(&app.state.db)
        .await
        .unwrap()
}

async fn application(app: &TestApp, id: &str) -> access_application::Model {
    access_application::Entity::find_by_id(uuid::Uuid::parse_str(id).unwrap())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

/// An insurer approved for scene diagrams, download, for 30 days, signed in: (staff, party,
/// case, application id, the insurer's browser).
async fn approved_insurer(
    app: &TestApp,
    number: &str,
) -> (TestApp, TestApp, String, String, TestApp) {
    let (staff, party, case_id) = served_case(app, number).await;
    let diagram = uploaded(&staff, &case_id, "scene_diagram", "现场图", "d.png", PNG).await;
    decide(&staff, &case_id, &diagram, "release", &[]).await;
    let status = insurer_applies(app, "110105", number).await;
    let until = (today() + time::Duration::days(30)).to_string();
    let res = approve(&staff, &status, &["scene_diagram"], "download", &until).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let insurer = insurer_signed_in(app, &status, INSURER_MOBILE).await;
    let res = insurer.get(&format!("/cases/{case_id}")).await;
    assert_eq!(res.status(), StatusCode::OK, "the grant opens the case");
    (staff, party, case_id, application_id(&status), insurer)
}

#[tokio::test]
async fn the_decision_page_shows_the_proof_inline_and_flags_a_plate_the_case_does_not_have() {
    let app = spawn_app().await;
    let (staff, _party, case_id) = served_case(&app, "2026-车辆-1").await;

    // Staff record the case's vehicles; a plate that is no plate is refused on its field.
    let res = add_vehicle(&staff, &case_id, "不是号牌", "").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains(r#"id="vehicle-error""#));
    let res = add_vehicle(&staff, &case_id, "京B·99999", "平安财产保险").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = add_vehicle(&staff, &case_id, "京b 99999", "").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "recorded once");
    assert_eq!(events(&app, "case.update").await.len(), 1, "audited");

    let status = insurer_applies(&app, "110105", "2026-车辆-1").await;
    let id = application_id(&status);
    let page = staff
        .get(&format!("/staff/applications/{id}"))
        .await
        .text()
        .await
        .unwrap();
    // The proof in the page, from the proof's own address.
    assert!(
        page.contains(&format!(
            r#"<iframe class="pdf-frame" src="/staff/applications/{id}/proof""#
        )),
        "{page}"
    );
    // The case's vehicles, and the application's plate matching none of them.
    assert!(page.contains(r#"id="case-vehicles""#) && page.contains("京B99999"));
    assert!(page.contains("平安财产保险"));
    assert!(page.contains(r#"id="plate-mismatch""#), "{page}");
    assert!(!page.contains(r#"id="insurer-mismatch""#));

    // The proof answers inline, framed only by the portal's own pages, never sniffed.
    let proof = staff.get(&format!("/staff/applications/{id}/proof")).await;
    assert_eq!(proof.status(), StatusCode::OK);
    assert_eq!(header(&proof, "content-type"), "application/pdf");
    assert!(header(&proof, "content-disposition").starts_with("inline"));
    assert_eq!(header(&proof, "x-content-type-options"), "nosniff");
    assert_eq!(header(&proof, "x-frame-options"), "SAMEORIGIN");
    assert!(header(&proof, "content-security-policy").contains("frame-ancestors 'self'"));
    assert_eq!(proof.bytes().await.unwrap().as_ref(), PDF);

    // The plate recorded with another insurer: the plate matches, the insurer is flagged.
    let res = add_vehicle(&staff, &case_id, "京A12345", "中国太平洋财产保险").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = staff
        .get(&format!("/staff/applications/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains(r#"id="plate-mismatch""#), "{page}");
    assert!(page.contains(r#"id="insurer-mismatch""#), "{page}");

    // Removed (audited) and recorded again with the applicant's insurer, named in full: no flag.
    let vehicle = vehicle_id(&staff, &case_id, "京A12345").await;
    let csrf = staff.csrf_from(&format!("/staff/cases/{case_id}")).await;
    let res = staff
        .post_form(
            &format!("/staff/cases/{case_id}/vehicles/{vehicle}/remove"),
            &[("csrf_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = add_vehicle(
        &staff,
        &case_id,
        "京A·12345",
        "中国人民财产保险股份有限公司",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(events(&app, "case.update").await.len(), 4);
    let page = staff
        .get(&format!("/staff/applications/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains(r#"id="plate-mismatch""#) && !page.contains(r#"id="insurer-mismatch""#));
    // Another brigade's vehicle id is none of this case's.
    let res = staff
        .post_form(
            &format!(
                "/staff/cases/{case_id}/vehicles/{}/remove",
                uuid::Uuid::now_v7()
            ),
            &[("csrf_token", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_approve_form_counts_the_released_materials_of_each_kind() {
    let app = spawn_app().await;
    let (staff, _party, case_id) = served_case(&app, "2026-计数-1").await;
    for title in ["照片一", "照片二"] {
        let id = uploaded(&staff, &case_id, "scene_photo", title, "p.png", PNG).await;
        decide(&staff, &case_id, &id, "release", &[]).await;
    }
    uploaded(&staff, &case_id, "scene_diagram", "草稿", "d.png", PNG).await;
    let withheld = uploaded(&staff, &case_id, "survey_record", "笔录", "r.pdf", PDF).await;
    decide(
        &staff,
        &case_id,
        &withheld,
        "withhold",
        &[("ground", "personal_privacy")],
    )
    .await;
    let status = insurer_applies(&app, "110105", "2026-计数-1").await;
    let page = staff
        .get(&format!("/staff/applications/{}", application_id(&status)))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"id="released-scene_photo">2<"#), "{page}");
    assert!(
        page.contains(r#"id="released-scene_diagram">0<"#),
        "a draft is not out"
    );
    assert!(
        page.contains(r#"id="released-survey_record">0<"#),
        "nor a withheld item"
    );
}

#[tokio::test]
async fn revoking_ends_the_grant_at_once_and_tells_the_applicant() {
    let app = spawn_app().await;
    let (staff, _party, case_id, id, insurer) = approved_insurer(&app, "2026-撤销-1").await;
    let shown = (today() + time::Duration::days(30)).to_string();
    let page = staff
        .get(&format!("/staff/applications/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"id="revoke-form""#) && page.contains(r#"id="shorten-form""#));

    // A reason is required; without confirming, the officer is asked first and nothing changes.
    let res = act(
        &staff,
        &id,
        "revoke",
        &[("reason", ""), ("shown_until", &shown)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let reason = "保险公司已撤回授权";
    let res = act(
        &staff,
        &id,
        "revoke",
        &[("reason", reason), ("shown_until", &shown)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains(r#"name="confirmed""#));
    assert_eq!(
        insurer.get(&format!("/cases/{case_id}")).await.status(),
        StatusCode::OK
    );

    let res = act(
        &staff,
        &id,
        "revoke",
        &[
            ("reason", reason),
            ("shown_until", &shown),
            ("confirmed", "yes"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let row = application(&app, &id).await;
    assert_eq!(row.state.as_str(), "revoked");
    // Refused at once, and told why (not a case that vanished).
    let res = insurer.get(&format!("/cases/{case_id}")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("您的查询许可已被撤销"));
    assert_eq!(
        insurer
            .get(&format!("/cases/{case_id}/bundle.zip"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert!(
        events(&app, "case.view")
            .await
            .iter()
            .any(|e| e.outcome == "denied" && e.details.contains("grant_revoked"))
    );
    assert_eq!(
        told(&app, "access.revoked").await,
        1,
        "the applicant is told"
    );
    let revoked = events(&app, "access.revoke").await;
    assert_eq!(revoked.len(), 1);
    assert!(revoked[0].details.contains(reason));
    let inbox = insurer.get("/inbox").await.text().await.unwrap();
    assert!(inbox.contains("查询许可已被交警大队撤销"), "{inbox}");

    // The page shows it revoked, with no form left to act on it.
    let page = staff
        .get(&format!("/staff/applications/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(reason) && !page.contains(r#"id="revoke-form""#));
    let res = act(
        &staff,
        &id,
        "revoke",
        &[
            ("reason", reason),
            ("shown_until", &shown),
            ("confirmed", "yes"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "revoked once");
}

#[tokio::test]
async fn shortening_moves_the_last_day_and_tells_the_applicant() {
    let app = spawn_app().await;
    let (staff, _party, case_id, id, insurer) = approved_insurer(&app, "2026-缩短-1").await;
    let shown = (today() + time::Duration::days(30)).to_string();
    let shorten = |until: String| {
        let (staff, id, shown) = (&staff, &id, shown.clone());
        async move {
            act(
                staff,
                id,
                "shorten",
                &[
                    ("until", &until),
                    ("shown_until", &shown),
                    ("confirmed", "yes"),
                ],
            )
            .await
        }
    };
    // Not before today, and earlier than the last day it has.
    let yesterday = (today() - time::Duration::days(1)).to_string();
    assert_eq!(shorten(yesterday).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        shorten(shown.clone()).await.status(),
        StatusCode::BAD_REQUEST
    );
    let later = (today() + time::Duration::days(40)).to_string();
    assert_eq!(shorten(later).await.status(), StatusCode::BAD_REQUEST);
    // A form drawn before another officer's change is refused, not applied to the new state.
    let res = act(
        &staff,
        &id,
        "shorten",
        &[
            ("until", &(today() + time::Duration::days(3)).to_string()),
            (
                "shown_until",
                &(today() + time::Duration::days(29)).to_string(),
            ),
            ("confirmed", "yes"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let new_last = today() + time::Duration::days(3);
    assert_eq!(
        shorten(new_last.to_string()).await.status(),
        StatusCode::SEE_OTHER
    );
    let row = application(&app, &id).await;
    assert_eq!(row.granted_until, Some(new_last));
    assert_eq!(row.state.as_str(), "approved");
    assert_eq!(told(&app, "access.shortened").await, 1);
    assert_eq!(events(&app, "access.shorten").await.len(), 1);

    // Still open until the new last day, closed after it.
    assert_eq!(
        insurer.get(&format!("/cases/{case_id}")).await.status(),
        StatusCode::OK
    );
    app.state
        .clock
        .set(time::OffsetDateTime::now_utc() + time::Duration::days(4));
    assert_eq!(
        insurer.get(&format!("/cases/{case_id}")).await.status(),
        StatusCode::FORBIDDEN
    );
    app.state.clock.set(time::OffsetDateTime::now_utc());
}

#[tokio::test]
async fn two_officers_revoking_at_once_revoke_once_and_tell_the_applicant_once() {
    let app = spawn_app().await;
    let (staff, _party, _case_id, id, _insurer) = approved_insurer(&app, "2026-撤销-2").await;
    let shown = (today() + time::Duration::days(30)).to_string();
    let csrf = staff.csrf_from(&format!("/staff/applications/{id}")).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let client = staff.client.clone();
        let url = format!("{}/staff/applications/{id}/revoke", staff.address);
        let fields = vec![
            ("csrf_token".to_owned(), csrf.clone()),
            ("reason".to_owned(), "授权期限已届满".to_owned()),
            ("shown_until".to_owned(), shown.clone()),
            ("confirmed".to_owned(), "yes".to_owned()),
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
    let mut revoked = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::SEE_OTHER => revoked += 1,
            StatusCode::BAD_REQUEST => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(revoked, 1);
    assert_eq!(told(&app, "access.revoked").await, 1, "told once");
    // Every attempt the log records as allowed but that found the grant changed is followed by
    // its failure: the log shows one revocation.
    let logged = events(&app, "access.revoke").await;
    let allowed = logged.iter().filter(|e| e.outcome == "allowed").count();
    let failed = logged.iter().filter(|e| e.outcome == "failed").count();
    assert_eq!(allowed - failed, 1, "{logged:?}");
}

#[tokio::test]
async fn the_parties_are_told_when_an_insurer_is_granted_access_and_their_history_names_the_company()
 {
    let app = spawn_app().await;
    let (_staff, party, case_id, _id, insurer) = approved_insurer(&app, "2026-告知-1").await;
    assert_eq!(told(&app, "case.access_granted").await, 1, "the one party");
    let inbox = party.get("/inbox").await.text().await.unwrap();
    assert!(
        inbox.contains("保险公司 中国人民财产保险 李**") && inbox.contains("现场图"),
        "who, in full for the company, masked for the person, and which kinds: {inbox}"
    );
    assert!(!inbox.contains("李明"), "the person's name is masked");
    // The insurer looked at the case: the party's history names the company in full.
    insurer.get(&format!("/cases/{case_id}")).await;
    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("保险公司 中国人民财产保险 李**"), "{page}");
    assert!(!page.contains("李明"));
}

#[tokio::test]
async fn the_queue_shows_who_applied_how_long_ago_and_when_a_review_must_be_forwarded() {
    let app = spawn_app().await;
    let (staff, party, case_id) = served_case(&app, "2026-待办-1").await;
    insurer_applies(&app, "110105", "2026-待办-1").await;
    let res = file_review(&party, &case_id, "认定事实不清，责任划分不当。", &[], &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let forward_by = today() + time::Duration::days(2);

    app.state
        .clock
        .set(time::OffsetDateTime::now_utc() + time::Duration::days(2));
    let queue = staff.get("/staff").await.text().await.unwrap();
    app.state.clock.set(time::OffsetDateTime::now_utc());
    assert!(
        queue.contains("李明") && queue.contains("中国人民财产保险"),
        "{queue}"
    );
    assert!(queue.contains("张伟"), "the party who applied for review");
    assert!(queue.contains("2天前"), "{queue}");
    assert!(
        queue.contains(r#"id="forward-by-"#) && queue.contains(&forward_by.to_string()),
        "{queue}"
    );

    let page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("中国人民财产保险") && page.contains(&forward_by.to_string()));
}
