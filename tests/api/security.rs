//! Regression tests for the black-box security review (issue 15), each through the running
//! server: account authority that follows case scope, safe redirects, an activation form that
//! tells nothing, throttles that hold under parallel attempts, and the smaller holes.

use reqwest::StatusCode;
use sea_orm::EntityTrait;

use crate::auth::{PASSWORD, activate, admin, events, sign_in};
use crate::cases::{code_on, open_case, party_id_on, register, registered, staff_of};
use crate::helpers::{TestApp, assert_status, client, spawn_app};

const PARTY: &str = "110101199003070011";

/// Asks for the notice of the first party on `case` again.
async fn reprint_first_party(staff: &TestApp, case: &str) -> reqwest::Response {
    let party_id = party_id_on(staff, case).await;
    let csrf = staff.csrf_from(&format!("/staff/cases/{case}")).await;
    let res = staff
        .post_form(
            &format!("/staff/cases/{case}/parties/{party_id}/code"),
            &[("csrf_token", &csrf)],
        )
        .await;
    crate::cases::follow_notice(staff, res).await
}

/// Posts the reset form of the first party on `case`.
async fn reset_first_party(staff: &TestApp, case: &str, confirm: bool) -> reqwest::Response {
    let party_id = party_id_on(staff, case).await;
    let csrf = staff.csrf_from(&format!("/staff/cases/{case}")).await;
    let mut fields = vec![("csrf_token", csrf.as_str()), ("reason", "遗失密码")];
    if confirm {
        fields.push(("confirm", "yes"));
    }
    let res = staff
        .post_form(
            &format!("/staff/cases/{case}/parties/{party_id}/reset"),
            &fields,
        )
        .await;
    crate::cases::follow_notice(staff, res).await
}

