//! Taking a backup of a running installation: a consistent snapshot of the database, the
//! objects not yet in the target, the keys (encrypted, if a passphrase is given), and the
//! signed manifest; then pruning to `--keep`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DbBackend, IsolationLevel, Statement,
    TransactionTrait,
};

use super::files::{self, hash_file, write_synced};
use super::target::Target;
use super::unfinished::Leftovers;
use super::{Database, FileHash, Head, Keys, Manifest, Object, Schema, SecretString};
use crate::config::Settings;
use crate::signing::ManifestKey;
use crate::store::Store;

/// What a backup did.
pub struct Taken {
    /// Where it is: a directory, or `s3://…/<name>`.
    pub location: String,
    pub manifest: Manifest,
    /// Objects copied now, and their bytes.
    pub copied: usize,
    pub copied_bytes: u64,
    /// Objects already in the target from an earlier backup.
    pub reused: usize,
    /// Older backups removed by `--keep`, and the objects none of the rest referenced.
    pub pruned: Vec<String>,
    pub pruned_objects: usize,
    /// What backups that never finished had left, removed first (`super::unfinished`).
    pub leftovers: Leftovers,
}

/// Takes a backup into `target`. `passphrase`: include the keys encrypted under it.
pub async fn take(
    settings: &Settings,
    db: &DatabaseConnection,
    store: &Store,
    key: &ManifestKey,
    target: &Target,
    passphrase: Option<&SecretString>,
    keep: Option<usize>,
) -> Result<Taken, String> {
    let taken_at = time::OffsetDateTime::now_utc();
    let id = name(taken_at);
    if let Target::Dir(dir) = target {
        std::fs::create_dir_all(dir.join(super::OBJECTS)).map_err(io(dir))?;
    }
    // Held to the end, pruning included: no other backup writes into this target meanwhile,
    // so what a backup in it left unfinished is a dead one's.
    let lock = target.lock()?;
    let leftovers = target.remove_unfinished(&lock, taken_at).await?;
    let (partial, _download) = staging(target, &id)?;
    crate::keys::create_private_dir(&partial).map_err(io(&partial))?;

    let (database, chain_head, schema) = snapshot(settings, db, &partial).await?;
    let copy = copy_objects(store, target).await?;
    let keys = match passphrase {
        Some(passphrase) => Some(seal_keys(settings, &partial, passphrase).await?),
        None => None,
    };
    let manifest = Manifest {
        kind: "portal-backup".into(),
        id: id.clone(),
        taken_at,
        portal_version: env!("CARGO_PKG_VERSION").into(),
        schema,
        database,
        chain_head,
        objects: copy.objects,
        keys,
    };
    write_manifest(&partial, &manifest, key)?;
    target.publish(&partial, &id).await?;
    let (pruned, pruned_objects) = match keep {
        Some(keep) => prune(target, keep.max(1)).await?,
        None => (Vec::new(), 0),
    };
    Ok(Taken {
        location: target.shown(&id),
        manifest,
        copied: copy.copied,
        copied_bytes: copy.copied_bytes,
        reused: copy.reused,
        pruned,
        pruned_objects,
        leftovers,
    })
}

/// An I/O error in words, naming the path.
fn io(what: &Path) -> impl Fn(std::io::Error) -> String {
    let shown = what.display().to_string();
    move |e: std::io::Error| format!("{shown}: {e}")
}

/// Where the backup's own files are written first: beside the backups in a directory (then
/// renamed), in a temporary directory for a bucket (then uploaded; the guard must live until
/// then).
fn staging(
    target: &Target,
    id: &str,
) -> Result<(std::path::PathBuf, Option<tempfile::TempDir>), String> {
    match target {
        Target::Dir(dir) => Ok((dir.join(format!(".{id}.partial")), None)),
        Target::Bucket { .. } => {
            let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
            Ok((temp.path().join(id), Some(temp)))
        }
    }
}

/// The evidence objects of a backup and what copying them took.
struct Copied {
    objects: Vec<Object>,
    copied: usize,
    copied_bytes: u64,
    reused: usize,
}

