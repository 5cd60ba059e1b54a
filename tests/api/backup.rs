//! `backup`, `backup verify` and `restore` (issue 33): a backup taken while the portal serves
//! restores into an empty installation that verifies end to end — objects, the audit chain with
//! the restore recorded, a party's download — and a corrupted backup is refused with the reason.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use sha2::Digest;

use evidence_portal::store::{ObjectKey, Store};

use crate::cli::{stderr, stdout};
use crate::helpers::{TestApp, assert_status, client, spawn_app, spawn_with_env, test_env};

const PASSPHRASE: &str = "a long backup passphrase 2026\n";
const PARTY: (&str, &str) = ("110101199003070011", "Demo-Party-甲-2026");

/// Runs the binary off the runtime's threads, so the server goes on serving meanwhile.
async fn run(args: &[&str], env: &HashMap<String, String>, stdin: &str) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let (env, stdin) = (env.clone(), stdin.to_owned());
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::cli::run(&args, &env, &stdin)
    })
    .await
    .unwrap()
}

fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(out));
    stdout(out)
}

/// Exit 1, with the reason on standard error.
fn refused(out: &Output, reason: &str) {
    assert_eq!(out.status.code(), Some(1), "stdout: {}", stdout(out));
    assert!(
        stderr(out).contains(reason),
        "{:?} does not say {reason:?}",
        stderr(out)
    );
    assert!(!stderr(out).contains("panicked"), "{}", stderr(out));
}

fn backups(target: &Path) -> Vec<PathBuf> {
    evidence_portal::backup::backups_in(target).unwrap()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

/// The demo party signed in, with the released materials of their case.
async fn party_and_materials(app: &TestApp) -> (TestApp, String, Vec<String>) {
    let party = app.with_client(client());
    crate::auth::sign_in(&party, PARTY.0, PARTY.1).await;
    let mine = party.get("/cases").await.text().await.unwrap();
    let case_id = mine
        .split("/cases/")
        .nth(1)
        .expect("the party sees their case")
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let page = party
        .get(&format!("/cases/{case_id}"))
        .await
        .text()
        .await
        .unwrap();
    let ids: std::collections::BTreeSet<String> = page
        .split("/materials/")
        .skip(1)
        .map(|s| s.split(['/', '"']).next().unwrap().to_owned())
        .collect();
    (party, case_id, ids.into_iter().collect())
}

/// Downloads every material; each one's bytes hash to its ETag. Returns the hashes.
async fn download_all(party: &TestApp, case_id: &str, ids: &[String]) -> Vec<String> {
    let mut hashes = Vec::new();
    for id in ids {
        let res = party
            .get(&format!("/cases/{case_id}/materials/{id}/download"))
            .await;
        assert_status(&res, StatusCode::OK);
        let etag = crate::helpers::header(&res, "etag")
            .trim_matches('"')
            .to_owned();
        let bytes = res.bytes().await.unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), etag);
        hashes.push(etag);
    }
    hashes
}

async fn materials(db: &DatabaseConnection) -> Vec<(String, String)> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT object_key, sha256 FROM materials ORDER BY object_key",
    ))
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.try_get::<String>("", "object_key").unwrap(),
            r.try_get::<String>("", "sha256").unwrap(),
        )
    })
    .collect()
}

/// A staff upload whose body trickles — 16 KiB every 100 ms, generated as it goes, never whole
/// in memory — and ends only once `until` is set. What it sent is hashed into `sent`;
/// `chunks` counts the chunks sent so far.
struct Trickle {
    until: Arc<AtomicBool>,
    chunks: Arc<AtomicUsize>,
    sent: Arc<Mutex<(sha2::Sha256, u64)>>,
}

impl Trickle {
    fn new() -> Trickle {
        Trickle {
            until: Arc::default(),
            chunks: Arc::default(),
            sent: Arc::new(Mutex::new((sha2::Sha256::new(), 0))),
        }
    }

