//! Restoring a backup into an empty installation: checked first ([`super::check`]), the keys
//! decrypted and installed, the database and the objects copied in, then a signed
//! `system.restore` event appended and anchored, naming what the store's newest checkpoint says
//! was lost (`audit::restored`).

use std::path::Path;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use super::check::Checked;
use super::files;
use super::{Keys, SecretString};
use crate::audit::checkpoint;
use crate::audit::restored::{BackupHead, Details};
use crate::config::Settings;
use crate::signing::ManifestKey;

/// What a restore did.
pub struct Restored {
    pub checked: Checked,
    pub keys_restored: bool,
    /// The newest checkpoint the target's store held, and what the restore recorded.
    pub details: Details,
    pub event_seq: i64,
    /// The checkpoint could not be read (e.g. signed with other keys).
    pub checkpoint_problem: Option<String>,
}

/// Restores the backup at `from` into the installation `settings` describe.
pub async fn restore(
    settings: Settings,
    from: &str,
    passphrase: Option<&SecretString>,
) -> Result<Restored, String> {
    let checked = super::check::check(from, settings.store_timeout)
        .await
        .map_err(|e| format!("the backup does not verify: {e}"))?;
    let manifest = &checked.manifest;
    let sqlite = settings.database_url.is_sqlite();
    match (manifest.database.backend.as_str(), sqlite) {
        ("sqlite", true) | ("postgres", false) => {}
        (backend, _) => {
            return Err(format!(
                "the backup holds a {backend} database; restore it into the same kind of database"
            ));
        }
    }
    let known = {
        use migration::MigratorTrait;
        migration::Migrator::migrations()
            .iter()
            .any(|m| m.name() == manifest.schema.last)
    };
    if !known && !manifest.schema.last.is_empty() {
        return Err(format!(
            "the backup's schema ({}) is newer than this portal knows ({}): restore it with the version that made it ({})",
            manifest.schema.last,
            env!("CARGO_PKG_VERSION"),
            manifest.portal_version
        ));
    }
    refuse_unless_empty(&settings).await?;
    let keys_restored = install_keys(&settings, &checked, passphrase).await?;

    let (details, event_seq, checkpoint_problem) = copy_and_record(settings, &checked)
        .await
        .map_err(|e| {
            format!(
                "{e} (the installation is now partly restored: empty its database and store before trying again)"
            )
        })?;
    Ok(Restored {
        checked,
        keys_restored,
        details,
        event_seq,
        checkpoint_problem,
    })
}

/// Copies the database and the objects in, checks the chain, and records the restore.
async fn copy_and_record(
    settings: Settings,
    checked: &Checked,
) -> Result<(Details, i64, Option<String>), String> {
    let manifest = &checked.manifest;
    copy_database(&settings, checked).await?;

    let state = crate::startup::open_state(settings)
        .await
        .map_err(|e| e.to_string())?;
    let verified = crate::audit::verify(&state.db)
        .await
        .map_err(|e| format!("the restored audit chain: {e}"))?;
    let head = &manifest.chain_head;
    if verified.events as i64 != head.seq || verified.head_hash != head.hash {
        return Err(format!(
            "the restored audit chain ends at event {}, the backup's at {}",
            verified.events, head.seq
        ));
    }

    // The objects.
    for o in &manifest.objects {
        let stored = checked.target.restore_object(&o.key, &state.store).await?;
        if stored.sha256 != o.sha256 || stored.size != o.size {
            return Err(format!(
                "object {} changed while it was restored (SHA-256 {})",
                o.key, stored.sha256
            ));
        }
    }

    // Audit continuity: what the store's checkpoints say happened after the backup.
    let (seen, checkpoint_problem) =
        match checkpoint::latest(&state.store, &state.manifest_key).await {
            Ok(seen) => (seen, None),
            Err(e) => (None, Some(e.to_string())),
        };
    let details = Details::new(
        BackupHead {
            id: manifest.id.clone(),
            taken_at: manifest.taken_at,
            seq: head.seq,
            hash: head.hash.clone(),
        },
        seen.as_ref(),
    );
    let recorded = state
        .audit
        .record(details.event())
        .await
        .map_err(|e| format!("cannot record the restore in the audit log: {e}"))?;
    checkpoint::write(
        &state.store,
        &state.manifest_key,
        recorded.seq,
        &recorded.hash,
    )
    .await
    .map_err(|e| format!("cannot anchor the restore: {e}"))?;
    Ok((details, recorded.seq, checkpoint_problem))
}

