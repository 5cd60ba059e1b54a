//! Redaction with the original kept (issue 34): staff black out a bystander's face, another
//! car's plate or a third party's details in a picture, the pages of a PDF or a video, giving a
//! reason for every box. Nothing is edited: each redaction is a new object in the store with its
//! own SHA-256, linked to the original, its boxes and reasons kept as data, made by an officer at
//! a time, all of it audited (`redaction.create`; never the pixels). From then on everyone
//! outside the brigade is shown the copy in the original's place (`materials::redactions`); a
//! new redaction of the same material is made from the original again and replaces the last.
//!
//! A picture's or a PDF's copy is made within the request (`render::redact`). A video's is made
//! in the background (`video`), then waits for an officer to confirm having watched all of it
//! (已逐帧复核) before it is shown or the material released.

mod areas;
mod video;

use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set, TransactionTrait};
use time::OffsetDateTime;
use uuid::Uuid;

pub use areas::{Area, Areas, MAX_AREAS, Track};
pub use video::{progress, review};

use crate::audit::{Action, Actor, Event, Outcome};
use crate::db::entities::{account, delivered_copy, material, redaction};
use crate::state::AppState;
use crate::store::{ObjectKey, Purpose};
use crate::vocab::{MaterialState, RedactionState};

#[derive(Debug, thiserror::Error)]
pub enum RedactionError {
    /// What the officer sent cannot be a redaction; the message says why, in both languages.
    #[error("{0}")]
    Invalid(String),
    #[error("材料不存在 (no such material)")]
    NotFound,
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<RedactionError> for crate::error::AppError {
    fn from(e: RedactionError) -> Self {
        use crate::error::AppError;
        match e {
            RedactionError::Invalid(m) => AppError::bad_request("invalid_redaction", m),
            RedactionError::NotFound => AppError::NotFound,
            RedactionError::Render(crate::render::RenderError::Unreadable(why)) => {
                AppError::bad_request(
                    "redaction_unreadable",
                    format!("无法生成遮挡副本：{why} (the redacted copy could not be made: {why})"),
                )
            }
            // Every slot busy, or the renderer or font missing: come back later.
            RedactionError::Render(e) => AppError::Unavailable {
                part: "rendering",
                cause: Some(Box::new(e)),
            },
            RedactionError::Store(e) => e.into(),
            RedactionError::Db(e) => e.into(),
            RedactionError::Audit(e) => AppError::Unavailable {
                part: "audit",
                cause: Some(Box::new(e)),
            },
        }
    }
}

/// What can be redacted, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Picture,
    Pdf,
    Video,
}

impl Shape {
    pub fn of(content_type: &str) -> Option<Shape> {
        match content_type {
            "image/jpeg" | "image/png" | "image/webp" | "image/gif" => Some(Shape::Picture),
            "application/pdf" => Some(Shape::Pdf),
            "video/mp4" | "video/quicktime" | "video/webm" | "video/x-msvideo" => {
                Some(Shape::Video)
            }
            _ => None,
        }
    }
}

/// The material of the case that may be redacted: current evidence of a kind drawn here.
pub async fn redactable(
    db: &impl ConnectionTrait,
    permit: &crate::policy::CasePermit,
    material_id: Uuid,
) -> Result<(material::Model, Shape), RedactionError> {
    debug_assert_eq!(permit.action, crate::policy::CaseAction::Manage);
    let m = material::Entity::find_by_id(material_id)
        .one(db)
        .await?
        .filter(|m| m.case_id == permit.case_id)
        .ok_or(RedactionError::NotFound)?;
    if !m.kind.is_evidence() || m.superseded_by.is_some() {
        return Err(RedactionError::Invalid(
            "此材料已被更正或不是证据材料，不能遮挡 (this material was superseded or is not evidence: it cannot be redacted)".into(),
        ));
    }
    let shape = Shape::of(&m.content_type).ok_or_else(|| {
        RedactionError::Invalid(
            "只能遮挡图片、PDF 和视频 (only pictures, PDFs and videos can be redacted)".into(),
        )
    })?;
    if m.size as u64 > crate::render::MAX_SOURCE && shape != Shape::Video {
        return Err(RedactionError::Invalid(
            "文件过大，不能在线遮挡 (the file is too large to redact online)".into(),
        ));
    }
    Ok((m, shape))
}