    /// Starts the upload of a video to the demo case as its officer; the task answers the new
    /// material's id.
    async fn start(&self, app: &TestApp, case_id: &str) -> tokio::task::JoinHandle<String> {
        let officer = app.with_client(client());
        crate::helpers::enrolled_elsewhere(
            &app.address,
            "demo.wangli",
            evidence_portal::demo::STAFF_TOTP_SECRET,
            0,
        );
        crate::auth::sign_in(&officer, "demo.wangli", "Demo-Staff-河桥-2026").await;
        let url = format!("{}/staff/cases/{case_id}", app.address);
        let page = officer.get(&format!("/staff/cases/{case_id}")).await;
        assert_status(&page, StatusCode::OK);
        let csrf = crate::helpers::csrf_in(&page.text().await.unwrap());
        let (until, chunks, sent) = (self.until.clone(), self.chunks.clone(), self.sent.clone());
        let body = futures_util::stream::unfold(0u64, move |i| {
            let (until, chunks, sent) = (until.clone(), chunks.clone(), sent.clone());
            async move {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if i >= 3 && until.load(Ordering::SeqCst) {
                    return None;
                }
                let mut chunk = vec![0u8; 16 * 1024];
                let mut x = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for b in chunk.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
                if i == 0 {
                    let head: &[u8] = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom";
                    chunk[..head.len()].copy_from_slice(head);
                }
                let mut hashed = sent.lock().unwrap();
                hashed.0.update(&chunk);
                hashed.1 += chunk.len() as u64;
                drop(hashed);
                chunks.fetch_add(1, Ordering::SeqCst);
                Some((Ok::<_, std::io::Error>(chunk), i + 1))
            }
        });
        let form = reqwest::multipart::Form::new()
            .text("kind", "video")
            .text("title", "上传中的行车记录仪视频")
            .part(
                "file",
                reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(body))
                    .file_name("行车记录仪.mp4"),
            );
        tokio::spawn(async move {
            let res = officer
                .client
                .post(format!("{url}/materials"))
                .header("X-CSRF-Token", csrf)
                .header("Accept", "application/json")
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert_status(&res, StatusCode::CREATED);
            res.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
    }

    /// The size and SHA-256 of what was sent.
    fn sent(&self) -> (u64, String) {
        let sent = self.sent.lock().unwrap();
        (sent.1, hex::encode(sent.0.clone().finalize()))
    }
}

/// The size and SHA-256 of an object, streamed.
async fn object_hash(store: &Store, key: &str) -> Option<(u64, String)> {
    let fetched = store
        .get(&ObjectKey::from_stored(key).unwrap(), None)
        .await
        .ok()?;
    let (mut sha, mut size, mut body) = (sha2::Sha256::new(), 0u64, fetched.body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        size += chunk.len() as u64;
        sha.update(&chunk);
    }
    Some((size, hex::encode(sha.finalize())))
}

/// The object store an installation's variables name.
fn store_of(env: &HashMap<String, String>) -> Store {
    let settings = crate::helpers::settings_from(env);
    Store::open(&settings.store_url, &settings.store_options).unwrap()
}

/// Copies the audit checkpoints of one store into another (all, or only the newest); returns
/// the keys copied.
async fn copy_checkpoints(from: &Store, to: &Store, only_newest: bool) -> Vec<String> {
    let mut keys = from.keys_under("audit/checkpoints").await.unwrap();
    keys.sort();
    if only_newest {
        keys = keys.split_off(keys.len() - 1);
    }
    for key in &keys {
        let key = ObjectKey::from_stored(key).unwrap();
        let bytes = from.get_small(&key).await.unwrap();
        to.put_small(&key, bytes).await.unwrap();
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_into_an_empty_installation_that_verifies() {
    let app = spawn_app().await;
    ok(&run(&["demo"], &app.env, "").await);
    let (party, case_id, ids) = party_and_materials(&app).await;
    assert!(ids.len() >= 3, "{ids:?}");

    // Downloads go on while the backup is taken, and an upload is in flight: it starts before
    // the backup and its body ends only after the backup has ended.
    let upload = Trickle::new();
    let uploading = upload.start(&app, &case_id).await;
    while upload.chunks.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let target = tempfile::tempdir().unwrap();
    let to = target.path().display().to_string();
    let downloading = {
        let (party, case_id, ids) = (
            party.with_client(party.client.clone()),
            case_id.clone(),
            ids.clone(),
        );
        tokio::spawn(async move {
            for _ in 0..5 {
                download_all(&party, &case_id, &ids).await;
            }
        })
    };
    let out = run(
        &["backup", "--to", &to, "--passphrase-stdin"],
        &app.env,
        PASSPHRASE,
    )
    .await;
    let printed = ok(&out);
    assert!(printed.contains("keys: included"), "{printed}");
    assert!(
        !uploading.is_finished(),
        "the upload was in flight all through the backup"
    );
    upload.until.store(true, Ordering::SeqCst);
    let in_flight = uploading.await.unwrap();
    downloading.await.unwrap();
    // The upload is whole on the original.
    let (size, sha256) = upload.sent();
    let (key, recorded) = materials(&app.state.db)
        .await
        .into_iter()
        .find(|(k, _)| k.ends_with(&format!("/{in_flight}")))
        .expect("the upload is recorded");
    assert_eq!(recorded, sha256);
    assert_eq!(
        object_hash(&store_of(&app.env), &key).await,
        Some((size, sha256.clone()))
    );
    let taken = backups(target.path());
    assert_eq!(taken.len(), 1);
    let backup = taken[0].display().to_string();
    let printed = ok(&run(&["backup", "verify", &backup], &app.env, "").await);
    assert!(
        printed.contains("verified") && printed.contains("this installation's key"),
        "{printed}"
    );

    // Events after the backup, anchored by a checkpoint: the restore will lose them.
    download_all(&party, &case_id, &ids).await;
    ok(&run(&["audit", "verify"], &app.env, "").await);

    // A fresh installation that still has the store's checkpoints (the database was lost).
    let fresh = tempfile::tempdir().unwrap();
    let env = test_env(fresh.path()).await;
    let (theirs, ours) = (store_of(&app.env), store_of(&env));
    assert!(!copy_checkpoints(&theirs, &ours, false).await.is_empty());
    refused(
        &run(&["restore", "--from", &backup], &env, "").await,
        "passphrase",
    );
    let printed = ok(&run(
        &["restore", "--from", &backup, "--passphrase-stdin"],
        &env,
        PASSPHRASE,
    )
    .await);
    assert!(printed.contains("recorded as event"), "{printed}");
    let verified = ok(&run(&["audit", "verify"], &env, "").await);
    assert!(
        verified.contains("restored from a backup of") && verified.contains("verified"),
        "{verified}"
    );
    assert!(printed.contains("were lost"), "{printed}");
    assert!(
        verified.contains("events after it were lost in the restore of")
            && verified.contains("event(s)"),
        "{verified}"
    );
    // The health check takes the restore's explanation too.
    let health = stdout(&run(&["healthcheck"], &env, "").await);
    let audit = health
        .lines()
        .find(|l| l.starts_with("audit"))
        .unwrap_or_default();
    assert!(
        audit.contains(" ok ") && audit.contains("restored"),
        "{health}"
    );
    // A checkpoint newer than the restore knew is still a gap: the tampering verdict.
    download_all(&party, &case_id, &ids).await;
    ok(&run(&["audit", "verify"], &app.env, "").await);
    let planted = copy_checkpoints(&theirs, &ours, true).await;
    let out = run(&["audit", "verify"], &env, "").await;
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stderr(&out).contains("missing"), "{}", stderr(&out));
    ours.delete(&ObjectKey::from_stored(&planted[0]).unwrap())
        .await
        .unwrap();

    // A restore into an installation that has data is refused.
    refused(
        &run(
            &["restore", "--from", &backup, "--passphrase-stdin"],
            &app.env,
            PASSPHRASE,
        )
        .await,
        "not empty",
    );

    // The restored installation serves: the party signs in and downloads every material, and
    // every material's hash is the original's.
    let restored = spawn_with_env(env, fresh).await;
    // The upload in flight is whole or absent: never a row without its object. (Its body
    // ended after the backup, so it is absent here: no row, and no object of it either.)
    let mut expected = materials(&app.state.db).await;
    let now = materials(&restored.state.db).await;
    if !now.contains(&(key.clone(), sha256.clone())) {
        expected.retain(|(k, _)| *k != key);
        assert_eq!(
            object_hash(&ours, &key).await,
            None,
            "an object without its row"
        );
    }
    assert_eq!(now, expected);
    for (key, sha) in &now {
        let (_, found) = object_hash(&ours, key)
            .await
            .expect("every row has its object");
        assert_eq!(&found, sha, "{key}");
    }
    let (party, case_id, again) = party_and_materials(&restored).await;
    assert_eq!(again, ids);
    let hashes = download_all(&party, &case_id, &ids).await;
    // Administrators see the restore where they verify the chain.
    let root = crate::auth::admin(&restored).await;
    let csrf = root.csrf_from("/admin").await;
    let page = root
        .post_form("/admin/audit/verify", &[("csrf_token", &csrf)])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("restored from a backup of") && page.contains("system.restore"),
        "{page}"
    );
    let recorded: Vec<String> = materials(&app.state.db)
        .await
        .into_iter()
        .map(|(_, sha)| sha)
        .collect();
    assert!(hashes.iter().all(|h| recorded.contains(h)));
}

/// Damages a backup in place.
type Corrupt<'a> = Box<dyn Fn(&Path) + 'a>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_backup_is_refused_with_the_reason_and_backups_copy_each_object_once() {
    let app = spawn_app().await;
    ok(&run(&["demo"], &app.env, "").await);
    let target = tempfile::tempdir().unwrap();
    let to = target.path().display().to_string();
    let out = run(&["backup", "--to", &to], &app.env, "").await;
    let printed = ok(&out);
    assert!(
        stderr(&out).contains("warning: the keys") && stderr(&out).contains("sign anyone in"),
        "{}",
        stderr(&out)
    );
    assert!(printed.contains("keys: left out"), "{printed}");
    // The second copies no object again.
    let printed = ok(&run(&["backup", "--to", &to], &app.env, "").await);
    assert!(printed.contains("; 0 copied (0 bytes)"), "{printed}");

    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(backups(target.path())[1].join("manifest.json")).unwrap(),
    )
    .unwrap();
    let database = manifest["database"]["file"].as_str().unwrap().to_owned();
    let key = manifest["objects"][0]["key"].as_str().unwrap().to_owned();
    let corruptions: [(&str, Corrupt<'_>, String); 3] = [
        (
            "one object byte changed",
            Box::new(|backup: &Path| {
                let path = backup.parent().unwrap().join("objects").join(&key);
                let mut bytes = std::fs::read(&path).unwrap();
                bytes[0] ^= 1;
                std::fs::write(&path, bytes).unwrap();
            }),
            format!("object {key}"),
        ),
        (
            "the manifest edited",
            Box::new(|backup: &Path| {
                let path = backup.join("manifest.json");
                let text = std::fs::read_to_string(&path).unwrap();
                std::fs::write(&path, text.replacen("\"seq\": ", "\"seq\": 1", 1)).unwrap();
            }),
            "manifest.json was changed after it was signed".into(),
        ),
        (
            "the database truncated",
            Box::new(|backup: &Path| {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(backup.join(&database))
                    .unwrap();
                let len = file.metadata().unwrap().len();
                file.set_len(len / 2).unwrap();
            }),
            format!("{database}: "),
        ),
    ];
    for (what, corrupt, reason) in &corruptions {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(target.path(), copy.path());
        let backup = backups(copy.path()).pop().unwrap();
        corrupt(&backup);
        let shown = backup.display().to_string();
        let out = run(&["backup", "verify", &shown], &app.env, "").await;
        refused(&out, reason);
        assert!(stderr(&out).contains("backup refused"), "{what}");
        let fresh = tempfile::tempdir().unwrap();
        let env = test_env(fresh.path()).await;
        let out = run(&["restore", "--from", &shown], &env, "").await;
        refused(&out, reason);
        assert!(stderr(&out).contains("does not verify"), "{what}");
        let left = store_of(&env).keys_under("").await.unwrap_or_default();
        assert!(left.is_empty(), "{what}: the refused restore left {left:?}");
        assert!(
            !fresh.path().join("portal.db").exists() && !fresh.path().join("secret.key").exists(),
            "{what}: the refused restore wrote a database or keys"
        );
    }

    // --keep 1 keeps the newest and the objects it lists, nothing else.
    let printed = ok(&run(&["backup", "--to", &to, "--keep", "1"], &app.env, "").await);
    assert!(printed.contains("pruned: 2 older backup(s)"), "{printed}");
    let kept = backups(target.path());
    assert_eq!(kept.len(), 1);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kept[0].join("manifest.json")).unwrap()).unwrap();
    let mut objects = Vec::new();
    files_under(&target.path().join("objects"), &mut objects);
    assert_eq!(objects.len(), manifest["objects"].as_array().unwrap().len());
    let printed = ok(&run(&["backup", "verify", &to], &app.env, "").await);
    assert!(printed.contains("verified"), "{printed}");
}

