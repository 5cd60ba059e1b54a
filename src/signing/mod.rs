//! The digital stamp on bundles: the portal's Ed25519 key pair, generated on first start beside
//! the secret key (PKCS #8, mode 0600) and shared by every instance pointing at the same file. A
//! bundle's `manifest.json` is signed as a compact JWS (RFC 7515, `alg` EdDSA) with
//! `jsonwebtoken`; the public key is published as a PEM and a JWK set, so anyone can check a
//! manifest offline or on the portal's public verification page.
//!
//! Beside it, an SM2 signature (`sm2_key`: GB/T 32918 with SM3, behind the [`ManifestSigner`]
//! trait a certified module may take over) over the same bytes, and an RFC 3161 timestamp token
//! from the authority `PORTAL_TSA_URL` names (`timestamp`).

use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};

use crate::keys::KeyError;

pub mod sm2_key;
pub mod timestamp;

pub use sm2_key::{ManifestSigner, Sm2Error, Sm2Key, Sm2Public};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

pub struct ManifestKey {
    encoding: EncodingKey,
    public: Vec<u8>,
    kid: String,
    /// The SM2 signer beside this key, where the installation has one (every running portal
    /// does: `startup` generates or reads it).
    sm2: Option<std::sync::Arc<dyn ManifestSigner>>,
}

impl std::fmt::Debug for ManifestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestKey")
            .field("kid", &self.kid)
            .finish()
    }
}

/// Why a JWS did not verify, in words for the verification page.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error(
        "不是有效的 JWS 紧凑格式（应为以两个“.”分隔的三段） (not a compact JWS: three parts separated by two dots)"
    )]
    Malformed,
    #[error("签名算法不是 EdDSA (the signature algorithm is not EdDSA)")]
    Algorithm,
    #[error(
        "签名所用的密钥不是本平台的密钥（kid {0}） (the signing key is not this portal's (kid {0}))"
    )]
    OtherKey(String),
    #[error(
        "签名无效：清单在签名后被改动过，或签名不是本平台所作 (invalid signature: the manifest was changed after signing, or not signed by this portal)"
    )]
    BadSignature,
}

impl ManifestKey {
    /// Where the key pair lives: beside the secret key file.
    pub fn path_beside(secret_key_file: &Path) -> PathBuf {
        secret_key_file.with_file_name("manifest-signing-ed25519.pem")
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
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| create(std::io::Error::other("Ed25519 key generation failed")))?;
        let contents = pem("PRIVATE KEY", pkcs8.as_ref());
        if crate::keys::create_private_file(path, contents.as_bytes()).map_err(create)? {
            tracing::info!(path = %shown, "generated the manifest signing key");
            return Self::from_pkcs8(pkcs8.as_ref(), &shown);
        }
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        let der = unpem(&text, "PRIVATE KEY").ok_or(KeyError::BadSigningKey {
            path: shown.clone(),
        })?;
        Self::from_pkcs8(&der, &shown)
    }

    fn from_pkcs8(der: &[u8], shown: &str) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| KeyError::BadSigningKey {
            path: shown.to_owned(),
        })?;
        let public = pair.public_key().as_ref().to_vec();
        let kid = hex::encode(&Sha256::digest(&public)[..8]);
        Ok(ManifestKey {
            encoding: EncodingKey::from_ed_der(der),
            public,
            kid,
            sm2: None,
        })
    }

    /// This key with `signer` signing beside it (SM2).
    pub fn with_sm2(mut self, signer: std::sync::Arc<dyn ManifestSigner>) -> Self {
        self.sm2 = Some(signer);
        self
    }

    /// The SM2 signer beside this key, if any.
    pub fn sm2(&self) -> Option<&dyn ManifestSigner> {
        self.sm2.as_deref()
    }

    /// The SM2 public key that checks what [`ManifestKey::sm2`] signs.
    pub fn sm2_public(&self) -> Option<Sm2Public> {
        self.sm2
            .as_ref()
            .and_then(|s| Sm2Public::from_pem(&s.public_pem()))
    }

    /// The key id carried in every JWS header: the first 8 bytes of the public key's SHA-256.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a PEM SubjectPublicKeyInfo (what `openssl pkeyutl -verify` takes).
    pub fn public_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.public);
        pem("PUBLIC KEY", &der)
    }

    /// The public key as a JWK set (RFC 8037 OKP key).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": self.kid, "x": URL_SAFE_NO_PAD.encode(&self.public),
        }]})
    }

    /// `payload` (the exact bytes of `manifest.json`) as a compact JWS.
    pub fn sign(&self, payload: &[u8]) -> Result<String, jsonwebtoken::errors::Error> {
        let header = serde_json::json!({ "alg": "EdDSA", "typ": "JOSE", "kid": self.kid,
            "cty": "application/json" });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &self.encoding, Algorithm::EdDSA)?;
        Ok(format!("{signing_input}.{signature}"))
    }

    /// Checks a compact JWS made by [`ManifestKey::sign`] and returns its payload.
    pub fn verify(&self, jws: &str) -> Result<Vec<u8>, VerifyError> {
        verify_with(&self.public, &self.kid, jws)
    }
}

