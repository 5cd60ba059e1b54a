//! The SM2 signature (GB/T 32918.2, SM3 as its hash) beside the Ed25519 one, for a Chinese court
//! and a cryptography assessment (密评, GB/T 39786) that ask for the national algorithms.
//!
//! The key pair is generated on first start beside the secret key (PKCS #8 PEM, mode 0600, the
//! curve's OID 1.2.156.10197.1.301, readable by `openssl pkey`), or given by
//! `PORTAL_SM2_KEY_FILE`. Signing goes through [`ManifestSigner`], so that a certified
//! cryptographic module (a 密码模块 of GM/T 0028 level 2 or 3, reached through its own SDF/SKF
//! interface) can replace the software key without touching the bundle or the audit log: the
//! RustCrypto `sm2` crate used here is not independently audited.
//!
//! The signer ID is pinned to the default of GB/T 32918 / GM/T 0009, `1234567812345678`, and
//! written into each manifest; the Z value is computed from it and the public key as the standard
//! says. A signature is stored DER encoded (GM/T 0009 `SM2Signature ::= SEQUENCE { r INTEGER,
//! s INTEGER }`), as `openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt
//! distid:1234567812345678` and the other implementations read it.

use std::path::{Path, PathBuf};

use ::sm2::dsa::signature::{Signer, Verifier};
use ::sm2::dsa::{Signature, SigningKey, VerifyingKey};
use ::sm2::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};

use crate::keys::KeyError;

/// The distinguishing identifier of GB/T 32918 / GM/T 0009's default, pinned for every signature.
pub const SIGNER_ID: &str = "1234567812345678";

/// The algorithm's name as the manifest and the verification page print it.
pub const ALGORITHM: &str = "SM2-with-SM3";

/// The file of a bundle that holds the SM2 signature over the exact bytes of `manifest.json`.
pub const SIGNATURE_FILE: &str = "manifest.sm2.sig";

/// Why a signature could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign with {algorithm}: {reason}")]
pub struct SignError {
    pub algorithm: &'static str,
    pub reason: String,
}

/// What makes a signature the portal gives out beside its Ed25519 one. One small trait so that a
/// certified hardware module (a signature server or a PCIe card behind its vendor's SDF
/// interface) can stand where the software [`Sm2Key`] stands now: it signs, it names its
/// algorithm and signer ID, and it says its public key. Verification needs no secret and stays
/// in software ([`Sm2Public`]).
pub trait ManifestSigner: Send + Sync + std::fmt::Debug {
    /// `SM2-with-SM3`.
    fn algorithm(&self) -> &'static str;
    /// The distinguishing identifier the signature's Z value is computed with.
    fn signer_id(&self) -> &str;
    /// The public key as a PEM SubjectPublicKeyInfo.
    fn public_pem(&self) -> String;
    /// The public key as an uncompressed SEC1 point (`04 ‖ x ‖ y`), in hex.
    fn public_hex(&self) -> String;
    /// The DER signature of `payload` (the hash and the Z value are the signer's business).
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// The software SM2 key (RustCrypto `sm2`).
pub struct Sm2Key {
    signing: SigningKey,
    public: Sm2Public,
}

impl std::fmt::Debug for Sm2Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sm2Key")
            .field("public", &self.public.hex)
            .finish()
    }
}

impl Sm2Key {
    /// Where the key pair lives unless `PORTAL_SM2_KEY_FILE` says: beside the secret key file.
    pub fn path_beside(secret_key_file: &Path) -> PathBuf {
        secret_key_file.with_file_name("manifest-signing-sm2.pem")
    }

    /// Reads the key pair at `path`, or generates it (another instance may win the race to
    /// create it; then its key is read).
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let create = |source| KeyError::Create {
            path: shown.clone(),
            source,
        };
        let rng = aws_lc_rs::rand::SystemRandom::new();
        // A random scalar: 32 bytes below the group order and not zero (tried again otherwise,
        // about once in 2^32).
        let secret = loop {
            let mut bytes = [0u8; 32];
            aws_lc_rs::rand::SecureRandom::fill(&rng, &mut bytes)
                .map_err(|_| create(std::io::Error::other("no random bytes for the SM2 key")))?;
            if let Ok(secret) = ::sm2::SecretKey::from_slice(&bytes) {
                break secret;
            }
        };
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| create(std::io::Error::other(e.to_string())))?;
        if crate::keys::create_private_file(path, pem.as_bytes()).map_err(create)? {
            tracing::info!(path = %shown, "generated the SM2 manifest signing key");
            return Self::from_secret(&secret, &shown);
        }
        Self::load(path)
    }

    /// Reads the key pair given at `path` (a PKCS #8 PEM SM2 private key, as `openssl genpkey
    /// -algorithm SM2` writes it); it must exist.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        let secret = ::sm2::SecretKey::from_pkcs8_pem(&text).map_err(|_| KeyError::Read {
            path: shown.clone(),
            source: std::io::Error::other("not a PEM PKCS #8 SM2 private key"),
        })?;
        Self::from_secret(&secret, &shown)
    }

    fn from_secret(secret: &::sm2::SecretKey, shown: &str) -> Result<Self, KeyError> {
        let signing = SigningKey::new(SIGNER_ID, secret).map_err(|_| KeyError::Read {
            path: shown.to_owned(),
            source: std::io::Error::other("not a usable SM2 key"),
        })?;
        let public = Sm2Public::from_verifying(signing.verifying_key().clone());
        Ok(Sm2Key { signing, public })
    }

    /// The public half.
    pub fn public(&self) -> &Sm2Public {
        &self.public
    }
}

