//! The one error type that handlers and the domain return. How it becomes a page or a JSON
//! body is the web layer's (`routes::errors`).
//!
//! Every failure a handler can meet is one `AppError` variant with a stable code (the `code`
//! field of JSON bodies, the "错误代码" line of pages). Internal causes (database, store, I/O) are
//! logged with the request id and shown only as a generic 500 naming that id.

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed or invalid input: the code says which rule was broken.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// No valid session: pages redirect to sign-in, JSON answers 401.
    #[error("sign-in required")]
    NotSignedIn,
    /// A session cookie that no longer opens a session (expired, signed out elsewhere, or
    /// ended by a password change): like `NotSignedIn`, and the sign-in page says why.
    #[error("the session has expired; sign in again")]
    SessionExpired,
    /// A staff member's or administrator's session has not passed its second factor (`next`:
    /// where to go once it has; none: back to this page), or — `step_up` — passed it more than
    /// five minutes ago and the act is among the most sensitive.
    #[error("a second factor is required")]
    SecondFactorRequired { next: Option<String>, step_up: bool },
    /// Signed in, but policy said no, and the resource's existence is not secret.
    #[error("forbidden")]
    Forbidden,
    /// A refusal that explains itself: why (catalog `refusal.<reason>`), what happens next, and
    /// whom to ask (`contact`: the handling brigade, as it should be named to the person).
    #[error("refused: {reason}")]
    Refused {
        reason: &'static str,
        contact: Option<String>,
    },
    /// A state-changing request without the right CSRF token.
    #[error("the form has expired or did not come from this site")]
    CsrfRejected,
    /// An `Authorization: Bearer` token that is unknown, revoked, or used where it is not accepted.
    #[error("the API token is not valid here")]
    BadToken,
    /// Too many failed attempts from this address.
    #[error("too many attempts; try again later")]
    TooManyAttempts,
    /// A submission past a rate limit: which one (`limit`, catalog
    /// `error.rate_limited.<limit>`: `address` per hour, `case` per day), how many it allows,
    /// and until when it holds. Code `too_many_attempts` like the above; 429 with `Retry-After`.
    #[error(
        "too many submissions (the {limit} limit of {allowed}); try again after {}",
        rfc3339(until)
    )]
    RateLimited {
        limit: &'static str,
        allowed: i32,
        until: time::OffsetDateTime,
    },
    /// Missing, or hidden because its existence is itself private.
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("upload exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    /// A form with more parts or more text than its page sends (413): `message` says which
    /// cap, "中文 (English)".
    #[error("{message}")]
    FormTooLarge { message: String },
    /// The store or the database has no space left: an upload cannot be kept (507). The
    /// officer is told to call the administrator; `http_requests_total{status="507"}` alarms.
    #[error("storage is full")]
    InsufficientStorage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A dependency (database, object store, audit log) cannot serve now; try again later.
    #[error("{part} unavailable")]
    Unavailable {
        part: &'static str,
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A bug or an unexpected failure: logged in full, shown as a generic 500.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AppError::Internal(cause.into())
    }

    /// The stable, documented code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. } => code,
            AppError::NotSignedIn => "not_signed_in",
            AppError::SecondFactorRequired { .. } => "second_factor_required",
            AppError::SessionExpired => "session_expired",
            AppError::Forbidden | AppError::Refused { .. } => "forbidden",
            AppError::CsrfRejected => "csrf_rejected",
            AppError::BadToken => "bad_token",
            AppError::TooManyAttempts | AppError::RateLimited { .. } => "too_many_attempts",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::InsufficientStorage(_) => "storage_full",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::FormTooLarge { .. } => "form_too_large",
            AppError::Unavailable { .. } => "unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }

    /// What the person is told, in the page's language (from the message catalog); never a
    /// cause or a path. Validation messages written by the code are Chinese; in English they
    /// are shown after a catalogued explanation.
    pub fn explanation(&self, locale: crate::i18n::Locale) -> (String, String) {
        let code = self.code();
        if let AppError::Refused { reason, contact } = self {
            let mut message = locale.t(&format!("refusal.{reason}.message")).into_owned();
            if let Some(contact) = contact {
                message.push(' ');
                message.push_str(&locale.tf("refusal.ask", &[("brigade", contact)]));
            }
            return (
                locale.t(&format!("refusal.{reason}.title")).into_owned(),
                message,
            );
        }
        let title_key = match self {
            AppError::BadRequest { .. } => "error.bad_request.title".to_owned(),
            AppError::RateLimited { .. } => "error.rate_limited.title".to_owned(),
            _ => format!("error.{code}.title"),
        };
        let title = locale.t(&title_key).into_owned();
        let message = match self {
            // The domain writes its refusals "中文 (English)": the page's half is shown.
            AppError::BadRequest { message, .. } | AppError::FormTooLarge { message } => locale.tf(
                "error.bad_request.detail",
                &[
                    ("message", &crate::i18n::pick_in(locale, message)),
                    ("code", code),
                ],
            ),
            AppError::RateLimited {
                limit,
                allowed,
                until,
            } => locale.tf(
                &format!("error.rate_limited.{limit}"),
                &[
                    ("allowed", &allowed.to_string()),
                    ("until", &locale.time(*until)),
                ],
            ),
            AppError::PayloadTooLarge { limit } => locale.tf(
                "error.payload_too_large.message",
                &[("mib", &(limit / (1024 * 1024)).to_string())],
            ),
            _ => locale.t(&format!("error.{code}.message")).into_owned(),
        };
        (title, message)
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(e: sea_orm::DbErr) -> Self {
        crate::db::error_seen();
        if crate::db::is_outage(&e) {
            AppError::Unavailable {
                part: "database",
                cause: Some(Box::new(e)),
            }
        } else {
            AppError::internal(e)
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::internal(e)
    }
}

/// Whether an error (anywhere in its chain) says the disk or the database is full.
pub fn is_storage_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::StorageFull
        {
            return true;
        }
        let text = err.to_string();
        if text.contains("No space left on device")
            || text.contains("database or disk is full")
            || text.contains("could not extend file")
        {
            return true;
        }
        next = err.source();
    }
    false
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        if is_storage_full(&e) {
            return AppError::InsufficientStorage(Box::new(e));
        }
        match e {
            crate::store::StoreError::NotFound(_) => AppError::NotFound,
            crate::store::StoreError::ViewOnly => AppError::Refused {
                reason: "view_only",
                contact: None,
            },
            crate::store::StoreError::TooLarge { limit } => AppError::PayloadTooLarge { limit },
            // The client's body failed (cut, too slow), not the store: the sender's to retry.
            crate::store::StoreError::Body(cause) => {
                tracing::info!(error = %cause, "upload body failed");
                AppError::bad_request(
                    "upload_incomplete",
                    "上传未完成：连接中断或速度过慢，请重新上传 (the upload was cut off or too slow; upload the file again)",
                )
            }
            other => AppError::Unavailable {
                part: "store",
                cause: Some(Box::new(other)),
            },
        }
    }
}

/// A time as API clients read it (`2026-11-29T02:34:00Z`).
fn rfc3339(t: &time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The whole cause chain of an error on one line, for logs.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
