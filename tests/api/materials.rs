//! Evidence materials through the running server: upload (type sniffed and checked against the
//! name), release and withhold with grounds, what parties then see.

use evidence_portal::db::entities::material;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use sha2::Digest;

use crate::auth::{PASSWORD, activate, events};
use crate::cases::{open_case, registered, set_status, staff_of};
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

/// Uploads one file, checks it was accepted, and returns the new material's id.
pub async fn uploaded(
    staff: &TestApp,
    case_id: &str,
    kind: &str,
    title: &str,
    name: &str,
    bytes: &[u8],
) -> String {
    let res = upload(staff, case_id, kind, title, name, bytes).await;
    assert_status(&res, StatusCode::CREATED);
    res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
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
    let code = registered(&staff, &case_id, "甲", "110101199003070011", "张伟").await;

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

/// A served case with party 甲 signed in on the returned browser, and `bytes` uploaded and
/// released as a survey record named `name`. Returns (staff, party, case id, material id).
pub async fn released(
    app: &TestApp,
    name: &str,
    bytes: &[u8],
    served: bool,
) -> (TestApp, TestApp, String, String) {
    let staff = staff_of(app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-300", true).await;
    let code = registered(&staff, &case_id, "甲", "110101199003070011", "张伟").await;
    let res = upload(&staff, &case_id, "survey_record", "勘查笔录", name, bytes).await;
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decide(&staff, &case_id, &id, "release", &[]).await;
    if served {
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
    } else {
        set_status(&staff, &case_id, &[("to", "disclosing")]).await;
    }
    let party = app.with_client(client());
    activate(&party, "110101199003070011", &code, PASSWORD).await;
    (staff, party, case_id, id)
}

fn big_pdf() -> Vec<u8> {
    let mut v = PDF.to_vec();
    v.extend((0..200_000u32).map(|i| (i % 251) as u8));
    v
}

#[tokio::test]
async fn a_party_downloads_byte_for_byte_with_ranges_and_etags() {
    let app = spawn_app().await;
    let data = big_pdf();
    let (staff, party, case_id, id) = released(&app, "勘查笔录 2026.pdf", &data, true).await;
    let url = format!("/cases/{case_id}/materials/{id}/download");

    // A browser that accepts compressed answers gets the stored bytes as they are.
    let res = party
        .client
        .get(format!("{}{url}", party.address))
        .header("Accept-Encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::OK);
    assert_eq!(crate::helpers::header(&res, "content-encoding"), "identity");
    assert_eq!(
        crate::helpers::header(&res, "content-type"),
        "application/pdf"
    );
    assert_eq!(crate::helpers::header(&res, "cache-control"), "no-store");
    assert_eq!(crate::helpers::header(&res, "accept-ranges"), "bytes");
    let etag = crate::helpers::header(&res, "etag").to_owned();
    assert_eq!(
        etag,
        format!("\"{}\"", hex::encode(sha2::Sha256::digest(&data)))
    );
    let cd = crate::helpers::header(&res, "content-disposition").to_owned();
    assert!(cd.starts_with("attachment"), "{cd}");
    // Named by its title ("勘查笔录") with the original's extension, not the uploaded name.
    assert!(
        cd.contains("filename*=UTF-8''%E5%8B%98%E6%9F%A5%E7%AC%94%E5%BD%95.pdf"),
        "{cd}"
    );
    assert_eq!(res.content_length(), Some(data.len() as u64));
    assert_eq!(res.bytes().await.unwrap().as_ref(), &data[..]);

    // Staff view the original inline (a party's view is a rendering: `rendering` tests it).
    let inline = staff
        .get(&format!("/cases/{case_id}/materials/{id}/view"))
        .await;
    assert!(crate::helpers::header(&inline, "content-disposition").starts_with("inline"));

    let ranged = |range: &'static str, if_range: Option<String>| {
        let party = &party;
        let url = url.clone();
        async move {
            let mut req = party
                .client
                .get(format!("{}{url}", party.address))
                .header("Range", range);
            if let Some(v) = if_range {
                req = req.header("If-Range", v);
            }
            req.send().await.unwrap()
        }
    };
    let res = ranged("bytes=100-199", None).await;
    assert_status(&res, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        crate::helpers::header(&res, "content-range"),
        format!("bytes 100-199/{}", data.len())
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), &data[100..200]);

    // A resumed download: the rest, from where it stopped, concatenates to the whole.
    let res = ranged("bytes=150000-", Some(etag.clone())).await;
    assert_status(&res, StatusCode::PARTIAL_CONTENT);
    let mut joined = data[..150_000].to_vec();
    joined.extend_from_slice(&res.bytes().await.unwrap());
    assert_eq!(joined, data);

    // If-Range with another version: the whole file instead.
    let res = ranged("bytes=0-9", Some("\"stale\"".into())).await;
    assert_status(&res, StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().len(), data.len());

    let res = ranged("bytes=0-1, -2", None).await;
    assert_status(&res, StatusCode::PARTIAL_CONTENT);
    let ctype = crate::helpers::header(&res, "content-type").to_owned();
    assert!(
        ctype.starts_with("multipart/byteranges; boundary="),
        "{ctype}"
    );
    let length = res.content_length();
    let body = res.bytes().await.unwrap();
    assert_eq!(
        length,
        Some(body.len() as u64),
        "exact Content-Length for multipart"
    );
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains(&format!("Content-Range: bytes 0-1/{}", data.len())),
        "{text}"
    );
    assert!(text.contains(&format!(
        "Content-Range: bytes {}-{}/{}",
        data.len() - 2,
        data.len() - 1,
        data.len()
    )));

    let res = ranged("bytes=999999999-", None).await;
    assert_status(&res, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        crate::helpers::header(&res, "content-range"),
        format!("bytes */{}", data.len())
    );

    let res = party
        .client
        .get(format!("{}{url}", party.address))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::NOT_MODIFIED);

    // Audited before the bytes, and each transfer's end recorded with what was really sent.
    let downloads = events(&app, "material.download").await;
    assert!(downloads.iter().all(|e| e.outcome == "allowed"));
    assert!(downloads.len() >= 7);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let ends = events(&app, "transfer.end").await;
    let full = ends
        .iter()
        .find(|e| {
            e.details
                .contains(&format!("\"bytes_sent\":{}", data.len()))
        })
        .expect("the full download's end");
    assert!(
        full.details.contains("\"completed\":true"),
        "{}",
        full.details
    );
    assert!(
        ends.iter()
            .all(|e| e.material_id.map(|m| m.to_string()) == Some(id.clone()))
    );
}

