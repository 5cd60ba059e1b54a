//! Bundles through the running server: the whole case or a selection as one zip, read back with
//! the `zip` crate and the system's `unzip` and `sha256sum`; the signed manifest checked with
//! the published key (independently of the portal's own code) and on the public page; exact
//! `Content-Length`; a download resumed in two ranges; refusals.

use std::collections::HashMap;
use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use evidence_portal::db::entities::{delegation, material};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use sha2::Digest;

use crate::auth::{PASSWORD, activate, events};
use crate::cases::{open_case, registered, set_status, staff_of};
use crate::helpers::{TestApp, assert_status, client, header, spawn_app};
use crate::materials::{PDF, PNG, decide, uploaded};

fn today() -> String {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        .to_string()
}

struct World {
    app: TestApp,
    staff: TestApp,
    party: TestApp,
    case_id: String,
    /// Title → (material id, bytes), released ones only.
    released: HashMap<&'static str, (String, Vec<u8>)>,
    withheld_id: String,
}

/// A served case, party 甲 (张伟) signed in; four materials released (two photos share a
/// title), one withheld for witness confidentiality, one left a draft.
async fn world(served: bool) -> World {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-400", true).await;
    let code = registered(&staff, &case_id, "甲", "110101199003070011", "张伟").await;
    let video: Vec<u8> = [
        &[0, 0, 0, 0x18][..],
        b"ftypmp42",
        &[0, 0, 0, 0],
        b"mp42isom",
        &(0..300_000u32)
            .map(|i| (i * 7 % 256) as u8)
            .collect::<Vec<_>>(),
    ]
    .concat();
    let photo2 = [PNG, b"second"].concat();
    let mut released = HashMap::new();
    for (kind, title, name, bytes) in [
        ("scene_diagram", "现场图", "现场图.png", PNG.to_vec()),
        ("survey_record", "勘查笔录", "勘查笔录.pdf", PDF.to_vec()),
        ("scene_photo", "现场照片", "IMG_0001.PNG", PNG.to_vec()),
        ("scene_photo", "现场照片", "IMG_0002.png", photo2),
        ("video", "行车记录仪视频", "dashcam.mp4", video),
    ] {
        let id = uploaded(&staff, &case_id, kind, title, name, &bytes).await;
        assert_status(
            &decide(&staff, &case_id, &id, "release", &[]).await,
            StatusCode::SEE_OTHER,
        );
        let key: &'static str = Box::leak(format!("{title}|{name}").into_boxed_str());
        released.insert(key, (id, bytes));
    }
    let withheld_id = uploaded(
        &staff,
        &case_id,
        "expert_opinion",
        "证人证言",
        "w.pdf",
        &[PDF, b"w"].concat(),
    )
    .await;
    decide(
        &staff,
        &case_id,
        &withheld_id,
        "withhold",
        &[
            ("ground", "witness_confidentiality"),
            ("note", "证人要求保密"),
        ],
    )
    .await;
    uploaded(
        &staff,
        &case_id,
        "other",
        "草稿",
        "d.pdf",
        &[PDF, b"d"].concat(),
    )
    .await;
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
    World {
        app,
        staff,
        party,
        case_id,
        released,
        withheld_id,
    }
}

fn entries(bytes: &[u8]) -> HashMap<String, (Vec<u8>, zip::CompressionMethod)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut out = HashMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap(); // checks each CRC-32
        out.insert(f.name().unwrap().into_owned(), (data, f.compression()));
    }
    out
}

/// Checks a compact JWS with the key published at the well-known URL, using aws-lc directly
/// (not the portal's code). Returns the payload if the signature holds.
async fn verify_independently(app: &TestApp, jws: &str) -> Option<Vec<u8>> {
    let jwks: serde_json::Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["crv"], "Ed25519");
    let public = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    let parts: Vec<&str> = jws.trim().split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], key["kid"]);
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, &public)
        .verify(signed.as_bytes(), &signature)
        .ok()
        .map(|()| URL_SAFE_NO_PAD.decode(parts[1]).unwrap())
}

