//! The binary itself: usage errors, bad configuration, start-up failures, migrations,
//! create-admin, and graceful shutdown. Each failure must be one clear line, never a panic.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::helpers::{test_env, unwritable_dir};

const BIN: &str = env!("CARGO_BIN_EXE_evidence-portal");

pub fn run(args: &[&str], env: &HashMap<String, String>, stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(store_credentials())
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("binary finishes")
}

/// The S3 settings of this run (endpoint, keys), which `env_clear` would otherwise drop.
fn store_credentials() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Exactly one `error:` line naming `needle`, and no panic or backtrace.
fn assert_one_clear_line(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(out));
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(
        lines[0].contains(needle),
        "{:?} does not name {needle}",
        lines[0]
    );
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert!(!err.contains("RUST_BACKTRACE"), "stderr: {err}");
}

#[tokio::test]
async fn unknown_subcommands_and_flags_are_usage_errors() {
    let env = HashMap::new();
    for args in [
        &["frobnicate"][..],
        &["--frobnicate"],
        &["migrate", "sideways"],
        &["serve", "--port", "1"],
    ] {
        let out = run(args, &env, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("Usage"), "{args:?}: {}", stderr(&out));
    }
}

#[tokio::test]
async fn every_command_has_help() {
    let env = HashMap::new();
    for (args, expect) in [
        (&["--help"][..], "create-admin"),
        (&["serve", "--help"], "SIGTERM"),
        (&["migrate", "--help"], "status"),
        (&["create-admin", "--help"], "--password-stdin"),
    ] {
        let out = run(args, &env, "");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).contains(expect), "{args:?}: {}", stdout(&out));
    }
    // Each command's line of the overview describes that command.
    let help = stdout(&run(&["--help"], &env, ""));
    let line_of = |command: &str| {
        help.lines()
            .find(|l| l.trim_start().starts_with(&format!("{command} ")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line_of("audit").contains("audit log"), "{help}");
    assert!(line_of("create-admin").contains("administrator"), "{help}");
}

#[tokio::test]
async fn invalid_settings_exit_with_one_line_naming_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("PORTAL_BIND", "localhost"),
        ("PORTAL_DATABASE_URL", "mysql://db/portal"),
        ("PORTAL_DATABASE_URL", "not a url"),
        ("PORTAL_STORE_URL", "ftp://files/x"),
        ("PORTAL_STORE_URL", "s3:///no-bucket"),
        ("PORTAL_PUBLIC_URL", "evidence.example"),
        ("PORTAL_MAX_UPLOAD_BYTES", "huge"),
        ("PORTAL_METRICS_BIND", "9090"),
    ];
    for (var, value) in cases {
        let mut env = HashMap::new();
        env.insert(
            "PORTAL_DATA_DIR".to_owned(),
            tmp.path().display().to_string(),
        );
        env.insert(var.to_owned(), value.to_owned());
        let out = run(&["serve"], &env, "");
        assert_one_clear_line(&out, var);
    }
}

#[tokio::test]
async fn a_bad_config_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("portal.toml");
    std::fs::write(&file, "bind = \"127.0.0.1:0\"\nspeed = \"fast\"\n").unwrap();
    let out = run(
        &["--config", file.to_str().unwrap(), "serve"],
        &HashMap::new(),
        "",
    );
    assert_one_clear_line(&out, "--config");
    assert!(stderr(&out).contains("speed"), "{}", stderr(&out));

    let out = run(
        &["--config", "/nonexistent/portal.toml"],
        &HashMap::new(),
        "",
    );
    assert_one_clear_line(&out, "--config");
}

#[tokio::test]
async fn an_unwritable_data_directory_stops_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    let mut env = HashMap::new();
    env.insert(
        "PORTAL_DATA_DIR".to_owned(),
        unwritable_dir(tmp.path()).display().to_string(),
    );
    env.insert("PORTAL_BIND".to_owned(), "127.0.0.1:0".to_owned());
    let out = run(&["serve"], &env, "");
    assert_one_clear_line(&out, "secret key file");
}

