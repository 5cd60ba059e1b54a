//! A video's redacted copy: made in the background, one at a time on an instance, by `ffmpeg`
//! (`render::video::redact`), its progress kept for the editor's page; then it waits for an
//! officer to confirm having watched the whole of it (已逐帧复核), as the vendors of redaction
//! tools ask, before anyone outside the brigade is shown it or the material is released.
//!
//! If the process dies while one is being made, its row stays `pending`: the editor's page then
//! offers to make it again (a new redaction from the original; nothing is lost but the time).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use uuid::Uuid;

use super::{Areas, RedactionError};
use crate::audit::{Action, Actor, Event, Outcome};
use crate::db::entities::{account, material, redaction};
use crate::render::video::redact::{Place, Track};
use crate::state::AppState;
use crate::store::{ObjectKey, Purpose};
use crate::vocab::{MaterialState, RedactionState};

/// One copy is made at a time on an instance: a transcode takes every core it is given.
static MAKING: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| tokio::sync::Semaphore::new(1));
/// How far each copy being made on this instance has got (0 to 1).
static PROGRESS: LazyLock<Mutex<HashMap<Uuid, f32>>> = LazyLock::new(Default::default);

/// How far the copy of redaction `id` has got on this instance, if it is being made here.
pub fn progress(id: Uuid) -> Option<f32> {
    PROGRESS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&id)
        .copied()
}

fn set_progress(id: Uuid, done: Option<f32>) {
    let mut all = PROGRESS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match done {
        Some(f) => all.insert(id, f),
        None => all.remove(&id),
    };
}

/// The officer's boxes as `ffmpeg`'s tracks: each from its start place to its end place.
fn tracks(areas: &Areas) -> Vec<Track> {
    areas
        .tracks
        .iter()
        .map(|t| {
            let place = |at: f64, r: crate::render::redact::Rect| Place {
                t: at,
                x: r.x,
                y: r.y,
                w: r.w,
                h: r.h,
            };
            Track {
                start: t.start,
                end: t.end,
                keyframes: vec![place(t.start, t.from), place(t.end, t.to)],
            }
        })
        .collect()
}

/// What making a copy in the background needs of the portal's state.
pub(super) struct Maker {
    db: sea_orm::DatabaseConnection,
    store: crate::store::Store,
    data_dir: std::path::PathBuf,
    ffmpeg: std::path::PathBuf,
}

impl Maker {
    pub(super) fn of(state: &AppState) -> Maker {
        Maker {
            db: state.db.clone(),
            store: state.store.clone(),
            data_dir: state.settings.data_dir.clone(),
            ffmpeg: state.settings.ffmpeg.clone(),
        }
    }
}

/// Starts making the copy of `row` in the background.
pub(super) fn queue(state: Maker, row: redaction::Model, original: material::Model, areas: Areas) {
    set_progress(row.id, Some(0.0));
    tokio::spawn(async move {
        let id = row.id;
        let outcome = make(&state, &row, &original, &areas).await;
        set_progress(id, None);
        let (next, failure) = match outcome {
            Ok(stored) => (Some(stored), None),
            Err(e) => {
                tracing::warn!(redaction = %id, error = %e, "a redacted video could not be made");
                (None, Some(e.to_string()))
            }
        };
        if let Err(e) = finish(&state, row, next, failure).await {
            tracing::error!(redaction = %id, error = %e, "a redacted video's row could not be written");
        }
    });
}

async fn make(
    state: &Maker,
    row: &redaction::Model,
    original: &material::Model,
    areas: &Areas,
) -> Result<crate::store::Stored, RedactionError> {
    let _turn = MAKING
        .acquire()
        .await
        .map_err(|e| RedactionError::Invalid(e.to_string()))?;
    let source = ObjectKey::from_stored(&original.object_key)?;
    let spooled = state
        .store
        .spool(&source, Purpose::Render, &state.data_dir)
        .await?;
    let out = tempfile::Builder::new()
        .suffix(".mp4")
        .tempfile_in(&state.data_dir)
        .map_err(|e| RedactionError::Invalid(e.to_string()))?;
    let id = row.id;
    crate::render::video::redact::burn(
        &state.ffmpeg,
        spooled.path(),
        out.path(),
        &tracks(areas),
        move |f| set_progress(id, Some(f)),
    )
    .await?;
    let key = ObjectKey::from_stored(&row.object_key)?;
    Ok(state.store.put_file(&key, out.path()).await?)
}

/// Writes how the making ended: the copy's hash and size, waiting for review; or why it failed.
async fn finish(
    state: &Maker,
    row: redaction::Model,
    stored: Option<crate::store::Stored>,
    failure: Option<String>,
) -> Result<(), RedactionError> {
    let mut update: redaction::ActiveModel = row.into();
    match stored {
        Some(s) => {
            update.sha256 = Set(Some(s.sha256));
            update.sm3 = Set(Some(s.sm3));
            update.crc32 = Set(Some(i64::from(s.crc32)));
            update.size = Set(Some(s.size as i64));
            update.state = Set(RedactionState::Unreviewed);
        }
        None => {
            update.state = Set(RedactionState::Failed);
            update.failure = Set(failure.map(|f| f.chars().take(500).collect()));
        }
    }
    update.update(&state.db).await?;
    Ok(())
}

/// The officer confirms having watched the whole of a video's redacted copy (已逐帧复核): from
/// now on it is what is shown outside the brigade, audited (`redaction.review`, and
/// `redaction.release` when the material is out already).
pub async fn review(
    state: &AppState,
    staff: &account::Model,
    permit: &crate::policy::CasePermit,
    redaction_id: Uuid,
    watched: bool,
) -> Result<redaction::Model, RedactionError> {
    let row = redaction::Entity::find_by_id(redaction_id)
        .one(&state.db)
        .await?
        .filter(|r| r.case_id == permit.case_id)
        .ok_or(RedactionError::NotFound)?;
    if row.replaced_by.is_some() || row.state != RedactionState::Unreviewed {
        return Err(RedactionError::Invalid(
            "这份遮挡副本不在待复核状态 (this redacted copy is not waiting for review)".into(),
        ));
    }
    if !watched {
        return Err(RedactionError::Invalid(
            "请先完整观看遮挡后的视频，再勾选“已逐帧复核” (watch the whole redacted video, then tick 'reviewed frame by frame')".into(),
        ));
    }
    let original = material::Entity::find_by_id(row.material_id)
        .one(&state.db)
        .await?
        .ok_or(RedactionError::NotFound)?;
    let who = Actor::account(staff.id, staff.role);
    state
        .audit
        .record(
            Event::new(who.clone(), Action::RedactionReview, Outcome::Allowed)
                .case(row.case_id)
                .material(row.material_id)
                .details(serde_json::json!({ "redaction": row.id, "sha256": row.sha256 })),
        )
        .await?;
    if original.state == MaterialState::Released {
        super::released(state, &who, &original, row.id, &row.reasons).await?;
    }
    let mut update: redaction::ActiveModel = row.into();
    update.state = Set(RedactionState::Ready);
    update.reviewed_by = Set(Some(staff.id));
    update.reviewed_at = Set(Some(state.clock.now()));
    Ok(update.update(&state.db).await?)
}
