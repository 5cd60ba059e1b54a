//! Cases, parties and the access policy through the running server.

use evidence_portal::accounts::{self, NewAccount};
use evidence_portal::audit::Actor;
use evidence_portal::auth::identifier::Identifier;
use evidence_portal::db::entities::{audit_event, case};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::auth::{PASSWORD, activate, events, location};
use crate::helpers::{TestApp, assert_status, client, spawn_app};
use evidence_portal::vocab::{MaterialKind, MaterialState};

const PARTY_A: &str = "110101199003070011";
const PARTY_B: &str = "440304198511223338";

/// A brigade with `code`, and a signed-in staff member of it.
pub async fn staff_of(app: &TestApp, code: &str, username: &str) -> TestApp {
    let dep = match accounts::departments(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.code == code)
    {
        Some(d) => d,
        None => accounts::create_department(
            &app.state.db,
            &app.state.audit,
            Actor::SYSTEM,
            code,
            &format!("{code}大队"),
        )
        .await
        .unwrap(),
    };
    let (_, issued) = accounts::create(
        &app.state.db,
        &app.state.key,
        &app.state.audit,
        Actor::SYSTEM,
        NewAccount {
            role: evidence_portal::vocab::Role::Staff,
            identifier: Identifier::Username(username.into()),
            display_name: format!("民警{username}"),
            department_id: Some(dep.id),
        },
    )
    .await
    .unwrap();
    let browser = app.with_client(client());
    assert_status(
        &activate(&browser, username, &issued.code, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
    browser
}

pub async fn open_case(staff: &TestApp, number: &str, fatal: bool) -> String {
    let csrf = staff.csrf_from("/staff/cases/new").await;
    let mut fields = vec![
        ("csrf_token", csrf.as_str()),
        ("case_number", number),
        ("occurred_at", "2026-11-20T08:30"),
        ("place", "朝阳路与建国路交叉口"),
        ("summary", "两车相撞"),
    ];
    if fatal {
        fields.push(("fatal", "on"));
    }
    let res = staff.post_form("/staff/cases", &fields).await;
    assert_status(&res, StatusCode::SEE_OTHER);
    location(&res)
        .trim_start_matches("/staff/cases/")
        .to_owned()
}

/// Registers a party and returns the access code from the notice (if one was issued).
pub async fn register(
    staff: &TestApp,
    case_id: &str,
    label: &str,
    id: &str,
    name: &str,
) -> reqwest::Response {
    let page = format!("/staff/cases/{case_id}");
    let csrf = staff.csrf_from(&page).await;
    let res = staff
        .post_form(
            &format!("{page}/parties"),
            &[
                ("csrf_token", csrf.as_str()),
                ("label", label),
                ("name", name),
                ("id_kind", "citizen_id"),
                ("identifier", id),
                ("mobile", "13800138000"),
                ("role", "driver"),
            ],
        )
        .await;
    follow_notice(staff, res).await
}

/// The notice a registration, reprint or reset leads to (as a browser follows the `303`); any
/// other answer as it came.
pub async fn follow_notice(staff: &TestApp, res: reqwest::Response) -> reqwest::Response {
    if res.status() != StatusCode::SEE_OTHER {
        return res;
    }
    let location = crate::helpers::header(&res, "location").to_owned();
    assert!(location.ends_with("/notice"), "{location}");
    staff.get(&location).await
}

/// Registers a party (`register`) and returns the access code printed on the notice.
pub async fn registered(
    staff: &TestApp,
    case_id: &str,
    label: &str,
    id: &str,
    name: &str,
) -> String {
    let notice = register(staff, case_id, label, id, name)
        .await
        .text()
        .await
        .unwrap();
    code_on(&notice).expect("the notice shows an access code")
}

pub fn code_on(html: &str) -> Option<String> {
    let start = html.find(r#"id="access-code">"#)? + 17;
    Some(html[start..].split('<').next()?.to_owned())
}

pub async fn set_status(
    staff: &TestApp,
    case_id: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let page = format!("/staff/cases/{case_id}");
    let csrf = staff.csrf_from(&page).await;
    // The move confirmed, as on the confirmation page (`flows` tests the page itself).
    let mut all = vec![("csrf_token", csrf.as_str()), ("confirmed", "yes")];
    all.extend_from_slice(fields);
    staff.post_form(&format!("{page}/status"), &all).await
}

/// Today's date in China Standard Time, as the forms take it.
pub fn today() -> String {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        .to_string()
}

#[tokio::test]
async fn staff_run_a_case_from_opening_to_service_and_the_party_sees_it() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    assert_eq!(
        location(&crate::auth::sign_in(&app.with_client(client()), "wang.li", PASSWORD).await),
        "/staff"
    );
    let case_id = open_case(&staff, "京公交认字[2026]第00123号", true).await;
    let html = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("调查中"));

    let res = register(&staff, &case_id, "甲", PARTY_A, "张伟").await;
    assert_status(&res, StatusCode::OK);
    let notice = res.text().await.unwrap();
    assert!(notice.contains("网上查阅通知书"));
    assert!(notice.contains("京公交认字[2026]第00123号"));
    assert!(notice.contains("110105大队"));
    assert!(
        notice.contains("1101**********0011"),
        "masked ID on the notice"
    );
    assert!(!notice.contains(PARTY_A), "never the clear ID");
    let code = code_on(&notice).expect("a code on the notice");

    let party = app.with_client(client());
    assert_status(
        &activate(&party, PARTY_A, &code, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
    let mine = party.get("/cases").await.text().await.unwrap();
    assert!(mine.contains("京公交认字[2026]第00123号"));
    assert!(mine.contains("暂未开放"), "investigating: not open yet");
    assert_status(
        &party.get(&format!("/cases/{case_id}")).await,
        StatusCode::FORBIDDEN,
    );

    // Art. 63 disclosure: view only.
    assert_status(
        &set_status(&staff, &case_id, &[("to", "disclosing")]).await,
        StatusCode::SEE_OTHER,
    );
    let page = party.get(&format!("/cases/{case_id}")).await;
    assert_status(&page, StatusCode::OK);
    assert!(page.text().await.unwrap().contains("只能在线查看"));

    // Service of the determination: open, with the review deadline (service + 3 days).
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
    let html = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let deadline = time::Date::parse(
        &served_on,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap()
    .checked_add(time::Duration::days(3))
    .unwrap();
    // Written as every deadline is: "截至 12月10日（含当日）…".
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let deadline = format!(
        "截至 {}（含当日）",
        evidence_portal::routes::deadline::day(evidence_portal::i18n::Locale::Zh, deadline, today)
    );
    assert!(html.contains(&deadline), "review deadline {deadline} shown");
    assert!(html.contains("事故认定书已于"));

    assert_status(
        &set_status(&staff, &case_id, &[("to", "closed")]).await,
        StatusCode::SEE_OTHER,
    );
    // No going back.
    let res = set_status(&staff, &case_id, &[("to", "investigating")]).await;
    assert_status(&res, StatusCode::BAD_REQUEST);

    for action in ["case.create", "party.register", "case.status", "case.view"] {
        assert!(!events(&app, action).await.is_empty(), "{action} audited");
    }
    let statuses = events(&app, "case.status").await;
    assert_eq!(statuses.len(), 3);
    assert!(statuses.iter().all(|e| e.actor_role == "staff"));
}

#[tokio::test]
async fn disclosure_is_only_for_fatal_or_complex_cases() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "A-1", false).await;
    let res = set_status(&staff, &case_id, &[("to", "disclosing")]).await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("第六十三条"));
    // Serving needs the kind of document and a date not in the future.
    let res = set_status(
        &staff,
        &case_id,
        &[("to", "served"), ("served_on", &today())],
    )
    .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let res = set_status(
        &staff,
        &case_id,
        &[
            ("to", "served"),
            ("service_kind", "certificate"),
            ("served_on", "2999-01-01"),
        ],
    )
    .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let row = case::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.status.as_str(),
        "investigating",
        "refusals change nothing"
    );
}

