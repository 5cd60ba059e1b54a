//! What a backup that never finished (killed, the machine lost) leaves in its target, and the
//! rule that removes it without ever touching a backup still being written:
//!
//! - **A directory.** A backup holds an advisory lock (`flock`) on `<target>/.lock` from before
//!   it writes anything until it has pruned; the kernel drops the lock when the process dies,
//!   however it dies. So the backup that holds the lock is the only one writing, and every
//!   `.<name>.partial` directory and every half-copied object (`objects/…/.<file>.partial`) it
//!   finds is a dead backup's: it removes them and says so. A second backup started while one
//!   runs refuses at once and changes nothing (two at once could also prune away an object the
//!   other has just listed). The lock is only as good as the file system's locking: on a network
//!   file system, let one machine back up into a directory.
//! - **A bucket** has no such lock. A backup's own files go up after its objects, the signature
//!   last of all, so an unfinished one is a `<name>/` without `manifest.jws`; it is removed once
//!   the newest of its files is older than [`STALE_AFTER`] (a backup still uploading wrote one
//!   more recently: each file is one upload). Half-uploaded objects are the bucket's incomplete
//!   multipart uploads, which a lifecycle rule ends (README).

use std::fs::TryLockError;
use std::path::Path;

use time::OffsetDateTime;

use super::target::Target;

/// How old the newest file of an unfinished backup in a bucket must be before it is removed.
pub const STALE_AFTER: time::Duration = time::Duration::hours(6);

/// The lock a backup holds on its target while it writes: on a directory, `<target>/.lock`,
/// released when this is dropped (or by the kernel when the process dies); none on a bucket.
pub struct TargetLock {
    _file: Option<std::fs::File>,
}

/// What unfinished backups had left, now removed.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Their own directories (`.<name>.partial`) or, in a bucket, prefixes (`<name>/`).
    pub backups: Vec<String>,
    /// Half-copied objects in a directory's object area.
    pub objects: usize,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.backups.is_empty() && self.objects == 0
    }
}

/// `.<backup name>.partial`: a directory backup being written, or a dead one's.
fn is_partial_backup(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_suffix(".partial"))
        .is_some_and(super::is_backup_name)
}

/// `.<file>.partial` in the object area: an object being copied, or a dead copy.
fn is_partial_object(name: &str) -> bool {
    name.len() > ".partial".len() + 1 && name.starts_with('.') && name.ends_with(".partial")
}

impl Target {
    /// Takes the target's lock, or refuses at once if another backup holds it.
    pub fn lock(&self) -> Result<TargetLock, String> {
        let Target::Dir(dir) = self else {
            return Ok(TargetLock { _file: None });
        };
        let path = dir.join(super::LOCK);
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(TargetLock { _file: Some(file) }),
            Err(TryLockError::WouldBlock) => Err(format!(
                "another backup is being written into {} (it holds {}); nothing was changed: \
                 try again once it has finished",
                dir.display(),
                path.display()
            )),
            Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
        }
    }

    /// Removes what backups that never finished left (the rule is this module's opening
    /// comment), holding the target's lock; `now` dates a bucket's leftovers.
    pub async fn remove_unfinished(
        &self,
        _held: &TargetLock,
        now: OffsetDateTime,
    ) -> Result<Leftovers, String> {
        match self {
            Target::Dir(dir) => remove_in_dir(dir),
            Target::Bucket { store, .. } => {
                let mut found: std::collections::BTreeMap<String, (bool, Vec<String>, _)> =
                    Default::default();
                for (key, at) in store
                    .objects_under("")
                    .await
                    .map_err(|e| format!("cannot list the backup target: {e}"))?
                {
                    let Some((name, file)) = key.split_once('/') else {
                        continue;
                    };
                    if !super::is_backup_name(name) {
                        continue;
                    }
                    let entry = found.entry(name.to_owned()).or_insert((
                        false,
                        Vec::new(),
                        OffsetDateTime::UNIX_EPOCH,
                    ));
                    entry.0 |= file == super::SIGNATURE;
                    entry.2 = entry.2.max(at);
                    entry.1.push(key);
                }
                let mut left = Leftovers::default();
                for (name, (complete, keys, newest)) in found {
                    if complete || now - newest < STALE_AFTER {
                        continue;
                    }
                    for key in keys {
                        let key = crate::store::ObjectKey::from_stored(&key)
                            .map_err(|e| e.to_string())?;
                        store.delete(&key).await.map_err(|e| e.to_string())?;
                    }
                    left.backups.push(format!("{name}/"));
                }
                Ok(left)
            }
        }
    }
}

fn remove_in_dir(dir: &Path) -> Result<Leftovers, String> {
    let io = |path: &Path| {
        let shown = path.display().to_string();
        move |e: std::io::Error| format!("{shown}: {e}")
    };
    let mut left = Leftovers::default();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_partial_backup(&name) && entry.path().is_dir() {
            std::fs::remove_dir_all(entry.path()).map_err(io(&entry.path()))?;
            left.backups.push(name);
        }
    }
    left.backups.sort();
    let mut pending = vec![dir.join(super::OBJECTS)];
    while let Some(at) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in entries {
            let path = entry.map_err(io(&at))?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.is_dir() {
                pending.push(path);
            } else if is_partial_object(&name) {
                std::fs::remove_file(&path).map_err(io(&path))?;
                left.objects += 1;
            }
        }
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_partial_backups_and_copies_are_leftovers() {
        assert!(is_partial_backup(".20261207T130512.345Z.partial"));
        assert!(!is_partial_backup("20261207T130512.345Z"));
        assert!(!is_partial_backup(".lock"));
        assert!(!is_partial_backup(".notes.partial"));
        assert!(is_partial_object(
            ".0193f2c4-1b7e-7c4e-9a55-2b8a7a1e4f00.partial"
        ));
        assert!(!is_partial_object("0193f2c4-1b7e-7c4e-9a55-2b8a7a1e4f00"));
        assert!(!is_partial_object("..partial"));
    }
}
