//! Bundles (a case's evidence as one zip) and the public key of the digital stamp (the page that
//! checks a bundle is `verify`).

use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use crate::audit::{Action, Event, Outcome};
use crate::auth::{DownloadUser, client_of};
use crate::cases;
use crate::delivery::{Conditional, Ranges, Representation};
use crate::error::{AppError, AppResult};
use crate::policy::CaseAction;
use crate::state::AppState;
use futures_util::FutureExt;

/// The materials named by `?material=<id>` (repeated), if any are named.
fn selection(query: &str) -> AppResult<Option<Vec<Uuid>>> {
    let mut ids = Vec::new();
    // The case page's "download selected" form says it is one: with nothing ticked it is a
    // mistake to point out, not a request for everything.
    let mut from_selection_form = false;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == "selected" {
            from_selection_form = true;
        }
        if k != "material" {
            continue;
        }
        let id = Uuid::parse_str(v.trim()).map_err(|_| {
            AppError::bad_request(
                "bad_selection",
                format!("“{v}”不是有效的材料编号。 (“{v}” is not a material number)"),
            )
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
        if ids.len() > 10_000 {
            return Err(AppError::bad_request(
                "bad_selection",
                "所选材料过多。 (too many materials selected)",
            ));
        }
    }
    if ids.is_empty() && from_selection_form {
        return Err(AppError::bad_request(
            "nothing_selected",
            "请先勾选要下载的材料，或点击“下载全部材料” (tick the material to download first, or download everything)",
        ));
    }
    Ok((!ids.is_empty()).then_some(ids))
}

/// `GET /cases/{id}/bundle.zip[?material=…]`: every material the actor may download in the case
/// (or the selection), as one zip with `SHA256SUMS`, `manifest.json` and its signature
/// `manifest.jws`. Exact `Content-Length`; `Range`/`If-Range` resume a cut download. Audited
/// with the list of materials before the first byte, and again when the transfer ends.
pub async fn bundle_get(
    user: DownloadUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let case_id = path.into_inner();
    let selection = selection(req.query_string())?;
    let account = user.account().clone();
    let client = client_of(&req);
    let (permit, facts) = cases::authorize(
        &state.db,
        &state.audit,
        &account,
        client.clone(),
        CaseAction::Download,
        case_id,
    )
    .await?;
    let view = crate::materials::party_view(&state.db, &permit, &account).await?;
    let actor = crate::audit::Actor::account(account.id, account.role);
    let chosen = chosen(&state, view.visible, selection, &actor, case_id, &client).await?;
    let mut delivered = copies_for(&state, &account, &facts.case, &chosen, &client).await?;
    // SM3 for what was recorded before it was measured (issue 36), before the layout.
    let mut chosen = chosen;
    crate::bundle::digests::prepare(&state.db, &state.store, &mut chosen, &mut delivered).await?;
    let planned = crate::bundle::plan(
        &state.db,
        &state.manifest_key,
        &permit,
        &facts,
        &account,
        chosen,
        &view.withheld,
        &delivered,
        &view.redactions,
        state.settings.tsa_url.as_ref(),
    )
    .await?;
    let total = planned.layout.total;
    let conditional = conditional_for(&req, &planned.etag, total);
    // Every object there before the status line: a failed bundle is refused cleanly, and
    // recorded as failed.
    objects_present(&state, &planned, &actor, case_id, &client).await?;
    // HEAD sends the headers only: audited as an access of no bytes, with no transfer.
    let head = req.method() == actix_web::http::Method::HEAD;
    let recorded = state
        .audit
        .record(
            Event::new(actor.clone(), Action::BundleDownload, Outcome::Allowed)
                .case(case_id)
                .client(client.0.clone(), client.1.clone())
                .details(serde_json::json!({
                    "bundle": planned.bundle_id,
                    "materials": planned.materials,
                    "count": planned.materials.len(),
                    "size": total,
                    "range": conditional.range_header,
                    "bytes": if head { 0 } else { conditional.planned_bytes(total) },
                    "not_modified": conditional.not_modified,
                    "head": head,
                    "instance": state.instance,
                    "via": match &user { DownloadUser::Token { .. } => "token", _ => "session" },
                })),
        )
        .await?;

    let what = zip_representation(&planned, total);
    let report = super::content::transfer_reporter(
        state.audit.clone(),
        actor,
        case_id,
        None,
        client,
        (recorded.seq, state.instance),
    );
    // The layout streams any range of the zip; its objects were checked above, so opening
    // cannot fail (a store failure mid-way aborts the body, never pads it).
    let open = opener(&state, planned.layout, permit.originals);
    crate::delivery::respond(conditional, head, what, open, report, async |e| {
        AppError::from(e)
    })
    .await
}

/// The materials to bundle, or the refusal, audited: every refusal of a signed-in actor is,
/// here a selection naming a material that is not theirs to download (another case's,
/// withheld, made up) or nothing.
async fn chosen(
    state: &AppState,
    visible: Vec<crate::db::entities::material::Model>,
    selection: Option<Vec<Uuid>>,
    actor: &crate::audit::Actor,
    case_id: Uuid,
    client: &(Option<String>, Option<String>),
) -> AppResult<Vec<crate::db::entities::material::Model>> {
    match crate::bundle::choose(visible, selection.as_deref()) {
        Ok(chosen) => Ok(chosen),
        Err(e) => {
            let reason = if matches!(e, AppError::NotFound) {
                "material_not_available"
            } else {
                "nothing_to_bundle"
            };
            let details = serde_json::json!({ "reason": reason, "selection": selection });
            record(state, actor, case_id, client, Outcome::Denied, details).await?;
            Err(e)
        }
    }
}

/// What the request's validators and range ask of a zip of `total` bytes. Several ranges of a
/// zip are of no use to anyone: the whole is sent instead (RFC 9110 allows it).
fn conditional_for(req: &HttpRequest, etag: &str, total: u64) -> Conditional {
    let mut conditional = Conditional::evaluate(req.headers(), etag, total);
    if matches!(&conditional.ranges, Ranges::Parts(p) if p.len() > 1) {
        conditional.ranges = Ranges::Whole;
        conditional.range_header = None;
    }
    conditional
}

/// Every object of the bundle there before the status line: a failed bundle is refused
/// cleanly (503), and recorded as failed.
async fn objects_present(
    state: &AppState,
    planned: &crate::bundle::Planned,
    actor: &crate::audit::Actor,
    case_id: Uuid,
    client: &(Option<String>, Option<String>),
) -> AppResult<()> {
    let Err(e) = planned.layout.check_objects(&state.store).await else {
        return Ok(());
    };
    let reason = match &e {
        crate::store::StoreError::NotFound(_) | crate::store::StoreError::Truncated { .. } => {
            tracing::error!(case = %case_id, error = %e, "an object of a bundle is missing or damaged");
            "object_missing"
        }
        _ => "store_unavailable",
    };
    let details = serde_json::json!({
        "bundle": planned.bundle_id, "reason": reason, "bytes": 0,
    });
    record(state, actor, case_id, client, Outcome::Failed, details).await?;
    Err(AppError::Unavailable {
        part: "store",
        cause: Some(Box::new(e)),
    })
}

/// The zip as a download: its exact size, validator and both forms of its file name.
fn zip_representation(planned: &crate::bundle::Planned, total: u64) -> Representation {
    Representation {
        size: total,
        etag: planned.etag.clone(),
        content_type: "application/zip".into(),
        disposition: header::ContentDisposition {
            disposition: header::DispositionType::Attachment,
            parameters: vec![
                header::DispositionParam::Filename(planned.ascii_name.clone()),
                header::DispositionParam::FilenameExt(header::ExtendedValue {
                    charset: header::Charset::Ext("UTF-8".into()),
                    language_tag: None,
                    value: planned.download_name.clone().into_bytes(),
                }),
            ],
        },
        headers: Vec::new(),
        cache: "no-store",
    }
}

/// Opens any range of the zip. Its objects were checked before, so opening cannot fail (a
/// store failure mid-way aborts the body, never pads it).
fn opener(
    state: &AppState,
    layout: crate::bundle::Layout,
    originals: bool,
) -> impl Fn(
    std::ops::Range<u64>,
) -> futures_util::future::BoxFuture<
    'static,
    Result<crate::delivery::ByteStream, crate::store::StoreError>,
> + Send
+ 'static {
    let layout = std::sync::Arc::new(layout);
    let store = state.store.clone();
    move |range: std::ops::Range<u64>| {
        let body = layout.stream(store.clone(), range, originals);
        futures_util::future::ready(Ok(body)).boxed()
    }
}

