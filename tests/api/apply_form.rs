//! The public form `/apply` as people use it (issue 31 item 5): every invalid field marked at
//! once with a summary at the top; the proof kept across refusals (held for a while, bound to
//! the browser, found by `gc` once unused); a duplicate warned about and filed only when
//! confirmed — and nothing told about anyone else's application.

use evidence_portal::db::entities::access_application;
use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait, QueryOrder};
use sha2::Digest;

use crate::applications::{INSURER_MOBILE, applies, brigade_on_form, insurer_applies};
use crate::cases::served_case;
use crate::helpers::{TestApp, client, csrf_in_action, header, spawn_app_with};
use crate::materials::{PDF, PNG};

/// Where proofs held across refusals wait (`applications::access::held`): under `cases/`, so
/// `gc` collects one nobody filed with.
const HELD: &str = "cases/00000000-0000-0000-0000-000000000000";

/// What the form carries besides the typed fields.
enum Proof<'a> {
    /// A chosen file: its name and bytes.
    File(&'a str, &'a [u8]),
    /// The empty part a browser sends for a file input left empty.
    NotChosen,
}

/// The insurer's form with `changes` over the good values, the proof, and what else the page
/// carried (`held_proof`, `confirm_duplicate`).
fn form(
    brigade: &str,
    case_number: &str,
    changes: &[(&str, &str)],
    proof: Proof<'_>,
) -> reqwest::multipart::Form {
    let mut fields: Vec<(&str, String)> = vec![
        ("kind", "insurer".into()),
        ("brigade", brigade.into()),
        ("case_number", case_number.into()),
        ("applicant_name", "李明".into()),
        ("organisation", "中国人民财产保险".into()),
        ("credit_code", "91110000710931141J".into()),
        ("plate", "京A·12345".into()),
        ("policy_no", "PDAA202611000001".into()),
        ("mobile", INSURER_MOBILE.into()),
        ("email", String::new()),
    ];
    for (name, value) in changes {
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some(f) => f.1 = (*value).to_owned(),
            None => fields.push((name, (*value).to_owned())),
        }
    }
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name.to_owned(), value);
    }
    let part = match proof {
        Proof::File(name, bytes) => {
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned())
        }
        Proof::NotChosen => reqwest::multipart::Part::bytes(Vec::new())
            .file_name("")
            .mime_str("application/octet-stream")
            .unwrap(),
    };
    form.part("proof", part)
}

/// Posts the form from `who`'s browser with the token of the form it was shown.
async fn apply(who: &TestApp, form: reqwest::multipart::Form) -> reqwest::Response {
    let csrf = csrf_in_action(&who.get("/apply").await.text().await.unwrap());
    who.client
        .post(format!("{}/apply?csrf_token={csrf}", who.address))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// The value of the hidden field `name` in `html`, if the page has it.
fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker)? + marker.len();
    html[start..].split('"').next().map(str::to_owned)
}

/// The `<input …>` tag whose id is `id`.
fn input<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!(r#"<input id="{id}""#))
        .unwrap_or_else(|| panic!("no input {id}"));
    let end = html[start..].find('>').unwrap() + start;
    &html[start..=end]
}

async fn applications(app: &TestApp) -> u64 {
    access_application::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap()
}

async fn held(app: &TestApp) -> Vec<String> {
    app.state.store.keys_under(HELD).await.unwrap()
}

