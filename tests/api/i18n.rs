//! Languages through the running server: Chinese by default, English from `Accept-Language` or
//! the switch (a cookie), on public pages, error pages and a party's case page.

use reqwest::StatusCode;

use crate::helpers::{assert_status, client, header, spawn_app};

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[tokio::test]
async fn chinese_by_default_english_on_request_and_the_switch_sticks() {
    let app = spawn_app().await;
    let page = app.get("/").await.text().await.unwrap();
    assert!(page.contains(r#"<html lang="zh-CN">"#));
    assert!(page.contains("交通事故证据材料网上查阅"));
    let switch = page.split("class=\"lang-switch\"").next().unwrap_or("");
    assert!(
        page.contains(r#"href="/language?to=en&#38;next=%2F""#),
        "the switch: {}",
        &switch[switch.len().saturating_sub(100)..]
    );

    let en = app
        .client
        .get(format!("{}/login", app.address))
        .header("Accept-Language", "en-GB,en;q=0.9,zh;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(en.contains(r#"<html lang="en">"#));
    assert!(en.contains("Sign-in identifier") && en.contains("Accident Evidence Portal"));
    let body = en
        .split("<main")
        .nth(1)
        .unwrap()
        .split("</main>")
        .next()
        .unwrap();
    assert!(
        !has_cjk(body),
        "no Chinese left on the English sign-in page: {body}"
    );

    // The switch: a cookie for a year, back to the page; it wins over Accept-Language.
    let res = app.get("/language?to=en&next=%2Factivate").await;
    assert_status(&res, StatusCode::SEE_OTHER);
    assert_eq!(header(&res, "location"), "/activate");
    let cookie = header(&res, "set-cookie").to_owned();
    assert!(
        cookie.starts_with("portal-lang=en") && cookie.contains("Max-Age=31536000"),
        "{cookie}"
    );
    let page = app
        .client
        .get(format!("{}/activate", app.address))
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Activate your account"), "{page}");
    assert!(page.contains(r#"href="/language?to=zh-CN&#38;next=%2Factivate""#));

    // Error pages follow the language too.
    let res = app.get("/no/such/page").await;
    assert_status(&res, StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().contains("Page not found"));

    // Only local pages to go back to; unknown languages are a clear error.
    let res = app.get("/language?to=zh-CN&next=%2F%2Fevil.example").await;
    assert_eq!(header(&res, "location"), "/");
    let res = app.get_json("/language?to=fr").await;
    assert_status(&res, StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_language");
}

#[tokio::test]
async fn a_party_reads_the_case_in_english_with_dates_in_china_standard_time() {
    use crate::auth::{PASSWORD, activate};
    use crate::cases::{open_case, registered, set_status, staff_of};
    use crate::materials::{PDF, decide, upload};
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_id = open_case(&staff, "2026-700", true).await;
    let code = registered(&staff, &case_id, "甲", "110101199003070011", "张伟").await;
    let res = upload(&staff, &case_id, "survey_record", "勘查笔录", "s.pdf", PDF).await;
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decide(&staff, &case_id, &id, "release", &[]).await;
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    set_status(
        &staff,
        &case_id,
        &[
            ("to", "served"),
            ("service_kind", "determination"),
            ("served_on", &today.to_string()),
        ],
    )
    .await;
    let party = app.with_client(client());
    activate(&party, "110101199003070011", &code, PASSWORD).await;
    party.get("/language?to=en&next=%2F").await;
    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Case 2026-700"), "{page}");
    assert!(page.contains("Survey record") && page.contains("Download all evidence (zip)"));
    let served = format!(
        "Accident determination served on {} {} {}",
        today.day(),
        &today.month().to_string()[..3],
        today.year()
    );
    assert!(page.contains(&served), "{served} in {page}");
    assert!(
        page.contains("Determination served"),
        "the status in English"
    );
}

/// Messages written in code (validation, refusals) speak both languages: every Chinese string
/// literal of the library's own code is `中文 (English)`, so that `i18n::pick` shows the page's
/// half — except the few that are Chinese by law or by nature (documents and names), listed here.
#[test]
fn messages_written_in_code_speak_both_languages() {
    // Chinese whatever the page's language: document titles and names, and the CLI's record of
    // who reset an account (stored, and shown as written).
    const CHINESE_BY_NATURE: &[&str] = &[
        "未命名文件",
        "授权委托书（当事人{}）",
        "系统管理员在服务器上重新发放访问码",
        // The SMS sender's signature, registered with the provider in Chinese.
        "【交通事故证据公开】",
        // A redacted copy's file name: its (Chinese) title and what it is.
        "{}（遮挡处理）",
        "{stem}（遮挡处理）.{ext}",
        // The bundle's file name (an ASCII one goes beside it for clients that need one).
        "{}-证据材料-{date}.zip",
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut chinese_only = Vec::new();
    for file in files {
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        // The demo's data and tests are Chinese data, not messages; the command line speaks
        // English to administrators (Chinese names in parentheses).
        // The evidence index of a bundle (证据目录) is a Chinese court document.
        if name.starts_with("demo/")
            || name.ends_with("tests.rs")
            || name.starts_with("cli/")
            || name == "bundle/index.rs"
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (n, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let literals: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
            for (i, literal) in literals.iter().copied().enumerate() {
                if !has_cjk(literal) || CHINESE_BY_NATURE.contains(&literal) {
                    continue;
                }
                // A pair ("地址", "the address"): the English half follows on the line.
                if literals.get(i + 1).is_some_and(|next| {
                    !has_cjk(next) && next.chars().any(|c| c.is_ascii_alphabetic())
                }) {
                    continue;
                }
                let bilingual = literal.ends_with(')')
                    && literal.rfind(" (").is_some_and(|at| {
                        literal[at + 2..].chars().any(|c| c.is_ascii_alphabetic())
                    });
                if !bilingual {
                    chinese_only.push(format!("{name}:{}: {literal}", n + 1));
                }
            }
        }
    }
    assert!(
        chinese_only.is_empty(),
        "messages in Chinese only (write them 中文 (English), or add a catalog key):\n{}",
        chinese_only.join("\n")
    );
}
