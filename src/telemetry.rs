//! Logging set-up and the per-request context (request id, response format) that error pages
//! and log lines share. The request's language is `i18n`'s, not part of this context.

use std::future::Future;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

/// The log filter when `RUST_LOG` is unset, empty or malformed: info for the portal, warnings for
/// the noisy libraries (sqlx logs every statement at info).
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn";

/// Installs the global subscriber: `RUST_LOG` if set, otherwise [`DEFAULT_FILTER`]. A malformed
/// `RUST_LOG` falls back to the default, with a warning naming why, rather than stopping the
/// program or silently logging less than asked.
pub fn init() {
    let (filter, malformed) = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => match EnvFilter::try_new(&value) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new(DEFAULT_FILTER), Some(e.to_string())),
        },
        _ => (EnvFilter::new(DEFAULT_FILTER), None),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
    if let Some(error) = malformed {
        tracing::warn!(%error, default = DEFAULT_FILTER, "RUST_LOG is malformed: logging with the default filter");
    }
}

/// What every part of a request's handling may need to know about the request itself.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// Shown on error pages and logged with every line of the request.
    pub id: String,
    /// Errors answer JSON instead of a page (API clients, `curl` with `Accept: application/json`).
    pub wants_json: bool,
    /// Path and query, for returning here after sign-in.
    pub path: String,
    /// `GET`, `POST`, … (a form's post cannot be returned to).
    pub method: String,
    /// The person chose the care mode (长辈版: large text and targets), cookie [`CARE_COOKIE`].
    pub care: bool,
}

/// The cookie the care-mode switch (`/care`) sets: `on` or `off`.
pub const CARE_COOKIE: &str = "portal-care";

tokio::task_local! {
    static CURRENT: RequestContext;
}

impl RequestContext {
    /// The context of the request being handled, if any.
    pub fn current() -> Option<RequestContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    fn of(req: &ServiceRequest) -> Self {
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let wants_json = req.path().starts_with("/api/")
            || (accept.contains("application/json") && !accept.contains("text/html"));
        RequestContext {
            id: uuid::Uuid::now_v7().simple().to_string(),
            wants_json,
            path: req
                .uri()
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            method: req.method().as_str().to_owned(),
            care: req.cookie(CARE_COOKIE).is_some_and(|c| c.value() == "on"),
        }
    }

    /// Runs `fut` with this context current.
    pub fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, fut)
    }
}

/// Middleware: gives each request an id (response header `X-Request-Id`), a tracing span and one
/// log line when it completes.
pub async fn trace_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let ctx = RequestContext::of(&req);
    let id = ctx.id.clone();
    req.extensions_mut().insert(ctx.clone());
    let span = tracing::info_span!("request", id = %id, method = %req.method(), path = %req.path());
    let started = std::time::Instant::now();
    let mut res = ctx.scope(next.call(req)).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    span.in_scope(|| {
        tracing::info!(status, ms = started.elapsed().as_millis() as u64, "done");
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), v);
    }
    Ok(res)
}
