//! Running it for years: an older binary refuses a newer database, `migrate` copies an SQLite
//! database aside first, the service units' hardening, `healthcheck`, and the retention sweeps.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use evidence_portal::db::entities::{
    access_application, account, audit_event, login_throttle, notification, outbox, rate_limit,
    second_factor, webauthn_challenge,
};
use evidence_portal::retention;
use reqwest::StatusCode;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::applications::{application_id, insurer_applies};
use crate::cases::served_case;
use crate::cli::{stderr, stdout};
use crate::helpers::{csrf_in, spawn_app, test_env};

const BIN: &str = env!("CARGO_BIN_EXE_evidence-portal");

/// Runs the binary with `env` only, killed after `limit` (a serve that did not refuse).
fn run_within(args: &[&str], env: &HashMap<String, String>, limit: Duration) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("AWS_")))
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().expect("binary finishes");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_end(&mut err).unwrap();
    Output {
        status,
        stdout: out,
        stderr: err,
    }
}

/// The database the binary would open with `env`.
async fn database(
    env: &HashMap<String, String>,
    dir: &std::path::Path,
) -> sea_orm::DatabaseConnection {
    let url = env
        .get("PORTAL_DATABASE_URL")
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/portal.db?mode=rw", dir.display()));
    sea_orm::Database::connect(url)
        .await
        .expect("database opens")
}

fn is_sqlite(env: &HashMap<String, String>) -> bool {
    !env.contains_key("PORTAL_DATABASE_URL")
}

#[tokio::test]
async fn an_older_binary_refuses_a_database_a_newer_one_migrated() {
    let tmp = tempfile::tempdir().unwrap();
    let env = test_env(tmp.path()).await;
    let out = run_within(&["migrate"], &env, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let db = database(&env, tmp.path()).await;
    let future = "m20991231_000999_added_by_a_newer_release";
    db.execute_unprepared(&format!(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('{future}', 0)"
    ))
    .await
    .unwrap();
    db.close().await.unwrap();
    let latest = evidence_portal::db::upgrade::known().pop().unwrap();
    for args in [
        &["serve"][..],
        &["migrate"],
        &["migrate", "status"],
        &[
            "account",
            "create-department",
            "--code",
            "X1",
            "--name",
            "某大队",
        ],
        &["gc"],
        &["audit", "verify"],
    ] {
        let out = run_within(args, &env, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(
            lines,
            [format!(
                "error: the database is at schema {future} (newer than this binary's latest {latest}): use the newer binary"
            )],
            "{args:?}: {err}"
        );
    }
}

#[tokio::test]
async fn migrate_on_sqlite_copies_the_database_aside_before_applying() {
    use migration::MigratorTrait;
    let tmp = tempfile::tempdir().unwrap();
    let env = test_env(tmp.path()).await;
    if !is_sqlite(&env) {
        return; // PostgreSQL is backed up by `backup` (pg_dump), not before each migration.
    }
    // A new installation: nothing to copy.
    let out = run_within(&["migrate"], &env, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("copied"), "{}", stdout(&out));
    // The last migration undone: the database as the previous release left it.
    let db = database(&env, tmp.path()).await;
    migration::Migrator::down(&db, Some(1)).await.unwrap();
    db.close().await.unwrap();
    let known = evidence_portal::db::upgrade::known();
    let before = &known[known.len() - 2];

    let out = run_within(&["migrate"], &env, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("copied the database to "))
        .unwrap_or_else(|| panic!("no copy named: {text}"));
    let path = line
        .trim_start_matches("copied the database to ")
        .split(" before applying")
        .next()
        .unwrap();
    let version: String = before.split('_').take(2).collect::<Vec<_>>().join("_");
    let name = std::path::Path::new(path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&format!("portal.db.before-{version}-")) && name.ends_with("Z.sqlite"),
        "{name}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the copy is private");
    // The copy is a whole SQLite database at the schema before.
    let copy = sea_orm::Database::connect(format!("sqlite://{path}?mode=ro"))
        .await
        .unwrap();
    let check = copy
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "PRAGMA integrity_check",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(check.try_get_by_index::<String>(0).unwrap(), "ok");
    let level = evidence_portal::db::upgrade::level(&copy).await.unwrap();
    assert!(
        matches!(&level, evidence_portal::db::upgrade::Level::Pending { at, pending } if at == before && pending.len() == 1),
        "{level:?}"
    );
    // And the database itself is current.
    let db = database(&env, tmp.path()).await;
    assert!(matches!(
        evidence_portal::db::upgrade::level(&db).await.unwrap(),
        evidence_portal::db::upgrade::Level::Current { .. }
    ));
}

#[tokio::test]
async fn healthcheck_names_each_part_and_fails_on_a_missing_font() {
    let tmp = tempfile::tempdir().unwrap();
    let mut env = test_env(tmp.path()).await;
    // Nothing there yet: the database is named, nothing is created.
    let out = run_within(&["healthcheck"], &env, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("database") && l.contains("FAIL"))
    );
    // An installation that has started once (keys, schema).
    let out = run_within(
        &[
            "account",
            "create-department",
            "--code",
            "H1",
            "--name",
            "健康大队",
        ],
        &env,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_within(&["healthcheck"], &env, Duration::from_secs(60));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    for part in ["database", "store", "audit", "font"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(part) && l.contains(" ok ")),
            "{part}: {text}"
        );
    }
    env.insert("PORTAL_WATERMARK_FONT".into(), "/nowhere/NoFont.ttc".into());
    let out = run_within(&["healthcheck"], &env, Duration::from_secs(60));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let font = text
        .lines()
        .find(|l| l.starts_with("font"))
        .expect("a font line");
    assert!(
        font.contains("FAIL") && font.contains("/nowhere/NoFont.ttc"),
        "{font}"
    );
    assert!(stderr(&out).contains("font"), "{}", stderr(&out));
}

