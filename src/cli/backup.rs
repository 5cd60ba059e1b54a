//! `backup --to DIR`, `backup verify BACKUP` and `restore --from BACKUP`: the command-line side
//! of `crate::backup` (what they print; the work is there).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Failure, Settings};
use crate::backup;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct BackupArgs {
    #[command(subcommand)]
    action: Option<BackupAction>,
    /// The backup target: a directory, or s3://bucket/prefix (credentials and endpoint from the
    /// AWS_* variables), that keeps every backup (objects shared among them).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    to: Option<String>,
    /// Keep only the newest N backups in the target (this one included), and the objects they
    /// list.
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

#[derive(Args)]
pub(super) struct PassphraseArgs {
    /// Include the keys (secret.key, the manifest signing key) encrypted under the passphrase
    /// on the first line of standard input (at least 12 characters). Without a passphrase they
    /// are left out.
    #[arg(long, conflicts_with = "passphrase_file")]
    passphrase_stdin: bool,
    /// As --passphrase-stdin, the passphrase read from the first line of this file.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

impl PassphraseArgs {
    fn read(&self) -> Result<Option<backup::SecretString>, Failure> {
        if self.passphrase_stdin || self.passphrase_file.is_some() {
            Ok(Some(backup::read_passphrase(
                self.passphrase_file.as_deref(),
            )?))
        } else {
            Ok(None)
        }
    }
}

#[derive(Subcommand)]
enum BackupAction {
    /// Check a backup: the manifest's signature, every object's SHA-256, the database file's
    /// hash and integrity, and the audit chain inside it. Exit 0 with a summary, or 1 naming
    /// the first fault.
    Verify {
        /// A backup's directory (or s3://…/<name>), or a target (its newest backup).
        backup: String,
    },
}

#[derive(Args)]
pub(super) struct RestoreArgs {
    /// A backup's directory (or s3://…/<name>), or a target (its newest backup).
    #[arg(long, value_name = "BACKUP")]
    from: String,
    /// Restore into this database instead of PORTAL_DATABASE_URL's.
    #[arg(long, value_name = "URL")]
    to_database: Option<String>,
    /// Restore the objects into this store instead of PORTAL_STORE_URL's.
    #[arg(long, value_name = "URL")]
    to_store: Option<String>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

pub(super) async fn backup(settings: Settings, args: BackupArgs) -> Result<(), Failure> {
    if let Some(BackupAction::Verify { backup }) = args.action {
        return verify(&settings, &backup).await;
    }
    let to = args
        .to
        .ok_or_else(|| "give the target: backup --to DIR (or backup verify BACKUP)".to_owned())?;
    let target = backup::target::Target::parse(&to, settings.store_timeout)?;
    let passphrase = args.passphrase.read()?;
    if passphrase.is_none() {
        eprintln!("warning: {}", backup::WITHOUT_KEYS);
    }
    let state = crate::startup::open_state(settings)
        .await
        .map_err(|e| e.to_string())?;
    let taken = backup::take::take(
        &state.settings,
        &state.db,
        &state.store,
        &state.manifest_key,
        &target,
        passphrase.as_ref(),
        args.keep,
    )
    .await?;
    let m = &taken.manifest;
    println!("backup {} written to {}", m.id, taken.location);
    let left = &taken.leftovers;
    if !left.is_empty() {
        println!(
            "  removed what an unfinished backup left: {}; {} half-copied object(s)",
            if left.backups.is_empty() {
                "no backup of its own".to_owned()
            } else {
                left.backups.join(", ")
            },
            left.objects
        );
    }
    println!(
        "  database: {} ({} bytes, SHA-256 {}), schema {} ({} migrations)",
        m.database.file, m.database.size, m.database.sha256, m.schema.last, m.schema.migrations
    );
    println!(
        "  audit chain head: event {} hash {}",
        m.chain_head.seq, m.chain_head.hash
    );
    println!(
        "  objects: {} listed; {} copied ({} bytes), {} already in the target",
        m.objects.len(),
        taken.copied,
        taken.copied_bytes,
        taken.reused
    );
    println!(
        "  keys: {}",
        if m.keys.is_some() {
            "included, encrypted under the passphrase (keys.age)"
        } else {
            "left out"
        }
    );
    if !taken.pruned.is_empty() || taken.pruned_objects > 0 {
        println!(
            "  pruned: {} older backup(s) {}, {} object(s) no remaining backup lists",
            taken.pruned.len(),
            taken.pruned.join(", "),
            taken.pruned_objects
        );
    }
    Ok(())
}

async fn verify(settings: &Settings, source: &str) -> Result<(), Failure> {
    let checked = backup::check::check(source, settings.store_timeout)
        .await
        .map_err(|e| format!("backup refused: {e}"))?;
    let m = &checked.manifest;
    println!("backup {} verified ({})", m.id, checked.location);
    println!(
        "  manifest signed by key {} ({})",
        checked.kid,
        whose_key(settings, &checked.kid)
    );
    match (checked.events, checked.materials) {
        (Some(events), Some(materials)) => println!(
            "  database: {} intact; audit chain of {events} events verified to head {}; {materials} materials, each with its object",
            m.database.file, m.chain_head.hash
        ),
        _ => println!(
            "  database: {} readable (pg_restore --list); its audit chain (head: event {}) is verified when it is restored",
            m.database.file, m.chain_head.seq
        ),
    }
    println!(
        "  objects: {} verified ({} bytes); keys {}",
        checked.objects,
        checked.bytes,
        if m.keys.is_some() {
            "included (encrypted)"
        } else {
            "not included"
        }
    );
    Ok(())
}

/// Whether `kid` is this installation's manifest key (never creates one).
fn whose_key(settings: &Settings, kid: &str) -> &'static str {
    let path = crate::signing::ManifestKey::path_beside(&settings.secret_key_file);
    if !path.exists() {
        return "this installation has no key of its own to compare";
    }
    match crate::signing::ManifestKey::load_or_create(&path) {
        Ok(own) if own.kid() == kid => "this installation's key",
        Ok(_) => "NOT this installation's key: compare it with the key you published",
        Err(_) => "this installation's key is unreadable",
    }
}

pub(super) async fn restore(mut settings: Settings, args: RestoreArgs) -> Result<(), Failure> {
    if let Some(url) = &args.to_database {
        settings.database_url =
            crate::config::DatabaseUrl::parse("--to-database", url).map_err(|e| e.to_string())?;
    }
    if let Some(url) = &args.to_store {
        settings.store_url =
            crate::config::parse_store_url("--to-store", url).map_err(|e| e.to_string())?;
    }
    let passphrase = args.passphrase.read()?;
    let restored = backup::restore::restore(settings, &args.from, passphrase.as_ref())
        .await
        .map_err(|e| format!("restore refused: {e}"))?;
    let m = &restored.checked.manifest;
    println!(
        "restored backup {} ({} objects, audit chain to event {})",
        m.id,
        m.objects.len(),
        m.chain_head.seq
    );
    if !restored.keys_restored {
        eprintln!("warning: {}", backup::WITHOUT_KEYS);
    }
    if let Some(problem) = &restored.checkpoint_problem {
        eprintln!("warning: the store's checkpoints could not be read: {problem}");
    }
    match &restored.details.lost {
        Some(lost) => println!(
            "  the store's newest signed checkpoint is at event {}: {} event(s) recorded after the backup were lost",
            lost.last_seq, lost.events
        ),
        None => println!("  no signed checkpoint in the store is ahead of the backup"),
    }
    println!(
        "  recorded as event {} (system.restore) and anchored with a signed checkpoint",
        restored.event_seq
    );
    Ok(())
}
