//! How an [`AppError`] becomes an answer: a page in the person's language with the stable code
//! and the request id, a JSON body for API clients, or the way to the sign-in page.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use serde::Serialize;

use crate::error::{AppError, chain};
use crate::telemetry::RequestContext;

#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    layout: super::Layout,
    status: u16,
    title: &'a str,
    message: &'a str,
    code: &'a str,
    request_id: &'a str,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
    request_id: &'a str,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::NotSignedIn
            | AppError::SessionExpired
            | AppError::SecondFactorRequired { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden | AppError::Refused { .. } | AppError::CsrfRejected => {
                StatusCode::FORBIDDEN
            }
            AppError::BadToken => StatusCode::UNAUTHORIZED,
            AppError::TooManyAttempts | AppError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            AppError::PayloadTooLarge { .. } | AppError::FormTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let ctx = RequestContext::current();
        let request_id = ctx.as_ref().map_or("-", |c| c.id.as_str());
        let wants_json = ctx.as_ref().is_some_and(|c| c.wants_json);
        let status = self.status_code();

        log(self, request_id);
        if !wants_json && let Some(redirect) = to_sign_in(self, ctx.as_ref()) {
            return redirect;
        }

        let mut builder = HttpResponse::build(status);
        builder.insert_header((header::CACHE_CONTROL, "no-store"));
        if let AppError::Unavailable { .. } = self {
            builder.insert_header((header::RETRY_AFTER, "5"));
        }
        if let AppError::RateLimited { until, .. } = self {
            let wait = (*until - time::OffsetDateTime::now_utc())
                .whole_seconds()
                .max(1);
            builder.insert_header((header::RETRY_AFTER, wait.to_string()));
        }
        if wants_json {
            return builder.json(ErrorBody {
                error: ErrorDetail {
                    code: self.code(),
                    message: self.to_string(),
                    request_id,
                },
            });
        }
        // Signed in, the person keeps their header: a refusal is not a sign-out.
        let layout = crate::auth::signed_in()
            .map_or_else(super::Layout::new, |u| super::Layout::for_user(&u));
        let (title, message) = self.explanation(layout.locale);
        let page = ErrorPage {
            layout,
            status: status.as_u16(),
            title: &title,
            message: &message,
            code: self.code(),
            request_id,
        };
        match page.render() {
            Ok(html) => builder.content_type(ContentType::html()).body(html),
            Err(e) => {
                tracing::error!(request_id, error = %e, "error page failed to render");
                builder.content_type(ContentType::plaintext()).body(format!(
                    "{} {}",
                    status.as_u16(),
                    self.code()
                ))
            }
        }
    }
}

/// Logs what the operator must know: an internal cause, a full store, the first refusal of a
/// dependency in an outage.
fn log(error: &AppError, request_id: &str) {
    match error {
        AppError::Internal(cause) => {
            tracing::error!(request_id, error = %chain(cause.as_ref()), "internal error");
        }
        AppError::InsufficientStorage(cause) => {
            tracing::error!(request_id, error = %chain(cause.as_ref()), "STORAGE FULL: an upload was refused");
        }
        // Once per outage, not once per request: the first refusal of a dependency is
        // logged, the next ones 30 s later at the earliest.
        AppError::Unavailable { part, cause } if outage_log::first(part) => {
            let cause = cause.as_deref().map(|c| chain(c)).unwrap_or_default();
            tracing::warn!(request_id, part, error = %cause, "dependency unavailable");
        }
        _ => {}
    }
}

/// For a page (not JSON): where a person not signed in, or not past the second factor, is sent
/// instead of an error page.
fn to_sign_in(error: &AppError, ctx: Option<&RequestContext>) -> Option<HttpResponse> {
    if matches!(error, AppError::NotSignedIn | AppError::SessionExpired) {
        let next = ctx.map_or("/", |c| c.path.as_str());
        let location = format!("/login?next={}", urlencode(next));
        let mut res = HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .finish();
        if matches!(error, AppError::SessionExpired) {
            super::flash::Flash::new("session_expired").attach(&mut res);
        }
        return Some(res);
    }

    if let AppError::SecondFactorRequired { next, step_up } = error {
        // Back to this page once passed — unless it was a form's post (its page instead).
        let here = ctx
            .filter(|c| c.method == "GET")
            .map_or("/", |c| c.path.as_str());
        let next = next.as_deref().unwrap_or(here);
        let location = format!("/login/second-factor?next={}", urlencode(next));
        let mut res = HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish();
        if *step_up {
            super::flash::Flash::new("step_up").attach(&mut res);
        }
        return Some(res);
    }
    None
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Rate-limits the "dependency unavailable" log line to one per dependency per 30 s.
mod outage_log {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    static LAST: Mutex<Vec<(&'static str, Instant, u64)>> = Mutex::new(Vec::new());

    /// Whether this refusal of `part` is the one to log (the count of those not logged is).
    pub fn first(part: &'static str) -> bool {
        let Ok(mut last) = LAST.lock() else {
            return true;
        };
        let now = Instant::now();
        match last.iter_mut().find(|(p, _, _)| *p == part) {
            Some((_, at, skipped)) if now.duration_since(*at) < Duration::from_secs(30) => {
                *skipped += 1;
                false
            }
            Some(entry) => {
                if entry.2 > 0 {
                    tracing::warn!(
                        part,
                        refused = entry.2,
                        "dependency refusals not logged singly"
                    );
                }
                *entry = (part, now, 0);
                true
            }
            None => {
                last.push((part, now, 0));
                true
            }
        }
    }
}

/// Middleware: a panic in a handler becomes a logged 500 page instead of a dropped connection
/// (actix-web would otherwise lose the request and the person would see the connection reset).
/// Wrap it around a routed resource, never the whole app: it holds a clone of the request, and
/// routing needs the only one.
pub async fn catch_panics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<
    ServiceResponse<actix_web::body::EitherBody<impl MessageBody, actix_web::body::BoxBody>>,
    actix_web::Error,
> {
    use futures_util::FutureExt;
    let request = req.request().clone();
    match std::panic::AssertUnwindSafe(next.call(req))
        .catch_unwind()
        .await
    {
        Ok(res) => res.map(ServiceResponse::map_into_left_body),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let error = AppError::internal(format!("handler panicked: {what}"));
            let res = actix_web::ResponseError::error_response(&error);
            Ok(ServiceResponse::new(request, res).map_into_right_body())
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{App, http::StatusCode, middleware::from_fn, test, web};

    #[actix_web::test]
    async fn a_panicking_handler_answers_500() {
        let app = test::init_service(
            App::new().service(
                web::resource("/boom")
                    .route(web::get().to(|| async {
                        let items: Vec<u8> = Vec::new();
                        let index = items.len() + 1;
                        #[allow(clippy::indexing_slicing)]
                        let item = items[index];
                        item.to_string()
                    }))
                    .wrap(from_fn(super::catch_panics)),
            ),
        )
        .await;
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/boom").to_request()).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/boom").to_request()).await;
        assert_eq!(
            res.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "and the next request too"
        );
    }
}
