//! `/verify`: the public page where anyone — a court, an insurer, the other party's lawyer —
//! checks a bundle without an account: the zip itself file by file, or its signed manifest.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::{Layout, render};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

mod verdict;
use verdict::{file_states, json_answer, verdict_of};

#[derive(Template)]
#[template(path = "public/verify.html")]
struct VerifyPage {
    layout: Layout,
    csrf_token: String,
    kid: String,
    /// Whether an SM2 public key is published (`/.well-known/evidence-portal/manifest-key-sm2.pem`).
    sm2: bool,
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
    /// With the zip itself: each file against `SHA256SUMS` (and `SM3SUMS` where the bundle
    /// has one).
    files: Option<Vec<FileState>>,
    /// The digests the files were checked against: "SHA-256", and "SM3" (issue 36).
    digests: Vec<&'static str>,
    /// What was checked beside the Ed25519 signature (SM2, the timestamp), each finding with
    /// whether it is good news; the first says which algorithms were checked.
    signatures: Vec<(bool, String)>,
}

/// One file of a checked zip, as shown.
struct FileState {
    path: String,
    ok: bool,
    state: String,
    /// For an altered file, the digests it no longer matches.
    mismatched: Vec<&'static str>,
}

impl Verdict {
    /// What matters first, in plain words: everything checks out, or the first thing wrong.
    fn headline(&self) -> (bool, String) {
        let locale = crate::i18n::Locale::current();
        let broken = self
            .files
            .as_ref()
            .map_or(0, |f| f.iter().filter(|f| !f.ok).count());
        if !self.valid && !self.signatures.is_empty() {
            // Ed25519 held, what is beside it (SM2, the timestamp) did not: say which.
            (false, self.reason.clone())
        } else if !self.valid {
            (false, locale.t("verify.headline.not_issued").into_owned())
        } else if self.json_matches == Some(false) {
            (false, locale.t("verify.headline.json_changed").into_owned())
        } else if broken == 1 {
            (false, locale.t("verify.headline.file_changed").into_owned())
        } else if broken > 1 {
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
    /// Empty in a manifest made before issue 36.
    sm3: String,
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
                        sm3: text(&f["sm3"]),
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
        sm2: state.manifest_key.sm2().is_some(),
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
    let error = AppError::bad_request(code, message.clone());
    answer_on_page(req, state, StatusCode::BAD_REQUEST, error, message)
}

/// The verify page again (413): a zip larger than this page takes, and what to do instead.
fn too_large(req: &HttpRequest, state: &AppState, limit: u64) -> AppResult<HttpResponse> {
    let size = super::staff::human_size(i64::try_from(limit).unwrap_or(i64::MAX));
    let message = crate::i18n::pick(&format!(
        "证据包过大：此页最多核验 {size} 的 zip。请在此页只核验其中的 manifest.jws，并在自己的电脑上用 sha256sum -c SHA256SUMS 核对文件。 (the bundle is too large: this page checks zips of at most {size}. Check only its manifest.jws here, and the files on your own computer with sha256sum -c SHA256SUMS)"
    ));
    let error = AppError::PayloadTooLarge { limit };
    answer_on_page(req, state, StatusCode::PAYLOAD_TOO_LARGE, error, message)
}

/// The verify page again with `status` and `message`; API clients get `error` (its stable code).
fn answer_on_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    error: AppError,
    message: String,
) -> AppResult<HttpResponse> {
    if crate::telemetry::RequestContext::current().is_some_and(|c| c.wants_json) {
        return Err(error);
    }
    let (csrf_token, cookie) = verify_form(req, state);
    let mut res = super::render_status(
        status,
        &VerifyPage {
            layout: Layout::new(),
            csrf_token,
            kid: state.manifest_key.kid().to_owned(),
            sm2: state.manifest_key.sm2().is_some(),
            result: None,
            error: Some(message),
        },
    )?;
    if let Some(c) = cookie {
        res.add_cookie(&c).map_err(AppError::internal)?;
    }
    Ok(res)
}

/// The most bytes of zip this page takes: a public page, anyone may send it, and each check
/// spools a copy into the data directory (which may hold the database) and hashes all of it.
/// Also never more than `PORTAL_MAX_UPLOAD_BYTES`, what a signed-in officer may upload. A bundle
/// larger than this is checked by its `manifest.jws` here and `sha256sum -c SHA256SUMS` at home.
const BUNDLE_LIMIT: u64 = 1024 * 1024 * 1024;

/// The `bundle` field as received.
enum Spooled {
    /// No file was chosen.
    Empty,
    /// The zip, rewound, and its size.
    Zip(std::fs::File, u64),
    /// More than the limit: refused while streaming.
    TooLarge,
    /// More entries than `check::MAX_ENTRIES`: refused before the zip is opened.
    TooManyEntries,
}

/// Spools the `bundle` field into an unnamed temporary file in the data directory, which the
/// system removes once it is dropped, whatever ends the request. Stops reading as soon as the
/// field passes `limit` bytes or holds more central-directory headers than the check takes.
async fn spool(
    state: &AppState,
    field: &mut actix_multipart::Field,
    limit: u64,
) -> AppResult<Spooled> {
    use crate::bundle::check::{EntryCount, MAX_ENTRIES};
    use futures_util::StreamExt;
    use std::io::Seek;
    use tokio::io::AsyncWriteExt;
    let io = |e: std::io::Error| {
        if crate::error::is_storage_full(&e) {
            AppError::InsufficientStorage(Box::new(e))
        } else {
            AppError::internal(e)
        }
    };
    let spool = tempfile::tempfile_in(&state.settings.data_dir).map_err(io)?;
    let mut file = tokio::fs::File::from_std(spool);
    let mut size = 0u64;
    let mut entries = EntryCount::default();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| AppError::bad_request("invalid_form", e.to_string()))?;
        size += chunk.len() as u64;
        if size > limit {
            return Ok(Spooled::TooLarge);
        }
        entries.feed(&chunk);
        if entries.count() > MAX_ENTRIES {
            return Ok(Spooled::TooManyEntries);
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    if size == 0 {
        return Ok(Spooled::Empty);
    }
    file.flush().await.map_err(io)?;
    let mut file = file.into_std().await;
    file.rewind().map_err(io)?;
    Ok(Spooled::Zip(file, size))
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
    payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    let mut asked = match read_form(&req, &state, payload).await? {
        Ok(asked) => asked,
        Err(answered) => return Ok(answered),
    };
    let mut opened = Opened::default();
    if let Some(bundle) = asked.bundle.take() {
        opened = match open_bundle(bundle).await? {
            (Ok(c), beside) => {
                if asked.jws.trim().is_empty() {
                    asked.jws = c.jws.unwrap_or_default();
                }
                asked.manifest = asked.manifest.or(c.manifest_json);
                Opened {
                    digests: c.digests,
                    files: c.files.map(file_states),
                    beside,
                }
            }
            (Err(e), _) => {
                return unreadable(&req, &state, e.code(), crate::i18n::pick(&e.to_string()));
            }
        };
    }
    if asked.jws.trim().is_empty() {
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
    let checked = state.manifest_key.verify(&asked.jws);
    let beside = checked.as_ref().ok().map(|signed| {
        crate::bundle::signatures::check_beside(&state.manifest_key, signed, &opened.beside)
    });
    let verdict = verdict_of(&checked, beside.as_ref(), asked.manifest.as_ref(), opened);
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(json_answer(verdict, beside.as_ref(), checked.ok()).to_string()));
    }
    verify_page(&req, &state, Some(verdict))
}

