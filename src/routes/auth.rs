//! Sign in, sign out and first-time activation pages.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Layout, home_for, render, see_other};
use crate::audit::{Action, Event, Outcome};
use crate::auth::signin::{self, ActivateError, Client, SignInError};
use crate::auth::{client_of, csrf, session};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    layout: Layout,
    csrf_token: String,
    next: String,
    identifier: String,
    error: Option<String>,
    identifier_error: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/activate.html")]
struct ActivatePage {
    layout: Layout,
    csrf_token: String,
    identifier: String,
    /// The access code as typed (kept when the form is refused: it is long to type again).
    code: String,
    error: Option<String>,
    identifier_error: Option<String>,
    password_error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    identifier: String,
    password: String,
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct ActivateForm {
    identifier: String,
    code: String,
    password: String,
    password_repeat: String,
}

/// Only a local, normalised path (and query): never an absolute URL, `//host`, a backslash, a
/// control or non-ASCII character (browsers drop a TAB or newline and read `/\t/evil` as
/// `//evil`), nor anything a URL parser would rewrite (`/./`, `/../`, …).
pub(crate) fn safe_next(next: &str) -> Option<&str> {
    const BASE: &str = "http://portal.invalid/";
    let plain = next.len() <= 2048
        && next.starts_with('/')
        && !next.starts_with("//")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if !plain {
        return None;
    }
    let parsed = url::Url::parse(BASE).ok()?.join(next).ok()?;
    let same = parsed.host_str() == Some("portal.invalid")
        && parsed.fragment().is_none()
        && parsed[url::Position::BeforePath..url::Position::AfterQuery] == *next;
    same.then_some(next)
}

pub(crate) fn with_cookie(
    mut res: HttpResponse,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> AppResult<HttpResponse> {
    if let Some(c) = cookie {
        res.add_cookie(&c).map_err(AppError::internal)?;
    }
    Ok(res)
}

/// Every password-hashing slot stayed busy: 503 with `Retry-After`, nothing counted.
pub(crate) fn busy_error(busy: crate::auth::password::Busy) -> AppError {
    AppError::Unavailable {
        part: "password hashing",
        cause: Some(Box::new(busy)),
    }
}

fn client(req: &HttpRequest) -> Client {
    let (ip, user_agent) = client_of(req);
    Client { ip, user_agent }
}

/// `GET /login`
pub async fn view_login_get(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> AppResult<HttpResponse> {
    let (csrf_token, cookie) = anonymous_token(&req, &state);
    let page = LoginPage {
        layout: Layout::new(),
        csrf_token,
        next: query
            .next
            .as_deref()
            .and_then(safe_next)
            .unwrap_or("")
            .to_owned(),
        identifier: String::new(),
        error: None,
        identifier_error: None,
    };
    with_cookie(render(&page)?, cookie)
}

/// `POST /login`
pub async fn view_login_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let result = signin::sign_in(
        &state.db,
        &state.key,
        &state.audit,
        &form.identifier,
        form.password,
        &client(&req),
    )
    .await;
    let (error, identifier_error) = match result {
        Ok(signed_in) => {
            // Signed in on a page in this language: their messages follow it from now on.
            let locale = crate::i18n::Locale::current();
            super::public::remember_language(&state, signed_in.account.id, locale).await;
            let care = super::public::carry_care(&state, &req, &signed_in.account).await;
            let target = safe_next(&form.next).unwrap_or(home_for(signed_in.account.role));
            let mut res = with_cookie(see_other(target), care)?;
            res.add_cookie(&session::cookie(&state.settings, Some(signed_in.token)))
                .map_err(AppError::internal)?;
            return Ok(res);
        }
        Err(SignInError::Malformed(e)) => (None, Some(crate::i18n::pick(&e.to_string()))),
        Err(SignInError::Refused) => (
            Some(crate::i18n::pick(&SignInError::Refused.to_string())),
            None,
        ),
        Err(SignInError::AddressBlocked) => return Err(AppError::TooManyAttempts),
        Err(SignInError::Busy(busy)) => return Err(busy_error(busy)),
        Err(SignInError::Db(e)) => return Err(e.into()),
        Err(SignInError::Audit(e)) => {
            return Err(AppError::Unavailable {
                part: "audit",
                cause: Some(Box::new(e)),
            });
        }
    };
    let (csrf_token, cookie) = anonymous_token(&req, &state);
    let page = LoginPage {
        layout: Layout::new(),
        csrf_token,
        next: safe_next(&form.next).unwrap_or("").to_owned(),
        // The identifier is kept so people need not retype it; the password never is.
        identifier: form.identifier,
        error,
        identifier_error,
    };
    with_cookie(render(&page)?, cookie)
}

/// `POST /logout`
pub async fn logout_post(
    crate::auth::PendingUser(user): crate::auth::PendingUser,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (ip, ua) = client_of(&req);
    let _ = state
        .audit
        .record(Event::new(user.actor(), Action::AuthLogout, Outcome::Allowed).client(ip, ua))
        .await;
    session::revoke(&state.db, user.session_id).await?;
    let mut res = super::flash::see_other("/", super::flash::Flash::new("signed_out"));
    res.add_cookie(&session::cookie(&state.settings, None))
        .map_err(AppError::internal)?;
    Ok(res)
}

/// `GET /activate`
pub async fn view_activate_get(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (csrf_token, cookie) = anonymous_token(&req, &state);
    let page = ActivatePage {
        layout: Layout::new(),
        csrf_token,
        identifier: String::new(),
        code: String::new(),
        error: None,
        identifier_error: None,
        password_error: None,
    };
    with_cookie(render(&page)?, cookie)
}

/// `POST /activate`
pub async fn view_activate_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<ActivateForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let result = signin::activate(
        &state.db,
        &state.key,
        &state.audit,
        &form.identifier,
        &form.code,
        form.password,
        &form.password_repeat,
        &client(&req),
    )
    .await;
    let (mut error, mut identifier_error, mut password_error) = (None, None, None);
    match result {
        Ok(signed_in) => {
            let locale = crate::i18n::Locale::current();
            super::public::remember_language(&state, signed_in.account.id, locale).await;
            let care = super::public::carry_care(&state, &req, &signed_in.account).await;
            let mut res = with_cookie(
                super::flash::see_other(
                    home_for(signed_in.account.role),
                    super::flash::Flash::new("activated"),
                ),
                care,
            )?;
            res.add_cookie(&session::cookie(&state.settings, Some(signed_in.token)))
                .map_err(AppError::internal)?;
            return Ok(res);
        }
        Err(ActivateError::Malformed(e)) => {
            identifier_error = Some(crate::i18n::pick(&e.to_string()))
        }
        Err(e @ (ActivateError::PasswordsDiffer | ActivateError::WeakPassword(_))) => {
            password_error = Some(crate::i18n::pick(&e.to_string()))
        }
        Err(ActivateError::Refused) => {
            error = Some(crate::i18n::pick(&ActivateError::Refused.to_string()))
        }
        Err(ActivateError::AddressBlocked) => return Err(AppError::TooManyAttempts),
        Err(ActivateError::Busy(busy)) => return Err(busy_error(busy)),
        Err(ActivateError::Db(e)) => return Err(e.into()),
        Err(ActivateError::Audit(e)) => {
            return Err(AppError::Unavailable {
                part: "audit",
                cause: Some(Box::new(e)),
            });
        }
        Err(ActivateError::Hash) => return Err(AppError::internal("password hashing failed")),
    }
    let (csrf_token, cookie) = anonymous_token(&req, &state);
    let page = ActivatePage {
        layout: Layout::new(),
        csrf_token,
        identifier: form.identifier,
        code: form.code,
        error,
        identifier_error,
        password_error,
    };
    with_cookie(render(&page)?, cookie)
}

/// The CSRF token a public page's form carries, and the cookie to set if the browser has none
/// yet: the anonymous one — or, where the browser holds a session, the session's, which is the
/// one the check expects then (a signed-in insurer applying again, an officer checking a
/// bundle at /verify).
pub(crate) fn anonymous_token(
    req: &HttpRequest,
    state: &AppState,
) -> (String, Option<actix_web::cookie::Cookie<'static>>) {
    if let Some(claims) = req
        .cookie(crate::auth::session::cookie_name(&state.settings))
        .and_then(|c| crate::auth::session::decode(&state.key, c.value()))
    {
        return (
            csrf::masked(&csrf::token_for_session(&state.key, claims.sid)),
            None,
        );
    }
    match req.cookie(csrf::anonymous_cookie(state.settings.served_over_tls())) {
        Some(c) => (
            csrf::masked(&csrf::token_for_anonymous(&state.key, c.value())),
            None,
        ),
        None => {
            let (value, cookie) = csrf::new_anonymous_cookie(state.settings.served_over_tls());
            (
                csrf::masked(&csrf::token_for_anonymous(&state.key, &value)),
                Some(cookie),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_normalised_paths_are_followed() {
        for good in [
            "/",
            "/cases",
            "/cases/0193?x=1&y=%E4%B8%AD",
            "/staff/audit?from=2026-11-29",
        ] {
            assert_eq!(safe_next(good), Some(good), "{good}");
        }
        for bad in [
            "",
            "cases",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/x",
            "/\r\n/x",
            "/ /evil",
            "/\u{0}/x",
            "/./cases",
            "/a/../b",
            "/%2e%2e/x",
            "http://evil.example/",
            "/cases#frag",
            "/中文",
            "\\\\evil",
            "/\u{7f}x",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Whatever is accepted stays on this host when a browser resolves it.
        #[test]
        fn whatever_is_accepted_stays_local(next in "\\PC{0,40}") {
            if let Some(ok) = safe_next(&next) {
                let base = url::Url::parse("https://portal.example/").unwrap();
                let resolved = base.join(ok).unwrap();
                proptest::prop_assert_eq!(resolved.host_str(), Some("portal.example"));
                proptest::prop_assert!(ok.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }
}
