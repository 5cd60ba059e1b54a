//! An agent's journey: the bundle while the delegation stands, a refusal once it is revoked.

use evidence_portal::db::entities::audit_event;
use sea_orm::{EntityTrait, QueryOrder};

use crate::driver::{Browser, browser_available};
use crate::ensure;
use crate::helpers::{TestApp, spawn_app};
use crate::setup::{AGENT_MOBILE, PASSWORD, ServedCase, grant, revoke_delegation, served_case};

const CASE_NUMBER: &str = "京公交认字[2026]第00777号";

/// The audit log's bundle downloads (outcome allowed) and refusals for the revoked delegation
/// (which `cases::authorize` records under the download's case action), oldest first.
async fn downloads_and_refusals(app: &TestApp) -> Vec<String> {
    audit_event::Entity::find()
        .order_by_asc(audit_event::Column::Seq)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| {
            if e.action == "bundle.download" {
                Some(format!("{} {}", e.action, e.outcome))
            } else if e.outcome == "denied" && e.details.contains("delegation_revoked") {
                Some(format!("{} denied", e.action))
            } else {
                None
            }
        })
        .collect()
}

#[tokio::test]
async fn an_agent_downloads_the_bundle_until_staff_revoke_the_delegation() {
    if !browser_available("agent") {
        return;
    }
    let app = spawn_app().await;
    let ServedCase {
        office,
        case_id,
        code: _,
        diagram,
    } = served_case(&app, CASE_NUMBER).await;
    let code = grant(&office, &case_id).await;

    let b = Browser::open("agent", &app.address).await.unwrap();
    let case_page = format!("/cases/{case_id}");
    let bundle_link = format!(r#"a[href="{case_page}/bundle.zip"]"#);

    b.step("01-activate", async {
        b.activate(AGENT_MOBILE, &code, PASSWORD).await?;
        b.find(&format!(r#"a[href="{case_page}"]"#)).await?;
        Ok(())
    })
    .await;

    b.step("02-case", async {
        b.click_and_load(&format!(r#"a[href="{case_page}"]"#))
            .await?;
        b.wait_for_path(&case_page).await?;
        b.find(&format!("#material-{diagram}")).await?;
        Ok(())
    })
    .await;

    let bundle = b
        .step("03-download-bundle", async {
            let before = b.downloaded()?;
            b.click(&bundle_link).await?;
            let path = b.wait_for_download("zip", &before).await?;
            let entries = Browser::unzip(&path)?;
            let names: Vec<&String> = entries.keys().collect();
            ensure!(
                entries.contains_key("manifest.jws")
                    && names.iter().any(|n| n.starts_with("现场图/")),
                "a signed bundle with the scene diagram: {names:?}"
            );
            Ok(path)
        })
        .await;

    // The bundle as the court or insurer receives it: the zip itself, checked at /verify.
    b.step("03b-verify-the-bundle", async {
        let verdict = b.verify_bundle(&bundle).await?;
        ensure!(
            verdict == "核验通过：这是本平台出具的证据包，所有文件均未被改动。",
            "the verdict first, in plain words: {verdict}"
        );
        Ok(())
    })
    .await;

    // A personal token for curl: shown once, gone on a reload, revoked after a confirmation.
    b.step("03c-token-created", async {
        b.goto("/account").await?;
        b.fill("#token-name", "律所电脑").await?;
        b.click_and_load(r#"form[action="/account/tokens"] button[type="submit"]"#)
            .await?;
        let token = b.text("#new-token").await?;
        ensure!(token.starts_with("ep_"), "the token shown: {token}");
        let flash = b.text(r#".flash[role="status"]"#).await?;
        ensure!(
            flash.starts_with("已创建访问令牌“律所电脑”"),
            "created: {flash}"
        );
        Ok(())
    })
    .await;
    b.step("03d-token-page-reloaded", async {
        b.reload().await?;
        b.wait_for_path("/account").await?;
        let shown = b
            .js(
                "return document.querySelectorAll('#new-token').length;",
                vec![],
            )
            .await?;
        ensure!(shown == serde_json::json!(0), "the token is shown once");
        Ok(())
    })
    .await;
    b.step("03e-token-revoke-confirm", async {
        b.click_and_load(r#"form[action$="/revoke"] button[type="submit"]"#)
            .await?;
        let consequence = b.text("#consequence").await?;
        ensure!(
            consequence.contains("律所电脑") && consequence.contains("不能恢复"),
            "the consequence in plain words: {consequence}"
        );
        Ok(())
    })
    .await;
    b.step("03f-token-revoked", async {
        b.click_and_load(r#"form.confirm-actions button[type="submit"]"#)
            .await?;
        let flash = b.text(r#".flash[role="status"]"#).await?;
        ensure!(
            flash == "访问令牌已撤销，使用它的程序将无法再下载。",
            "revoked: {flash}"
        );
        let state = b.text("#tokens tbody tr td:last-child").await?;
        ensure!(state == "已撤销", "listed as revoked: {state}");
        Ok(())
    })
    .await;
    b.step("03g-case-again", async {
        b.goto(&case_page).await?;
        b.find(&bundle_link).await?;
        Ok(())
    })
    .await;
    assert_eq!(
        downloads_and_refusals(&app).await,
        ["bundle.download allowed"]
    );

    revoke_delegation(&office, &case_id).await;

    b.step("04-download-refused", async {
        // The case page still shows the link; the next click on it is refused.
        let before = b.downloaded()?;
        b.click(&bundle_link).await?;
        let deadline = std::time::Instant::now() + crate::driver::PATIENCE;
        while downloads_and_refusals(&app).await.len() < 2 {
            ensure!(
                std::time::Instant::now() < deadline,
                "the second click reached the server"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let audited = downloads_and_refusals(&app).await;
        ensure!(
            audited == ["bundle.download allowed", "material.download denied"],
            "the refusal is audited: {audited:?}"
        );
        let status = b.text(".status-code").await?;
        ensure!(status == "403", "a 403 page, not {status}");
        let after: Vec<_> = b
            .downloaded()?
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        ensure!(after.is_empty(), "nothing more was saved: {after:?}");
        Ok(())
    })
    .await;

    b.close().await;
}