#[tokio::test]
async fn during_disclosure_parties_view_but_cannot_download() {
    let app = spawn_app().await;
    let pdf = crate::rendering::two_page_pdf();
    let (_, party, case_id, id) = released(&app, "x.pdf", &pdf, false).await;
    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/materials/{id}\"")) && !page.contains("/download"),
        "the viewer, no download links"
    );
    // Viewed as a rendering (issue 32: `rendering` tests it), never as the PDF itself.
    let view = party
        .get(&format!("/cases/{case_id}/materials/{id}/view"))
        .await;
    assert_status(&view, StatusCode::OK);
    assert_eq!(crate::helpers::header(&view, "content-type"), "image/jpeg");
    assert_status(
        &party
            .get(&format!("/cases/{case_id}/materials/{id}/download"))
            .await,
        StatusCode::FORBIDDEN,
    );
    let denied = events(&app, "material.download").await;
    assert!(
        denied
            .iter()
            .any(|e| e.outcome == "denied" && e.details.contains("view_only"))
    );
}

#[tokio::test]
async fn drafts_and_withheld_material_do_not_exist_for_parties() {
    let app = spawn_app().await;
    let (staff, party, case_id, id) = released(&app, "x.pdf", PDF, true).await;
    let draft = upload(&staff, &case_id, "scene_photo", "照片", "p.png", PNG)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decide(
        &staff,
        &case_id,
        &id,
        "withhold",
        &[("ground", "personal_privacy"), ("note", "含第三人隐私")],
    )
    .await;
    for material in [&draft, &id] {
        let res = party
            .get(&format!("/cases/{case_id}/materials/{material}/download"))
            .await;
        assert_status(&res, StatusCode::NOT_FOUND);
    }
    // Staff of the brigade still see everything.
    assert_status(
        &staff
            .get(&format!("/cases/{case_id}/materials/{draft}/view"))
            .await,
        StatusCode::OK,
    );
    let denied: Vec<_> = events(&app, "material.download")
        .await
        .into_iter()
        .filter(|e| e.outcome == "denied")
        .collect();
    assert!(denied.iter().any(|e| e.details.contains("not_released")));
    assert!(denied.iter().any(|e| e.details.contains("withheld")));
}

