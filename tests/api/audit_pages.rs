//! Reading the audit log through the running server: the staff audit page's filters and their
//! combinations, keyset paging while events keep arriving, the CSV export (escaping, BOM,
//! formula neutralisation), a party's access history with masked names, brigade isolation, bad
//! filters, and the administrators' chain verification.

use evidence_portal::audit::{Action, Actor, Event, Outcome};
use reqwest::StatusCode;

use crate::auth::{PASSWORD, activate, admin};
use crate::cases::{open_case, registered, set_status, staff_of};
use crate::helpers::{TestApp, assert_status, client, spawn_app};
use crate::materials::{PDF, decide, upload};

fn today() -> String {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
        .to_string()
}

/// Sequence numbers of the rows on an audit page.
fn seqs(html: &str) -> Vec<i64> {
    html.split("data-seq=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().unwrap())
        .collect()
}

/// The CSV export for `query`, parsed (BOM checked and stripped).
async fn csv_rows(staff: &TestApp, query: &str) -> Vec<Vec<String>> {
    let res = staff.get(&format!("/staff/audit.csv?{query}")).await;
    assert_status(&res, StatusCode::OK);
    assert!(crate::helpers::header(&res, "content-type").starts_with("text/csv"));
    let bytes = res.bytes().await.unwrap();
    assert!(bytes.starts_with("\u{feff}".as_bytes()), "UTF-8 with a BOM");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(&bytes[3..]);
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

struct World {
    app: TestApp,
    staff: TestApp,
    party: TestApp,
    case_a: String,
    case_b: String,
}

/// Brigade 110105: case 2026-501 (party 甲 张伟, a released PDF titled with a formula, commas,
/// quotes and a newline-free Chinese text) and case 2026-502; party 甲 views and downloads.
async fn world() -> World {
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case_a = open_case(&staff, "2026-501", true).await;
    let case_b = open_case(&staff, "2026-502", true).await;
    let code = registered(&staff, &case_a, "甲", "110101199003070011", "张伟").await;
    let res = upload(
        &staff,
        &case_a,
        "expert_opinion",
        "=HYPERLINK(\"http://x\"), 鉴定意见 \"终稿\"",
        "o.pdf",
        PDF,
    )
    .await;
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    decide(&staff, &case_a, &id, "release", &[]).await;
    set_status(
        &staff,
        &case_a,
        &[
            ("to", "served"),
            ("service_kind", "determination"),
            ("served_on", &today()),
        ],
    )
    .await;
    let party = app.with_client(client());
    activate(&party, "110101199003070011", &code, PASSWORD).await;
    assert_status(
        &party.get(&format!("/cases/{case_a}")).await,
        StatusCode::OK,
    );
    let res = party
        .get(&format!("/cases/{case_a}/materials/{id}/download"))
        .await;
    assert_eq!(res.bytes().await.unwrap().as_ref(), PDF);
    assert_status(
        &party.get(&format!("/cases/{case_a}/bundle.zip")).await,
        StatusCode::OK,
    );
    // A refused access: the party asks for the other case.
    assert_status(
        &party.get(&format!("/cases/{case_b}")).await,
        StatusCode::NOT_FOUND,
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // transfer.end events
    World {
        app,
        staff,
        party,
        case_a,
        case_b,
    }
}

#[tokio::test]
async fn staff_filter_the_log_and_export_exactly_the_filtered_set() {
    let w = world().await;
    let all = csv_rows(&w.staff, "").await;
    assert!(all.len() > 8, "{all:?}");
    // Newest first.
    let order: Vec<i64> = all.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(order.windows(2).all(|p| p[0] > p[1]));

    // Each filter alone.
    let by_case = csv_rows(&w.staff, "case_number=501").await;
    assert!(!by_case.is_empty() && by_case.iter().all(|r| r[5] == "2026-501"));
    let downloads = csv_rows(&w.staff, "action=material.download").await;
    assert_eq!(downloads.len(), 1, "{downloads:?}");
    assert_eq!(downloads[0][4], "下载材料");
    let denied = csv_rows(&w.staff, "outcome=denied").await;
    assert!(!denied.is_empty());
    assert!(denied.iter().all(|r| r[7] == "被拒绝"));
    assert!(
        denied.iter().any(|r| r[5] == "2026-502"),
        "the refused look at 502"
    );
    let by_actor = csv_rows(&w.staff, "actor=%E5%BC%A0").await; // 张
    assert!(!by_actor.is_empty() && by_actor.iter().all(|r| r[2] == "张伟"));
    let today = today();
    assert_eq!(
        csv_rows(&w.staff, &format!("from={today}&to={today}"))
            .await
            .len(),
        all.len(),
        "today holds everything (exports are audited, but belong to no case: staff do not see them)"
    );
    assert!(csv_rows(&w.staff, "from=2030-01-01").await.is_empty());
    assert!(csv_rows(&w.staff, "to=2020-01-01").await.is_empty());

    // Combinations.
    let combo = csv_rows(
        &w.staff,
        "case_number=501&action=bundle.download&actor=%E5%BC%A0",
    )
    .await;
    assert_eq!(combo.len(), 1);
    assert_eq!(combo[0][6], "1 份材料打包下载");
    assert!(
        csv_rows(&w.staff, "case_number=502&action=bundle.download")
            .await
            .is_empty()
    );
    assert_eq!(
        csv_rows(&w.staff, "case_number=502&outcome=denied")
            .await
            .len(),
        1
    );

    // The page shows the same set as the export.
    let page = w
        .staff
        .get("/staff/audit?case_number=501&action=material.download")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(seqs(&page), vec![downloads[0][0].parse::<i64>().unwrap()]);
    assert!(
        page.contains(r#"href="/staff/audit.csv?case_number=501&#38;action=material.download""#)
    );

    // Viewing and exporting are audited (events of no case: administrators see them).
    let exports = crate::auth::events(&w.app, "audit.export").await;
    assert!(exports.len() >= 10, "{}", exports.len());
    assert!(
        exports
            .iter()
            .any(|e| e.details.contains("case_number=501"))
    );
    assert!(!crate::auth::events(&w.app, "audit.view").await.is_empty());
}

#[tokio::test]
async fn csv_cells_are_escaped_and_formulas_neutralised() {
    let w = world().await;
    let rows = csv_rows(&w.staff, "action=material.download").await;
    let what = &rows[0][6];
    assert_eq!(
        what, "'=HYPERLINK(\"http://x\"), 鉴定意见 \"终稿\"",
        "commas and quotes survive the round trip; the formula is neutralised"
    );
    // The details cell is JSON and holds the same title.
    assert!(rows[0][9].contains("鉴定意见"));
    // A value starting with '-' (a negative number or an injected formula) too.
    w.app
        .state
        .audit
        .record(
            Event::new(Actor::SYSTEM, Action::CaseView, Outcome::Allowed)
                .case(uuid::Uuid::parse_str(&w.case_a).unwrap())
                .client(Some("-1+1".into()), None),
        )
        .await
        .unwrap();
    let rows = csv_rows(&w.staff, "case_number=501").await;
    assert_eq!(rows[0][8], "'-1+1");
}

#[tokio::test]
async fn pages_stay_stable_while_events_keep_arriving() {
    let w = world().await;
    let case = uuid::Uuid::parse_str(&w.case_a).unwrap();
    for _ in 0..120 {
        w.app
            .state
            .audit
            .record(Event::new(Actor::SYSTEM, Action::CaseView, Outcome::Allowed).case(case))
            .await
            .unwrap();
    }
    let first = w
        .staff
        .get("/staff/audit?case_number=501")
        .await
        .text()
        .await
        .unwrap();
    let first_seqs = seqs(&first);
    assert_eq!(first_seqs.len(), 50);
    let next = first
        .split("id=\"next-page\"")
        .next()
        .unwrap()
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&");
    assert!(
        next.contains(&format!("before={}", first_seqs[49])),
        "{next}"
    );
    let second_before = seqs(&w.staff.get(&next).await.text().await.unwrap());

    // 100 events arrive concurrently while the reader pages on.
    let audit = w.app.state.audit.clone();
    let writers: Vec<_> = (0..100)
        .map(|_| {
            let audit = audit.clone();
            tokio::spawn(async move {
                audit
                    .record(
                        Event::new(Actor::SYSTEM, Action::CaseView, Outcome::Allowed).case(case),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let second_during = seqs(&w.staff.get(&next).await.text().await.unwrap());
    for h in writers {
        h.await.unwrap();
    }
    let second_after = seqs(&w.staff.get(&next).await.text().await.unwrap());
    assert_eq!(second_before.len(), 50);
    assert_eq!(second_before, second_during, "stable while events arrive");
    assert_eq!(second_before, second_after, "and after");
    assert!(second_before.iter().all(|s| *s < first_seqs[49]));
    // The first page has moved on; it now starts with the new events.
    let first_again = seqs(
        &w.staff
            .get("/staff/audit?case_number=501")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(first_again[0] > first_seqs[0]);
}

#[tokio::test]
async fn a_party_sees_who_accessed_their_case_with_names_masked() {
    let w = world().await;
    // Staff of the brigade look at the material as well.
    let page = w
        .party
        .get(&format!("/cases/{}", w.case_a))
        .await
        .text()
        .await
        .unwrap();
    let history = page
        .split("id=\"access-history\"")
        .nth(1)
        .expect("the 查阅记录 section");
    assert!(history.contains("查阅记录"));
    // The party's own accesses are theirs ("您本人"), folded away from those of others.
    assert!(history.contains("<summary>您本人的查阅（"), "{history}");
    assert!(history.contains(r#"<span class="access-who">您本人</span>"#));
    assert!(!history.contains("张伟"), "never a full name");
    assert!(history.contains("1 份材料打包下载"));
    assert!(history.contains("=HYPERLINK"), "the material's title");
    assert!(
        history.contains("下载完成"),
        "completed downloads say so: {history}"
    );

    // Staff views show as 民警 + masked name.
    let id = evidence_portal::db::entities::material::Entity::find()
        .one(&w.app.state.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    use sea_orm::EntityTrait;
    w.staff
        .get(&format!("/cases/{}/materials/{id}/view", w.case_a))
        .await
        .bytes()
        .await
        .unwrap();
    let page = w
        .party
        .get(&format!("/cases/{}", w.case_a))
        .await
        .text()
        .await
        .unwrap();
    let history = page.split("id=\"access-history\"").nth(1).unwrap();
    assert!(history.contains("民警 民**"), "{history}");
    assert!(!history.contains("wang.li"));

    // Another party's case page shows nothing of it (and the party may not open 502 at all).
    let other_code = registered(&w.staff, &w.case_b, "乙", "440304198511223338", "李娜").await;
    set_status(
        &w.staff,
        &w.case_b,
        &[
            ("to", "served"),
            ("service_kind", "determination"),
            ("served_on", &today()),
        ],
    )
    .await;
    let other = w.app.with_client(client());
    activate(&other, "440304198511223338", &other_code, PASSWORD).await;
    let page = other
        .get(&format!("/cases/{}", w.case_b))
        .await
        .text()
        .await
        .unwrap();
    let history = page.split("id=\"access-history\"").nth(1).unwrap();
    assert!(!history.contains("当事人甲") && !history.contains("HYPERLINK"));
}

#[tokio::test]
async fn staff_of_another_brigade_and_parties_see_nothing_of_it() {
    let w = world().await;
    let other = staff_of(&w.app, "110106", "li.na").await;
    // Their page and their export hold nothing of brigade 110105's case.
    let page = other.get("/staff/audit").await.text().await.unwrap();
    assert!(!page.contains("2026-501"));
    let rows = csv_rows(&other, "").await;
    assert!(rows.iter().all(|r| r[5] != "2026-501"), "{rows:?}");
    assert!(csv_rows(&other, "case_number=501").await.is_empty());
    assert_status(&w.party.get("/staff/audit").await, StatusCode::FORBIDDEN);
    assert_status(
        &w.party.get("/staff/audit.csv").await,
        StatusCode::FORBIDDEN,
    );
    // Administrators see everything, sign-ins included.
    let root = admin(&w.app).await;
    let rows = csv_rows(&root, "action=auth.activate").await;
    assert!(rows.len() >= 2, "{rows:?}");
}

#[tokio::test]
async fn bad_filters_get_a_clear_error() {
    let w = world().await;
    for (query, what) in [
        ("from=2026/11/01", "date"),
        ("to=yesterday", "date"),
        ("action=nope", "action"),
        ("outcome=maybe", "outcome"),
        ("from=2026-11-02&to=2026-11-01", "range"),
    ] {
        let res = w.staff.get_json(&format!("/staff/audit?{query}")).await;
        assert_status(&res, StatusCode::BAD_REQUEST);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_filter", "{what}");
        let res = w.staff.get(&format!("/staff/audit.csv?{query}")).await;
        assert_status(&res, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn administrators_verify_the_chain_from_the_admin_page() {
    let w = world().await;
    let root = admin(&w.app).await;
    let csrf = root.csrf_from("/admin").await;
    let res = root
        .post_form("/admin/audit/verify", &[("csrf_token", &csrf)])
        .await;
    assert_status(&res, StatusCode::OK);
    let html = res.text().await.unwrap();
    let checked: u64 = html
        .split("id=\"events-checked\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(checked > 10);
    let head = evidence_portal::audit::verify::verify(&w.app.state.db)
        .await
        .unwrap();
    assert!(head.events >= checked);
    assert!(html.contains("id=\"head-hash\">"));

    // A tampered row is found, and named by its sequence number.
    use sea_orm::ConnectionTrait;
    w.app
        .state
        .db
        .execute_unprepared("UPDATE audit_events SET outcome = 'denied' WHERE seq = 3")
        .await
        .unwrap();
    let html = root
        .post_form("/admin/audit/verify", &[("csrf_token", &csrf)])
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"broken-at\">3<"), "{html}");
    // Staff may not.
    let csrf = w.staff.csrf_from("/staff/cases").await;
    assert_status(
        &w.staff
            .post_form("/admin/audit/verify", &[("csrf_token", &csrf)])
            .await,
        StatusCode::FORBIDDEN,
    );
}

/// Events made at chosen instants around China Standard Time midnights belong to the CST day
/// they happened on — on the audit page, its CSV export and the command-line export — whatever
/// the hour the test runs at (the app's clock is moved, not the test's expectations).
#[tokio::test]
async fn night_events_belong_to_the_cst_day_they_happened_on() {
    use time::macros::datetime;
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let case: uuid::Uuid = open_case(&staff, "2020-601", false).await.parse().unwrap();
    // 23:59:59 on the 28th, 00:00:00 and 07:59 (still the 28th in UTC) on the 29th, and
    // 00:00:00 on 1 March — all CST. 2020 is a leap year; the case's own opening is today.
    let at = [
        datetime!(2020-02-28 15:59:59 UTC),
        datetime!(2020-02-28 16:00:00 UTC),
        datetime!(2020-02-28 23:59:00 UTC),
        datetime!(2020-02-29 16:00:00 UTC),
    ];
    let mut seq = Vec::new();
    for t in at {
        app.state.clock.set(t);
        let recorded = app
            .state
            .audit
            .record(Event::new(Actor::SYSTEM, Action::CaseView, Outcome::Allowed).case(case))
            .await
            .unwrap();
        seq.push(recorded.seq);
    }
    app.state.clock.set(time::OffsetDateTime::now_utc());

    let day = |from: &str, to: &str| format!("case_number=2020-601&from={from}&to={to}");
    let seqs_in = |rows: Vec<Vec<String>>| {
        rows.into_iter()
            .map(|r| r[0].parse::<i64>().unwrap())
            .collect::<Vec<_>>()
    };
    // Newest first on the page and in its export.
    for (query, expected) in [
        (day("2020-02-28", "2020-02-28"), vec![seq[0]]),
        (day("2020-02-29", "2020-02-29"), vec![seq[2], seq[1]]),
        (day("2020-03-01", "2020-03-01"), vec![seq[3]]),
        (
            day("2020-02-28", "2020-02-29"),
            vec![seq[2], seq[1], seq[0]],
        ),
        (day("2020-02-27", "2020-02-27"), vec![]),
    ] {
        assert_eq!(seqs_in(csv_rows(&staff, &query).await), expected, "{query}");
        let html = staff
            .get(&format!("/staff/audit?{query}"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(seqs(&html), expected, "page {query}");
    }
    // The rows show the CST time they happened at.
    let rows = csv_rows(&staff, &day("2020-02-29", "2020-02-29")).await;
    assert!(
        rows[1].iter().any(|c| c == "2020-02-29 00:00"),
        "{:?}",
        rows[1]
    );
    assert!(
        rows[0].iter().any(|c| c == "2020-02-29 07:59"),
        "{:?}",
        rows[0]
    );

    // The command-line export: CST dates, and RFC 3339 instants (taken to the second).
    let export = |args: &[&str]| {
        let mut all = vec!["audit", "export", "--format", "jsonl", "--case", "2020-601"];
        all.extend_from_slice(args);
        let out = crate::cli::run(&all, &app.env, "");
        assert_eq!(out.status.code(), Some(0), "{}", crate::cli::stderr(&out));
        crate::cli::stdout(&out)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_i64()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        export(&["--from", "2020-02-28", "--to", "2020-02-28"]),
        [seq[0]]
    );
    assert_eq!(
        export(&["--from", "2020-02-29", "--to", "2020-02-29"]),
        [seq[1], seq[2]]
    );
    assert_eq!(
        export(&["--from", "2020-03-01", "--to", "2020-03-01"]),
        [seq[3]]
    );
    assert_eq!(
        export(&[
            "--from",
            "2020-02-28T15:59:59Z",
            "--to",
            "2020-02-29T00:00:00+08:00"
        ]),
        [seq[0]]
    );
    assert_eq!(
        export(&[
            "--from",
            "2020-02-29T00:00:00+08:00",
            "--to",
            "2020-02-29T07:59:01+08:00"
        ]),
        [seq[1], seq[2]]
    );
}

/// On PostgreSQL, the two statements of the access history (run by every case page) read only
/// what they return, whatever the planner knows: on a young log (never analysed) with one busy
/// case of 30,000 events — where the builder's statement became a bitmap scan of the whole case,
/// joined and sorted (the review's 342 case pages a second) — and after `ANALYZE`, for quiet
/// cases, where a generic plan walked the whole log backwards on the primary key. Both as custom
/// plans and as the generic plan a prepared statement settles on (`PREPARE`/`EXPLAIN EXECUTE`).
#[tokio::test]
async fn the_history_plans_do_not_depend_on_statistics() {
    use sea_orm::ConnectionTrait;
    if std::env::var("PORTAL_TEST_DATABASE_URL").is_err() {
        eprintln!("skipped: PostgreSQL only (PORTAL_TEST_DATABASE_URL)");
        return;
    }
    let app = spawn_app().await;
    let db = &app.state.db;
    // Young, and kept young while the test runs.
    db.execute_unprepared("ALTER TABLE audit_events SET (autovacuum_enabled = false)")
        .await
        .unwrap();
    // One busy case (three events in four) among 40 quiet ones (each an event in 160), every
    // 20th event the end of a transfer, written straight into the table (the chain does not
    // matter for a plan).
    db.execute_unprepared(
        "INSERT INTO audit_events (seq, occurred_at, actor_id, actor_role, action, case_id, \
         material_id, client_ip, user_agent, outcome, details, prev_hash, hash) \
         SELECT 1000000 + g, now(), NULL, 'party', \
                CASE WHEN g % 20 = 0 THEN 'transfer.end' ELSE 'case.view' END, \
                CASE WHEN g % 4 <> 0 THEN md5('busy')::uuid \
                     ELSE md5(((g / 4) % 40)::text)::uuid END, \
                NULL, NULL, NULL, 'allowed', '{}', repeat('0', 64), repeat('0', 64) \
         FROM generate_series(1, 42000) AS g",
    )
    .await
    .unwrap();
    let history = evidence_portal::audit::read::HISTORY_SQL_POSTGRES;
    let ends = evidence_portal::audit::read::ENDS_SQL_POSTGRES;
    async fn plans(
        db: &sea_orm::DatabaseConnection,
        history: &str,
        ends: &str,
        case: &str,
        after: i64,
    ) -> Vec<(String, String)> {
        use sea_orm::{ConnectionTrait, TransactionTrait};
        let mut out = Vec::new();
        for mode in ["force_custom_plan", "force_generic_plan"] {
            let txn = db.begin().await.unwrap();
            txn.execute_unprepared(evidence_portal::audit::read::HISTORY_SETTINGS_POSTGRES)
                .await
                .unwrap();
            txn.execute_unprepared(&format!("SET LOCAL plan_cache_mode = {mode}"))
                .await
                .unwrap();
            txn.execute_unprepared(&format!("PREPARE history(uuid, bigint) AS {history}"))
                .await
                .unwrap();
            txn.execute_unprepared(&format!("PREPARE ends(uuid, bigint) AS {ends}"))
                .await
                .unwrap();
            // `ends` from the oldest of the latest 100 accesses, as the case page asks.
            for (name, args) in [
                ("history", format!("md5('{case}')::uuid, 100")),
                ("ends", format!("md5('{case}')::uuid, {after}")),
            ] {
                let plan: Vec<String> = txn
                    .query_all_raw(sea_orm::Statement::from_string(
                        sea_orm::DbBackend::Postgres,
                        format!("EXPLAIN ANALYZE EXECUTE {name}({args})"),
                    ))
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.try_get_by_index::<String>(0).unwrap())
                    .collect();
                out.push((format!("{name}, case {case}, {mode}"), plan.join("\n")));
            }
            // Prepared statements outlive a transaction: gone before the connection goes back
            // (only these two: sqlx keeps its own on the connection).
            txn.execute_unprepared("DEALLOCATE history; DEALLOCATE ends")
                .await
                .unwrap();
            txn.rollback().await.unwrap();
        }
        out
    }
    // The history: the case index read backwards, nothing else. The ends: whatever index the
    // planner likes, as long as it reads about what it returns — never a walk through the log
    // (a quiet case's tail here is 16,000 events; a walk would discard them all).
    let check = |plans: Vec<(String, String)>| {
        for (what, plan) in plans {
            for bad in ["Bitmap", "Seq Scan on audit_events"] {
                assert!(!plan.contains(bad), "{what}: {bad}\n{plan}");
            }
            if what.starts_with("history") {
                assert!(
                    plan.contains("Index Scan Backward using idx_audit_events_case"),
                    "{what}:\n{plan}"
                );
                assert!(!plan.contains("audit_events_pkey"), "{what}:\n{plan}");
            }
            let discarded: u64 = plan
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Rows Removed by Filter: "))
                .map(|n| n.trim().parse::<u64>().unwrap())
                .sum();
            assert!(
                discarded <= 1_000,
                "{what}: read {discarded} rows it did not return\n{plan}"
            );
        }
    };
    check(plans(db, history, ends, "busy", 1_041_860).await);
    check(plans(db, history, ends, "7", 1_026_000).await);
    db.execute_unprepared("ANALYZE audit_events").await.unwrap();
    check(plans(db, history, ends, "busy", 1_041_860).await);
    check(plans(db, history, ends, "7", 1_026_000).await);
    check(plans(db, history, ends, "a case with no events", i64::MAX).await);
}
