//! Bundles (a case's evidence as one zip), the public key of the digital stamp, and the public
//! page where anyone checks a bundle's signed manifest without an account.

use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use uuid::Uuid;

use super::{Layout, render};
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
    let chosen = match crate::bundle::choose(view.visible, selection.as_deref()) {
        Ok(chosen) => chosen,
        Err(e) => {
            // Every refusal of a signed-in actor is audited: here a selection naming a material
            // that is not theirs to download (another case's, withheld, made up) or nothing.
            let reason = if matches!(e, AppError::NotFound) {
                "material_not_available"
            } else {
                "nothing_to_bundle"
            };
            state
                .audit
                .record(
                    Event::new(actor.clone(), Action::BundleDownload, Outcome::Denied)
                        .case(case_id)
                        .client(client.0.clone(), client.1.clone())
                        .details(serde_json::json!({ "reason": reason, "selection": selection })),
                )
                .await?;
            return Err(e);
        }
    };
    let planned = crate::bundle::plan(
        &state.db,
        &state.manifest_key,
        &permit,
        &facts,
        &account,
        chosen,
        &view.withheld,
    )
    .await?;
    let total = planned.layout.total;
    let mut conditional = Conditional::evaluate(req.headers(), &planned.etag, total);
    if matches!(&conditional.ranges, Ranges::Parts(p) if p.len() > 1) {
        // Several ranges of a zip are of no use to anyone: the whole (RFC 9110 allows it).
        conditional.ranges = Ranges::Whole;
        conditional.range_header = None;
    }
    // Every object there before the status line: a failed bundle is refused cleanly, and
    // recorded as failed.
    if let Err(e) = planned.layout.check_objects(&state.store).await {
        let reason = match &e {
            crate::store::StoreError::NotFound(_) | crate::store::StoreError::Truncated { .. } => {
                tracing::error!(case = %case_id, error = %e, "an object of a bundle is missing or damaged");
                "object_missing"
            }
            _ => "store_unavailable",
        };
        state
            .audit
            .record(
                Event::new(actor.clone(), Action::BundleDownload, Outcome::Failed)
                    .case(case_id)
                    .client(client.0.clone(), client.1.clone())
                    .details(serde_json::json!({
                        "bundle": planned.bundle_id, "reason": reason, "bytes": 0,
                    })),
            )
            .await?;
        return Err(AppError::Unavailable {
            part: "store",
            cause: Some(Box::new(e)),
        });
    }
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

    let what = Representation {
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
    };
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
    let layout = std::sync::Arc::new(planned.layout);
    let store = state.store.clone();
    let open = move |range: std::ops::Range<u64>| {
        let body = layout.stream(store.clone(), range);
        futures_util::future::ready(Ok(body)).boxed()
    };
    crate::delivery::respond(conditional, head, what, open, report, async |e| {
        AppError::from(e)
    })
    .await
}

/// `GET /.well-known/evidence-portal/manifest-key.pem`: the public key that checks bundle
/// manifests (`openssl pkeyutl -verify -pubin -inkey …`).
pub async fn manifest_key_pem(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(state.manifest_key.public_pem())
}

/// `GET /.well-known/jwks.json`: the same key as a JWK set.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(state.manifest_key.jwks().to_string())
}

#[derive(Template)]
#[template(path = "public/verify.html")]
struct VerifyPage {
    layout: Layout,
    csrf_token: String,
    kid: String,
    result: Option<Verdict>,
    /// An empty or unreadable submission, answered on this page.
    error: Option<String>,
}

/// What the verification found, as shown.
struct Verdict {
    valid: bool,
    reason: String,
    /// Whether an uploaded `manifest.json` is byte for byte the signed one.
    json_matches: Option<bool>,
    manifest: Option<ManifestView>,
    /// With the zip itself: each file against `SHA256SUMS`.
    files: Option<Vec<FileState>>,
}

/// One file of a checked zip, as shown.
struct FileState {
    path: String,
    ok: bool,
    state: String,
}

impl Verdict {
    /// What matters first, in plain words: everything checks out, or the first thing wrong.
    fn headline(&self) -> (bool, String) {
        let locale = crate::i18n::Locale::current();
        let broken = self
            .files
            .as_ref()
            .map_or(0, |f| f.iter().filter(|f| !f.ok).count());
        if !self.valid {
            (false, locale.t("verify.headline.not_issued").into_owned())
        } else if self.json_matches == Some(false) {
            (false, locale.t("verify.headline.json_changed").into_owned())
        } else if broken > 0 {
            (
                false,
                locale.tf(
                    "verify.headline.files_changed",
                    &[("n", &broken.to_string())],
                ),
            )
        } else if self.files.is_some() {
            (true, locale.t("verify.headline.bundle_intact").into_owned())
        } else {
            (
                true,
                locale.t("verify.headline.signature_only").into_owned(),
            )
        }
    }
}