async fn newest(app: &TestApp) -> access_application::Model {
    access_application::Entity::find()
        .order_by_desc(access_application::Column::FiledAt)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn spawn() -> TestApp {
    spawn_app_with(|env| {
        env.insert("PORTAL_APPLICATIONS_PER_HOUR".into(), "100".into());
    })
    .await
}

#[tokio::test]
async fn three_bad_fields_are_marked_at_once_and_listed_in_a_summary_linking_to_each() {
    let app = spawn().await;
    let (_staff, _party, _case_id) = served_case(&app, "2026-表单-31").await;
    let public = app.with_client(client());
    let brigade = brigade_on_form(&public, "110105").await;
    let res = apply(
        &public,
        form(
            &brigade,
            "2026-表单-31",
            &[
                ("credit_code", "91110000710931141K"),
                ("plate", "京A"),
                ("mobile", "12345"),
            ],
            Proof::File("查询授权书.pdf", PDF),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert_eq!(html.matches(r#"aria-invalid="true""#).count(), 3, "{html}");
    for field in ["credit_code", "plate", "mobile"] {
        let tag = input(&html, field);
        assert!(tag.contains(r#"aria-invalid="true""#), "{tag}");
        let described = tag
            .split(r#"aria-describedby=""#)
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("{field} is described: {tag}"));
        assert!(
            described
                .split(' ')
                .any(|id| id == format!("{field}-error")),
            "{tag}"
        );
        assert!(
            html.contains(&format!(r#"id="{field}-error""#)),
            "{field}'s message is next to it"
        );
        assert!(
            html.contains(&format!(r##"href="#{field}""##)),
            "the summary links to {field}"
        );
    }
    // The hint stays described too, next to the error.
    assert!(input(&html, "mobile").contains("mobile-hint"));
    let summary = html
        .split(r#"id="error-summary""#)
        .nth(1)
        .expect("an error summary")
        .split("</div>")
        .next()
        .unwrap();
    assert_eq!(summary.matches("<li>").count(), 3, "{summary}");
    assert!(
        html.find(r#"id="error-summary""#) < html.find("<form"),
        "the summary comes first"
    );
    assert!(html.contains("校验码") && html.contains("京A12345"));
    assert!(!input(&html, "case_number").contains("aria-invalid"));
    assert_eq!(applications(&app).await, 0);
}

#[tokio::test]
async fn a_refused_form_keeps_its_good_proof_and_the_corrected_one_is_filed_with_it() {
    let app = spawn().await;
    let (staff, _party, case_id) = served_case(&app, "2026-保留-1").await;
    let public = app.with_client(client());
    let brigade = brigade_on_form(&public, "110105").await;
    let before = app
        .state
        .store
        .keys_under(&format!("cases/{case_id}"))
        .await
        .unwrap();

    // A wrong plate, a good proof: refused, the proof held, the page says so.
    let res = apply(
        &public,
        form(
            &brigade,
            "2026-保留-1",
            &[("plate", "京A")],
            Proof::File("查询授权书.pdf", PDF),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("已保留上次上传的文件：查询授权书.pdf（可重新选择其他文件）"),
        "{html}"
    );
    let token = hidden(&html, "held_proof").expect("the page carries the held proof");
    assert!(
        !input(&html, "proof").contains(" required"),
        "the browser may send the form without choosing the file again"
    );
    assert_eq!(held(&app).await.len(), 1);
    assert_eq!(applications(&app).await, 0);

    // Refused again without a file (still a wrong plate): still held, the same one.
    let res = apply(
        &public,
        form(
            &brigade,
            "2026-保留-1",
            &[("plate", "京B"), ("held_proof", &token)],
            Proof::NotChosen,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("已保留上次上传的文件：查询授权书.pdf"),
        "{html}"
    );
    let token = hidden(&html, "held_proof").expect("still held");
    assert_eq!(held(&app).await.len(), 1);

    // Another browser cannot use it: the hold belongs to the browser that uploaded it.
    let other = app.with_client(client());
    let res = apply(
        &other,
        form(
            &brigade,
            "2026-保留-1",
            &[("held_proof", &token)],
            Proof::NotChosen,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("请上传签字的授权书或证明材料"), "{html}");
    assert!(!html.contains("查询授权书.pdf"), "{html}");
    assert_eq!(applications(&app).await, 0);

    // Corrected, no file chosen: filed with the held proof.
    let res = apply(
        &public,
        form(
            &brigade,
            "2026-保留-1",
            &[("held_proof", &token)],
            Proof::NotChosen,
        ),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    assert!(header(&res, "location").starts_with("/apply/"));
    let filed = newest(&app).await;
    assert_eq!(filed.proof_sha256, sha256(PDF));
    assert_eq!(filed.proof_size, PDF.len() as i64);
    assert_eq!(filed.proof_name, "查询授权书.pdf");
    assert_eq!(filed.proof_type, "application/pdf");
    assert!(filed.proof_key.starts_with(HELD), "{}", filed.proof_key);
    // The filing references it: gc keeps it, and staff open it.
    let out = crate::cli::run(&["gc", "--delete", "--min-age-minutes", "0"], &app.env, "");
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::stderr(&out));
    assert_eq!(held(&app).await, vec![filed.proof_key.clone()]);
    let proof = staff
        .get(&format!("/staff/applications/{}/proof", filed.id))
        .await;
    assert_eq!(proof.status(), StatusCode::OK);
    assert_eq!(proof.bytes().await.unwrap().as_ref(), PDF);
    assert_eq!(
        app.state
            .store
            .keys_under(&format!("cases/{case_id}"))
            .await
            .unwrap(),
        before,
        "nothing more under the case"
    );

    // The same token again files nothing more: the hold was used.
    let res = apply(
        &public,
        form(
            &brigade,
            "2026-保留-1",
            &[("held_proof", &token), ("confirm_duplicate", "1")],
            Proof::NotChosen,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(applications(&app).await, 1);
}

#[tokio::test]
async fn an_expired_hold_is_not_used_and_gc_lists_and_removes_the_held_proof() {
    let app = spawn().await;
    let (_staff, _party, _case_id) = served_case(&app, "2026-保留-2").await;
    let public = app.with_client(client());
    let brigade = brigade_on_form(&public, "110105").await;
    let res = apply(
        &public,
        form(
            &brigade,
            "2026-保留-2",
            &[("applicant_name", "李")],
            Proof::File("查询授权书.pdf", PDF),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let token = hidden(&res.text().await.unwrap(), "held_proof").expect("held");
    let kept = held(&app).await;
    assert_eq!(kept.len(), 1);

    // Two hours later the hold has lapsed: the file is asked for again, nothing is filed.
    app.state
        .clock
        .set(time::OffsetDateTime::now_utc() + time::Duration::hours(2));
    let res = apply(
        &public,
        form(
            &brigade,
            "2026-保留-2",
            &[("held_proof", &token)],
            Proof::NotChosen,
        ),
    )
    .await;
    app.state.clock.set(time::OffsetDateTime::now_utc());
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("已超过保留时间"), "{html}");
    assert!(hidden(&html, "held_proof").is_none(), "{html}");
    assert!(input(&html, "proof").contains(r#"aria-invalid="true""#));
    assert_eq!(applications(&app).await, 0);

    // Young, gc's default leaves it; past its age, gc names it held and removes it.
    let out = crate::cli::run(&["gc"], &app.env, "");
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::stderr(&out));
    assert!(!crate::cli::stdout(&out).contains(&kept[0]));
    let out = crate::cli::run(&["gc", "--min-age-minutes", "0"], &app.env, "");
    let listed = crate::cli::stdout(&out);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("held") && l.contains(&kept[0])),
        "{listed}"
    );
    assert!(listed.contains("1 of them held"), "{listed}");
    assert_eq!(held(&app).await, kept, "a dry run removes nothing");
    let out = crate::cli::run(&["gc", "--delete", "--min-age-minutes", "0"], &app.env, "");
    assert_eq!(out.status.code(), Some(0), "{}", crate::cli::stderr(&out));
    assert!(held(&app).await.is_empty());
}

#[tokio::test]
async fn a_duplicate_is_warned_about_and_filed_only_when_confirmed() {
    let app = spawn().await;
    let (_staff, _party, _case_id) = served_case(&app, "2026-重复-1").await;
    insurer_applies(&app, "110105", "2026-重复-1").await;
    let receipt = newest(&app).await.receipt_no;

    // The same person (same case, plate, name and mobile) from another browser: warned.
    let again = app.with_client(client());
    let brigade = brigade_on_form(&again, "110105").await;
    let res = apply(
        &again,
        form(
            &brigade,
            "2026-重复-1",
            &[],
            Proof::File("查询授权书.pdf", PDF),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("您已于")
            && html.contains(&format!("提交过相同的申请（受理编号 {receipt}）")),
        "{html}"
    );
    assert!(html.contains("请勿重复提交；如确需再次提交，请勾选确认"));
    assert!(html.contains(r#"name="confirm_duplicate""#));
    let token = hidden(&html, "held_proof").expect("the proof is kept meanwhile");
    assert_eq!(applications(&app).await, 1);

    // Someone else giving the same name and plate but another mobile learns nothing of it.
    let stranger = app.with_client(client());
    let res = apply(
        &stranger,
        form(
            &brigade,
            "2026-重复-1",
            &[("mobile", "13900002222")],
            Proof::File("查询授权书.pdf", PDF),
        ),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    assert_eq!(applications(&app).await, 2);

    // Sent again without ticking the box: still only warned.
    let res = apply(
        &again,
        form(
            &brigade,
            "2026-重复-1",
            &[("held_proof", &token)],
            Proof::NotChosen,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains(&receipt));
    let token = hidden(&html, "held_proof").expect("still held");
    assert_eq!(applications(&app).await, 2);

    // Confirmed, with a new file chosen: filed, with the new file (it replaces the held one).
    let res = apply(
        &again,
        form(
            &brigade,
            "2026-重复-1",
            &[("held_proof", &token), ("confirm_duplicate", "1")],
            Proof::File("授权书.png", PNG),
        ),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    assert_eq!(applications(&app).await, 3);
    let filed = newest(&app).await;
    assert_eq!(filed.proof_sha256, sha256(PNG));
    assert_eq!(filed.proof_name, "授权书.png");
    let out = crate::cli::run(&["gc", "--min-age-minutes", "0"], &app.env, "");
    assert!(
        crate::cli::stdout(&out).contains("0 orphan object(s)"),
        "the replaced proof went at once: {}",
        crate::cli::stdout(&out)
    );
}

#[tokio::test]
async fn a_held_proof_is_discarded_when_the_cases_day_is_full() {
    let app = spawn().await;
    let (_staff, _party, _case_id) = served_case(&app, "2026-保留-3").await;
    for i in 0..10 {
        applies(
            &app,
            "insurer",
            &format!("1390000{i:04}"),
            "110105",
            "2026-保留-3",
        )
        .await;
    }
    let public = app.with_client(client());
    let brigade = brigade_on_form(&public, "110105").await;
    let res = apply(
        &public,
        form(
            &brigade,
            "2026-保留-3",
            &[("plate", "京A")],
            Proof::File("查询授权书.pdf", PDF),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let token = hidden(&res.text().await.unwrap(), "held_proof").expect("held");
    assert_eq!(held(&app).await.len(), 1);
    let res = apply(
        &public,
        form(
            &brigade,
            "2026-保留-3",
            &[("held_proof", &token)],
            Proof::NotChosen,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(held(&app).await.is_empty(), "nothing is kept");
    assert_eq!(applications(&app).await, 10);
}