#[tokio::test]
async fn the_material_gate_tells_a_missing_case_a_missing_material_and_another_cases_apart() {
    let app = spawn_app().await;
    let (staff, party, case_id, id) = released(&app, "x.pdf", PDF, true).await;
    // Another case of the same brigade, with a material of its own.
    let other_case = open_case(&staff, "2026-301", false).await;
    let elsewhere = uploaded(&staff, &other_case, "scene_photo", "照片", "p.png", PNG).await;
    decide(&staff, &other_case, &elsewhere, "release", &[]).await;
    let made_up = uuid::Uuid::now_v7().to_string();
    let cases = [
        (&case_id, &made_up, "no_such_material"),
        (&case_id, &elsewhere, "other_case"),
        (&made_up, &id, "no_such_case"),
    ];
    for (who, user) in [("party", &party), ("staff", &staff)] {
        for (case, material, reason) in cases {
            let res = user
                .get(&format!("/cases/{case}/materials/{material}/download"))
                .await;
            assert_status(&res, StatusCode::NOT_FOUND);
            let denied = events(&app, "material.download").await;
            let last = denied.last().expect("the denial is audited");
            assert_eq!(
                (last.outcome.as_str(), last.actor_role.as_str()),
                ("denied", who)
            );
            assert!(
                last.details.contains(reason),
                "{who} {reason}: {}",
                last.details
            );
        }
    }
    // The same URL with the right case still serves.
    assert_status(
        &party
            .get(&format!("/cases/{case_id}/materials/{id}/download"))
            .await,
        StatusCode::OK,
    );
}

