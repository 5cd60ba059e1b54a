//! The proof of a refused access application, held for the applicant's next try: a form sent
//! back for a wrong field keeps the file that passed its checks, so that the person fixes the
//! field without choosing the file again.
//!
//! Nothing is kept in the database while held: the object waits in the store, and the page
//! carries a token sealed with the server key and bound to the browser (its anonymous CSRF
//! cookie) that names it — key, name, type, size, SHA-256 — and until when it holds. An
//! application filed with it references the object (`proof_key`); one nobody files with is
//! `gc`'s: see [`HELD_UNDER`].

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::db::entities::access_application;
use crate::keys::ServerKey;
use crate::materials::Received;
use crate::store::{ObjectKey, Store, StoreError, Stored};

/// How long a proof is held. Shorter than `gc`'s default minimum age (60 minutes), with room to
/// spare, so that the default `gc` never takes a proof the page may still use; a `gc` run with a
/// smaller `--min-age-minutes` may, and the form then asks for the file again (lapsed).
pub const HOLD_MINUTES: i64 = 45;

/// The "case" proofs held before their case is known are stored under: `cases/{nil}/{id}` (no
/// case has the nil id). Under `cases/` on purpose: `gc` (`materials::collect_garbage`) collects
/// the objects there that no material or application references, once older than its minimum
/// age — a held proof nobody filed with — and keeps one an application was filed with. A proof
/// received once its fields had passed stays under its own case, held or not.
pub const HELD_UNDER: Uuid = Uuid::nil();

/// Whether a stored key is that of a proof held before its case was known (`gc` says so).
pub fn is_held_key(key: &str) -> bool {
    key.strip_prefix("cases/")
        .and_then(|rest| rest.strip_prefix(HELD_UNDER.to_string().as_str()))
        .is_some_and(|rest| rest.starts_with('/'))
}

const PURPOSE: &str = "access-application-held-proof";

/// What the token carries.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    key: String,
    name: String,
    content_type: String,
    size: u64,
    sha256: String,
    /// Empty in a hold sealed before SM3 was measured (issue 36).
    #[serde(default)]
    sm3: String,
    crc32: u32,
    /// Unix seconds.
    until: i64,
}

/// A proof held for the page: the token for its hidden field, and the file's name to show.
pub struct Held {
    pub token: String,
    pub name: String,
}

/// The hold a page carried, as opened.
pub enum Opened {
    /// Still held: the proof as received, and its token (to carry on unchanged).
    Held(Received, Held),
    /// Sealed for this browser but past its time, or its object is gone (`gc`): the file must be
    /// chosen again.
    Lapsed,
    /// No token, one sealed for another browser or altered, or one an application was already
    /// filed with: as if none had been sent.
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum HeldError {
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<HeldError> for crate::error::AppError {
    fn from(e: HeldError) -> Self {
        match e {
            HeldError::Db(e) => e.into(),
            HeldError::Store(e) => e.into(),
        }
    }
}

/// Holds `proof` for the browser `browser` from `now`: the token for the page, or none if it
/// cannot be sealed (then nothing is held; the file is asked for again).
pub fn hold(key: &ServerKey, browser: &str, proof: &Received, now: OffsetDateTime) -> Option<Held> {
    let sealed = Sealed {
        key: proof.key.as_str().to_owned(),
        name: proof.original_name.clone(),
        content_type: proof.content_type.to_owned(),
        size: proof.stored.size,
        sha256: proof.stored.sha256.clone(),
        sm3: proof.stored.sm3.clone(),
        crc32: proof.stored.crc32,
        until: (now + Duration::minutes(HOLD_MINUTES)).unix_timestamp(),
    };
    let plain = serde_json::to_vec(&sealed).ok()?;
    Some(Held {
        token: key.seal(PURPOSE, browser.as_bytes(), &plain)?,
        name: proof.original_name.clone(),
    })
}

/// The proof `token` holds for `browser` at `now`, if any. A type outside `allowed` is no hold
/// (the rules changed since). Checks that the object is still there and that no application
/// was filed with it (a token is good for one filing).
pub async fn open(
    db: &DatabaseConnection,
    store: &Store,
    key: &ServerKey,
    browser: &str,
    token: &str,
    allowed: &'static [&'static str],
    now: OffsetDateTime,
) -> Result<Opened, HeldError> {
    let token = token.trim();
    let Some(sealed) = (!token.is_empty())
        .then(|| key.open(PURPOSE, browser.as_bytes(), token))
        .flatten()
        .and_then(|plain| serde_json::from_slice::<Sealed>(&plain).ok())
    else {
        return Ok(Opened::None);
    };
    let (Ok(object), Some(content_type)) = (
        ObjectKey::from_stored(&sealed.key),
        allowed.iter().copied().find(|t| *t == sealed.content_type),
    ) else {
        return Ok(Opened::None);
    };
    if now.unix_timestamp() >= sealed.until {
        return Ok(Opened::Lapsed);
    }
    let filed = access_application::Entity::find()
        .filter(access_application::Column::ProofKey.eq(sealed.key.clone()))
        .count(db)
        .await?;
    if filed > 0 {
        return Ok(Opened::None);
    }
    match store.size(&object).await {
        Ok(size) if size == sealed.size => {}
        Ok(_) | Err(StoreError::NotFound(_)) => return Ok(Opened::Lapsed),
        Err(e) => return Err(e.into()),
    }
    let material_id = sealed
        .key
        .rsplit('/')
        .next()
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or(HELD_UNDER);
    Ok(Opened::Held(
        Received {
            material_id,
            key: object,
            stored: Stored {
                size: sealed.size,
                sha256: sealed.sha256,
                sm3: sealed.sm3,
                crc32: sealed.crc32,
            },
            content_type,
            original_name: sealed.name.clone(),
        },
        Held {
            token: token.to_owned(),
            name: sealed.name,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_keys_are_those_under_the_nil_case_only() {
        let id = Uuid::now_v7();
        assert!(is_held_key(&format!("cases/{HELD_UNDER}/{id}")));
        assert!(!is_held_key(&format!("cases/{id}/{id}")));
        assert!(!is_held_key(&format!("cases/{HELD_UNDER}x/{id}")));
        assert!(!is_held_key(&format!("{HELD_UNDER}/{id}")));
    }

    #[test]
    fn a_hold_opens_only_for_its_browser_and_unaltered() {
        let key = ServerKey::for_tests(7);
        let proof = Received {
            material_id: Uuid::now_v7(),
            key: ObjectKey::material(HELD_UNDER, Uuid::now_v7()),
            stored: Stored {
                size: 3,
                sha256: "ab".into(),
                sm3: "cd".into(),
                crc32: 1,
            },
            content_type: "application/pdf",
            original_name: "查询授权书.pdf".into(),
        };
        let now = OffsetDateTime::now_utc();
        let held = hold(&key, "browser-a", &proof, now).unwrap();
        assert_eq!(held.name, "查询授权书.pdf");
        let plain = key.open(PURPOSE, b"browser-a", &held.token).unwrap();
        let sealed: Sealed = serde_json::from_slice(&plain).unwrap();
        assert_eq!(sealed.key, proof.key.as_str());
        assert_eq!(
            sealed.until,
            (now + Duration::minutes(HOLD_MINUTES)).unix_timestamp()
        );
        assert!(key.open(PURPOSE, b"browser-b", &held.token).is_none());
    }
}