#[tokio::test]
async fn a_party_downloads_the_case_as_one_signed_zip_that_checks_out() {
    let w = world(true).await;
    let url = format!("/cases/{}/bundle.zip", w.case_id);

    // The case page offers it, with check boxes for a selection.
    let page = w
        .party
        .get(&format!("/cases/{}", w.case_id))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!(r#"href="/cases/{}/bundle.zip""#, w.case_id)));
    assert!(page.contains(r#"type="checkbox" name="material""#));

    let res = w.party.get(&url).await;
    assert_status(&res, StatusCode::OK);
    assert_eq!(header(&res, "content-type"), "application/zip");
    assert_eq!(header(&res, "cache-control"), "no-store");
    assert_eq!(header(&res, "accept-ranges"), "bytes");
    let disposition = header(&res, "content-disposition").to_owned();
    let expected_name = format!("2026-400-证据材料-{}.zip", today().replace('-', ""));
    let encoded = disposition
        .split("filename*=UTF-8''")
        .nth(1)
        .expect("an RFC 5987 name");
    let decoded: String = url::form_urlencoded::parse(format!("n={encoded}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    assert_eq!(decoded, expected_name, "{disposition}");
    assert!(
        disposition.contains(&format!(
            "filename=\"2026-400-evidence-{}.zip\"",
            today().replace('-', "")
        )),
        "an ASCII name for curl -J: {disposition}"
    );
    let etag = header(&res, "etag").to_owned();
    let length = res.content_length().expect("an exact Content-Length");
    let zip_bytes = res.bytes().await.unwrap().to_vec();
    assert_eq!(
        zip_bytes.len() as u64,
        length,
        "Content-Length equals the bytes sent"
    );

    let files = entries(&zip_bytes);
    let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "SHA256SUMS",
            "SM3SUMS",
            "manifest.json",
            "manifest.jws",
            "manifest.sm2.sig",
            "勘查笔录/勘查笔录.pdf",
            "现场图/现场图.png",
            "现场照片/现场照片 (2).png",
            "现场照片/现场照片.png",
            "视频/行车记录仪视频.mp4",
            "证据目录.csv",
            "证据目录.html",
        ],
        "folders by kind, Chinese names, equal titles made distinct, nothing withheld or draft"
    );
    assert_eq!(files["现场图/现场图.png"].0, PNG);
    assert_eq!(files["现场图/现场图.png"].1, zip::CompressionMethod::Stored);
    assert_eq!(files["勘查笔录/勘查笔录.pdf"].0, PDF);
    assert_eq!(
        files["视频/行车记录仪视频.mp4"].0,
        w.released["行车记录仪视频|dashcam.mp4"].1
    );
    assert_eq!(files["manifest.json"].1, zip::CompressionMethod::Deflated);

    // SHA256SUMS covers every file (five materials, the manifest and the evidence index's two
    // files), and each line is right.
    let sums = String::from_utf8(files["SHA256SUMS"].0.clone()).unwrap();
    assert_eq!(sums.lines().count(), 8, "{sums}");
    for line in sums.lines() {
        let (hash, path) = line.split_once("  ").unwrap();
        assert_eq!(
            hash,
            hex::encode(sha2::Sha256::digest(&files[path].0)),
            "{path}"
        );
    }

    // The manifest says what is inside, for whom (masked), and what was withheld.
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"].0).unwrap();
    assert_eq!(manifest["case_number"], "2026-400");
    assert_eq!(manifest["files"].as_array().unwrap().len(), 5);
    let label = manifest["generated_for"]["label"].as_str().unwrap();
    assert!(label.contains("张**") && !label.contains("张伟"), "{label}");
    assert!(!label.contains("110101199003070011"), "{label}");
    assert_eq!(manifest["withheld"][0]["ground"], "证人要求保密");
    assert_eq!(manifest["withheld"][0]["count"], 1);
    assert!(!String::from_utf8_lossy(&files["manifest.json"].0).contains("证人证言"));
    let diagram = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "现场图/现场图.png")
        .unwrap();
    assert_eq!(diagram["sha256"], hex::encode(sha2::Sha256::digest(PNG)));
    assert_eq!(diagram["size"], PNG.len());
    assert!(diagram["released_at"].as_str().unwrap().ends_with("+08:00"));

    // The stamp: manifest.jws is the manifest, signed with the published key.
    let jws = String::from_utf8(files["manifest.jws"].0.clone()).unwrap();
    let signed = verify_independently(&w.app, &jws)
        .await
        .expect("the signature holds");
    assert_eq!(
        signed, files["manifest.json"].0,
        "the JWS payload is manifest.json"
    );
    let parts: Vec<&str> = jws.split('.').collect();
    let mut altered = signed.clone();
    let at = altered.iter().position(|b| *b == b'4').unwrap(); // in "2026-400"
    altered[at] = b'5';
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(&altered),
        parts[2]
    );
    assert!(
        verify_independently(&w.app, &forged).await.is_none(),
        "one byte changed breaks it"
    );
    let pem = w
        .app
        .get("/.well-known/evidence-portal/manifest-key.pem")
        .await
        .text()
        .await
        .unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));

    // The system's tools agree: unzip -t, then sha256sum -c after unzip.
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("bundle.zip");
    std::fs::write(&zip_path, &zip_bytes).unwrap();
    let test = std::process::Command::new("unzip")
        .arg("-t")
        .arg(&zip_path)
        .output()
        .expect("unzip is installed (.ci/run installs it)");
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stdout)
    );
    let out = dir.path().join("out");
    let unzip = std::process::Command::new("unzip")
        .arg("-q")
        .arg(&zip_path)
        .arg("-d")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        unzip.status.success(),
        "{}",
        String::from_utf8_lossy(&unzip.stderr)
    );
    assert!(
        out.join("现场照片").join("现场照片 (2).png").exists(),
        "UTF-8 names intact"
    );
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Audited before the bytes, with the list of materials; the end recorded as complete.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let event = events(&w.app, "bundle.download").await.pop().unwrap();
    let details: serde_json::Value = serde_json::from_str(&event.details).unwrap();
    assert_eq!(details["materials"].as_array().unwrap().len(), 5);
    assert_eq!(details["size"], length);
    let end = events(&w.app, "transfer.end").await.pop().unwrap();
    let end_details: serde_json::Value = serde_json::from_str(&end.details).unwrap();
    assert_eq!(end_details["of"], event.seq);
    assert_eq!(end_details["bytes_sent"], length);
    assert_eq!(end_details["completed"], true);

    // Asked again: the same bytes (the bundle is frozen), so a cut download resumes.
    let half = length / 2;
    let first = w
        .party
        .client
        .get(format!("{}{url}", w.app.address))
        .header("Range", format!("bytes=0-{}", half - 1))
        .send()
        .await
        .unwrap();
    assert_status(&first, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&first, "content-range"),
        format!("bytes 0-{}/{length}", half - 1)
    );
    assert_eq!(header(&first, "etag"), etag);
    let first = first.bytes().await.unwrap();
    let rest = w
        .party
        .client
        .get(format!("{}{url}", w.app.address))
        .header("Range", format!("bytes={half}-"))
        .header("If-Range", &etag)
        .send()
        .await
        .unwrap();
    assert_status(&rest, StatusCode::PARTIAL_CONTENT);
    assert_eq!(rest.content_length(), Some(length - half));
    let rest = rest.bytes().await.unwrap();
    assert_eq!(
        [first, rest].concat(),
        zip_bytes,
        "two ranges = one full download"
    );

    // A stale If-Range gets the whole current bundle; beyond the end is 416.
    let stale = w
        .party
        .client
        .get(format!("{}{url}", w.app.address))
        .header("Range", "bytes=10-")
        .header("If-Range", "\"bstale\"")
        .send()
        .await
        .unwrap();
    assert_status(&stale, StatusCode::OK);
    let beyond = w
        .party
        .client
        .get(format!("{}{url}", w.app.address))
        .header("Range", format!("bytes={length}-"))
        .send()
        .await
        .unwrap();
    assert_status(&beyond, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header(&beyond, "content-range"),
        format!("bytes */{length}")
    );
}

