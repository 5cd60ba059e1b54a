//! What a court reads (issue 36): SM3 beside SHA-256 for every material, `SM3SUMS` and both
//! digests in the bundle's manifest, the evidence index (证据目录) in CSV and printable HTML,
//! `/verify` checking SM3 too, and a material's signed custody record.

use std::collections::HashMap;
use std::io::Read;

use evidence_portal::db::entities::material;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use sha2::Digest;

use crate::auth::{PASSWORD, activate};
use crate::cases::{open_case, registered, served_case, set_status, staff_of};
use crate::helpers::{TestApp, assert_status, client};
use crate::materials::{PDF, PNG, decide, upload, uploaded};

/// SM3 by another implementation: Python's hashlib (OpenSSL 3), else the `openssl` command.
fn sm3_elsewhere(bytes: &[u8]) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let run = |program: &str, args: &[&str]| -> Option<String> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(bytes).ok()?;
        let out = child.wait_with_output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        let hex = text.trim().rsplit(' ').next()?.to_owned();
        (out.status.success() && hex.len() == 64).then_some(hex)
    };
    run(
        "python3",
        &[
            "-c",
            "import hashlib,sys; print(hashlib.new('sm3', sys.stdin.buffer.read()).hexdigest())",
        ],
    )
    .or_else(|| run("openssl", &["dgst", "-sm3"]))
    .expect("python3 with hashlib's sm3, or openssl with SM3, to check against")
}

fn entries(bytes: &[u8]) -> HashMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut out = HashMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        out.insert(f.name().unwrap().into_owned(), data);
    }
    out
}

fn rezip(files: &HashMap<String, Vec<u8>>) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut out);
    let mut names: Vec<&String> = files.keys().collect();
    names.sort();
    for name in names {
        writer
            .start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut writer, &files[name]).unwrap();
    }
    writer.finish().unwrap();
    out.into_inner()
}

