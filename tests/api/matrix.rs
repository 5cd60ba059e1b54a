//! The authorisation matrix: every route the app registers (read from `routes::ROUTES`, so a
//! route added without an entry here fails) × every kind of actor × every relationship to the
//! case, through the running server: the status code, and that each denial of a signed-in actor
//! is audited.

use std::collections::HashMap;

use evidence_portal::db::entities::{
    access_application, account, audit_event, delegation, login_throttle,
};
use evidence_portal::routes::ROUTES;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use crate::auth::{PASSWORD, activate};
use crate::cases::{code_on, open_case, register, registered, set_status, staff_of};
use crate::helpers::{TestApp, client, csrf_in, spawn_app, spawn_app_with};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Who {
    Anonymous,
    Party,
    DisabledParty,
    Agent,
    AgentExpired,
    AgentRevoked,
    Staff,
    StaffOtherBrigade,
    Admin,
    /// An insurer approved for the served case's scene diagrams, download, for 30 days.
    Insurer,
    /// A vehicle owner whose approval (view only) for the served case has ended.
    OwnerExpired,
    /// An insurer approved, through their own application, for another case of brigade A
    /// (scene diagrams, download) — whose mobile number a stranger then gave in an application
    /// for the served case, approved and never claimed: it must open nothing.
    SharedNumber,
}

const EVERYONE: [Who; 12] = [
    Who::Anonymous,
    Who::Party,
    Who::DisabledParty,
    Who::Agent,
    Who::AgentExpired,
    Who::AgentRevoked,
    Who::Staff,
    Who::StaffOtherBrigade,
    Who::Admin,
    Who::Insurer,
    Who::OwnerExpired,
    Who::SharedNumber,
];

/// The case a request names, as the actor relates to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    /// Served, in brigade A; the party's own case; the agents' delegations are on it.
    OwnServed,
    /// Brigade A, still investigating; the party is registered.
    OwnInvestigating,
    /// Brigade A, Art. 63 disclosure; the party is registered.
    OwnDisclosing,
    /// Brigade A, served, another party's case.
    Another,
    /// Brigade B's case.
    OtherBrigade,
    Missing,
}

struct World {
    app: TestApp,
    actors: HashMap<Who, TestApp>,
    csrf: HashMap<Who, String>,
    cases: HashMap<&'static str, String>,
}

fn today() -> String {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        .to_string()
}

