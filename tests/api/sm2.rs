//! The national algorithms beside the international ones (issue 36): every bundle's manifest is
//! signed with SM2 (signer ID 1234567812345678) beside Ed25519, checked here by a second
//! implementation (PyPI `gmssl`, `tests/tools/sm2_verify_gmssl.py`), by `/verify` and by the
//! `verify` command; an altered or removed SM2 signature is refused naming SM2; a bundle made
//! before SM2 still verifies, with a note. With `PORTAL_TSA_URL` the manifest is timestamped by
//! an RFC 3161 authority (a stand-in over `openssl ts -reply`, `tests/tools/tsa_stand_in.py`),
//! checked by `openssl ts -verify` and shown on `/verify`. The audit checkpoints carry an SM2
//! signature too.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use reqwest::StatusCode;

use crate::auth::{PASSWORD, activate};
use crate::cases::{open_case, registered, set_status, staff_of};
use crate::helpers::{TestApp, assert_status, client, spawn_app, spawn_app_with};
use crate::materials::{PDF, PNG, decide, uploaded};

const TOOLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools");

/// The Python that runs the tools: `.ci/run`'s virtual environment (with gmssl), else `python3`.
fn python() -> String {
    std::env::var("PORTAL_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A served case with two released materials; returns the party, signed in, and the bundle URL.
async fn served_case(app: &TestApp) -> (TestApp, String) {
    let staff = staff_of(app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-360", true).await;
    let code = registered(&staff, &case_id, "甲", "110101199003070011", "张伟").await;
    for (kind, title, name, bytes) in [
        ("scene_diagram", "现场图", "现场图.png", PNG),
        ("survey_record", "勘查笔录", "勘查笔录.pdf", PDF),
    ] {
        let id = uploaded(&staff, &case_id, kind, title, name, bytes).await;
        assert_status(
            &decide(&staff, &case_id, &id, "release", &[]).await,
            StatusCode::SEE_OTHER,
        );
    }
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
    (party, format!("/cases/{case_id}/bundle.zip"))
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

/// `files` as a zip, in name order.
fn zip_of(files: &HashMap<String, Vec<u8>>) -> Vec<u8> {
    let mut names: Vec<&String> = files.keys().collect();
    names.sort();
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        for name in names {
            w.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(&files[name]).unwrap();
        }
        w.finish().unwrap();
    }
    out.into_inner()
}

/// Posts `zip` to `/verify` without an account; the JSON answer.
async fn checked(app: &TestApp, zip: Vec<u8>) -> serde_json::Value {
    let court = app.with_client(client());
    let page = court.get("/verify").await.text().await.unwrap();
    let csrf = crate::helpers::csrf_in_action(&page);
    let form = reqwest::multipart::Form::new().part(
        "bundle",
        reqwest::multipart::Part::bytes(zip).file_name("证据包.zip"),
    );
    let res = court
        .client
        .post(format!("{}/verify?csrf_token={csrf}", court.address))
        .header("Accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::OK);
    res.json().await.unwrap()
}

/// Whether `python3` can import gmssl; under CI it must.
fn gmssl_available() -> bool {
    let ok = std::process::Command::new(python())
        .args(["-c", "import gmssl"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "gmssl is not installed: .ci/run installs it (pip install gmssl)"
        );
        println!("note: gmssl is not installed; the independent SM2 check is skipped");
    }
    ok
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn a_bundle_carries_an_sm2_signature_that_a_second_implementation_verifies() {
    let app = spawn_app().await;
    let (party, url) = served_case(&app).await;
    let res = party.get(&url).await;
    assert_status(&res, StatusCode::OK);
    let zip = res.bytes().await.unwrap().to_vec();
    let files = entries(&zip);
    let manifest = &files["manifest.json"];
    let signature = &files["manifest.sm2.sig"];
    assert_eq!(signature[0], 0x30, "a DER SM2Signature");

    // The manifest names the signer ID and the public key; the key is published as PEM.
    let claims: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    assert_eq!(claims["sm2"]["signer_id"], "1234567812345678");
    assert_eq!(claims["sm2"]["algorithm"], "SM2-with-SM3");
    assert_eq!(claims["sm2"]["signature_file"], "manifest.sm2.sig");
    let res = app
        .get("/.well-known/evidence-portal/manifest-key-sm2.pem")
        .await;
    assert_status(&res, StatusCode::OK);
    let pem = res.text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let public = evidence_portal::signing::Sm2Public::from_pem(&pem).unwrap();
    assert_eq!(claims["sm2"]["public_key"], public.hex());

    // A second implementation: gmssl, with its fixed default ID.
    if gmssl_available() {
        let dir = tempfile::tempdir().unwrap();
        let run = |sig: &[u8]| {
            std::process::Command::new(python())
                .arg(format!("{TOOLS}/sm2_verify_gmssl.py"))
                .arg(write(dir.path(), "manifest.json", manifest))
                .arg(write(dir.path(), "manifest.sm2.sig", sig))
                .arg(write(dir.path(), "sm2.pem", pem.as_bytes()))
                .output()
                .unwrap()
        };
        let out = run(signature);
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut altered = signature.clone();
        let last = altered.len() - 1;
        altered[last] ^= 0x01;
        assert_eq!(run(&altered).status.code(), Some(1), "gmssl refuses it too");
    }

    // The public page checks both and says so.
    let verdict = checked(&app, zip.clone()).await;
    assert_eq!(verdict["intact"], true, "{verdict}");
    assert_eq!(
        verdict["algorithms"],
        serde_json::json!(["Ed25519", "SM2-with-SM3"])
    );
    assert!(verdict["timestamp"].is_null(), "no TSA configured");

    // The command line too.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bundle.zip", &zip);
    let out = crate::cli::run(&["verify", &path], &app.env, "");
    let said = crate::cli::stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}{}",
        crate::cli::stderr(&out)
    );
    assert!(
        said.contains("algorithms checked: Ed25519, SM2-with-SM3"),
        "{said}"
    );

    // An altered SM2 signature is refused, naming SM2 (on the page and by the command).
    let mut altered = files.clone();
    let sig = altered.get_mut("manifest.sm2.sig").unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    let verdict = checked(&app, zip_of(&altered)).await;
    assert_eq!(verdict["intact"], false, "{verdict}");
    assert_eq!(verdict["valid"], false);
    assert!(
        verdict["headline"].as_str().unwrap().contains("SM2"),
        "{verdict}"
    );
    let path = write(dir.path(), "altered.zip", &zip_of(&altered));
    let out = crate::cli::run(&["verify", &path], &app.env, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        crate::cli::stderr(&out).contains("SM2"),
        "{}",
        crate::cli::stderr(&out)
    );

    // Removed after signing: the manifest announced it.
    let mut removed = files.clone();
    removed.remove("manifest.sm2.sig");
    let verdict = checked(&app, zip_of(&removed)).await;
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert!(
        verdict["headline"].as_str().unwrap().contains("SM2"),
        "{verdict}"
    );
}

/// A bundle made before SM2 signing (its manifest announces none) still verifies, with a note.
#[tokio::test]
async fn a_bundle_made_before_sm2_still_verifies_with_a_note() {
    let app = spawn_app().await;
    let manifest =
        b"{\n  \"format\": \"evidence-portal-bundle/1\",\n  \"case_number\": \"2025-1\"\n}\n";
    let jws = app.state.manifest_key.sign(manifest).unwrap();
    let sum = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    use sha2::Digest;
    let files: HashMap<String, Vec<u8>> = [
        ("manifest.json".to_owned(), manifest.to_vec()),
        ("manifest.jws".to_owned(), jws.into_bytes()),
        (
            "SHA256SUMS".to_owned(),
            format!("{}  manifest.json\n", sum(manifest)).into_bytes(),
        ),
    ]
    .into_iter()
    .collect();
    let verdict = checked(&app, zip_of(&files)).await;
    assert_eq!(verdict["intact"], true, "{verdict}");
    assert_eq!(verdict["algorithms"], serde_json::json!(["Ed25519"]));
    let notes = verdict["signatures"].to_string();
    assert!(notes.contains("没有 SM2 签名"), "{notes}");
}

/// The audit checkpoints carry an SM2 signature beside the JWS; `audit verify` checks it and
/// says so, and refuses a checkpoint whose SM2 signature was replaced.
#[tokio::test]
async fn audit_checkpoints_are_signed_with_sm2_too() {
    let app = spawn_app().await;
    let (party, url) = served_case(&app).await;
    assert_status(&party.get(&url).await, StatusCode::OK);
    let out = crate::cli::run(&["audit", "verify"], &app.env, "");
    let said = crate::cli::stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}{}",
        crate::cli::stderr(&out)
    );
    assert!(
        said.contains("checkpoint signatures checked: Ed25519, SM2-with-SM3"),
        "{said}"
    );
    let keys = app
        .state
        .store
        .keys_under("audit/sm2-checkpoints")
        .await
        .unwrap();
    let newest = keys.into_iter().max().unwrap();
    let object = evidence_portal::store::ObjectKey::from_stored(&newest).unwrap();
    // Another checkpoint's signature put in its place.
    let forged = app
        .state
        .manifest_key
        .sm2()
        .unwrap()
        .sign(b"{\"type\":\"audit-checkpoint\"}")
        .unwrap();
    app.state
        .store
        .put_small(&object, bytes::Bytes::from(forged))
        .await
        .unwrap();
    let anchored = evidence_portal::audit::verify::verify_anchored(
        &app.state.db,
        &app.state.store,
        &app.state.manifest_key,
    )
    .await
    .unwrap();
    let problem = anchored.checkpoint_problem.unwrap_or_default();
    assert!(problem.contains("SM2"), "{problem}");
}

/// The TSA stand-in, started in `dir`: its port and the process (killed on drop).
struct Authority {
    port: u16,
    child: std::process::Child,
}

impl Drop for Authority {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn authority(dir: &Path) -> Authority {
    let mut child = std::process::Command::new(python())
        .arg(format!("{TOOLS}/tsa_stand_in.py"))
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the TSA stand-in");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the stand-in said {line:?}"));
    Authority { port, child }
}