/// Makes a redacted copy of material `material_id` with `areas`, audited; it replaces the
/// material's current one. A picture's or PDF's copy is ready when this returns; a video's is
/// queued (`RedactionState::Pending`).
pub async fn create(
    state: &AppState,
    staff: &account::Model,
    permit: &crate::policy::CasePermit,
    material_id: Uuid,
    areas: Areas,
) -> Result<redaction::Model, RedactionError> {
    let (original, shape) = redactable(&state.db, permit, material_id).await?;
    areas.check(shape)?;
    let id = Uuid::now_v7();
    let key = ObjectKey::redaction(permit.case_id, id);
    if shape == Shape::Video {
        let row = record(state, staff, &original, id, &key, &areas, None).await?;
        video::queue(video::Maker::of(state), row.clone(), original, areas);
        return Ok(row);
    }
    let made = make(state, &original, shape, &key, &areas).await?;
    match record(state, staff, &original, id, &key, &areas, Some(made)).await {
        Ok(row) => Ok(row),
        Err(e) => {
            // Nothing half-done stays: the copy without its row goes.
            let _ = state.store.delete(&key).await;
            Err(e)
        }
    }
}

/// The copy of a picture or PDF, burned and stored under `key`.
async fn make(
    state: &AppState,
    original: &material::Model,
    shape: Shape,
    key: &ObjectKey,
    areas: &Areas,
) -> Result<(crate::store::Stored, &'static str), RedactionError> {
    let source = ObjectKey::from_stored(&original.object_key)?;
    let spooled = state
        .store
        .spool(&source, Purpose::Render, &state.settings.data_dir)
        .await?;
    if shape == Shape::Picture {
        let bytes = tokio::fs::read(spooled.path())
            .await
            .map_err(|e| RedactionError::Invalid(e.to_string()))?;
        let (copy, content_type) =
            crate::render::redact::image(bytes.into(), &original.content_type, areas.rects(0))
                .await?;
        let size = copy.len() as u64;
        let body =
            futures_util::stream::once(
                async move { Ok::<_, std::io::Error>(bytes::Bytes::from(copy)) },
            );
        return Ok((
            state.store.put_stream(key, body, size + 1).await?,
            content_type,
        ));
    }
    let out = tempfile::NamedTempFile::new_in(&state.settings.data_dir)
        .map_err(|e| RedactionError::Invalid(e.to_string()))?;
    let mut file = out
        .reopen()
        .map_err(|e| RedactionError::Invalid(e.to_string()))?;
    crate::render::redact::pdf(spooled.path(), &areas.pages(), &mut file).await?;
    drop(file);
    let stored = state.store.put_file(key, out.path()).await?;
    Ok((stored, "application/pdf"))
}

