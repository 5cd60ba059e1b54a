//! The case's timeline (办理进度) through the running server: what the portal records itself,
//! what staff record and correct, and what the parties see of it.

use evidence_portal::db::entities::case_milestone;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::auth::{PASSWORD, activate, events};
use crate::cases::{open_case, registered, set_status, staff_of, today};
use crate::helpers::{TestApp, assert_status, client, csrf_in, header, spawn_app};
use crate::materials::{PDF, uploaded};

const PARTY_ID: &str = "110101199003070011";

async fn record(staff: &TestApp, case_id: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let page = format!("/staff/cases/{case_id}");
    let csrf = csrf_in(&staff.get(&page).await.text().await.unwrap());
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    staff.post_form(&format!("{page}/milestones"), &all).await
}

async fn entries(app: &TestApp) -> Vec<case_milestone::Model> {
    case_milestone::Entity::find()
        .order_by_asc(case_milestone::Column::RecordedAt)
        .all(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn staff_record_and_correct_milestones_and_the_party_sees_the_current_timeline() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-530", false).await;
    let code = registered(&staff, &case_id, "甲", PARTY_ID, "张伟").await;
    let party = app.with_client(client());
    assert_status(
        &activate(&party, PARTY_ID, &code, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
    let case_page = format!("/cases/{case_id}");
    let staff_page = format!("/staff/cases/{case_id}");

    // Opening the case put its first entry there. The case is not open to the party yet: its
    // card on "My cases" carries the whole timeline and what comes next.
    let html = party.get("/cases").await.text().await.unwrap();
    assert!(html.contains("案件受理"), "accepted, by the portal: {html}");
    assert!(html.contains("下一步：民警调查取证"));

    let today = today();
    let res = record(
        &staff,
        &case_id,
        &[
            ("stage", "examination"),
            ("occurred_on", &today),
            ("note", "车辆已送检，结果出来后通知您"),
            ("internal_note", "送市交通事故鉴定所，编号J-77"),
        ],
    )
    .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_eq!(header(&res, "location"), format!("{staff_page}#timeline"));
    let html = party.get("/cases").await.text().await.unwrap();
    assert!(html.contains("检验鉴定") && html.contains("车辆已送检，结果出来后通知您"));
    assert!(
        !html.contains("J-77"),
        "the note for the file stays with staff"
    );

    // A correction: the party sees the corrected entry only; staff see both, marked.
    let examination = entries(&app)
        .await
        .into_iter()
        .find(|e| !e.automatic)
        .unwrap();
    let res = record(
        &staff,
        &case_id,
        &[
            ("stage", "detention"),
            ("occurred_on", &today),
            ("note", "车辆已依法扣留"),
            ("corrects", &examination.id.to_string()),
        ],
    )
    .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    let html = party.get("/cases").await.text().await.unwrap();
    assert!(html.contains("扣留扣押") && html.contains("车辆已依法扣留"));
    assert!(
        !html.contains("车辆已送检"),
        "the corrected entry is gone for the party"
    );
    let html = staff.get(&staff_page).await.text().await.unwrap();
    assert!(
        html.contains("车辆已送检") && html.contains("J-77"),
        "kept for staff"
    );
    assert!(html.contains(r#"class="replaced""#) && html.contains("更正："));
    assert_eq!(entries(&app).await.len(), 3, "nothing deleted");

    // Refusals say why and mark the field; nothing is recorded.
    let res = record(
        &staff,
        &case_id,
        &[
            ("stage", "mediation"),
            ("occurred_on", &today),
            ("corrects", &examination.id.to_string()),
        ],
    )
    .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("只能更正本案尚未更正的记录"));
    assert!(html.contains(r#"id="ms-corrects" name="corrects" aria-invalid="true""#));
    let res = record(
        &staff,
        &case_id,
        &[("stage", "mediation"), ("occurred_on", "2099-01-01")],
    )
    .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("日期应在事故发生之日与今天之间")
    );
    let res = record(
        &staff,
        &case_id,
        &[("stage", "nowhere"), ("occurred_on", &today)],
    )
    .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert_eq!(entries(&app).await.len(), 3);

    // Another brigade's staff cannot write into this case's timeline.
    let other = staff_of(&app, "110106", "li.na").await;
    let res = record(
        &other,
        &case_id,
        &[("stage", "mediation"), ("occurred_on", &today)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // An expert opinion released and the determination served add their own entries.
    let opinion = uploaded(&staff, &case_id, "expert_opinion", "鉴定意见", "o.pdf", PDF).await;
    crate::materials::decide(&staff, &case_id, &opinion, "release", &[]).await;
    let res = set_status(
        &staff,
        &case_id,
        &[
            ("to", "served"),
            ("service_kind", "determination"),
            ("served_on", &today),
        ],
    )
    .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    let automatic: Vec<String> = entries(&app)
        .await
        .into_iter()
        .filter(|e| e.automatic)
        .map(|e| e.stage.as_str().to_owned())
        .collect();
    assert_eq!(automatic, ["accepted", "examination", "determination"]);
    // Served, the case page is open to the party, with the whole timeline and what comes next.
    let html = party.get(&case_page).await.text().await.unwrap();
    assert!(
        html.contains(r#"id="timeline""#) && html.contains("案件受理") && html.contains("扣留扣押")
    );
    assert!(html.contains("事故认定") && html.contains("下一步：如对事故认定有异议"));
    assert!(!html.contains("车辆已送检") && !html.contains("J-77"));
    let cards = party.get("/cases").await.text().await.unwrap();
    assert!(cards.contains("最新进度") && cards.contains("事故认定"));
    assert!(
        !cards.contains("案件受理"),
        "only the latest entry on an open case's card"
    );

    // Staff entries are audited, with whether notes were given and never their words.
    let audited = events(&app, "case.milestone").await;
    assert_eq!(audited.len(), 2);
    assert!(audited[1].details.contains(&examination.id.to_string()));
    assert!(audited.iter().all(|e| !e.details.contains("J-77")));
    let own = case_milestone::Entity::find()
        .filter(case_milestone::Column::Automatic.eq(false))
        .all(&app.state.db)
        .await
        .unwrap();
    assert!(own.iter().all(|e| e.recorded_by.is_some()));
}
