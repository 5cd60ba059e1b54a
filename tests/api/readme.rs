//! The README's shell examples, run as written where they can be: every ```` ```sh ```` block of
//! `README.md` is either run here (with the example's host, paths and placeholders replaced by
//! this test's) or named in [`NOT_RUN`] with the reason. A block added to the README and neither
//! run nor explained fails the test, so an example cannot go stale unnoticed.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::cases::{agent_with_token, served_case_with_party, staff_of};
use crate::helpers::{spawn_app, test_env};
use crate::materials::{PDF, decide, uploaded};

const BIN: &str = env!("CARGO_BIN_EXE_evidence-portal");

/// Blocks not run, by their first line, and why.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "export PORTAL_DATABASE_URL=postgres://portal",
        "production settings: the same code runs on PostgreSQL + S3 in .ci/run's second leg",
    ),
    (
        "PORTAL_TEST_DATABASE_URL=postgres://",
        "the test suite itself, as .ci/run starts it",
    ),
    (
        "bash tests/bench/setup.sh",
        "the benchmark: minutes of load, run by hand (never a timed test)",
    ),
    ("python3 tests/bench/render.py", "the benchmark, as above"),
    ("python3 tests/bench/hot.py", "the benchmark, as above"),
    (
        "cargo install s3s-fs",
        "the benchmark's scale-out run (an S3 server and two instances), run by hand",
    ),
];

