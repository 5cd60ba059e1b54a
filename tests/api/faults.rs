//! Faults through the running server: a database that cannot write in time and an object store
//! that stops answering are answered 503 with `Retry-After` within their deadlines (never a 500
//! after a long hang, never bytes without a durable event), and the instance recovers by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, TransactionTrait};

use crate::cases::served_case;
use crate::helpers::{TestApp, assert_status, header, spawn_app_with};
use crate::materials::{PDF, decide, uploaded};

/// A served case with one released PDF: (staff, party, case, material, download URL).
async fn released(app: &TestApp, number: &str) -> (TestApp, TestApp, String, String, String) {
    let (staff, party, case) = served_case(app, number).await;
    let id = uploaded(&staff, &case, "survey_record", "勘查笔录", "r.pdf", PDF).await;
    decide(&staff, &case, &id, "release", &[]).await;
    let url = format!("{}/cases/{case}/materials/{id}/download", app.address);
    (staff, party, case, id, url)
}

/// Another writer holds the database's write lock (SQLite) or the chain head's row lock
/// (PostgreSQL) longer than the 1 s database deadline: a download cannot be audited, so it is
/// refused with 503 and `Retry-After` in about that time, sending nothing; once the lock goes,
/// the next download works without a restart.
#[tokio::test]
async fn a_database_that_cannot_write_in_time_is_a_quick_503_and_recovers() {
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_DB_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let (_, party, _, _, url) = released(&app, "2026-F01").await;
    let db_url = app
        .env
        .get("PORTAL_DATABASE_URL")
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/portal.db", app.env["PORTAL_DATA_DIR"]));
    let other = sea_orm::Database::connect(&db_url).await.unwrap();
    let txn = other.begin().await.unwrap();
    txn.execute_unprepared("UPDATE audit_chain_head SET seq = seq WHERE id = 1")
        .await
        .unwrap();

    let started = Instant::now();
    let res = party.client.get(&url).send().await.unwrap();
    let took = started.elapsed();
    assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!header(&res, "retry-after").is_empty());
    assert!(took < Duration::from_secs(8), "{took:?}");
    let body = res.bytes().await.unwrap();
    assert!(
        !body.windows(PDF.len()).any(|w| w == PDF),
        "no evidence byte"
    );

    txn.rollback().await.unwrap();
    let res = party.client.get(&url).send().await.unwrap();
    assert_status(&res, StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().as_ref(), PDF);
}

/// A TCP proxy in front of the S3 server that can be made to hang (it accepts connections and
/// never answers, as a frozen store does) or to refuse (it closes every connection at once, as
/// a stopped one does).
async fn hanging_proxy(upstream: String) -> (String, Arc<AtomicBool>, Arc<AtomicBool>) {
    let hang = Arc::new(AtomicBool::new(false));
    let refuse = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let flag = hang.clone();
    let refusing = refuse.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            if refusing.load(Ordering::SeqCst) {
                drop(client);
                continue;
            }
            let hang = flag.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if hang.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_secs(120)).await;
                    return;
                }
                if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (address, hang, refuse)
}