async fn verify_json(app: &TestApp, zip: Vec<u8>) -> serde_json::Value {
    let court = app.with_client(client());
    let page = court.get("/verify").await.text().await.unwrap();
    let csrf = crate::helpers::csrf_in_action(&page);
    let form = reqwest::multipart::Form::new().part(
        "bundle",
        reqwest::multipart::Part::bytes(zip).file_name("证据包.zip"),
    );
    court
        .client
        .post(format!("{}/verify?csrf_token={csrf}", court.address))
        .header("Accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn sums(text: &[u8]) -> Vec<(String, String)> {
    String::from_utf8(text.to_vec())
        .unwrap()
        .lines()
        .map(|l| {
            let (h, p) = l.split_once("  ").unwrap();
            (h.to_owned(), p.to_owned())
        })
        .collect()
}

const HOSTILE: &str = "=cmd|' /C calc'!A0.pdf";
const HOSTILE_TITLE: &str = "=cmd|' /C calc'!A0";

#[tokio::test]
async fn a_bundle_carries_sm3sums_and_an_evidence_index_that_a_court_can_check() {
    let app = crate::helpers::spawn_app().await;
    let (staff, party, case_id) = served_case(&app, "2026-736").await;
    let hostile_pdf = [PDF, b"hostile"].concat();
    let png = uploaded(
        &staff,
        &case_id,
        "scene_diagram",
        "现场图",
        "现场图.png",
        PNG,
    )
    .await;
    // A title a spreadsheet would run as a formula, from a file so named.
    let res = upload(
        &staff,
        &case_id,
        "survey_record",
        HOSTILE_TITLE,
        HOSTILE,
        &hostile_pdf,
    )
    .await;
    assert_status(&res, StatusCode::CREATED);
    let answer: serde_json::Value = res.json().await.unwrap();
    let pdf = answer["id"].as_str().unwrap().to_owned();
    assert_eq!(answer["sm3"], sm3_elsewhere(&hostile_pdf));
    for id in [&png, &pdf] {
        decide(&staff, &case_id, id, "release", &[]).await;
    }
    // SM3 stored at ingest, as another implementation computes it.
    let row = material::Entity::find_by_id(uuid::Uuid::parse_str(&png).unwrap())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.sm3.as_deref(), Some(sm3_elsewhere(PNG).as_str()));
    // Staff see both digests on the case page.
    let page = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("SM3 {}", sm3_elsewhere(PNG))),
        "{page}"
    );

    let res = party.get(&format!("/cases/{case_id}/bundle.zip")).await;
    assert_status(&res, StatusCode::OK);
    let zip = res.bytes().await.unwrap().to_vec();
    let files = entries(&zip);
    // SM3SUMS: every line right, and it lists what SHA256SUMS lists.
    let sm3_lines = sums(&files["SM3SUMS"]);
    let sha_lines = sums(&files["SHA256SUMS"]);
    assert_eq!(
        sm3_lines.iter().map(|l| &l.1).collect::<Vec<_>>(),
        sha_lines.iter().map(|l| &l.1).collect::<Vec<_>>()
    );
    for (hash, path) in &sm3_lines {
        assert_eq!(*hash, sm3_elsewhere(&files[path]), "{path}");
    }
    for name in ["manifest.json", "证据目录.csv", "证据目录.html"] {
        assert!(sm3_lines.iter().any(|l| l.1 == name), "{name} listed");
    }
    // Both digests per file in the signed manifest.
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    for f in manifest["files"].as_array().unwrap() {
        let bytes = &files[f["path"].as_str().unwrap()];
        assert_eq!(f["sha256"], hex::encode(sha2::Sha256::digest(bytes)));
        assert_eq!(f["sm3"], sm3_elsewhere(bytes));
    }

    // The index: a BOM, the columns, one row a material, the hostile name defused.
    let csv_bytes = &files["证据目录.csv"];
    assert!(csv_bytes.starts_with(b"\xEF\xBB\xBF"));
    let mut reader = csv::Reader::from_reader(&csv_bytes[3..]);
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        headers,
        [
            "序号",
            "证据名称",
            "类别",
            "来源",
            "证明对象",
            "页数",
            "原件/复制件",
            "文件名",
            "格式",
            "大小（字节）",
            "SHA-256",
            "SM3",
            "上传时间",
            "公开时间"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell a spreadsheet would run: {cell}"
            );
        }
    }
    let hostile = rows.iter().find(|r| r[1].contains("cmd")).unwrap();
    assert_eq!(&hostile[1], &format!("'{HOSTILE_TITLE}"));
    assert!(
        hostile[7].starts_with("'="),
        "the file name too: {}",
        &hostile[7]
    );
    assert_eq!(&hostile[6], "原件");
    assert_eq!(&hostile[11], sm3_elsewhere(&hostile_pdf));
    let picture = rows.iter().find(|r| &r[1] == "现场图").unwrap();
    assert_eq!(&picture[5], "1", "a picture is one page");
    assert!(picture[3].contains("民警"), "source: {}", &picture[3]);
    assert!(
        picture[12].len() == 19 && picture[13].len() == 19,
        "CST times"
    );
    let html = String::from_utf8(files["证据目录.html"].clone()).unwrap();
    assert!(html.contains("2026-736") && html.contains("证据目录"));
    assert!(html.contains(&hex::encode(sha2::Sha256::digest(&files["manifest.json"]))));
    assert!(html.contains("@page") && !html.contains("<script"));

    // /verify checks SM3 too, and says so.
    let verdict = verify_json(&app, zip.clone()).await;
    assert_eq!(
        verdict["digests"],
        serde_json::json!(["SHA-256", "SM3"]),
        "{verdict}"
    );
    let index_files = verdict["files"].as_array().unwrap();
    assert!(index_files.iter().all(|f| f["ok"] == true), "{verdict}");

    // A file altered and its SHA256SUMS line forged to match: SM3 still catches it.
    let (_, target) = sm3_lines.iter().find(|l| l.1.ends_with(".png")).unwrap();
    let mut forged = files.clone();
    forged.get_mut(target).unwrap().push(b'!');
    let new_sha = hex::encode(sha2::Sha256::digest(&forged[target]));
    let sha_text = String::from_utf8(files["SHA256SUMS"].clone()).unwrap();
    let old_sha = &sha_lines.iter().find(|l| &l.1 == target).unwrap().0;
    forged.insert(
        "SHA256SUMS".into(),
        sha_text.replace(old_sha.as_str(), &new_sha).into_bytes(),
    );
    let verdict = verify_json(&app, rezip(&forged)).await;
    assert_eq!(verdict["intact"], false);
    let bad = verdict["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == target.as_str())
        .unwrap()
        .clone();
    assert_eq!(bad["ok"], false);
    assert_eq!(bad["mismatched"], serde_json::json!(["SM3"]));
    // Altered without forging: both digests named.
    let mut altered = files.clone();
    altered.get_mut(target).unwrap().push(b'!');
    let verdict = verify_json(&app, rezip(&altered)).await;
    let bad = verdict["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == target.as_str())
        .unwrap()
        .clone();
    assert_eq!(bad["mismatched"], serde_json::json!(["SHA-256", "SM3"]));

    // A bundle made before SM3SUMS existed still checks, by SHA-256 alone.
    let mut old = files.clone();
    old.remove("SM3SUMS");
    let verdict = verify_json(&app, rezip(&old)).await;
    assert_eq!(
        verdict["digests"],
        serde_json::json!(["SHA-256"]),
        "{verdict}"
    );
    assert!(
        verdict["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["ok"] == true)
    );
}

#[tokio::test]
async fn a_material_recorded_before_sm3_gets_it_before_its_bundle_and_from_the_backfill() {
    let app = crate::helpers::spawn_app().await;
    let (staff, party, case_id) = served_case(&app, "2026-737").await;
    let id = uploaded(&staff, &case_id, "scene_photo", "照片", "p.png", PNG).await;
    decide(&staff, &case_id, &id, "release", &[]).await;
    let id = uuid::Uuid::parse_str(&id).unwrap();
    let forget = || async {
        let mut row: material::ActiveModel = material::Entity::find_by_id(id)
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap()
            .into();
        row.sm3 = sea_orm::Set(None);
        sea_orm::ActiveModelTrait::update(row, &app.state.db)
            .await
            .unwrap();
    };
    forget().await;
    let res = party.get(&format!("/cases/{case_id}/bundle.zip")).await;
    assert_status(&res, StatusCode::OK);
    let files = entries(&res.bytes().await.unwrap());
    assert!(
        sums(&files["SM3SUMS"])
            .iter()
            .any(|l| l.0 == sm3_elsewhere(PNG))
    );
    let stored = material::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.sm3.as_deref(), Some(sm3_elsewhere(PNG).as_str()));
    // The backfill (`gc`, and `serve` at start) fills what is left.
    forget().await;
    let filled = evidence_portal::materials::sm3::backfill(&app.state.db, &app.state.store, 100)
        .await
        .unwrap();
    assert_eq!(filled.filled, 1);
    assert!(filled.failed.is_empty());
    let stored = material::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.sm3.as_deref(), Some(sm3_elsewhere(PNG).as_str()));
}

