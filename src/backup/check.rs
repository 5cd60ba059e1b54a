//! Verifying a backup: the manifest's signature, the database file's hash and integrity, the
//! audit chain inside it, every material's object and every object's hash. The first fault ends
//! the check and is its answer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use super::files::hash_file;
use super::target::Target;
use super::{Manifest, take};
use crate::signing::PublicKey;

/// A backup that checked out.
pub struct Checked {
    pub target: Target,
    /// Where it is: a directory, or `s3://…/<name>`.
    pub location: String,
    /// A local directory with the backup's own files (a download of those in a bucket).
    pub local: PathBuf,
    _download: Option<tempfile::TempDir>,
    pub manifest: Manifest,
    /// The id of the key that signed the manifest.
    pub kid: String,
    pub objects: usize,
    pub bytes: u64,
    /// The audit events in the database copy (SQLite); a dump's chain is checked on restore.
    pub events: Option<u64>,
    pub materials: Option<usize>,
}

/// Checks the backup `source` names: a backup's directory (or `s3://…/<name>`), or a target
/// (its newest backup). `timeout`: for each call to a bucket.
pub async fn check(source: &str, timeout: Duration) -> Result<Checked, String> {
    let (target, name) = Target::locate(source, timeout).await?;
    let (key, manifest) = signed_manifest(&target, &name).await?;
    let (local, download) = target.local(&name).await?;
    let file = check_own_files(&local, &manifest).await?;
    let (bytes, sm3) = check_objects(&target, &manifest).await?;
    let (events, materials) = check_database(&file, &manifest, &sm3).await?;
    Ok(Checked {
        location: target.shown(&name),
        target,
        local,
        _download: download,
        kid: key.kid().to_owned(),
        objects: manifest.objects.len(),
        bytes,
        events,
        materials,
        manifest,
    })
}

/// The manifest, once its signature verifies with the public key beside it and it is a
/// backup's.
async fn signed_manifest(target: &Target, name: &str) -> Result<(PublicKey, Manifest), String> {
    let pem = String::from_utf8_lossy(&target.read(name, super::PUBLIC_KEY).await?).into_owned();
    let key = PublicKey::from_pem(&pem)
        .ok_or_else(|| format!("{} is not an Ed25519 public key", super::PUBLIC_KEY))?;
    let jws = String::from_utf8_lossy(&target.read(name, super::SIGNATURE).await?).into_owned();
    let payload = key
        .verify(&jws)
        .map_err(|e| format!("the manifest's signature does not verify: {e}"))?;
    let json = target.read(name, super::MANIFEST).await?;
    if json != payload {
        return Err(format!(
            "{} was changed after it was signed (it differs from {})",
            super::MANIFEST,
            super::SIGNATURE
        ));
    }
    let manifest: Manifest = serde_json::from_slice(&payload)
        .map_err(|e| format!("the signed manifest is unreadable: {e}"))?;
    if manifest.kind != "portal-backup" {
        return Err("the signed document is not a backup manifest".into());
    }
    Ok((key, manifest))
}

/// The database file and the sealed keys hash as the manifest says. Returns the database file.
async fn check_own_files(local: &Path, manifest: &Manifest) -> Result<std::path::PathBuf, String> {
    let db = &manifest.database;
    if db.file.contains('/') {
        return Err(format!("the manifest names an unusable file {:?}", db.file));
    }
    let file = local.join(&db.file);
    let (size, sha) = hash_file(&file)
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?;
    if size != db.size || sha != db.sha256 {
        return Err(format!(
            "{}: {} bytes with SHA-256 {sha}, the manifest says {} bytes with {} (the file was changed or truncated)",
            db.file, size, db.size, db.sha256
        ));
    }
    if let Some(keys) = &manifest.keys {
        let path = local.join(super::KEYS);
        let (_, sha) = hash_file(&path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if sha != keys.sha256 {
            return Err(format!(
                "{}: SHA-256 differs from the manifest",
                super::KEYS
            ));
        }
    }
    Ok(file)
}

/// What is inside the database file: a SQLite copy is opened and checked through (events and
/// materials counted), a PostgreSQL dump only listed.
async fn check_database(
    file: &Path,
    manifest: &Manifest,
    sm3: &HashMap<String, String>,
) -> Result<(Option<u64>, Option<usize>), String> {
    let by_key: HashMap<&str, &super::Object> = manifest
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o))
        .collect();
    match manifest.database.backend.as_str() {
        "sqlite" => {
            let (events, materials) = check_sqlite(file, manifest, &by_key, sm3).await?;
            Ok((Some(events), Some(materials)))
        }
        "postgres" => {
            let mut command = tokio::process::Command::new("pg_restore");
            command.arg("--list").arg(file).kill_on_drop(true);
            super::files::run(command, "pg_restore --list")
                .await
                .map_err(|e| format!("{}: not a readable dump: {e}", manifest.database.file))?;
            Ok((None, None))
        }
        other => Err(format!("unknown database backend {other:?}")),
    }
}