struct ManifestView {
    case_number: String,
    brigade: String,
    generated_at: String,
    generated_for: String,
    bundle_id: String,
    files: Vec<FileView>,
    withheld: Vec<(String, u64)>,
}

struct FileView {
    path: String,
    title: String,
    kind: String,
    size: String,
    sha256: String,
    uploaded_at: String,
    released_at: String,
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn manifest_view(payload: &[u8]) -> Option<ManifestView> {
    let m: serde_json::Value = serde_json::from_slice(payload).ok()?;
    Some(ManifestView {
        case_number: text(&m["case_number"]),
        brigade: text(&m["brigade"]),
        generated_at: text(&m["generated_at"]),
        generated_for: text(&m["generated_for"]["label"]),
        bundle_id: text(&m["bundle_id"]),
        files: m["files"]
            .as_array()
            .map(|files| {
                files
                    .iter()
                    .map(|f| FileView {
                        path: text(&f["path"]),
                        title: text(&f["title"]),
                        kind: text(&f["kind_label"]),
                        size: super::staff::human_size(f["size"].as_i64().unwrap_or(0)),
                        sha256: text(&f["sha256"]),
                        uploaded_at: text(&f["uploaded_at"]),
                        released_at: text(&f["released_at"]),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        withheld: m["withheld"]
            .as_array()
            .map(|w| {
                w.iter()
                    .map(|g| (text(&g["ground"]), g["count"].as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn verify_form(
    req: &HttpRequest,
    state: &AppState,
) -> (String, Option<actix_web::cookie::Cookie<'static>>) {
    match crate::auth::csrf::expected_token(req, state) {
        Some(token) => (crate::auth::csrf::masked(&token), None),
        None => {
            let (value, cookie) =
                crate::auth::csrf::new_anonymous_cookie(state.settings.served_over_tls());
            (
                crate::auth::csrf::masked(&crate::auth::csrf::token_for_anonymous(
                    &state.key, &value,
                )),
                Some(cookie),
            )
        }
    }
}

fn verify_page(
    req: &HttpRequest,
    state: &AppState,
    result: Option<Verdict>,
) -> AppResult<HttpResponse> {
    let (csrf_token, cookie) = verify_form(req, state);
    let mut res = render(&VerifyPage {
        layout: Layout::new(),
        csrf_token,
        kid: state.manifest_key.kid().to_owned(),
        result,
        error: None,
    })?;
    if let Some(c) = cookie {
        res.add_cookie(&c).map_err(AppError::internal)?;
    }
    Ok(res)
}

/// The verify page again (400) with `message`: an empty or unreadable submission.
fn unreadable(
    req: &HttpRequest,
    state: &AppState,
    code: &'static str,
    message: String,
) -> AppResult<HttpResponse> {
    // API clients get the stable code; people get the page back with the reason.
    if crate::telemetry::RequestContext::current().is_some_and(|c| c.wants_json) {
        return Err(AppError::bad_request(code, message));
    }
    let (csrf_token, cookie) = verify_form(req, state);
    let mut res = super::render_status(
        actix_web::http::StatusCode::BAD_REQUEST,
        &VerifyPage {
            layout: Layout::new(),
            csrf_token,
            kid: state.manifest_key.kid().to_owned(),
            result: None,
            error: Some(message),
        },
    )?;
    if let Some(c) = cookie {
        res.add_cookie(&c).map_err(AppError::internal)?;
    }
    Ok(res)
}

/// `GET /verify`: the public page that checks a bundle's `manifest.jws`.
pub async fn view_verify_get(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    verify_page(&req, &state, None)
}

/// `POST /verify` (multipart: `jws` file or `jws_text`, optional `manifest` file): checks the
/// signature with the portal's key and shows what it certifies. JSON on `Accept: application/json`.
pub async fn view_verify_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    use futures_util::StreamExt;
    use std::io::{Seek, Write};
    const LIMIT: usize = 4 * 1024 * 1024;
    let mut jws = String::new();
    let mut manifest: Option<Vec<u8>> = None;
    // The zip itself, spooled to an unnamed temporary file (gone when dropped).
    let mut bundle: Option<(std::fs::File, u64)> = None;
    let bundle_limit = state.settings.max_upload_bytes.saturating_mul(4);
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| AppError::bad_request("invalid_form", e.to_string()))?;
        let name = field.name().unwrap_or("").to_owned();
        if name == "bundle" {
            let mut file =
                tempfile::tempfile_in(&state.settings.data_dir).map_err(AppError::internal)?;
            let mut size = 0u64;
            while let Some(chunk) = field.next().await {
                let chunk =
                    chunk.map_err(|e| AppError::bad_request("invalid_form", e.to_string()))?;
                size += chunk.len() as u64;
                if size > bundle_limit {
                    return Err(AppError::PayloadTooLarge {
                        limit: bundle_limit,
                    });
                }
                file.write_all(&chunk).map_err(AppError::internal)?;
            }
            if size > 0 {
                file.rewind().map_err(AppError::internal)?;
                bundle = Some((file, size));
            }
            continue;
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| AppError::bad_request("invalid_form", e.to_string()))?;
            if value.len() + chunk.len() > LIMIT {
                return Err(AppError::bad_request(
                    "manifest_too_large",
                    "文件过大：manifest.jws 不会超过 4 MiB。 (too large: a manifest.jws is never over 4 MiB)",
                ));
            }
            value.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "jws" | "jws_text" if jws.trim().is_empty() => {
                jws = String::from_utf8_lossy(&value).into_owned();
            }
            "manifest" if !value.is_empty() => manifest = Some(value),
            _ => {}
        }
    }
    let mut files = None;
    if let Some((file, size)) = bundle {
        let unpacked = size.saturating_mul(2) + 64 * 1024 * 1024;
        let read = tokio::task::spawn_blocking(move || {
            crate::bundle::check::check_zip(std::io::BufReader::new(file), unpacked)
        })
        .await
        .map_err(AppError::internal)?;
        match read {
            Ok(c) => {
                if jws.trim().is_empty() {
                    jws = c.jws.unwrap_or_default();
                }
                manifest = manifest.or(c.manifest_json);
                files = c.files.map(|files| {
                    let locale = crate::i18n::Locale::current();
                    files
                        .into_iter()
                        .map(|f| {
                            use crate::bundle::check::FileState as S;
                            let key = match f.state {
                                S::Intact => "verify.file.intact",
                                S::Altered => "verify.file.altered",
                                S::Missing => "verify.file.missing",
                                S::Unlisted => "verify.file.unlisted",
                            };
                            FileState {
                                path: f.path,
                                ok: f.state == S::Intact,
                                state: locale.t(key).into_owned(),
                            }
                        })
                        .collect()
                });
            }
            Err(e) => {
                return unreadable(
                    &req,
                    &state,
                    "bundle_unreadable",
                    crate::i18n::pick(&e.to_string()),
                );
            }
        }
    }
    if jws.trim().is_empty() {
        // Answered on the same page: nothing was chosen, or the zip has no manifest.jws.
        return unreadable(
            &req,
            &state,
            "jws_missing",
            crate::i18n::pick(
                "请选择下载的证据包（zip），或其中的 manifest.jws 文件，或粘贴其内容。 (choose the downloaded bundle (zip), or its manifest.jws file, or paste its content)",
            ),
        );
    }
    let checked = state.manifest_key.verify(&jws);
    let verdict = match &checked {
        Ok(signed) => Verdict {
            valid: true,
            reason: String::new(),
            json_matches: manifest.as_ref().map(|m| m == signed),
            manifest: manifest_view(signed),
            files,
        },
        Err(e) => Verdict {
            valid: false,
            reason: {
                use crate::signing::VerifyError;
                let locale = crate::i18n::Locale::current();
                match e {
                    VerifyError::Malformed => locale.t("verify.error.malformed").into_owned(),
                    VerifyError::Algorithm => locale.t("verify.error.algorithm").into_owned(),
                    VerifyError::OtherKey(kid) => {
                        locale.tf("verify.error.other_key", &[("kid", kid)])
                    }
                    VerifyError::BadSignature => {
                        locale.t("verify.error.bad_signature").into_owned()
                    }
                }
            },
            json_matches: None,
            manifest: None,
            files,
        },
    };
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        let (intact, headline) = verdict.headline();
        let body = serde_json::json!({
            "intact": intact,
            "headline": headline,
            "files": verdict.files.as_ref().map(|f| f.iter().map(|f| serde_json::json!({"path": f.path, "ok": f.ok})).collect::<Vec<_>>()),
            "valid": verdict.valid,
            "reason": (!verdict.valid).then_some(verdict.reason),
            "manifest_json_matches": verdict.json_matches,
            "manifest": checked.ok().and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok()),
        });
        return Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(body.to_string()));
    }
    verify_page(&req, &state, Some(verdict))
}