#[tokio::test]
async fn case_numbers_are_unique_within_a_brigade_only() {
    let app = spawn_app().await;
    let a = staff_of(&app, "110105", "wang.li").await;
    let b = staff_of(&app, "310101", "li.jing").await;
    open_case(&a, "2026-001", false).await;
    let csrf = a.csrf_from("/staff/cases/new").await;
    let res = a
        .post_form(
            "/staff/cases",
            &[
                ("csrf_token", &csrf),
                ("case_number", "2026-001"),
                ("occurred_at", "2026-11-20T08:30"),
                ("place", "x"),
            ],
        )
        .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("相同事故编号"));
    open_case(&b, "2026-001", false).await;
    assert_eq!(
        case::Entity::find().all(&app.state.db).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn other_brigades_cases_do_not_exist_for_staff() {
    let app = spawn_app().await;
    let a = staff_of(&app, "110105", "wang.li").await;
    let b = staff_of(&app, "310101", "li.jing").await;
    let case_id = open_case(&a, "2026-001", false).await;
    for path in [
        format!("/staff/cases/{case_id}"),
        format!("/staff/cases/{case_id}/edit"),
    ] {
        assert_status(&b.get(&path).await, StatusCode::NOT_FOUND);
    }
    let csrf = b.csrf_from("/staff/cases").await;
    let res = b
        .post_form(
            &format!("/staff/cases/{case_id}/status"),
            &[("csrf_token", &csrf), ("to", "closed")],
        )
        .await;
    assert_status(&res, StatusCode::NOT_FOUND);
    let list = b.get("/staff/cases").await.text().await.unwrap();
    assert!(!list.contains("2026-001"));
    let denied: Vec<audit_event::Model> = audit_event::Entity::find()
        .filter(audit_event::Column::Outcome.eq("denied"))
        .all(&app.state.db)
        .await
        .unwrap();
    assert!(
        denied.iter().any(|e| e.details.contains("other_brigade")),
        "denials are audited"
    );
}

#[tokio::test]
async fn parties_see_only_their_own_cases() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let mine = open_case(&staff, "2026-001", false).await;
    let theirs = open_case(&staff, "2026-002", false).await;
    let code = registered(&staff, &mine, "甲", PARTY_A, "张伟").await;
    register(&staff, &theirs, "甲", PARTY_B, "李娜").await;
    for id in [&mine, &theirs] {
        set_status(
            &staff,
            id,
            &[
                ("to", "served"),
                ("service_kind", "determination"),
                ("served_on", &today()),
            ],
        )
        .await;
    }
    let party = app.with_client(client());
    activate(&party, PARTY_A, &code, PASSWORD).await;
    assert_status(&party.get(&format!("/cases/{mine}")).await, StatusCode::OK);
    assert_status(
        &party.get(&format!("/cases/{theirs}")).await,
        StatusCode::NOT_FOUND,
    );
    assert_status(
        &party
            .get("/cases/00000000-0000-0000-0000-000000000000")
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_status(&party.get("/cases/not-a-uuid").await, StatusCode::NOT_FOUND);
    let list = party.get("/cases").await.text().await.unwrap();
    assert!(list.contains("2026-001") && !list.contains("2026-002"));
    // Staff pages are not theirs.
    assert_status(&party.get("/staff/cases").await, StatusCode::FORBIDDEN);
    assert_status(
        &party.get(&format!("/staff/cases/{mine}")).await,
        StatusCode::FORBIDDEN,
    );
}

#[tokio::test]
async fn an_existing_party_account_is_reused_and_codes_can_be_reissued() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let first = open_case(&staff, "2026-001", false).await;
    let second = open_case(&staff, "2026-002", false).await;
    let code1 = registered(&staff, &first, "甲", PARTY_A, "张伟").await;

    // Not yet activated: registering on another case issues a new code (the old one stops).
    let code2 = registered(&staff, &second, "乙", PARTY_A, "张伟").await;
    assert_ne!(code1, code2);
    let party = app.with_client(client());
    let (status, _) = (
        activate(&party, PARTY_A, &code1, PASSWORD).await.status(),
        (),
    );
    assert_eq!(status, StatusCode::OK, "the first code no longer works");
    assert_status(
        &activate(&party, PARTY_A, &code2, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
    let accounts = evidence_portal::db::entities::account::Entity::find()
        .filter(evidence_portal::db::entities::account::Column::Role.eq("party"))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(accounts.len(), 1, "one person, one account");

    // Activated: a third case needs no code; the notice says to sign in.
    let third = open_case(&staff, "2026-003", false).await;
    let notice = register(&staff, &third, "丙", PARTY_A, "张伟")
        .await
        .text()
        .await
        .unwrap();
    assert!(code_on(&notice).is_none());
    assert!(notice.contains("您已开通账户"));

    // The same person twice on one case, a taken label, a bad ID: refused, nothing created.
    let res = register(&staff, &third, "丁", PARTY_A, "张伟").await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let res = register(&staff, &third, "丙", PARTY_B, "李娜").await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let res = register(&staff, &third, "戊", "110101199003070012", "某").await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("校验位"));

    // Reprinting the notice of an activated party never resets the account: no code, and the
    // notice says to sign in with the existing password.
    let party_id = party_id_on(&staff, &third).await;
    let csrf = staff.csrf_from(&format!("/staff/cases/{third}")).await;
    let res = staff
        .post_form(
            &format!("/staff/cases/{third}/parties/{party_id}/code"),
            &[("csrf_token", &csrf)],
        )
        .await;
    let res = follow_notice(&staff, res).await;
    assert_status(&res, StatusCode::OK);
    let reprint = res.text().await.unwrap();
    assert!(code_on(&reprint).is_none());
    assert!(reprint.contains("您已开通账户"));
    assert!(
        reprint.contains(
            r#"<p class="flash" role="status">该当事人的账户已激活，继续使用其本人设置的密码"#
        ),
        "the reprint says why it has no code"
    );
    assert_status(&party.get("/cases").await, StatusCode::OK);

    // Resetting is its own, confirmed action with a reason: unconfirmed, nothing happens.
    let reset = |confirm: bool| {
        let mut fields = vec![
            ("csrf_token", csrf.as_str()),
            ("reason", "当事人遗失密码，本人到队申请"),
        ];
        if confirm {
            fields.push(("confirm", "yes"));
        }
        let staff = &staff;
        let path = format!("/staff/cases/{third}/parties/{party_id}/reset");
        async move { follow_notice(staff, staff.post_form(&path, &fields).await).await }
    };
    assert_status(&reset(false).await, StatusCode::BAD_REQUEST);
    assert_status(&party.get("/cases").await, StatusCode::OK);
    let res = reset(true).await;
    assert_status(&res, StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(
        page.contains(r#"<p class="flash" role="status">已重置当事人丙的账户"#),
        "the reset is said"
    );
    let code3 = code_on(&page).unwrap();
    assert_status(&party.get("/cases").await, StatusCode::SEE_OTHER);
    let again = app.with_client(client());
    assert_status(
        &activate(&again, PARTY_A, &code3, "Another-Lotus-Pass-9").await,
        StatusCode::SEE_OTHER,
    );
    // Told once, at the next sign-in: when, by which brigade, why.
    let mine = again.get("/cases").await.text().await.unwrap();
    assert!(
        mine.contains("110105大队") && mine.contains("当事人遗失密码"),
        "{mine}"
    );
    let mine = again.get("/cases").await.text().await.unwrap();
    assert!(!mine.contains("当事人遗失密码"));
}

/// The id of the first party row on a staff case page.
pub async fn party_id_on(staff: &TestApp, case: &str) -> String {
    let page = staff
        .get(&format!("/staff/cases/{case}"))
        .await
        .text()
        .await
        .unwrap();
    page.split(&format!("/staff/cases/{case}/parties/"))
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_case_list_searches_and_pages() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    for i in 0..23 {
        open_case(&staff, &format!("2026-{i:03}"), false).await;
    }
    let special = open_case(&staff, "SPECIAL-1", false).await;
    register(&staff, &special, "甲", PARTY_A, "欧阳修").await;

    let page1 = staff.get("/staff/cases").await.text().await.unwrap();
    assert!(page1.contains("第 1 / 2 页"), "24 cases, 20 a page");
    assert!(page1.contains(r#"rel="next""#));
    let page2 = staff.get("/staff/cases?page=1").await.text().await.unwrap();
    assert!(page2.contains("第 2 / 2 页"));
    assert_eq!(
        page2.matches("<tr><td><a href=\"/staff/cases/").count(),
        4,
        "the last 4 on page 2"
    );

    let by_number = staff
        .get("/staff/cases?number=SPECIAL")
        .await
        .text()
        .await
        .unwrap();
    assert!(by_number.contains("SPECIAL-1") && !by_number.contains("2026-001"));
    let by_party = staff
        .get("/staff/cases?party=%E6%AC%A7%E9%98%B3")
        .await
        .text()
        .await
        .unwrap();
    assert!(by_party.contains("SPECIAL-1") && !by_party.contains("2026-001"));
    let by_date = staff
        .get("/staff/cases?from=2026-11-21")
        .await
        .text()
        .await
        .unwrap();
    assert!(by_date.contains("没有符合条件的案件"));
    let by_date = staff
        .get("/staff/cases?from=2026-11-20&to=2026-11-20")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        by_date.contains("SPECIAL-1") && by_date.contains("第 1 / 2 页"),
        "all 24 that day"
    );
    set_status(
        &staff,
        &special,
        &[
            ("to", "served"),
            ("service_kind", "certificate"),
            ("served_on", &today()),
        ],
    )
    .await;
    let by_status = staff
        .get("/staff/cases?status=served")
        .await
        .text()
        .await
        .unwrap();
    assert!(by_status.contains("SPECIAL-1") && !by_status.contains("2026-001"));
}

pub const AGENT_MOBILE: &str = "13912345678";
/// A minimal PDF: what the sniffer recognises.
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

pub async fn grant(
    staff: &TestApp,
    case_id: &str,
    principal: &str,
    until: &str,
    document: Option<(&str, &[u8])>,
) -> reqwest::Response {
    let page = format!("/staff/cases/{case_id}");
    let csrf = staff.csrf_from(&page).await;
    let mut form = reqwest::multipart::Form::new()
        .text("principal", principal.to_owned())
        .text("agent_name", "赵律师")
        .text("agent_identifier", AGENT_MOBILE)
        .text("law_firm", "北京某某律师事务所")
        .text("valid_from", today())
        .text("valid_until", until.to_owned());
    if let Some((name, bytes)) = document {
        form = form.part(
            "document",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned()),
        );
    }
    let res = staff
        .client
        .post(format!(
            "{}{page}/delegations?csrf_token={csrf}",
            staff.address
        ))
        .multipart(form)
        .send()
        .await
        .unwrap();
    // A granted delegation leads to the agent's notice, which shows the code once.
    if res.status() != StatusCode::SEE_OTHER {
        return res;
    }
    let location = crate::helpers::header(&res, "location").to_owned();
    assert!(location.ends_with("/notice"), "{location}");
    staff.get(&location).await
}

/// A served case with party 甲 registered; returns (case id, party row id).
pub async fn served_case_with_party(staff: &TestApp) -> (String, String) {
    let case_id = open_case(staff, "2026-100", true).await;
    register(staff, &case_id, "甲", PARTY_A, "张伟").await;
    set_status(
        staff,
        &case_id,
        &[
            ("to", "served"),
            ("service_kind", "determination"),
            ("served_on", &today()),
        ],
    )
    .await;
    let page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let principal = page
        .split(r#"name="principal">"#)
        .nth(1)
        .expect("the delegation form");
    let party_id = principal
        .split(r#"<option value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    (case_id, party_id)
}

/// An agent for `party_id` on `case_id` (delegation until next month), activated, with a
/// personal API token: (the agent's browser, the token).
pub async fn agent_with_token(
    app: &TestApp,
    staff: &TestApp,
    case_id: &str,
    party_id: &str,
) -> (TestApp, String) {
    let code = code_on(
        &grant(
            staff,
            case_id,
            party_id,
            &in_a_month(),
            Some(("a.pdf", crate::materials::PDF)),
        )
        .await
        .text()
        .await
        .unwrap(),
    )
    .unwrap();
    let agent = app.with_client(client());
    activate(&agent, AGENT_MOBILE, &code, PASSWORD).await;
    let csrf = agent.csrf_from("/account").await;
    let res = agent
        .post_form(
            "/account/tokens",
            &[("csrf_token", &csrf), ("name", "curl")],
        )
        .await;
    let html = agent
        .get(crate::helpers::header(&res, "location"))
        .await
        .text()
        .await
        .unwrap();
    let start = html.find(r#"id="new-token">"#).unwrap() + 15;
    let token = html[start..].split('<').next().unwrap().to_owned();
    (agent, token)
}

/// A served case (staff of brigade 110105) with party 甲 (张伟) signed in: (staff, party, case id).
pub async fn served_case(app: &TestApp, number: &str) -> (TestApp, TestApp, String) {
    let staff = staff_of(app, "110105", "wang.li").await;
    let case_id = open_case(&staff, number, true).await;
    let code = registered(&staff, &case_id, "甲", "110101199003070011", "张伟").await;
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        .to_string();
    set_status(
        &staff,
        &case_id,
        &[
            ("to", "served"),
            ("service_kind", "determination"),
            ("served_on", &today),
        ],
    )
    .await;
    let party = app.with_client(client());
    activate(&party, "110101199003070011", &code, PASSWORD).await;
    (staff, party, case_id)
}

pub fn in_a_month() -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .date()
        .to_string()
}

#[tokio::test]
async fn an_agent_acts_within_the_delegation_until_it_is_revoked() {
    use sha2::Digest;
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let (case_id, party_id) = served_case_with_party(&staff).await;

    let res = grant(
        &staff,
        &case_id,
        &party_id,
        &in_a_month(),
        Some(("授权委托书.pdf", PDF)),
    )
    .await;
    assert_status(&res, StatusCode::OK);
    let notice = res.text().await.unwrap();
    assert!(notice.contains("代理人") && notice.contains("139****5678"));
    let code = code_on(&notice).expect("a code for the new agent");

    // The document is kept as an internal material, byte for byte.
    let doc = evidence_portal::db::entities::material::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.kind.as_str(), "authorisation");
    assert_eq!(doc.content_type, "application/pdf");
    assert_eq!(doc.original_name, "授权委托书.pdf");
    assert_eq!(doc.sha256, hex::encode(sha2::Sha256::digest(PDF)));
    assert_eq!(
        app.state
            .store
            .size(&evidence_portal::store::ObjectKey::from_stored(&doc.object_key).unwrap())
            .await
            .unwrap(),
        PDF.len() as u64
    );

    let agent = app.with_client(client());
    assert_status(
        &activate(&agent, AGENT_MOBILE, &code, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
    let mine = agent.get("/cases").await.text().await.unwrap();
    assert!(
        mine.contains("2026-100") && mine.contains("代理当事人甲"),
        "{mine}"
    );
    assert_status(
        &agent.get(&format!("/cases/{case_id}")).await,
        StatusCode::OK,
    );

    // Revoked: the very next request is refused.
    let page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let delegation_id = page
        .split("/delegations/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let csrf = crate::helpers::csrf_in(&page);
    let revoke = format!("/staff/cases/{case_id}/delegations/{delegation_id}/revoke");
    // Asked first, with the consequence; nothing changes until confirmed.
    let res = staff.post_form(&revoke, &[("csrf_token", &csrf)]).await;
    assert_status(&res, StatusCode::OK);
    let asked = res.text().await.unwrap();
    assert!(asked.contains("将立即不能再查看和下载本案材料"), "{asked}");
    assert!(asked.contains(r#"name="confirmed" value="yes""#));
    assert_status(
        &agent.get(&format!("/cases/{case_id}")).await,
        StatusCode::OK,
    );
    let res = staff
        .post_form(&revoke, &[("csrf_token", &csrf), ("confirmed", "yes")])
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_status(
        &agent.get(&format!("/cases/{case_id}")).await,
        StatusCode::FORBIDDEN,
    );
    assert!(
        !agent
            .get("/cases")
            .await
            .text()
            .await
            .unwrap()
            .contains("2026-100")
    );
    assert_eq!(events(&app, "delegation.grant").await.len(), 1);
    assert_eq!(events(&app, "delegation.revoke").await.len(), 1);
    let denied = events(&app, "case.view")
        .await
        .into_iter()
        .filter(|e| e.outcome == "denied")
        .collect::<Vec<_>>();
    assert!(
        denied
            .iter()
            .any(|e| e.details.contains("delegation_revoked"))
    );
}

#[tokio::test]
async fn an_expired_delegation_is_refused() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let (case_id, party_id) = served_case_with_party(&staff).await;
    let code = code_on(
        &grant(
            &staff,
            &case_id,
            &party_id,
            &in_a_month(),
            Some(("a.pdf", PDF)),
        )
        .await
        .text()
        .await
        .unwrap(),
    )
    .unwrap();
    let agent = app.with_client(client());
    activate(&agent, AGENT_MOBILE, &code, PASSWORD).await;
    assert_status(
        &agent.get(&format!("/cases/{case_id}")).await,
        StatusCode::OK,
    );
    evidence_portal::db::entities::delegation::Entity::update_many()
        .col_expr(
            evidence_portal::db::entities::delegation::Column::ValidUntil,
            sea_orm::sea_query::Expr::value(
                time::OffsetDateTime::now_utc() - time::Duration::minutes(1),
            ),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    assert_status(
        &agent.get(&format!("/cases/{case_id}")).await,
        StatusCode::FORBIDDEN,
    );
    let last = events(&app, "case.view").await.pop().unwrap();
    assert!(
        last.details.contains("delegation_expired"),
        "{}",
        last.details
    );
}

#[tokio::test]
async fn a_delegation_without_a_proper_document_leaves_nothing_behind() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let (case_id, party_id) = served_case_with_party(&staff).await;
    for (what, doc) in [
        (
            "text file",
            Some(("授权.txt", &b"I authorise my lawyer"[..])),
        ),
        (
            "html",
            Some(("a.pdf", &b"<html><script>alert(1)</script></html>"[..])),
        ),
        ("empty", Some(("a.pdf", &b""[..]))),
        ("missing", None),
    ] {
        let res = grant(&staff, &case_id, &party_id, &in_a_month(), doc).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{what}");
    }
    // A good document with a bad field: the document is removed again.
    let res = grant(
        &staff,
        &case_id,
        &party_id,
        "2000-01-01",
        Some(("a.pdf", PDF)),
    )
    .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(
        evidence_portal::db::entities::delegation::Entity::find()
            .all(&app.state.db)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        evidence_portal::db::entities::material::Entity::find()
            .all(&app.state.db)
            .await
            .unwrap()
            .is_empty()
    );
    let keys = app
        .state
        .store
        .keys_under(&format!("cases/{case_id}"))
        .await
        .unwrap();
    assert!(keys.is_empty(), "orphan objects: {keys:?}");
}

#[tokio::test]
async fn my_cases_counts_only_released_current_evidence() {
    use evidence_portal::db::entities::material;
    use sea_orm::{ActiveModelTrait, Set};
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let (case_id, party_id) = served_case_with_party(&staff).await;
    // The authorisation document of a delegation is a material, but never evidence for parties.
    let code = code_on(
        &grant(
            &staff,
            &case_id,
            &party_id,
            &in_a_month(),
            Some(("a.pdf", PDF)),
        )
        .await
        .text()
        .await
        .unwrap(),
    )
    .unwrap();
    let agent = app.with_client(client());
    activate(&agent, AGENT_MOBILE, &code, PASSWORD).await;
    let count = |html: &str| {
        html.split(r#"class="released-count">"#)
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(count(&agent.get("/cases").await.text().await.unwrap()), "0");

    let case_uuid = uuid::Uuid::parse_str(&case_id).unwrap();
    let doc = material::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    for (state, superseded) in [
        ("released", false),
        ("released", true),
        ("withheld", false),
        ("draft", false),
    ] {
        let mut row: material::ActiveModel = doc.clone().into();
        row.id = Set(uuid::Uuid::now_v7());
        row.kind = Set(MaterialKind::SceneDiagram);
        row.state = Set(MaterialState::parse(state).unwrap());
        row.object_key = Set(format!("cases/{case_uuid}/{}", uuid::Uuid::now_v7()));
        row.superseded_by = Set(superseded.then(uuid::Uuid::now_v7));
        row.insert(&app.state.db).await.unwrap();
    }
    assert_eq!(count(&agent.get("/cases").await.text().await.unwrap()), "1");
}

#[tokio::test]
async fn the_audit_export_finds_a_case_by_its_number() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-777", false).await;
    open_case(&staff, "2026-778", false).await;
    let out = crate::cli::run(
        &["audit", "export", "--format", "jsonl", "--case", "2026-777"],
        &app.env,
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::stderr(&out));
    let lines: Vec<serde_json::Value> = crate::cli::stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "only the opening of 2026-777");
    assert_eq!(lines[0]["action"], "case.create");
    assert_eq!(lines[0]["case_id"], case_id);
    let out = crate::cli::run(
        &["audit", "export", "--case", "no-such-number"],
        &app.env,
        "",
    );
    assert_eq!(
        crate::cli::stdout(&out).lines().count(),
        1,
        "only the header"
    );
}

/// The case list's accident-date filter reads dates in China Standard Time: an accident at
/// 07:30 CST (the previous day in UTC) is found on its CST day, one at 23:59 on the day before
/// is not.
#[tokio::test]
async fn the_case_list_finds_night_accidents_on_their_cst_day() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    for (number, at) in [
        ("NIGHT-1", "2026-11-19T23:59"),
        ("NIGHT-2", "2026-11-20T00:00"),
        ("NIGHT-3", "2026-11-20T07:30"),
        ("NIGHT-4", "2026-11-21T00:00"),
    ] {
        let csrf = staff.csrf_from("/staff/cases/new").await;
        let res = staff
            .post_form(
                "/staff/cases",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("case_number", number),
                    ("occurred_at", at),
                    ("place", "朝阳路"),
                    ("summary", "两车相撞"),
                ],
            )
            .await;
        assert_status(&res, StatusCode::SEE_OTHER);
        // As a browser does: to the new case's page (which shows "opened" once).
        staff.get(crate::helpers::header(&res, "location")).await;
    }
    let found = staff
        .get("/staff/cases?from=2026-11-20&to=2026-11-20")
        .await
        .text()
        .await
        .unwrap();
    for (number, there) in [
        ("NIGHT-1", false),
        ("NIGHT-2", true),
        ("NIGHT-3", true),
        ("NIGHT-4", false),
    ] {
        assert_eq!(found.contains(number), there, "{number}");
    }
    // Newest accident first, by instant.
    let (two, three) = (
        found.find("NIGHT-2").unwrap(),
        found.find("NIGHT-3").unwrap(),
    );
    assert!(three < two);
    // Stored in UTC on either backend.
    let row = case::Entity::find()
        .filter(case::Column::CaseNumber.eq("NIGHT-3"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.occurred_at,
        time::macros::datetime!(2026-11-19 23:30 UTC)
    );
    assert_eq!(row.occurred_at.offset(), time::UtcOffset::UTC);
}
