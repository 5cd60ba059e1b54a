//! What a bundle carries beside `manifest.jws` (issue 36): the SM2 signature over the same
//! `manifest.json` bytes (`manifest.sm2.sig`, DER), and, with `PORTAL_TSA_URL`, the RFC 3161
//! timestamp of those bytes (`manifest.tsr`, the authority's DER response).
//!
//! The timestamp is asked for while the bundle is planned (its length must be known before the
//! first byte) and kept with the bundle's row, so the same bundle asked for again is the same
//! zip. When the authority fails the bundle is refused (503, `unavailable`), not delivered
//! without it: the installation promised a trusted time on every bundle, and a copy without one
//! could not be told from one of before the promise, while a court may weigh two copies of "the
//! same" bundle differently. The refusal is brief: once stamped, a bundle never asks again.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::db::entities::bundle;
use crate::error::AppError;
use crate::signing::ManifestKey;
use crate::signing::sm2_key::{ManifestSigner, SIGNATURE_FILE};
use crate::signing::timestamp;

/// The file of a bundle that holds the timestamp response.
pub const TIMESTAMP_FILE: &str = "manifest.tsr";

/// The longest the authority may take to answer, connecting included.
const TSA_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// The manifest's `sm2` member: what checks `manifest.sm2.sig`.
pub fn sm2_block(signer: &dyn ManifestSigner) -> serde_json::Value {
    serde_json::json!({
        "algorithm": signer.algorithm(),
        "signer_id": signer.signer_id(),
        "public_key": signer.public_hex(),
        "signature_file": SIGNATURE_FILE,
        "signature_encoding": "DER SM2Signature (GM/T 0009), over the exact bytes of manifest.json",
    })
}

/// The files that go beside `manifest.jws`: the SM2 signature where the key has a signer, the
/// timestamp where an authority is set (asked for now unless `row` keeps one of these bytes).
pub async fn beside(
    db: &sea_orm::DatabaseConnection,
    key: &ManifestKey,
    tsa: Option<&url::Url>,
    row: &bundle::Model,
    manifest: &[u8],
) -> Result<Vec<(&'static str, Vec<u8>)>, AppError> {
    let mut files = Vec::new();
    if let Some(sm2) = key.sm2() {
        files.push((
            SIGNATURE_FILE,
            sm2.sign(manifest).map_err(AppError::internal)?,
        ));
    }
    let Some(url) = tsa else {
        return Ok(files);
    };
    let kept = row
        .timestamp_token
        .as_ref()
        .filter(|t| timestamp::check(t, manifest).is_ok());
    let token = match kept {
        Some(token) => token.clone(),
        None => {
            let token = timestamp::request(url, manifest, TSA_DEADLINE)
                .await
                .map_err(|e| AppError::Unavailable {
                    part: "time-stamping authority",
                    cause: Some(Box::new(e)),
                })?;
            // Two first requests at once: the first token stored wins, and both serve it
            // (one bundle, one set of bytes).
            bundle::Entity::update_many()
                .col_expr(
                    bundle::Column::TimestampToken,
                    sea_orm::sea_query::Expr::value(token.clone()),
                )
                .filter(bundle::Column::Id.eq(row.id))
                .filter(bundle::Column::TimestampToken.is_null())
                .exec(db)
                .await?;
            bundle::Entity::find_by_id(row.id)
                .one(db)
                .await?
                .and_then(|r| r.timestamp_token)
                .filter(|t| timestamp::check(t, manifest).is_ok())
                .unwrap_or(token)
        }
    };
    files.push((TIMESTAMP_FILE, token));
    Ok(files)
}

/// The files beside `manifest.jws` as a downloaded zip holds them.
#[derive(Debug, Default)]
pub struct Beside {
    /// Whether these were read from the whole zip (else only `manifest.jws` was given, and
    /// nothing beside it can be judged missing).
    pub from_zip: bool,
    pub sm2: Option<Vec<u8>>,
    pub timestamp: Option<Vec<u8>>,
}

