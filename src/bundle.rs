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

/// Which materials an actor may take in a bundle: what they may see of the case, current
/// evidence only (superseded versions and internal documents stay out), in upload order.
/// A `selection` narrows it; naming anything outside it is "not found" (it may be hidden).
pub fn choose(
    visible: Vec<material::Model>,
    selection: Option<&[Uuid]>,
) -> Result<Vec<material::Model>, AppError> {
    let eligible: Vec<material::Model> = visible
        .into_iter()
        .filter(|m| m.superseded_by.is_none() && m.kind != "authorisation")
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
pub async fn plan(
    db: &sea_orm::DatabaseConnection,
    key: &ManifestKey,
    permit: &CasePermit,
    facts: &CaseFacts,
    actor: &account::Model,
    chosen: Vec<material::Model>,
    withheld: &[(&'static str, usize)],
) -> Result<Planned, AppError> {
    let case = &facts.case;
    let brigade = crate::db::entities::department::Entity::find_by_id(case.department_id)
        .one(db)
        .await?
        .map(|d| d.name)
        .unwrap_or_default();
    let paths = entry_paths(&chosen);
    let files: Vec<serde_json::Value> = chosen
        .iter()
        .zip(&paths)
        .map(|(m, path)| {
            serde_json::json!({
                "path": path,
                "kind": m.kind,
                "kind_label": crate::materials::kind_label(&m.kind),
                "title": m.title,
                "original_name": m.original_name,
                "content_type": m.content_type,
                "size": m.size,
                "sha256": m.sha256,
                "uploaded_at": rfc3339_cst(m.uploaded_at),
                "released_at": (m.state == "released").then(|| m.decided_at.map(rfc3339_cst)).flatten(),
                "state": m.state,
            })
        })
        .collect();
    let withheld: Vec<serde_json::Value> = withheld
        .iter()
        .map(|(ground, n)| {
            serde_json::json!({
                "ground": crate::materials::ground_label(ground),
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
        sums.push_str(&format!("{}  {path}\n", m.sha256));
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
            Ok(Entry::Object {
                path,
                key: ObjectKey::from_stored(&m.object_key)?,
                size: m.size as u64,
                crc32: m.crc32 as u32,
                modified: zip_time(m.uploaded_at),
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
    let role = crate::routes::role_label_in(crate::i18n::Locale::Zh, &actor.role);
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
fn entry_paths(materials: &[material::Model]) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    materials
        .iter()
        .map(|m| {
            let folder = crate::materials::kind_label(&m.kind);
            let ext = std::path::Path::new(&m.original_name)
                .extension()
                .and_then(|e| e.to_str())
                .filter(|e| e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
                .map(str::to_ascii_lowercase)
                .unwrap_or_else(|| usual_extension(&m.content_type).to_owned());
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

/// One entry of a bundle.
pub enum Entry {
    /// Evidence: stored, its bytes come from the store when served.
    Object {
        path: String,
        key: ObjectKey,
        size: u64,
        crc32: u32,
        modified: zip::DateTime,
    },
    /// Small generated text: deflated, kept in memory.
    Generated {
        path: String,
        bytes: Vec<u8>,
        modified: zip::DateTime,
    },
}

/// The bytes of a bundle as a sequence of parts: literal (headers, directory, generated files)
/// or a whole stored object.
pub struct Layout {
    parts: Vec<(u64, Part)>,
    pub total: u64,
}

#[derive(Clone)]
enum Part {
    Literal(Bytes),
    Object { key: ObjectKey, len: u64 },
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Part::Literal(b) => b.len() as u64,
            Part::Object { len, .. } => *len,
        }
    }
}

impl Layout {
    /// Checks, before anything is sent, that every object of the bundle is in the store with
    /// the size the layout expects (a `HEAD` per object, 16 at a time): a bundle is answered
    /// whole or refused cleanly, never cut after its status line.
    pub async fn check_objects(&self, store: &crate::store::Store) -> Result<(), StoreError> {
        use futures_util::{StreamExt, TryStreamExt};
        futures_util::stream::iter(self.parts.iter().filter_map(|(_, p)| match p {
            Part::Object { key, len } => Some((key, *len)),
            Part::Literal(_) => None,
        }))
        .map(|(key, len)| async move {
            let size = store.size(key).await?;
            if size == len {
                Ok(())
            } else {
                Err(StoreError::Truncated {
                    got: size,
                    expected: len,
                })
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await
    }

    /// Has the `zip` crate write the archive's structure, with a hole for each object's data.
    pub fn build(entries: Vec<Entry>) -> zip::result::ZipResult<Layout> {
        let mut zip = ZipWriter::new(LayoutSink::default());
        let mut keys = Vec::new();
        for entry in entries {
            match entry {
                Entry::Object {
                    path,
                    key,
                    size,
                    crc32,
                    modified,
                } => {
                    let options = SimpleFileOptions::default()
                        .compression_method(CompressionMethod::Stored)
                        .last_modified_time(modified)
                        .unix_permissions(0o644)
                        .large_file(size >= u64::from(u32::MAX));
                    zip.start_file(path, options)?;
                    // SAFETY (both calls): the data of this entry is written "independently" —
                    // a hole of exactly `size` bytes that the served response fills with the
                    // stored object, whose size and CRC-32 were measured while it was uploaded
                    // (and the store read is checked to deliver exactly `size` bytes). The sink
                    // is left at the end of that hole, where the `ZipWriter` expects it.
                    unsafe {
                        let sink = zip.get_mut().ok_or(zip::result::ZipError::Io(
                            std::io::Error::other("the zip writer has no sink"),
                        ))?;
                        sink.hole(keys.len(), size)?;
                        zip.set_file_metadata(size, crc32)?;
                    }
                    keys.push((key, size));
                }
                Entry::Generated {
                    path,
                    bytes,
                    modified,
                } => {
                    let options = SimpleFileOptions::default()
                        .compression_method(CompressionMethod::Deflated)
                        .last_modified_time(modified)
                        .unix_permissions(0o644);
                    zip.start_file(path, options)?;
                    zip.write_all(&bytes)?;
                }
            }
        }
        let sink = zip.finish()?;
        let mut parts = Vec::with_capacity(sink.pieces.len());
        let mut total = 0u64;
        for (start, piece) in sink.starts.iter().zip(sink.pieces) {
            let part = match piece {
                Piece::Bytes(v) => Part::Literal(Bytes::from(v)),
                Piece::Hole { object, len } => Part::Object {
                    key: keys[object].0.clone(),
                    len,
                },
            };
            total = start + part.len();
            if part.len() > 0 {
                parts.push((*start, part));
            }
        }
        Ok(Layout { parts, total })
    }

    /// The bytes in `range` (end exclusive, within `0..total`): literal parts from memory,
    /// objects read from the store only when their turn comes.
    pub fn stream(
        &self,
        store: Store,
        range: Range<u64>,
    ) -> BoxStream<'static, Result<Bytes, StoreError>> {
        let mut segments: Vec<Part> = Vec::new();
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for (start, part) in &self.parts {
            let end = start + part.len();
            if end <= range.start || *start >= range.end {
                continue;
            }
            let from = range.start.max(*start) - start;
            let to = range.end.min(end) - start;
            segments.push(part.clone());
            ranges.push(from..to);
        }
        futures_util::stream::iter(segments.into_iter().zip(ranges))
            .then(move |(part, within)| {
                let store = store.clone();
                async move {
                    match part {
                        Part::Literal(b) => {
                            let slice = b.slice(within.start as usize..within.end as usize);
                            Ok(futures_util::stream::once(async move { Ok(slice) }).boxed())
                        }
                        Part::Object { key, .. } => {
                            store.get(&key, Some(within)).await.map(|f| f.body)
                        }
                    }
                }
            })
            .try_flatten()
            .boxed()
    }
}

enum Piece {
    Bytes(Vec<u8>),
    Hole { object: usize, len: u64 },
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Piece::Bytes(v) => v.len() as u64,
            Piece::Hole { len, .. } => *len,
        }
    }
}

/// A `Write + Seek` target that keeps what the `zip` crate writes (headers and the like, which
/// it may seek back to rewrite) and records holes where data will go.
#[derive(Default)]
pub struct LayoutSink {
    pos: u64,
    starts: Vec<u64>,
    pieces: Vec<Piece>,
}

impl LayoutSink {
    fn end(&self) -> u64 {
        match (self.starts.last(), self.pieces.last()) {
            (Some(s), Some(p)) => s + p.len(),
            _ => 0,
        }
    }

    /// Appends a hole of `len` bytes for object number `object`.
    fn hole(&mut self, object: usize, len: u64) -> std::io::Result<()> {
        if self.pos != self.end() {
            return Err(std::io::Error::other("a hole must be appended at the end"));
        }
        self.starts.push(self.pos);
        self.pieces.push(Piece::Hole { object, len });
        self.pos += len;
        Ok(())
    }
}

impl Write for LayoutSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let end = self.end();
        if self.pos == end {
            match self.pieces.last_mut() {
                Some(Piece::Bytes(v)) => v.extend_from_slice(buf),
                _ => {
                    self.starts.push(end);
                    self.pieces.push(Piece::Bytes(buf.to_vec()));
                }
            }
            self.pos += buf.len() as u64;
            return Ok(buf.len());
        }
        // Rewriting earlier bytes (a local header's CRC and sizes).
        let index = self.starts.partition_point(|s| *s <= self.pos) - 1;
        let start = self.starts[index];
        match &mut self.pieces[index] {
            Piece::Bytes(v) => {
                let offset = (self.pos - start) as usize;
                let n = buf.len().min(v.len() - offset);
                v[offset..offset + n].copy_from_slice(&buf[..n]);
                self.pos += n as u64;
                Ok(n)
            }
            Piece::Hole { .. } => Err(std::io::Error::other(
                "the zip writer tried to write into an object's data",
            )),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for LayoutSink {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let end = self.end();
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => end.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(t) if t <= end => {
                self.pos = t;
                Ok(t)
            }
            _ => Err(std::io::Error::other("seek outside the bundle layout")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn material(title: &str, original: &str, kind: &str) -> material::Model {
        let now = OffsetDateTime::now_utc();
        material::Model {
            id: Uuid::now_v7(),
            case_id: Uuid::nil(),
            kind: kind.into(),
            title: title.into(),
            original_name: original.into(),
            content_type: "image/jpeg".into(),
            size: 1,
            sha256: String::new(),
            crc32: 0,
            object_key: String::new(),
            state: "released".into(),
            withhold_ground: None,
            withhold_note: None,
            uploaded_by: Uuid::nil(),
            uploaded_at: now,
            decided_by: None,
            decided_at: None,
            superseded_by: None,
        }
    }

    #[test]
    fn paths_are_foldered_safe_and_distinct() {
        let paths = entry_paths(&[
            material("现场照片", "a.JPG", "scene_photo"),
            material("现场照片", "b.jpg", "scene_photo"),
            material("现场照片.jpg", "c.jpeg", "scene_photo"),
            material("../../etc/passwd", "x", "other"),
            material(" 图:一 ", "d.pdf", "scene_diagram"),
        ]);
        assert_eq!(
            paths,
            [
                "现场照片/现场照片.jpg",
                "现场照片/现场照片 (2).jpg",
                "现场照片/现场照片.jpg.jpeg",
                "其他/_.._etc_passwd.jpg",
                "现场图/图_一.pdf",
            ]
        );
    }

    #[test]
    fn a_title_ending_in_a_kelvin_sign_keeps_its_name() {
        // U+212A lower-cases to ASCII `k`: the title "scan.\u{212A}" with a file `scan.k`.
        let paths = entry_paths(&[material("scan.\u{212A}", "scan.k", "other")]);
        assert_eq!(paths, ["其他/scan.\u{212A}.k"]);
        let paths = entry_paths(&[material("报告.PDF", "r.pdf", "other")]);
        assert_eq!(paths, ["其他/报告.pdf"]);
    }

    proptest::proptest! {
        /// Any titles and file names at all: one path each, never a panic, in its kind's folder,
        /// with no separator, control character or reserved character in the file name, and
        /// distinct ignoring case.
        #[test]
        fn entry_names_are_safe_for_any_unicode(
            names in proptest::collection::vec(("\\PC{0,30}|[.kK\u{212A}\u{130}ß ]{0,6}", "\\PC{0,12}"), 1..8)
        ) {
            let materials: Vec<material::Model> = names
                .iter()
                .map(|(title, original)| material(title, original, "other"))
                .collect();
            let paths = entry_paths(&materials);
            proptest::prop_assert_eq!(paths.len(), materials.len());
            let mut seen = std::collections::HashSet::new();
            for path in &paths {
                let name = path.strip_prefix("其他/").unwrap();
                proptest::prop_assert!(!name.is_empty());
                proptest::prop_assert!(!name.chars().any(|c| c.is_control() || "/\\:*?\"<>|".contains(c)), "{}", name);
                proptest::prop_assert!(seen.insert(path.to_lowercase()), "{}", path);
            }
        }
    }

    /// The layout's bytes are a valid zip that the `zip` crate reads back, entries and CRCs.
    #[test]
    fn a_layout_filled_with_its_objects_is_a_valid_zip() {
        let data: Vec<Vec<u8>> = vec![b"first file".to_vec(), vec![7u8; 70_000], Vec::new()];
        let entries: Vec<Entry> = data
            .iter()
            .enumerate()
            .map(|(i, d)| Entry::Object {
                path: format!("现场图/图{i}.bin"),
                key: ObjectKey::from_stored(&format!("t/{i}")).unwrap(),
                size: d.len() as u64,
                crc32: crc32fast::hash(d),
                modified: zip::DateTime::default(),
            })
            .chain(std::iter::once(Entry::Generated {
                path: "SHA256SUMS".into(),
                bytes: b"abc  x\n".repeat(100),
                modified: zip::DateTime::default(),
            }))
            .collect();
        let layout = Layout::build(entries).unwrap();
        let mut bytes = Vec::new();
        for (start, part) in &layout.parts {
            assert_eq!(*start, bytes.len() as u64, "parts are contiguous");
            match part {
                Part::Literal(b) => bytes.extend_from_slice(b),
                Part::Object { key, .. } => {
                    let i: usize = key.as_str().trim_start_matches("t/").parse().unwrap();
                    bytes.extend_from_slice(&data[i]);
                }
            }
        }
        assert_eq!(bytes.len() as u64, layout.total);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 4);
        for (i, d) in data.iter().enumerate() {
            let mut f = archive.by_name(&format!("现场图/图{i}.bin")).unwrap();
            let mut read = Vec::new();
            f.read_to_end(&mut read).unwrap(); // checks the CRC
            assert_eq!(&read, d);
            assert_eq!(f.compression(), CompressionMethod::Stored);
        }
        let sums = archive.by_name("SHA256SUMS").unwrap();
        assert_eq!(sums.compression(), CompressionMethod::Deflated);
    }
}
