//! What a person who may view but not copy receives for `/view` (issue 32): the access is
//! recorded first (its chain hash gives the code burned into the picture), the original is
//! opened for rendering only, the rendering's SHA-256 is recorded (`material.rendered`), and
//! only then do its bytes go out — never the original's. Images come back re-encoded, PDFs one
//! page at a time (`?page=n`); anything else is viewed at the brigade. The plain raster comes
//! from the render cache when an earlier view drew it (`"cached": true` in `material.rendered`);
//! the mark is burned in anew every time.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use sha2::Digest;

use crate::audit::{Action, Actor, Event, Outcome};
use crate::db::entities::{account, case, material};
use crate::error::{AppError, AppResult};
use crate::render::{self, Mark, RenderError};
use crate::state::AppState;

/// What can be rendered: images the decoders read, and PDFs.
pub fn renderable(content_type: &str) -> bool {
    render::renderable(content_type)
}

/// Refuses (audited) what a view-only person asked for but may not receive: an original, an
/// unmarked thumbnail, a file that is not rendered online.
pub async fn refuse(
    state: &AppState,
    person: &account::Model,
    material: &material::Model,
    client: (Option<String>, Option<String>),
    reason: &'static str,
) -> AppError {
    let recorded = state
        .audit
        .record(
            Event::new(
                Actor::account(person.id, person.role),
                Action::AccessDenied,
                Outcome::Denied,
            )
            .case(material.case_id)
            .material(material.id)
            .client(client.0, client.1)
            .details(serde_json::json!({ "reason": reason, "title": material.title })),
        )
        .await;
    match recorded {
        Ok(_) => AppError::Refused {
            reason,
            contact: None,
        },
        Err(e) => e.into(),
    }
}

/// `GET …/view` for a person who may only view: the rendering of the material (a page of it).
pub async fn view(
    state: &AppState,
    req: &HttpRequest,
    person: &account::Model,
    case: &case::Model,
    material: &material::Model,
    client: (Option<String>, Option<String>),
) -> AppResult<HttpResponse> {
    if super::video::is_video(&material.content_type) {
        return super::video::view(state, req, person, case, material, client).await;
    }
    if !renderable(&material.content_type) || material.size as u64 > render::MAX_SOURCE {
        return Err(refuse(state, person, material, client, "view_at_brigade").await);
    }
    let page: u32 = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
        .filter(|p| (1..=render::pdf::MAX_PAGES).contains(p))
        .unwrap_or(1);
    // The phone's width where asked for, else the full one (nothing else: the cache stays small).
    let width = match url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "w")
        .and_then(|(_, v)| v.parse::<u32>().ok())
    {
        Some(render::PHONE_WIDTH) => render::PHONE_WIDTH,
        _ => render::VIEW_WIDTH,
    };
    let actor = Actor::account(person.id, person.role);
    // Committed before anything is drawn: its hash is the code in the picture.
    let recorded = state
        .audit
        .record(
            Event::new(actor.clone(), Action::MaterialView, Outcome::Allowed)
                .case(material.case_id)
                .material(material.id)
                .client(client.0.clone(), client.1.clone())
                .details(serde_json::json!({
                    "title": material.title, "rendered": true, "page": page,
                    "redaction": crate::materials::redactions::is_redacted_copy(material).then(|| crate::materials::redactions::source_id(material)),
                    "width": width, "instance": state.instance,
                })),
        )
        .await?;
    let code: String = recorded.hash.chars().take(8).collect();
    let mark = Mark::for_viewer(person, case, &code);
    let (plain, cached) = plain(state, material, page, width).await?;
    let bytes = render::marked(plain, &mark, &state.settings.watermark_font)
        .await
        .map_err(render_error)?;
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    // What went out, findable from a copy found outside (`/staff/trace`).
    state
        .audit
        .record(
            Event::new(actor, Action::MaterialRendered, Outcome::Allowed)
                .case(material.case_id)
                .material(material.id)
                .client(client.0, client.1)
                .details(serde_json::json!({
                    "of": recorded.seq, "code": code, "sha256": sha256,
                    "bytes": bytes.len(), "page": page, "cached": cached,
                })),
        )
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "image/jpeg"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'self'",
        ))
        .insert_header((header::CONTENT_DISPOSITION, "inline; filename=\"view.jpg\""))
        .body(bytes))
}

/// The plain raster of the material (of its page): from the render cache when it is there — no
/// original opened, no renderer run — else drawn from the original, opened for rendering only,
/// and kept for the next view. Whether it came from the cache, too.
async fn plain(
    state: &AppState,
    material: &material::Model,
    page: u32,
    width: u32,
) -> AppResult<(render::Raster, bool)> {
    let cache = render::Cache::new(&state.settings.data_dir, state.settings.render_cache_bytes);
    let pdf = material.content_type == "application/pdf";
    let key = render::Key::new(&material.sha256, if pdf { page } else { 1 }, width);
    if let Some(key) = &key
        && let Some(raster) = render::cached(&cache, key).await
    {
        return Ok((raster, true));
    }
    let object = crate::store::ObjectKey::from_stored(&material.object_key)?;
    let purpose = crate::store::Purpose::Render;
    let drawn = if pdf {
        let data_dir = &state.settings.data_dir;
        let file = state.store.spool(&object, purpose, data_dir).await?;
        render::plain_pdf(file.path(), page, width).await
    } else {
        let fetched = state
            .store
            .open_evidence(&object, None, purpose, false)
            .await?;
        let mut bytes = Vec::with_capacity(material.size.max(0) as usize);
        let mut body = fetched.body;
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        render::plain_image(bytes.into(), width).await
    };
    let raster = drawn.map_err(render_error)?;
    let raster = match &key {
        Some(key) => render::keep(&cache, key, raster)
            .await
            .map_err(render_error)?,
        None => raster,
    };
    Ok((raster, false))
}

/// How a failed rendering is answered: a file that cannot be shown says so; a missing font or
/// renderer, or every slot busy, is the installation's 503 (and its log).
pub fn render_error(e: RenderError) -> AppError {
    match e {
        RenderError::Unreadable(why) => {
            tracing::info!(error = %why, "a file could not be rendered");
            AppError::bad_request(
                "cannot_show_online",
                "此文件无法在线显示，请到办案大队查阅 (this file cannot be shown online: ask the brigade to see it)",
            )
        }
        RenderError::NoFont(_) | RenderError::Missing(_) => {
            tracing::error!(error = %e, "RENDERING UNAVAILABLE: view-only material is not shown");
            AppError::Unavailable {
                part: "rendering",
                cause: Some(Box::new(e)),
            }
        }
        RenderError::Busy => AppError::Unavailable {
            part: "rendering",
            cause: None,
        },
    }
}

/// How many pages a PDF material has, for the viewer of someone who may only view it (the
/// original opened for rendering only, counted by the renderer's child process).
pub async fn page_count(
    state: &AppState,
    material: &material::Model,
) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    let key = crate::store::ObjectKey::from_stored(&material.object_key)?;
    let file = state
        .store
        .spool(
            &key,
            crate::store::Purpose::Render,
            &state.settings.data_dir,
        )
        .await?;
    Ok(render::page_count(file.path()).await?)
}