/// The object store stops answering (S3 leg only; the local directory cannot hang): a
/// download, a bundle and an upload each answer 503 with `Retry-After` within the 2 s store
/// deadline plus a little, the download's access is recorded as failed, and all work again
/// once the store answers — without a restart.
#[tokio::test]
async fn a_hung_store_is_a_quick_503_and_recovers() {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT") else {
        eprintln!(
            "skipped: the store is a local directory (set PORTAL_TEST_STORE_URL and AWS_ENDPOINT)"
        );
        return;
    };
    if std::env::var("PORTAL_TEST_STORE_URL").is_err() {
        eprintln!("skipped: no S3 store in this leg");
        return;
    }
    let (proxy, hang, refuse) = hanging_proxy(endpoint).await;
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_STORE_TIMEOUT_SECONDS".into(), "2".into());
        env.insert("TEST_STORE_ENDPOINT".into(), proxy.clone());
    })
    .await;
    let (staff, party, case, _, url) = released(&app, "2026-F02").await;

    hang.store(true, Ordering::SeqCst);
    for target in [
        url.clone(),
        format!("{}/cases/{case}/bundle.zip", app.address),
    ] {
        let started = Instant::now();
        let res = party.client.get(&target).send().await.unwrap();
        let took = started.elapsed();
        assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!header(&res, "retry-after").is_empty());
        assert!(took < Duration::from_secs(9), "{target}: {took:?}");
    }
    let started = Instant::now();
    let res = crate::materials::upload(&staff, &case, "other", "x", "x.pdf", PDF).await;
    assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(9));
    let failed = crate::auth::events(&app, "transfer.end").await;
    assert!(
        failed
            .iter()
            .any(|e| e.outcome == "failed" && e.details.contains("\"bytes_sent\":0")),
        "{failed:?}"
    );

    hang.store(false, Ordering::SeqCst);
    let res = party.client.get(&url).send().await.unwrap();
    assert_status(&res, StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().as_ref(), PDF);

    // Refused connections: the same, quickly.
    refuse.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let res = party.client.get(&url).send().await.unwrap();
    assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(9));
    refuse.store(false, Ordering::SeqCst);
    let res = party.client.get(&url).send().await.unwrap();
    assert_status(&res, StatusCode::OK);
}