async fn delegate(staff: &TestApp, case_id: &str, mobile: &str) -> String {
    let page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let principal = page.split(r#"name="principal">"#).nth(1).unwrap();
    let party_id = principal
        .split(r#"<option value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let csrf = csrf_in(&page);
    let until = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .date()
        .to_string();
    let form = reqwest::multipart::Form::new()
        .text("principal", party_id)
        .text("agent_name", format!("律师{mobile}"))
        .text("agent_identifier", mobile.to_owned())
        .text("valid_from", today())
        .text("valid_until", until)
        .part(
            "document",
            reqwest::multipart::Part::bytes(b"%PDF-1.4\n%%EOF\n".to_vec()).file_name("a.pdf"),
        );
    let res = staff
        .client
        .post(format!(
            "{}/staff/cases/{case_id}/delegations?csrf_token={csrf}",
            staff.address
        ))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let notice = res.headers()["location"].to_str().unwrap().to_owned();
    let res = staff.get(&notice).await;
    code_on(&res.text().await.unwrap()).unwrap()
}

async fn world() -> World {
    // Every actor posts the public application form once.
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_APPLICATIONS_PER_HOUR".into(), "1000".into());
    })
    .await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let staff_b = staff_of(&app, "310101", "li.jing").await;
    let admin = crate::auth::admin(&app).await;

    let served = open_case(&staff, "A-SERVED", true).await;
    let investigating = open_case(&staff, "A-INV", true).await;
    let disclosing = open_case(&staff, "A-DISC", true).await;
    let another = open_case(&staff, "A-OTHER", false).await;
    let other_brigade = open_case(&staff_b, "B-1", false).await;

    let p1 = "110101199003070011";
    let p3 = "310101197001011235";
    let code1 = registered(&staff, &served, "甲", p1, "张伟").await;
    let code3 = registered(&staff, &served, "乙", p3, "赵敏").await;
    // Activated before the other registrations, which would otherwise issue fresh codes.
    let party = app.with_client(client());
    activate(&party, p1, &code1, PASSWORD).await;
    register(&staff, &investigating, "甲", p1, "张伟").await;
    register(&staff, &disclosing, "甲", p1, "张伟").await;
    register(&staff, &another, "甲", "440304198511223338", "李娜").await;
    let served_on = today();
    for id in [&served, &another, &other_brigade] {
        set_status(
            staff_for(id, &other_brigade, &staff, &staff_b),
            id,
            &[
                ("to", "served"),
                ("service_kind", "determination"),
                ("served_on", &served_on),
            ],
        )
        .await;
    }
    set_status(&staff, &disclosing, &[("to", "disclosing")]).await;

    let disabled = app.with_client(client());
    activate(&disabled, p3, &code3, PASSWORD).await;

    let mut agents = Vec::new();
    for mobile in ["13900000001", "13900000002", "13900000003"] {
        let code = delegate(&staff, &served, mobile).await;
        let browser = app.with_client(client());
        activate(&browser, mobile, &code, PASSWORD).await;
        agents.push(browser);
    }
    let all: Vec<delegation::Model> = delegation::Entity::find().all(&app.state.db).await.unwrap();
    let (expired, revoked) = (&all[1], &all[2]);
    let past = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    delegation::Entity::update_many()
        .col_expr(
            delegation::Column::ValidUntil,
            sea_orm::sea_query::Expr::value(past),
        )
        .filter(delegation::Column::Id.eq(expired.id))
        .exec(&app.state.db)
        .await
        .unwrap();
    delegation::Entity::update_many()
        .col_expr(
            delegation::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Some(past)),
        )
        .filter(delegation::Column::Id.eq(revoked.id))
        .exec(&app.state.db)
        .await
        .unwrap();

    // An insurer approved for the served case; an owner whose approval has ended.
    let until = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .to_offset(time::macros::offset!(+8))
        .date()
        .to_string();
    let insurer_status = crate::applications::insurer_applies(&app, "110105", "A-SERVED").await;
    let res = crate::applications::approve(
        &staff,
        &insurer_status,
        &["scene_diagram"],
        "download",
        &until,
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let insurer = crate::applications::insurer_signed_in(
        &app,
        &insurer_status,
        crate::applications::INSURER_MOBILE,
    )
    .await;
    let owner_status =
        crate::applications::applies(&app, "owner", "13700002222", "110105", "A-SERVED").await;
    let res =
        crate::applications::approve(&staff, &owner_status, &["scene_photo"], "view", &today())
            .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let owner = crate::applications::insurer_signed_in(&app, &owner_status, "13700002222").await;
    let ended = (time::OffsetDateTime::now_utc() - time::Duration::days(2)).date();
    access_application::Entity::update_many()
        .col_expr(
            access_application::Column::GrantedUntil,
            sea_orm::sea_query::Expr::value(ended),
        )
        .filter(access_application::Column::Kind.eq("owner"))
        .exec(&app.state.db)
        .await
        .unwrap();

    // An insurer approved for A-OTHER through their own application; a stranger's application
    // for the served case gives the same number, approved, its voucher collected: no code.
    let shared_mobile = "13700005555";
    let own_status =
        crate::applications::applies(&app, "insurer", shared_mobile, "110105", "A-OTHER").await;
    let res =
        crate::applications::approve(&staff, &own_status, &["scene_diagram"], "download", &until)
            .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let shared = crate::applications::insurer_signed_in(&app, &own_status, shared_mobile).await;
    let stranger_status =
        crate::applications::applies(&app, "insurer", shared_mobile, "110105", "A-SERVED").await;
    let res = crate::applications::approve(
        &staff,
        &stranger_status,
        &["scene_diagram", "scene_photo"],
        "download",
        &until,
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let mut actors = HashMap::new();
    actors.insert(Who::SharedNumber, shared);
    actors.insert(Who::Insurer, insurer);
    actors.insert(Who::OwnerExpired, owner);
    actors.insert(Who::Anonymous, app.with_client(client()));
    actors.insert(Who::Party, party);
    actors.insert(Who::DisabledParty, disabled);
    let mut agents = agents.into_iter();
    actors.insert(Who::Agent, agents.next().unwrap());
    actors.insert(Who::AgentExpired, agents.next().unwrap());
    actors.insert(Who::AgentRevoked, agents.next().unwrap());
    actors.insert(Who::Staff, staff);
    actors.insert(Who::StaffOtherBrigade, staff_b);
    actors.insert(Who::Admin, admin);

    let mut csrf = HashMap::new();
    for (who, browser) in &actors {
        let page = if *who == Who::Anonymous {
            "/login"
        } else {
            "/account"
        };
        csrf.insert(*who, browser.csrf_from(page).await);
    }
    // Disabled after its session and token exist: the next requests must fail.
    account::Entity::update_many()
        .col_expr(
            account::Column::Disabled,
            sea_orm::sea_query::Expr::value(true),
        )
        .filter(account::Column::LoginMasked.eq("3101**********1235"))
        .exec(&app.state.db)
        .await
        .unwrap();

    let mut cases = HashMap::new();
    cases.insert("served", served);
    cases.insert("investigating", investigating);
    cases.insert("disclosing", disclosing);
    cases.insert("another", another);
    cases.insert("other_brigade", other_brigade);
    World {
        app,
        actors,
        csrf,
        cases,
    }
}

fn staff_for<'a>(id: &str, other_brigade: &str, a: &'a TestApp, b: &'a TestApp) -> &'a TestApp {
    if id == other_brigade { b } else { a }
}

fn signed_in(who: Who) -> bool {
    !matches!(who, Who::Anonymous | Who::DisabledParty)
}

fn is_party_or_agent(who: Who) -> bool {
    matches!(
        who,
        Who::Party | Who::Agent | Who::AgentExpired | Who::AgentRevoked
    )
}

fn is_grantee(who: Who) -> bool {
    matches!(who, Who::Insurer | Who::OwnerExpired | Who::SharedNumber)
}

/// What a party's or agent's view of a case should answer.
fn case_view(who: Who, case: Case) -> u16 {
    match (who, case) {
        (_, Case::Missing) => 404,
        (
            Who::Admin,
            Case::OtherBrigade
            | Case::Another
            | Case::OwnServed
            | Case::OwnInvestigating
            | Case::OwnDisclosing,
        ) => 200,
        (Who::Staff, Case::OtherBrigade) | (Who::StaffOtherBrigade, _)
            if !(who == Who::StaffOtherBrigade && case == Case::OtherBrigade) =>
        {
            404
        }
        (Who::Staff | Who::StaffOtherBrigade, _) => 200,
        (Who::Party, Case::OwnServed | Case::OwnDisclosing) => 200,
        (Who::Party, Case::OwnInvestigating) => 403,
        (Who::Agent, Case::OwnServed) => 200,
        (Who::AgentExpired | Who::AgentRevoked, Case::OwnServed) => 403,
        (Who::Insurer, Case::OwnServed) => 200,
        // Its own grant opens A-OTHER; the stranger's on the served case opens nothing.
        (Who::SharedNumber, Case::Another) => 200,
        (Who::OwnerExpired, Case::OwnServed) => 403,
        _ => 404,
    }
}

/// The expected status of `method path` for `who` naming `case`, and whether a denial is audited.
fn expected(path: &str, method: &str, who: Who, case: Case) -> (u16, bool) {
    let anonymous_answer = if path.starts_with("/api/") { 401 } else { 303 };
    let public = matches!(
        path,
        "/" | "/healthz"
            | "/readyz"
            | "/static/{hash}/{name}"
            | "/login"
            | "/apply"
            | "/apply/mine"
            | "/apply/find"
            | "/activate"
            | "/.well-known/evidence-portal/manifest-key.pem"
            | "/.well-known/evidence-portal/manifest-key-sm2.pem"
            | "/.well-known/jwks.json"
    );
    if (path, method) == ("/apply", "POST") {
        // Anyone may apply; this form names no case.
        return (400, false);
    }
    if (path, method) == ("/apply/find/code", "POST") {
        // Anyone may type a code; this form has none (and names no application).
        return (400, false);
    }
    // `/apply/find`: anyone may ask (the matrix's instance sends no SMS: the page of the ways
    // back, for a post too).
    if public || (path, method) == ("/verify", "GET") {
        return (200, false);
    }
    if (path, method) == ("/language", "GET") || (path, method) == ("/care", "GET") {
        // Anyone may switch; the matrix names no language and no care mode.
        return (400, false);
    }
    if (path, method) == ("/verify", "POST") {
        // Anyone may check a manifest; this form names none.
        return (400, false);
    }
    if path.starts_with("/apply/{id}/claim") && !signed_in(who) {
        // Claiming needs the account first: sign in (nothing said about the application).
        return (anonymous_answer, false);
    }
    if path.starts_with("/apply/{id}") {
        // An application's page opens only with its key: without one it does not exist.
        return (404, false);
    }
    if !signed_in(who) {
        return (anonymous_answer, false);
    }
    let staff = matches!(who, Who::Staff | Who::StaffOtherBrigade);
    let status = match (path, method) {
        ("/account", "GET") | ("/api/whoami", "GET") | ("/inbox", "GET") => 200,
        // "Stay signed in": any signed-in person's session.
        ("/session/extend", "POST") => 204,
        // Staff and administrators passed theirs when the world signed in; the others have none.
        ("/login/second-factor", "GET") => {
            if staff || who == Who::Admin {
                200
            } else {
                303
            }
        }
        // The matrix's body has no code.
        ("/login/second-factor", "POST") => {
            if staff || who == Who::Admin {
                400
            } else {
                303
            }
        }
        ("/account/second-factor", "GET") | ("/account/second-factor/totp", "POST") => {
            if staff || who == Who::Admin { 200 } else { 403 }
        }
        ("/account/second-factor/totp/confirm", "POST") => {
            if staff || who == Who::Admin {
                400
            } else {
                403
            }
        }
        // The matrix's instance is reached by an IP address, where passkeys cannot work.
        ("/login/second-factor/passkey/begin", "POST")
        | ("/account/second-factor/passkey/begin", "POST") => {
            if staff || who == Who::Admin {
                400
            } else {
                403
            }
        }
        ("/login/second-factor/passkey/finish", "POST")
        | ("/account/second-factor/passkey/finish", "POST") => {
            if staff || who == Who::Admin {
                400
            } else {
                403
            }
        }
        ("/account/second-factor/{id}/remove", "POST") => {
            if staff || who == Who::Admin {
                404
            } else {
                403
            }
        }
        // The matrix's bodies fail validation: no message to mark, a mobile number too short.
        ("/inbox/read", "POST") | ("/account/notifications", "POST") => 400,
        ("/account/password", "POST") => 400,
        ("/account/tokens", "POST") => {
            if matches!(who, Who::Agent | Who::AgentExpired | Who::AgentRevoked) {
                400
            } else {
                403
            }
        }
        ("/account/tokens/{id}/revoke", "POST") | ("/account/tokens/{id}", "GET") => 404,
        ("/cases", "GET") => {
            if is_party_or_agent(who) || is_grantee(who) {
                200
            } else {
                403
            }
        }
        ("/cases/{id}", "GET") => case_view(who, case),
        // Parties and agents only; the matrix's form has no grounds.
        ("/cases/{id}/review", m) => match (is_party_or_agent(who), case_view(who, case)) {
            (false, _) => 403,
            (true, 200) if m == "GET" => 200,
            (true, 200) => 400,
            (true, other) => other,
        },
        // The matrix's cases hold no material: where a bundle is allowed, there is nothing to
        // put in it.
        ("/cases/{id}/bundle.zip", "GET") => match case_view(who, case) {
            200 if who == Who::Admin => 403,
            200 if who == Who::Party && case == Case::OwnDisclosing => 403,
            200 => 400,
            other => other,
        },
        // A material that does not exist, on a case the actor may or may not open.
        ("/cases/{id}/materials/{material_id}/{mode}", "GET")
        | ("/cases/{id}/materials/{material_id}", "GET")
        | ("/cases/{id}/custody/{material_id}", "GET") => match case_view(who, case) {
            200 if who == Who::Admin => 403,
            200 => 404,
            other => other,
        },
        ("/staff", "GET") | ("/staff/cases", "GET") | ("/staff/cases/new", "GET") => {
            if staff {
                200
            } else {
                403
            }
        }
        ("/staff/cases", "POST") => {
            if staff {
                400
            } else {
                403
            }
        }
        ("/staff/applications", "GET") | ("/staff/applications.csv", "GET") => {
            if staff {
                200
            } else {
                403
            }
        }
        // No such application (the matrix names a case id), no such decision.
        ("/staff/applications/{id}", "GET")
        | ("/staff/applications/{id}/proof", "GET")
        | ("/staff/applications/{id}/{decision}", "POST") => {
            if staff {
                404
            } else {
                403
            }
        }
        (p, m) if p.starts_with("/staff/cases/{id}") => {
            if !staff {
                403
            } else {
                let own = matches!(
                    (who, case),
                    (Who::Staff, Case::OwnServed) | (Who::StaffOtherBrigade, Case::OtherBrigade)
                );
                match (own, p, m) {
                    (false, _, _) => 404,
                    (true, "/staff/cases/{id}", "GET")
                    | (true, "/staff/cases/{id}/edit", "GET")
                    | (true, "/staff/cases/{id}/upload", "GET") => 200,
                    (true, "/staff/cases/{id}/parties/{party_id}/code", _)
                    | (true, "/staff/cases/{id}/parties/{party_id}/notice", _)
                    | (true, "/staff/cases/{id}/delegations/{delegation_id}/notice", _)
                    | (true, "/staff/cases/{id}/parties/{party_id}/reset", _)
                    | (true, "/staff/cases/{id}/delegations/{delegation_id}/revoke", _)
                    | (true, "/staff/cases/{id}/vehicles/{vehicle_id}/remove", _)
                    | (true, "/staff/cases/{id}/materials/{material_id}/{decision}", _)
                    | (true, "/staff/cases/{id}/materials/{material_id}/redact", _)
                    | (true, "/staff/cases/{id}/materials/{material_id}/custody", _)
                    | (true, "/staff/cases/{id}/materials/{material_id}/proves", _)
                    | (true, "/staff/cases/{id}/redactions/{redaction_id}/review", _)
                    | (true, "/staff/cases/{id}/reviews/{application_id}/{step}", _) => 404,
                    (true, _, _) => 400,
                }
            }
        }
        // Tracing is a brigade's: the matrix's post is no multipart form.
        ("/staff/trace", "GET") => {
            if staff {
                200
            } else {
                403
            }
        }
        ("/staff/trace", "POST") => {
            if staff {
                400
            } else {
                403
            }
        }
        ("/staff/audit", "GET") | ("/staff/audit.csv", "GET") => {
            if staff || who == Who::Admin {
                200
            } else {
                403
            }
        }
        ("/admin/audit/verify", "POST") | ("/admin", "GET") => {
            if who == Who::Admin {
                200
            } else {
                403
            }
        }
        ("/admin/departments", "POST") | ("/admin/accounts", "POST") => {
            if who == Who::Admin {
                400
            } else {
                403
            }
        }
        ("/admin/accounts/{id}/{action}", "POST")
        | ("/admin/accounts/{id}", "GET")
        | ("/admin/departments/{id}", "POST") => {
            if who == Who::Admin {
                404
            } else {
                403
            }
        }
        other => panic!("no matrix entry for {other:?}: add one"),
    };
    // Refusals by policy or role are audited; "allowed, but no such thing" is not a denial.
    let own_staff_case = matches!(
        (who, case),
        (Who::Staff, Case::OwnServed) | (Who::StaffOtherBrigade, Case::OtherBrigade)
    );
    let audited = status == 403
        || (status == 404 && path.starts_with("/cases/"))
        || (status == 404 && path.starts_with("/staff/cases/{id}") && !own_staff_case);
    (status, audited)
}

/// The case relationships worth trying on a path.
fn cases_for(path: &str) -> Vec<Case> {
    if path.starts_with("/cases/{id}") {
        vec![
            Case::OwnServed,
            Case::OwnInvestigating,
            Case::OwnDisclosing,
            Case::Another,
            Case::OtherBrigade,
            Case::Missing,
        ]
    } else if path.starts_with("/staff/cases/{id}") {
        vec![Case::OwnServed, Case::OtherBrigade]
    } else {
        vec![Case::OwnServed]
    }
}

fn concrete(world: &World, path: &str, case: Case) -> String {
    let case_id = match case {
        Case::OwnServed => world.cases["served"].clone(),
        Case::OwnInvestigating => world.cases["investigating"].clone(),
        Case::OwnDisclosing => world.cases["disclosing"].clone(),
        Case::Another => world.cases["another"].clone(),
        Case::OtherBrigade => world.cases["other_brigade"].clone(),
        Case::Missing => Uuid::now_v7().to_string(),
    };
    path.replace(
        "{id}",
        if path.starts_with("/admin") || path.starts_with("/account") {
            "01a20fac-0000-7000-8000-000000000000"
        } else {
            &case_id
        },
    )
    .replace("{hash}", "x")
    .replace("{name}", "portal.css")
    .replace("{party_id}", &Uuid::now_v7().to_string())
    .replace("{delegation_id}", &Uuid::now_v7().to_string())
    .replace("{vehicle_id}", &Uuid::now_v7().to_string())
    .replace("{action}", "disable")
    .replace("{material_id}", &Uuid::now_v7().to_string())
    .replace("{decision}", "release")
    .replace("{mode}", "view")
    .replace("{application_id}", &Uuid::now_v7().to_string())
    .replace("{redaction_id}", &Uuid::now_v7().to_string())
    .replace("{step}", "forward")
}

/// A body that gets past CSRF and parsing but fails validation, so nothing changes.
fn invalid_body(path: &str, csrf: &str) -> Vec<(String, String)> {
    let mut fields = vec![("csrf_token".to_owned(), csrf.to_owned())];
    let add: &[(&str, &str)] = match path {
        "/login" => &[("identifier", "nobody.here"), ("password", "wrong")],
        "/activate" => &[
            ("identifier", "nobody.here"),
            ("code", "X"),
            ("password", "a"),
            ("password_repeat", "b"),
        ],
        "/account/password" => &[("current", "wrong"), ("new", "x"), ("repeat", "y")],
        "/account/tokens" => &[("name", "")],
        "/account/notifications" => &[("mobile", "12"), ("sms", "on")],
        "/staff/cases" | "/staff/cases/{id}/edit" => &[
            ("case_number", ""),
            ("occurred_at", "2026-11-20T08:00"),
            ("place", ""),
        ],
        "/staff/cases/{id}/status" => &[("to", "nowhere")],
        "/staff/cases/{id}/milestones" => &[("stage", "nowhere")],
        "/staff/cases/{id}/parties" => &[
            ("name", "某"),
            ("identifier", "123"),
            ("label", "戊"),
            ("role", "driver"),
        ],
        "/admin/departments" => &[("code", ""), ("name", "")],
        "/admin/accounts" => &[("role", "nobody"), ("identifier", "x"), ("name", "x")],
        _ => &[],
    };
    fields.extend(add.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    fields
}

async fn denied_events(world: &World) -> u64 {
    audit_event::Entity::find()
        .filter(audit_event::Column::Outcome.eq("denied"))
        .count(&world.app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_route_role_and_relationship_answers_as_the_rules_say() {
    let world = world().await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for spec in ROUTES {
        for method in spec.methods {
            if spec.path == "/logout" {
                continue; // Checked last: it ends the session.
            }
            for case in cases_for(spec.path) {
                for who in EVERYONE {
                    let (status, audited) = expected(spec.path, method, who, case);
                    let browser = &world.actors[&who];
                    let url = format!("{}{}", browser.address, concrete(&world, spec.path, case));
                    if matches!(spec.path, "/login" | "/activate") {
                        // Every actor here is one address (127.0.0.1): its failed sign-ins would
                        // reach the address limit (tested in `auth`) before the last actor.
                        login_throttle::Entity::delete_many()
                            .exec(&world.app.state.db)
                            .await
                            .unwrap();
                    }
                    let before = denied_events(&world).await;
                    let res = match *method {
                        "GET" => browser.client.get(&url).send().await.unwrap(),
                        "POST"
                            if matches!(
                                spec.path,
                                "/staff/cases/{id}/delegations"
                                    | "/staff/cases/{id}/materials"
                                    | "/staff/cases/{id}/reviews/{application_id}/{step}"
                                    | "/cases/{id}/review"
                                    | "/apply"
                                    | "/verify"
                            ) =>
                        {
                            let form = reqwest::multipart::Form::new().text("principal", "bogus");
                            browser
                                .client
                                .post(format!("{url}?csrf_token={}", world.csrf[&who]))
                                .multipart(form)
                                .send()
                                .await
                                .unwrap()
                        }
                        "POST" => browser
                            .client
                            .post(&url)
                            .form(&invalid_body(spec.path, &world.csrf[&who]))
                            .send()
                            .await
                            .unwrap(),
                        other => panic!("method {other} has no matrix handling"),
                    };
                    checked += 1;
                    let got = res.status().as_u16();
                    if got != status {
                        failures.push(format!(
                            "{method} {} as {who:?} on {case:?}: expected {status}, got {got}",
                            spec.path
                        ));
                        continue;
                    }
                    if audited && denied_events(&world).await <= before {
                        failures.push(format!(
                            "{method} {} as {who:?} on {case:?}: {got} but not audited",
                            spec.path
                        ));
                    }
                }
            }
        }
    }
    // Last: signing out ends the session (and is refused to no one with one).
    for who in EVERYONE {
        let browser = &world.actors[&who];
        let res = browser
            .post_form("/logout", &[("csrf_token", world.csrf[&who].as_str())])
            .await;
        if res.status() != StatusCode::SEE_OTHER {
            failures.push(format!("POST /logout as {who:?}: {}", res.status()));
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 300, "only {checked} checks ran");
}

#[tokio::test]
async fn every_listed_route_answers_its_methods_and_only_those() {
    let app = spawn_app().await;
    let csrf = app.csrf_from("/login").await;
    for spec in ROUTES {
        let path = spec
            .path
            .replace("{hash}", "x")
            .replace("{name}", "portal.css")
            .replace("{action}", "disable")
            .replace("{decision}", "release")
            .replace("{mode}", "view")
            .replace("{step}", "forward")
            .replace("{application_id}", &Uuid::now_v7().to_string())
            .replace("{material_id}", &Uuid::now_v7().to_string())
            .replace("{redaction_id}", &Uuid::now_v7().to_string())
            .replace("{id}", &Uuid::now_v7().to_string())
            .replace("{party_id}", &Uuid::now_v7().to_string())
            .replace("{delegation_id}", &Uuid::now_v7().to_string())
            .replace("{vehicle_id}", &Uuid::now_v7().to_string());
        for method in ["GET", "POST", "PUT", "DELETE"] {
            let res = app
                .client
                .request(method.parse().unwrap(), format!("{}{path}", app.address))
                .header("X-CSRF-Token", &csrf)
                .send()
                .await
                .unwrap();
            let listed = spec.methods.contains(&method);
            assert_eq!(
                res.status() == StatusCode::METHOD_NOT_ALLOWED,
                !listed,
                "{method} {}: {} (listed: {listed})",
                spec.path,
                res.status()
            );
        }
    }
}