/// Writes the redaction's row (replacing the material's current one) and its audit events, in
/// one transaction; the material's burned-in copies made for people from what was shown before
/// expire at once. `made`: the stored copy and its type, or `None` for a video still to be made.
async fn record(
    state: &AppState,
    staff: &account::Model,
    original: &material::Model,
    id: Uuid,
    key: &ObjectKey,
    areas: &Areas,
    made: Option<(crate::store::Stored, &'static str)>,
) -> Result<redaction::Model, RedactionError> {
    use sea_orm::{ColumnTrait, QueryFilter, sea_query::Expr};
    let now = state.clock.now();
    let ready = made.is_some();
    let stored = made.as_ref().map(|(s, _)| s.clone());
    let content_type = made.as_ref().map_or("video/mp4", |(_, t)| *t);
    let who = Actor::account(staff.id, staff.role);
    let counts = areas.reason_counts();
    state
        .audit
        .record(
            Event::new(who.clone(), Action::RedactionCreate, Outcome::Allowed)
                .case(original.case_id)
                .material(original.id)
                .details(serde_json::json!({
                    "redaction": id,
                    "source_sha256": original.sha256,
                    "sha256": stored.as_ref().map(|s| s.sha256.clone()),
                    "reasons": counts,
                    "areas": areas.len(),
                    "state": if ready { "ready" } else { "pending" },
                })),
        )
        .await?;
    if ready && original.state == MaterialState::Released {
        released(state, &who, original, id, &areas.reason_codes()).await?;
    }
    let txn = state.db.begin().await?;
    // The material's row first: two officers saving at once take turns here, so the second
    // replaces the first's redaction rather than both being current.
    material::Entity::update_many()
        .col_expr(
            material::Column::DecidedAt,
            Expr::col(material::Column::DecidedAt),
        )
        .filter(material::Column::Id.eq(original.id))
        .exec(&txn)
        .await?;
    redaction::Entity::update_many()
        .col_expr(redaction::Column::ReplacedBy, Expr::value(id))
        .filter(redaction::Column::MaterialId.eq(original.id))
        .filter(redaction::Column::ReplacedBy.is_null())
        .exec(&txn)
        .await?;
    // Copies burned for people from what was shown before are not delivered again.
    delivered_copy::Entity::update_many()
        .col_expr(delivered_copy::Column::ExpiresAt, Expr::value(now))
        .filter(delivered_copy::Column::MaterialId.eq(original.id))
        .filter(delivered_copy::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    let row = redaction::ActiveModel {
        id: Set(id),
        case_id: Set(original.case_id),
        material_id: Set(original.id),
        source_sha256: Set(original.sha256.clone()),
        object_key: Set(key.as_str().to_owned()),
        content_type: Set(content_type.to_owned()),
        sha256: Set(stored.as_ref().map(|s| s.sha256.clone())),
        sm3: Set(stored.as_ref().map(|s| s.sm3.clone())),
        crc32: Set(stored.as_ref().map(|s| i64::from(s.crc32))),
        size: Set(stored.as_ref().map(|s| s.size as i64)),
        areas: Set(areas.to_json()),
        reasons: Set(areas.reason_codes()),
        state: Set(if ready {
            RedactionState::Ready
        } else {
            RedactionState::Pending
        }),
        failure: Set(None),
        made_by: Set(staff.id),
        made_at: Set(now),
        reviewed_by: Set(None),
        reviewed_at: Set(None),
        replaced_by: Set(None),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(row)
}

/// Records that a redacted copy is from now on what is shown of a released material: made on
/// one already released, confirmed after review, or released with it.
pub async fn released(
    state: &AppState,
    who: &Actor,
    material: &material::Model,
    redaction_id: Uuid,
    reasons: &str,
) -> Result<(), crate::audit::AuditError> {
    state
        .audit
        .record(
            Event::new(who.clone(), Action::RedactionRelease, Outcome::Allowed)
                .case(material.case_id)
                .material(material.id)
                .details(serde_json::json!({
                    "redaction": redaction_id,
                    "reasons": reasons.split(',').collect::<Vec<_>>(),
                })),
        )
        .await?;
    Ok(())
}

/// Every redaction of a material with the names of the officers who made and reviewed them,
/// newest first.
pub async fn history(
    db: &impl ConnectionTrait,
    material_id: Uuid,
) -> Result<Vec<(redaction::Model, String, Option<String>)>, RedactionError> {
    let rows = crate::materials::redactions::history(db, material_id).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let name = |id: Uuid| async move {
            Ok::<_, sea_orm::DbErr>(
                account::Entity::find_by_id(id)
                    .one(db)
                    .await?
                    .map_or_else(|| id.to_string(), |a| a.display_name),
            )
        };
        let made = name(r.made_by).await?;
        let reviewed = match r.reviewed_by {
            Some(id) => Some(name(id).await?),
            None => None,
        };
        out.push((r, made, reviewed));
    }
    Ok(out)
}

/// The time a redaction was made, for pages (CST).
pub fn made_at(r: &redaction::Model) -> OffsetDateTime {
    r.made_at.to_offset(time::macros::offset!(+8))
}
