//! The view-only matrix (issue 32, item 10): every route that can send a material's bytes ×
//! every stage of a case × every role that can reach its material, through the running server.
//! Where the policy says view-only (or nothing at all), no body — nor any entry of a zip — has
//! the original's SHA-256; where originals may leave (Art. 65 copying, staff), the download is
//! the original, byte for byte. The expectations are written out here, not asked of `policy`.

use std::collections::HashMap;

use reqwest::StatusCode;
use sha2::Digest;

use crate::applications::{INSURER_MOBILE, applies, approve, insurer_signed_in};
use crate::auth::{PASSWORD, activate};
use crate::cases::{
    agent_with_token, in_a_month, open_case, party_id_on, registered, set_status, staff_of, today,
};
use crate::corpus;
use crate::helpers::{TestApp, client, spawn_app_with};
use crate::materials::{decide, uploaded};

const STAGES: [&str; 4] = ["investigating", "disclosing", "served", "closed"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Party,
    /// An agent within a current delegation, signed in.
    Agent,
    /// The same agent through the API: a personal token, no session.
    AgentToken,
    /// A vehicle owner approved to view (not download) both kinds.
    OwnerViewGrant,
    /// An insurer approved to download both kinds.
    InsurerDownloadGrant,
    /// Staff of the case's brigade.
    Staff,
    /// An administrator: sees cases, never their material.
    Admin,
}

const ROLES: [Role; 7] = [
    Role::Party,
    Role::Agent,
    Role::AgentToken,
    Role::OwnerViewGrant,
    Role::InsurerDownloadGrant,
    Role::Staff,
    Role::Admin,
];

/// Whether originals may leave for `role` at `stage` (MPS Order 146 Art. 63 and 65).
fn originals(role: Role, stage: &str) -> bool {
    let copying = matches!(stage, "served" | "closed");
    match role {
        Role::Staff => true,
        Role::Admin | Role::OwnerViewGrant => false,
        Role::Party | Role::Agent | Role::AgentToken | Role::InsurerDownloadGrant => copying,
    }
}

/// Whether `role` views a rendering at `stage` (view-only, and the material reachable).
fn renders(role: Role, stage: &str) -> bool {
    stage == "disclosing" && !matches!(role, Role::Staff | Role::Admin)
}

/// Every way a material's bytes can leave: (name, path after `/cases/{case}`, range).
fn routes(id: &str) -> Vec<(&'static str, String, Option<&'static str>)> {
    vec![
        ("material page", format!("/materials/{id}"), None),
        ("view", format!("/materials/{id}/view"), None),
        ("view page 1", format!("/materials/{id}/view?page=1"), None),
        (
            "view ranged",
            format!("/materials/{id}/view"),
            Some("bytes=0-"),
        ),
        ("download", format!("/materials/{id}/download"), None),
        (
            "download ranged",
            format!("/materials/{id}/download"),
            Some("bytes=0-"),
        ),
        ("thumbnail", format!("/materials/{id}/thumbnail"), None),
        ("bundle", "/bundle.zip".to_owned(), None),
        ("bundle of it", format!("/bundle.zip?material={id}"), None),
    ]
}

struct Cast {
    app: TestApp,
    staff: TestApp,
    case_id: String,
    browsers: HashMap<Role, TestApp>,
    token: String,
}

