//! Every step tells people where they stand: after an action the next page says what happened,
//! once, in the page's language, and the person lands back where they were.

use reqwest::StatusCode;

use crate::auth::{PASSWORD, activate, sign_in};
use crate::cases::{open_case, registered, set_status, staff_of};
use crate::helpers::{TestApp, assert_status, client, header, spawn_app};
use crate::materials::{PDF, decide, upload};

/// The one-shot message of a page, if it shows one.
fn flash_of(html: &str) -> Option<String> {
    let start = html.find(r#"<p class="flash" role="status">"#)? + 31;
    Some(html[start..].split("</p>").next()?.to_owned())
}

/// Follows a `303` on the same browser and returns the page it leads to.
async fn follow(app: &TestApp, res: reqwest::Response) -> String {
    assert_status(&res, StatusCode::SEE_OTHER);
    let location = header(&res, "location").to_owned();
    app.get(&location).await.text().await.unwrap()
}

#[tokio::test]
async fn a_staff_action_is_confirmed_once_where_the_officer_was() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-500", true).await;
    let res = upload(
        &staff,
        &case_id,
        "scene_diagram",
        "现场图 <1>",
        "a.pdf",
        PDF,
    )
    .await;
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let res = decide(&staff, &case_id, &id, "release", &[]).await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_eq!(
        header(&res, "location"),
        format!("/staff/cases/{case_id}#materials"),
        "back at the materials, not at the top of the page"
    );
    let page = follow(&staff, res).await;
    assert_eq!(
        flash_of(&page).as_deref(),
        Some("已公开：现场图 &#60;1&#62;。当事人及其代理人现在可以查看。"),
        "named, escaped, announced"
    );
    let again = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(flash_of(&again), None, "shown once");

    // The status moves say what they start, in English too.
    let res = set_status(
        &staff,
        &case_id,
        &[
            ("to", "served"),
            ("service_kind", "determination"),
            ("served_on", "2026-11-02"),
        ],
    )
    .await;
    assert_eq!(
        header(&res, "location"),
        format!("/staff/cases/{case_id}#status")
    );
    let location = header(&res, "location").to_owned();
    let page = staff
        .client
        .get(format!("{}{location}", staff.address))
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        flash_of(&page).as_deref(),
        Some(
            "Service recorded. A review may be applied for until 5 Nov 2026; the parties can now download released material."
        )
    );
}

#[tokio::test]
async fn signing_out_and_an_expired_session_are_said_on_the_next_page() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-501", true).await;
    let code = registered(&staff, &case_id, "甲", "110101199003070011", "张伟").await;
    let party = app.with_client(client());
    let res = activate(&party, "110101199003070011", &code, PASSWORD).await;
    assert_eq!(
        flash_of(&follow(&party, res).await).as_deref(),
        Some("账户已激活，欢迎使用。")
    );

    let csrf = party.csrf_from("/account").await;
    let res = party.post_form("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(
        flash_of(&follow(&party, res).await).as_deref(),
        Some("您已安全退出。")
    );
    // Signed out: a page asks for a sign-in without calling anything expired.
    let res = party.get("/cases").await;
    assert_eq!(flash_of(&follow(&party, res).await), None);

    // A session that ended elsewhere (here: a cookie that opens nothing any more).
    assert_status(
        &sign_in(&party, "110101199003070011", PASSWORD).await,
        StatusCode::SEE_OTHER,
    );
    let stale = app.with_client(client());
    let res = stale
        .client
        .get(format!("{}/cases", stale.address))
        .header("Cookie", "portal-session=not-a-session-any-more")
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::SEE_OTHER);
    assert!(header(&res, "location").starts_with("/login?next="));
    let flash = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("portal-flash="))
        .expect("the sign-in page is told why");
    let login = stale
        .client
        .get(format!("{}/login", stale.address))
        .header("Cookie", flash.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    let cleared = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("portal-flash=;"));
    assert!(cleared, "the page that showed it clears it");
    assert_eq!(
        flash_of(&login.text().await.unwrap()).as_deref(),
        Some("登录已过期，请重新登录。")
    );
    // API clients get the code, not a page.
    let res = stale
        .client
        .get(format!("{}/api/whoami", stale.address))
        .header("Cookie", "portal-session=not-a-session-any-more")
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "session_expired");
}

