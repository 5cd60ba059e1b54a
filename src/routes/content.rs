//! The bytes of a material: downloads and inline views with ranges and validators, thumbnails,
//! and the `transfer.end` that says how each transfer ended.

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use uuid::Uuid;

use crate::audit::{Action, Event, Outcome};
use crate::auth::client_of;
use crate::cases;
use crate::error::{AppError, AppResult};
use crate::policy::CaseAction;
use crate::state::AppState;

/// `GET /cases/{id}/materials/{material_id}/{view|download}`: the bytes of a material, inline
/// or as an attachment, with `Range`/`If-Range`, a strong `ETag` (its SHA-256) and
/// `If-None-Match`. Parties and agents see only released current evidence (and download only once
/// the case is served); staff see everything of their brigade. The access is audited before the
/// first byte; when the body ends, a `transfer.end` event records the bytes that really went.
/// Agents may use their personal token (`Authorization: Bearer`).
pub async fn material_content_get(
    user: crate::auth::DownloadUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid, String)>,
) -> AppResult<HttpResponse> {
    use crate::delivery::{Conditional, MeteredBody, Ranges};
    use actix_web::http::header::{self, HeaderValue};
    use futures_util::{StreamExt, TryStreamExt};

    let (case_id, material_id, mode) = path.into_inner();
    let (action, audit_action, inline) = match mode.as_str() {
        "view" | "thumbnail" => (CaseAction::ViewMaterial, Action::MaterialView, true),
        "download" => (CaseAction::Download, Action::MaterialDownload, false),
        _ => return Err(AppError::NotFound),
    };
    let account = user.account().clone();
    let client = client_of(&req);
    let (_, _, material) = cases::authorize_material(
        &state.db,
        &state.audit,
        &account,
        client.clone(),
        action,
        case_id,
        material_id,
    )
    .await?;
    let actor = crate::audit::Actor {
        id: Some(account.id),
        role: crate::auth::extract::role_name(&account.role),
    };
    if mode == "thumbnail" {
        return thumbnail(&state, &material, actor, client, &user).await;
    }

    let size = material.size as u64;
    let etag = format!("\"{}\"", material.sha256);
    let conditional = Conditional::evaluate(req.headers(), &etag, size);
    // HEAD sends the headers only: audited as an access of no bytes, with no transfer.
    let head = req.method() == actix_web::http::Method::HEAD;
    let planned = if head {
        0
    } else {
        conditional.planned_bytes(size)
    };
    let Conditional {
        not_modified,
        range_header,
        ranges,
    } = conditional;

    // Committed before any byte of evidence leaves; if it cannot be, nothing is sent (503).
    let recorded = state
        .audit
        .record(
            Event::new(actor.clone(), audit_action, Outcome::Allowed)
                .case(case_id)
                .material(material_id)
                .client(client.0.clone(), client.1.clone())
                .details(serde_json::json!({
                    "title": material.title,
                    "range": range_header,
                    "bytes": planned,
                    "not_modified": not_modified,
                    "head": head,
                    "instance": state.instance,
                    "via": match &user { crate::auth::DownloadUser::Token { .. } => "token", _ => "session" },
                })),
        )
        .await?;

    let mut res = match (&ranges, not_modified) {
        (_, true) => HttpResponse::NotModified(),
        (Ranges::Unsatisfiable, _) => HttpResponse::RangeNotSatisfiable(),
        (Ranges::Parts(_), _) => HttpResponse::PartialContent(),
        (Ranges::Whole, _) => HttpResponse::Ok(),
    };
    res.insert_header((header::ETAG, etag.clone()))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if not_modified {
        return Ok(res.finish());
    }
    if let Ranges::Unsatisfiable = ranges {
        res.insert_header((header::CONTENT_RANGE, format!("bytes */{size}")));
        return Ok(res.finish());
    }
    res.insert_header((
        header::CONTENT_DISPOSITION,
        content_disposition(&material.original_name, &material.title, inline),
    ));
    if inline {
        // The viewer page embeds PDFs from here: same-origin framing only, nothing else.
        res.insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; img-src 'self'; media-src 'self'; frame-ancestors 'self'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "SAMEORIGIN"));
    }

    if head {
        let (len, range) = match &ranges {
            Ranges::Parts(parts) if parts.len() == 1 => {
                (parts[0].end - parts[0].start, Some(parts[0].clone()))
            }
            _ => (size, None),
        };
        if let Some(r) = range {
            res.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end - 1),
            ));
        } else {
            res.status(actix_web::http::StatusCode::OK);
        }
        res.insert_header((header::CONTENT_TYPE, material.content_type.clone()));
        return Ok(res.body(crate::delivery::HeadBody(len)));
    }

    let key = crate::store::ObjectKey::from_stored(&material.object_key)?;
    let store = state.store.clone();
    let audit = state.audit.clone();
    let first_seq = recorded.seq;
    // A fetch that fails before any byte: the access is recorded as failed (durably, before
    // the 503), so the history never shows a download that did not happen.
    let instance = state.instance;
    let failed_before_any_byte = |e: crate::store::StoreError| {
        let audit = audit.clone();
        let actor = actor.clone();
        let client = client.clone();
        async move {
            let recorded = audit
                .record(
                    Event::new(actor, Action::TransferEnd, Outcome::Failed)
                        .case(case_id)
                        .material(material_id)
                        .client(client.0, client.1)
                        .details(serde_json::json!({
                            "of": first_seq, "bytes_sent": 0, "completed": false,
                            "source_failed": true, "reason": e.to_string(), "instance": instance,
                        })),
                )
                .await;
            match recorded {
                Ok(_) => AppError::from(e),
                Err(audit_failed) => AppError::from(audit_failed),
            }
        }
    };
    let report = transfer_reporter(
        audit.clone(),
        actor.clone(),
        case_id,
        Some(material_id),
        client.clone(),
        (first_seq, instance),
    );
    match ranges {
        Ranges::Whole => {
            let fetched = match store.get(&key, None).await {
                Ok(f) => f,
                Err(e) => return Err(failed_before_any_byte(e).await),
            };
            res.insert_header((header::CONTENT_TYPE, material.content_type.clone()));
            Ok(res.body(MeteredBody::new(fetched.body, size, report)))
        }
        Ranges::Parts(parts) if parts.len() == 1 => {
            let r = parts[0].clone();
            let fetched = match store.get(&key, Some(r.clone())).await {
                Ok(f) => f,
                Err(e) => return Err(failed_before_any_byte(e).await),
            };
            res.insert_header((header::CONTENT_TYPE, material.content_type.clone()))
                .insert_header((
                    header::CONTENT_RANGE,
                    format!("bytes {}-{}/{size}", r.start, r.end - 1),
                ));
            Ok(res.body(MeteredBody::new(fetched.body, r.end - r.start, report)))
        }
        Ranges::Parts(parts) => {
            // multipart/byteranges: each part fetched from the store only when its turn comes.
            let boundary = format!("evidence-{}", Uuid::now_v7().simple());
            let mut segments: Vec<Result<Bytes, std::ops::Range<u64>>> = Vec::new();
            let mut total = 0u64;
            for r in &parts {
                let head = format!(
                    "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Range: bytes {}-{}/{size}\r\n\r\n",
                    material.content_type,
                    r.start,
                    r.end - 1
                );
                total += head.len() as u64 + (r.end - r.start);
                segments.push(Ok(Bytes::from(head)));
                segments.push(Err(r.clone()));
            }
            let tail = format!("\r\n--{boundary}--\r\n");
            total += tail.len() as u64;
            segments.push(Ok(Bytes::from(tail)));
            let body = futures_util::stream::iter(segments)
                .then(move |segment| {
                    let store = store.clone();
                    let key = key.clone();
                    async move {
                        match segment {
                            Ok(bytes) => {
                                Ok(futures_util::stream::once(async move { Ok(bytes) }).boxed())
                            }
                            Err(range) => store.get(&key, Some(range)).await.map(|f| f.body),
                        }
                    }
                })
                .try_flatten();
            res.insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
                    .map_err(AppError::internal)?,
            ));
            Ok(res.body(MeteredBody::new(body, total, report)))
        }
        Ranges::Unsatisfiable => Err(AppError::internal("handled above")),
    }
}