#[tokio::test]
async fn an_agent_downloads_with_a_personal_token_until_the_delegation_is_revoked() {
    use crate::cases::{agent_with_token, served_case_with_party};
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let (case_id, party_id) = served_case_with_party(&staff).await;
    let res = upload(
        &staff,
        &case_id,
        "expert_opinion",
        "鉴定意见",
        "鉴定意见.pdf",
        PDF,
    )
    .await;
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decide(&staff, &case_id, &id, "release", &[]).await;
    let (_agent, token) = agent_with_token(&app, &staff, &case_id, &party_id).await;

    let curl = reqwest::Client::new();
    let url = format!("{}/cases/{case_id}/materials/{id}/download", app.address);
    let res = curl
        .get(&url)
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().as_ref(), PDF);
    let last = events(&app, "material.download").await.pop().unwrap();
    assert!(
        last.details.contains("\"via\":\"token\""),
        "{}",
        last.details
    );
    // "Last used" is recorded, then kept to the minute: a second request does not rewrite it.
    let last_used = || async {
        evidence_portal::db::entities::api_token::Entity::find()
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };
    let first_use = last_used().await.expect("the first use is recorded");
    let res = curl
        .get(&url)
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(last_used().await, Some(first_use));

    // The authorisation document is never reachable by the agent or the party.
    let doc = material::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind == evidence_portal::vocab::MaterialKind::Authorisation)
        .unwrap();
    let res = curl
        .get(format!(
            "{}/cases/{case_id}/materials/{}/download",
            app.address, doc.id
        ))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    evidence_portal::db::entities::delegation::Entity::update_many()
        .col_expr(
            evidence_portal::db::entities::delegation::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Some(time::OffsetDateTime::now_utc())),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    let res = curl
        .get(&url)
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_no_row_and_gc_collects_orphans() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-400", false).await;
    // One released material that gc must leave alone.
    let kept = upload(&staff, &case_id, "other", "保留", "k.pdf", PDF)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();

    // A raw request that promises 10 MB and goes away after 6 MB. First, the same request sent
    // whole, as a control: it must be accepted, so the cut one fails only for being cut.
    let (cookie, csrf) = session_of(&app, "wang.li").await;
    let port = staff.address.rsplit(':').next().unwrap().to_owned();
    let send = |promised_extra: usize, sent_extra: usize| {
        let (cookie, csrf, case_id, port) =
            (cookie.clone(), csrf.clone(), case_id.clone(), port.clone());
        async move {
            use tokio::io::AsyncReadExt;
            let boundary = "XyZ";
            let head = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nother\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
            );
            let tail = format!("\r\n--{boundary}--\r\n");
            let total = head.len() + PDF.len() + promised_extra + tail.len();
            let mut tcp = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
                .await
                .unwrap();
            let request = format!(
                "POST /staff/cases/{case_id}/materials HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\nAccept: application/json\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {total}\r\n\r\n{head}"
            );
            tcp.write_all(request.as_bytes()).await.unwrap();
            tcp.write_all(PDF).await.unwrap();
            tcp.write_all(&vec![b'%'; sent_extra]).await.unwrap();
            if sent_extra == promised_extra {
                tcp.write_all(tail.as_bytes()).await.unwrap();
                let mut answer = vec![0u8; 64];
                let n = tcp.read(&mut answer).await.unwrap();
                String::from_utf8_lossy(&answer[..n]).into_owned()
            } else {
                drop(tcp);
                String::new()
            }
        }
    };
    let control = send(1000, 1000).await;
    assert!(
        control.starts_with("HTTP/1.1 201"),
        "control upload: {control}"
    );
    send(10 * 1024 * 1024, 6 * 1024 * 1024).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let rows = material::Entity::find().all(&app.state.db).await.unwrap();
    assert_eq!(
        rows.len(),
        2,
        "the kept one and the control; none for the cut upload"
    );
    let keys = app
        .state
        .store
        .keys_under(&format!("cases/{case_id}"))
        .await
        .unwrap();
    assert_eq!(
        keys.len(),
        2,
        "no object for the cut upload either: {keys:?}"
    );

    // An object left by a crash between the object and its row: gc finds and removes it.
    let orphan = evidence_portal::store::ObjectKey::material(
        uuid::Uuid::parse_str(&case_id).unwrap(),
        uuid::Uuid::now_v7(),
    );
    let bytes = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        b"%PDF-orphan",
    ))]);
    app.state
        .store
        .put_stream(&orphan, bytes, u64::MAX)
        .await
        .unwrap();

    let out = crate::cli::run(&["gc", "--min-age-minutes", "0"], &app.env, "");
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::stderr(&out));
    let listed = crate::cli::stdout(&out);
    assert!(listed.contains(orphan.as_str()), "{listed}");
    assert!(
        listed.contains("1 orphan object(s), 0 interrupted upload(s); run with --delete"),
        "{listed}"
    );
    assert!(
        app.state.store.size(&orphan).await.is_ok(),
        "a dry run removes nothing"
    );
    let out = crate::cli::run(&["gc", "--delete", "--min-age-minutes", "0"], &app.env, "");
    assert_eq!(out.status.code(), Some(0));
    assert!(app.state.store.size(&orphan).await.is_err(), "removed");
    for row in &rows {
        let key = evidence_portal::store::ObjectKey::from_stored(&row.object_key).unwrap();
        assert!(
            app.state.store.size(&key).await.is_ok(),
            "referenced objects stay"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r.id.to_string() == kept["id"].as_str().unwrap())
    );
    // Young objects are left alone by default (an upload may be in flight).
    let young = evidence_portal::store::ObjectKey::material(
        uuid::Uuid::parse_str(&case_id).unwrap(),
        uuid::Uuid::now_v7(),
    );
    let bytes = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        b"%PDF-young",
    ))]);
    app.state
        .store
        .put_stream(&young, bytes, u64::MAX)
        .await
        .unwrap();
    let out = crate::cli::run(&["gc", "--delete"], &app.env, "");
    assert!(crate::cli::stdout(&out).contains("0 orphan object(s)"));
}

/// A fresh session of `username`: its cookie (as a header value) and its CSRF token.
async fn session_of(app: &TestApp, username: &str) -> (String, String) {
    let fresh = app.with_client(client());
    let csrf = fresh.csrf_from("/login").await;
    let res = fresh
        .post_form(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("identifier", username),
                ("password", PASSWORD),
            ],
        )
        .await;
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("portal-session="))
        .unwrap();
    crate::helpers::second_factor_after(&fresh, username, &res).await;
    let csrf = fresh.csrf_from("/account").await;
    (cookie, csrf)
}