#[tokio::test]
async fn with_a_time_stamping_authority_every_manifest_is_timestamped() {
    let dir = tempfile::tempdir().unwrap();
    let tsa = authority(dir.path());
    let app = spawn_app_with(|env| {
        env.insert(
            "PORTAL_TSA_URL".into(),
            format!("http://127.0.0.1:{}/", tsa.port),
        );
    })
    .await;
    let (party, url) = served_case(&app).await;
    let res = party.get(&url).await;
    assert_status(&res, StatusCode::OK);
    let zip = res.bytes().await.unwrap().to_vec();
    let files = entries(&zip);
    let claims: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(
        claims["timestamp_authority"],
        format!("http://127.0.0.1:{}/", tsa.port)
    );

    // OpenSSL checks the authority's signature and that it stamps this manifest.
    let data = write(dir.path(), "manifest.json", &files["manifest.json"]);
    let token = write(dir.path(), "manifest.tsr", &files["manifest.tsr"]);
    let out = std::process::Command::new("openssl")
        .args(["ts", "-verify", "-data", &data, "-in", &token, "-CAfile"])
        .arg(dir.path().join("ca.crt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Asked for again: the same bytes (the token is kept, not asked for anew).
    let again = party.get(&url).await.bytes().await.unwrap().to_vec();
    assert_eq!(again, zip, "the same bundle is the same zip");

    // The page shows the time and names RFC 3161 among what it checked.
    let verdict = checked(&app, zip.clone()).await;
    assert_eq!(verdict["intact"], true, "{verdict}");
    assert!(verdict["timestamp"].as_str().is_some(), "{verdict}");
    assert_eq!(
        verdict["algorithms"],
        serde_json::json!(["Ed25519", "SM2-with-SM3", "RFC 3161"])
    );
    let court = app.with_client(client());
    let page = court.get("/verify").await.text().await.unwrap();
    let csrf = crate::helpers::csrf_in_action(&page);
    let form = reqwest::multipart::Form::new().part(
        "bundle",
        reqwest::multipart::Part::bytes(zip.clone()).file_name("b.zip"),
    );
    let html = court
        .client
        .post(format!("{}/verify?csrf_token={csrf}", court.address))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("RFC 3161"), "{html}");
    assert!(html.contains("(UTC+8)"), "the time is shown");

    // A token for another document is refused.
    let mut swapped = files.clone();
    swapped.insert("manifest.tsr".into(), b"not a token".to_vec());
    let verdict = checked(&app, zip_of(&swapped)).await;
    assert_eq!(verdict["valid"], false, "{verdict}");
}

#[tokio::test]
async fn when_the_authority_is_down_the_bundle_is_refused_cleanly() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_TSA_URL".into(), format!("http://127.0.0.1:{port}/"));
    })
    .await;
    let (party, url) = served_case(&app).await;
    let res = party
        .client
        .get(format!("{}{url}", party.address))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
}
