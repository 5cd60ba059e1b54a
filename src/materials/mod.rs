//! Materials: receiving uploaded files into the store (type sniffed from the bytes, size limited,
//! hashed on the way) and recording them. Evidence work (release, withhold, viewing) builds on it.

use actix_multipart::Field;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::entities::material;

pub mod custody;
mod decisions;
pub mod redactions;
pub mod sm3;
use crate::store::{ObjectKey, Store, StoreError, Stored};
use crate::vocab::{MaterialKind, MaterialState, WithholdGround};

/// Bytes looked at to recognise a file's type.
const SNIFF_BYTES: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("不支持的文件类型：只接受 {0} (file type not accepted: only {0})")]
    Type(&'static str),
    #[error("文件为空 (the file is empty)")]
    Empty,
    #[error(
        "文件内容（{found}）与文件名不符 (the file's content ({found}) does not match its name)"
    )]
    Mismatch { found: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A file now complete in the store, not yet recorded (the caller writes the row, or deletes the
/// object if it cannot).
#[derive(Debug)]
pub struct Received {
    pub material_id: Uuid,
    pub key: ObjectKey,
    pub stored: Stored,
    pub content_type: &'static str,
    pub original_name: String,
}

/// A file name as display text: Unicode NFC (a name typed on macOS, decomposed, reads the same
/// as on Windows), the last path segment, trimmed, control and bidi-override characters
/// removed, ≤ 200 characters. Never used in a path or key.
pub fn display_name(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let cleaned: String = raw
        .nfc()
        .filter(|c| !c.is_control() && !matches!(*c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}'))
        .collect();
    let name = cleaned.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let name: String = name.chars().take(200).collect();
    if name.is_empty() {
        "未命名文件".into()
    } else {
        name
    }
}

/// Streams one multipart file field into the store under a new material id of `case_id`,
/// refusing types outside `allowed` (MIME types) before anything is stored.
pub async fn receive(
    store: &Store,
    case_id: Uuid,
    field: Field,
    limit: u64,
    allowed: &'static [&'static str],
    allowed_text: &'static str,
) -> Result<Received, UploadError> {
    let original_name = display_name(
        field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .unwrap_or(""),
    );
    // Fused: actix-multipart panics if a finished field is polled again.
    let mut field = field.fuse();
    // Gather the first bytes to recognise the type.
    let mut head: Vec<Bytes> = Vec::new();
    let mut seen = 0;
    while seen < SNIFF_BYTES {
        match field.next().await {
            Some(Ok(chunk)) => {
                seen += chunk.len();
                head.push(chunk);
            }
            Some(Err(e)) => {
                return Err(
                    StoreError::Body(Box::new(std::io::Error::other(e.to_string()))).into(),
                );
            }
            None => break,
        }
    }
    if seen == 0 {
        return Err(UploadError::Empty);
    }
    let first: Vec<u8> = head
        .iter()
        .flat_map(|b| b.iter().copied())
        .take(SNIFF_BYTES)
        .collect();
    let content_type = infer::get(&first)
        .map(|t| t.mime_type())
        .filter(|m| allowed.contains(m))
        .ok_or(UploadError::Type(allowed_text))?;
    // A name that claims another type is refused: it is what people (and attackers) open by.
    let claimed: Vec<mime_guess::Mime> = mime_guess::from_path(&original_name).iter().collect();
    if !claimed.is_empty() && !claimed.iter().any(|m| m.essence_str() == content_type) {
        return Err(UploadError::Mismatch {
            found: content_type,
        });
    }
    let material_id = Uuid::now_v7();
    let key = ObjectKey::material(case_id, material_id);
    let rest = field.map_err(|e| std::io::Error::other(e.to_string()));
    let body =
        futures_util::stream::iter(head.into_iter().map(Ok::<Bytes, std::io::Error>)).chain(rest);
    let stored = store.put_stream(&key, body, limit).await?;
    Ok(Received {
        material_id,
        key,
        stored,
        content_type,
        original_name,
    })
}

/// Records a received file as a material row.
pub async fn record(
    db: &impl ConnectionTrait,
    case_id: Uuid,
    received: &Received,
    kind: MaterialKind,
    title: &str,
    state: MaterialState,
    uploaded_by: Uuid,
) -> Result<material::Model, DbErr> {
    material::ActiveModel {
        id: Set(received.material_id),
        case_id: Set(case_id),
        kind: Set(kind),
        title: Set(title.to_owned()),
        original_name: Set(received.original_name.clone()),
        content_type: Set(received.content_type.to_owned()),
        size: Set(received.stored.size as i64),
        sha256: Set(received.stored.sha256.clone()),
        sm3: Set(Some(received.stored.sm3.clone()).filter(|h| !h.is_empty())),
        crc32: Set(i64::from(received.stored.crc32)),
        object_key: Set(received.key.as_str().to_owned()),
        state: Set(state),
        withhold_ground: Set(None),
        withhold_note: Set(None),
        uploaded_by: Set(uploaded_by),
        uploaded_at: Set(OffsetDateTime::now_utc()),
        decided_by: Set(None),
        decided_at: Set(None),
        superseded_by: Set(None),
        proves: Set(None),
    }
    .insert(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn file_names_are_display_text_only() {
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("C:\\scans\\授权委托书.pdf"), "授权委托书.pdf");
        assert_eq!(display_name("evil\u{202E}fdp.exe"), "evilfdp.exe");
        assert_eq!(display_name("a\u{0007}b.pdf"), "ab.pdf");
        assert_eq!(display_name("con\0trol\u{7}.pdf"), "control.pdf");
        // NFC: "é" decomposed (e + U+0301) is stored composed.
        assert_eq!(display_name("cafe\u{301}.pdf"), "caf\u{e9}.pdf");
        assert_eq!(display_name(""), "未命名文件");
        assert_eq!(display_name(&"长".repeat(300)).chars().count(), 200);
    }
}

/// What evidence files may be: images, PDF, video, Word documents. Executables, HTML, SVG and
/// anything unrecognised are refused.
pub const EVIDENCE_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/tiff",
    "application/pdf",
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-msvideo",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
];
pub const EVIDENCE_TYPES_TEXT: &str =
    "图片（JPEG、PNG、WebP、GIF、TIFF）、PDF、视频（MP4、MOV、WebM、AVI）、Word 文档";

#[cfg(test)]
mod type_tests {
    use super::*;

    #[test]
    fn evidence_types_leave_out_what_a_browser_would_run() {
        assert!(!EVIDENCE_TYPES.contains(&"text/html"));
        assert!(!EVIDENCE_TYPES.contains(&"image/svg+xml"));
        assert!(!EVIDENCE_TYPES.contains(&"application/x-executable"));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    #[error("{0}")]
    Invalid(String),
    #[error("材料不存在 (no such material)")]
    NotFound,
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<MaterialError> for crate::error::AppError {
    fn from(e: MaterialError) -> Self {
        use crate::error::AppError;
        match e {
            MaterialError::Invalid(m) => AppError::bad_request("invalid_material", m),
            MaterialError::NotFound => AppError::NotFound,
            MaterialError::Db(e) => e.into(),
            MaterialError::Audit(e) => AppError::Unavailable {
                part: "audit",
                cause: Some(Box::new(e)),
            },
        }
    }
}

fn staff_actor(staff: &crate::db::entities::account::Model) -> crate::audit::Actor {
    crate::audit::Actor::account(staff.id, staff.role)
}

/// Records an uploaded file as a draft of `kind`, audited (with the uploader's `client`: address
/// and user agent, for the custody record); says which earlier material of the case has the same
/// bytes, if any (staff are warned, not stopped).
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    db: &sea_orm::DatabaseConnection,
    audit: &crate::audit::Audit,
    staff: &crate::db::entities::account::Model,
    permit: &crate::policy::CasePermit,
    received: &Received,
    kind: &str,
    title: &str,
    supersedes: Option<Uuid>,
    client: (Option<String>, Option<String>),
) -> Result<(material::Model, Option<material::Model>), MaterialError> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    debug_assert_eq!(permit.action, crate::policy::CaseAction::Manage);
    let replaced = match supersedes {
        None => None,
        Some(id) => {
            let old = material::Entity::find_by_id(id)
                .one(db)
                .await?
                .filter(|m| m.case_id == permit.case_id)
                .ok_or_else(|| MaterialError::Invalid("要更正的材料不存在".into()))?;
            if !old.kind.is_evidence() || old.superseded_by.is_some() {
                return Err(MaterialError::Invalid("该材料已被更正，或不能更正".into()));
            }
            Some(old)
        }
    };
    let kind = MaterialKind::parse(kind)
        .filter(|k| MaterialKind::EVIDENCE.contains(k))
        .ok_or_else(|| MaterialError::Invalid("请选择材料类别".into()))?;
    let title = title.trim();
    let title = if title.is_empty() {
        received.original_name.as_str()
    } else {
        title
    };
    if title.chars().count() > 300 {
        return Err(MaterialError::Invalid("材料名称不能超过300字".into()));
    }
    let duplicate = material::Entity::find()
        .filter(material::Column::CaseId.eq(permit.case_id))
        .filter(material::Column::Sha256.eq(received.stored.sha256.clone()))
        .one(db)
        .await?;
    audit
        .record(
            crate::audit::Event::new(
                staff_actor(staff),
                crate::audit::Action::MaterialUpload,
                crate::audit::Outcome::Allowed,
            )
            .case(permit.case_id)
            .material(received.material_id)
            .client(client.0, client.1)
            .details(serde_json::json!({
                "kind": kind, "title": title, "size": received.stored.size,
                "sha256": received.stored.sha256, "sm3": received.stored.sm3,
                "content_type": received.content_type,
                "duplicate_of": duplicate.as_ref().map(|d| d.id),
            })),
        )
        .await?;
    let row = record(
        db,
        permit.case_id,
        received,
        kind,
        title,
        MaterialState::Draft,
        staff.id,
    )
    .await?;
    if let Some(old) = replaced {
        // Nothing is deleted or overwritten: the old material stays, marked superseded.
        audit
            .record(
                crate::audit::Event::new(
                    staff_actor(staff),
                    crate::audit::Action::MaterialSupersede,
                    crate::audit::Outcome::Allowed,
                )
                .case(permit.case_id)
                .material(old.id)
                .details(serde_json::json!({ "superseded_by": row.id, "title": old.title })),
            )
            .await?;
        let mut old_row: material::ActiveModel = old.into();
        old_row.superseded_by = Set(Some(row.id));
        old_row.update(db).await?;
    }
    Ok((row, duplicate))
}

pub use decisions::{Decision, decide, release_many};

/// Sets (or clears, with an empty text) what a material proves (证明对象, for the evidence
/// index), audited as a case update naming the material.
pub async fn set_proves(
    db: &sea_orm::DatabaseConnection,
    audit: &crate::audit::Audit,
    staff: &crate::db::entities::account::Model,
    permit: &crate::policy::CasePermit,
    material_id: Uuid,
    proves: &str,
) -> Result<material::Model, MaterialError> {
    use sea_orm::EntityTrait;
    debug_assert_eq!(permit.action, crate::policy::CaseAction::Manage);
    let m = material::Entity::find_by_id(material_id)
        .one(db)
        .await?
        .filter(|m| m.case_id == permit.case_id)
        .ok_or(MaterialError::NotFound)?;
    let proves = display_text(proves);
    if proves.chars().count() > 200 {
        return Err(MaterialError::Invalid(
            "证明对象不能超过200字 (what it proves: at most 200 characters)".into(),
        ));
    }
    let proves = (!proves.is_empty()).then_some(proves);
    if proves == m.proves {
        return Ok(m);
    }
    audit
        .record(
            crate::audit::Event::new(
                staff_actor(staff),
                crate::audit::Action::CaseUpdate,
                crate::audit::Outcome::Allowed,
            )
            .case(permit.case_id)
            .material(m.id)
            .details(
                serde_json::json!({ "field": "proves", "proves": proves, "before": m.proves }),
            ),
        )
        .await?;
    let mut row: material::ActiveModel = m.into();
    row.proves = Set(proves);
    Ok(row.update(db).await?)
}

/// One line of display text: NFC, control and bidi-override characters removed, trimmed.
fn display_text(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    raw.nfc()
        .filter(|c| {
            !c.is_control() && !matches!(*c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Every material of a case, oldest first (staff see them all).
pub async fn all_of_case(
    db: &sea_orm::DatabaseConnection,
    case_id: Uuid,
) -> Result<Vec<material::Model>, DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    material::Entity::find()
        .filter(material::Column::CaseId.eq(case_id))
        .order_by_asc(material::Column::UploadedAt)
        .all(db)
        .await
}

/// What a party may learn of a case's materials: the visible ones, and how many were withheld
/// on each ground (never their titles).
pub struct PartyView {
    /// As shown: a redacted material's copy stands in its place (`redactions::shown_as`).
    pub visible: Vec<material::Model>,
    /// (ground code, count), grounds with none left out.
    pub withheld: Vec<(WithholdGround, usize)>,
    /// The current redaction of each visible material shown as its redacted copy.
    pub redactions: std::collections::HashMap<Uuid, crate::db::entities::redaction::Model>,
    /// (reason, how many visible materials were redacted for it), reasons with none left out.
    pub redacted: Vec<(crate::vocab::RedactionReason, usize)>,
    /// Released materials not shown yet because their redacted copy is being made or reviewed.
    pub preparing: usize,
}

pub async fn party_view(
    db: &sea_orm::DatabaseConnection,
    permit: &crate::policy::CasePermit,
    actor: &crate::db::entities::account::Model,
) -> Result<PartyView, DbErr> {
    let all = all_of_case(db, permit.case_id).await?;
    let withheld = WithholdGround::ALL
        .iter()
        .map(|g| {
            let n = all
                .iter()
                .filter(|m| {
                    m.state == MaterialState::Withheld
                        && m.superseded_by.is_none()
                        && m.withhold_ground == Some(*g)
                })
                .count();
            (*g, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let mut current = if permit.unredacted {
        Default::default()
    } else {
        redactions::current_of_case(db, permit.case_id).await?
    };
    let mut visible = Vec::new();
    let mut preparing = 0;
    for m in all {
        if crate::policy::material_visible(permit, actor, &m).is_err() {
            continue;
        }
        let id = m.id;
        match redactions::shown_as(m, current.get(&id)) {
            Some(shown) => visible.push(shown),
            None => preparing += 1,
        }
    }
    current.retain(|id, _| visible.iter().any(|m| m.id == *id));
    let redacted = redactions::reason_counts(current.values());
    Ok(PartyView {
        visible,
        withheld,
        redactions: current,
        redacted,
        preparing,
    })
}

/// An object in the store that no material row references.
pub struct Orphan {
    pub key: String,
    pub modified: OffsetDateTime,
}

/// Objects under `cases/` that no row (of a material or an access application's proof)
/// references and that are older than `min_age` (an
/// upload may still be in flight, its row not yet written). Deletes them when `delete`.
pub async fn collect_garbage(
    db: &sea_orm::DatabaseConnection,
    store: &Store,
    min_age: time::Duration,
    delete: bool,
) -> Result<Vec<Orphan>, MaterialError> {
    use crate::db::entities::access_application;
    use sea_orm::{EntityTrait, QuerySelect};
    let mut referenced: std::collections::HashSet<String> = material::Entity::find()
        .select_only()
        .column(material::Column::ObjectKey)
        .into_tuple()
        .all(db)
        .await?
        .into_iter()
        .collect();
    // Redacted copies are evidence too (issue 34), kept as long as their originals.
    referenced.extend(
        crate::db::entities::redaction::Entity::find()
            .select_only()
            .column(crate::db::entities::redaction::Column::ObjectKey)
            .into_tuple::<String>()
            .all(db)
            .await?,
    );
    // The proofs of access applications are no materials but are kept all the same.
    referenced.extend(
        access_application::Entity::find()
            .select_only()
            .column(access_application::Column::ProofKey)
            .into_tuple::<String>()
            .all(db)
            .await?,
    );
    let objects = store
        .objects_under("cases")
        .await
        .map_err(|e| MaterialError::Invalid(format!("cannot list the store: {e}")))?;
    let cutoff = OffsetDateTime::now_utc() - min_age;
    let mut orphans = Vec::new();
    for (key, modified) in objects {
        if referenced.contains(&key) || modified > cutoff {
            continue;
        }
        if delete {
            let k =
                ObjectKey::from_stored(&key).map_err(|e| MaterialError::Invalid(e.to_string()))?;
            store
                .delete(&k)
                .await
                .map_err(|e| MaterialError::Invalid(format!("cannot delete {key}: {e}")))?;
        }
        orphans.push(Orphan { key, modified });
    }
    Ok(orphans)
}
