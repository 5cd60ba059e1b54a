//! The access-audit log: group commit under concurrency, one chain across instances, tamper
//! detection with the right sequence number, failure instead of hanging, and the CLI.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use evidence_portal::audit::chain::{self, Fields};
use evidence_portal::audit::verify::VerifyError;
use evidence_portal::audit::{Action, Actor, Audit, Event, Outcome, verify};
use evidence_portal::db::entities::audit_event;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::cli::{run, stderr, stdout};
use crate::helpers::{TestApp, spawn_app, spawn_with_env, test_env};

fn event(n: usize, case: Uuid) -> Event {
    Event::new(
        Actor {
            id: Some(Uuid::now_v7()),
            role: "party",
        },
        Action::MaterialView,
        Outcome::Allowed,
    )
    .case(case)
    .material(Uuid::now_v7())
    .client(Some("127.0.0.1".into()), Some("tests/中文 UA".into()))
    .details(serde_json::json!({ "n": n, "title": "现场图" }))
}

async fn record_concurrently(audit: &Audit, count: usize, case: Uuid) -> Vec<i64> {
    let tasks: Vec<_> = (0..count)
        .map(|n| {
            let audit = audit.clone();
            tokio::spawn(async move { audit.record(event(n, case)).await.unwrap().seq })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    seqs
}

async fn all_seqs(app: &TestApp) -> Vec<i64> {
    audit_event::Entity::find()
        .order_by_asc(audit_event::Column::Seq)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_records_make_one_gapless_verified_chain() {
    let app = spawn_app().await;
    let seqs = record_concurrently(&app.state.audit, 1000, Uuid::now_v7()).await;

    let distinct: HashSet<i64> = seqs.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        1000,
        "every caller got its own sequence number"
    );
    assert_eq!(all_seqs(&app).await, (1..=1000).collect::<Vec<i64>>());
    let verified = verify(&app.state.db).await.unwrap();
    assert_eq!(verified.events, 1000);
    assert_eq!(verified.head_hash.len(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_database_write_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let env = test_env(dir.path()).await;
    let a = spawn_with_env(env.clone(), tempfile::tempdir().unwrap()).await;
    let b = spawn_with_env(env.clone(), tempfile::tempdir().unwrap()).await;
    let (sa, sb) = tokio::join!(
        record_concurrently(&a.state.audit, 400, Uuid::now_v7()),
        record_concurrently(&b.state.audit, 400, Uuid::now_v7())
    );
    let all: HashSet<i64> = sa.iter().chain(sb.iter()).copied().collect();
    assert_eq!(all.len(), 800);
    assert_eq!(all_seqs(&a).await, (1..=800).collect::<Vec<i64>>());
    assert_eq!(verify(&a.state.db).await.unwrap().events, 800);
    assert_eq!(verify(&b.state.db).await.unwrap().events, 800);
}

/// A fresh log of 20 events, then `tamper`, then the first broken sequence number.
async fn broken_after(tamper: &[&str]) -> (i64, String) {
    let app = spawn_app().await;
    for n in 0..20 {
        app.state
            .audit
            .record(event(n, Uuid::now_v7()))
            .await
            .unwrap();
    }
    assert_eq!(verify(&app.state.db).await.unwrap().events, 20);
    for sql in tamper {
        app.state.db.execute_unprepared(sql).await.unwrap();
    }
    match verify(&app.state.db).await {
        Err(VerifyError::Broken(b)) => (b.seq, b.reason),
        other => panic!("tampering {tamper:?} went unnoticed: {other:?}"),
    }
}

#[tokio::test]
async fn an_edited_field_is_detected_at_its_event() {
    let (seq, reason) =
        broken_after(&["UPDATE audit_events SET outcome = 'denied' WHERE seq = 7"]).await;
    assert_eq!(seq, 7);
    assert!(reason.contains("content"), "{reason}");

    let (seq, _) = broken_after(&["UPDATE audit_events SET details = '{}' WHERE seq = 3"]).await;
    assert_eq!(seq, 3);
}

#[tokio::test]
async fn a_deleted_event_is_detected_as_missing() {
    let (seq, reason) = broken_after(&["DELETE FROM audit_events WHERE seq = 7"]).await;
    assert_eq!(seq, 7);
    assert!(reason.contains("missing"), "{reason}");
    // The last one too: the chain head still remembers it.
    let (seq, reason) = broken_after(&["DELETE FROM audit_events WHERE seq = 20"]).await;
    assert_eq!(seq, 20);
    assert!(reason.contains("missing"), "{reason}");
}

#[tokio::test]
async fn an_inserted_event_is_detected() {
    // Appended behind the writer's back, copying a real row under a new number.
    let (seq, reason) = broken_after(&[
        "INSERT INTO audit_events SELECT 21, occurred_at, actor_id, actor_role, action, case_id, \
         material_id, client_ip, user_agent, outcome, details, hash, hash FROM audit_events WHERE seq = 20",
    ])
    .await;
    assert_eq!(seq, 21);
    assert!(reason.contains("beyond the chain head"), "{reason}");

    // Squeezed in the middle: later events renumbered to make room.
    let (seq, _) = broken_after(&[
        "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 10",
        "UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1010",
        "INSERT INTO audit_events SELECT 10, occurred_at, actor_id, actor_role, action, case_id, \
         material_id, client_ip, user_agent, outcome, details, prev_hash, hash FROM audit_events WHERE seq = 9",
    ])
    .await;
    assert_eq!(seq, 10);
}

#[tokio::test]
async fn swapped_events_are_detected_at_the_first_of_them() {
    let (seq, _) = broken_after(&[
        "UPDATE audit_events SET seq = -1 WHERE seq = 7",
        "UPDATE audit_events SET seq = 7 WHERE seq = 12",
        "UPDATE audit_events SET seq = 12 WHERE seq = -1",
    ])
    .await;
    assert_eq!(seq, 7);
}

#[tokio::test]
async fn a_recomputed_hash_breaks_the_next_link() {
    let app = spawn_app().await;
    for n in 0..20 {
        app.state
            .audit
            .record(event(n, Uuid::now_v7()))
            .await
            .unwrap();
    }
    // The forger edits event 7 and gives it a correct hash of its new content …
    let row = audit_event::Entity::find_by_id(7i64)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let forged = chain::hash(
        &row.prev_hash,
        &Fields {
            seq: row.seq,
            occurred_at: row.occurred_at,
            actor_id: row.actor_id,
            actor_role: &row.actor_role,
            action: &row.action,
            case_id: row.case_id,
            material_id: row.material_id,
            client_ip: row.client_ip.as_deref(),
            user_agent: row.user_agent.as_deref(),
            outcome: "denied",
            details: &row.details,
        },
    )
    .unwrap();
    app.state
        .db
        .execute_unprepared(&format!(
            "UPDATE audit_events SET outcome = 'denied', hash = '{forged}' WHERE seq = 7"
        ))
        .await
        .unwrap();
    // … so event 7 checks out alone, and event 8, which still names the old hash, does not.
    match verify(&app.state.db).await {
        Err(VerifyError::Broken(b)) => {
            assert_eq!(b.seq, 8);
            assert!(b.reason.contains("previous hash"), "{}", b.reason);
        }
        other => panic!("a recomputed hash went unnoticed: {other:?}"),
    }
}

#[tokio::test]
async fn record_fails_fast_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.state
        .audit
        .record(event(0, Uuid::now_v7()))
        .await
        .unwrap();
    app.state.db.close_by_ref().await.unwrap();
    let started = Instant::now();
    let result = app.state.audit.record(event(1, Uuid::now_v7())).await;
    assert!(
        result.is_err(),
        "recorded into a closed database: {result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_cli_verifies_exports_and_names_the_broken_event() {
    let app = spawn_app().await;
    let case = Uuid::now_v7();
    for n in 0..5 {
        app.state.audit.record(event(n, case)).await.unwrap();
    }
    for n in 5..8 {
        app.state
            .audit
            .record(event(n, Uuid::now_v7()))
            .await
            .unwrap();
    }

    let out = run(&["audit", "verify"], &app.env, "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("verified 8 events; head hash "),
        "{}",
        stdout(&out)
    );

    let case_arg = case.to_string();
    let out = run(
        &["audit", "export", "--format", "jsonl", "--case", &case_arg],
        &app.env,
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["action"], "material.view");
    assert_eq!(lines[0]["case_id"], case_arg);
    assert_eq!(lines[4]["user_agent"], "tests/中文 UA");

    let out = run(&["audit", "export"], &app.env, "");
    let csv = stdout(&out);
    assert!(
        csv.starts_with("seq,occurred_at,actor_id,actor_role,action,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 9, "header and 8 events");
    assert!(
        csv.contains(r#""{""n"":0,""title"":""现场图""}""#),
        "details quoted: {csv}"
    );

    let out = run(&["audit", "export", "--from", "2999-01-01"], &app.env, "");
    assert_eq!(stdout(&out).lines().count(), 1, "only the header");
    let out = run(&["audit", "export", "--to", "2000-01-01"], &app.env, "");
    assert_eq!(stdout(&out).lines().count(), 1, "only the header");
    let out = run(&["audit", "export", "--from", "yesterday"], &app.env, "");
    assert_eq!(out.status.code(), Some(2), "a bad date is a usage error");

    app.state
        .db
        .execute_unprepared("UPDATE audit_events SET action = 'material.download' WHERE seq = 4")
        .await
        .unwrap();
    let out = run(&["audit", "verify"], &app.env, "");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("broken at sequence number 4"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn create_admin_is_audited() {
    let app = spawn_app().await;
    let out = run(
        &["create-admin", "--username", "li.admin", "--name", "李管理"],
        &app.env,
        "Quartz-河边-Falcon-42\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events = audit_event::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "account.create");
    assert_eq!(events[0].actor_role, "system");
    assert_eq!(events[0].outcome, "allowed");
    assert!(events[0].details.contains("li.admin"));
    assert!(
        !events[0].details.contains("Quartz"),
        "no password in the log"
    );
}

/// Deleting the newest events and rewinding the chain head leaves a chain that verifies on its
/// own; the signed checkpoint in the object store, written by an earlier verification, finds it.
#[tokio::test]
async fn a_truncated_chain_is_found_by_its_signed_checkpoint() {
    let app = spawn_app().await;
    let case = Uuid::now_v7();
    for n in 0..6 {
        app.state.audit.record(event(n, case)).await.unwrap();
    }
    let out = run(&["audit", "verify"], &app.env, "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("signed checkpoint: event 6"),
        "{}",
        stdout(&out)
    );

    // An insider with the database only: the last two events go, the head is rewound.
    let head: (i64, String) = {
        let rows = audit_event::Entity::find()
            .filter(audit_event::Column::Seq.eq(4))
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap();
        (rows.seq, rows.hash)
    };
    app.state
        .db
        .execute_unprepared("DELETE FROM audit_events WHERE seq > 4")
        .await
        .unwrap();
    app.state
        .db
        .execute_unprepared(&format!(
            "UPDATE audit_chain_head SET seq = {}, hash = '{}' WHERE id = 1",
            head.0, head.1
        ))
        .await
        .unwrap();
    assert!(verify(&app.state.db).await.is_ok(), "alone it verifies");
    let out = run(&["audit", "verify"], &app.env, "");
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("events 5–6 are missing"),
        "{}",
        stderr(&out)
    );
}