/// A backup that died (killed, the machine lost) leaves `.<name>.partial` and half-copied
/// objects behind: the next backup into the target removes them and says so. One still being
/// written is never touched: a backup holds the target's lock while it writes, and a second one
/// started meanwhile refuses, removing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_backup_removes_what_a_dead_one_left_and_never_one_being_written() {
    let app = spawn_app().await;
    ok(&run(&["demo"], &app.env, "").await);
    let target = tempfile::tempdir().unwrap();
    let to = target.path().display().to_string();
    ok(&run(&["backup", "--to", &to], &app.env, "").await);

    // What a backup killed half-way leaves: its own directory, a half-copied object.
    let dead = target.path().join(".20260101T000000.000Z.partial");
    std::fs::create_dir(&dead).unwrap();
    std::fs::write(dead.join("database.sqlite"), b"half a database").unwrap();
    let mut objects = Vec::new();
    files_under(&target.path().join("objects"), &mut objects);
    let name = objects[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let half = objects[0].with_file_name(format!(".{name}.partial"));
    std::fs::write(&half, b"half a copy").unwrap();

    // Another backup holds the target (as one does while it writes): refused, nothing removed.
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(target.path().join(evidence_portal::backup::LOCK))
        .unwrap();
    lock.try_lock().unwrap();
    refused(
        &run(&["backup", "--to", &to], &app.env, "").await,
        "another backup is being written",
    );
    assert!(dead.join("database.sqlite").is_file() && half.is_file());
    assert_eq!(backups(target.path()).len(), 1);
    drop(lock);

    // Once that one has gone, the next backup removes what it left and says so.
    let printed = ok(&run(&["backup", "--to", &to], &app.env, "").await);
    assert!(
        printed.contains("removed what an unfinished backup left")
            && printed.contains(".20260101T000000.000Z.partial")
            && printed.contains("1 half-copied object"),
        "{printed}"
    );
    assert!(!dead.exists() && !half.exists());
    assert!(objects[0].is_file(), "the object itself stays");
    assert_eq!(backups(target.path()).len(), 2);
    let printed = ok(&run(&["backup", "verify", &to], &app.env, "").await);
    assert!(printed.contains("verified"), "{printed}");
    // Nothing left to remove: nothing said.
    let printed = ok(&run(&["backup", "--to", &to], &app.env, "").await);
    assert!(!printed.contains("unfinished"), "{printed}");
}