#[tokio::test]
async fn a_forged_message_cookie_shows_nothing() {
    let app = spawn_app().await;
    for forged in [
        "k=error.not_found.title",
        "k=flash.nothing_like_this",
        "k=%3Cscript%3E&title=x",
    ] {
        let page = app
            .client
            .get(format!("{}/", app.address))
            .header("Cookie", format!("portal-flash={forged}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(flash_of(&page), None, "{forged}");
    }
}

/// Recording service starts the review clock and cannot be undone: the officer is first told
/// so, in plain words, on a page that posts the same form again; nothing changes until then.
/// A move that breaks a rule is refused at once, without asking.
#[tokio::test]
async fn an_irreversible_move_is_confirmed_first_and_a_wrong_one_is_refused_at_once() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-502", false).await;
    let page = format!("/staff/cases/{case_id}");
    let csrf = staff.csrf_from(&page).await;
    let served = [
        ("csrf_token", csrf.as_str()),
        ("to", "served"),
        ("service_kind", "certificate"),
        ("served_on", "2026-11-02"),
    ];
    let res = staff.post_form(&format!("{page}/status"), &served).await;
    assert_status(&res, StatusCode::OK);
    let asked = res.text().await.unwrap();
    assert!(
        asked.contains("将记录事故证明已于 2026-11-02 送达当事人")
            && asked.contains("至 2026-11-05 止"),
        "{asked}"
    );
    for field in [
        r#"name="to" value="served""#,
        r#"name="service_kind" value="certificate""#,
        r#"name="served_on" value="2026-11-02""#,
        r#"name="confirmed" value="yes""#,
    ] {
        assert!(asked.contains(field), "{field}");
    }
    let status = |html: String| html.contains(r#"<dd id="case-status">调查中</dd>"#);
    assert!(
        status(staff.get(&page).await.text().await.unwrap()),
        "nothing changed yet"
    );
    let mut confirmed = served.to_vec();
    confirmed.push(("confirmed", "yes"));
    let res = staff.post_form(&format!("{page}/status"), &confirmed).await;
    assert_eq!(header(&res, "location"), format!("{page}#status"));

    // Disclosure is for fatal or complex cases only: refused, not asked.
    let other = open_case(&staff, "2026-503", false).await;
    let csrf = staff.csrf_from(&format!("/staff/cases/{other}")).await;
    let res = staff
        .post_form(
            &format!("/staff/cases/{other}/status"),
            &[("csrf_token", csrf.as_str()), ("to", "disclosing")],
        )
        .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("第六十三条"));
}

/// Reloading the printed notice neither registers the party again nor shows the access code
/// again (it was shown once, and the page says how to get a new one); the sealed code opens on
/// its own notice only.
#[tokio::test]
async fn the_notice_survives_a_reload_without_a_second_registration_or_a_second_look_at_the_code() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-504", true).await;
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
                ("identifier", "110101199003070011"),
                ("mobile", ""),
                ("role", "driver"),
            ],
        )
        .await;
    assert_status(&res, StatusCode::SEE_OTHER);
    let notice = header(&res, "location").to_owned();
    assert!(notice.starts_with(&format!("{page}/parties/")) && notice.ends_with("/notice"));
    let sealed = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("portal-once="))
        .expect("the code travels sealed");
    assert!(
        sealed.contains(&format!("Path={notice}")) && sealed.contains("HttpOnly"),
        "{sealed}"
    );

    let first = staff.get(&notice).await.text().await.unwrap();
    let code = crate::cases::code_on(&first).expect("shown the first time");
    assert!(!sealed.contains(&code), "sealed, not in clear");
    assert_eq!(
        flash_of(&first).as_deref(),
        Some("已登记当事人甲。请打印下方通知交给本人：访问码只显示这一次。"),
        "the registration is said on the notice"
    );
    let reloaded = staff.get(&notice).await.text().await.unwrap();
    assert_eq!(crate::cases::code_on(&reloaded), None, "shown once");
    assert_eq!(flash_of(&reloaded), None, "said once");
    assert!(reloaded.contains("访问码只在告知书第一次打开时显示"));
    let parties =
        evidence_portal::cases::parties(&app.state.db, case_id.parse::<uuid::Uuid>().unwrap())
            .await
            .unwrap();
    assert_eq!(parties.len(), 1);

    // The sealed cookie replayed on another path opens nothing.
    let value = sealed.split(';').next().unwrap().to_owned();
    let other = staff
        .client
        .get(format!("{}{page}", staff.address))
        .header("Cookie", value)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!other.contains(&code));
}

