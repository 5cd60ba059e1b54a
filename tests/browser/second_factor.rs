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
        b.goto("/login").await?;
        b.fill("#identifier", "li.na").await?;
        b.fill("#password", PASSWORD).await?;
        b.click_and_load(r#"form[action="/login"] button[type="submit"]"#)
            .await?;
        b.wait_for_path("/login/second-factor").await?;
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