/// The thumbnail of an image material: made on first request, audited as a view of the
/// material (`"thumbnail": true`) before its bytes go out.
async fn thumbnail(
    state: &AppState,
    material: &crate::db::entities::material::Model,
    actor: crate::audit::Actor,
    client: (Option<String>, Option<String>),
    user: &crate::auth::DownloadUser,
) -> AppResult<HttpResponse> {
    use actix_web::http::header;
    let bytes = match crate::thumbnails::get_or_make(&state.store, material).await {
        Ok(b) => b,
        Err(crate::thumbnails::ThumbnailError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::info!(material = %material.id, error = %e, "no thumbnail");
            return Err(AppError::NotFound);
        }
    };
    state
        .audit
        .record(
            Event::new(actor, Action::MaterialView, Outcome::Allowed)
                .case(material.case_id)
                .material(material.id)
                .client(client.0, client.1)
                .details(serde_json::json!({
                    "title": material.title,
                    "thumbnail": true,
                    "bytes": bytes.len(),
                    "via": match user { crate::auth::DownloadUser::Token { .. } => "token", _ => "session" },
                })),
        )
        .await
        ?;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'self'",
        ))
        .body(bytes))
}

/// What reports the end of a transfer: a `transfer.end` event naming the access event `of`
/// (served by `instance`), the bytes that really went, and whether it completed — recorded in
/// the background (the response is already over), retried until the log takes it.
pub(super) fn transfer_reporter(
    audit: crate::audit::Audit,
    actor: crate::audit::Actor,
    case_id: Uuid,
    material_id: Option<Uuid>,
    client: (Option<String>, Option<String>),
    (of, instance): (i64, Uuid),
) -> impl FnOnce(crate::delivery::TransferEnd) + 'static {
    move |end| {
        let outcome = if end.completed {
            Outcome::Allowed
        } else {
            Outcome::Failed
        };
        let mut event = Event::new(actor, Action::TransferEnd, outcome)
            .case(case_id)
            .client(client.0, client.1)
            .details(serde_json::json!({
                "of": of, "bytes_sent": end.bytes_sent, "expected": end.expected,
                "completed": end.completed, "source_failed": end.failed, "instance": instance,
            }));
        if let Some(m) = material_id {
            event = event.material(m);
        }
        crate::audit::transfers::record_end(audit, event);
    }
}

/// `inline`/`attachment` with an ASCII fallback name and the real name as RFC 5987
/// `filename*`, control characters already stripped at upload.
fn content_disposition(
    original: &str,
    title: &str,
    inline: bool,
) -> actix_web::http::header::ContentDisposition {
    use actix_web::http::header::{
        Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
    };
    let name = if original.is_empty() { title } else { original };
    let ext = std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    ContentDisposition {
        disposition: if inline {
            DispositionType::Inline
        } else {
            DispositionType::Attachment
        },
        parameters: vec![
            DispositionParam::Filename(format!("evidence{ext}")),
            DispositionParam::FilenameExt(ExtendedValue {
                charset: Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: name.as_bytes().to_vec(),
            }),
        ],
    }
}