/// Brigade B registers brigade A's party on a case of its own: it can neither reset the account
/// nor get a code for it, so it cannot sign in as the party; the party keeps their password. An
/// account reaching two brigades is an administrator's to reset, with a reason the party sees.
#[tokio::test]
async fn staff_of_another_brigade_cannot_take_over_a_partys_account() {
    let app = spawn_app().await;
    let staff_a = staff_of(&app, "110105", "wang.li").await;
    let staff_b = staff_of(&app, "110106", "zhao.min").await;
    let case_a = open_case(&staff_a, "2026-901", false).await;
    let code = registered(&staff_a, &case_a, "甲", PARTY, "张伟").await;
    let party = app.with_client(client());
    assert_status(
        &activate(&party, PARTY, &code, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );

    // B registers the same person: the notice carries no code.
    let case_b = open_case(&staff_b, "2026-902", false).await;
    let notice = register(&staff_b, &case_b, "甲", PARTY, "张伟")
        .await
        .text()
        .await
        .unwrap();
    assert!(code_on(&notice).is_none());
    // Reprinting: still no code, nothing reset.
    let res = reprint_first_party(&staff_b, &case_b).await;
    assert_status(&res, StatusCode::OK);
    assert!(code_on(&res.text().await.unwrap()).is_none());
    // Resetting: refused, said why, audited.
    let res = reset_first_party(&staff_b, &case_b, true).await;
    assert_status(&res, StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("只有系统管理员可以重置"));
    let refused = events(&app, "account.reset").await;
    assert!(
        refused
            .iter()
            .any(|e| e.outcome == "denied" && e.details.contains("outside_brigade")),
        "{refused:?}"
    );
    // Brigade A cannot either now: the account reaches brigade B's case too.
    assert_status(
        &reset_first_party(&staff_a, &case_a, true).await,
        StatusCode::FORBIDDEN,
    );
    // The party was never disturbed.
    assert_status(&party.get("/cases").await, StatusCode::OK);
    let again = app.with_client(client());
    assert_status(
        &sign_in(&again, PARTY, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );

    // An administrator may, with a confirmation and a reason.
    let admin = admin(&app).await;
    let account_id =
        evidence_portal::auth::signin::find_account(&app.state.db, &app.state.key, PARTY)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .1
            .id;
    let csrf = admin.csrf_from("/admin").await;
    let path = format!("/admin/accounts/{account_id}/reset");
    let res = admin
        .post_form(&path, &[("csrf_token", &csrf), ("reason", "本人来电")])
        .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let res = admin
        .post_form(
            &path,
            &[("csrf_token", &csrf), ("confirm", "yes"), ("reason", " ")],
        )
        .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert_status(
        &sign_in(&app.with_client(client()), PARTY, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
    let res = admin
        .post_form(
            &path,
            &[
                ("csrf_token", &csrf),
                ("confirm", "yes"),
                ("reason", "本人来电申请"),
            ],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    let shown = res.headers()["location"].to_str().unwrap().to_owned();
    let new_code = code_on(&admin.get(&shown).await.text().await.unwrap()).unwrap();
    assert_status(&party.get("/cases").await, StatusCode::SEE_OTHER);
    let person = app.with_client(client());
    assert_status(
        &activate(&person, PARTY, &new_code, "Another-Lotus-Pass-9").await,
        StatusCode::SEE_OTHER,
    );
    let mine = person.get("/cases").await.text().await.unwrap();
    assert!(
        mine.contains("系统管理员") && mine.contains("本人来电申请"),
        "{mine}"
    );
}

/// A party registered but not activated in brigade A: brigade B's registration issues no new
/// code (which would revoke A's and let B activate the account); A's code still works.
#[tokio::test]
async fn another_brigade_cannot_issue_a_code_for_a_pending_account() {
    let app = spawn_app().await;
    let staff_a = staff_of(&app, "110105", "wang.li").await;
    let staff_b = staff_of(&app, "110106", "zhao.min").await;
    let case_a = open_case(&staff_a, "2026-911", false).await;
    let code = registered(&staff_a, &case_a, "甲", PARTY, "张伟").await;
    let case_b = open_case(&staff_b, "2026-912", false).await;
    let notice = register(&staff_b, &case_b, "乙", PARTY, "张伟")
        .await
        .text()
        .await
        .unwrap();
    assert!(code_on(&notice).is_none());
    assert!(notice.contains("请用当时收到的访问码激活"), "{notice}");
    let res = reprint_first_party(&staff_b, &case_b).await;
    assert!(code_on(&res.text().await.unwrap()).is_none());
    let party = app.with_client(client());
    assert_status(
        &activate(&party, PARTY, &code, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
}

/// A sign-in attempt from `ip` (through the trusted proxy); the status and the page.
async fn sign_in_from(
    app: &TestApp,
    ip: &str,
    identifier: &str,
    password: &str,
) -> (StatusCode, String) {
    let csrf = app.csrf_from("/login").await;
    let res = app
        .client
        .post(format!("{}/login", app.address))
        .header("X-Forwarded-For", ip)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("identifier", identifier),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.text().await.unwrap())
}

async fn behind_proxy() -> TestApp {
    crate::helpers::spawn_app_with(|env| {
        env.insert("PORTAL_TRUSTED_PROXIES".into(), "127.0.0.1".into());
    })
    .await
}

/// 30 wrong passwords at once, each from its own address: every one is counted, the account
/// locks, and the right password is then refused too.
#[tokio::test]
async fn parallel_wrong_passwords_all_count_and_lock_the_account() {
    let app = behind_proxy().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case = open_case(&staff, "2026-921", false).await;
    let code = registered(&staff, &case, "甲", PARTY, "张伟").await;
    let party = app.with_client(client());
    activate(&party, PARTY, &code, PASSWORD).await;
    let attempts =
        (0..30).map(|i| {
            let app = app.with_client(client());
            async move {
                sign_in_from(&app, &format!("198.51.100.{i}"), PARTY, "Wrong-Password-1").await
            }
        });
    let answers = futures_util::future::join_all(attempts).await;
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::OK),
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    let (status, page) = sign_in_from(
        &app.with_client(client()),
        "198.51.100.200",
        PARTY,
        PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "refused, not signed in");
    assert!(page.contains("账号或密码不正确"));
    let refusals = events(&app, "auth.login").await;
    assert_eq!(
        refusals.iter().filter(|e| e.outcome == "denied").count(),
        31,
        "every attempt audited"
    );
    assert!(
        refusals
            .iter()
            .filter(|e| e.details.contains("\"locked\""))
            .count()
            >= 25
    );
}

/// 60 failures at once from one address: the first 20 are judged, the rest answered 429 without
/// any password work, and the address stays blocked.
#[tokio::test]
async fn parallel_failures_from_one_address_block_it() {
    let app = behind_proxy().await;
    let attempts = (0..60).map(|_| {
        let app = app.with_client(client());
        async move {
            sign_in_from(&app, "203.0.113.5", "nobody.here", "x")
                .await
                .0
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let judged = answers.iter().filter(|s| **s == StatusCode::OK).count();
    let blocked = answers
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((judged, blocked), (20, 40), "{answers:?}");
    assert_eq!(
        sign_in_from(&app, "203.0.113.5", "nobody.here", "x")
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another address is not affected.
    assert_eq!(
        sign_in_from(&app, "203.0.113.6", "nobody.here", "x")
            .await
            .0,
        StatusCode::OK
    );
}

/// The activation form tells nothing about who has an account: with a wrong code, a known
/// identifier gets the same answer as an unknown one whatever is wrong with the new password;
/// every try is audited and counted.
#[tokio::test]
async fn activation_answers_every_wrong_code_alike() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case = open_case(&staff, "2026-931", false).await;
    let code = registered(&staff, &case, "甲", PARTY, "张伟").await;
    let try_it = |id: &'static str, code: String, new: &'static str, repeat: &'static str| {
        let app = app.with_client(client());
        async move {
            let csrf = app.csrf_from("/activate").await;
            let res = app
                .post_form(
                    "/activate",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("identifier", id),
                        ("code", &code),
                        ("password", new),
                        ("password_repeat", repeat),
                    ],
                )
                .await;
            crate::auth::alert(res).await
        }
    };
    let wrong = "ABCD-EFGH-JKLM".to_owned();
    let known_mismatch = try_it(PARTY, wrong.clone(), PASSWORD, "other").await;
    let known_short = try_it(PARTY, wrong.clone(), "x", "x").await;
    let unknown = try_it("440304198511223338", wrong.clone(), PASSWORD, "other").await;
    assert_eq!(known_mismatch, unknown);
    assert_eq!(known_short, unknown);
    assert!(unknown.1.contains("访问码不正确"), "{unknown:?}");
    let denied = events(&app, "auth.activate").await;
    assert_eq!(denied.iter().filter(|e| e.outcome == "denied").count(), 3);
    // With the right code, the password problem is said.
    let with_code = app.with_client(client());
    let csrf = with_code.csrf_from("/activate").await;
    let said = with_code
        .post_form(
            "/activate",
            &[
                ("csrf_token", csrf.as_str()),
                ("identifier", PARTY),
                ("code", &code),
                ("password", PASSWORD),
                ("password_repeat", "other"),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(said.contains("两次输入的密码不一致"), "{said}");
    assert_status(
        &activate(&app.with_client(client()), PARTY, &code, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
}

/// Wrong current passwords on the password-change form count like failed sign-ins: the fifth
/// locks the account, and then even the right one is refused.
#[tokio::test]
async fn wrong_current_passwords_lock_the_account() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case = open_case(&staff, "2026-941", false).await;
    let code = registered(&staff, &case, "甲", PARTY, "张伟").await;
    let party = app.with_client(client());
    activate(&party, PARTY, &code, PASSWORD).await;
    let change = |current: &'static str| {
        let party = &party;
        async move {
            let csrf = party.csrf_from("/account").await;
            party
                .post_form(
                    "/account/password",
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("current", current),
                        ("new", "Brand-New-Harbor-77"),
                        ("repeat", "Brand-New-Harbor-77"),
                    ],
                )
                .await
        }
    };
    for _ in 0..5 {
        assert_status(&change("Guess-Number-1").await, StatusCode::BAD_REQUEST);
    }
    let res = change(PASSWORD).await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("已锁定"));
    assert_eq!(
        sign_in(&app.with_client(client()), PARTY, PASSWORD)
            .await
            .status(),
        StatusCode::OK,
        "locked for sign-in too"
    );
}

/// Redirect targets are local, normalised paths only: a TAB or newline (which browsers drop,
/// turning `/\t/evil` into `//evil`) or any other trick falls back to the default.
#[tokio::test]
async fn redirects_never_leave_the_portal() {
    let app = spawn_app().await;
    for next in [
        "/%09/evil.example",
        "/%0a/x",
        "/%0d%0a/x",
        "//evil.example",
        "/%5Cevil",
        "/./cases",
        "https://evil.example/",
    ] {
        let res = app.get(&format!("/language?to=en&next={next}")).await;
        assert_status(&res, StatusCode::SEE_OTHER);
        assert_eq!(crate::auth::location(&res), "/", "{next}");
    }
    let res = app.get("/language?to=zh-CN&next=/cases").await;
    assert_eq!(crate::auth::location(&res), "/cases");

    // The sign-in form's `next`, after a correct password.
    let staff = staff_of(&app, "110105", "wang.li").await;
    drop(staff);
    let person = app.with_client(client());
    let csrf = person.csrf_from("/login").await;
    let res = person
        .post_form(
            "/login",
            &[
                ("csrf_token", csrf.as_str()),
                ("identifier", "wang.li"),
                ("password", PASSWORD),
                ("next", "/\t/evil.example"),
            ],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_eq!(crate::auth::location(&res), "/staff");
}

/// A CSRF refusal is a page like any other (security headers on it) and is audited as the
/// signed-in person who made it.
#[tokio::test]
async fn csrf_refusals_carry_the_security_headers_and_name_the_person() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let res = staff
        .post_form(
            "/account/password",
            &[("current", "x"), ("new", "y"), ("repeat", "y")],
        )
        .await;
    assert_status(&res, StatusCode::FORBIDDEN);
    for header in [
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
    ] {
        assert!(res.headers().contains_key(header), "{header}");
    }
    let rejects = events(&app, "auth.csrf_reject").await;
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].actor_role, "staff");
    assert!(rejects[0].actor_id.is_some());
}

/// A served case with one released PDF titled to end in a Kelvin sign (`scan.K`, file `scan.k`):
/// (staff, party, case id, material id).
async fn served_with_material(app: &TestApp, number: &str) -> (TestApp, TestApp, String, String) {
    let (staff, party, case) = crate::cases::served_case(app, number).await;
    let id = crate::materials::uploaded(
        &staff,
        &case,
        "survey_record",
        "scan.\u{212A}",
        "scan.k",
        crate::materials::PDF,
    )
    .await;
    crate::materials::decide(&staff, &case, &id, "release", &[]).await;
    (staff, party, case, id)
}

/// The review's delivery findings: a huge last range position, HEAD audited as a whole transfer,
/// a bundle that dropped the connection on a Kelvin-sign title, and an unaudited bundle refusal.
#[tokio::test]
async fn delivery_answers_hostile_ranges_head_and_selections_honestly() {
    let app = spawn_app().await;
    let (staff, party, case, id) = served_with_material(&app, "2026-951").await;
    let size = crate::materials::PDF.len();
    let url = format!("{}/cases/{case}/materials/{id}/download", app.address);

    // Range: bytes=0-(u64::MAX): the whole file, 206.
    let res = party
        .client
        .get(&url)
        .header("Range", "bytes=0-18446744073709551615")
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        crate::helpers::header(&res, "content-range"),
        format!("bytes 0-{}/{size}", size - 1)
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), crate::materials::PDF);
    // Sixteen overlapping ranges are served once.
    let res = party
        .client
        .get(&url)
        .header("Range", format!("bytes={}", vec!["0-"; 16].join(",")))
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap().len(), size);

    // HEAD: headers only, audited as an access of no bytes, no transfer recorded.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // the GETs' transfer.end
    let before = events(&app, "transfer.end").await.len();
    let res = party.client.head(&url).send().await.unwrap();
    assert_status(&res, StatusCode::OK);
    assert_eq!(
        crate::helpers::header(&res, "content-length"),
        size.to_string()
    );
    let heads: Vec<_> = events(&app, "material.download")
        .await
        .into_iter()
        .filter(|e| e.details.contains("\"head\":true"))
        .collect();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].details.contains("\"bytes\":0"),
        "{}",
        heads[0].details
    );

    // The bundle with the Kelvin-sign title: a whole zip, its entry named after the title.
    let res = party.get(&format!("/cases/{case}/bundle.zip")).await;
    assert_status(&res, StatusCode::OK);
    let zip = res.bytes().await.unwrap();
    let names: Vec<String> = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec()))
        .unwrap()
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("scan.\u{212A}.k")),
        "{names:?}"
    );
    // HEAD on the bundle, with a huge range.
    let res = party
        .client
        .head(format!("{}/cases/{case}/bundle.zip", app.address))
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::OK);
    assert_eq!(
        crate::helpers::header(&res, "content-length"),
        zip.len().to_string()
    );
    let res = party
        .client
        .get(format!("{}/cases/{case}/bundle.zip", app.address))
        .header("Range", "bytes=10-18446744073709551615")
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap().as_ref(), &zip[10..]);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        events(&app, "transfer.end").await.len(),
        before + 2,
        "the two GETs, not the HEADs"
    );

    // Another case's material in the selection: 404, and audited.
    let other = crate::cases::open_case(&staff, "2026-952", false).await;
    let other_id =
        crate::materials::uploaded(&staff, &other, "other", "x", "x.pdf", crate::materials::PDF)
            .await;
    let res = party
        .get(&format!("/cases/{case}/bundle.zip?material={other_id}"))
        .await;
    assert_status(&res, StatusCode::NOT_FOUND);
    let refused = events(&app, "bundle.download").await;
    assert!(
        refused
            .iter()
            .any(|e| e.outcome == "denied" && e.details.contains("material_not_available")),
        "{refused:?}"
    );
}