impl ManifestSigner for Sm2Key {
    fn algorithm(&self) -> &'static str {
        ALGORITHM
    }

    fn signer_id(&self) -> &str {
        SIGNER_ID
    }

    fn public_pem(&self) -> String {
        self.public.pem.clone()
    }

    fn public_hex(&self) -> String {
        self.public.hex.clone()
    }

    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature: Signature = self.signing.try_sign(payload).map_err(|e| SignError {
            algorithm: ALGORITHM,
            reason: e.to_string(),
        })?;
        Ok(signature.to_der().to_vec())
    }
}

/// Why an SM2 signature did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Sm2Error {
    #[error(
        "SM2 签名格式不正确（应为 DER 编码的 r、s） (the SM2 signature is not a DER SM2Signature)"
    )]
    Malformed,
    #[error(
        "SM2 签名无效：清单在签名后被改动过，或签名不是本平台所作 (invalid SM2 signature: the manifest was changed after signing, or not signed by this portal)"
    )]
    BadSignature,
}

/// An SM2 public key with the pinned signer ID: what checks a signature.
#[derive(Clone)]
pub struct Sm2Public {
    key: VerifyingKey,
    pem: String,
    hex: String,
}

impl Sm2Public {
    fn from_verifying(key: VerifyingKey) -> Self {
        let hex = hex::encode(key.to_sec1_bytes());
        let public: ::sm2::PublicKey = (&key).into();
        let pem = public.to_public_key_pem(LineEnding::LF).unwrap_or_default();
        Sm2Public { key, pem, hex }
    }

    /// `None` unless `text` is a PEM SM2 SubjectPublicKeyInfo.
    pub fn from_pem(text: &str) -> Option<Self> {
        let public = ::sm2::PublicKey::from_public_key_pem(text.trim()).ok()?;
        VerifyingKey::new(SIGNER_ID, public)
            .ok()
            .map(Self::from_verifying)
    }

    /// `None` unless `hex` is an SM2 point in SEC1 form.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        VerifyingKey::from_sec1_bytes(SIGNER_ID, &bytes)
            .ok()
            .map(Self::from_verifying)
    }

    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The uncompressed point `04 ‖ x ‖ y` in hex.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Checks `signature` (DER, or the 64 bytes `r ‖ s`) over `payload`.
    pub fn verify(&self, payload: &[u8], signature: &[u8]) -> Result<(), Sm2Error> {
        let signature = Signature::from_der(signature)
            .or_else(|_| Signature::from_slice(signature))
            .map_err(|_| Sm2Error::Malformed)?;
        self.key
            .verify(payload, &signature)
            .map_err(|_| Sm2Error::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_verifies_and_notices_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sm2.pem");
        let key = Sm2Key::load_or_create(&path).unwrap();
        let again = Sm2Key::load_or_create(&path).unwrap();
        assert_eq!(
            key.public_hex(),
            again.public_hex(),
            "read back, not made anew"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key file is the owner's alone");
        let manifest = "{\"case_number\":\"甲-1\"}".as_bytes();
        let signature = key.sign(manifest).unwrap();
        assert_eq!(signature[0], 0x30, "DER");
        let public = Sm2Public::from_pem(&key.public_pem()).unwrap();
        assert_eq!(public.hex(), key.public_hex());
        assert!(public.hex().starts_with("04") && public.hex().len() == 130);
        public.verify(manifest, &signature).unwrap();
        assert_eq!(
            public.verify("{\"case_number\":\"甲-2\"}".as_bytes(), &signature),
            Err(Sm2Error::BadSignature)
        );
        let mut altered = signature.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(
            public.verify(manifest, &altered),
            Err(Sm2Error::BadSignature)
        );
        assert_eq!(public.verify(manifest, b"abc"), Err(Sm2Error::Malformed));
        let other = Sm2Key::load_or_create(&dir.path().join("other.pem")).unwrap();
        assert_eq!(
            other.public().verify(manifest, &signature),
            Err(Sm2Error::BadSignature)
        );
        // A key given by the setting must exist.
        assert!(Sm2Key::load(&dir.path().join("absent.pem")).is_err());
        assert!(Sm2Key::load(&path).is_ok());
    }

    /// The example of GB/T 32918.5-2017 (GM/T 0003.5) on the recommended curve: the key
    /// `3945208F…C5B8`, the ID `1234567812345678`, the message `message digest`, and its
    /// signature (made with the standard's fixed k, which this crate's deterministic k is not,
    /// so the signature is verified rather than remade).
    #[test]
    fn the_standard_example_verifies() {
        let d = hex::decode("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
            .unwrap();
        let secret = ::sm2::SecretKey::from_slice(&d).unwrap();
        let key = Sm2Key::from_secret(&secret, "example").unwrap();
        assert_eq!(
            key.public_hex(),
            "0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020\
             ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
        );
        let rs = hex::decode(
            "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3\
             B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA",
        )
        .unwrap();
        key.public().verify(b"message digest", &rs).unwrap();
        assert_eq!(
            key.public().verify(b"message digesT", &rs),
            Err(Sm2Error::BadSignature)
        );
        // And what this key signs now verifies with the standard's public key.
        let public = Sm2Public::from_hex(key.public().hex()).unwrap();
        public
            .verify(b"message digest", &key.sign(b"message digest").unwrap())
            .unwrap();
    }
}