/// The public half alone, read from the PEM [`ManifestKey::public_pem`] wrote: what checks a
/// signature where the private key is not (a backup's manifest).
pub struct PublicKey {
    public: Vec<u8>,
    kid: String,
}

impl PublicKey {
    /// `None` unless `text` is a PEM Ed25519 SubjectPublicKeyInfo.
    pub fn from_pem(text: &str) -> Option<Self> {
        let der = unpem(text, "PUBLIC KEY")?;
        let public = der.strip_prefix(&SPKI_PREFIX[..])?.to_vec();
        if public.len() != 32 {
            return None;
        }
        let kid = hex::encode(&Sha256::digest(&public)[..8]);
        Some(PublicKey { public, kid })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// As [`ManifestKey::verify`].
    pub fn verify(&self, jws: &str) -> Result<Vec<u8>, VerifyError> {
        verify_with(&self.public, &self.kid, jws)
    }
}

fn verify_with(public: &[u8], own_kid: &str, jws: &str) -> Result<Vec<u8>, VerifyError> {
    let jws = jws.trim();
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(VerifyError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| VerifyError::Malformed)?;
    if header["alg"] != "EdDSA" {
        return Err(VerifyError::Algorithm);
    }
    if let Some(kid) = header["kid"].as_str().filter(|k| *k != own_kid) {
        return Err(VerifyError::OtherKey(kid.to_owned()));
    }
    let key = DecodingKey::from_ed_der(public);
    let signing_input = &jws[..h.len() + 1 + p.len()];
    match jsonwebtoken::crypto::verify(s, signing_input.as_bytes(), &key, Algorithm::EdDSA) {
        Ok(true) => Ok(payload),
        Ok(false) => Err(VerifyError::BadSignature),
        Err(_) => Err(VerifyError::Malformed),
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn unpem(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let inner = text.split(&begin).nth(1)?.split(&end).next()?;
    let joined: String = inner.split_whitespace().collect();
    STANDARD.decode(joined).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_verifies_and_notices_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let key = ManifestKey::load_or_create(&path).unwrap();
        let again = ManifestKey::load_or_create(&path).unwrap();
        assert_eq!(
            key.kid(),
            again.kid(),
            "the second start reads the same key"
        );
        let manifest = "{\"case_number\":\"甲-1\"}".as_bytes();
        let jws = key.sign(manifest).unwrap();
        assert_eq!(again.verify(&jws).unwrap(), manifest);
        assert_eq!(key.sign(manifest).unwrap(), jws, "Ed25519 is deterministic");

        // One byte of the payload changed.
        let parts: Vec<&str> = jws.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode("{\"case_number\":\"甲-2\"}".as_bytes());
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(key.verify(&tampered), Err(VerifyError::BadSignature));
        assert_eq!(key.verify("abc"), Err(VerifyError::Malformed));

        let other = ManifestKey::load_or_create(&dir.path().join("other.pem")).unwrap();
        assert!(matches!(other.verify(&jws), Err(VerifyError::OtherKey(_))));
        assert!(
            key.public_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA")
        );
        assert_eq!(key.jwks()["keys"][0]["kid"], key.kid());
        let public = PublicKey::from_pem(&key.public_pem()).unwrap();
        assert_eq!(public.kid(), key.kid());
        assert_eq!(public.verify(&jws).unwrap(), manifest);
        assert_eq!(public.verify(&tampered), Err(VerifyError::BadSignature));
        assert!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_none()
        );
    }

    proptest::proptest! {
        /// The public verification page passes anything pasted into it here: an answer, never
        /// a panic, and never "valid" for something this key did not sign.
        #[test]
        fn any_pasted_text_is_answered(text in "\\PC{0,200}|[A-Za-z0-9_.-]{0,120}") {
            let dir = tempfile::tempdir().unwrap();
            let key = ManifestKey::load_or_create(&dir.path().join("k.pem")).unwrap();
            proptest::prop_assert!(key.verify(&text).is_err());
        }
    }
}