/// Sends a hand-made multipart body to the upload route (reqwest would escape the names).
async fn raw_upload(staff: &TestApp, case: &str, body: Vec<u8>) -> reqwest::Response {
    let csrf = staff.csrf_from(&format!("/staff/cases/{case}")).await;
    staff
        .client
        .post(format!("{}/staff/cases/{case}/materials", staff.address))
        .header("X-CSRF-Token", csrf)
        .header("Accept", "application/json")
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn part(name: &str, filename: Option<&[u8]>, value: &[u8]) -> Vec<u8> {
    let mut out = b"--XyZ\r\nContent-Disposition: form-data; name=\"".to_vec();
    out.extend_from_slice(name.as_bytes());
    out.push(b'"');
    if let Some(f) = filename {
        out.extend_from_slice(b"; filename=\"");
        out.extend_from_slice(f);
        out.push(b'"');
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

async fn stored_objects(app: &TestApp) -> usize {
    app.state.store.keys_under("cases").await.unwrap().len()
}

/// A refused or cut upload leaves no object behind, even when the file part arrived whole
/// before the problem; a file name the multipart parser cannot read gets a clear answer, and
/// one it can read is cleaned (control and bidi characters out, NFC).
#[tokio::test]
async fn refused_or_cut_uploads_leave_nothing_and_names_are_cleaned() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case = open_case(&staff, "2026-961", false).await;
    let pdf = crate::materials::PDF;

    // A whole file part, then a 5,000-byte field.
    let mut body = part("kind", None, b"other");
    body.extend(part("file", Some(b"a.pdf"), pdf));
    body.extend(part("title", None, &[b'x'; 5000]));
    body.extend_from_slice(b"--XyZ--\r\n");
    let res = raw_upload(&staff, &case, body).await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("field_too_long"));
    assert_eq!(stored_objects(&app).await, 0);

    // The connection cut inside a later field, the file part already stored: the body stream
    // fails, so the client drops the connection mid-body.
    let mut body = part("kind", None, b"other");
    body.extend(part("file", Some(b"b.pdf"), pdf));
    body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhal");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(body),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "cut",
        )),
    ];
    let csrf = staff.csrf_from(&format!("/staff/cases/{case}")).await;
    let sent = staff
        .client
        .post(format!("{}/staff/cases/{case}/materials", staff.address))
        .header("X-CSRF-Token", csrf)
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    assert!(sent.is_err() || sent.is_ok_and(|r| r.status() == StatusCode::BAD_REQUEST));
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = stored_objects(&app).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the cut upload's file was removed");

    // Control characters the parser cannot read: a clear answer, nothing stored.
    let mut body = part("kind", None, b"other");
    body.extend(part("title", None, "报告".as_bytes()));
    body.extend(part("file", Some(b"con\0trol\x07.pdf"), pdf));
    body.extend_from_slice(b"--XyZ--\r\n");
    let res = raw_upload(&staff, &case, body).await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let text = res.text().await.unwrap();
    assert!(
        text.contains("bad_upload_form") && text.contains("控制字符"),
        "{text}"
    );
    assert_eq!(stored_objects(&app).await, 0);

    // A name it can read: cleaned and composed.
    let mut body = part("kind", None, b"other");
    body.extend(part("title", None, "报告".as_bytes()));
    body.extend(part(
        "file",
        Some("cafe\u{301}\u{202E}fdp.pdf".as_bytes()),
        pdf,
    ));
    body.extend_from_slice(b"--XyZ--\r\n");
    let res = raw_upload(&staff, &case, body).await;
    assert_status(&res, StatusCode::CREATED);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let row = evidence_portal::db::entities::material::Entity::find_by_id(
        id.parse::<uuid::Uuid>().unwrap(),
    )
    .one(&app.state.db)
    .await
    .unwrap()
    .unwrap();
    assert_eq!(row.original_name, "caf\u{e9}fdp.pdf");
}