/// A refused registration comes back as it was typed, the field at fault marked for assistive
/// technology, the reason beside the form, and the page at that form.
#[tokio::test]
async fn a_refused_registration_keeps_what_was_typed_and_marks_the_field_at_fault() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-505", true).await;
    let page = format!("/staff/cases/{case_id}");
    let html = staff.get(&page).await.text().await.unwrap();
    assert!(html.contains(&format!(r#"action="{page}/parties#parties""#)));
    let csrf = crate::helpers::csrf_in(&html);
    let register = |label: &'static str, mobile: &'static str| {
        let staff = &staff;
        let csrf = csrf.clone();
        let path = format!("{page}/parties");
        async move {
            staff
                .post_form(
                    &path,
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("label", label),
                        ("name", "张伟"),
                        ("id_kind", "citizen_id"),
                        ("identifier", "110101199003070011"),
                        ("mobile", mobile),
                        ("role", "passenger"),
                    ],
                )
                .await
        }
    };
    let res = register("甲", "1380013").await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let refused = res.text().await.unwrap();
    for kept in [
        r#"id="p-label" name="label""#,
        r#"value="张伟""#,
        r#"value="110101199003070011""#,
        r#"value="1380013" aria-invalid="true" aria-describedby="party-error""#,
        r#"<option value="passenger" selected>"#,
        r#"<p id="party-error" class="alert field-error" role="alert">"#,
    ] {
        assert!(refused.contains(kept), "{kept}");
    }
    assert_eq!(refused.matches(r#"aria-invalid="true""#).count(), 1);

    // A rule of the domain names its field too: a label already taken.
    assert_status(&register("甲", "").await, StatusCode::SEE_OTHER);
    let res = register("甲", "").await;
    let refused = res.text().await.unwrap();
    assert!(
        refused.contains(r#"value="甲" aria-invalid="true""#),
        "the label is at fault"
    );
    assert!(refused.contains("本案已有当事人甲"));
}

/// The access code is long to type: a refused activation keeps it (and the identifier), and
/// marks the password that was refused. The case form marks its field at fault too.
#[tokio::test]
async fn refused_activation_and_case_forms_keep_what_was_typed() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-506", true).await;
    let code = registered(&staff, &case_id, "甲", "110101199003070011", "张伟").await;
    let party = app.with_client(client());
    let csrf = party.csrf_from("/activate").await;
    let res = party
        .post_form(
            "/activate",
            &[
                ("csrf_token", csrf.as_str()),
                ("identifier", "110101199003070011"),
                ("code", &code),
                ("password", PASSWORD),
                ("password_repeat", "something else"),
            ],
        )
        .await;
    assert_status(&res, StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains(&format!(r#"id="code" name="code" value="{code}""#)));
    assert!(page.contains(r#"value="110101199003070011""#));
    assert!(page.contains(r#"id="password-error""#));

    let csrf = staff.csrf_from("/staff/cases/new").await;
    let res = staff
        .post_form(
            "/staff/cases",
            &[
                ("csrf_token", csrf.as_str()),
                ("case_number", "2026-506"),
                ("occurred_at", "2026-11-20T08:00"),
                ("place", "朝阳路与建国路交叉口"),
                ("summary", "两车相撞"),
            ],
        )
        .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert!(page.contains(
        r#"id="case_number" name="case_number" aria-invalid="true" aria-describedby="form-error" value="2026-506""#
    ), "{page}");
    assert!(page.contains(r#"value="朝阳路与建国路交叉口""#));
    assert_eq!(page.matches(r#"aria-invalid="true""#).count(), 1);
}

/// A party at their own case before it opens, or downloading in the view-only stage, is told
/// why, what happens next and whom to ask — with their header still there, not a bare 403.
/// Their case list does not offer material of a case that is not open.
#[tokio::test]
async fn a_refusal_in_the_course_of_a_case_explains_itself() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-507", true).await;
    let code = registered(&staff, &case_id, "甲", "110101199003070011", "张伟").await;
    let party = app.with_client(client());
    activate(&party, "110101199003070011", &code, PASSWORD).await;

    let mine = party.get("/cases").await.text().await.unwrap();
    assert!(mine.contains("本案尚在调查"));
    assert!(
        !mine.contains("released-count"),
        "no count of a case not open"
    );

    let res = party.get(&format!("/cases/{case_id}")).await;
    assert_status(&res, StatusCode::FORBIDDEN);
    let page = res.text().await.unwrap();
    assert!(page.contains("案件尚在调查中，材料暂未开放"), "{page}");
    assert!(page.contains("110105大队"), "whom to ask");
    assert!(page.contains(r#"action="/logout""#), "still signed in");
    assert!(!page.contains("您没有执行此操作的权限"));

    set_status(&staff, &case_id, &[("to", "disclosing")]).await;
    let res = party.get(&format!("/cases/{case_id}/bundle.zip")).await;
    assert_status(&res, StatusCode::FORBIDDEN);
    let page = res.text().await.unwrap();
    assert!(page.contains("现在只能查看，还不能下载"), "{page}");

    // API clients get the stable code.
    let res = party
        .get_json(&format!("/cases/{case_id}/bundle.zip"))
        .await;
    assert_status(&res, StatusCode::FORBIDDEN);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
}

/// What the party needs next: the brigade's address, telephone and office hours (kept by an
/// administrator, audited), the officer, and the review window counted down day by day, with
/// how to apply; the printed notice carries the same contacts and a QR code of the activation
/// page, drawn by the server.
#[tokio::test]
async fn the_party_sees_whom_to_ask_and_how_long_a_review_is_open() {
    let app = spawn_app().await;
    let (staff, party, case_id) = crate::cases::served_case(&app, "2026-508").await;
    let admin = crate::auth::admin(&app).await;
    let html = admin.get("/admin").await.text().await.unwrap();
    let brigade = html
        .split(r#"action="/admin/departments/"#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a brigade's contact form")
        .to_owned();
    let res = admin
        .post_form(
            &format!("/admin/departments/{brigade}"),
            &[
                ("csrf_token", crate::helpers::csrf_in(&html).as_str()),
                ("address", "北京市朝阳区建国路 88 号"),
                ("phone", "010-6500 1234"),
                ("office_hours", "工作日 9:00–17:00"),
            ],
        )
        .await;
    assert_eq!(
        flash_of(&follow(&admin, res).await).as_deref(),
        Some("已保存110105大队的联系方式。")
    );
    assert_eq!(
        crate::auth::events(&app, "department.update").await.len(),
        1
    );

    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    for shown in [
        "北京市朝阳区建国路 88 号",
        r#"<a href="tel:010-6500 1234">"#,
        "工作日 9:00–17:00",
        "办案民警",
        "还剩 3 天",
        "上一级公安机关交通管理部门",
    ] {
        assert!(page.contains(shown), "{shown}");
    }
    // Two days later the count says so; after the deadline, that it has passed.
    let now = time::OffsetDateTime::now_utc();
    app.state.clock.set(now + time::Duration::days(3));
    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("是申请复核的最后一天"));
    app.state.clock.set(now + time::Duration::days(4));
    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("复核申请期限已于"));
    app.state.clock.set(time::OffsetDateTime::now_utc());

    let html = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let party_id = html
        .split("/parties/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_owned();
    let notice = staff
        .get(&format!("/staff/cases/{case_id}/parties/{party_id}/notice"))
        .await
        .text()
        .await
        .unwrap();
    assert!(notice.contains("010-6500 1234"));
    assert!(notice.contains(r#"<svg role="img" aria-label="激活页面二维码："#));
    assert!(!notice.contains("<?xml"));
}

/// Small things that make people guess: every signed-in person reaches their account from the
/// header; the landing page leads a signed-in person on instead of offering a sign-in; "download
/// selected" with nothing ticked says so; a delegation shows its last day, not the instant after.
#[tokio::test]
async fn account_and_navigation_say_what_they_mean() {
    let app = spawn_app().await;
    let (staff, party, case_id) = crate::cases::served_case(&app, "2026-509").await;
    let mine = party.get("/cases").await.text().await.unwrap();
    assert!(mine.contains(r#"<a href="/account">我的账户</a>"#));
    let landing = party.get("/").await.text().await.unwrap();
    assert!(landing.contains("进入我的页面") && !landing.contains(r#"href="/activate""#));
    let anonymous = app.with_client(client());
    let landing = anonymous.get("/").await.text().await.unwrap();
    assert!(landing.contains(r#"href="/activate""#));

    let res = party
        .get(&format!("/cases/{case_id}/bundle.zip?selected=1"))
        .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("请先勾选要下载的材料"));

    let party_id = staff
        .get(&format!("/staff/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap()
        .split("/parties/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_owned();
    let until = crate::cases::in_a_month();
    let res = crate::cases::grant(
        &staff,
        &case_id,
        &party_id,
        &until,
        Some(("授权委托书.pdf", crate::materials::PDF)),
    )
    .await;
    let notice = res.text().await.unwrap();
    assert!(notice.contains(&format!("至 {until}")), "{notice}");
}

/// Pages travel compressed; evidence never does (its bytes, lengths and ranges are the stored
/// ones); a page's CSRF token is masked afresh on every answer (BREACH) and still accepted.
#[tokio::test]
async fn pages_are_compressed_evidence_is_not_and_tokens_are_masked_per_page() {
    let app = spawn_app().await;
    let (_, party, case_id) = crate::cases::served_case(&app, "2026-510").await;
    let page = format!("{}/cases/{case_id}", party.address);
    let res = party
        .client
        .get(&page)
        .header("Accept-Encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::OK);
    assert_eq!(header(&res, "content-encoding"), "br");

    let first = party.get("/account").await.text().await.unwrap();
    let second = party.get("/account").await.text().await.unwrap();
    let (a, b) = (
        crate::helpers::csrf_in(&first),
        crate::helpers::csrf_in(&second),
    );
    assert_ne!(a, b, "masked afresh for each page");
    // Either page's token works.
    for token in [a, b] {
        let res = party
            .post_form(
                "/account/password",
                &[
                    ("csrf_token", token.as_str()),
                    ("current", "wrong"),
                    ("new", "x"),
                    ("repeat", "x"),
                ],
            )
            .await;
        assert_ne!(res.status(), StatusCode::FORBIDDEN, "the form was accepted");
    }
}

/// The access history stands out where it matters: others' accesses first, the person's own
/// folded away and called theirs, a refused attempt with its reason, and in English "Party A".
#[tokio::test]
async fn the_access_history_shows_others_first_and_explains_refusals() {
    let app = spawn_app().await;
    let (staff, party, case_id) = crate::cases::served_case(&app, "2026-511").await;
    let res = upload(&staff, &case_id, "survey_record", "勘查笔录", "a.pdf", PDF).await;
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decide(&staff, &case_id, &id, "release", &[]).await;
    // The officer views it; the party views it twice.
    staff
        .get(&format!("/cases/{case_id}/materials/{id}/view"))
        .await;
    for _ in 0..2 {
        party
            .get(&format!("/cases/{case_id}/materials/{id}/view"))
            .await;
    }
    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let history = page.split(r#"id="access-history""#).nth(1).unwrap();
    let others = history.find("他人查阅").expect("others' accesses");
    let own = history.find("您本人的查阅").expect("own accesses, folded");
    assert!(others < own, "others first");
    assert!(history[others..own].contains("民警 "), "{history}");
    assert!(!history[others..own].contains("您本人"));
    assert!(!history.contains("<table"), "no sideways-scrolling table");

    let english = party
        .client
        .get(format!("{}/cases/{case_id}", party.address))
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        english.contains("<summary>Your own accesses ("),
        "{english}"
    );
}

/// One way to view: the title and "查看" both open the viewer page (with its watermark and the
/// way back); the raw bytes are for the viewer's own frame and the download button.
#[tokio::test]
async fn every_view_link_opens_the_viewer() {
    let app = spawn_app().await;
    let (staff, party, case_id) = crate::cases::served_case(&app, "2026-512").await;
    let res = upload(&staff, &case_id, "survey_record", "勘查笔录", "a.pdf", PDF).await;
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decide(&staff, &case_id, &id, "release", &[]).await;
    let viewer = format!("/cases/{case_id}/materials/{id}");
    for (who, page) in [
        (&party, format!("/cases/{case_id}")),
        (&staff, format!("/staff/cases/{case_id}")),
    ] {
        let html = who.get(&page).await.text().await.unwrap();
        assert!(html.contains(&format!(r#"href="{viewer}""#)), "{page}");
        assert!(
            !html.contains(&format!(r#"<a href="{viewer}/view""#)),
            "{page}: no link to the raw bytes"
        );
    }
    let html = party.get(&viewer).await.text().await.unwrap();
    assert!(
        html.contains(&format!(r#"href="/cases/{case_id}""#)),
        "the way back"
    );
}

/// An officer lands on what needs doing: drafts to decide, parties still to activate (and
/// whose codes run out), cases in their review window — counted, each linking to its place.
#[tokio::test]
async fn staff_land_on_their_work_queue() {
    let app = spawn_app().await;
    let (staff, _party, served) = crate::cases::served_case(&app, "2026-513").await;
    let open = open_case(&staff, "2026-514", true).await;
    registered(&staff, &open, "乙", "440304198511223338", "李娜").await;
    for title in ["现场图", "勘查笔录"] {
        upload(&staff, &open, "scene_diagram", title, "a.pdf", PDF).await;
    }
    let res = sign_in(&app.with_client(client()), "wang.li", PASSWORD).await;
    assert_eq!(
        header(&res, "location"),
        "/staff",
        "officers land on the queue"
    );
    let queue = staff.get("/staff").await.text().await.unwrap();
    for shown in [
        "待决定公开与否的材料（2 份）",
        &format!(r#"href="/staff/cases/{open}#materials">2026-514</a> · 2 份"#),
        "尚未激活账户的当事人（1 人）",
        &format!(r#"href="/staff/cases/{open}#parties">2026-514</a> · 李娜（当事人乙） · 访问码"#),
        "复核申请期内的案件（1 件）",
        &format!(r#"href="/staff/cases/{served}#status">2026-513</a> · 复核申请期至"#),
    ] {
        assert!(queue.contains(shown), "{shown}\n{queue}");
    }
}

/// A refusal written by the domain reads in the page's language: no "Details in Chinese".
#[tokio::test]
async fn a_domain_refusal_reads_in_english_on_an_english_page() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-515", false).await;
    let page = format!("/staff/cases/{case_id}");
    let csrf = staff.csrf_from(&page).await;
    let res = staff
        .client
        .post(format!("{}{page}/status", staff.address))
        .header("Accept-Language", "en")
        .form(&[("csrf_token", csrf.as_str()), ("to", "disclosing")])
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Only fatal, or complex injury, cases may disclose evidence before the determination (Art. 63)"),
        "{html}"
    );
    assert!(!html.contains("第六十三条"));
    // And a bad request answered by the error page, too.
    let res = staff
        .client
        .get(format!(
            "{}/cases/{case_id}/bundle.zip?material=nope",
            staff.address
        ))
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains("“nope” is not a material number"), "{html}");
    assert!(!html.contains("Details in Chinese"));
}

/// Several drafts released at once, each audited on its own; the officer is told how many.
#[tokio::test]
async fn staff_release_several_drafts_at_once() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-516", true).await;
    let mut ids = Vec::new();
    for title in ["现场图", "勘查笔录", "鉴定意见"] {
        let res = upload(&staff, &case_id, "scene_diagram", title, "a.pdf", PDF).await;
        ids.push(
            res.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let page = format!("/staff/cases/{case_id}");
    let html = staff.get(&page).await.text().await.unwrap();
    assert!(html.contains(r#"form="bulk-release""#));
    let csrf = crate::helpers::csrf_in(&html);
    let res = staff
        .post_form(
            &format!("{page}/release"),
            &[
                ("csrf_token", csrf.as_str()),
                ("material", &ids[0]),
                ("material", &ids[1]),
            ],
        )
        .await;
    assert_eq!(header(&res, "location"), format!("{page}#materials"));
    let shown = follow(&staff, res).await;
    assert_eq!(
        flash_of(&shown).as_deref(),
        Some("已公开 2 份材料。当事人及其代理人现在可以查看。")
    );
    assert_eq!(crate::auth::events(&app, "material.release").await.len(), 2);
    // Again, with one already out: said.
    let res = staff
        .post_form(
            &format!("{page}/release"),
            &[
                ("csrf_token", csrf.as_str()),
                ("material", &ids[1]),
                ("material", &ids[2]),
            ],
        )
        .await;
    assert!(
        flash_of(&follow(&staff, res).await)
            .unwrap()
            .contains("1 份未公开")
    );
    // Nothing ticked: said, nothing done.
    let res = staff
        .post_form(&format!("{page}/release"), &[("csrf_token", csrf.as_str())])
        .await;
    assert_status(&res, StatusCode::BAD_REQUEST);
}

/// The case list sorts by number, by accident time either way, and by status, keeping the
/// filters; the column that sorts says so (aria-sort).
#[tokio::test]
async fn the_case_list_sorts() {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    for number in ["B-2", "A-1", "C-3"] {
        open_case(&staff, number, false).await;
    }
    let order = |html: &str| {
        let mut at: Vec<(usize, &str)> = ["A-1", "B-2", "C-3"]
            .into_iter()
            .filter_map(|n| html.find(&format!(">{n}<")).map(|i| (i, n)))
            .collect();
        at.sort();
        at.into_iter().map(|(_, n)| n).collect::<Vec<_>>()
    };
    let html = staff
        .get("/staff/cases?sort=number")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(order(&html), ["A-1", "B-2", "C-3"]);
    assert!(
        html.contains(r#"aria-sort="ascending"><a href="/staff/cases?number="#),
        "{html}"
    );
    let html = staff.get("/staff/cases").await.text().await.unwrap();
    assert!(
        html.contains(r#"aria-sort="descending""#),
        "newest accident first by default"
    );
}
