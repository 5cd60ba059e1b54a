//! The bytes of a material: downloads and inline views with ranges and validators, thumbnails,
//! and the `transfer.end` that says how each transfer ended.

use actix_web::{HttpRequest, HttpResponse, web};
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
    let (case_id, material_id, mode) = path.into_inner();
    let (action, audit_action, inline) = match mode.as_str() {
        "view" | "thumbnail" => (CaseAction::ViewMaterial, Action::MaterialView, true),
        "download" => (CaseAction::Download, Action::MaterialDownload, false),
        _ => return Err(AppError::NotFound),
    };
    let account = user.account().clone();
    let client = client_of(&req);
    let (permit, facts, material) = cases::authorize_material(
        &state.db,
        &state.audit,
        &account,
        client.clone(),
        action,
        case_id,
        material_id,
    )
    .await?;
    // Staff open one of the material's redacted copies (`?redaction=`), or a PDF's page drawn
    // for the redaction editor (`?page=`).
    let material = super::staff::redaction_asked(&state, &req, &permit, material).await?;
    let actor = crate::audit::Actor::account(account.id, account.role);
    if mode == "view" && permit.unredacted && super::staff::page_asked(&req, &material) {
        return super::rendered::view(&state, &req, &account, &facts.case, &material, client).await;
    }
    if !permit.originals {
        // Viewing without copying: a rendering with the viewer burned in, never the original
        // (nor an unmarked thumbnail of it).
        if mode == "view" {
            return super::rendered::view(&state, &req, &account, &facts.case, &material, client)
                .await;
        }
        return Err(
            super::rendered::refuse(&state, &account, &material, client, "view_only").await,
        );
    }
    // Viewing is always a rendering for the people of a case, whatever the stage: copying is
    // the download. Staff view originals.
    if mode == "view"
        && !matches!(
            account.role,
            crate::vocab::Role::Staff | crate::vocab::Role::Admin
        )
        && crate::render::renderable(&material.content_type)
        && material.size as u64 <= crate::render::MAX_SOURCE
    {
        return super::rendered::view(&state, &req, &account, &facts.case, &material, client).await;
    }
    if mode == "thumbnail" {
        return thumbnail(&state, &req, &material, actor, client, &user).await;
    }
    // Where the installation says so, a download is a copy naming the person (made once, kept).
    let copy = if !inline && crate::copies::applies(&state.settings, &account, &material) {
        let copy = crate::copies::for_person(
            &state,
            &account,
            &facts.case,
            &material,
            client.clone(),
            "download",
        );
        Some(copy.await?)
    } else {
        None
    };
    let asked = Asked {
        actor,
        client,
        audit_action,
        inline,
        originals: permit.originals,
        via: match &user {
            crate::auth::DownloadUser::Token { .. } => "token",
            _ => "session",
        },
    };
    deliver(&state, &req, asked, &material, copy).await
}

/// Who asked for a material's bytes, and how, once the asking is decided.
struct Asked {
    actor: crate::audit::Actor,
    client: (Option<String>, Option<String>),
    audit_action: Action,
    inline: bool,
    originals: bool,
    /// `token` or `session`.
    via: &'static str,
}

/// Serves the material (or the person's copy of it): the access recorded durably first, then
/// the bytes by `delivery`, then their `transfer.end`.
async fn deliver(
    state: &AppState,
    req: &HttpRequest,
    asked: Asked,
    material: &crate::db::entities::material::Model,
    copy: Option<crate::copies::Copy>,
) -> AppResult<HttpResponse> {
    use crate::delivery::Conditional;
    let Asked {
        actor,
        client,
        audit_action,
        inline,
        originals,
        via,
    } = asked;
    let (case_id, material_id) = (material.case_id, material.id);
    let (size, etag) = match &copy {
        Some(c) => (c.size, format!("\"{}\"", c.sha256)),
        None => (material.size as u64, format!("\"{}\"", material.sha256)),
    };
    let conditional = Conditional::evaluate(req.headers(), &etag, size);
    // HEAD sends the headers only: audited as an access of no bytes, with no transfer.
    let head = req.method() == actix_web::http::Method::HEAD;
    let planned = if head {
        0
    } else {
        conditional.planned_bytes(size)
    };

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
                    "range": conditional.range_header,
                    "bytes": planned,
                    "not_modified": conditional.not_modified,
                    "head": head,
                    "instance": state.instance,
                    "via": via,
                    "copy": copy.as_ref().map(|c| serde_json::json!({ "code": c.code, "sha256": c.sha256 })),
                    "redaction": crate::materials::redactions::is_redacted_copy(material)
                        .then(|| crate::materials::redactions::source_id(material)),
                })),
        )
        .await?;

    let what = representation(material, copy.as_ref(), size, etag, inline);
    let open = opener(state, material, copy.map(|c| c.key), originals)?;
    let (first_seq, instance) = (recorded.seq, state.instance);
    let report = transfer_reporter(
        state.audit.clone(),
        actor.clone(),
        case_id,
        Some(material_id),
        client.clone(),
        (first_seq, instance),
    );
    // A fetch that fails before any byte: the access is recorded as failed (durably, before
    // the 503), so the history never shows a download that did not happen.
    let audit = state.audit.clone();
    let refused = async move |e: crate::store::StoreError| {
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
    };
    crate::delivery::respond(conditional, head, what, open, report, refused).await
}

