//! Video for a person who may view but not copy (issue 32): a transcode made for them with
//! their mark burned in (`render::video`), started by their first look — the viewer page or
//! `…/view` — whose access event (`material.view`, `"transcode": "started"`) gives the code in
//! the mark, and whose SHA-256 is recorded (`material.rendered`) before it may be served. While
//! it is made, the page says how far it is and refreshes itself, and `…/view` answers 202 with
//! the same in JSON; once made, `…/view` serves it through `delivery` (ranges, `If-Range`, its
//! SHA-256 as `ETag`), every request audited. Where `ffmpeg` is not installed, or the file
//! cannot be transcoded, video is viewed at the brigade.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::{FutureExt, StreamExt};

use crate::audit::{Action, Actor, Event, Outcome};
use crate::db::entities::{account, case, material};
use crate::error::{AppError, AppResult};
use crate::render::Mark;
use crate::render::video::{Job, Key, Ready, State, Videos};
use crate::state::AppState;

/// Whether a material is a video (its sniffed type).
pub fn is_video(content_type: &str) -> bool {
    content_type.starts_with("video/")
}

/// How a view-only person's video can be shown now.
pub enum Shown {
    Ready(Ready),
    Preparing { percent: Option<u8>, ahead: usize },
    AtBrigade,
}

fn videos(state: &AppState) -> Videos {
    Videos::new(&state.settings.data_dir, &state.settings.ffmpeg)
}