/// A body that trickles is cut after the configured interval (1 s here) instead of holding the
/// connection: the sign-in form and an upload both answer quickly, and nothing is stored.
#[tokio::test]
async fn trickling_request_bodies_are_cut() {
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert("PORTAL_SLOW_BODY_SECONDS".into(), "1".into());
    })
    .await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case = open_case(&staff, "2026-971", false).await;
    let trickle = |first: Vec<u8>| {
        let chunks = futures_util::stream::unfold(Some(first), |state| async move {
            match state {
                Some(first) => Some((Ok::<_, std::io::Error>(first), None)),
                None => {
                    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
                    None
                }
            }
        });
        reqwest::Body::wrap_stream(chunks)
    };
    let started = std::time::Instant::now();
    let csrf = staff.csrf_from(&format!("/staff/cases/{case}")).await;
    let mut head = part("kind", None, b"other");
    head.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.4\n");
    let res = staff
        .client
        .post(format!("{}/staff/cases/{case}/materials", staff.address))
        .header("X-CSRF-Token", csrf)
        .header("Accept", "application/json")
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(trickle(head))
        .send()
        .await;
    let elapsed = started.elapsed();
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
    if let Ok(res) = res {
        assert_status(&res, StatusCode::BAD_REQUEST);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(stored_objects(&app).await, 0);

    let started = std::time::Instant::now();
    let _ = app
        .with_client(client())
        .client
        .post(format!("{}/login", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(trickle(b"identifier=wang".to_vec()))
        .send()
        .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// A sign-in identifier of 18 bytes that is not 18 ASCII characters (16 digits and `é`) made
/// the identifier parser cut a character in two: the sign-in page answered with a panic.
#[tokio::test]
async fn a_multibyte_identifier_is_refused_not_a_crash() {
    let app = spawn_app().await;
    for id in ["1101051949123100é", "11010519491231000\u{212A}"] {
        let res = sign_in(&app.with_client(client()), id, PASSWORD).await;
        assert_status(&res, StatusCode::OK);
    }
}
