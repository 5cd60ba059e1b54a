//! Bundles: a case's evidence (or a selection of it) as one zip, laid out before the first byte
//! so the response has an exact `Content-Length` and honours `Range`.
//!
//! How: every material's size and CRC-32 were measured at upload, so the `zip` crate can write
//! the whole archive *structure* — local headers, central directory, ZIP64 records — into a
//! [`LayoutSink`] that keeps those few bytes and leaves a hole where each material's data goes.
//! Materials are stored (not deflated: their deflated size is unknown until compressed, which
//! would make the length unknowable; evidence is JPEG, PNG, PDF, MP4… anyway); the generated
//! `manifest.json`, `SHA256SUMS` and `manifest.jws` are small and deflated. Serving a range then
//! walks the layout: literal bytes from memory, holes as ranged reads from the store. Memory is
//! a few hundred bytes per entry, whatever the bundle's size.
//!
//! The bytes depend on the generation time (it is in the signed manifest), so a bundle's time is
//! kept: the same person asking for the same contents again gets the byte-identical zip, and a
//! cut download resumes with `Range` (and `If-Range` on the `ETag`).

use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::db::entities::{account, bundle, material};
use crate::error::AppError;
use crate::policy::{CaseFacts, CasePermit};
use crate::signing::ManifestKey;
use crate::store::{ObjectKey, Store, StoreError};
use crate::vocab::{MaterialState, WithholdGround};

pub mod check;
mod layout;
#[cfg(test)]
mod tests;

pub use layout::{Entry, Layout, LayoutSink};

/// Bump when anything changes the bytes of a bundle for the same inputs.
const LAYOUT_VERSION: &str = "evidence-portal-bundle/1";

/// A bundle ready to be served.
pub struct Planned {
    pub bundle_id: Uuid,
    /// Strong validator of these exact bytes.
    pub etag: String,
    /// `<case number>-证据材料-<YYYYMMDD>.zip`
    pub download_name: String,
    /// The same in ASCII for clients that ignore RFC 5987 names (`curl -J`):
    /// `<ASCII of the case number>-evidence-<YYYYMMDD>.zip`.
    pub ascii_name: String,
    pub materials: Vec<Uuid>,
    pub layout: Layout,
}

/// What a bundle holds in place of a material's original where the installation delivers
/// copies naming their recipient (`copies`): a stored object like any other, measured when made.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub key: ObjectKey,
    pub content_type: String,
    pub sha256: String,
    pub crc32: u32,
    pub size: u64,
}

/// Which materials an actor may take in a bundle: what they may see of the case, current
/// evidence only (superseded versions and internal documents stay out), in upload order.
/// A `selection` narrows it; naming anything outside it is "not found" (it may be hidden).
pub fn choose(
    visible: Vec<material::Model>,
    selection: Option<&[Uuid]>,
) -> Result<Vec<material::Model>, AppError> {
    let eligible: Vec<material::Model> = visible
        .into_iter()
        .filter(|m| m.superseded_by.is_none() && m.kind.is_evidence())
        .collect();
    let chosen = match selection {
        None => eligible,
        Some(ids) => {
            if ids.iter().any(|id| !eligible.iter().any(|m| m.id == *id)) {
                return Err(AppError::NotFound);
            }
            eligible
                .into_iter()
                .filter(|m| ids.contains(&m.id))
                .collect()
        }
    };
    if chosen.is_empty() {
        return Err(AppError::bad_request(
            "nothing_to_bundle",
            "本案暂无可下载的材料。",
        ));
    }
    Ok(chosen)
}

