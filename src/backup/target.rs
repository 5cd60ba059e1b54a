//! Where backups are kept: a directory, or an S3 bucket and prefix with the same layout
//! (`objects/<key>`, `<name>/<file>`). In a bucket a backup is complete once its
//! `manifest.jws` is there (it is uploaded last); in a directory once it is renamed into place.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::files::{self, object_path};
use crate::config::StoreUrl;
use crate::store::{ObjectKey, Store, Stored};

/// A backup target.
pub enum Target {
    Dir(PathBuf),
    Bucket { store: Store, url: String },
}

fn key(text: &str) -> Result<ObjectKey, String> {
    ObjectKey::from_stored(text).map_err(|e| e.to_string())
}

impl Target {
    /// `s3://bucket/prefix` (credentials and endpoint from the `AWS_*` variables) or a path.
    pub fn parse(text: &str, timeout: std::time::Duration) -> Result<Target, String> {
        if !text.starts_with("s3://") {
            if text.contains("://") {
                return Err(format!(
                    "{text}: a backup target is a directory or s3://bucket/prefix"
                ));
            }
            return Ok(Target::Dir(PathBuf::from(text)));
        }
        let url = crate::config::parse_store_url("--to", text).map_err(|e| e.to_string())?;
        if !matches!(url, StoreUrl::S3 { .. }) {
            return Err(format!("{text}: not an s3:// URL"));
        }
        let store = Store::open_with(&url, &[], timeout).map_err(|e| e.to_string())?;
        Ok(Target::Bucket {
            store,
            url: text.trim_end_matches('/').to_owned(),
        })
    }

    /// A backup named by a path or URL: a backup's own directory (or `s3://…/<name>`), or a
    /// target (its newest backup).
    pub async fn locate(
        text: &str,
        timeout: std::time::Duration,
    ) -> Result<(Target, String), String> {
        let trimmed = text.trim_end_matches('/');
        let last = trimmed.rsplit('/').next().unwrap_or_default();
        if super::is_backup_name(last) {
            let parent = &trimmed[..trimmed.len() - last.len()];
            let parent = if parent.is_empty() { "." } else { parent };
            return Ok((Target::parse(parent, timeout)?, last.to_owned()));
        }
        if !text.contains("://") {
            let path = Path::new(text);
            if path.join(super::MANIFEST).is_file() {
                // A backup directory renamed by hand.
                let parent = path.parent().unwrap_or(Path::new("."));
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                return Ok((Target::Dir(parent.to_path_buf()), name.into_owned()));
            }
        }
        let target = Target::parse(text, timeout)?;
        let name = target
            .backups()
            .await?
            .pop()
            .ok_or_else(|| format!("{text} holds no backup (no {})", super::MANIFEST))?;
        Ok((target, name))
    }

    pub fn shown(&self, name: &str) -> String {
        match self {
            Target::Dir(dir) => dir.join(name).display().to_string(),
            Target::Bucket { url, .. } => format!("{url}/{name}"),
        }
    }

    /// The complete backups, oldest first.
    pub async fn backups(&self) -> Result<Vec<String>, String> {
        match self {
            Target::Dir(dir) => Ok(super::backups_in(dir)
                .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect()),
            Target::Bucket { store, .. } => {
                let mut names: Vec<String> = store
                    .keys_under("")
                    .await
                    .map_err(|e| format!("cannot list the backup target: {e}"))?
                    .into_iter()
                    .filter_map(|k| {
                        let (name, file) = k.split_once('/')?;
                        (file == super::SIGNATURE && super::is_backup_name(name))
                            .then(|| name.to_owned())
                    })
                    .collect();
                names.sort();
                Ok(names)
            }
        }
    }

    /// One of a backup's own files, whole.
    pub async fn read(&self, name: &str, file: &str) -> Result<Vec<u8>, String> {
        match self {
            Target::Dir(dir) => {
                let path = dir.join(name).join(file);
                std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
            }
            Target::Bucket { store, .. } => Ok(store
                .get_small(&key(&format!("{name}/{file}"))?)
                .await
                .map_err(|e| format!("{name}/{file}: {e}"))?
                .to_vec()),
        }
    }