/// Where `person`'s transcode of `material` stands; started (the access recorded first) when
/// there is none. A full queue is a 503 to come back to; a missing font too, as for pictures.
pub async fn prepared(
    state: &AppState,
    person: &account::Model,
    case: &case::Model,
    material: &material::Model,
    client: (Option<String>, Option<String>),
) -> AppResult<Shown> {
    let videos = videos(state);
    if !videos.installed() {
        tracing::warn!(ffmpeg = %state.settings.ffmpeg.display(), "ffmpeg is not installed: view-only video is viewed at the brigade");
        return Ok(Shown::AtBrigade);
    }
    crate::render::ready(&state.settings.watermark_font).map_err(super::rendered::render_error)?;
    let key = Key {
        // A redacted video's transcodes are of its copy, never of the original's (issue 34).
        material: crate::materials::redactions::source_id(material),
        account: person.id,
    };
    match where_is(&videos, key).await? {
        State::Absent => {}
        other => return Ok(shown(other)),
    }
    let Some(claim) = videos.claim(key).map_err(super::rendered::render_error)? else {
        return Ok(shown(where_is(&videos, key).await?));
    };
    let actor = Actor::account(person.id, person.role);
    // Committed before the transcode starts: its hash is the code burned into every frame.
    let recorded = state
        .audit
        .record(
            Event::new(actor.clone(), Action::MaterialView, Outcome::Allowed)
                .case(material.case_id)
                .material(material.id)
                .client(client.0.clone(), client.1.clone())
                .details(serde_json::json!({
                    "title": material.title, "rendered": true, "transcode": "started",
                    "redaction": crate::materials::redactions::is_redacted_copy(material).then(|| crate::materials::redactions::source_id(material)),
                    "instance": state.instance,
                })),
        )
        .await?;
    let code: String = recorded.hash.chars().take(8).collect();
    let object = crate::store::ObjectKey::from_stored(&material.object_key)?;
    let store = state.store.clone();
    let audit = state.audit.clone();
    let (case_id, material_id, of) = (material.case_id, material.id, recorded.seq);
    claim.run(Job {
        mark: Mark::for_viewer(person, case, &code),
        font: state.settings.watermark_font.clone(),
        open: Box::new(move || {
            async move {
                let fetched = store
                    .open_evidence(&object, None, crate::store::Purpose::Render, false)
                    .await?;
                Ok(fetched.body)
            }
            .boxed()
        }),
        // What will be served, findable from a copy found outside (`/staff/trace`).
        finished: Box::new(move |sha256, bytes| {
            async move {
                audit
                    .record(
                        Event::new(actor, Action::MaterialRendered, Outcome::Allowed)
                            .case(case_id)
                            .material(material_id)
                            .client(client.0, client.1)
                            .details(serde_json::json!({
                                "of": of, "code": code, "sha256": sha256, "bytes": bytes,
                                "video": true,
                            })),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            .boxed()
        }),
    });
    Ok(shown(where_is(&videos, key).await?))
}

async fn where_is(videos: &Videos, key: Key) -> AppResult<State> {
    let videos = videos.clone();
    tokio::task::spawn_blocking(move || videos.state(key, std::time::SystemTime::now()))
        .await
        .map_err(AppError::internal)
}

fn shown(state: State) -> Shown {
    match state {
        State::Ready(ready) => Shown::Ready(ready),
        State::Preparing { percent, ahead } => Shown::Preparing { percent, ahead },
        State::Failed(why) => {
            tracing::info!(error = %why, "a video is viewed at the brigade");
            Shown::AtBrigade
        }
        // Claimed, then gone at once (another process finished it, or it failed to start).
        State::Absent => Shown::Preparing {
            percent: None,
            ahead: 0,
        },
    }
}

/// For the viewer page: its shape (`video` when the transcode is ready, `preparing` while it
/// is made, `other` at the brigade) and what to say while it is made.
pub async fn for_viewer(
    state: &AppState,
    person: &account::Model,
    case: &case::Model,
    material: &material::Model,
    client: (Option<String>, Option<String>),
) -> AppResult<(&'static str, Option<String>)> {
    let locale = crate::i18n::Locale::current();
    Ok(
        match prepared(state, person, case, material, client).await? {
            Shown::Ready(_) => ("video", None),
            Shown::AtBrigade => ("other", None),
            Shown::Preparing { ahead, .. } if ahead > 0 => (
                "preparing",
                Some(locale.tf("viewer.video_queued", &[("n", &ahead.to_string())])),
            ),
            Shown::Preparing {
                percent: Some(p), ..
            } => (
                "preparing",
                Some(locale.tf("viewer.video_preparing", &[("percent", &p.to_string())])),
            ),
            Shown::Preparing { percent: None, .. } => (
                "preparing",
                Some(locale.t("viewer.video_preparing_started").into_owned()),
            ),
        },
    )
}

/// `GET …/view` of a video for a person who may only view: the transcode made for them, or
/// 202 with how far it is.
pub async fn view(
    state: &AppState,
    req: &HttpRequest,
    person: &account::Model,
    case: &case::Model,
    material: &material::Model,
    client: (Option<String>, Option<String>),
) -> AppResult<HttpResponse> {
    match prepared(state, person, case, material, client.clone()).await? {
        Shown::Ready(ready) => serve(state, req, person, material, ready, client).await,
        Shown::Preparing { percent, ahead } => Ok(HttpResponse::Accepted()
            .insert_header((header::RETRY_AFTER, "3"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "state": "preparing", "percent": percent, "ahead": ahead,
            }))),
        Shown::AtBrigade => {
            Err(super::rendered::refuse(state, person, material, client, "view_at_brigade").await)
        }
    }
}

/// The finished transcode, as `delivery` serves stored bytes: the access recorded first (with
/// the range asked and the transcode's SHA-256), the bytes that really went recorded after.
async fn serve(
    state: &AppState,
    req: &HttpRequest,
    person: &account::Model,
    material: &material::Model,
    ready: Ready,
    client: (Option<String>, Option<String>),
) -> AppResult<HttpResponse> {
    use crate::delivery::{Conditional, Representation};
    // Held open: removed by `gc` from now on, it is still served whole.
    let file = match std::fs::File::open(&ready.path) {
        Ok(file) => Arc::new(file),
        Err(e) => {
            tracing::info!(error = %e, "a video transcode went before it was served");
            return Err(AppError::Unavailable {
                part: "rendering",
                cause: None,
            });
        }
    };
    let size = ready.bytes;
    let etag = format!("\"{}\"", ready.sha256);
    let conditional = Conditional::evaluate(req.headers(), &etag, size);
    let head = req.method() == actix_web::http::Method::HEAD;
    let planned = if head {
        0
    } else {
        conditional.planned_bytes(size)
    };
    let actor = Actor::account(person.id, person.role);
    let recorded = state
        .audit
        .record(
            Event::new(actor.clone(), Action::MaterialView, Outcome::Allowed)
                .case(material.case_id)
                .material(material.id)
                .client(client.0.clone(), client.1.clone())
                .details(serde_json::json!({
                    "title": material.title, "rendered": true, "sha256": ready.sha256,
                    "redaction": crate::materials::redactions::is_redacted_copy(material).then(|| crate::materials::redactions::source_id(material)),
                    "range": conditional.range_header, "bytes": planned,
                    "not_modified": conditional.not_modified, "head": head,
                    "instance": state.instance,
                })),
        )
        .await?;
    let what = Representation {
        size,
        etag,
        content_type: "video/mp4".into(),
        disposition: header::ContentDisposition {
            disposition: header::DispositionType::Inline,
            parameters: vec![header::DispositionParam::Filename("view.mp4".into())],
        },
        headers: vec![(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; media-src 'self'; frame-ancestors 'self'",
        )],
        cache: "no-store",
    };
    let open = move |range: std::ops::Range<u64>| {
        futures_util::future::ready(Ok(part_of(file.clone(), range))).boxed()
    };
    let report = super::content::transfer_reporter(
        state.audit.clone(),
        actor,
        material.case_id,
        Some(material.id),
        client,
        (recorded.seq, state.instance),
    );
    crate::delivery::respond(conditional, head, what, open, report, async |e| {
        AppError::from(e)
    })
    .await
}

/// The bytes of `range` of `file`, read in 256-KiB pieces off the async workers.
fn part_of(file: Arc<std::fs::File>, range: std::ops::Range<u64>) -> crate::delivery::ByteStream {
    const PIECE: u64 = 256 * 1024;
    futures_util::stream::unfold((file, range), |(file, range)| async move {
        if range.start >= range.end {
            return None;
        }
        let len = (range.end - range.start).min(PIECE);
        let (reader, at) = (file.clone(), range.start);
        let read = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let mut piece = vec![0u8; len as usize];
            reader.read_exact_at(&mut piece, at).map(|()| piece)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        match read {
            Ok(piece) => Some((
                Ok(bytes::Bytes::from(piece)),
                (file, range.start + len..range.end),
            )),
            Err(e) => Some((
                Err(crate::store::StoreError::Body(Box::new(e))),
                (file, range.end..range.end),
            )),
        }
    })
    .boxed()
}