/// Lays out the bundle of `chosen` for `actor`, reusing the generation time of an earlier
/// bundle with the same contents.
#[allow(clippy::too_many_arguments)]
pub async fn plan(
    db: &sea_orm::DatabaseConnection,
    key: &ManifestKey,
    permit: &CasePermit,
    facts: &CaseFacts,
    actor: &account::Model,
    chosen: Vec<material::Model>,
    withheld: &[(WithholdGround, usize)],
    delivered: &std::collections::HashMap<Uuid, Delivered>,
    redactions: &std::collections::HashMap<Uuid, crate::db::entities::redaction::Model>,
) -> Result<Planned, AppError> {
    let case = &facts.case;
    let brigade = crate::db::entities::department::Entity::find_by_id(case.department_id)
        .one(db)
        .await?
        .map(|d| d.name)
        .unwrap_or_default();
    let paths = entry_paths(&chosen, delivered);
    let files: Vec<serde_json::Value> = chosen
        .iter()
        .zip(&paths)
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
                "uploaded_at": rfc3339_cst(m.uploaded_at),
                "released_at": (m.state == MaterialState::Released).then(|| m.decided_at.map(rfc3339_cst)).flatten(),
                "state": m.state,
                // The original's hash above; what is in the zip, where it is a copy, here.
                "delivered": delivered.get(&m.id).map(|d| serde_json::json!({
                    "sha256": d.sha256,
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
        .collect();
    // An owner or insurer sees only the kinds granted: the manifest says which, and until when,
    // and says nothing of withheld items (a party's matter).
    let scope = permit.kinds.as_ref().map(|kinds| {
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
    });
    let withheld: Vec<serde_json::Value> = withheld
        .iter()
        .filter(|_| permit.kinds.is_none())
        .map(|(ground, n)| {
            serde_json::json!({
                "ground": crate::i18n::Locale::Zh.label(*ground),
                "ground_code": ground,
                "count": n,
            })
        })
        .collect();
    let generated_for = serde_json::json!({
        "role": actor.role,
        "label": masked_label(actor, facts),
    });
    // Everything the bytes depend on except the time and the id.
    let mut manifest = serde_json::json!({
        "format": LAYOUT_VERSION,
        "case_number": case.case_number,
        "brigade": brigade,
        "generated_for": generated_for,
        "files": files,
        "withheld": withheld,
        "signing_key": key.kid(),
    });
    if let Some(scope) = scope {
        manifest["scope"] = scope;
    }
    let contents = hex::encode(Sha256::digest(manifest.to_string().as_bytes()));

    let earlier = bundle::Entity::find()
        .filter(bundle::Column::AccountId.eq(actor.id))
        .filter(bundle::Column::CaseId.eq(permit.case_id))
        .filter(bundle::Column::Contents.eq(contents.as_str()))
        .order_by_asc(bundle::Column::GeneratedAt)
        .one(db)
        .await?;
    let row = match earlier {
        Some(row) => row,
        None => {
            // Whole seconds: the time is printed in the manifest and in the zip's entries.
            let now = OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .map_err(AppError::internal)?;
            bundle::ActiveModel {
                id: Set(Uuid::now_v7()),
                case_id: Set(permit.case_id),
                account_id: Set(actor.id),
                contents: Set(contents.clone()),
                generated_at: Set(now),
            }
            .insert(db)
            .await?
        }
    };
    manifest["bundle_id"] = row.id.to_string().into();
    manifest["generated_at"] = rfc3339_cst(row.generated_at).into();
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(AppError::internal)?;
    manifest_bytes.push(b'\n');
    let jws = key.sign(&manifest_bytes).map_err(AppError::internal)?;

    let mut sums = String::new();
    for (m, path) in chosen.iter().zip(&paths) {
        let sha256 = delivered.get(&m.id).map_or(&m.sha256, |d| &d.sha256);
        sums.push_str(&format!("{sha256}  {path}\n"));
    }
    sums.push_str(&format!(
        "{}  manifest.json\n",
        hex::encode(Sha256::digest(&manifest_bytes))
    ));

    let generated = zip_time(row.generated_at);
    let mut entries: Vec<Entry> = chosen
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
        .collect::<Result<_, StoreError>>()?;
    entries.push(Entry::Generated {
        path: "manifest.json".into(),
        bytes: manifest_bytes,
        modified: generated,
    });
    entries.push(Entry::Generated {
        path: "manifest.jws".into(),
        bytes: jws.into_bytes(),
        modified: generated,
    });
    entries.push(Entry::Generated {
        path: "SHA256SUMS".into(),
        bytes: sums.into_bytes(),
        modified: generated,
    });
    let layout = Layout::build(entries).map_err(AppError::internal)?;

    let date = row.generated_at.to_offset(time::macros::offset!(+8)).date();
    let date = format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    );
    let etag = hex::encode(
        &Sha256::digest(format!("{contents}\n{}\n{}", row.id, layout.total).as_bytes())[..16],
    );
    Ok(Planned {
        bundle_id: row.id,
        etag: format!("\"b{etag}\""),
        download_name: format!("{}-证据材料-{date}.zip", sanitize(&case.case_number, 80)),
        ascii_name: {
            let mut ascii = String::new();
            for c in case.case_number.chars() {
                if c.is_ascii_alphanumeric() {
                    ascii.push(c);
                } else if !ascii.is_empty() && !ascii.ends_with('-') {
                    ascii.push('-');
                }
            }
            let ascii = ascii.trim_end_matches('-');
            if ascii.is_empty() {
                format!("evidence-{date}.zip")
            } else {
                format!("{ascii}-evidence-{date}.zip")
            }
        },
        materials: chosen.iter().map(|m| m.id).collect(),
        layout,
    })
}

/// "代理人 张**（138****0001）", never the full name or number.
fn masked_label(actor: &account::Model, facts: &CaseFacts) -> String {
    let role = crate::i18n::Locale::Zh.label(actor.role);
    let name = actor
        .display_name
        .chars()
        .next()
        .map(|c| format!("{c}**"))
        .unwrap_or_default();
    let party = facts
        .party
        .as_ref()
        .map(|p| format!("{} ", p.label))
        .unwrap_or_default();
    format!("{role} {party}{name}（{}）", actor.login_masked).replace("  ", " ")
}

/// RFC 3339 in China Standard Time, to the second: `2026-11-25T10:33:55+08:00`.
fn rfc3339_cst(t: OffsetDateTime) -> String {
    t.to_offset(time::macros::offset!(+8))
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]+08:00"
        ))
        .unwrap_or_default()
}