/// Records a bundle download's refusal or failure (`outcome`) with its `details`.
async fn record(
    state: &AppState,
    actor: &crate::audit::Actor,
    case_id: Uuid,
    client: &(Option<String>, Option<String>),
    outcome: Outcome,
    details: serde_json::Value,
) -> AppResult<()> {
    state
        .audit
        .record(
            Event::new(actor.clone(), Action::BundleDownload, outcome)
                .case(case_id)
                .client(client.0.clone(), client.1.clone())
                .details(details),
        )
        .await?;
    Ok(())
}

/// Where the installation says so, pictures and PDFs go in as copies naming the person: those
/// copies, by material.
async fn copies_for(
    state: &AppState,
    account: &crate::db::entities::account::Model,
    case: &crate::db::entities::case::Model,
    chosen: &[crate::db::entities::material::Model],
    client: &(Option<String>, Option<String>),
) -> AppResult<std::collections::HashMap<Uuid, crate::bundle::Delivered>> {
    let mut delivered = std::collections::HashMap::new();
    for m in chosen {
        if crate::copies::applies(&state.settings, account, m) {
            let copy = crate::copies::for_person(state, account, case, m, client.clone(), "bundle")
                .await?;
            delivered.insert(
                m.id,
                crate::bundle::Delivered {
                    key: copy.key,
                    content_type: copy.content_type,
                    sha256: copy.sha256,
                    sm3: copy.sm3,
                    crc32: copy.crc32,
                    size: copy.size,
                },
            );
        }
    }
    Ok(delivered)
}

/// `GET /.well-known/evidence-portal/manifest-key.pem`: the public key that checks bundle
/// manifests (`openssl pkeyutl -verify -pubin -inkey …`).
pub async fn manifest_key_pem(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(state.manifest_key.public_pem())
}

/// `GET /.well-known/evidence-portal/manifest-key-sm2.pem`: the SM2 public key that checks a
/// bundle's `manifest.sm2.sig` (signer ID `1234567812345678`; JOSE has no registered SM2 key
/// type, so it is not in the JWK set). 404 where the installation has none.
pub async fn manifest_key_sm2_pem(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let signer = state.manifest_key.sm2().ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(signer.public_pem()))
}

/// `GET /.well-known/jwks.json`: the same key as a JWK set.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(state.manifest_key.jwks().to_string())
}