#[tokio::test]
async fn a_selection_holds_only_what_was_ticked_and_nothing_hidden_can_be_named() {
    let w = world(true).await;
    let (diagram, _) = &w.released["现场图|现场图.png"];
    let (survey, _) = &w.released["勘查笔录|勘查笔录.pdf"];
    let url = format!(
        "/cases/{}/bundle.zip?material={diagram}&material={survey}",
        w.case_id
    );
    let res = w.party.get(&url).await;
    assert_status(&res, StatusCode::OK);
    let files = entries(&res.bytes().await.unwrap());
    let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "SHA256SUMS",
            "SM3SUMS",
            "manifest.json",
            "manifest.jws",
            "manifest.sm2.sig",
            "勘查笔录/勘查笔录.pdf",
            "现场图/现场图.png",
            "证据目录.csv",
            "证据目录.html",
        ]
    );

    // Withheld, drafts, another case's or made-up ids: not found, never a partial bundle.
    let res = w
        .party
        .get(&format!(
            "/cases/{}/bundle.zip?material={diagram}&material={}",
            w.case_id, w.withheld_id
        ))
        .await;
    assert_status(&res, StatusCode::NOT_FOUND);
    let res = w
        .party
        .get_json(&format!(
            "/cases/{}/bundle.zip?material=not-a-uuid",
            w.case_id
        ))
        .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_selection");

    // Staff of another brigade, and nobody signed in, get nothing.
    let other = staff_of(&w.app, "110106", "li.na").await;
    assert_status(
        &other.get(&format!("/cases/{}/bundle.zip", w.case_id)).await,
        StatusCode::NOT_FOUND,
    );
    let anonymous = w.app.with_client(client());
    let res = anonymous
        .get(&format!("/cases/{}/bundle.zip", w.case_id))
        .await;
    assert!(res.status().is_redirection(), "{}", res.status());
    drop(w.staff);
}