#[tokio::test]
async fn backup_and_restore_explain_their_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let env = test_env(tmp.path()).await;
    let help = ok(&run(&["backup", "--help"], &env, "").await);
    assert!(
        help.contains("--passphrase-stdin") && help.contains("--keep") && help.contains("verify"),
        "{help}"
    );
    let help = ok(&run(&["restore", "--help"], &env, "").await);
    assert!(
        help.contains("--to-database") && help.contains("--to-store"),
        "{help}"
    );
    refused(&run(&["backup"], &env, "").await, "backup --to DIR");
    refused(
        &run(&["backup", "--to", "ftp://host/backups"], &env, "").await,
        "a directory or s3://bucket/prefix",
    );
    refused(
        &run(
            &["backup", "verify", &tmp.path().display().to_string()],
            &env,
            "",
        )
        .await,
        "holds no backup",
    );
    let out = run(&["backup", "verify"], &env, "").await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(
        &["backup", "--to", "x", "--passphrase-stdin"],
        &env,
        "short\n",
    )
    .await;
    refused(&out, "at least 12 characters");
}

/// The same into a bucket (`s3://…`), when this run has one (`PORTAL_TEST_STORE_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_keeps_backups_as_a_directory_does() {
    let Some(bucket) = std::env::var("PORTAL_TEST_STORE_URL")
        .ok()
        .filter(|u| u.starts_with("s3://"))
    else {
        eprintln!("skipped: no S3 store in this run (PORTAL_TEST_STORE_URL)");
        return;
    };
    let app = spawn_app().await;
    ok(&run(&["demo"], &app.env, "").await);
    let to = format!(
        "{}/backups-{}",
        bucket.trim_end_matches('/'),
        uuid::Uuid::now_v7()
    );
    let first = ok(&run(
        &["backup", "--to", &to, "--passphrase-stdin"],
        &app.env,
        PASSPHRASE,
    )
    .await);
    assert!(first.contains(&format!("written to {to}/")), "{first}");
    let second = ok(&run(
        &["backup", "--to", &to, "--passphrase-stdin"],
        &app.env,
        PASSPHRASE,
    )
    .await);
    assert!(second.contains("; 0 copied (0 bytes)"), "{second}");
    let printed = ok(&run(&["backup", "verify", &to], &app.env, "").await);
    assert!(printed.contains("verified"), "{printed}");

    let fresh = tempfile::tempdir().unwrap();
    let env = test_env(fresh.path()).await;
    ok(&run(
        &["restore", "--from", &to, "--passphrase-stdin"],
        &env,
        PASSPHRASE,
    )
    .await);
    let verified = ok(&run(&["audit", "verify"], &env, "").await);
    assert!(verified.contains("restored from a backup of"), "{verified}");
    let restored = spawn_with_env(env, fresh).await;
    assert_eq!(
        materials(&restored.state.db).await,
        materials(&app.state.db).await
    );
    let (party, case_id, ids) = party_and_materials(&restored).await;
    download_all(&party, &case_id, &ids).await;

    // A changed object in the bucket is found; --keep 1 leaves one backup.
    let target = store_of(&HashMap::from([
        ("PORTAL_DATA_DIR".to_owned(), "unused".to_owned()),
        ("PORTAL_STORE_URL".to_owned(), to.clone()),
    ]));
    let object = target.keys_under("objects").await.unwrap().pop().unwrap();
    let object = ObjectKey::from_stored(&object).unwrap();
    let original = target.get_small(&object).await.unwrap();
    let mut changed = original.to_vec();
    changed[0] ^= 1;
    target.put_small(&object, changed.into()).await.unwrap();
    refused(
        &run(&["backup", "verify", &to], &app.env, "").await,
        "object ",
    );
    target.put_small(&object, original).await.unwrap();
    let printed = ok(&run(&["backup", "--to", &to, "--keep", "1"], &app.env, "").await);
    assert!(printed.contains("pruned: 2 older backup(s)"), "{printed}");
    ok(&run(&["backup", "verify", &to], &app.env, "").await);

    // A backup that died while uploading its own files left `<name>/` without its signature.
    // While its newest file is recent it may still be uploading: left alone. Older than six
    // hours, the next backup removes it.
    let dead = "20260101T000000.000Z";
    let planted =
        ObjectKey::from_stored(&format!("{dead}/{}", evidence_portal::backup::MANIFEST)).unwrap();
    target
        .put_small(&planted, bytes::Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let printed = ok(&run(&["backup", "--to", &to], &app.env, "").await);
    assert!(!printed.contains("unfinished"), "{printed}");
    assert_eq!(target.keys_under(dead).await.unwrap().len(), 1);
    let bucket =
        evidence_portal::backup::target::Target::parse(&to, Duration::from_secs(30)).unwrap();
    let lock = bucket.lock().unwrap();
    let later = time::OffsetDateTime::now_utc()
        + evidence_portal::backup::unfinished::STALE_AFTER
        + time::Duration::minutes(1);
    let left = bucket.remove_unfinished(&lock, later).await.unwrap();
    assert_eq!(left.backups, [format!("{dead}/")]);
    assert!(target.keys_under(dead).await.unwrap().is_empty());
    let printed = ok(&run(&["backup", "verify", &to], &app.env, "").await);
    assert!(printed.contains("verified"), "{printed}");
}

