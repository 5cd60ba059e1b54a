//! Regression tests for the black-box security review (issue 15), each through the running
//! server: account authority that follows case scope, safe redirects, an activation form that
//! tells nothing, throttles that hold under parallel attempts, and the smaller holes.

use reqwest::StatusCode;

use crate::auth::{PASSWORD, activate, admin, events, sign_in};
use crate::cases::{code_on, open_case, party_id_on, register, registered, staff_of};
use crate::helpers::{TestApp, assert_status, client, spawn_app};

const PARTY: &str = "110101199003070011";

/// Posts the reset form of the first party on `case`.
async fn reset_first_party(staff: &TestApp, case: &str, confirm: bool) -> reqwest::Response {
    let party_id = party_id_on(staff, case).await;
    let csrf = staff.csrf_from(&format!("/staff/cases/{case}")).await;
    let mut fields = vec![("csrf_token", csrf.as_str()), ("reason", "遗失密码")];
    if confirm {
        fields.push(("confirm", "yes"));
    }
    staff
        .post_form(
            &format!("/staff/cases/{case}/parties/{party_id}/reset"),
            &fields,
        )
        .await
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
    let party_id = party_id_on(&staff_b, &case_b).await;
    let csrf = staff_b.csrf_from(&format!("/staff/cases/{case_b}")).await;
    let res = staff_b
        .post_form(
            &format!("/staff/cases/{case_b}/parties/{party_id}/code"),
            &[("csrf_token", &csrf)],
        )
        .await;
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
    assert_status(&res, StatusCode::OK);
    let new_code = code_on(&res.text().await.unwrap()).unwrap();
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
    let party_id = party_id_on(&staff_b, &case_b).await;
    let csrf = staff_b.csrf_from(&format!("/staff/cases/{case_b}")).await;
    let res = staff_b
        .post_form(
            &format!("/staff/cases/{case_b}/parties/{party_id}/code"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert!(code_on(&res.text().await.unwrap()).is_none());
    let party = app.with_client(client());
    assert_status(
        &activate(&party, PARTY, &code, PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
}