#[tokio::test]
async fn during_disclosure_there_is_no_bundle() {
    let w = world(false).await;
    let page = w
        .party
        .get(&format!("/cases/{}", w.case_id))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("bundle.zip"));
    assert_status(
        &w.party
            .get(&format!("/cases/{}/bundle.zip", w.case_id))
            .await,
        StatusCode::FORBIDDEN,
    );
}

#[tokio::test]
async fn an_agent_fetches_the_bundle_with_curl_until_the_delegation_expires() {
    use crate::cases::{agent_with_token, served_case_with_party};
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let (case_id, party_id) = served_case_with_party(&staff).await;
    let id = uploaded(
        &staff,
        &case_id,
        "expert_opinion",
        "鉴定意见",
        "鉴定意见.pdf",
        PDF,
    )
    .await;
    decide(&staff, &case_id, &id, "release", &[]).await;
    let (_agent, token) = agent_with_token(&app, &staff, &case_id, &party_id).await;

    let curl = reqwest::Client::new();
    let url = format!("{}/cases/{case_id}/bundle.zip", app.address);
    let res = curl
        .get(&url)
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::OK);
    let files = entries(&res.bytes().await.unwrap());
    assert_eq!(files["鉴定意见/鉴定意见.pdf"].0, PDF);
    assert!(
        !files.keys().any(|k| k.contains("授权")),
        "the authorisation document stays out"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"].0).unwrap();
    assert!(
        manifest["generated_for"]["label"]
            .as_str()
            .unwrap()
            .starts_with("代理人")
    );

    // The delegation's end passes: refused, and the refusal audited.
    delegation::Entity::update_many()
        .col_expr(
            delegation::Column::ValidUntil,
            sea_orm::sea_query::Expr::value(
                time::OffsetDateTime::now_utc() - time::Duration::days(1),
            ),
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
    assert_status(&res, StatusCode::FORBIDDEN);
    let denied = events(&app, "material.download").await.pop().unwrap();
    assert_eq!(denied.outcome, "denied", "the refusal is audited");
}

#[tokio::test]
async fn anyone_can_check_a_manifest_on_the_public_page() {
    let w = world(true).await;
    let zip_bytes = w
        .party
        .get(&format!("/cases/{}/bundle.zip", w.case_id))
        .await
        .bytes()
        .await
        .unwrap();
    let files = entries(&zip_bytes);
    let jws = String::from_utf8(files["manifest.jws"].0.clone()).unwrap();
    let json = files["manifest.json"].0.clone();

    // An insurer with no account.
    let insurer = w.app.with_client(client());
    let page = insurer.get("/verify").await;
    assert_status(&page, StatusCode::OK);
    let csrf = crate::helpers::csrf_in_action(&page.text().await.unwrap());
    let post = |form: reqwest::multipart::Form| {
        let insurer = &insurer;
        let csrf = csrf.clone();
        async move {
            insurer
                .client
                .post(format!("{}/verify?csrf_token={csrf}", insurer.address))
                .multipart(form)
                .send()
                .await
                .unwrap()
        }
    };
    let form = reqwest::multipart::Form::new()
        .part(
            "jws",
            reqwest::multipart::Part::bytes(jws.clone().into_bytes()).file_name("manifest.jws"),
        )
        .part(
            "manifest",
            reqwest::multipart::Part::bytes(json.clone()).file_name("manifest.json"),
        );
    let res = post(form).await;
    assert_status(&res, StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("签名有效"), "{html}");
    assert!(html.contains("逐字节一致"));
    assert!(html.contains("2026-400") && html.contains("现场照片 (2).png"));

    // manifest.json changed by one byte: the page says so.
    let mut altered = json.clone();
    let at = altered.iter().position(|b| *b == b'4').unwrap();
    altered[at] = b'5';
    let form = reqwest::multipart::Form::new()
        .text("jws_text", jws.clone())
        .part(
            "manifest",
            reqwest::multipart::Part::bytes(altered.clone()).file_name("manifest.json"),
        );
    let html = post(form).await.text().await.unwrap();
    assert!(html.contains("不一致"), "{html}");

    // A JWS whose payload was changed: refused.
    let parts: Vec<&str> = jws.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(&altered),
        parts[2]
    );
    let html = post(reqwest::multipart::Form::new().text("jws_text", forged))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("核验未通过") && html.contains("签名无效"),
        "{html}"
    );
    // Machines get JSON: the verdict and the signed manifest.
    let res = insurer
        .client
        .post(format!("{}/verify?csrf_token={csrf}", insurer.address))
        .header("Accept", "application/json")
        .multipart(
            reqwest::multipart::Form::new()
                .text("jws_text", jws.clone())
                .part(
                    "manifest",
                    reqwest::multipart::Part::bytes(json.clone()).file_name("manifest.json"),
                ),
        )
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["valid"], true);
    assert_eq!(body["manifest_json_matches"], true);
    assert_eq!(body["manifest"]["case_number"], "2026-400");
    // Something far larger than any manifest: refused without reading it all.
    let res = insurer
        .client
        .post(format!("{}/verify?csrf_token={csrf}", insurer.address))
        .header("Accept", "application/json")
        .multipart(reqwest::multipart::Form::new().text("jws_text", "x".repeat(5 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "manifest_too_large");
    // Nothing given: a clear error.
    let res = insurer
        .client
        .post(format!("{}/verify?csrf_token={csrf}", insurer.address))
        .header("Accept", "application/json")
        .multipart(reqwest::multipart::Form::new().text("jws_text", ""))
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "jws_missing");
    // Without the form's token: refused like any other form.
    let res = insurer
        .client
        .post(format!("{}/verify", insurer.address))
        .multipart(reqwest::multipart::Form::new().text("jws_text", jws))
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_store_failure_mid_bundle_fails_the_download_and_is_recorded() {
    let objects = tempfile::tempdir().unwrap();
    let root = objects.path().join("objects");
    let root_env = root.display().to_string();
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert("PORTAL_STORE_URL".into(), root_env);
    })
    .await;
    let (staff, party, case_id) = crate::cases::served_case(&app, "2026-401").await;
    let big: Vec<u8> = [
        PDF.to_vec(),
        (0..24 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect(),
    ]
    .concat();
    let id = uploaded(
        &staff,
        &case_id,
        "survey_record",
        "勘查笔录",
        "big.pdf",
        &big,
    )
    .await;
    decide(&staff, &case_id, &id, "release", &[]).await;
    let row = material::Entity::find_by_id(uuid::Uuid::parse_str(&id).unwrap())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();

    let mut res = party.get(&format!("/cases/{case_id}/bundle.zip")).await;
    assert_status(&res, StatusCode::OK);
    let length = res.content_length().unwrap();
    let first = res.chunk().await.unwrap().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(root.join(&row.object_key))
        .unwrap()
        .set_len(1024 * 1024)
        .unwrap();
    let mut received = first.len() as u64;
    let outcome = loop {
        match res.chunk().await {
            Ok(Some(c)) => received += c.len() as u64,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(
        outcome.is_err(),
        "the client sees a failed download, not a short zip"
    );
    assert!(received < length);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let end = events(&app, "transfer.end").await.pop().expect("recorded");
    assert_eq!(end.outcome, "failed", "{}", end.details);
    assert!(
        end.details.contains("\"completed\":false"),
        "{}",
        end.details
    );
}

/// `/verify` for its real audience: the downloaded zip itself is checked file by file against
/// `SHA256SUMS` and by its signature, the verdict that matters comes first in plain words (a
/// changed file or an altered `manifest.json` never shows a green box), and an empty
/// submission is answered on the same page.
#[tokio::test]
async fn a_recipient_checks_the_whole_zip_and_sees_the_verdict_that_matters_first() {
    let w = world(true).await;
    let zip_bytes = w
        .party
        .get(&format!("/cases/{}/bundle.zip", w.case_id))
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let files = entries(&zip_bytes);
    let court = w.app.with_client(client());
    let page = court.get("/verify").await.text().await.unwrap();
    let csrf = crate::helpers::csrf_in_action(&page);
    let check = |bytes: Vec<u8>| {
        let court = &court;
        let csrf = csrf.clone();
        async move {
            let form = reqwest::multipart::Form::new().part(
                "bundle",
                reqwest::multipart::Part::bytes(bytes).file_name("证据包.zip"),
            );
            court
                .client
                .post(format!("{}/verify?csrf_token={csrf}", court.address))
                .multipart(form)
                .send()
                .await
                .unwrap()
        }
    };
    let verdict = |html: &str| {
        html.split(r#"id="verdict">"#)
            .nth(1)
            .and_then(|s| s.split("</p>").next())
            .map(str::to_owned)
    };
    let before = |html: &str, marker: &str| html.find(r#"id="verdict""#) < html.find(marker);

    let res = check(zip_bytes.clone()).await;
    assert_status(&res, StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(verdict(&html).unwrap().contains("核验通过"), "{html}");
    assert!(html.contains("✓ 未改动"));
    assert!(!html.contains("✗"));
    assert!(
        before(&html, "技术细节"),
        "the verdict first, the details after"
    );

    // One file changed in the zip (the recipient's copy, rebuilt).
    let rebuild = |change: &dyn Fn(&str, Vec<u8>) -> Vec<u8>| {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut writer = zip::ZipWriter::new(&mut out);
        let mut names: Vec<&String> = files.keys().collect();
        names.sort();
        for name in names {
            writer
                .start_file(name.as_str(), zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut writer, &change(name, files[name].0.clone())).unwrap();
        }
        writer.finish().unwrap();
        out.into_inner()
    };
    let evidence = files
        .keys()
        .find(|n| n.ends_with(".png") || n.ends_with(".pdf") || n.ends_with(".mp4"))
        .unwrap()
        .clone();
    let tampered = rebuild(&|name, mut bytes| {
        if name == evidence {
            bytes.push(b'!');
        }
        bytes
    });
    let html = check(tampered).await.text().await.unwrap();
    let top = verdict(&html).unwrap();
    assert!(top.contains("有 1 个文件被改动"), "{top}");
    assert!(html.contains(r#"<p class="alert verdict" role="alert" id="verdict">"#));
    assert!(html.contains("✗ 已改动"));

    // manifest.json altered: red on top, whatever the signature says of the signed copy.
    let altered = rebuild(&|name, bytes| {
        if name == "manifest.json" {
            String::from_utf8(bytes)
                .unwrap()
                .replace("2026-400", "2026-999")
                .into_bytes()
        } else {
            bytes
        }
    });
    let html = check(altered).await.text().await.unwrap();
    assert!(verdict(&html).unwrap().contains("manifest.json"), "{html}");
    assert!(
        !html.contains(r#"<p class="notice verdict""#),
        "never green on top"
    );

    // Nothing chosen: the same page says what to do.
    let form = reqwest::multipart::Form::new().text("jws_text", "");
    let res = court
        .client
        .post(format!("{}/verify?csrf_token={csrf}", court.address))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"id="verify-error""#) && html.contains(r#"name="bundle""#));
    // Not a zip: said plainly, on the page.
    let html = check(b"not a zip".to_vec()).await.text().await.unwrap();
    assert!(html.contains("不是有效的 zip 文件"));
}

/// /verify is public and takes gigabytes: only two bundles are checked at a time (each spools a
/// copy and hashes it); a third is told to come back (503, Retry-After), and once the others
/// are done the next one is checked. (The two running checks are taken here from the instance's
/// own places, so the test does not depend on how fast slow uploads reach the server.)
#[tokio::test]
async fn bundle_checks_on_the_public_page_are_bounded() {
    let app = crate::helpers::spawn_app().await;
    let court = app.with_client(client());
    let page = court.get("/verify").await.text().await.unwrap();
    let csrf = crate::helpers::csrf_in_action(&page);
    let url = format!("{}/verify?csrf_token={csrf}", court.address);
    let check = || async {
        let form = reqwest::multipart::Form::new().part(
            "bundle",
            reqwest::multipart::Part::bytes(b"not a zip".to_vec()).file_name("b.zip"),
        );
        court
            .client
            .post(&url)
            .multipart(form)
            .send()
            .await
            .unwrap()
    };
    let running = app
        .state
        .bundle_checks
        .clone()
        .acquire_many_owned(2)
        .await
        .unwrap();
    let res = check().await;
    assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!header(&res, "retry-after").is_empty());
    drop(running);
    let res = check().await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("不是有效的 zip 文件"));
}

/// Posts `zip` to the public page as someone without an account (JSON when `json`).
async fn check_on_public_page(app: &TestApp, zip: Vec<u8>, json: bool) -> reqwest::Response {
    let court = app.with_client(client());
    let page = court.get("/verify").await.text().await.unwrap();
    let csrf = crate::helpers::csrf_in_action(&page);
    let form = reqwest::multipart::Form::new().part(
        "bundle",
        reqwest::multipart::Part::bytes(zip).file_name("证据包.zip"),
    );
    let mut req = court
        .client
        .post(format!("{}/verify?csrf_token={csrf}", court.address))
        .multipart(form);
    if json {
        req = req.header("Accept", "application/json");
    }
    req.send().await.unwrap()
}

/// A zip of `n` empty files `f/00000`, `f/00001`, … (stored) after `extra` entries.
fn zip_of_empty_files(n: u64, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut out);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in extra {
        writer.start_file(*name, stored).unwrap();
        std::io::Write::write_all(&mut writer, bytes).unwrap();
    }
    for i in 0..n {
        writer.start_file(format!("f/{i:05}"), stored).unwrap();
    }
    writer.finish().unwrap();
    out.into_inner()
}

/// The review's zip (issue 30): tens of thousands of empty files and a `SHA256SUMS` listing
/// them took the old check seconds of CPU, growing with the square of the entries (each file
/// looked up by a walk through the listing, each listed path by a walk through the files). Now
/// each is one map lookup: thirty thousand are answered, with the one changed file and the one
/// missing file found among them.
#[tokio::test]
async fn a_zip_of_thirty_thousand_files_is_checked_file_by_file() {
    let app = spawn_app().await;
    let n = 30_000;
    let empty = hex::encode(sha2::Sha256::digest(b""));
    let mut sums = String::new();
    for i in 0..n {
        let hash = if i == 7 {
            "0".repeat(64)
        } else {
            empty.clone()
        };
        sums.push_str(&format!("{hash}  f/{i:05}\n"));
    }
    sums.push_str(&format!("{empty}  gone\n"));
    let zip = zip_of_empty_files(
        n,
        &[
            ("SHA256SUMS", sums.as_bytes()),
            ("manifest.jws", b"not.a.signature"),
        ],
    );

    let res = check_on_public_page(&app, zip, true).await;
    assert_status(&res, StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    let files = body["files"].as_array().unwrap();
    assert_eq!(files.len() as u64, n + 1, "every file, and the missing one");
    let broken: Vec<&str> = files
        .iter()
        .filter(|f| f["ok"] == false)
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(broken, ["f/00007", "gone"]);
    assert_eq!(body["intact"], false);
    assert_eq!(body["valid"], false, "not.a.signature is no signature");
}

/// A zip with more entries than any bundle has is refused with its own code and what to do
/// instead, counted while it arrives: no entry is read, and the zip is never opened.
#[tokio::test]
async fn a_zip_of_more_files_than_the_page_checks_is_refused_with_its_code() {
    let app = spawn_app().await;
    let zip = zip_of_empty_files(evidence_portal::bundle::check::MAX_ENTRIES + 1, &[]);

    let res = check_on_public_page(&app, zip.clone(), true).await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bundle_too_many_entries", "{body}");

    let res = check_on_public_page(&app, zip, false).await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"id="verify-error""#), "{html}");
    assert!(html.contains("证据包内文件过多") && html.contains("sha256sum -c SHA256SUMS"));
}

/// The page spools each zip to disk: it takes at most the upload limit (here 64 KiB; never
/// more than 1 GiB), refuses more while it streams (413, saying what to do instead), leaves no
/// file behind, and gives the check's slot back.
#[tokio::test]
async fn a_zip_over_the_page_limit_is_refused_while_streaming_and_leaves_nothing() {
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert("PORTAL_MAX_UPLOAD_BYTES".into(), "64K".into());
    })
    .await;
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(&app.state.settings.data_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let big = vec![b'z'; 192 * 1024];

    let res = check_on_public_page(&app, big.clone(), false).await;
    assert_status(&res, StatusCode::PAYLOAD_TOO_LARGE);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"id="verify-error""#), "{html}");
    assert!(
        html.contains("证据包过大") && html.contains("64 KB"),
        "{html}"
    );
    let res = check_on_public_page(&app, big, true).await;
    assert_status(&res, StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert_eq!(listing(), before, "no spooled copy is left");

    // Both slots are free again: a small zip is checked (and found not to be one).
    for _ in 0..3 {
        let res = check_on_public_page(&app, b"not a zip".to_vec(), false).await;
        assert_status(&res, StatusCode::BAD_REQUEST);
        assert!(res.text().await.unwrap().contains("不是有效的 zip 文件"));
    }
}

#[tokio::test]
async fn the_public_page_takes_one_bundle_and_a_handful_of_fields() {
    let app = spawn_app().await;
    let court = app.with_client(client());
    let page = court.get("/verify").await.text().await.unwrap();
    let csrf = crate::helpers::csrf_in_action(&page);
    let zip = zip_of_empty_files(3, &[]);
    let post = |form: reqwest::multipart::Form| {
        court
            .client
            .post(format!("{}/verify?csrf_token={csrf}", court.address))
            .header("Accept", "application/json")
            .multipart(form)
            .send()
    };
    // Two zips in one request would hold both check slots: the second is refused.
    let two = reqwest::multipart::Form::new()
        .part(
            "bundle",
            reqwest::multipart::Part::bytes(zip.clone()).file_name("a.zip"),
        )
        .part(
            "bundle",
            reqwest::multipart::Part::bytes(zip).file_name("b.zip"),
        );
    let res = post(two).await.unwrap();
    assert_status(&res, StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "one_bundle_at_a_time");
    // Thousands of small fields are cut at the ninth.
    let mut many = reqwest::multipart::Form::new();
    for i in 0..3000 {
        many = many.text(format!("f{i}"), "x");
    }
    let res = post(many).await.unwrap();
    assert_status(&res, StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "form_too_large");
}