#[tokio::test]
async fn an_unreachable_database_stops_start_up_without_showing_its_password() {
    let tmp = tempfile::tempdir().unwrap();
    let mut env = HashMap::new();
    env.insert(
        "PORTAL_DATA_DIR".to_owned(),
        tmp.path().display().to_string(),
    );
    env.insert("PORTAL_BIND".to_owned(), "127.0.0.1:0".to_owned());
    // Port 1 on loopback: nothing listens there.
    env.insert(
        "PORTAL_DATABASE_URL".to_owned(),
        "postgres://portal:hunter2secret@127.0.0.1:1/portal".to_owned(),
    );
    let out = run(&["serve"], &env, "");
    assert_one_clear_line(&out, "cannot open the database");
    assert!(!stderr(&out).contains("hunter2secret"), "{}", stderr(&out));
}

#[tokio::test]
async fn migrate_status_then_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let env = test_env(tmp.path()).await;
    let out = run(&["migrate", "status"], &env, "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = stdout(&out);
    assert!(before.lines().count() >= 3, "{before}");
    assert!(before.lines().all(|l| l.starts_with("pending")), "{before}");

    let out = run(&["migrate"], &env, "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = stdout(&out);
    assert!(after.lines().all(|l| l.starts_with("applied")), "{after}");
    assert!(after.contains("create_departments_and_accounts"), "{after}");
}

#[tokio::test]
async fn create_admin_refuses_weak_passwords_and_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let env = test_env(tmp.path()).await;
    let args = [
        "create-admin",
        "--username",
        "Admin.Wang",
        "--name",
        "王管理",
    ];

    for weak in ["short\n", "password123\n", "admin.wang-2026\n", "\n"] {
        let out = run(&args, &env, weak);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{weak:?} accepted: {}",
            stdout(&out)
        );
        assert!(!stderr(&out).contains("panicked"));
    }

    let out = run(&args, &env, "Quartz-河边-Falcon-42\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("created admin admin.wang"),
        "{}",
        stdout(&out)
    );

    // The same name in another case is the same account.
    let again = [
        "create-admin",
        "--username",
        "admin.WANG",
        "--name",
        "王管理",
    ];
    let out = run(&again, &env, "Another-Strong-Pass-77\n");
    assert_one_clear_line(&out, "already exists");

    let out = run(
        &["create-admin", "--username", "x", "--name", "X"],
        &env,
        "Quartz-河边-Falcon-42\n",
    );
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn serve_starts_on_defaults_and_stops_gracefully_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let env = test_env(tmp.path()).await;
    let mut child = Command::new(BIN)
        .env_clear()
        .envs(store_credentials())
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("a ready line before exit").unwrap();
        if let Some(i) = line.find("url=http://") {
            break line[i + 4..].split_whitespace().next().unwrap().to_owned();
        }
    };
    let client = crate::helpers::client();
    let res = client.get(format!("{url}readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        tmp.path().join("secret.key").exists(),
        "the key is generated in the data dir"
    );

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 30 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("portal stopped")),
        "{rest:?}"
    );
}

/// Instances started at the same moment on a fresh data directory (the review saw 18 crashes
/// in 30 rounds: one read a key file the other had created but not written): every one starts,
/// and they share one key. The directory, database and keys are private to the owner.
#[tokio::test]
async fn instances_starting_together_on_a_fresh_data_dir_agree() {
    use std::os::unix::fs::PermissionsExt;
    for round in 0..12 {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let mut env = test_env(&data).await;
        // Each round its own database on PostgreSQL; the two instances share it.
        env.insert("PORTAL_DATA_DIR".into(), data.display().to_string());
        let children: Vec<_> = (0..3)
            .map(|_| {
                Command::new(BIN)
                    .args(["gc"])
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .envs(store_credentials())
                    .envs(&env)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "round {round}: {}",
                stderr(&out)
            );
        }
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("secret.key")), 0o600);
        if !env.contains_key("PORTAL_DATABASE_URL") {
            assert_eq!(mode(&data.join("portal.db")), 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
