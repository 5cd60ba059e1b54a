//! Copies that say who received them (issue 32, item 7; an installation setting,
//! `PORTAL_WATERMARK_COPIES`, off by default). With it on, what a party, agent, owner or insurer
//! downloads of a picture or a PDF — alone or in a bundle — is a copy with them burned in, as a
//! view is: the picture re-encoded, the PDF's pages drawn and put back into a PDF. Staff receive
//! originals.
//!
//! One copy per person and material, made at their first download and kept `KEPT` in the store
//! (`copies/{account}/{material}/{copy}`, a `delivered_copies` row with its size, CRC-32 and
//! SHA-256), so that a cut download resumes on the same bytes and a bundle lays it out like any
//! stored object; `gc` removes it after, and the next download makes a new one. Making it is
//! audited twice: a `material.rendered` event before anything is drawn (its chain hash gives
//! the code in the copy), and one naming the finished copy's SHA-256 and code, which
//! `/staff/trace` finds.

use std::sync::LazyLock;
use std::time::Duration;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use uuid::Uuid;

use crate::audit::{Action, Actor, Event, Outcome};
use crate::db::entities::{account, case, delivered_copy, material};
use crate::error::{AppError, AppResult};
use crate::render::{self, Mark, RenderError};
use crate::state::AppState;
use crate::store::{ObjectKey, StoreError};
use crate::vocab::Role;

/// How long a copy is kept for the next download of the same person (and a resumed one).
pub const KEPT: time::Duration = time::Duration::days(7);
/// How long a download waits for the copy being made before it (one at a time).
const WAIT: Duration = Duration::from_secs(60);
/// One copy is made at a time on an instance: a PDF's copy draws every page.
static MAKING: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

/// A copy ready to be delivered.
#[derive(Clone, Debug)]
pub struct Copy {
    pub key: ObjectKey,
    pub content_type: String,
    pub sha256: String,
    /// `None` for a copy made before SM3 was measured (issue 36).
    pub sm3: Option<String>,
    pub crc32: u32,
    pub size: u64,
    pub code: String,
}

impl Copy {
    fn of(row: &delivered_copy::Model) -> Result<Copy, StoreError> {
        Ok(Copy {
            key: ObjectKey::from_stored(&row.object_key)?,
            content_type: row.content_type.clone(),
            sha256: row.sha256.clone(),
            sm3: row.sm3.clone(),
            crc32: row.crc32 as u32,
            size: row.size as u64,
            code: row.code.clone(),
        })
    }

    /// The extension a copy's file name has.
    pub fn extension(&self) -> &'static str {
        if self.content_type == "application/pdf" {
            "pdf"
        } else {
            "jpg"
        }
    }
}

/// Whether what `person` downloads of `material` is a copy naming them: the installation says
/// so, they are not staff, and the material is a picture or a PDF.
pub fn applies(
    settings: &crate::config::Settings,
    person: &account::Model,
    material: &material::Model,
) -> bool {
    settings.watermark_copies
        && !matches!(person.role, Role::Staff | Role::Admin)
        && render::renderable(&material.content_type)
}

/// `person`'s copy of `material` (of `case`): the one kept from an earlier download, or a new
/// one. `purpose` (`download`, `bundle`) goes into the audit events that make one.
pub async fn for_person(
    state: &AppState,
    person: &account::Model,
    case: &case::Model,
    material: &material::Model,
    client: (Option<String>, Option<String>),
    purpose: &'static str,
) -> AppResult<Copy> {
    if let Some(kept) = kept(state, person.id, material.id).await? {
        return Ok(kept);
    }
    let _making = tokio::time::timeout(WAIT, MAKING.lock())
        .await
        .map_err(|_| AppError::Unavailable {
            part: "rendering",
            cause: None,
        })?;
    // Made while this one waited (a second tab, a bundle beside a download)?
    if let Some(kept) = kept(state, person.id, material.id).await? {
        return Ok(kept);
    }
    make(state, person, case, material, client, purpose).await
}

async fn kept(state: &AppState, account_id: Uuid, material_id: Uuid) -> AppResult<Option<Copy>> {
    let row = delivered_copy::Entity::find()
        .filter(delivered_copy::Column::AccountId.eq(account_id))
        .filter(delivered_copy::Column::MaterialId.eq(material_id))
        .filter(delivered_copy::Column::ExpiresAt.gt(time::OffsetDateTime::now_utc()))
        .order_by_desc(delivered_copy::Column::MadeAt)
        .one(&state.db)
        .await?;
    Ok(row.as_ref().map(Copy::of).transpose()?)
}