/// What the form sent: the JWS (a file or pasted), an uploaded `manifest.json`, and a bundle
/// spooled to a file with its size and its check slot.
#[derive(Default)]
struct Asked {
    jws: String,
    manifest: Option<Vec<u8>>,
    bundle: Option<(std::fs::File, u64, tokio::sync::OwnedSemaphorePermit)>,
}

/// What was found in the bundle beside its signature: which digests were checked, each file's
/// state, and the SM2 signature and timestamp files.
#[derive(Default)]
struct Opened {
    digests: Vec<&'static str>,
    files: Option<Vec<FileState>>,
    beside: crate::bundle::signatures::Beside,
}

/// Reads the form: at most a few parts, one bundle (spooled, in one of the few check slots),
/// small fields of at most 4 MiB. `Err`: the page already answered (too large, too many
/// entries).
async fn read_form(
    req: &HttpRequest,
    state: &AppState,
    mut payload: actix_multipart::Multipart,
) -> AppResult<Result<Asked, HttpResponse>> {
    use futures_util::StreamExt;
    const LIMIT: usize = 4 * 1024 * 1024;
    // The page's form has five fields; a few more are tolerated, not thousands.
    const MAX_PARTS: usize = 8;
    let mut asked = Asked::default();
    let bundle_limit = state.settings.max_upload_bytes.min(BUNDLE_LIMIT);
    let mut parts = 0usize;
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| AppError::bad_request("invalid_form", e.to_string()))?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(AppError::FormTooLarge {
                message: format!(
                    "表单字段过多：本表单最多 {MAX_PARTS} 项，请从页面重新提交 (the form has too many fields: at most {MAX_PARTS}; send it again from its page)"
                ),
            });
        }
        let name = field.name().unwrap_or("").to_owned();
        if name == "bundle" && asked.bundle.is_some() {
            // One check slot per request: a second zip would take another.
            return Err(AppError::bad_request(
                "one_bundle_at_a_time",
                "每次只能核验一个证据包 (one bundle at a time)",
            ));
        }
        if name == "bundle" {
            // A public page that takes a gigabyte: a few checks at a time, the rest told to
            // come back (AppState::bundle_checks).
            let permit = state
                .bundle_checks
                .clone()
                .try_acquire_owned()
                .map_err(|_| AppError::Unavailable {
                    part: "bundle verification",
                    cause: None,
                })?;
            match spool(state, &mut field, bundle_limit).await? {
                Spooled::Zip(file, size) => asked.bundle = Some((file, size, permit)),
                Spooled::Empty => {}
                Spooled::TooLarge => return too_large(req, state, bundle_limit).map(Err),
                Spooled::TooManyEntries => {
                    let e = crate::bundle::check::CheckError::TooManyEntries;
                    let why = crate::i18n::pick(&e.to_string());
                    return unreadable(req, state, e.code(), why).map(Err);
                }
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
            "jws" | "jws_text" if asked.jws.trim().is_empty() => {
                asked.jws = String::from_utf8_lossy(&value).into_owned();
            }
            "manifest" if !value.is_empty() => asked.manifest = Some(value),
            _ => {}
        }
    }
    Ok(Ok(asked))
}

/// Checks the spooled zip off the runtime's threads (holding its check slot): every file
/// against the sums, and the SM2 signature and timestamp beside `manifest.jws`.
async fn open_bundle(
    (file, size, permit): (std::fs::File, u64, tokio::sync::OwnedSemaphorePermit),
) -> AppResult<(
    Result<crate::bundle::check::BundleCheck, crate::bundle::check::CheckError>,
    crate::bundle::signatures::Beside,
)> {
    let unpacked = size.saturating_mul(2) + 64 * 1024 * 1024;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut again = file.try_clone();
        let read = crate::bundle::check::check_zip(std::io::BufReader::new(file), unpacked);
        // The SM2 signature and the timestamp beside manifest.jws (same file, rewound).
        let found = match again.as_mut().map(std::io::Seek::rewind) {
            Ok(Ok(())) => again
                .map(|f| crate::bundle::signatures::read_beside(std::io::BufReader::new(f)))
                .unwrap_or_default(),
            _ => Default::default(),
        };
        (read, found)
    })
    .await
    .map_err(AppError::internal)
}