/// Copies every evidence object not yet in the target. Objects are immutable, so a key already
/// there is not copied again; its size and digest come from an earlier manifest, or are read.
async fn copy_objects(store: &Store, target: &Target) -> Result<Copied, String> {
    let present = target.object_keys().await?;
    let known = earlier_objects(target).await;
    let mut copy = Copied {
        objects: Vec::new(),
        copied: 0,
        copied_bytes: 0,
        reused: 0,
    };
    let mut keys: Vec<String> = store
        .objects_under("")
        .await
        .map_err(|e| format!("cannot list the object store: {e}"))?
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| is_evidence_key(k))
        .collect();
    keys.sort();
    for k in keys {
        let (size, sha256) = if present.contains(&k) {
            copy.reused += 1;
            match known.get(&k) {
                Some(o) => (o.size, o.sha256.clone()),
                None => target.hash_object(&k).await?,
            }
        } else {
            let (size, sha) = target.put_object(store, &k).await?;
            copy.copied += 1;
            copy.copied_bytes += size;
            (size, sha)
        };
        copy.objects.push(Object {
            key: k,
            size,
            sha256,
        });
    }
    Ok(copy)
}

/// Writes the manifest, its signature and the public key that checks it, each synced.
fn write_manifest(partial: &Path, manifest: &Manifest, key: &ManifestKey) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| e.to_string())?;
    let jws = key
        .sign(&json)
        .map_err(|e| format!("cannot sign the manifest: {e}"))?;
    for (file, bytes) in [
        (super::MANIFEST, json.as_slice()),
        (super::SIGNATURE, jws.as_bytes()),
        (super::PUBLIC_KEY, key.public_pem().as_bytes()),
    ] {
        let path = partial.join(file);
        write_synced(&path, bytes).map_err(io(&path))?;
    }
    Ok(())
}

/// The name of a backup taken at `t`: UTC, to the millisecond, sorting by time.
fn name(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Objects the portal keeps as data: not its probes and upload notes (`_portal/`), nor the
/// audit checkpoints (`audit/`), which belong to the store they anchor.
pub fn is_evidence_key(key: &str) -> bool {
    !key.starts_with("_portal/") && !key.starts_with("audit/")
}

/// The database snapshot, the chain head in it and its schema level.
async fn snapshot(
    settings: &Settings,
    db: &DatabaseConnection,
    dir: &Path,
) -> Result<(Database, Head, Schema), String> {
    let url = settings.database_url.expose();
    let db_err = |e: sea_orm::DbErr| format!("database: {e}");
    let (file, backend, head, schema) = if settings.database_url.is_sqlite() {
        let file = dir.join("database.sqlite");
        let quoted = file.display().to_string().replace('\'', "''");
        db.execute_unprepared(&format!("VACUUM INTO '{quoted}'"))
            .await
            .map_err(|e| format!("cannot copy the database (VACUUM INTO): {e}"))?;
        let copy = open_sqlite_copy(&file).await.map_err(db_err)?;
        let head = read_head(&copy).await.map_err(db_err)?;
        let schema = read_schema(&copy).await.map_err(db_err)?;
        copy.close().await.map_err(db_err)?;
        (file, "sqlite", head, schema)
    } else {
        // pg_dump runs in a snapshot exported from this transaction: the head read here is
        // the head in the dump.
        let file = dir.join("database.pgdump");
        let txn = db
            .begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await
            .map_err(db_err)?;
        let row = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pg_export_snapshot() AS s",
            ))
            .await
            .map_err(db_err)?
            .ok_or("no snapshot")?;
        let snapshot: String = row.try_get("", "s").map_err(db_err)?;
        let head = read_head(&txn).await.map_err(db_err)?;
        let schema = read_schema(&txn).await.map_err(db_err)?;
        let (mut command, conninfo) = files::pg_command("pg_dump", url)?;
        command
            .arg("--format=custom")
            .arg(format!("--snapshot={snapshot}"))
            .arg("--file")
            .arg(&file)
            .arg("--dbname")
            .arg(conninfo);
        files::run(command, "pg_dump").await?;
        txn.commit().await.map_err(db_err)?;
        (file, "postgres", head, schema)
    };
    let (size, sha256) = hash_file(&file).await.map_err(|e| e.to_string())?;
    let database = Database {
        backend: backend.into(),
        file: file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        size,
        sha256,
    };
    Ok((database, head, schema))
}

