//! What the journeys need done before the browser opens, over HTTP as in `tests/api` (the same
//! routes and forms): staff accounts, cases, materials, release, service, delegations. Also the
//! evidence files themselves.

use evidence_portal::accounts::{self, NewAccount};
use evidence_portal::audit::Actor;
use evidence_portal::auth::identifier::Identifier;
use reqwest::StatusCode;

use crate::helpers::{TestApp, assert_status, client, csrf_in};

pub const PASSWORD: &str = "Lotus-桥-Harbor-2026";
pub const PARTY_A: &str = "110101199003070011";
pub const PARTY_A_MASKED: &str = "1101**********0011";
pub const AGENT_MOBILE: &str = "13912345678";

pub fn today() -> String {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        .to_string()
}

pub fn in_a_month() -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .date()
        .to_string()
}

/// A staff member of brigade 110105 with `PASSWORD`, activated (and signed in) over HTTP.
pub async fn staff(app: &TestApp, username: &str) -> TestApp {
    let dep = accounts::create_department(
        &app.state.db,
        &app.state.audit,
        Actor::SYSTEM,
        "110105",
        "朝阳交警大队",
    )
    .await
    .unwrap();
    activated(
        app,
        evidence_portal::vocab::Role::Staff,
        username,
        Some(dep.id),
    )
    .await
}

/// An administrator with `PASSWORD`, activated (and signed in) over HTTP.
pub async fn admin(app: &TestApp, username: &str) -> TestApp {
    activated(app, evidence_portal::vocab::Role::Admin, username, None).await
}