/// The ```` ```sh ```` blocks of the README: (line of the fence, text).
fn shell_blocks(readme: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in readme.lines().enumerate() {
        match &mut current {
            None if line.trim_start() == "```sh" => current = Some((i + 1, String::new())),
            Some(_) if line.trim_start() == "```" => blocks.push(current.take().unwrap()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// `script` run by bash with `-e` in `dir`, with only `env` (and PATH, and the store's
/// credentials), off the runtime's thread: the server under test goes on serving meanwhile.
async fn bash(script: &str, dir: &Path, env: &HashMap<String, String>, stdin: &str) -> Output {
    let (script, dir, env, stdin) = (
        script.to_owned(),
        dir.to_owned(),
        env.clone(),
        stdin.to_owned(),
    );
    tokio::task::spawn_blocking(move || bash_blocking(&script, &dir, &env, &stdin))
        .await
        .unwrap()
}

fn bash_blocking(script: &str, dir: &Path, env: &HashMap<String, String>, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", script])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("AWS_")))
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("bash finishes")
}

fn succeeded(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The block starting with `first`, exactly as the README has it.
fn block<'b>(blocks: &'b [(usize, String)], first: &str) -> &'b str {
    let found: Vec<&(usize, String)> = blocks
        .iter()
        .filter(|(_, b)| b.starts_with(first))
        .collect();
    assert_eq!(found.len(), 1, "one README block starts with {first:?}");
    &found[0].1
}

#[tokio::test]
async fn every_shell_example_of_the_readme_is_run_or_says_why_not() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    let run_here = [
        "cargo run --release -- demo",
        "evidence-portal backup --to",
        "curl -f -o bundle.zip -C -",
        "unzip -q ",
    ];
    let unknown: Vec<String> = blocks
        .iter()
        .filter(|(_, b)| {
            !run_here.iter().any(|f| b.starts_with(f))
                && !NOT_RUN.iter().any(|(f, _)| b.starts_with(f))
        })
        .map(|(line, b)| format!("README.md:{line}: {}", b.lines().next().unwrap_or("")))
        .collect();
    assert!(
        unknown.is_empty(),
        "shell examples neither run by this test nor named in NOT_RUN with the reason: {unknown:#?}"
    );
    for (first, _) in NOT_RUN {
        block(&blocks, first);
    }

    // The first screen: `demo` then serve, safe to run twice. Serving is what every test does;
    // the demo's part runs here as written, twice.
    let quick_start = block(&blocks, run_here[0]);
    let first = quick_start.lines().next().unwrap();
    let demo = first
        .split('#')
        .next()
        .unwrap()
        .replace("cargo run --release --", BIN)
        .replace("&& cargo run --release", "");
    let installation = tempfile::tempdir().unwrap();
    let env = test_env(installation.path()).await;
    let once = succeeded("demo", &bash(&demo, installation.path(), &env, "").await);
    let twice = succeeded(
        "demo again",
        &bash(&demo, installation.path(), &env, "").await,
    );
    assert!(once.contains("is ready; sign in at"), "{once}");
    assert!(
        twice.contains("already there") && twice.contains("sign in at"),
        "the second run reports the sign-ins again: {twice}"
    );
    assert!(
        quick_start.contains("cargo test --workspace"),
        "the README's test command is the one .ci/run runs"
    );
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(
        ci.contains("cargo test --workspace"),
        ".ci/run calls the README's test command"
    );
}

#[tokio::test]
async fn the_readme_backup_and_restore_commands_work_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    let example = block(&blocks, "evidence-portal backup --to");

    let app = spawn_app().await;
    succeeded(
        "demo",
        &bash(&format!("{BIN} demo"), Path::new("."), &app.env, "").await,
    );
    let backups = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let passphrase_file = secrets.path().join("backup-passphrase");
    std::fs::write(&passphrase_file, "a long backup passphrase 2026\n").unwrap();
    // Paths first: they contain the program's name.
    let script = example
        .replace(
            "/var/backups/evidence-portal",
            &backups.path().display().to_string(),
        )
        .replace(
            "/etc/evidence-portal/backup-passphrase",
            &passphrase_file.display().to_string(),
        )
        .replace("evidence-portal ", &format!("{BIN} "));
    let lines: Vec<&str> = script.lines().collect();
    // Backup, then verify: into and from the directory, from the running installation.
    let taken = succeeded(
        "backup",
        &bash(lines[0], Path::new("."), &app.env, "").await,
    );
    let verified = succeeded(
        "backup verify",
        &bash(lines[1], Path::new("."), &app.env, "").await,
    );
    assert!(!taken.is_empty() && !verified.is_empty());
    // Restore: the example's backup name is the one just taken; the bracketed options are
    // optional (this installation's own settings name the database and store).
    let name = evidence_portal::backup::backups_in(backups.path()).unwrap();
    let name = name
        .last()
        .unwrap_or_else(|| panic!("a backup in {}: {taken}", backups.path().display()))
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let restore = format!("{}\n{}", lines[2], lines[3])
        .replace("20261207T183000.123Z", &name)
        .replace("[--to-database URL] [--to-store URL]", "");
    assert_ne!(
        restore,
        format!("{}\n{}", lines[2], lines[3]),
        "the README's restore example names a backup"
    );
    let empty = tempfile::tempdir().unwrap();
    let into = test_env(empty.path()).await;
    let restored = succeeded(
        "restore",
        &bash(
            &restore,
            Path::new("."),
            &into,
            "a long backup passphrase 2026\n",
        )
        .await,
    );
    assert!(!restored.is_empty());
    let audit = Command::new(BIN)
        .args(["audit", "verify"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("AWS_")))
        .envs(&into)
        .output()
        .unwrap();
    succeeded("audit verify of the restored installation", &audit);
}

#[tokio::test]
async fn the_readme_resume_and_offline_check_of_a_bundle_work_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    let app = spawn_app().await;
    let staff = staff_of(&app, "110105", "wang.li").await;
    let (case_id, party_id) = served_case_with_party(&staff).await;
    let id = uploaded(
        &staff,
        &case_id,
        "expert_opinion",
        "鉴定意见",
        "鉴定意见.pdf",
        PDF,
    )
    .await;
    decide(&staff, &case_id, &id, "release", &[]).await;
    let (_agent, token) = agent_with_token(&app, &staff, &case_id, &party_id).await;
    let dir = tempfile::tempdir().unwrap();
    let env = HashMap::from([("TOKEN".to_owned(), token), ("CASE".to_owned(), case_id)]);

    // The agent's `curl`, as written; then cut short and run again, it resumes.
    let resume = block(&blocks, "curl -f -o bundle.zip -C -")
        .replace("https://portal.example", &app.address);
    succeeded("curl", &bash(&resume, dir.path(), &env, "").await);
    let whole = std::fs::read(dir.path().join("bundle.zip")).unwrap();
    assert!(whole.len() > 1000, "a bundle of {} bytes", whole.len());
    std::fs::write(dir.path().join("bundle.zip"), &whole[..whole.len() / 2]).unwrap();
    succeeded("curl resuming", &bash(&resume, dir.path(), &env, "").await);
    assert_eq!(
        std::fs::read(dir.path().join("bundle.zip")).unwrap(),
        whole,
        "the resumed download is the whole bundle"
    );

    // Checking it offline, line by line as written (the bundle's name is the example's).
    let check = block(&blocks, "unzip -q ");
    let named = check.split_whitespace().nth(2).unwrap();
    std::fs::rename(dir.path().join("bundle.zip"), dir.path().join(named)).unwrap();
    let check = check.replace("https://portal.example", &app.address);
    let out = succeeded(
        "the offline check",
        &bash(&check, dir.path(), &env, "").await,
    );
    assert!(out.contains("manifest.json is the signed one"), "{out}");
    assert!(out.contains("Signature Verified Successfully"), "{out}");
}