/// Reads `manifest.sm2.sig` and `manifest.tsr` out of a bundle (each at most 64 KiB; absent or
/// unreadable as none).
pub fn read_beside(zip: impl std::io::Read + std::io::Seek) -> Beside {
    use std::io::Read;
    let Ok(mut archive) = zip::ZipArchive::new(zip) else {
        return Beside::default();
    };
    let mut read = |name: &str| {
        let entry = archive.by_name(name).ok()?;
        let mut out = Vec::new();
        entry.take(64 * 1024).read_to_end(&mut out).ok()?;
        Some(out)
    };
    Beside {
        from_zip: true,
        sm2: read(SIGNATURE_FILE),
        timestamp: read(TIMESTAMP_FILE),
    }
}

/// What became of the SM2 signature.
#[derive(Debug, PartialEq, Eq)]
pub enum Sm2Outcome {
    Valid,
    /// Neither announced in the manifest nor present: a bundle made before SM2 signatures.
    NotPresent,
    /// The manifest announces one, the bundle lacks it: taken out after signing.
    Removed,
    /// Only `manifest.jws` was given, not the zip that holds the SM2 signature.
    NotGiven,
    Invalid(crate::signing::Sm2Error),
    /// Present, but this installation has no SM2 key to check it with.
    NoKey,
}

/// What became of the timestamp.
#[derive(Debug, PartialEq, Eq)]
pub enum TimestampOutcome {
    NotPresent,
    Removed,
    Valid(timestamp::TimeStamp),
    Invalid(timestamp::TimestampError),
}

/// The checks beside the Ed25519 one, of `manifest` (the payload its JWS verified).
#[derive(Debug)]
pub struct BesideCheck {
    pub sm2: Sm2Outcome,
    pub timestamp: TimestampOutcome,
}

impl BesideCheck {
    /// Whether nothing beside the Ed25519 signature fails.
    pub fn ok(&self) -> bool {
        !matches!(
            self.sm2,
            Sm2Outcome::Removed | Sm2Outcome::Invalid(_) | Sm2Outcome::NoKey
        ) && !matches!(
            self.timestamp,
            TimestampOutcome::Removed | TimestampOutcome::Invalid(_)
        )
    }

    /// The algorithms whose check passed: `Ed25519` always (this is asked after it passed),
    /// then `SM2-with-SM3` and `RFC 3161` where they did.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut out = vec!["Ed25519"];
        if self.sm2 == Sm2Outcome::Valid {
            out.push(crate::signing::sm2_key::ALGORITHM);
        }
        if matches!(self.timestamp, TimestampOutcome::Valid(_)) {
            out.push("RFC 3161");
        }
        out
    }

    /// Each finding in words (`中文 (English)`), with whether it is good news.
    pub fn findings(&self) -> Vec<(bool, String)> {
        let mut out = vec![(
            self.ok(),
            format!(
                "已核验的签名算法：{} (signature algorithms checked: {})",
                self.algorithms().join("、"),
                self.algorithms().join(", ")
            ),
        )];
        out.push(match &self.sm2 {
            Sm2Outcome::Valid => (true, format!("SM2 签名有效（SM3 杂凑，签名者 ID {id}） (the SM2 signature is valid (SM3 hash, signer ID {id}))", id = crate::signing::sm2_key::SIGNER_ID)),
            Sm2Outcome::NotPresent => (true, "此证据包没有 SM2 签名：在启用 SM2 之前生成的证据包只有 Ed25519 签名 (this bundle has no SM2 signature: bundles made before SM2 signing carry only the Ed25519 one)".to_owned()),
            Sm2Outcome::Removed => (false, "SM2 签名缺失：清单声明有 SM2 签名（manifest.sm2.sig），证据包中却没有 (the SM2 signature is missing: the manifest announces manifest.sm2.sig, the bundle lacks it)".to_owned()),
            Sm2Outcome::Invalid(e) => (false, e.to_string()),
            Sm2Outcome::NotGiven => (true, "SM2 签名未核验：只提交了 manifest.jws，上传整个证据包（zip）可一并核验 (the SM2 signature was not checked: only manifest.jws was given; upload the whole bundle (zip) to check it too)".to_owned()),
            Sm2Outcome::NoKey => (false, "本平台没有可核验此 SM2 签名的公钥 (this portal has no SM2 key to check this SM2 signature with)".to_owned()),
        });
        match &self.timestamp {
            TimestampOutcome::NotPresent => {}
            TimestampOutcome::Valid(t) => out.push((true, format!(
                "可信时间戳（RFC 3161）：{time}，时间戳与此清单一致 (trusted timestamp (RFC 3161): {time}; it certifies this manifest)",
                time = timestamp::shown(t.gen_time)
            ))),
            TimestampOutcome::Removed => out.push((false, "可信时间戳缺失：清单声明了时间戳机构，证据包中却没有 manifest.tsr (the trusted timestamp is missing: the manifest names a time-stamping authority, the bundle has no manifest.tsr)".to_owned())),
            TimestampOutcome::Invalid(e) => out.push((false, format!(
                "可信时间戳无效：{e} (the trusted timestamp is not valid: {e})"
            ))),
        }
        out
    }
}

