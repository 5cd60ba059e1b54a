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
use sea_orm::EntityTrait;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::db::entities::{account, material};
use crate::error::AppError;
use crate::policy::{CaseFacts, CasePermit};
use crate::signing::ManifestKey;
use crate::store::{ObjectKey, Store, StoreError};
use crate::vocab::WithholdGround;

pub mod check;
pub mod digests;
pub mod index;
mod layout;
mod parts;
pub mod signatures;
#[cfg(test)]
mod tests;

pub use layout::{Entry, Layout, LayoutSink};

/// Bump when anything changes the bytes of a bundle for the same inputs.
/// (2: SM3 in the manifest and `SM3SUMS`, the evidence index; issue 36.)
const LAYOUT_VERSION: &str = "evidence-portal-bundle/2";

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
    /// `None` for a copy made before SM3 was measured, until `digests::prepare` fills it.
    pub sm3: Option<String>,
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
    tsa: Option<&url::Url>,
) -> Result<Planned, AppError> {
    let case = &facts.case;
    let brigade = crate::db::entities::department::Entity::find_by_id(case.department_id)
        .one(db)
        .await?
        .map(|d| d.name)
        .unwrap_or_default();
    let paths = entry_paths(&chosen, delivered);
    let sources = index::sources(db, &brigade, &chosen).await?;
    // Everything the bytes depend on except the time and the id.
    let mut manifest = manifest_of(key, facts, actor, &brigade, tsa);
    manifest["files"] = parts::files(&chosen, &paths, &sources, delivered, redactions).into();
    manifest["withheld"] = parts::withheld(permit, withheld).into();
    if let Some(scope) = parts::scope(permit, facts, actor) {
        manifest["scope"] = scope;
    }
    let contents = hex::encode(Sha256::digest(manifest.to_string().as_bytes()));

    let row = parts::bundle_row(db, permit, actor, &contents).await?;
    manifest["bundle_id"] = row.id.to_string().into();
    manifest["generated_at"] = rfc3339_cst(row.generated_at).into();
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(AppError::internal)?;
    manifest_bytes.push(b'\n');
    let jws = key.sign(&manifest_bytes).map_err(AppError::internal)?;
    let beside = signatures::beside(db, key, tsa, &row, &manifest_bytes).await?;

    // The evidence index, drawn from the manifest and carrying its fingerprint (`index`).
    let fingerprint = hex::encode(Sha256::digest(&manifest_bytes));
    let index_files = [
        (index::CSV_NAME, index::csv(&manifest)),
        (index::HTML_NAME, index::html(&manifest, &fingerprint)),
    ];
    let (sums, sm3_sums) = parts::sums(&chosen, &paths, delivered, &manifest_bytes, &index_files)?;

    let generated = zip_time(row.generated_at);
    let mut entries = parts::material_entries(&chosen, paths, delivered)?;
    let signed = [
        ("manifest.json", manifest_bytes),
        ("manifest.jws", jws.into_bytes()),
    ];
    let sums = [("SHA256SUMS", sums), ("SM3SUMS", sm3_sums)];
    for (name, bytes) in signed
        .into_iter()
        .chain(beside)
        .chain(sums)
        .chain(index_files)
    {
        entries.push(Entry::Generated {
            path: name.into(),
            bytes,
            modified: generated,
        });
    }
    let layout = Layout::build(entries).map_err(AppError::internal)?;

    let etag = hex::encode(
        &Sha256::digest(format!("{contents}\n{}\n{}", row.id, layout.total).as_bytes())[..16],
    );
    let (download_name, ascii_name) = parts::names(&case.case_number, row.generated_at);
    Ok(Planned {
        bundle_id: row.id,
        etag: format!("\"b{etag}\""),
        download_name,
        ascii_name,
        materials: chosen.iter().map(|m| m.id).collect(),
        layout,
    })
}

/// The manifest's head: format, case, brigade, recipient and signing key, and the second
/// signature and the timestamp announced in what they sign (issue 36).
fn manifest_of(
    key: &ManifestKey,
    facts: &CaseFacts,
    actor: &account::Model,
    brigade: &str,
    tsa: Option<&url::Url>,
) -> serde_json::Value {
    let mut manifest = serde_json::json!({
        "format": LAYOUT_VERSION,
        "case_number": facts.case.case_number,
        "brigade": brigade,
        "generated_for": {
            "role": actor.role,
            "label": masked_label(actor, facts),
        },
        "signing_key": key.kid(),
    });
    if let Some(sm2) = key.sm2() {
        manifest["sm2"] = signatures::sm2_block(sm2);
    }
    if let Some(url) = tsa {
        manifest["timestamp_authority"] = url.as_str().into();
    }
    manifest
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