/// ZIP's DOS time is local time: China Standard Time.
fn zip_time(t: OffsetDateTime) -> zip::DateTime {
    let t = t.to_offset(time::macros::offset!(+8));
    zip::DateTime::from_date_and_time(
        t.year().clamp(1980, 2107) as u16,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
    .unwrap_or_default()
}

/// A name safe as a path component on Windows, macOS and Linux: no separators, reserved or
/// control characters, no leading/trailing dots or spaces, at most `max` characters.
fn sanitize(raw: &str, max: usize) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_control() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .take(max)
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if trimmed.is_empty() {
        "未命名".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The extension people expect for a (sniffed) type; `mime_guess`'s first pick is sometimes odd
/// (`jfif` for JPEG).
fn usual_extension(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/tiff" => "tif",
        "video/quicktime" => "mov",
        "video/x-msvideo" => "avi",
        other => mime_guess::get_mime_extensions_str(other)
            .and_then(|exts| exts.first())
            .copied()
            .unwrap_or("bin"),
    }
}

/// `<kind folder>/<title>.<ext>` for each material, made distinct (ignoring case, as Windows
/// and macOS do) by numbering repeats: `照片.jpg`, `照片 (2).jpg`.
fn entry_paths(
    materials: &[material::Model],
    delivered: &std::collections::HashMap<Uuid, Delivered>,
) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    materials
        .iter()
        .map(|m| {
            let folder = crate::i18n::Locale::Zh.label(m.kind);
            let ext = match delivered.get(&m.id) {
                // A copy is a JPEG or a PDF whatever the original was.
                Some(d) => usual_extension(&d.content_type).to_owned(),
                None => std::path::Path::new(&m.original_name)
                    .extension()
                    .and_then(|e| e.to_str())
                    .filter(|e| e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
                    .map(str::to_ascii_lowercase)
                    .unwrap_or_else(|| usual_extension(&m.content_type).to_owned()),
            };
            let mut stem = sanitize(&m.title, 100);
            // A title already ending in the extension (ASCII, any case) is not given it twice.
            // Compared on the stem's own bytes: a lower-cased copy can be shorter (the Kelvin
            // sign `K` lower-cases to ASCII `k`), and cutting at its length panicked.
            let dotted = format!(".{ext}");
            let cut = stem.len().saturating_sub(dotted.len());
            if stem.len() > dotted.len()
                && stem
                    .get(cut..)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(&dotted))
            {
                stem.truncate(cut);
            }
            let mut n = 1;
            loop {
                let candidate = if n == 1 {
                    format!("{folder}/{stem}.{ext}")
                } else {
                    format!("{folder}/{stem} ({n}).{ext}")
                };
                if taken.insert(candidate.to_lowercase()) {
                    return candidate;
                }
                n += 1;
            }
        })
        .collect()
}
