//! The parts `plan` assembles a bundle from: the manifest's file list, scope and withheld
//! counts, the bundle's row (its kept generation time), the materials' zip entries and the
//! download's names.

use std::collections::HashMap;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Delivered, Entry, digests, rfc3339_cst, sanitize, zip_time};
use crate::db::entities::{account, bundle, material, redaction};
use crate::error::AppError;
use crate::policy::{CaseFacts, CasePermit};
use crate::store::{ObjectKey, StoreError};
use crate::vocab::{MaterialState, WithholdGround};

/// The manifest's entry for each material: what it is, both digests of the original, where it
/// came from and what it proves (for the evidence index), and what was delivered instead where
/// it is a copy or a redacted copy.
pub(super) fn files(
    chosen: &[material::Model],
    paths: &[String],
    sources: &HashMap<Uuid, String>,
    delivered: &HashMap<Uuid, Delivered>,
    redactions: &HashMap<Uuid, redaction::Model>,
) -> Vec<serde_json::Value> {
    chosen
        .iter()
        .zip(paths)
        .map(|(m, path)| {
            serde_json::json!({
                "path": path,
                "kind": m.kind,
                "kind_label": crate::i18n::Locale::Zh.label(m.kind),
                "title": m.title,
                "original_name": m.original_name,
                "content_type": m.content_type,
                "size": m.size,
                "sha256": m.sha256,
                "sm3": m.sm3,
                // For the evidence index (issue 36): 来源, 证明对象, 页数 where known.
                "source": sources.get(&m.id),
                "proves": m.proves,
                "pages": digests::pages(m, delivered.get(&m.id)),
                "uploaded_at": rfc3339_cst(m.uploaded_at),
                "released_at": (m.state == MaterialState::Released).then(|| m.decided_at.map(rfc3339_cst)).flatten(),
                "state": m.state,
                // The original's hash above; what is in the zip, where it is a copy, here.
                "delivered": delivered.get(&m.id).map(|d| serde_json::json!({
                    "sha256": d.sha256,
                    "sm3": d.sm3,
                    "size": d.size,
                    "content_type": d.content_type,
                    "note": "带有领取人身份标记的副本，非原件 (a copy marked with its recipient, not the original)",
                })),
                // A redacted copy (issue 34): the hash above is the copy's; the original's here.
                "redaction": redactions.get(&m.id).map(|r| serde_json::json!({
                    "id": r.id,
                    "original_sha256": r.source_sha256,
                    "reasons": r.reason_words(),
                    "note": "遮挡处理后的副本，原件保存在办案单位 (a redacted copy; the original is kept at the brigade)",
                })),
            })
        })
        .collect()
}

/// An owner or insurer sees only the kinds granted: the manifest says which, and until when.
pub(super) fn scope(
    permit: &CasePermit,
    facts: &CaseFacts,
    actor: &account::Model,
) -> Option<serde_json::Value> {
    permit.kinds.as_ref().map(|kinds| {
        let grant = facts
            .grants
            .iter()
            .filter(|g| g.account_id == Some(actor.id))
            .max_by_key(|g| g.granted_until);
        serde_json::json!({
            "kinds": kinds,
            "kind_labels": kinds.iter().map(|k| crate::i18n::Locale::Zh.label(*k)).collect::<Vec<_>>(),
            "mode": grant.and_then(|g| g.granted_mode),
            "until": grant.and_then(|g| g.granted_until).map(|d| d.to_string()),
            "application": grant.map(|g| g.receipt_no.clone()),
            "note": "仅含经交警大队批准查询的材料类别 (only the kinds of material the brigade approved for this query)",
        })
    })
}

/// How many items were withheld on which grounds: a party's matter, so said nothing of to an
/// owner or insurer.
pub(super) fn withheld(
    permit: &CasePermit,
    withheld: &[(WithholdGround, usize)],
) -> Vec<serde_json::Value> {
    withheld
        .iter()
        .filter(|_| permit.kinds.is_none())
        .map(|(ground, n)| {
            serde_json::json!({
                "ground": crate::i18n::Locale::Zh.label(*ground),
                "ground_code": ground,
                "count": n,
            })
        })
        .collect()
}

