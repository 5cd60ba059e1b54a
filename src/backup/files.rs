//! The file work of backups: hashing, copying objects out of and into the store, writing files
//! durably, and the PostgreSQL client programs.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::store::{ObjectKey, Store};

/// The size and lower-case hex SHA-256 of a file.
pub async fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    hash_file_both(path).await.map(|(size, sha, _)| (size, sha))
}

/// The size, SHA-256 and SM3 (lower-case hex) of a file, read once.
pub async fn hash_file_both(path: &Path) -> std::io::Result<(u64, String, String)> {
    let mut file = tokio::fs::File::open(path).await?;
    let (mut sha, mut sm3) = (Sha256::new(), sm3::Sm3::new());
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        size += n as u64;
        sha.update(&buf[..n]);
        sm3.update(&buf[..n]);
    }
    Ok((
        size,
        hex::encode(sha.finalize()),
        hex::encode(sm3.finalize()),
    ))
}

/// Writes `bytes` to `path` and syncs it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Where an object lives in a target's object area; `None` for a key that is no store key.
pub fn object_path(objects: &Path, key: &str) -> Option<PathBuf> {
    let parsed = ObjectKey::from_stored(key).ok()?;
    if parsed.as_str() != key || key.is_empty() {
        return None;
    }
    Some(objects.join(key))
}

/// Copies the object `key` to `dest` (through a temporary file renamed at the end); returns
/// its size and SHA-256.
pub async fn copy_out(store: &Store, key: &str, dest: &Path) -> Result<(u64, String), String> {
    let object = ObjectKey::from_stored(key).map_err(|e| e.to_string())?;
    let fetched = store
        .get(&object, None)
        .await
        .map_err(|e| format!("cannot read object {key}: {e}"))?;
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let temporary = dest.with_file_name(format!(
        ".{}.partial",
        dest.file_name().unwrap_or_default().to_string_lossy()
    ));
    let io = |e: std::io::Error| format!("cannot write {}: {e}", temporary.display());
    let mut file = tokio::fs::File::create(&temporary).await.map_err(io)?;
    let mut sha = Sha256::new();
    let mut size = 0u64;
    let mut body = fetched.body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("cannot read object {key}: {e}"))?;
        sha.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.sync_all().await.map_err(io)?;
    drop(file);
    tokio::fs::rename(&temporary, dest).await.map_err(io)?;
    Ok((size, hex::encode(sha.finalize())))
}

/// Stores the file at `src` as the object `key`; returns what the store measured.
pub async fn copy_in(store: &Store, key: &str, src: &Path) -> Result<crate::store::Stored, String> {
    let object = ObjectKey::from_stored(key).map_err(|e| e.to_string())?;
    let file = tokio::fs::File::open(src)
        .await
        .map_err(|e| format!("cannot read {}: {e}", src.display()))?;
    store
        .put_stream(&object, file_stream(file), u64::MAX)
        .await
        .map_err(|e| format!("cannot store object {key}: {e}"))
}

fn file_stream(file: tokio::fs::File) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 256 * 1024];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), file)))
    })
}

/// The file of a `sqlite:` URL (none for an in-memory database).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.starts_with(':')).then(|| PathBuf::from(path))
}

/// A PostgreSQL client program (`pg_dump`, `pg_restore`) for the database at `url`: the
/// password goes in `PGPASSWORD`, never on the command line.
pub fn pg_command(program: &str, url: &str) -> Result<(tokio::process::Command, String), String> {
    let mut parsed = url::Url::parse(url).map_err(|e| format!("database URL: {e}"))?;
    let password = parsed.password().map(str::to_owned);
    let _ = parsed.set_password(None);
    // libpq does not know sqlx's own parameters.
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| {
            matches!(
                k.as_ref(),
                "sslmode" | "sslrootcert" | "sslcert" | "sslkey" | "application_name"
            )
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed.set_query(None);
    if !kept.is_empty() {
        parsed.query_pairs_mut().extend_pairs(kept);
    }
    let mut command = tokio::process::Command::new(program);
    if let Some(password) = password {
        let decoded = url::form_urlencoded::parse(format!("p={password}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or(password);
        command.env("PGPASSWORD", decoded);
    }
    command.kill_on_drop(true);
    Ok((command, parsed.to_string()))
}

/// Runs a client program to its end; its standard error is the failure's reason.
pub async fn run(mut command: tokio::process::Command, what: &str) -> Result<Vec<u8>, String> {
    let out = command
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {what} (install the PostgreSQL client): {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{what} failed ({}): {}",
            out.status,
            err.lines().take(3).collect::<Vec<_>>().join(" / ")
        ));
    }
    Ok(out.stdout)
}
