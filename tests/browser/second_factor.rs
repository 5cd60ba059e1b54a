//! A new officer's second factor in the browser: sent to enrol at the first sign-in, the QR code
//! and key, the recovery codes shown once, then signing in with the app's code, with a recovery
//! code, and — in English — the challenge page.

use evidence_portal::accounts::{self, NewAccount};
use evidence_portal::audit::Actor;
use evidence_portal::auth::identifier::Identifier;

use crate::driver::{Browser, browser_available};
use crate::ensure;
use crate::helpers::spawn_app;
use crate::setup::PASSWORD;

#[tokio::test]
async fn a_new_officer_enrols_an_app_and_signs_in_with_it_and_with_a_recovery_code() {
    if !browser_available("second-factor") {
        return;
    }
    let app = spawn_app().await;
    let dep = accounts::create_department(
        &app.state.db,
        &app.state.audit,
        Actor::SYSTEM,
        "110105",
        "朝阳交警大队",
    )
    .await
    .unwrap();
    let (_, issued) = accounts::create(
        &app.state.db,
        &app.state.key,
        &app.state.audit,
        Actor::SYSTEM,
        NewAccount {
            role: evidence_portal::vocab::Role::Staff,
            identifier: Identifier::Username("li.na".into()),
            display_name: "民警李娜".into(),
            department_id: Some(dep.id),
        },
    )
    .await
    .unwrap();
    let b = Browser::open("second-factor", &app.address).await.unwrap();

    b.step("01-sent-to-enrol", async {
        b.goto("/activate").await?;
        b.fill("#identifier", "li.na").await?;
        b.fill("#code", &issued.code).await?;
        b.fill("#password", PASSWORD).await?;
        b.fill("#password_repeat", PASSWORD).await?;
        b.click_and_load(r#"form[action="/activate"] button[type="submit"]"#)
            .await?;
        b.wait_for_path("/account/second-factor").await?;
        b.find("#no-factor").await?;
        Ok(())
    })
    .await;

    let secret = b
        .step("02-scan-the-code", async {
            b.click_and_load("#add-totp").await?;
            b.find("#enrol-totp svg").await?;
            let key = b.text("#totp-secret").await?.replace(' ', "");
            let secret = totp_rs::Secret::try_from_base32(&key)
                .map_err(|e| format!("{e:?}"))?
                .as_bytes()
                .to_vec();
            Ok(secret)
        })
        .await;

    let recovery = b
        .step("03-recovery-codes", async {
            let now = time::OffsetDateTime::now_utc();
            let code = evidence_portal::auth::second_factor::code_at(&secret, now)
                .ok_or("a code")?;
            b.fill("#factor-name", "工作手机").await?;
            b.fill("#totp-code", &code).await?;
            b.click_and_load(r#"form[action="/account/second-factor/totp/confirm"] button[type="submit"]"#)
                .await?;
            crate::helpers::enrolled_elsewhere(&app.address, "li.na", &secret, now.unix_timestamp() / 30);
            let codes = b
                .js(
                    "return [...document.querySelectorAll('#recovery-codes code')].map(c => c.textContent);",
                    vec![],
                )
                .await?;
            let codes: Vec<String> = serde_json::from_value(codes)?;
            ensure!(codes.len() == 10, "ten recovery codes: {codes:?}");
            Ok(codes)
        })
        .await;

    b.step("04-at-work", async {
        b.goto("/staff").await?;
        let title = b.text("h1").await?;
        ensure!(title == "待办事项", "the queue opens: {title}");
        Ok(())
    })
    .await;

    b.step("05-challenge-with-the-app", async {
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.sign_in("li.na", PASSWORD, "/staff").await
    })
    .await;

    b.step("06-recovery-code", async {
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.password_then_second_factor("li.na", PASSWORD).await?;
        b.fill("#code", &recovery[0]).await?;
        b.click_and_load(r#"form[action="/login/second-factor"] button[type="submit"]"#)
            .await?;
        b.wait_for_path("/staff").await?;
        let flash = b.text(".flash").await?;
        ensure!(
            flash.contains("还剩 9 个"),
            "told how many are left: {flash}"
        );
        Ok(())
    })
    .await;

    b.step("07-challenge-in-english", async {
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.goto("/language?to=en&next=/login").await?;
        b.fill("#identifier", "li.na").await?;
        b.fill("#password", PASSWORD).await?;
        b.click_and_load(r#"form[action="/login"] button[type="submit"]"#)
            .await?;
        b.wait_for_path("/login/second-factor").await?;
        let title = b.text("h1").await?;
        ensure!(title == "Second factor", "{title}");
        // A password alone opens nothing.
        b.goto("/staff").await?;
        b.wait_for_path("/login/second-factor").await
    })
    .await;

    b.close().await;
}

#[tokio::test]
async fn an_officer_registers_a_passkey_signs_in_with_it_and_is_refused_with_another() {
    if !browser_available("passkey") {
        return;
    }
    // Passkeys need a domain name: the portal is reached as localhost (any port).
    let app = crate::helpers::spawn_app_with(|env| {
        env.insert("PORTAL_PUBLIC_URL".into(), "http://localhost:8080/".into());
    })
    .await;
    let base = app.address.replace("127.0.0.1", "localhost");
    let _office = crate::setup::staff(&app, "wang.li").await;
    // The app the set-up enrolled, for the browser's sign-ins at this address.
    crate::helpers::enrolled_also_at(&app.address, &base, "wang.li");
    let b = Browser::open("passkey", &base).await.unwrap();
    let authenticator = b.add_virtual_authenticator().await.unwrap();

    b.step("01-add-a-passkey", async {
        b.sign_in("wang.li", PASSWORD, "/staff").await?;
        b.goto("/account/second-factor").await?;
        b.fill("#passkey-name", "办公电脑").await?;
        b.click("#add-passkey").await?;
        b.wait_js(
            "the passkey is listed",
            "return document.querySelector('#factors') && document.querySelector('#factors').textContent.includes('办公电脑');",
            vec![],
        )
        .await
    })
    .await;

    b.step("02-sign-in-with-the-passkey", async {
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.password_then_second_factor("wang.li", PASSWORD).await?;
        b.click("#use-passkey").await?;
        b.wait_for_path("/staff").await
    })
    .await;

    b.step("03-another-authenticator-is-refused", async {
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.remove_virtual_authenticator(&authenticator).await?;
        b.add_virtual_authenticator().await?;
        b.password_then_second_factor("wang.li", PASSWORD).await?;
        b.click("#use-passkey").await?;
        b.wait_js(
            "the refusal is said",
            "const s = document.getElementById('passkey-status'); return s && !s.hidden;",
            vec![],
        )
        .await?;
        b.goto("/staff").await?;
        b.wait_for_path("/login/second-factor").await
    })
    .await;

    b.step("04-removed-passkey", async {
        // In with the app's code; the passkey removed; it is offered no more.
        let code =
            crate::helpers::next_second_factor_code(&base, "wang.li").ok_or("an app code")?;
        b.fill("#code", &code).await?;
        b.click_and_load(r#"form[action="/login/second-factor"] button[type="submit"]"#)
            .await?;
        b.goto("/account/second-factor").await?;
        b.click_and_load(r#"#factors tr:last-child form button[type="submit"]"#)
            .await?;
        let flash = b.text(".flash").await?;
        ensure!(flash.contains("已移除"), "{flash}");
        let factors = b.text("#factors").await?;
        ensure!(!factors.contains("办公电脑"), "{factors}");
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.password_then_second_factor("wang.li", PASSWORD).await?;
        let offered = b
            .js("return !!document.getElementById('use-passkey');", vec![])
            .await?;
        ensure!(
            offered == serde_json::json!(false),
            "a removed passkey is not offered"
        );
        Ok(())
    })
    .await;

    b.close().await;
    let checks = crate::helpers::audit_actions(&app, "auth.second_factor").await;
    ensure_passkey_audited(&checks);
}

fn ensure_passkey_audited(checks: &[(String, String)]) {
    assert!(
        checks
            .iter()
            .any(|(outcome, details)| outcome == "allowed" && details.contains("passkey")),
        "{checks:?}"
    );
    let enrolments = checks.iter().filter(|(_, d)| d.contains("passkey")).count();
    assert!(enrolments >= 1, "{checks:?}");
}