/// Puts the backup's database in place: a SQLite file copied beside the target, synced and
/// renamed over it (its old journal removed first), or a PostgreSQL dump restored in one
/// transaction.
async fn copy_database(settings: &Settings, checked: &Checked) -> Result<(), String> {
    let file = checked.local.join(&checked.manifest.database.file);
    if !settings.database_url.is_sqlite() {
        let (mut command, conninfo) =
            files::pg_command("pg_restore", settings.database_url.expose())?;
        command
            .args([
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                "--dbname",
            ])
            .arg(conninfo)
            .arg(&file);
        return files::run(command, "pg_restore").await.map(drop);
    }
    let target = files::sqlite_file(settings.database_url.expose())
        .ok_or("restore needs a database file, not an in-memory database")?;
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::keys::create_private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", target.display());
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{path}: {e}")),
        }
    }
    let temporary = dir.join(".restore.partial");
    std::fs::copy(&file, &temporary).map_err(|e| format!("{}: {e}", temporary.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        std::fs::File::open(&temporary)
            .and_then(|f| f.sync_all())
            .map_err(|e| e.to_string())?;
    }
    std::fs::rename(&temporary, &target).map_err(|e| format!("{}: {e}", target.display()))
}

/// Refuses an installation that has accounts, cases or stored objects.
async fn refuse_unless_empty(settings: &Settings) -> Result<(), String> {
    let file = files::sqlite_file(settings.database_url.expose());
    let exists = match &file {
        Some(path) => std::fs::metadata(path).is_ok_and(|m| m.len() > 0),
        None => !settings.database_url.is_sqlite(),
    };
    if exists {
        let db = crate::db::connect(&settings.database_url, settings.db_timeout)
            .await
            .map_err(|e| format!("cannot open the database: {e}"))?;
        let found = rows_in(&db).await;
        let _ = db.close().await;
        if let Some(table) = found? {
            return Err(format!(
                "the installation is not empty: its database has {table}; restore only into an empty installation"
            ));
        }
    }
    let store = crate::store::Store::open_with(
        &settings.store_url,
        &settings.store_options,
        settings.store_timeout,
    )
    .map_err(|e| e.to_string())?;
    let objects = store
        .objects_under("")
        .await
        .map_err(|e| format!("cannot list the object store: {e}"))?;
    if let Some((key, _)) = objects
        .iter()
        .find(|(k, _)| super::take::is_evidence_key(k))
    {
        return Err(format!(
            "the installation is not empty: its object store holds {key}; restore only into an empty installation"
        ));
    }
    Ok(())
}

/// The first of accounts and cases that has rows (a table not yet created has none).
async fn rows_in(db: &DatabaseConnection) -> Result<Option<&'static str>, String> {
    for table in ["accounts", "cases"] {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT 1 AS one FROM {table} LIMIT 1"),
            ))
            .await;
        match row {
            Ok(Some(_)) => return Ok(Some(table)),
            Ok(None) => {}
            Err(e) => {
                let text = e.to_string();
                if !(text.contains("no such table") || text.contains("does not exist")) {
                    return Err(format!("cannot read the database: {text}"));
                }
            }
        }
    }
    Ok(None)
}

/// Decrypts the backup's keys and writes them where this installation keeps its own; refuses
/// other keys already there. `false` when the backup has none.
async fn install_keys(
    settings: &Settings,
    checked: &Checked,
    passphrase: Option<&SecretString>,
) -> Result<bool, String> {
    if checked.manifest.keys.is_none() {
        return Ok(false);
    }
    let passphrase = passphrase.ok_or(
        "the backup holds the keys encrypted: give their passphrase with --passphrase-stdin or --passphrase-file",
    )?;
    let sealed = std::fs::read(checked.local.join(super::KEYS)).map_err(|e| e.to_string())?;
    let identity = age::scrypt::Identity::new(passphrase.clone());
    let plain = tokio::task::spawn_blocking(move || age::decrypt(&identity, &sealed))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "the passphrase does not open the keys in the backup".to_owned())?;
    let keys: Keys = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
    let manifest_path = ManifestKey::path_beside(&settings.secret_key_file);
    let sm2_path = super::sm2_key_path(settings);
    let mut files = vec![
        (settings.secret_key_file.as_path(), keys.secret_key),
        (manifest_path.as_path(), keys.manifest_key),
    ];
    if let Some(sm2) = keys.sm2_key {
        files.push((sm2_path.as_path(), sm2));
    }
    for (path, contents) in &files {
        if let Ok(existing) = std::fs::read_to_string(path)
            && existing != *contents
        {
            return Err(format!(
                "this installation already has other keys ({}): a restore brings the backup's; move them away first",
                path.display()
            ));
        }
    }
    for (path, contents) in &files {
        crate::keys::create_private_file(path, contents.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(true)
}