async fn make(
    state: &AppState,
    person: &account::Model,
    case: &case::Model,
    material: &material::Model,
    client: (Option<String>, Option<String>),
    purpose: &'static str,
) -> AppResult<Copy> {
    if material.size as u64 > render::MAX_SOURCE {
        return Err(cannot_copy(RenderError::Unreadable("too large".into())));
    }
    let actor = Actor::account(person.id, person.role);
    let event = |details: serde_json::Value| {
        Event::new(actor.clone(), Action::MaterialRendered, Outcome::Allowed)
            .case(material.case_id)
            .material(material.id)
            .client(client.0.clone(), client.1.clone())
            .details(details)
    };
    // Committed before anything is drawn: its hash is the code in the copy.
    let begun = state
        .audit
        .record(event(serde_json::json!({
            "copy": "making", "for": purpose, "title": material.title,
        })))
        .await?;
    let code: String = begun.hash.chars().take(8).collect();
    let mark = Mark::for_viewer(person, case, &code);
    let pdf = material.content_type == "application/pdf";
    let made = draw(state, material, &mark, pdf).await?;

    let id = Uuid::now_v7();
    let key = ObjectKey::copy(person.id, material.id, id);
    let stored = state.store.put_file(&key, made.path()).await?;
    drop(made);
    let copy = Copy {
        key,
        content_type: if pdf { "application/pdf" } else { "image/jpeg" }.to_owned(),
        sha256: stored.sha256,
        sm3: Some(stored.sm3),
        crc32: stored.crc32,
        size: stored.size,
        code,
    };
    let kept = async {
        // What goes out, findable from a copy found outside (`/staff/trace`).
        state
            .audit
            .record(event(serde_json::json!({
                "of": begun.seq, "code": copy.code, "sha256": copy.sha256,
                "bytes": copy.size, "copy": true, "for": purpose,
                "content_type": copy.content_type,
            })))
            .await?;
        let now = time::OffsetDateTime::now_utc();
        row(&copy, id, person.id, material.id, begun.seq, now)
            .insert(&state.db)
            .await?;
        Ok::<_, AppError>(())
    }
    .await;
    if let Err(e) = kept {
        // Nothing delivered yet: the object goes, and nothing refers to it.
        if let Err(gone) = state.store.delete(&copy.key).await {
            tracing::warn!(key = copy.key.as_str(), error = %gone, "a copy not kept could not be removed; gc will");
        }
        return Err(e);
    }
    Ok(copy)
}

/// The row that finds a copy again: whose, of what, and when it goes.
fn row(
    copy: &Copy,
    id: Uuid,
    account_id: Uuid,
    material_id: Uuid,
    event_seq: i64,
    now: time::OffsetDateTime,
) -> delivered_copy::ActiveModel {
    delivered_copy::ActiveModel {
        id: Set(id),
        account_id: Set(account_id),
        material_id: Set(material_id),
        object_key: Set(copy.key.as_str().to_owned()),
        content_type: Set(copy.content_type.clone()),
        sha256: Set(copy.sha256.clone()),
        sm3: Set(copy.sm3.clone()),
        crc32: Set(i64::from(copy.crc32)),
        size: Set(copy.size as i64),
        code: Set(copy.code.clone()),
        event_seq: Set(event_seq),
        made_at: Set(now),
        expires_at: Set(now + KEPT),
    }
}

/// The marked copy drawn into a temporary file: a PDF's pages, or a picture re-encoded as JPEG.
async fn draw(
    state: &AppState,
    material: &material::Model,
    mark: &Mark,
    pdf: bool,
) -> AppResult<tempfile::NamedTempFile> {
    let font = &state.settings.watermark_font;
    let original = ObjectKey::from_stored(&material.object_key)?;
    let source = state
        .store
        .spool(
            &original,
            crate::store::Purpose::Render,
            &state.settings.data_dir,
        )
        .await?;
    let mut made =
        tempfile::NamedTempFile::new_in(&state.settings.data_dir).map_err(AppError::internal)?;
    if pdf {
        render::copy::pdf_copy(source.path(), mark, font, made.as_file_mut())
            .await
            .map_err(cannot_copy)?;
    } else {
        let bytes = tokio::fs::read(source.path())
            .await
            .map_err(AppError::internal)?;
        let jpeg = render::copy::image_copy(bytes.into(), mark, font)
            .await
            .map_err(cannot_copy)?;
        std::io::Write::write_all(made.as_file_mut(), &jpeg).map_err(AppError::internal)?;
    }
    Ok(made)
}

/// A copy that cannot be made is never replaced by the original: the person is told to ask the
/// brigade; a missing font or renderer, or every slot busy, is the installation's 503.
fn cannot_copy(e: RenderError) -> AppError {
    match e {
        RenderError::Unreadable(why) => {
            tracing::info!(error = %why, "a copy could not be made");
            AppError::bad_request(
                "cannot_copy",
                "无法为此文件制作带有您身份标记的副本，请到办案大队办理复制 (a copy of this file marked with your name cannot be made online: ask the brigade for a copy)",
            )
        }
        RenderError::NoFont(_) | RenderError::Missing(_) | RenderError::Busy => {
            tracing::error!(error = %e, "a copy could not be made: rendering unavailable");
            AppError::Unavailable {
                part: "rendering",
                cause: Some(Box::new(e)),
            }
        }
    }
}

/// What `gc` finds of copies: those past their time (with their row), and objects under
/// `copies/` no row names that are older than `min_age` (a process stopped between storing a copy
/// and recording it). Removed with `delete`. Each as its key and when it was made.
pub async fn sweep(
    state: &AppState,
    min_age: time::Duration,
    delete: bool,
) -> Result<Vec<(String, &'static str)>, AppError> {
    let now = time::OffsetDateTime::now_utc();
    let expired = delivered_copy::Entity::find()
        .filter(delivered_copy::Column::ExpiresAt.lte(now))
        .all(&state.db)
        .await?;
    let mut found = Vec::new();
    for row in expired {
        if delete {
            match state
                .store
                .delete(&ObjectKey::from_stored(&row.object_key)?)
                .await
            {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            delivered_copy::Entity::delete_by_id(row.id)
                .exec(&state.db)
                .await?;
        }
        found.push((row.object_key, "expired"));
    }
    let named: std::collections::HashSet<String> = delivered_copy::Entity::find()
        .all(&state.db)
        .await?
        .into_iter()
        .map(|r| r.object_key)
        .collect();
    for (key, modified) in state
        .store
        .objects_under(crate::store::COPIES_PREFIX)
        .await?
    {
        if named.contains(&key) || modified > now - min_age {
            continue;
        }
        if delete {
            state.store.delete(&ObjectKey::from_stored(&key)?).await?;
        }
        found.push((key, "orphan"));
    }
    Ok(found)
}
