//! The server's secret key: generated on first start (mode 0600), shared by every instance that
//! points at the same file, never logged. Sub-keys for each purpose are derived from it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

/// 32 random bytes, and how contact fields are sealed with a key of their own. `Debug` never
/// shows them.
#[derive(Clone)]
pub struct ServerKey([u8; 32], FieldKey);

mod contacts;

pub use contacts::{Contact, FieldCipher};

/// The key contact fields are sealed under (derived from the server key, or given) and the
/// cipher new values are sealed with.
#[derive(Clone)]
struct FieldKey {
    root: [u8; 32],
    cipher: FieldCipher,
}

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
        let create = |source| KeyError::Create {
            path: shown.clone(),
            source,
        };
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let contents = format!("{}\n", hex::encode(bytes));
        if create_private_file(path, contents.as_bytes()).map_err(create)? {
            tracing::info!(path = %shown, "generated a new secret key");
            Ok(ServerKey::from_bytes(bytes))
        } else {
            Self::load(path)
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
        Ok(ServerKey::from_bytes(bytes))
    }

    fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut key = ServerKey(
            bytes,
            FieldKey {
                root: [0; 32],
                cipher: FieldCipher::default(),
            },
        );
        key.1.root = key.derive("contact-fields");
        key
    }

    /// This key sealing new contact fields with `cipher` (`PORTAL_FIELD_CIPHER`).
    pub fn with_field_cipher(mut self, cipher: FieldCipher) -> Self {
        self.1.cipher = cipher;
        self
    }

    /// This key sealing and opening contact fields under `given` (`PORTAL_FIELD_KEY_FILE`)
    /// instead of the key derived from the server key.
    pub fn with_field_key(mut self, given: [u8; 32]) -> Self {
        self.1.root = given;
        self
    }

    /// This key sealing and opening contact fields under the key in `path` (64 hexadecimal
    /// characters, as the server key's file).
    pub fn with_field_key_file(self, path: &Path) -> Result<Self, KeyError> {
        let given = Self::load(path)?;
        Ok(self.with_field_key(given.0))
    }

    /// The cipher new contact fields are sealed with.
    pub fn field_cipher(&self) -> FieldCipher {
        self.1.cipher
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

    /// `plain` sealed (AES-256-GCM under the key derived for `purpose`, bound to `bound_to`,
    /// e.g. the id of the row that keeps it): base64 of the nonce and the ciphertext. What is
    /// kept to be shown again (a TOTP secret, a voucher's code) is stored only like this.
    pub fn seal(&self, purpose: &str, bound_to: &[u8], plain: &[u8]) -> Option<String> {
        use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
        use aws_lc_rs::rand::{SecureRandom, SystemRandom};
        use base64::Engine;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.derive(purpose)).ok()?);
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut sealed = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(bound_to),
            &mut sealed,
        )
        .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Some(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// What [`ServerKey::seal`] sealed for `purpose` and `bound_to`; none if it was sealed for
    /// anything else, or altered.
    pub fn open(&self, purpose: &str, bound_to: &[u8], sealed: &str) -> Option<Vec<u8>> {
        use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let mut body = body.to_vec();
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.derive(purpose)).ok()?);
        let plain = key
            .open_in_place(
                Nonce::try_assume_unique_for_key(nonce).ok()?,
                Aad::from(bound_to),
                &mut body,
            )
            .ok()?;
        Some(plain.to_vec())
    }

    #[cfg(test)]
    pub fn for_tests(byte: u8) -> Self {
        ServerKey::from_bytes([byte; 32])
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

/// Creates `dir` and its missing parents readable by the owner only (0700).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `path` (and its directory, private) holding `contents`, mode 0600, unless it exists:
/// true if this call created it. The file appears whole or not at all — written and synced
/// under a temporary name, then linked into place, which fails if another process got there
/// first — so an instance starting at the same moment never reads a half-written key.
pub fn create_private_file(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    if path.exists() {
        return Ok(false);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::now_v7().simple()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod private_file_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Many threads creating one key file at once: exactly one creates it, every one then reads
    /// the same whole contents, and no temporary file is left.
    #[test]
    fn racing_creators_see_one_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh").join("secret.key");
        let created: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let path = path.clone();
                    s.spawn(move || {
                        let mine = format!("{i:064}\n");
                        let created = create_private_file(&path, mine.as_bytes()).unwrap();
                        let read = std::fs::read_to_string(&path).unwrap();
                        assert_eq!(read.len(), 65, "whole: {read:?}");
                        created
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(created.iter().filter(|c| **c).count(), 1);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }
}