#[tokio::test]
async fn the_viewer_shows_each_kind_under_a_watermark() {
    let app = spawn_app().await;
    let (staff, party, case_id, pdf_id) = released(&app, "勘查笔录.pdf", PDF, true).await;
    let png = upload(
        &staff,
        &case_id,
        "scene_diagram",
        "现场图",
        "现场图.png",
        PNG,
    )
    .await
    .json::<serde_json::Value>()
    .await
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decide(&staff, &case_id, &png, "release", &[]).await;

    let res = party
        .get(&format!("/cases/{case_id}/materials/{pdf_id}"))
        .await;
    assert_status(&res, StatusCode::OK);
    assert!(
        crate::helpers::header(&res, "content-security-policy").contains("frame-ancestors 'none'")
    );
    let html = res.text().await.unwrap();
    // A party's PDF is its pages, rendered with them burned in (viewing is always a rendering);
    // the original is the download.
    assert!(
        html.contains(r#"id="rendered-note""#) && !html.contains(r#"<iframe class="pdf-frame""#),
        "{html}"
    );
    // Staff see the PDF itself in the browser's viewer.
    let staff_html = staff
        .get(&format!("/cases/{case_id}/materials/{pdf_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(staff_html.contains(&format!(
        r#"<iframe class="pdf-frame" src="/cases/{case_id}/materials/{pdf_id}/view""#
    )));
    assert!(
        html.contains("1101**********0011"),
        "the watermark names the viewer, masked"
    );
    assert!(!html.contains("110101199003070011"));
    assert!(html.contains("/download\""), "served: a download button");

    // The PDF itself may be framed by our own pages, and only by them.
    let inline = staff
        .get(&format!("/cases/{case_id}/materials/{pdf_id}/view"))
        .await;
    let csp = crate::helpers::header(&inline, "content-security-policy").to_owned();
    assert!(
        csp.contains("frame-ancestors 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );

    let html = party
        .get(&format!("/cases/{case_id}/materials/{png}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"id="image-stage""#) && html.contains("/viewer.js"),
        "image viewer with zoom"
    );

    // Not visible, not there.
    let missing = uuid::Uuid::now_v7();
    assert_status(
        &party
            .get(&format!("/cases/{case_id}/materials/{missing}"))
            .await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn the_demo_seeds_a_served_case_people_can_sign_in_to() {
    let app = spawn_app().await;
    let out = crate::cli::run(&["demo"], &app.env, "");
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::stderr(&out));
    let printed = crate::cli::stdout(&out);
    assert!(
        printed.contains("110101199003070011") && printed.contains("Demo-Party-甲-2026"),
        "{printed}"
    );
    // Twice is safe: nothing is added, and the sign-ins are printed again.
    let again = crate::cli::run(&["demo"], &app.env, "");
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        crate::cli::stderr(&again)
    );
    let reprinted = crate::cli::stdout(&again);
    assert!(
        reprinted.contains("nothing was added")
            && reprinted.contains("110101199003070011")
            && reprinted.contains("Demo-Party-甲-2026")
            && reprinted.contains("Demo-Staff-河桥-2026"),
        "{reprinted}"
    );

    let party = app.with_client(client());
    assert_eq!(
        crate::auth::location(
            &crate::auth::sign_in(&party, "110101199003070011", "Demo-Party-甲-2026").await
        ),
        "/cases"
    );
    let mine = party.get("/cases").await.text().await.unwrap();
    let case_id = mine
        .split("/cases/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    for title in ["现场图", "现场勘查笔录", "车速鉴定意见"] {
        assert!(page.contains(title), "{title} released");
    }
    assert!(page.contains("证人要求保密 1 份"));
    assert!(!page.contains("证人证言"));
    assert!(
        page.contains(r#"id="apply-review""#),
        "the review window is open"
    );
    // The officer finds an insurer's application waiting.
    let officer = app.with_client(client());
    crate::helpers::enrolled_elsewhere(
        &app.address,
        "demo.wangli",
        evidence_portal::demo::STAFF_TOTP_SECRET,
        0,
    );
    crate::auth::sign_in(&officer, "demo.wangli", "Demo-Staff-河桥-2026").await;
    let queue = officer.get("/staff").await.text().await.unwrap();
    assert!(
        queue.contains("查询申请") && queue.contains("待审核"),
        "{queue}"
    );
    // Every generated file downloads intact (its hash is its ETag).
    for id in page
        .split("/materials/")
        .skip(1)
        .map(|s| {
            s.split('/')
                .next()
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect::<std::collections::BTreeSet<_>>()
    {
        let res = party
            .get(&format!("/cases/{case_id}/materials/{id}/download"))
            .await;
        assert_status(&res, StatusCode::OK);
        let etag = crate::helpers::header(&res, "etag")
            .trim_matches('"')
            .to_owned();
        let bytes = res.bytes().await.unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), etag);
    }
    let agent = app.with_client(client());
    crate::auth::sign_in(&agent, "13912345678", "Demo-Agent-律-2026").await;
    assert!(
        agent
            .get("/cases")
            .await
            .text()
            .await
            .unwrap()
            .contains("代理当事人甲")
    );

    // Run again after the agent chose their own password and party 乙's was reset: the agent's
    // is never printed, and 乙 gets a new access code (the earlier ones revoked).
    use evidence_portal::db::entities::account;
    use sea_orm::{ActiveModelTrait, Set};
    let own = evidence_portal::auth::password::hash("Agent-Own-Choice-2026").unwrap();
    for (identifier, hash) in [("13912345678", Some(own)), ("440304198511223338", None)] {
        let key = if identifier.len() == 11 {
            evidence_portal::auth::identifier::Identifier::Mobile(identifier.into())
        } else {
            evidence_portal::auth::identifier::Identifier::CitizenId(identifier.into())
        }
        .login_key(&app.state.key);
        let row = evidence_portal::db::accounts::find_by_login_key(&app.state.db, &key)
            .await
            .unwrap()
            .unwrap();
        let mut row: account::ActiveModel = row.into();
        row.password_hash = Set(hash);
        row.update(&app.state.db).await.unwrap();
    }
    let third = crate::cli::run(&["demo"], &app.env, "");
    assert_eq!(
        third.status.code(),
        Some(0),
        "{}",
        crate::cli::stderr(&third)
    );
    let printed = crate::cli::stdout(&third);
    let line_of = |id: &str| {
        printed
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line_of("13912345678").contains("already activated — sign in with your password")
            && !printed.contains("Demo-Agent-律-2026")
            && !printed.contains("Agent-Own-Choice-2026"),
        "{printed}"
    );
    assert!(
        line_of("440304198511223338").contains("new access code")
            && !printed.contains("Demo-Party-乙-2026"),
        "{printed}"
    );
    assert!(line_of("110101199003070011").contains("Demo-Party-甲-2026"));
    assert!(
        evidence_portal::audit::verify(&app.state.db).await.is_ok(),
        "the demo is audited like real work"
    );
}

#[tokio::test]
async fn a_corrected_file_supersedes_the_old_one_which_stays_for_staff() {
    let app = spawn_app().await;
    let (staff, party, case_id, old_id) = released(&app, "勘查笔录.pdf", PDF, true).await;
    let corrected = [PDF, b"%corrected\n"].concat();
    let page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&page);
    let form = reqwest::multipart::Form::new()
        .text("kind", "survey_record")
        .text("title", "勘查笔录（更正）")
        .text("supersedes", old_id.clone())
        .part(
            "file",
            reqwest::multipart::Part::bytes(corrected.clone()).file_name("勘查笔录v2.pdf"),
        );
    let res = staff
        .client
        .post(format!("{}/staff/cases/{case_id}/materials", staff.address))
        .header("X-CSRF-Token", csrf)
        .header("Accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::CREATED);
    let new_id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The old one is gone for the party at once; the new one appears when released.
    assert_status(
        &party
            .get(&format!("/cases/{case_id}/materials/{old_id}/download"))
            .await,
        StatusCode::NOT_FOUND,
    );
    decide(&staff, &case_id, &new_id, "release", &[]).await;
    let res = party
        .get(&format!("/cases/{case_id}/materials/{new_id}/download"))
        .await;
    assert_eq!(res.bytes().await.unwrap().as_ref(), &corrected[..]);
    // Nothing deleted: staff still open the old version, marked as superseded.
    assert_status(
        &staff
            .get(&format!("/cases/{case_id}/materials/{old_id}/view"))
            .await,
        StatusCode::OK,
    );
    assert!(
        staff
            .get(&format!("/staff/cases/{case_id}"))
            .await
            .text()
            .await
            .unwrap()
            .contains("已被更正版本取代")
    );
    assert_eq!(
        material::Entity::find()
            .all(&app.state.db)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(events(&app, "material.supersede").await.len(), 1);
    // A superseded material cannot be released again or superseded twice.
    assert_status(
        &decide(&staff, &case_id, &old_id, "release", &[]).await,
        StatusCode::BAD_REQUEST,
    );
}

#[tokio::test]
async fn a_store_failure_mid_download_ends_the_response_as_an_error() {
    // A directory store whatever the run's backend: it is the one a test can break mid-stream.
    let objects = tempfile::tempdir().unwrap();
    let root = objects.path().join("objects");
    let root_env = root.display().to_string();
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert("PORTAL_STORE_URL".into(), root_env);
    })
    .await;
    let data: Vec<u8> = [
        PDF.to_vec(),
        (0..24 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect(),
    ]
    .concat();
    let (_, party, case_id, id) = released(&app, "big.pdf", &data, true).await;
    let row = material::Entity::find_by_id(uuid::Uuid::parse_str(&id).unwrap())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let file = root.join(&row.object_key);
    assert!(file.exists());

    let mut res = party
        .get(&format!("/cases/{case_id}/materials/{id}/download"))
        .await;
    assert_status(&res, StatusCode::OK);
    assert_eq!(res.content_length(), Some(data.len() as u64));
    let first = res.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    // The object shrinks under the transfer (a failing disk, a broken bucket).
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(1024 * 1024)
        .unwrap();
    let mut received = first.len();
    let outcome = loop {
        match res.chunk().await {
            Ok(Some(c)) => received += c.len(),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(
        outcome.is_err() || received < data.len(),
        "the client must see a failed download"
    );
    assert!(received < data.len());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let end = events(&app, "transfer.end")
        .await
        .pop()
        .expect("the end of the transfer is recorded");
    assert_eq!(end.outcome, "failed", "{}", end.details);
    assert!(end.details.contains("\"completed\":false"));
}

#[tokio::test]
async fn when_the_audit_log_cannot_commit_no_byte_is_served() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let (_, party, case_id, id) = released(&app, "x.pdf", PDF, true).await;
    assert_status(
        &party
            .get(&format!("/cases/{case_id}/materials/{id}/download"))
            .await,
        StatusCode::OK,
    );
    // The audit log alone breaks (its chain head disappears); the rest of the database works.
    app.state
        .db
        .execute_unprepared("DROP TABLE audit_chain_head")
        .await
        .unwrap();
    let res = party
        .get(&format!("/cases/{case_id}/materials/{id}/download"))
        .await;
    assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get("content-disposition").is_none());
    let body = res.bytes().await.unwrap();
    assert!(
        !body.windows(5).any(|w| w == b"%PDF-"),
        "no evidence byte in the answer"
    );
}

#[tokio::test]
async fn the_case_page_shows_server_made_thumbnails_of_images_and_audits_them() {
    let app = spawn_app().await;
    let big = image::RgbImage::from_fn(1200, 900, |x, y| image::Rgb([x as u8, y as u8, 120]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(big)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let (staff, party, case_id, pdf_id) = released(&app, "勘查笔录.pdf", PDF, true).await;
    let res = upload(
        &staff,
        &case_id,
        "scene_photo",
        "现场照片",
        "photo.png",
        &png,
    )
    .await;
    let photo_id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decide(&staff, &case_id, &photo_id, "release", &[]).await;

    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let thumb_url = format!("/cases/{case_id}/materials/{photo_id}/thumbnail");
    assert!(page.contains(&thumb_url), "{page}");
    assert!(
        !page.contains(&format!("/materials/{pdf_id}/thumbnail")),
        "no thumbnail for a PDF"
    );
    for _ in 0..2 {
        // Made on the first request, read back from the store on the second.
        let res = party.get(&thumb_url).await;
        assert_status(&res, StatusCode::OK);
        assert_eq!(crate::helpers::header(&res, "content-type"), "image/jpeg");
        // Kept by this browser for a visit (each fetch that reaches the server is audited).
        assert_eq!(
            crate::helpers::header(&res, "cache-control"),
            "private, max-age=600"
        );
        let bytes = res.bytes().await.unwrap();
        assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
        let back = image::load_from_memory(&bytes).unwrap();
        assert_eq!((back.width(), back.height()), (192, 144), "2× its 96 px");
    }
    let views = events(&app, "material.view").await;
    assert_eq!(
        views
            .iter()
            .filter(|e| e.details.contains("\"thumbnail\":true"))
            .count(),
        2,
        "each thumbnail served is audited"
    );
    assert_status(
        &party
            .get(&format!("/cases/{case_id}/materials/{pdf_id}/thumbnail"))
            .await,
        StatusCode::NOT_FOUND,
    );
    // Nobody else's: another brigade's staff see nothing.
    let other = staff_of(&app, "110106", "li.na").await;
    assert_status(&other.get(&thumb_url).await, StatusCode::NOT_FOUND);
}
