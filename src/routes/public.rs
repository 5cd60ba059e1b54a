//! Pages anyone may see without signing in.

use actix_web::HttpResponse;
use askama::Template;

use super::{Layout, render};
use crate::error::AppResult;

#[derive(Template)]
#[template(path = "public/landing.html")]
struct LandingPage {
    layout: Layout,
}

/// `GET /`: what the service is and how a party gets access.
pub async fn view_landing_get(user: Option<crate::auth::CurrentUser>) -> AppResult<HttpResponse> {
    // Signed in, the page leads on to the person's own pages instead of offering a sign-in.
    render(&LandingPage {
        layout: user.as_ref().map_or_else(Layout::new, Layout::for_user),
    })
}

#[derive(serde::Deserialize)]
pub struct LanguageQuery {
    to: Option<String>,
    next: Option<String>,
}

/// `GET /language?to=en&next=/cases`: the language switch on every page. Remembers the choice
/// in a cookie for a year — and, signed in, as the person's language, which their SMS and
/// e-mail follow — and goes back to the page (local paths only).
pub async fn language_get(
    user: Option<crate::auth::CurrentUser>,
    query: actix_web::web::Query<LanguageQuery>,
    state: actix_web::web::Data<crate::state::AppState>,
) -> AppResult<HttpResponse> {
    let locale =
        crate::i18n::Locale::from_code(query.to.as_deref().unwrap_or("")).ok_or_else(|| {
            crate::error::AppError::bad_request(
                "unknown_language",
                "不支持该语言（zh-CN 或 en）。 (language not supported (zh-CN or en))",
            )
        })?;
    if let Some(user) = &user {
        remember_language(&state, user.account.id, locale).await;
    }
    Ok(remembered_and_back(
        &state,
        crate::i18n::COOKIE,
        locale.code(),
        query.next.as_deref(),
    ))
}

/// A preference kept for a year in cookie `name` (not a secret), and the way back to `next`
/// (this site's paths only, else `/`): what the language and care-mode switches answer.
fn remembered_and_back(
    state: &crate::state::AppState,
    name: &'static str,
    value: &'static str,
    next: Option<&str>,
) -> HttpResponse {
    let next = next.and_then(super::auth::safe_next).unwrap_or("/");
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, next.to_owned()))
        .cookie(preference_cookie(state, name, value))
        .finish()
}

/// The cookie that keeps a preference (language, care mode) for a year.
fn preference_cookie(
    state: &crate::state::AppState,
    name: &'static str,
    value: &'static str,
) -> actix_web::cookie::Cookie<'static> {
    use actix_web::cookie::{Cookie, SameSite, time::Duration};
    Cookie::build(name, value)
        .path("/")
        .max_age(Duration::days(365))
        .same_site(SameSite::Lax)
        .http_only(true)
        .secure(state.settings.served_over_tls())
        .finish()
}

/// Keeps `locale` as the language the person last used, which their SMS and e-mail are
/// written in. A failure is logged, not shown: the switch or sign-in it comes with goes on,
/// and their messages stay in the language they had.
pub(crate) async fn remember_language(
    state: &crate::state::AppState,
    account_id: uuid::Uuid,
    locale: crate::i18n::Locale,
) {
    if let Err(e) = crate::notifications::remember_language(&state.db, account_id, locale).await {
        tracing::warn!(error = %e, "the account's language was not kept");
    }
}

/// `GET /care?to=on&next=/cases`: the care-mode switch (长辈版: large text, large targets, one
/// column) on every page. A link, so that it works without scripts and by keyboard; remembered
/// in a cookie for a year (a preference, not a secret); goes back to the page (local paths
/// only, as the language switch does).
///
/// Signed in, the choice is also kept on the account (not audited, as the language is not),
/// and their pages follow the account's choice on every device.
pub async fn care_get(
    user: Option<crate::auth::CurrentUser>,
    query: actix_web::web::Query<LanguageQuery>,
    state: actix_web::web::Data<crate::state::AppState>,
) -> AppResult<HttpResponse> {
    let value = match query.to.as_deref() {
        Some("on") => "on",
        Some("off") => "off",
        _ => {
            return Err(crate::error::AppError::bad_request(
                "unknown_care_mode",
                "长辈版只能打开或关闭（on 或 off）。 (care mode is on or off)",
            ));
        }
    };
    if let Some(user) = &user {
        remember_care(&state, user.account.id, value == "on").await;
    }
    Ok(remembered_and_back(
        &state,
        crate::telemetry::CARE_COOKIE,
        value,
        query.next.as_deref(),
    ))
}

/// Keeps the care mode on the account. A failure is logged, not shown: the switch goes on, the
/// device's cookie still holds the choice.
async fn remember_care(state: &crate::state::AppState, account_id: uuid::Uuid, care: bool) {
    if let Err(e) = crate::accounts::remember_care(&state.db, account_id, care).await {
        tracing::warn!(error = %e, "the account's care mode was not kept");
    }
}

/// At sign-in, the care mode follows the last choice: one made on this device before signing
/// in (its cookie says `on` or `off`) is kept on the account — the page does not change mode
/// under the person as they sign in; with no choice on this device, the account's own is
/// brought here as a cookie (so that pages shown before the account is read follow it too).
pub(crate) async fn carry_care(
    state: &crate::state::AppState,
    req: &actix_web::HttpRequest,
    account: &crate::db::entities::account::Model,
) -> Option<actix_web::cookie::Cookie<'static>> {
    match req
        .cookie(crate::telemetry::CARE_COOKIE)
        .map(|c| c.value().to_owned())
        .as_deref()
    {
        Some("on") => remember_care(state, account.id, true).await,
        Some("off") => remember_care(state, account.id, false).await,
        _ if account.care => {
            return Some(preference_cookie(
                state,
                crate::telemetry::CARE_COOKIE,
                "on",
            ));
        }
        _ => {}
    }
    None
}

/// `POST /session/extend`: "继续 / Stay signed in" on the warning shown two minutes before the
/// session's idle timeout (WCAG 2.2.1, `static/session.js`). Being a signed-in request, it
/// refreshes the session's last use (`auth::session::resume`); nothing else. 204.
pub async fn session_extend_post(_user: crate::auth::CurrentUser) -> HttpResponse {
    HttpResponse::NoContent().finish()
}