/// Checks what a bundle holds beside its JWS against `manifest`, the payload the JWS verified
/// (so the manifest's own claims — an `sm2` member, a `timestamp_authority` — are the
/// portal's, and a file removed after signing is noticed).
pub fn check_beside(key: &ManifestKey, manifest: &[u8], beside: &Beside) -> BesideCheck {
    let claims: serde_json::Value = serde_json::from_slice(manifest).unwrap_or_default();
    let sm2 = match (&beside.sm2, claims.get("sm2").is_some()) {
        (None, true) if !beside.from_zip => Sm2Outcome::NotGiven,
        (None, false) => Sm2Outcome::NotPresent,
        (None, true) => Sm2Outcome::Removed,
        (Some(signature), _) => match key.sm2_public() {
            None => Sm2Outcome::NoKey,
            Some(public) => match public.verify(manifest, signature) {
                Ok(()) => Sm2Outcome::Valid,
                Err(e) => Sm2Outcome::Invalid(e),
            },
        },
    };
    let timestamp = match (
        &beside.timestamp,
        claims.get("timestamp_authority").is_some(),
    ) {
        (None, true) if beside.from_zip => TimestampOutcome::Removed,
        (None, _) => TimestampOutcome::NotPresent,
        (Some(token), _) => match timestamp::check(token, manifest) {
            Ok(t) => TimestampOutcome::Valid(t),
            Err(e) => TimestampOutcome::Invalid(e),
        },
    };
    BesideCheck { sm2, timestamp }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (tempfile::TempDir, ManifestKey) {
        let dir = tempfile::tempdir().unwrap();
        let key = ManifestKey::load_or_create(&dir.path().join("ed.pem"))
            .unwrap()
            .with_sm2(std::sync::Arc::new(
                crate::signing::Sm2Key::load_or_create(&dir.path().join("sm2.pem")).unwrap(),
            ));
        (dir, key)
    }

    #[test]
    fn each_algorithm_is_judged_and_named() {
        let (_dir, key) = keys();
        let signer = key.sm2().unwrap();
        let manifest =
            serde_json::to_vec(&serde_json::json!({ "sm2": sm2_block(signer) })).unwrap();
        let signature = signer.sign(&manifest).unwrap();
        let zip = |sm2: Option<Vec<u8>>| Beside {
            from_zip: true,
            sm2,
            timestamp: None,
        };
        let good = check_beside(&key, &manifest, &zip(Some(signature.clone())));
        assert_eq!(good.sm2, Sm2Outcome::Valid);
        assert!(good.ok());
        assert_eq!(good.algorithms(), ["Ed25519", "SM2-with-SM3"]);

        let mut altered = signature.clone();
        altered[10] ^= 0x40;
        let bad = check_beside(&key, &manifest, &zip(Some(altered)));
        assert!(matches!(bad.sm2, Sm2Outcome::Invalid(_)));
        assert!(!bad.ok());
        assert!(
            bad.findings()
                .iter()
                .any(|(ok, line)| !ok && line.contains("SM2"))
        );

        assert_eq!(
            check_beside(&key, &manifest, &zip(None)).sm2,
            Sm2Outcome::Removed,
            "announced, then taken out"
        );
        let jws_only = Beside::default();
        assert_eq!(
            check_beside(&key, &manifest, &jws_only).sm2,
            Sm2Outcome::NotGiven
        );
        let older = check_beside(
            &key,
            b"{\"format\":\"evidence-portal-bundle/1\"}",
            &zip(None),
        );
        assert_eq!(older.sm2, Sm2Outcome::NotPresent);
        assert!(older.ok(), "a bundle of before SM2 still verifies");
        assert_eq!(older.algorithms(), ["Ed25519"]);
    }
}
