//! The portal in English, page by page, as a party and as an officer: every page of the flows
//! photographed at both widths and checked by axe-core (the Chinese pages are the other
//! journeys' steps).

use crate::driver::{Browser, browser_available};
use crate::ensure;
use crate::helpers::spawn_app;
use crate::setup::{PARTY_A, PASSWORD, ServedCase, admin, pdf, served_case, upload};

const CASE_NUMBER: &str = "京公交认字[2026]第00888号";

#[tokio::test]
async fn the_pages_read_in_english_at_both_widths() {
    if !browser_available("english") {
        return;
    }
    let app = spawn_app().await;
    let ServedCase {
        office,
        case_id,
        code,
        diagram,
    } = served_case(&app, CASE_NUMBER).await;
    // A draft the officer releases from the case page, ticked.
    let survey = upload(
        &office,
        &case_id,
        "survey_record",
        "Survey record",
        "survey.pdf",
        &pdf("Survey record"),
    )
    .await;
    admin(&app, "admin").await;

    let b = Browser::open("english", &app.address).await.unwrap();
    let case_page = format!("/cases/{case_id}");

    b.step("01-landing", async {
        b.goto("/language?to=en&next=/").await?;
        let lang = b
            .js("return document.documentElement.lang;", vec![])
            .await?;
        ensure!(lang == serde_json::json!("en"), "English: {lang}");
        Ok(())
    })
    .await;
    b.step("02-activate", async {
        b.activate(PARTY_A, &code, PASSWORD).await?;
        let flash = b.text(r#".flash[role="status"]"#).await?;
        ensure!(flash == "Your account is active. Welcome.", "{flash}");
        Ok(())
    })
    .await;
    b.step("03-case", async {
        b.goto(&case_page).await?;
        let handling = b.text("#handling-title").await?;
        ensure!(
            handling == "Who handles your case, and what comes next",
            "{handling}"
        );
        let timeline = b.text("#timeline").await?;
        ensure!(
            timeline.contains("Case accepted") && timeline.contains("Accident determination"),
            "the timeline in English: {timeline}"
        );
        Ok(())
    })
    .await;
    // The service was told to the party: the inbox in English.
    b.step("03b-inbox", async {
        b.click_and_load(".inbox-link").await?;
        let heading = b.text("h1").await?;
        ensure!(heading == "My messages", "{heading}");
        let message = b.text(".inbox li").await?;
        ensure!(
            message.contains("the determination has been served")
                && message.contains("Open the case"),
            "the message in English: {message}"
        );
        Ok(())
    })
    .await;
    b.step("04-viewer", async {
        b.goto(&format!("{case_page}/materials/{diagram}")).await?;
        b.find("#zoom-controls").await?;
        Ok(())
    })
    .await;
    let bundle = b
        .step("04b-bundle", async {
            b.goto(&case_page).await?;
            let before = b.downloaded()?;
            b.click(&format!(r#"a[href="{case_page}/bundle.zip"]"#))
                .await?;
            b.wait_for_download("zip", &before).await
        })
        .await;
    b.step("05-account", async {
        b.goto("/account").await?;
        Ok(())
    })
    .await;
    b.step("05b-review-form", async {
        b.goto(&case_page).await?;
        b.click_and_load("#apply-review").await?;
        let title = b.text("h1").await?;
        ensure!(title == "Apply for a review", "{title}");
        let label = b.text(r#"label[for="grounds"]"#).await?;
        ensure!(label == "Grounds for review", "{label}");
        Ok(())
    })
    .await;
    b.step("06-verify", async {
        let verdict = b.verify_bundle(&bundle).await?;
        ensure!(
            verdict
                == "Verified: this is a bundle the portal issued, and none of its files has been changed.",
            "{verdict}"
        );
        Ok(())
    })
    .await;
    b.step("07-staff-queue", async {
        b.goto("/account").await?;
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        let flash = b.text(r#".flash[role="status"]"#).await?;
        ensure!(flash == "You have signed out.", "{flash}");
        b.sign_in("wang.li", PASSWORD, "/staff").await?;
        let title = b.text("h1").await?;
        ensure!(title == "To do", "{title}");
        Ok(())
    })
    .await;
    b.step("08-staff-case", async {
        b.goto(&format!("/staff/cases/{case_id}")).await?;
        b.click(&format!(r#"input[name="material"][value="{survey}"]"#))
            .await?;
        b.click_and_load(r#"#bulk-release button[type="submit"]"#)
            .await?;
        let flash = b.text(r#".flash[role="status"]"#).await?;
        ensure!(flash.starts_with("Items released: 1."), "{flash}");
        Ok(())
    })
    .await;
    b.step("09-staff-cases", async {
        b.goto("/staff/cases?sort=number").await?;
        Ok(())
    })
    .await;
    b.step("10-staff-upload", async {
        b.goto(&format!("/staff/cases/{case_id}/upload")).await?;
        Ok(())
    })
    .await;
    b.step("11-staff-audit", async {
        b.goto("/staff/audit").await?;
        Ok(())
    })
    .await;
    b.step("11b-staff-ledger", async {
        b.goto("/staff/applications").await?;
        let title = b.text("h1").await?;
        ensure!(title == "Ledger of applications", "{title}");
        Ok(())
    })
    .await;
    b.step("11c-apply-form", async {
        b.goto("/apply").await?;
        let title = b.text("h1").await?;
        ensure!(title == "Apply to query an accident's material", "{title}");
        Ok(())
    })
    .await;
    // An insurer's application in English: filed, found again, decided with the proof shown,
    // its voucher reloaded.
    let proof = std::env::temp_dir().join(format!("authorisation-{case_id}.pdf"));
    std::fs::write(&proof, pdf("Letter of authorisation")).unwrap();
    let status = b
        .step("11d-apply-filed", async {
            b.fill("#case_number", CASE_NUMBER).await?;
            b.fill("#applicant_name", "Li Ming").await?;
            b.fill("#organisation", "PICC Property and Casualty")
                .await?;
            b.fill("#credit_code", "91110000710931141J").await?;
            b.fill("#plate", "京A12345").await?;
            b.fill("#policy_no", "PDAA202611000001").await?;
            b.fill("#mobile", "13700001188").await?;
            b.find("#proof")
                .await?
                .send_keys(&proof.display().to_string())
                .await?;
            b.click_and_load(r#"form[action^="/apply"] button[type="submit"]"#)
                .await?;
            let keep = b.text("#keep-link-title").await?;
            ensure!(keep == "This application's private link", "{keep}");
            Ok(b.client.current_url().await?.to_string())
        })
        .await;
    b.step("11e-apply-found-again", async {
        b.goto("/").await?;
        b.click_and_load("#apply-mine-link").await?;
        let title = b.text("h1").await?;
        ensure!(title == "Where my query application stands", "{title}");
        b.find(".mine-link").await?;
        Ok(())
    })
    .await;
    b.step("11f-apply-decided", async {
        b.goto("/staff/applications").await?;
        b.click_and_load("#ledger tbody a").await?;
        b.find("#proof iframe.pdf-frame").await?;
        b.click(r#"input[name="kind"][value="scene_diagram"]"#)
            .await?;
        b.click_and_load(r#"form[action$="/approve"] button[type="submit"]"#)
            .await?;
        b.find("#access-scope").await?;
        Ok(())
    })
    .await;
    b.step("11g-apply-voucher", async {
        b.client.goto(&status).await?;
        b.click_and_load("#get-voucher").await?;
        let code = b.text("#access-code").await?;
        b.client.refresh().await?;
        let again = b.text("#access-code").await?;
        ensure!(
            again == code,
            "a reload shows the same code: {again} vs {code}"
        );
        let print = b.text("#print-voucher").await?;
        ensure!(print == "Print or save as PDF", "{print}");
        Ok(())
    })
    .await;
    let _ = std::fs::remove_file(&proof);
    // An administrator disables the party's account: said first, then done, then said.
    let party = evidence_portal::cases::parties(&app.state.db, case_id.parse().unwrap())
        .await
        .unwrap()
        .remove(0)
        .0
        .account_id;
    b.step("12-admin-disable-confirm", async {
        b.goto("/account").await?;
        b.click_and_load(r#"form[action="/logout"] button[type="submit"]"#)
            .await?;
        b.sign_in("admin", PASSWORD, "/admin").await?;
        b.click_and_load(&format!(
            r#"form[action="/admin/accounts/{party}/disable"] button[type="submit"]"#
        ))
        .await?;
        let consequence = b.text("#consequence").await?;
        ensure!(
            consequence.starts_with("All sessions and access tokens of"),
            "{consequence}"
        );
        Ok(())
    })
    .await;
    b.step("13-admin-disabled", async {
        b.click_and_load(r#"form.confirm-actions button[type="submit"]"#)
            .await?;
        let flash = b.text(r#".flash[role="status"]"#).await?;
        ensure!(
            flash
                == "The account has been disabled: all its sessions and access tokens have ended.",
            "{flash}"
        );
        Ok(())
    })
    .await;
    b.close().await;
}
