//! Backups of a running installation, their verification, and restoring one into an empty
//! installation.
//!
//! A backup target is a directory that holds many backups:
//!
//! ```text
//! <target>/objects/<key>              every object once, shared by the backups (immutable)
//! <target>/.lock                      held by the backup writing (flock; see [`unfinished`])
//! <target>/<YYYYMMDDTHHMMSS.mmmZ>/    one backup (written as .<name>.partial, then renamed)
//!     database.sqlite | database.pgdump   SQLite `VACUUM INTO` / `pg_dump --format=custom`
//!     manifest.json                       what is in it (see [`Manifest`])
//!     manifest.jws                        manifest.json signed with the manifest key (JWS)
//!     manifest-key.pem                    that key's public half
//!     keys.age                            secret.key and the manifest key, under a passphrase
//! ```
//!
//! A target is a directory or an S3 bucket and prefix with the same layout ([`target`]).
//!
//! The chain head in the manifest is read from the snapshot itself (the copy on SQLite; the
//! exported snapshot `pg_dump` runs in on PostgreSQL), so it matches the database exactly.
//! Start at [`take::take`], then [`check::check`] and [`restore::restore`].

pub mod check;
mod files;
pub mod restore;
pub mod take;
pub mod target;
pub mod unfinished;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use age::secrecy::SecretString;

/// A backup's own files.
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.jws";
pub const PUBLIC_KEY: &str = "manifest-key.pem";
pub const KEYS: &str = "keys.age";
/// The target's shared object area.
pub const OBJECTS: &str = "objects";
/// A directory target's lock file, held (an advisory `flock`) by the backup writing into it.
pub const LOCK: &str = ".lock";

/// What a backup holds; signed as `manifest.jws`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `"portal-backup"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The backup's directory name.
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub taken_at: OffsetDateTime,
    pub portal_version: String,
    pub schema: Schema,
    pub database: Database,
    /// The audit chain head in the database copy.
    pub chain_head: Head,
    pub objects: Vec<Object>,
    /// `keys.age`, when the keys were included.
    pub keys: Option<FileHash>,
}

/// The migrations applied to the copied database: how many, and the last one's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub migrations: usize,
    pub last: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHash {
    pub file: String,
    pub sha256: String,
}

/// The keys a backup carries, before encryption.
#[derive(Serialize, Deserialize)]
struct Keys {
    /// `secret.key` as written (hex).
    secret_key: String,
    /// The manifest signing key's PEM.
    manifest_key: String,
    /// The SM2 signing key's PEM (issue 36; absent from backups made before).
    #[serde(default)]
    sm2_key: Option<String>,
}

/// Where the SM2 signing key is: the file `PORTAL_SM2_KEY_FILE` gives, or beside the secret key.
fn sm2_key_path(settings: &crate::config::Settings) -> std::path::PathBuf {
    settings
        .sm2_key_file
        .clone()
        .unwrap_or_else(|| crate::signing::Sm2Key::path_beside(&settings.secret_key_file))
}

/// What is lost when a backup leaves the keys out, for the warning.
pub const WITHOUT_KEYS: &str = "the keys (secret.key and the manifest signing key) are left out: \
    without them a restored installation cannot sign anyone in by their identifier (sign-in \
    names are keyed with secret.key), open the second factors and codes sealed with it, keep \
    sessions, API tokens or signed links valid, re-sign or extend the signed audit checkpoints \
    and bundle stamps, or show the stamps already issued as the portal's own; keep a copy of \
    both files elsewhere, or give --passphrase-stdin / --passphrase-file to include them encrypted";

/// Whether `name` is a backup's directory name (`YYYYMMDDTHHMMSS.mmmZ`).
pub fn is_backup_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 20
        && b[8] == b'T'
        && b[15] == b'.'
        && b[19] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 8 | 15 | 19) || c.is_ascii_digit())
}

/// The backups in `target`, oldest first.
pub fn backups_in(target: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(target)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_backup_name(&name) && entry.path().join(MANIFEST).is_file() {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// Reads a passphrase from the first line of standard input or from a file; at least 12
/// characters.
pub fn read_passphrase(file: Option<&Path>) -> Result<SecretString, String> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the passphrase file {}: {e}", path.display()))?,
        None => {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line)
                .map_err(|e| format!("cannot read the passphrase from standard input: {e}"))?;
            line
        }
    };
    let line = text.lines().next().unwrap_or_default().to_owned();
    if line.chars().count() < 12 {
        return Err("the passphrase must be at least 12 characters".into());
    }
    Ok(SecretString::from(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_are_recognised() {
        assert!(is_backup_name("20261207T130512.345Z"));
        assert!(!is_backup_name("objects"));
        assert!(!is_backup_name(".20261207T130512.345Z.partial"));
        assert!(!is_backup_name("20261207T130512.34aZ"));
    }
}