#[test]
fn the_service_units_score_at_most_2_0() {
    let units = [
        "deploy/evidence-portal.service",
        "deploy/evidence-portal-backup.service",
        "deploy/evidence-portal-gc.service",
    ];
    let root = env!("CARGO_MANIFEST_DIR");
    let ran = Command::new("systemd-analyze").arg("--version").output();
    if ran.is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze is missing: CI must check the units' hardening"
        );
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    for unit in units {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(format!("{root}/{unit}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let score: f64 = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .and_then(|l| l.split(": ").nth(1))
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{unit}: no score in {text}{}", stderr(&out)));
        assert!(score <= 2.0, "{unit} scores {score}: {text}");
    }
    for timer in ["evidence-portal-backup.timer", "evidence-portal-gc.timer"] {
        let text = std::fs::read_to_string(format!("{root}/deploy/{timer}")).unwrap();
        assert!(
            text.contains("OnCalendar=") && text.contains("Persistent=true"),
            "{timer}"
        );
    }
    let unit = std::fs::read_to_string(format!("{root}/deploy/evidence-portal.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(line), "the service unit lacks {line}");
    }
}

/// Every sweep, with times in the past: nothing before its period, each once after it, the
/// state and times kept, evidence and the audit log untouched.
#[tokio::test]
async fn retention_sweeps_clear_personal_data_after_its_period_and_nothing_else() {
    let app = spawn_app().await;
    let db = &app.state.db;
    let (staff, _party, _case) = served_case(&app, "2026-留存-1").await;
    // An insurer refused.
    let status = insurer_applies(&app, "110105", "2026-留存-1").await;
    let id = application_id(&status);
    let page = staff
        .get(&format!("/staff/applications/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let res = staff
        .post_form(
            &format!("/staff/applications/{id}/refuse"),
            &[
                ("csrf_token", &csrf_in(&page)),
                ("reason", "授权书未加盖公章"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let application = access_application::Entity::find()
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let applicant = application.account_id.expect("the applicant's account");

    // Deliveries of someone else's notification: one sent, one failed.
    let now = OffsetDateTime::now_utc();
    let note = notification::Entity::find()
        .filter(notification::Column::AccountId.ne(applicant))
        .one(db)
        .await
        .unwrap()
        .expect("the party was told");
    for (state, address) in [("sent", "13800000001"), ("failed", "13800000002")] {
        outbox::Entity::insert(outbox::ActiveModel {
            id: Set(Uuid::now_v7()),
            notification_id: Set(note.id),
            channel: Set("sms".into()),
            address: Set(address.into()),
            idempotency_key: Set(Uuid::now_v7().to_string()),
            state: Set(state.into()),
            attempts: Set(1),
            next_attempt_at: Set(now),
            claimed_until: Set(None),
            last_error: Set((state == "failed").then(|| format!("gateway refused {address}"))),
            sent_at: Set((state == "sent").then_some(now)),
            created_at: Set(now),
        })
        .exec(db)
        .await
        .unwrap();
    }
    login_throttle::Entity::insert(login_throttle::ActiveModel {
        address: Set("203.0.113.7".into()),
        window_start: Set(now),
        failures: Set(3),
        blocked_until: Set(None),
    })
    .exec(db)
    .await
    .unwrap();
    rate_limit::Entity::insert(rate_limit::ActiveModel {
        key: Set("apply:address:203.0.113.0".into()),
        window_start: Set(now),
        count: Set(2),
    })
    .exec(db)
    .await
    .unwrap();
    webauthn_challenge::Entity::insert(webauthn_challenge::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(Uuid::now_v7()),
        purpose: Set("register".into()),
        state: Set("{}".into()),
        created_at: Set(now),
    })
    .exec(db)
    .await
    .unwrap();
    let staff_id = account::Entity::find()
        .filter(account::Column::Role.eq(evidence_portal::vocab::Role::Staff))
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .id;
    second_factor::Entity::insert(second_factor::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(staff_id),
        kind: Set("totp".into()),
        name: Set("phone".into()),
        secret: Set(None),
        passkey: Set(None),
        confirmed: Set(false),
        last_step: Set(None),
        created_at: Set(now),
        last_used_at: Set(None),
        session_id: Set(None),
    })
    .exec(db)
    .await
    .unwrap();
    let events_before = audit_event::Entity::find().count(db).await.unwrap();
    let sweep = |days: i64, apply: bool| {
        retention::sweep(
            db,
            &app.state.audit,
            now + time::Duration::days(days),
            apply,
        )
    };

    // A day on: only the ceremony and the enrolment have served their purpose; listing changes
    // nothing.
    let swept = sweep(1, false).await.unwrap();
    assert_eq!((swept.ceremonies, swept.enrolments), (1, 1), "{swept:?}");
    assert_eq!((swept.throttle_rows, swept.rate_rows), (0, 0), "{swept:?}");
    assert_eq!(
        swept.delivered_addresses + swept.failed_addresses,
        0,
        "{swept:?}"
    );
    assert_eq!(swept.notification_texts + swept.applicants, 0, "{swept:?}");
    assert_eq!(
        sweep(1, false).await.unwrap(),
        swept,
        "listing removes nothing"
    );
    // Three days on, applied: the throttle and rate rows too (the sign-ins and the application
    // above made some of their own).
    let swept = sweep(3, true).await.unwrap();
    assert_eq!((swept.ceremonies, swept.enrolments), (1, 1), "{swept:?}");
    assert!(
        swept.throttle_rows >= 1 && swept.rate_rows >= 1,
        "{swept:?}"
    );
    assert_eq!(swept.delivered_addresses + swept.applicants, 0, "{swept:?}");
    assert_eq!(
        webauthn_challenge::Entity::find().count(db).await.unwrap(),
        0
    );
    assert_eq!(login_throttle::Entity::find().count(db).await.unwrap(), 0);
    assert_eq!(rate_limit::Entity::find().count(db).await.unwrap(), 0);

    // 91 days on: the addresses go (state and times stay), and the receipt in the applicant's
    // notice; the account stays.
    let swept = sweep(91, true).await.unwrap();
    assert_eq!(
        (swept.delivered_addresses, swept.failed_addresses),
        (1, 1),
        "{swept:?}"
    );
    assert!(swept.notification_texts >= 1, "{swept:?}");
    assert_eq!(swept.applicants, 0, "{swept:?}");
    for d in outbox::Entity::find().all(db).await.unwrap() {
        assert_eq!(
            (d.address.as_str(), d.last_error),
            ("", None),
            "{:?}",
            d.state
        );
        assert_eq!(d.created_at.unix_timestamp(), now.unix_timestamp());
        assert_eq!(d.sent_at.is_some(), d.state == "sent");
    }
    let told = notification::Entity::find()
        .filter(notification::Column::AccountId.eq(applicant))
        .all(db)
        .await
        .unwrap();
    assert!(!told.is_empty() && told.iter().all(|n| !n.params.contains("receipt")));
    assert_eq!(sweep(91, true).await.unwrap().total(), 0, "each sweep once");

    // 179 days after the refusal the applicant's account stays; 181, it is anonymised — and
    // audited, because audit events name it.
    assert_eq!(sweep(179, true).await.unwrap().applicants, 0);
    assert_eq!(sweep(181, true).await.unwrap().applicants, 1);
    let acc = account::Entity::find_by_id(applicant)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acc.display_name, retention::REMOVED_NAME);
    assert!(acc.disabled && acc.mobile.is_none() && acc.password_hash.is_none());
    assert!(acc.login_key.starts_with("removed:"));
    let told = notification::Entity::find()
        .filter(notification::Column::AccountId.eq(applicant))
        .count(db)
        .await
        .unwrap();
    assert_eq!(told, 0, "their inbox goes with them");
    let disabled = crate::helpers::audit_actions(&app, "account.disable").await;
    assert!(
        disabled
            .iter()
            .any(|(_, d)| d.contains(&applicant.to_string()) && d.contains("retention")),
        "{disabled:?}"
    );
    assert_eq!(sweep(181, true).await.unwrap().applicants, 0, "once");
    // The application (the brigade's record), evidence and the audit log stay whole.
    assert_eq!(
        access_application::Entity::find().count(db).await.unwrap(),
        1
    );
    assert!(audit_event::Entity::find().count(db).await.unwrap() > events_before);
    let out = crate::cli::run(&["audit", "verify"], &app.env, "");
    assert!(out.status.success(), "{}", stderr(&out));
    // Someone else's account is untouched.
    let staff_acc = account::Entity::find_by_id(staff_id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(staff_acc.display_name, retention::REMOVED_NAME);
}

/// `gc` lists what retention would clear, and clears it with `--delete`.
#[tokio::test]
async fn gc_lists_and_clears_what_retention_finds() {
    let app = spawn_app().await;
    let long_ago = OffsetDateTime::now_utc() - time::Duration::days(3);
    login_throttle::Entity::insert(login_throttle::ActiveModel {
        address: Set("198.51.100.9".into()),
        window_start: Set(long_ago),
        failures: Set(1),
        blocked_until: Set(None),
    })
    .exec(&app.state.db)
    .await
    .unwrap();
    let out = crate::cli::run(&["gc"], &app.env, "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("due  1  sign-in throttle rows past their window  (retention)"),
        "{}",
        stdout(&out)
    );
    let out = crate::cli::run(&["gc", "--delete"], &app.env, "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("cleared  1  sign-in throttle rows"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        login_throttle::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap(),
        0
    );
}

/// Under systemd (`Type=notify`, `WatchdogSec=`): `READY=1` once listening, `WATCHDOG=1` at half
/// the interval while the database answers, `STOPPING=1` on SIGTERM.
#[tokio::test]
async fn under_systemd_serve_says_ready_feeds_the_watchdog_and_says_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let mut env = test_env(tmp.path()).await;
    let socket = tmp.path().join("notify.sock");
    let systemd = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    env.insert("NOTIFY_SOCKET".into(), socket.display().to_string());
    env.insert("WATCHDOG_USEC".into(), "400000".into());
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("AWS_")))
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut heard = Vec::new();
    let next = |heard: &mut Vec<String>| {
        let mut buf = [0u8; 512];
        let n = systemd.recv(&mut buf).expect("a notification within 60 s");
        let said = String::from_utf8_lossy(&buf[..n]).into_owned();
        heard.push(said.clone());
        said
    };
    while !next(&mut heard).contains("READY=1") {}
    let mut pings = 0;
    while pings < 3 {
        pings += usize::from(next(&mut heard).contains("WATCHDOG=1"));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    while !next(&mut heard).contains("STOPPING=1") {}
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?} after {heard:?}");
    assert!(heard[0].contains("READY=1"), "ready first: {heard:?}");
}