/// The bundle's row: an earlier one of the same person, case and contents (so its time, and
/// with it every byte, is kept), or a new one generated now.
pub(super) async fn bundle_row(
    db: &sea_orm::DatabaseConnection,
    permit: &CasePermit,
    actor: &account::Model,
    contents: &str,
) -> Result<bundle::Model, AppError> {
    let earlier = bundle::Entity::find()
        .filter(bundle::Column::AccountId.eq(actor.id))
        .filter(bundle::Column::CaseId.eq(permit.case_id))
        .filter(bundle::Column::Contents.eq(contents))
        .order_by_asc(bundle::Column::GeneratedAt)
        .one(db)
        .await?;
    if let Some(row) = earlier {
        return Ok(row);
    }
    // Whole seconds: the time is printed in the manifest and in the zip's entries.
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(AppError::internal)?;
    Ok(bundle::ActiveModel {
        id: Set(Uuid::now_v7()),
        case_id: Set(permit.case_id),
        account_id: Set(actor.id),
        contents: Set(contents.to_owned()),
        generated_at: Set(now),
        timestamp_token: Set(None),
    }
    .insert(db)
    .await?)
}

/// Each material's entry: the delivered copy's object where there is one, else the original's.
pub(super) fn material_entries(
    chosen: &[material::Model],
    paths: Vec<String>,
    delivered: &HashMap<Uuid, Delivered>,
) -> Result<Vec<Entry>, StoreError> {
    chosen
        .iter()
        .zip(paths)
        .map(|(m, path)| {
            Ok(match delivered.get(&m.id) {
                Some(d) => Entry::Object {
                    path,
                    key: d.key.clone(),
                    size: d.size,
                    crc32: d.crc32,
                    modified: zip_time(m.uploaded_at),
                },
                None => Entry::Object {
                    path,
                    key: ObjectKey::from_stored(&m.object_key)?,
                    size: m.size as u64,
                    crc32: m.crc32 as u32,
                    modified: zip_time(m.uploaded_at),
                },
            })
        })
        .collect()
}

/// The download's names: `<case number>-证据材料-<YYYYMMDD>.zip`, and its ASCII form
/// `<ASCII of the case number>-evidence-<YYYYMMDD>.zip` (the date in China).
pub(super) fn names(case_number: &str, generated_at: OffsetDateTime) -> (String, String) {
    let date = generated_at.to_offset(time::macros::offset!(+8)).date();
    let date = format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    );
    let mut ascii = String::new();
    for c in case_number.chars() {
        if c.is_ascii_alphanumeric() {
            ascii.push(c);
        } else if !ascii.is_empty() && !ascii.ends_with('-') {
            ascii.push('-');
        }
    }
    let ascii = ascii.trim_end_matches('-');
    let ascii_name = if ascii.is_empty() {
        format!("evidence-{date}.zip")
    } else {
        format!("{ascii}-evidence-{date}.zip")
    };
    (
        format!("{}-证据材料-{date}.zip", sanitize(case_number, 80)),
        ascii_name,
    )
}

/// `SHA256SUMS` and `SM3SUMS`: every material as delivered, `manifest.json` and the evidence
/// index.
pub(super) fn sums(
    chosen: &[material::Model],
    paths: &[String],
    delivered: &HashMap<Uuid, Delivered>,
    manifest: &[u8],
    index_files: &[(&str, Vec<u8>)],
) -> Result<(Vec<u8>, Vec<u8>), AppError> {
    use sha2::{Digest, Sha256};
    let mut listed: Vec<(String, String, &str)> = Vec::new();
    for (m, path) in chosen.iter().zip(paths) {
        let (sha256, sm3) = digests::of_entry(m, delivered)?;
        listed.push((sha256.to_owned(), sm3.to_owned(), path.as_str()));
    }
    listed.push((
        hex::encode(Sha256::digest(manifest)),
        crate::materials::sm3::hex_of(manifest),
        "manifest.json",
    ));
    for (name, bytes) in index_files {
        listed.push((
            hex::encode(Sha256::digest(bytes)),
            crate::materials::sm3::hex_of(bytes),
            name,
        ));
    }
    Ok((
        digests::sums(listed.iter().map(|(sha, _, p)| (sha.as_str(), *p))),
        digests::sums(listed.iter().map(|(_, sm3, p)| (sm3.as_str(), *p))),
    ))
}