/// One case of brigade 110105, still investigating, with `files` released, and everyone who
/// can reach its material: the party, an agent (and their token), an owner approved to view,
/// an insurer approved to download, staff and an administrator.
async fn cast(files: &[(&str, &str, &[u8])]) -> Cast {
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_APPLICATIONS_PER_HOUR".into(), "1000".into());
    })
    .await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-矩阵", true).await;
    let code = registered(&staff, &case_id, "甲", "110101199003070011", "张伟").await;
    for (kind, name, bytes) in files {
        let id = uploaded(&staff, &case_id, kind, name, name, bytes).await;
        decide(&staff, &case_id, &id, "release", &[]).await;
    }
    let party = app.with_client(client());
    activate(&party, "110101199003070011", &code, PASSWORD).await;
    let party_id = party_id_on(&staff, &case_id).await;
    let (agent, token) = agent_with_token(&app, &staff, &case_id, &party_id).await;
    let owner = grantee(&app, &staff, "owner", "13700002222", "view").await;
    let insurer = grantee(&app, &staff, "insurer", INSURER_MOBILE, "download").await;
    let admin = crate::auth::admin(&app).await;
    let mut browsers = HashMap::new();
    browsers.insert(Role::Party, party);
    browsers.insert(Role::Agent, agent);
    browsers.insert(Role::AgentToken, app.with_client(client()));
    browsers.insert(Role::OwnerViewGrant, owner);
    browsers.insert(Role::InsurerDownloadGrant, insurer);
    browsers.insert(Role::Staff, staff.with_client(staff.client.clone()));
    browsers.insert(Role::Admin, admin);
    Cast {
        app,
        staff,
        case_id,
        browsers,
        token,
    }
}

/// An owner or insurer whose application for both kinds staff approved in `mode`, signed in.
async fn grantee(app: &TestApp, staff: &TestApp, kind: &str, mobile: &str, mode: &str) -> TestApp {
    let status = applies(app, kind, mobile, "110105", "2026-矩阵").await;
    let kinds = ["scene_photo", "survey_record"];
    let res = approve(staff, &status, &kinds, mode, &in_a_month()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{kind} approved");
    insurer_signed_in(app, &status, mobile).await
}

/// Moves the case to `stage` (forward only, as the staff form does).
async fn enter(staff: &TestApp, case_id: &str, stage: &str) {
    let res = match stage {
        "investigating" => return,
        "served" => {
            set_status(
                staff,
                case_id,
                &[
                    ("to", "served"),
                    ("service_kind", "determination"),
                    ("served_on", &today()),
                ],
            )
            .await
        }
        other => set_status(staff, case_id, &[("to", other)]).await,
    };
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "the case moves to {stage}"
    );
}

/// The SHA-256 of every entry of `body`, if it is a zip.
fn zip_entries(body: &[u8]) -> Vec<String> {
    use std::io::Read;
    let Ok(mut zip) = zip::ZipArchive::new(std::io::Cursor::new(body)) else {
        return Vec::new();
    };
    (0..zip.len())
        .map(|i| {
            let mut bytes = Vec::new();
            zip.by_index(i).unwrap().read_to_end(&mut bytes).unwrap();
            hex::encode(sha2::Sha256::digest(&bytes))
        })
        .collect()
}

