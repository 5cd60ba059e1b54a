//! Evidence materials through the running server: upload (type sniffed and checked against the
//! name), release and withhold with grounds, what parties then see.

use evidence_portal::db::entities::material;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use sha2::Digest;

use crate::auth::{PASSWORD, activate, events};
use crate::cases::{code_on, open_case, register, set_status, staff_of};
use crate::helpers::{TestApp, assert_status, client, csrf_in, spawn_app};

pub const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1, 8, 2, 0, 0, 0, 0x90, 0x77, 0x53, 0xDE, 0, 0, 0, 0x0C, b'I', b'D', b'A', b'T',
    0x08, 0xD7, 0x63, 0xF8, 0xCF, 0xC0, 0, 0, 0x03, 0x01, 0x01, 0, 0x18, 0xDD, 0x8D, 0xB0, 0, 0, 0,
    0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82,
];
pub const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// Uploads one file as a script would (JSON answer).
pub async fn upload(
    staff: &TestApp,
    case_id: &str,
    kind: &str,
    title: &str,
    name: &str,
    bytes: &[u8],
) -> reqwest::Response {
    let page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&page);
    let form = reqwest::multipart::Form::new()
        .text("kind", kind.to_owned())
        .text("title", title.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned()),
        );
    staff
        .client
        .post(format!("{}/staff/cases/{case_id}/materials", staff.address))
        .header("X-CSRF-Token", csrf)
        .header("Accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap()
}

pub async fn decide(
    staff: &TestApp,
    case_id: &str,
    id: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = staff.csrf_from(&format!("/staff/cases/{case_id}")).await;
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    staff
        .post_form(
            &format!("/staff/cases/{case_id}/materials/{id}/{action}"),
            &all,
        )
        .await
}

fn today() -> String {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        .to_string()
}

#[tokio::test]
async fn staff_upload_release_and_withhold_and_the_party_sees_exactly_the_released_part() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-200", false).await;
    let code = code_on(
        &register(&staff, &case_id, "甲", "110101199003070011", "张伟")
            .await
            .text()
            .await
            .unwrap(),
    )
    .unwrap();

    let res = upload(
        &staff,
        &case_id,
        "scene_diagram",
        "现场图",
        "现场图.png",
        PNG,
    )
    .await;
    assert_status(&res, StatusCode::CREATED);
    let diagram: serde_json::Value = res.json().await.unwrap();
    assert_eq!(diagram["content_type"], "image/png");
    assert_eq!(diagram["sha256"], hex::encode(sha2::Sha256::digest(PNG)));
    let res = upload(
        &staff,
        &case_id,
        "survey_record",
        "勘查笔录",
        "勘查笔录.pdf",
        PDF,
    )
    .await;
    let survey: serde_json::Value = res.json().await.unwrap();
    let res = upload(
        &staff,
        &case_id,
        "expert_opinion",
        "鉴定意见（证人保密部分）",
        "x.pdf",
        &[PDF, b"\n%extra"].concat(),
    )
    .await;
    let secret: serde_json::Value = res.json().await.unwrap();
    // The same bytes again are accepted, and flagged.
    let res = upload(&staff, &case_id, "scene_photo", "", "again.png", PNG).await;
    let again: serde_json::Value = res.json().await.unwrap();
    assert_eq!(again["duplicate_of"], diagram["id"]);
    assert_eq!(
        again["title"], "again.png",
        "the file name when no title is given"
    );

    for id in [&diagram["id"], &survey["id"]] {
        assert_status(
            &decide(&staff, &case_id, id.as_str().unwrap(), "release", &[]).await,
            StatusCode::SEE_OTHER,
        );
    }
    // Withholding needs a ground and a note.
    let sid = secret["id"].as_str().unwrap();
    assert_status(
        &decide(
            &staff,
            &case_id,
            sid,
            "withhold",
            &[("ground", "because"), ("note", "x")],
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    assert_status(
        &decide(
            &staff,
            &case_id,
            sid,
            "withhold",
            &[("ground", "witness_confidentiality"), ("note", "")],
        )
        .await,
        StatusCode::BAD_REQUEST,
    );
    let res = decide(
        &staff,
        &case_id,
        sid,
        "withhold",
        &[
            ("ground", "witness_confidentiality"),
            ("note", "证人张某要求保密，见笔录第3页"),
        ],
    )
    .await;
    assert_status(&res, StatusCode::SEE_OTHER);

    set_status(
        &staff,
        &case_id,
        &[
            ("to", "served"),
            ("service_kind", "determination"),
            ("served_on", &today()),
        ],
    )
    .await;
    let party = app.with_client(client());
    activate(&party, "110101199003070011", &code, PASSWORD).await;
    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("现场图") && page.contains("勘查笔录"));
    assert!(
        !page.contains("鉴定意见（证人保密部分）"),
        "never the title of withheld material"
    );
    assert!(
        page.contains("证人要求保密") && page.contains("1 份"),
        "the count per ground"
    );
    assert!(!page.contains("again.png"), "drafts are not shown");
    assert!(!page.contains("证人张某"), "the staff note is not shown");

    let staff_page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(staff_page.contains("不予公开（证人要求保密）"));
    assert_eq!(events(&app, "material.upload").await.len(), 4);
    assert_eq!(events(&app, "material.release").await.len(), 2);
    assert_eq!(events(&app, "material.withhold").await.len(), 1);
}

#[tokio::test]
async fn refused_uploads_leave_no_row_and_no_object() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-201", false).await;
    for (name, bytes, what) in [
        (
            "page.html",
            &b"<!doctype html><html><script>alert(1)</script></html>"[..],
            "html",
        ),
        (
            "diagram.svg",
            &b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"[..],
            "svg",
        ),
        (
            "tool.exe",
            &b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"[..],
            "executable",
        ),
        (
            "elf.pdf",
            &b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"[..],
            "elf named pdf",
        ),
        ("photo.jpg", PDF, "pdf named jpg"),
        ("notes.txt", &b"plain text"[..], "text"),
        ("empty.pdf", &b""[..], "empty"),
    ] {
        let res = upload(&staff, &case_id, "other", "x", name, bytes).await;
        assert_status(&res, StatusCode::BAD_REQUEST);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_material", "{what}");
    }
    // A good file with a bad kind is removed again.
    let res = upload(&staff, &case_id, "cat_pictures", "x", "a.png", PNG).await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(
        material::Entity::find()
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
    assert!(keys.is_empty(), "orphans: {keys:?}");
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_while_streaming() {
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert("PORTAL_MAX_UPLOAD_BYTES".into(), "64K".into());
    })
    .await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-202", false).await;
    let big = [PDF, &vec![b'%'; 100 * 1024]].concat();
    let res = upload(&staff, &case_id, "other", "big", "big.pdf", &big).await;
    assert_status(&res, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        app.state
            .store
            .keys_under(&format!("cases/{case_id}"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        material::Entity::find()
            .all(&app.state.db)
            .await
            .unwrap()
            .is_empty()
    );
}