/// A backup checks each material's SM3 (issue 36), as it checks its SHA-256: a material whose
/// recorded SM3 is not its object's is named. A backup made before SM3 has no such column and
/// still verifies (the demo's materials all have SM3 here; the column's absence is read as
/// "not recorded").
#[tokio::test]
async fn a_backup_checks_each_materials_sm3_against_its_object() {
    let app = spawn_app().await;
    ok(&run(&["demo"], &app.env, "").await);
    let target = tempfile::tempdir().unwrap();
    let to = target.path().display().to_string();
    ok(&run(&["backup", "--to", &to], &app.env, "").await);
    let printed = ok(&run(&["backup", "verify", &to], &app.env, "").await);
    assert!(printed.contains("verified"), "{printed}");

    // The record says another SM3 than the bytes have: the next backup is refused at it.
    let (key, _) = materials(&app.state.db).await.pop().unwrap();
    app.state
        .db
        .execute_unprepared(&format!(
            "UPDATE materials SET sm3 = '{}' WHERE object_key = '{key}'",
            "0".repeat(64)
        ))
        .await
        .unwrap();
    ok(&run(&["backup", "--to", &to], &app.env, "").await);
    let out = run(&["backup", "verify", &to], &app.env, "").await;
    if app.env.contains_key("PORTAL_DATABASE_URL") {
        // A PostgreSQL dump is only listed, not opened: its materials are not checked.
        ok(&out);
        return;
    }
    refused(&out, &format!("the material stored as {key}"));
    assert!(stderr(&out).contains("SM3"), "{}", stderr(&out));
}