/// Unmounts the test's tmpfs however the test ends.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The review's critical finding, for real: the embedded portal (SQLite + directory) on a small
/// tmpfs, filled while eight clients download evidence. Every 200 with the file's bytes must
/// have its access event durably committed (checked after a restart, with the chain verified);
/// the refusals are 503s; once space returns the same process serves again. Needs root (mount),
/// so it is ignored by default and run by `.ci/run`.
#[tokio::test]
#[ignore = "needs root to mount a tmpfs; .ci/run runs it"]
async fn fault_disk_full_never_lets_evidence_out_unaudited() {
    use std::process::{Command, Stdio};
    const BIN: &str = env!("CARGO_BIN_EXE_evidence-portal");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a tmpfs (run as root)");
    let _mount = Mounted(data.clone());
    let port = free_port();
    let env = [
        ("PORTAL_DATA_DIR", data.display().to_string()),
        ("PORTAL_BIND", format!("127.0.0.1:{port}")),
        ("PORTAL_DB_TIMEOUT_SECONDS", "2".into()),
        ("RUST_LOG", "warn".into()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
    ];
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap()
    };
    assert!(run(&["demo"]).status.success());
    let serve = || {
        Command::new(BIN)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut server = serve();
    let base = format!("http://127.0.0.1:{port}");
    wait_up(&base).await;
    // Party 甲 of the demo signs in and picks a material of their case.
    let party = &evidence_portal::demo::LOGINS[1];
    let client = signed_in(&base, party.identifier, party.password).await;
    let mine = Spawned::get_text(&client, format!("{base}/cases")).await;
    let case = mine
        .split("href=\"/cases/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let page = Spawned::get_text(&client, format!("{base}/cases/{case}")).await;
    let link = page
        .split("href=\"")
        .find(|s| s.contains("/download\""))
        .map(|s| s.split('"').next().unwrap().to_owned())
        .unwrap();
    let url = format!("{base}{link}");
    let whole = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    assert!(whole > 0);

    // Eight clients download for 8 s; after 1 s the disk is filled, and freed 4 s later.
    let full_bodies = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            let (full_bodies, refused, stop) = (full_bodies.clone(), refused.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let Ok(res) = client.get(&url).send().await else {
                        continue;
                    };
                    let status = res.status();
                    let body = res.bytes().await.map(|b| b.len()).unwrap_or(0);
                    if status == StatusCode::OK && body == whole {
                        full_bodies.fetch_add(1, Ordering::SeqCst);
                    } else if status == StatusCode::SERVICE_UNAVAILABLE {
                        refused.fetch_add(1, Ordering::SeqCst);
                    } else {
                        assert!(
                            status != StatusCode::OK || body == 0,
                            "{status} with {body} bytes"
                        );
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let filler = data.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let refused_while_full = refused.load(Ordering::SeqCst);
    std::fs::remove_file(&filler).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    // Recovered without a restart.
    let mut recovered = false;
    for _ in 0..50 {
        let res = client.get(&url).send().await.unwrap();
        if res.status() == StatusCode::OK && res.bytes().await.unwrap().len() == whole {
            full_bodies.fetch_add(1, Ordering::SeqCst);
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the instance serves again once space returns");
    assert!(refused_while_full > 0, "the full disk was noticed (503s)");

    // After a restart: every 200 with the whole file has its committed access event.
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
    let out = run(&["audit", "export", "--format", "jsonl", "--case", &case]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let allowed_downloads = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"material.download\"") && l.contains("\"allowed\""))
        .count();
    let served = full_bodies.load(Ordering::SeqCst) + 1; // and the first download
    assert!(
        allowed_downloads >= served,
        "{served} downloads answered 200 in full, {allowed_downloads} access events committed"
    );
    let verify = run(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    server = serve();
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
}

/// An upload into a full store is refused with 507 and a message for the officer (not "try
/// again"), and nothing of it stays. The object directory is a 4 MiB tmpfs; needs root.
#[tokio::test]
#[ignore = "needs root to mount a tmpfs; .ci/run runs it"]
async fn fault_upload_into_a_full_store_is_507() {
    let tmp = tempfile::tempdir().unwrap();
    let objects = tmp.path().join("objects");
    std::fs::create_dir_all(&objects).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&objects)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a tmpfs (run as root)");
    let _mount = Mounted(objects.clone());
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_STORE_URL".into(), objects.display().to_string());
        env.remove("PORTAL_TEST_STORE_URL");
    })
    .await;
    let (staff, _, case) = served_case(&app, "2026-F03").await;
    let mut big = PDF.to_vec();
    big.resize(6 * 1024 * 1024, b' ');
    let res = crate::materials::upload(&staff, &case, "other", "大文件", "big.pdf", &big).await;
    assert_status(&res, StatusCode::INSUFFICIENT_STORAGE);
    let body = res.text().await.unwrap();
    assert!(body.contains("storage_full"), "{body}");
    let left: Vec<_> = walk(&objects)
        .into_iter()
        .filter(|p| !p.starts_with(objects.join("_portal")))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A small one still fits.
    let res = crate::materials::upload(&staff, &case, "other", "小文件", "s.pdf", PDF).await;
    assert_status(&res, StatusCode::CREATED);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The portal binary in a process of its own, on its own data directory (and, in the production
/// leg, its own database and key prefix), seeded with the demo: for tests that kill it.
struct Spawned {
    base: String,
    env: std::collections::HashMap<String, String>,
    child: Option<std::process::Child>,
    _data: tempfile::TempDir,
}

impl Spawned {
    const BIN: &'static str = env!("CARGO_BIN_EXE_evidence-portal");

    async fn demo(extra: &[(&str, &str)]) -> Spawned {
        let data = tempfile::tempdir().unwrap();
        let mut env = crate::helpers::test_env(data.path()).await;
        let port = free_port();
        env.insert("PORTAL_BIND".into(), format!("127.0.0.1:{port}"));
        env.insert("RUST_LOG".into(), "warn".into());
        env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
        env.extend(std::env::vars().filter(|(k, _)| k.starts_with("AWS_")));
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let mut spawned = Spawned {
            base: format!("http://127.0.0.1:{port}"),
            env,
            child: None,
            _data: data,
        };
        let demo = spawned.run(&["demo"]);
        assert!(
            demo.status.success(),
            "{}",
            String::from_utf8_lossy(&demo.stderr)
        );
        spawned.start().await;
        spawned
    }

    fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(Self::BIN)
            .args(args)
            .env_clear()
            .envs(&self.env)
            .output()
            .unwrap()
    }

    async fn start(&mut self) {
        let child = std::process::Command::new(Self::BIN)
            .env_clear()
            .envs(&self.env)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_up(&self.base).await;
    }

    fn kill(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    async fn get_text(client: &reqwest::Client, url: String) -> String {
        client.get(url).send().await.unwrap().text().await.unwrap()
    }

    /// The demo case's id, as its staff member sees it.
    async fn demo_case(&self, staff: &reqwest::Client) -> String {
        Self::get_text(staff, format!("{}/staff/cases", self.base))
            .await
            .split("href=\"/staff/cases/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .find(|id| uuid::Uuid::parse_str(id).is_ok())
            .unwrap()
            .to_owned()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill("-TERM");
    }
}

/// What interrupted uploads left in the store of `portal`: staging files (`…#N`) in a
/// directory store, the notes of incomplete multipart uploads on S3.
async fn interrupted_leftovers(portal: &Spawned) -> Vec<String> {
    let settings = crate::helpers::settings_from(&portal.env);
    if matches!(
        settings.store_url,
        evidence_portal::config::StoreUrl::S3 { .. }
    ) {
        let store = evidence_portal::store::Store::open(&settings.store_url, &[]).unwrap();
        return store.keys_under("_portal/uploads").await.unwrap();
    }
    walk(&portal.data_dir().join("objects"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains('#'))
        .map(|p| p.display().to_string())
        .collect()
}

/// A process killed in the middle of a large upload leaves an incomplete upload in the store —
/// a staging file (`…#N`, which object_store's listing never shows) in a directory store, an
/// incomplete multipart upload on S3 (noted by the portal when it began): `gc` lists it as an
/// interrupted upload, and removes (aborts) it with `--delete`.
#[tokio::test]
async fn gc_finds_what_an_upload_killed_midway_left() {
    let mut portal = Spawned::demo(&[]).await;
    let base = portal.base.clone();
    let logins = &evidence_portal::demo::LOGINS;
    let staff = signed_in(&base, logins[0].identifier, logins[0].password).await;
    let case = portal.demo_case(&staff).await;
    let page = Spawned::get_text(&staff, format!("{base}/staff/cases/{case}")).await;
    let csrf = crate::helpers::csrf_in(&page);

    // 12 MiB of a PDF, sent as it comes; the server is killed after 8 MiB.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let head = b"--XyZ\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nother\r\n--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nbig\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"v.pdf\"\r\n\r\n".to_vec();
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let upload = tokio::spawn({
        let url = format!("{base}/staff/cases/{case}/materials");
        async move {
            let _ = staff
                .post(url)
                .header("X-CSRF-Token", csrf)
                .header("Content-Type", "multipart/form-data; boundary=XyZ")
                .body(body)
                .send()
                .await;
        }
    });
    tx.send(Ok(head)).await.unwrap();
    let mut first = PDF.to_vec();
    first.resize(1024 * 1024, b' ');
    tx.send(Ok(first)).await.unwrap();
    for _ in 0..7 {
        tx.send(Ok(vec![b' '; 1024 * 1024])).await.unwrap();
    }
    // Until the store holds the unfinished upload.
    let mut left = Vec::new();
    for _ in 0..100 {
        left = interrupted_leftovers(&portal).await;
        if !left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!left.is_empty(), "an unfinished upload while it runs");
    portal.kill("-9");
    drop(tx);
    let _ = upload.await;
    assert_eq!(
        interrupted_leftovers(&portal).await,
        left,
        "left behind by the dead process"
    );

    let gc = |args: &[&str]| {
        let out = portal.run(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = gc(&["gc", "--min-age-minutes", "0"]);
    assert!(listed.contains("1 interrupted upload(s)"), "{listed}");
    assert_eq!(
        interrupted_leftovers(&portal).await,
        left,
        "a dry run removes nothing"
    );
    let young = gc(&["gc"]);
    assert!(
        young.contains("0 interrupted upload(s)"),
        "younger than an hour: left: {young}"
    );
    let removed = gc(&["gc", "--delete", "--min-age-minutes", "0"]);
    assert!(removed.contains("1 interrupted upload(s)"), "{removed}");
    assert!(interrupted_leftovers(&portal).await.is_empty(), "removed");
    let again = gc(&["gc", "--min-age-minutes", "0"]);
    assert!(again.contains("0 interrupted upload(s)"), "{again}");
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A signed-in client of a portal process started by a test.
async fn signed_in(base: &str, identifier: &str, password: &str) -> reqwest::Client {
    let client = crate::helpers::client();
    let html = client
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::helpers::csrf_in(&html);
    let res = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("identifier", identifier),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::SEE_OTHER);
    // The demo's officer passes the second factor with the demo app's key.
    if crate::helpers::header(&res, "location").starts_with("/staff") {
        let page = client
            .get(format!("{base}/login/second-factor"))
            .send()
            .await
            .unwrap();
        // The code of the portal's own clock (its `Date`): the process runs without the test's
        // faked time.
        let date = page.headers()["date"].to_str().unwrap().to_owned();
        let at = time::OffsetDateTime::parse(&date, &time::format_description::well_known::Rfc2822)
            .unwrap();
        let html = page.text().await.unwrap();
        let code = evidence_portal::auth::second_factor::code_at(
            evidence_portal::demo::STAFF_TOTP_SECRET,
            at,
        )
        .unwrap();
        let res = client
            .post(format!("{base}/login/second-factor"))
            .form(&[
                ("csrf_token", crate::helpers::csrf_in(&html).as_str()),
                ("code", code.as_str()),
                ("next", ""),
            ])
            .send()
            .await
            .unwrap();
        assert_status(&res, StatusCode::SEE_OTHER);
    }
    client
}

async fn wait_up(base: &str) {
    for _ in 0..100 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the portal did not come up");
}

/// The process serving a download is killed (SIGKILL) in the middle of it: the transfer's end
/// can never be recorded by it. The next instance sees the heartbeat stop and closes the
/// transfer as interrupted, and the party's history says "interrupted", not "downloaded".
#[tokio::test]
async fn a_download_cut_by_a_killed_process_is_closed_as_interrupted() {
    let mut portal = Spawned::demo(&[("PORTAL_HEARTBEAT_SECONDS", "1")]).await;
    let base = portal.base.clone();

    // Staff upload and release a 24 MiB PDF on the demo case.
    let logins = &evidence_portal::demo::LOGINS;
    let staff = signed_in(&base, logins[0].identifier, logins[0].password).await;
    let case = portal.demo_case(&staff).await;
    let page = Spawned::get_text(&staff, format!("{base}/staff/cases/{case}")).await;
    let csrf = crate::helpers::csrf_in(&page);
    let mut big = PDF.to_vec();
    big.resize(24 * 1024 * 1024, b' ');
    let form = reqwest::multipart::Form::new()
        .text("kind", "other")
        .text("title", "大文件")
        .part(
            "file",
            reqwest::multipart::Part::bytes(big).file_name("big.pdf"),
        );
    let res = staff
        .post(format!("{base}/staff/cases/{case}/materials"))
        .header("X-CSRF-Token", &csrf)
        .header("Accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::CREATED);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = staff
        .post(format!("{base}/staff/cases/{case}/materials/{id}/release"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::SEE_OTHER);

    // The party starts downloading it, reads a little, and the server dies.
    let party = signed_in(&base, logins[1].identifier, logins[1].password).await;
    let mut res = party
        .get(format!("{base}/cases/{case}/materials/{id}/download"))
        .send()
        .await
        .unwrap();
    assert_status(&res, StatusCode::OK);
    let mut got = 0;
    while got < 256 * 1024 {
        got += res.chunk().await.unwrap().unwrap().len();
    }
    portal.kill("-9");
    drop(res);

    // The next start notices the silence and closes the transfer.
    portal.start().await;
    let mut closed = None;
    for _ in 0..40 {
        let out = portal.run(&["audit", "export", "--format", "jsonl", "--case", &case]);
        closed = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| {
                e["action"] == "transfer.end"
                    && e["details"]
                        .as_str()
                        .is_some_and(|d| d.contains("\"interrupted\":true"))
            });
        if closed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let closed = closed.expect("the cut download is closed as interrupted");
    assert_eq!(closed["outcome"], "failed");
    let party = signed_in(&base, logins[1].identifier, logins[1].password).await;
    let history = Spawned::get_text(&party, format!("{base}/cases/{case}")).await;
    assert!(history.contains("下载中断"), "the history says interrupted");
}

/// A transfer's end that arrives while the database cannot write is retried until it can: it is
/// not lost (it was fire-and-forget).
#[tokio::test]
async fn a_transfer_end_outlives_a_database_outage() {
    use evidence_portal::audit::{Action, Actor, Event, Outcome};
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_DB_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let db_url = app
        .env
        .get("PORTAL_DATABASE_URL")
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/portal.db", app.env["PORTAL_DATA_DIR"]));
    // A first event, so the chain head row exists to be locked.
    app.state
        .audit
        .record(Event::new(
            Actor::SYSTEM,
            Action::CaseView,
            Outcome::Allowed,
        ))
        .await
        .unwrap();
    let other = sea_orm::Database::connect(&db_url).await.unwrap();
    let txn = other.begin().await.unwrap();
    txn.execute_unprepared("UPDATE audit_chain_head SET seq = seq WHERE id = 1")
        .await
        .unwrap();
    let event = Event::new(Actor::SYSTEM, Action::TransferEnd, Outcome::Allowed)
        .details(serde_json::json!({ "of": 1, "completed": true, "marker": "outlives" }));
    evidence_portal::audit::transfers::record_end(app.state.audit.clone(), event);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = crate::auth::events(&app, "transfer.end").await;
    assert!(
        !before.iter().any(|e| e.details.contains("outlives")),
        "held back by the lock"
    );
    txn.rollback().await.unwrap();
    let mut after = Vec::new();
    for _ in 0..80 {
        after = crate::auth::events(&app, "transfer.end").await;
        if after.iter().any(|e| e.details.contains("outlives")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        after.iter().any(|e| e.details.contains("outlives")),
        "recorded once the database could write"
    );
}

/// A private PostgreSQL cluster on its own port, dropped when the test ends.
struct PrivateCluster {
    version: String,
    name: String,
    port: u16,
}

impl PrivateCluster {
    fn create() -> PrivateCluster {
        use std::process::Command;
        let version = std::fs::read_dir("/etc/postgresql")
            .expect("PostgreSQL from Debian")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .max()
            .unwrap();
        let name = format!("fault{}", std::process::id());
        let port = free_port();
        let ok = Command::new("pg_createcluster")
            .args([
                &version,
                &name,
                "-p",
                &port.to_string(),
                "--start",
                "--",
                "--auth=trust",
            ])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        PrivateCluster {
            version,
            name,
            port,
        }
    }

    fn ctl(&self, action: &str) {
        let ok = std::process::Command::new("pg_ctlcluster")
            .args([&self.version, &self.name, action, "-m", "immediate"])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{action}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }

    /// SIGSTOP (or SIGCONT) to the postmaster and every backend: a hung database.
    fn signal(&self, signal: &str) {
        let pid_file = format!("/var/run/postgresql/{}-{}.pid", self.version, self.name);
        let pid = std::fs::read_to_string(pid_file).unwrap().trim().to_owned();
        let _ = std::process::Command::new("pkill")
            .args([signal, "-P", &pid])
            .status();
        let _ = std::process::Command::new("kill")
            .args([signal, &pid])
            .status();
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = std::process::Command::new("pg_dropcluster")
            .args([&self.version, &self.name, "--stop"])
            .status();
    }
}

/// The database stopped, then frozen (SIGSTOP), on a private PostgreSQL cluster: every answer is
/// a 503 with `Retry-After` within its deadline (refused: about the 1 s database deadline; hung:
/// the 13 s answer deadline at most), no evidence byte goes out, and the instance recovers by
/// itself each time the database is back. Needs root (pg_createcluster).
#[tokio::test]
#[ignore = "needs root to create a PostgreSQL cluster; .ci/run runs it"]
async fn fault_postgresql_stopped_and_frozen() {
    let cluster = PrivateCluster::create();
    let admin_url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared("CREATE DATABASE portal")
        .await
        .unwrap();
    let _ = admin.close().await;
    let url = format!("postgres://postgres@127.0.0.1:{}/portal", cluster.port);
    let app = spawn_app_with(|env| {
        env.insert("PORTAL_DATABASE_URL".into(), url.clone());
        env.insert("PORTAL_DB_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let (_, party, case, _, url) = released(&app, "2026-F04").await;
    let page = format!("{}/cases/{case}", app.address);
    let refused_quickly = |limit: Duration| {
        let party = &party;
        let (url, page) = (url.clone(), page.clone());
        async move {
            for target in [&url, &page] {
                let started = Instant::now();
                let res = party.client.get(target).send().await;
                let took = started.elapsed();
                let res = res.unwrap_or_else(|e| panic!("{target} after {took:?}: {e}"));
                assert_status(&res, StatusCode::SERVICE_UNAVAILABLE);
                assert!(!header(&res, "retry-after").is_empty());
                assert!(took < limit, "{target}: {took:?}");
                let body = res.bytes().await.unwrap();
                assert!(!body.windows(PDF.len()).any(|w| w == PDF));
            }
        }
    };
    let recovers = || {
        let party = &party;
        let url = url.clone();
        async move {
            for _ in 0..60 {
                // A connection the server closed as the database came back (seen once in CI:
                // "IncompleteMessage" on a reused keep-alive connection) is retried like any
                // client would; the assertion is that a whole download comes back.
                let Ok(res) = party.client.get(&url).send().await else {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                };
                if res.status() == StatusCode::OK {
                    assert_eq!(res.bytes().await.unwrap().as_ref(), PDF);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            panic!("no recovery");
        }
    };

    cluster.ctl("stop");
    eprintln!("stopped");
    refused_quickly(Duration::from_secs(6)).await;
    eprintln!("refused while stopped");
    cluster.ctl("start");
    recovers().await;

    eprintln!("recovered");
    cluster.signal("-STOP");
    eprintln!("frozen");
    refused_quickly(Duration::from_secs(16)).await;
    cluster.signal("-CONT");
    recovers().await;
}

/// Two instances on one database and one store (PostgreSQL and S3 in the production leg) under
/// eight parallel clients alternating between them for three seconds: every download answered in
/// full has its access event, the events of both make one gapless chain that verifies, and a
/// session made on one instance works on the other.
#[tokio::test]
async fn two_instances_under_load_keep_one_chain_and_audit_every_download() {
    use std::sync::atomic::AtomicUsize;
    let dir = tempfile::tempdir().unwrap();
    let env = crate::helpers::test_env(dir.path()).await;
    let a = crate::helpers::spawn_with_env(env.clone(), tempfile::tempdir().unwrap()).await;
    let b = crate::helpers::spawn_with_env(env, tempfile::tempdir().unwrap()).await;
    let (_, party, _, id, url_a) = released(&a, "2026-F05").await;
    let url_b = url_a.replace(&a.address, &b.address);
    let served = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(3);
    let clients: Vec<_> = (0..8)
        .map(|n| {
            let client = party.client.clone();
            let url = if n % 2 == 0 {
                url_a.clone()
            } else {
                url_b.clone()
            };
            let served = served.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let res = client.get(&url).send().await.unwrap();
                    assert_eq!(res.status(), StatusCode::OK, "{url}");
                    assert_eq!(res.bytes().await.unwrap().as_ref(), PDF);
                    served.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let served = served.load(Ordering::SeqCst);
    assert!(served > 50, "{served}");
    let downloads = crate::auth::events(&a, "material.download")
        .await
        .into_iter()
        .filter(|e| e.material_id.map(|m| m.to_string()) == Some(id.clone()))
        .count();
    assert!(downloads >= served, "{served} served, {downloads} audited");
    let instances: std::collections::HashSet<String> = crate::auth::events(&a, "material.download")
        .await
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.details).ok())
        .filter_map(|d| d["instance"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(instances.len(), 2, "both instances served");
    let verified = evidence_portal::audit::verify(&b.state.db).await.unwrap();
    assert!(verified.events as usize >= served);
}