pub(super) async fn open_sqlite_copy(file: &Path) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = sea_orm::ConnectOptions::new(format!("sqlite://{}?mode=ro", file.display()));
    options.max_connections(1).sqlx_logging(false);
    sea_orm::Database::connect(options).await
}

pub(super) async fn read_head(db: &impl ConnectionTrait) -> Result<Head, sea_orm::DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT seq, hash FROM audit_chain_head WHERE id = 1",
        ))
        .await?;
    Ok(match row {
        Some(r) => Head {
            seq: r.try_get("", "seq")?,
            hash: r.try_get("", "hash")?,
        },
        None => Head {
            seq: 0,
            hash: crate::audit::chain::GENESIS.into(),
        },
    })
}

async fn read_schema(db: &impl ConnectionTrait) -> Result<Schema, sea_orm::DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version",
        ))
        .await?;
    let mut names = Vec::new();
    for row in rows {
        names.push(row.try_get::<String>("", "version")?);
    }
    Ok(Schema {
        migrations: names.len(),
        last: names.pop().unwrap_or_default(),
    })
}

/// secret.key and the manifest key, encrypted with age under the passphrase, as `keys.age`.
async fn seal_keys(
    settings: &Settings,
    dir: &Path,
    passphrase: &SecretString,
) -> Result<FileHash, String> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let keys = Keys {
        secret_key: read(&settings.secret_key_file)?,
        manifest_key: read(&ManifestKey::path_beside(&settings.secret_key_file))?,
        sm2_key: Some(read(&super::sm2_key_path(settings))?),
    };
    let plain = serde_json::to_vec(&keys).map_err(|e| e.to_string())?;
    let recipient = age::scrypt::Recipient::new(passphrase.clone());
    let sealed = tokio::task::spawn_blocking(move || age::encrypt(&recipient, &plain))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot encrypt the keys: {e}"))?;
    let path = dir.join(super::KEYS);
    write_synced(&path, &sealed).map_err(|e| format!("{}: {e}", path.display()))?;
    let (_, sha256) = hash_file(&path).await.map_err(|e| e.to_string())?;
    Ok(FileHash {
        file: super::KEYS.into(),
        sha256,
    })
}

/// The objects the target's backups already list, by key.
async fn earlier_objects(target: &Target) -> HashMap<String, Object> {
    let mut known = HashMap::new();
    for name in target.backups().await.unwrap_or_default() {
        if let Some(manifest) = read_manifest_unchecked(target, &name).await {
            for o in manifest.objects {
                known.insert(o.key.clone(), o);
            }
        }
    }
    known
}

async fn read_manifest_unchecked(target: &Target, name: &str) -> Option<Manifest> {
    let bytes = target.read(name, super::MANIFEST).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Keeps the newest `keep` backups of `target`, then removes the objects none of them lists.
async fn prune(target: &Target, keep: usize) -> Result<(Vec<String>, usize), String> {
    let all = target.backups().await?;
    let cut = all.len().saturating_sub(keep);
    let mut listed = HashSet::new();
    for name in &all[cut..] {
        let manifest = read_manifest_unchecked(target, name)
            .await
            .ok_or_else(|| format!("{name}: unreadable manifest; nothing pruned"))?;
        listed.extend(manifest.objects.into_iter().map(|o| o.key));
    }
    for name in &all[..cut] {
        target.remove_backup(name).await?;
    }
    let mut removed = 0;
    for k in target.object_keys().await? {
        if !listed.contains(&k) {
            target.remove_object(&k).await?;
            removed += 1;
        }
    }
    Ok((all[..cut].to_vec(), removed))
}