/// Every object, hashed against the manifest. Returns their bytes, and each object's SM3 (read
/// in the same pass) for the materials' own SM3.
async fn check_objects(
    target: &Target,
    manifest: &Manifest,
) -> Result<(u64, HashMap<String, String>), String> {
    let mut bytes = 0;
    let mut sm3s = HashMap::new();
    for o in &manifest.objects {
        let (size, sha, sm3) = target.hash_object_both(&o.key).await?;
        sm3s.insert(o.key.clone(), sm3);
        if size != o.size || sha != o.sha256 {
            return Err(format!(
                "object {}: {size} bytes with SHA-256 {sha}, the manifest says {} bytes with {}",
                o.key, o.size, o.sha256
            ));
        }
        bytes += size;
    }
    Ok((bytes, sm3s))
}

/// `PRAGMA integrity_check`, the chain up to the manifest's head, and every material's object
/// listed with the material's own hash. Returns the events and materials counted.
async fn check_sqlite(
    file: &Path,
    manifest: &Manifest,
    by_key: &HashMap<&str, &super::Object>,
    sm3: &HashMap<String, String>,
) -> Result<(u64, usize), String> {
    let name = &manifest.database.file;
    let copy = take::open_sqlite_copy(file)
        .await
        .map_err(|e| format!("{name}: cannot open: {e}"))?;
    let result = check_copy(&copy, manifest, by_key, sm3).await;
    let _ = copy.close().await;
    result.map_err(|e| format!("{name}: {e}"))
}

async fn check_copy(
    copy: &DatabaseConnection,
    manifest: &Manifest,
    by_key: &HashMap<&str, &super::Object>,
    sm3: &HashMap<String, String>,
) -> Result<(u64, usize), String> {
    let backend = copy.get_database_backend();
    let rows = copy
        .query_all_raw(Statement::from_string(backend, "PRAGMA integrity_check"))
        .await
        .map_err(|e| format!("integrity check failed: {e}"))?;
    let verdict: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get_by_index::<String>(0).ok())
        .collect();
    if verdict != ["ok"] {
        return Err(format!("integrity check failed: {}", verdict.join("; ")));
    }
    let verified = crate::audit::verify(copy)
        .await
        .map_err(|e| format!("the audit chain inside: {e}"))?;
    let head = &manifest.chain_head;
    if verified.events as i64 != head.seq || verified.head_hash != head.hash {
        return Err(format!(
            "the audit chain inside ends at event {} ({}), the manifest says {} ({})",
            verified.events, verified.head_hash, head.seq, head.hash
        ));
    }
    let rows = copy
        .query_all_raw(Statement::from_string(
            backend,
            // `*`: a backup made before SM3 (issue 36) has no `sm3` column.
            "SELECT * FROM materials",
        ))
        .await
        .map_err(|e| format!("cannot read the materials: {e}"))?;
    for row in &rows {
        let read = |e: sea_orm::DbErr| format!("cannot read the materials: {e}");
        let key: String = row.try_get("", "object_key").map_err(read)?;
        let size: i64 = row.try_get("", "size").map_err(read)?;
        let sha256: String = row.try_get("", "sha256").map_err(read)?;
        // Its SM3, where recorded, against the object's as read above.
        let recorded: Option<String> = row.try_get("", "sm3").ok().flatten();
        if let (Some(recorded), Some(read)) = (recorded, sm3.get(&key))
            && &recorded != read
        {
            return Err(format!(
                "the material stored as {key}: the object in the backup is not the bytes it recorded (SM3 {read}, recorded {recorded})"
            ));
        }
        match by_key.get(key.as_str()) {
            Some(o) if o.sha256 == sha256 && o.size as i64 == size => {}
            Some(_) => {
                return Err(format!(
                    "the material stored as {key}: the object in the backup is not the bytes it recorded"
                ));
            }
            None => {
                return Err(format!(
                    "the material stored as {key}: its object is not in the backup"
                ));
            }
        }
    }
    Ok((verified.events, rows.len()))
}