#[tokio::test]
async fn no_route_stage_or_role_hands_out_an_original_where_the_policy_says_view_only() {
    let photo = corpus::jpeg_with_gps();
    let record = crate::rendering::two_page_pdf();
    let files: [(&str, &str, &[u8]); 2] = [
        ("scene_photo", "现场照片.jpg", &photo),
        ("survey_record", "勘查笔录.pdf", &record),
    ];
    let Cast {
        app,
        staff,
        case_id,
        browsers,
        token,
    } = cast(&files).await;
    let page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    // The material ids, in upload order, as the staff page links them.
    let marker = format!("/staff/cases/{case_id}/materials/");
    let mut ids: Vec<String> = Vec::new();
    for part in page.split(&marker).skip(1) {
        let id = part.split(['/', '"', '?']).next().unwrap().to_owned();
        if id.len() == 36 && !ids.contains(&id) {
            ids.push(id);
        }
    }
    assert_eq!(ids.len(), 2, "both materials are on the staff page");
    let renderers = !crate::hostile::renderers_missing();

    let (mut failures, mut cells, mut rendered, mut originals_out) = (Vec::new(), 0, 0, 0);
    let mut rendered_after = 0;
    for stage in STAGES {
        enter(&staff, &case_id, stage).await;
        for role in ROLES {
            let who = &browsers[&role];
            for ((_, name, bytes), id) in files.iter().zip(&ids) {
                let original = hex::encode(sha2::Sha256::digest(bytes));
                let may_copy = originals(role, stage);
                for (route, path, range) in routes(id) {
                    cells += 1;
                    let cell = format!("{route} × {stage} × {role:?} × {name}");
                    let mut req = who
                        .client
                        .get(format!("{}/cases/{case_id}{path}", app.address));
                    if let Some(r) = range {
                        req = req.header("Range", r);
                    }
                    if role == Role::AgentToken {
                        req = req.bearer_auth(&token);
                    }
                    let res = req.send().await.unwrap();
                    let status = res.status();
                    let jpeg = res
                        .headers()
                        .get("content-type")
                        .is_some_and(|v| v == "image/jpeg");
                    let body = res.bytes().await.unwrap();
                    let digest = hex::encode(sha2::Sha256::digest(&body));
                    let entries = zip_entries(&body);
                    // Without the renderers (never under CI) a view-only view is the installation's 503.
                    if status.is_server_error() && (renderers || status != 503) {
                        failures.push(format!("{cell}: answered {status}"));
                    }
                    if !may_copy {
                        if digest == original || entries.contains(&original) {
                            failures.push(format!("{cell}: {status} handed out the original"));
                        }
                        if status.is_success() && corpus::carries_exif(&body) {
                            failures.push(format!("{cell}: {status} carries the photo's EXIF"));
                        }
                        if renderers && renders(role, stage) && route.starts_with("view") {
                            if status == StatusCode::OK && jpeg {
                                rendered += 1;
                            } else {
                                failures.push(format!("{cell}: no rendering ({status})"));
                            }
                        }
                        continue;
                    }
                    let whole = match route {
                        // Viewing stays a rendering where copying is allowed (the download is
                        // the copy) for everyone but staff, who view originals.
                        "view" | "view page 1" | "view ranged" => {
                            let staff_view = role == Role::Staff && digest == original;
                            let rendering = status == StatusCode::OK && jpeg && digest != original;
                            if !(staff_view || rendering && role != Role::Staff) {
                                failures.push(format!(
                                    "{cell}: {status}, not what this role views (staff: the original; others: a rendering)"
                                ));
                            } else if rendering {
                                rendered_after += 1;
                            }
                            continue;
                        }
                        "download" => status == StatusCode::OK,
                        "download ranged" => status == StatusCode::PARTIAL_CONTENT,
                        "bundle" | "bundle of it" => {
                            if !entries.contains(&original) {
                                failures.push(format!("{cell}: {status}, the original not in it"));
                            }
                            continue;
                        }
                        _ => continue,
                    };
                    if !whole || digest != original {
                        failures.push(format!("{cell}: {status}, not the original"));
                    } else {
                        originals_out += 1;
                    }
                }
            }
        }
    }
    eprintln!(
        "{cells} cells ({} stages × {} roles × {} materials × {} routes): {rendered} rendered views, {originals_out} originals delivered where copying is allowed",
        STAGES.len(),
        ROLES.len(),
        files.len(),
        routes("x").len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Not vacuous: copying stages delivered originals (whole and ranged downloads) to everyone
    // entitled to them: staff at 4 stages, party, agent (twice) and insurer at 2; 2 materials.
    assert_eq!(originals_out, (4 + 4 * 2) * 2 * 2, "originals delivered");
    if renderers {
        // Party, agent (session and token), owner and insurer: 2 materials, 3 views each.
        assert_eq!(rendered, 5 * 2 * 3, "every view-only viewer saw renderings");
        // After the determination: party, agent (session and token) and insurer at 2 stages, 2
        // materials, 3 views each — renderings though they may download the original.
        assert_eq!(rendered_after, 4 * 2 * 2 * 3, "viewing stays a rendering");
    }
}