/// How the bytes are described: type, size, strong validator, the file name (a copy's with its
/// own extension), and for inline views a policy allowing same-origin framing only.
fn representation(
    material: &crate::db::entities::material::Model,
    copy: Option<&crate::copies::Copy>,
    size: u64,
    etag: String,
    inline: bool,
) -> crate::delivery::Representation {
    use actix_web::http::header;
    let (content_type, original_name) = match copy {
        Some(c) => {
            let stem = std::path::Path::new(&material.original_name)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("copy");
            (c.content_type.clone(), format!("{stem}.{}", c.extension()))
        }
        None => (
            material.content_type.clone(),
            material.original_name.clone(),
        ),
    };
    crate::delivery::Representation {
        size,
        etag,
        content_type,
        disposition: content_disposition(&original_name, &saved_title(material), inline),
        // The viewer page embeds PDFs from here: same-origin framing only, nothing else.
        headers: if inline {
            vec![
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; img-src 'self'; media-src 'self'; frame-ancestors 'self'",
                ),
                (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
            ]
        } else {
            Vec::new()
        },
        cache: "no-store",
    }
}

/// Opens a range of what is served: the person's copy, or the original through the store
/// (which is told the purpose and whether the permit allows originals).
fn opener(
    state: &AppState,
    material: &crate::db::entities::material::Model,
    copy_key: Option<crate::store::ObjectKey>,
    originals: bool,
) -> AppResult<
    impl Fn(
        std::ops::Range<u64>,
    ) -> futures_util::future::BoxFuture<
        'static,
        Result<crate::delivery::ByteStream, crate::store::StoreError>,
    > + Send
    + 'static,
> {
    use futures_util::FutureExt;
    let key = crate::store::ObjectKey::from_stored(&material.object_key)?;
    let store = state.store.clone();
    Ok(move |range: std::ops::Range<u64>| {
        let store = store.clone();
        let key = key.clone();
        let copy_key = copy_key.clone();
        async move {
            match copy_key {
                // A copy is no original: it is what this person may take.
                Some(copy_key) => store.get(&copy_key, Some(range)).await,
                None => {
                    store
                        .open_evidence(&key, Some(range), crate::store::Purpose::Deliver, originals)
                        .await
                }
            }
            .map(|f| f.body)
        }
        .boxed()
    })
}

/// The thumbnail of an image material: made on first request, audited as a view of the
/// material (`"thumbnail": true`) before its bytes go out, and served like any representation
/// (validators, ranges) by `delivery`.
async fn thumbnail(
    state: &AppState,
    req: &HttpRequest,
    material: &crate::db::entities::material::Model,
    actor: crate::audit::Actor,
    client: (Option<String>, Option<String>),
    user: &crate::auth::DownloadUser,
) -> AppResult<HttpResponse> {
    use crate::delivery::{Conditional, Representation};
    use actix_web::http::header;
    use futures_util::{FutureExt, StreamExt};
    let bytes = match crate::thumbnails::get_or_make(&state.store, material).await {
        Ok(b) => b,
        Err(crate::thumbnails::ThumbnailError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::info!(material = %material.id, error = %e, "no thumbnail");
            return Err(AppError::NotFound);
        }
    };
    let size = bytes.len() as u64;
    let etag = format!("\"{}-thumbnail\"", material.sha256);
    let conditional = Conditional::evaluate(req.headers(), &etag, size);
    let head = req.method() == actix_web::http::Method::HEAD;
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
                    "bytes": if head { 0 } else { conditional.planned_bytes(size) },
                    "via": match user { crate::auth::DownloadUser::Token { .. } => "token", _ => "session" },
                })),
        )
        .await?;
    let what = Representation {
        size,
        etag,
        content_type: "image/jpeg".into(),
        disposition: header::ContentDisposition {
            disposition: header::DispositionType::Inline,
            parameters: vec![header::DispositionParam::Filename("thumbnail.jpg".into())],
        },
        headers: vec![(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'self'",
        )],
        // Kept by this browser only, for the length of a visit: the case page's thumbnails do
        // not reload on every view.
        cache: "private, max-age=600",
    };
    // In memory already: any range of it is a slice, and nothing can fail to open.
    let open = move |range: std::ops::Range<u64>| {
        let part = bytes.slice(range.start as usize..range.end as usize);
        let body = futures_util::stream::once(futures_util::future::ready(Ok::<
            _,
            crate::store::StoreError,
        >(part)));
        futures_util::future::ready(Ok(body.boxed())).boxed()
    };
    crate::delivery::respond(
        conditional,
        head,
        what,
        open,
        |_| {},
        async |e| AppError::from(e),
    )
    .await
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
/// The name a file is saved under: its title, and a redacted copy says so (issue 34).
fn saved_title(material: &crate::db::entities::material::Model) -> String {
    if crate::materials::redactions::is_redacted_copy(material) {
        format!("{}（遮挡处理）", material.title)
    } else {
        material.title.clone()
    }
}

fn content_disposition(
    original: &str,
    title: &str,
    inline: bool,
) -> actix_web::http::header::ContentDisposition {
    use actix_web::http::header::{
        Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
    };
    // Named by its title (what the case page calls it), with the original's extension: a
    // party saves "现场勘查笔录.pdf", not the uploader's "IMG_20261120_0830.pdf".
    let ext = std::path::Path::new(original)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|e| format!(".{}", e.to_ascii_lowercase()))
        .unwrap_or_default();
    let stem: String = title
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let stem = stem.trim().trim_start_matches('.');
    let name = if stem.is_empty() {
        original.to_owned()
    } else if title.to_ascii_lowercase().ends_with(&ext) {
        stem.to_owned()
    } else {
        format!("{stem}{ext}")
    };
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