    /// A local directory holding the backup's own files: the backup itself, or a download of
    /// it (kept while the returned guard lives).
    pub async fn local(&self, name: &str) -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
        match self {
            Target::Dir(dir) => Ok((dir.join(name), None)),
            Target::Bucket { store, .. } => {
                let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
                let prefix = format!("{name}/");
                for k in store.keys_under(name).await.map_err(|e| e.to_string())? {
                    let file = k.strip_prefix(&prefix).unwrap_or_default();
                    if file.is_empty() || file.contains('/') {
                        continue;
                    }
                    files::copy_out(store, &k, &temp.path().join(file)).await?;
                }
                Ok((temp.path().to_path_buf(), Some(temp)))
            }
        }
    }

    /// The keys in the shared object area.
    pub async fn object_keys(&self) -> Result<HashSet<String>, String> {
        match self {
            Target::Dir(dir) => {
                let area = dir.join(super::OBJECTS);
                let mut found = Vec::new();
                if area.exists() {
                    walk(&area, &mut found).map_err(|e| e.to_string())?;
                }
                Ok(found
                    .iter()
                    .filter_map(|p| p.strip_prefix(&area).ok())
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect())
            }
            Target::Bucket { store, .. } => Ok(store
                .keys_under(super::OBJECTS)
                .await
                .map_err(|e| format!("cannot list the backup target: {e}"))?
                .into_iter()
                .filter_map(|k| k.strip_prefix("objects/").map(str::to_owned))
                .collect()),
        }
    }

    /// Copies the object `k` of `store` into the shared area; its size and SHA-256.
    pub async fn put_object(&self, store: &Store, k: &str) -> Result<(u64, String), String> {
        match self {
            Target::Dir(dir) => {
                let dest = object_path(&dir.join(super::OBJECTS), k)
                    .ok_or_else(|| format!("unusable object key {k:?}"))?;
                files::copy_out(store, k, &dest).await
            }
            Target::Bucket { store: to, .. } => {
                let fetched = store
                    .get(&key(k)?, None)
                    .await
                    .map_err(|e| format!("cannot read object {k}: {e}"))?;
                let stored = to
                    .put_stream(&key(&format!("objects/{k}"))?, fetched.body, u64::MAX)
                    .await
                    .map_err(|e| format!("cannot copy object {k} to the target: {e}"))?;
                Ok((stored.size, stored.sha256))
            }
        }
    }

    /// The size and SHA-256 of the object `k` in the shared area.
    pub async fn hash_object(&self, k: &str) -> Result<(u64, String), String> {
        self.hash_object_both(k)
            .await
            .map(|(size, sha, _)| (size, sha))
    }

    /// [`Target::hash_object`] with the object's SM3 too, read once.
    pub async fn hash_object_both(&self, k: &str) -> Result<(u64, String, String), String> {
        match self {
            Target::Dir(dir) => {
                let path = object_path(&dir.join(super::OBJECTS), k)
                    .ok_or_else(|| format!("the manifest names an unusable key {k:?}"))?;
                files::hash_file_both(&path)
                    .await
                    .map_err(|e| format!("object {k}: {e}"))
            }
            Target::Bucket { store, .. } => {
                use futures_util::StreamExt;
                use sha2::{Digest, Sha256};
                let fetched = store
                    .get(&key(&format!("objects/{k}"))?, None)
                    .await
                    .map_err(|e| format!("object {k}: {e}"))?;
                let (mut sha, mut sm3) = (Sha256::new(), sm3::Sm3::new());
                let (mut size, mut body) = (0u64, fetched.body);
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(|e| format!("object {k}: {e}"))?;
                    size += chunk.len() as u64;
                    sha.update(&chunk);
                    sm3.update(&chunk);
                }
                Ok((
                    size,
                    hex::encode(sha.finalize()),
                    hex::encode(sm3.finalize()),
                ))
            }
        }
    }

    /// Stores the object `k` of the shared area into `store`.
    pub async fn restore_object(&self, k: &str, store: &Store) -> Result<Stored, String> {
        match self {
            Target::Dir(dir) => {
                let path = object_path(&dir.join(super::OBJECTS), k).ok_or("unusable key")?;
                files::copy_in(store, k, &path).await
            }
            Target::Bucket { store: from, .. } => {
                let fetched = from
                    .get(&key(&format!("objects/{k}"))?, None)
                    .await
                    .map_err(|e| format!("object {k}: {e}"))?;
                store
                    .put_stream(&key(k)?, fetched.body, u64::MAX)
                    .await
                    .map_err(|e| format!("cannot store object {k}: {e}"))
            }
        }
    }

    /// Makes the backup written in `staging` the target's backup `name`.
    pub async fn publish(&self, staging: &Path, name: &str) -> Result<(), String> {
        match self {
            Target::Dir(dir) => {
                let dest = dir.join(name);
                std::fs::rename(staging, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
                if let Ok(parent) = std::fs::File::open(dir) {
                    let _ = parent.sync_all();
                }
                Ok(())
            }
            Target::Bucket { store, .. } => {
                let mut names: Vec<String> = std::fs::read_dir(staging)
                    .map_err(|e| e.to_string())?
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                // The signature last: its presence marks the backup complete.
                names.sort_by_key(|n| (n == super::SIGNATURE, n.clone()));
                for file in names {
                    files::copy_in(store, &format!("{name}/{file}"), &staging.join(&file)).await?;
                }
                Ok(())
            }
        }
    }

    /// Removes a backup's own files.
    pub async fn remove_backup(&self, name: &str) -> Result<(), String> {
        match self {
            Target::Dir(dir) => std::fs::remove_dir_all(dir.join(name))
                .map_err(|e| format!("{}: {e}", dir.join(name).display())),
            Target::Bucket { store, .. } => {
                let mut keys = store.keys_under(name).await.map_err(|e| e.to_string())?;
                // The signature first: a half-removed backup is no longer a backup.
                keys.sort_by_key(|k| !k.ends_with(super::SIGNATURE));
                for k in keys {
                    store.delete(&key(&k)?).await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }

    /// Removes the object `k` from the shared area.
    pub async fn remove_object(&self, k: &str) -> Result<(), String> {
        match self {
            Target::Dir(dir) => {
                let path = object_path(&dir.join(super::OBJECTS), k).ok_or("unusable key")?;
                std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                // Empty directories left behind go too.
                let area = dir.join(super::OBJECTS);
                let mut parent = path.parent();
                while let Some(p) = parent.filter(|p| *p != area) {
                    if std::fs::remove_dir(p).is_err() {
                        break;
                    }
                    parent = p.parent();
                }
                Ok(())
            }
            Target::Bucket { store, .. } => store
                .delete(&key(&format!("objects/{k}"))?)
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
