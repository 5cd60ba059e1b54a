//! The server's secret key: generated on first start (mode 0600), shared by every instance that
//! points at the same file, never logged. Sub-keys for each purpose are derived from it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

/// 32 random bytes. `Debug` never shows them.
#[derive(Clone)]
pub struct ServerKey([u8; 32]);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(…)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot create the secret key file {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the secret key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the secret key file {path} does not hold 64 hexadecimal characters")]
    Malformed { path: String },
    #[error("the manifest signing key file {path} does not hold a PEM Ed25519 PKCS #8 key")]
    BadSigningKey { path: String },
}

impl ServerKey {
    /// Reads the key at `path`, or creates it (and its directory) with fresh random bytes.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| KeyError::Create {
                path: shown.clone(),
                source,
            })?;
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(mut file) => {
                let write = file
                    .write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
                    .and_then(|()| file.sync_all());
                if let Err(source) = write {
                    let _ = std::fs::remove_file(path);
                    return Err(KeyError::Create {
                        path: shown,
                        source,
                    });
                }
                tracing::info!(path = %shown, "generated a new secret key");
                Ok(ServerKey(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(source) => Err(KeyError::Create {
                path: shown,
                source,
            }),
        }
    }

    fn load(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %shown, "the secret key file is readable by others; chmod 600 it");
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| KeyError::Malformed { path: shown })?;
        Ok(ServerKey(bytes))
    }

    /// A key for one purpose, so that no two uses of the server key share key material.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        self.mac(purpose.as_bytes(), b"")
    }

    /// HMAC-SHA256 of `message` under the key derived for `purpose`.
    pub fn mac(&self, purpose: &[u8], message: &[u8]) -> [u8; 32] {
        // HMAC takes keys of any length, so this cannot fail.
        #[allow(clippy::expect_used)]
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC accepts any key length");
        mac.update(purpose);
        mac.update(&[0]);
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    #[cfg(test)]
    pub fn for_tests(byte: u8) -> Self {
        ServerKey([byte; 32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret.key");
        let first = ServerKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(first.0, again.0);
        assert!(!format!("{first:?}").contains(&hex::encode(first.0)));
    }

    #[test]
    fn a_malformed_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            ServerKey::load_or_create(&path),
            Err(KeyError::Malformed { .. })
        ));
    }

    #[test]
    fn purposes_get_different_keys() {
        let key = ServerKey::for_tests(7);
        assert_ne!(key.derive("jwt"), key.derive("login"));
        assert_ne!(key.mac(b"a", b"bc"), key.mac(b"ab", b"c"));
    }
}