async fn activated(
    app: &TestApp,
    role: evidence_portal::vocab::Role,
    username: &str,
    department_id: Option<uuid::Uuid>,
) -> TestApp {
    let (_, issued) = accounts::create(
        &app.state.db,
        &app.state.key,
        &app.state.audit,
        Actor::SYSTEM,
        NewAccount {
            role,
            identifier: Identifier::Username(username.into()),
            display_name: format!("民警{username}"),
            department_id,
        },
    )
    .await
    .unwrap();
    let browser = app.with_client(client());
    let csrf = browser.csrf_from("/activate").await;
    let res = browser
        .post_form(
            "/activate",
            &[
                ("csrf_token", &csrf),
                ("identifier", username),
                ("code", &issued.code),
                ("password", PASSWORD),
                ("password_repeat", PASSWORD),
            ],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    crate::helpers::second_factor_after(&browser, username, &res).await;
    browser
}

pub async fn open_case(staff: &TestApp, number: &str) -> String {
    let csrf = staff.csrf_from("/staff/cases/new").await;
    let res = staff
        .post_form(
            "/staff/cases",
            &[
                ("csrf_token", csrf.as_str()),
                ("case_number", number),
                ("occurred_at", "2026-11-20T08:30"),
                ("place", "朝阳路与建国路交叉口"),
                (
                    "summary",
                    "小型轿车与电动自行车相撞，电动自行车驾驶人受伤。",
                ),
            ],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    crate::helpers::header(&res, "location")
        .trim_start_matches("/staff/cases/")
        .to_owned()
}

/// A served case as the party and agent journeys start from: officer wang.li opens case
/// `number`, registers party 甲, uploads and releases a scene diagram, and records service.
pub struct ServedCase {
    pub office: TestApp,
    pub case_id: String,
    /// Party 甲's access code.
    pub code: String,
    pub diagram: String,
}

pub async fn served_case(app: &TestApp, number: &str) -> ServedCase {
    let office = staff(app, "wang.li").await;
    let case_id = open_case(&office, number).await;
    let code = register_party(&office, &case_id).await;
    let diagram = upload(
        &office,
        &case_id,
        "scene_diagram",
        "现场图",
        "现场图.png",
        &scene_diagram_png(),
    )
    .await;
    release(&office, &case_id, &diagram).await;
    serve(&office, &case_id).await;
    ServedCase {
        office,
        case_id,
        code,
        diagram,
    }
}

/// Registers party 甲 and returns the access code printed on the notice.
pub async fn register_party(staff: &TestApp, case_id: &str) -> String {
    let page = format!("/staff/cases/{case_id}");
    let csrf = staff.csrf_from(&page).await;
    let res = staff
        .post_form(
            &format!("{page}/parties"),
            &[
                ("csrf_token", csrf.as_str()),
                ("label", "甲"),
                ("name", "张伟"),
                ("id_kind", "citizen_id"),
                ("identifier", PARTY_A),
                ("mobile", "13800138000"),
                ("role", "driver"),
            ],
        )
        .await;
    // To the notice page, which shows the code once.
    assert_status(&res, StatusCode::SEE_OTHER);
    let notice = res.headers()["location"].to_str().unwrap().to_owned();
    let res = staff.get(&notice).await;
    assert_status(&res, StatusCode::OK);
    code_on(&res.text().await.unwrap()).expect("an access code on the notice")
}

pub fn code_on(html: &str) -> Option<String> {
    let start = html.find(r#"id="access-code">"#)? + 17;
    Some(html[start..].split('<').next()?.to_owned())
}

/// Uploads one file as the upload page's script does; returns the material id.
pub async fn upload(
    staff: &TestApp,
    case_id: &str,
    kind: &str,
    title: &str,
    name: &str,
    bytes: &[u8],
) -> String {
    let page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("kind", kind.to_owned())
        .text("title", title.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned()),
        );
    let res = staff
        .client
        .post(format!("{}/staff/cases/{case_id}/materials", staff.address))
        .header("X-CSRF-Token", csrf_in(&page))
        .header("Accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::CREATED);
    res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn release(staff: &TestApp, case_id: &str, material_id: &str) {
    let csrf = staff.csrf_from(&format!("/staff/cases/{case_id}")).await;
    let res = staff
        .post_form(
            &format!("/staff/cases/{case_id}/materials/{material_id}/release"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
}

/// Records service of the determination today.
pub async fn serve(staff: &TestApp, case_id: &str) {
    let page = format!("/staff/cases/{case_id}");
    let csrf = staff.csrf_from(&page).await;
    let res = staff
        .post_form(
            &format!("{page}/status"),
            &[
                ("csrf_token", &csrf),
                ("confirmed", "yes"),
                ("to", "served"),
                ("service_kind", "determination"),
                ("served_on", &today()),
            ],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
}

/// Staff register an agent for party 甲 with a signed authorisation; returns the agent's code.
pub async fn grant(staff: &TestApp, case_id: &str) -> String {
    let page = format!("/staff/cases/{case_id}");
    let html = staff.get(&page).await.text().await.unwrap();
    let principal = html
        .split(r#"name="principal">"#)
        .nth(1)
        .and_then(|s| s.split(r#"<option value=""#).nth(1))
        .and_then(|s| s.split('"').next())
        .expect("the delegation form names party 甲")
        .to_owned();
    let form = reqwest::multipart::Form::new()
        .text("principal", principal)
        .text("agent_name", "赵律师")
        .text("agent_identifier", AGENT_MOBILE)
        .text("law_firm", "北京某某律师事务所")
        .text("valid_from", today())
        .text("valid_until", in_a_month())
        .part(
            "document",
            reqwest::multipart::Part::bytes(pdf("Power of attorney")).file_name("授权委托书.pdf"),
        );
    let res = staff
        .client
        .post(format!(
            "{}{page}/delegations?csrf_token={}",
            staff.address,
            csrf_in(&html)
        ))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::SEE_OTHER);
    let notice = res.headers()["location"].to_str().unwrap().to_owned();
    let res = staff.get(&notice).await;
    assert_status(&res, StatusCode::OK);
    code_on(&res.text().await.unwrap()).expect("an access code for the agent")
}

/// Revokes the case's only delegation.
pub async fn revoke_delegation(staff: &TestApp, case_id: &str) {
    let page = format!("/staff/cases/{case_id}");
    let html = staff.get(&page).await.text().await.unwrap();
    let delegation = html
        .split("/delegations/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("a delegation to revoke")
        .to_owned();
    let res = staff
        .post_form(
            &format!("{page}/delegations/{delegation}/revoke"),
            &[("csrf_token", &csrf_in(&html)), ("confirmed", "yes")],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
}

// The evidence files.

/// A 640×420 scene diagram (two roads, a car, a fallen e-bike), so screenshots show something.
pub fn scene_diagram_png() -> Vec<u8> {
    let mut img = image::RgbImage::from_pixel(640, 420, image::Rgb([245, 245, 240]));
    let mut fill = |x0: u32, y0: u32, x1: u32, y1: u32, c: [u8; 3]| {
        for y in y0..y1.min(420) {
            for x in x0..x1.min(640) {
                img.put_pixel(x, y, image::Rgb(c));
            }
        }
    };
    fill(0, 170, 640, 250, [90, 90, 95]);
    fill(280, 0, 360, 420, [90, 90, 95]);
    fill(300, 120, 340, 190, [30, 80, 170]);
    fill(370, 215, 420, 230, [200, 40, 40]);
    fill(425, 205, 440, 240, [200, 40, 40]);
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    png.into_inner()
}

/// A well-formed one-page A4 PDF showing `line`, that a PDF viewer renders (the demo's).
pub fn pdf(line: &str) -> Vec<u8> {
    evidence_portal::demo::pdf(&[line])
}

/// `megabytes` MiB that sniff as MP4 (an `ftyp` box, then filler): enough for a visible
/// progress bar.
pub fn mp4(megabytes: usize) -> Vec<u8> {
    let mut bytes = [
        &[0, 0, 0, 0x18][..],
        b"ftypmp42",
        &[0, 0, 0, 0],
        b"mp42isom",
    ]
    .concat();
    bytes.extend((0..megabytes * 1024 * 1024).map(|i| (i * 7 % 251) as u8));
    bytes
}