async fn custody_json(who: &TestApp, path: &str) -> (StatusCode, serde_json::Value) {
    let res = who.get(&format!("{path}?format=json")).await;
    let status = res.status();
    (status, res.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_custody_record_shows_ingest_changes_and_deliveries_in_order_and_is_signed() {
    let app = crate::helpers::spawn_app().await;
    let (staff, party, case_id) = served_case(&app, "2026-738").await;
    let id = uploaded(&staff, &case_id, "scene_photo", "现场照片", "p.png", PNG).await;
    decide(&staff, &case_id, &id, "release", &[]).await;
    // What it proves, filled in by staff (audited), printed in the index and the record.
    let csrf = staff.csrf_from(&format!("/staff/cases/{case_id}")).await;
    let res = staff
        .post_form(
            &format!("/staff/cases/{case_id}/materials/{id}/proves"),
            &[("csrf_token", &csrf), ("proves", "事故发生时的路面状况")],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    let res = party
        .get(&format!("/cases/{case_id}/materials/{id}/download"))
        .await;
    assert_status(&res, StatusCode::OK);
    res.bytes().await.unwrap();

    // The party's record: what concerns them, their own download marked, no addresses.
    let party_path = format!("/cases/{case_id}/custody/{id}");
    let (status, mine) = custody_json(&party, &party_path).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["record"]["view"], "party");
    assert!(mine["record"]["ingest"]["address"].is_null());
    let delivery = &mine["record"]["deliveries"][0];
    assert_eq!(delivery["downloads"], 1);
    assert_eq!(delivery["mine"], true);
    assert_eq!(delivery["to"], "当事人 张**");
    let page = party.get(&party_path).await;
    assert_status(&page, StatusCode::OK);
    // The material's page links it.
    let viewer = party.get(&format!("/cases/{case_id}/materials/{id}")).await;
    assert!(viewer.text().await.unwrap().contains(&party_path));

    // Someone of another case, and staff of another brigade, are refused.
    let other_staff = staff_of(&app, "110106", "li.na").await;
    let other_case = open_case(&staff, "2026-739", false).await;
    let code = registered(&staff, &other_case, "甲", "440304198511223338", "李四").await;
    set_status(&staff, &other_case, &[("to", "disclosing")]).await;
    let outsider = app.with_client(client());
    activate(&outsider, "440304198511223338", &code, PASSWORD).await;
    for who in [&outsider, &other_staff] {
        let res = who.get(&party_path).await;
        assert!(
            matches!(res.status(), StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
            "{}",
            res.status()
        );
    }
    let res = other_staff
        .get(&format!("/staff/cases/{case_id}/materials/{id}/custody"))
        .await;
    assert_status(&res, StatusCode::NOT_FOUND);

    // Withheld after release: staff's record has both, in order, with sequence numbers.
    decide(
        &staff,
        &case_id,
        &id,
        "withhold",
        &[
            ("ground", "witness_confidentiality"),
            ("note", "证人要求保密"),
        ],
    )
    .await;
    let staff_path = format!("/staff/cases/{case_id}/materials/{id}/custody");
    let page = staff.get(&staff_path).await;
    assert_status(&page, StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(&sm3_elsewhere(PNG)) && html.contains("custody-step"));
    let (status, body) = custody_json(&staff, &staff_path).await;
    assert_eq!(status, StatusCode::OK);
    let record = &body["record"];
    assert_eq!(record["view"], "staff");
    assert_eq!(record["proves"], "事故发生时的路面状况");
    assert_eq!(record["ingest"]["sm3"], sm3_elsewhere(PNG));
    assert!(record["ingest"]["address"].is_string(), "{record}");
    let ingest_seq = record["ingest"]["seq"].as_i64().unwrap();
    let steps: Vec<(String, i64)> = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] != "audit.export")
        .map(|s| {
            (
                s["action"].as_str().unwrap().to_owned(),
                s["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["material.release", "material.withhold"]
    );
    assert!(ingest_seq < steps[0].1 && steps[0].1 < steps[1].1);
    let withhold = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "material.withhold")
        .unwrap();
    assert_eq!(withhold["details"]["ground"], "witness_confidentiality");
    assert_eq!(record["withhold_note"], "证人要求保密");
    assert_eq!(record["delivered_times"], 1);
    assert!(record["export_seq"].as_i64().unwrap() > steps[1].1);
    // The export was audited.
    let exports = crate::auth::events(&app, "audit.export").await;
    assert!(exports.iter().any(|e| e.details.contains("custody_record")));

    // Signed with the bundle key: the JWS's payload is the record.
    let jws = body["jws"].as_str().unwrap();
    let payload = app.state.manifest_key.verify(jws).unwrap();
    let signed: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(&signed, record);
    // And /verify takes it like a manifest's signature.
    let court = app.with_client(client());
    let verify_page = court.get("/verify").await.text().await.unwrap();
    let csrf = crate::helpers::csrf_in_action(&verify_page);
    let form = reqwest::multipart::Form::new().text("jws_text", jws.to_owned());
    let verdict: serde_json::Value = court
        .client
        .post(format!("{}/verify?csrf_token={csrf}", court.address))
        .header("Accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verdict["valid"], true, "{verdict}");
    // Withheld now: the party no longer sees the material, nor its record.
    let res = party.get(&party_path).await;
    assert_status(&res, StatusCode::NOT_FOUND);
}
