//! CSRF protection: every state-changing request carries a token bound to the session (or, before
//! sign-in, to a random cookie), checked by middleware before any handler runs. A missing or wrong
//! token gets a 403 page and is audited as denied.
//!
//! Forms send the token as the `csrf_token` field; scripts as `X-CSRF-Token`; file-upload forms
//! (multipart) as `?csrf_token=` in their action URL.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::web;
use subtle::ConstantTimeEq;

use crate::audit::{Action, Actor, Event, Outcome};
use crate::error::AppError;
use crate::keys::ServerKey;
use crate::state::AppState;

pub const FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// The pre-sign-in cookie that anonymous forms (sign-in, activation) are bound to, named
/// `__Host-` when the portal is served over https (as the session cookie is): no other host,
/// not even a sibling subdomain, can then plant one and bind a victim's sign-in form to a token
/// of the attacker's choosing (login CSRF). A plain name over http (local trials and tests).
pub fn anonymous_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-portal-csrf"
    } else {
        "portal-csrf"
    }
}
/// Form bodies larger than this are not read for a token (uploads send the header instead).
const FORM_LIMIT: usize = 64 * 1024;

pub fn token_for_session(key: &ServerKey, session_id: uuid::Uuid) -> String {
    hex::encode(&key.mac(b"csrf-session", session_id.as_bytes())[..16])
}

pub fn token_for_anonymous(key: &ServerKey, cookie_value: &str) -> String {
    hex::encode(&key.mac(b"csrf-anonymous", cookie_value.as_bytes())[..16])
}

/// A fresh anonymous cookie value and the cookie carrying it.
/// A form's copy of `token`, masked afresh for each page: a random pad and the token XORed with
/// it, so that no two answers carry the same bytes (BREACH: compressed pages that also reflect
/// input must not let an attacker guess a constant secret byte by byte).
pub fn masked(token: &str) -> String {
    let Ok(raw) = hex::decode(token) else {
        return token.to_owned();
    };
    let pad: Vec<u8> = (0..raw.len()).map(|_| rand::random::<u8>()).collect();
    let mixed: Vec<u8> = raw.iter().zip(&pad).map(|(t, p)| t ^ p).collect();
    format!("{}{}", hex::encode(pad), hex::encode(mixed))
}

/// The token a form carried: unmasked if masked (see [`masked`]), else as sent.
fn unmasked(provided: &str) -> String {
    match hex::decode(provided) {
        Ok(bytes) if bytes.len() == 32 => {
            let (pad, mixed) = bytes.split_at(16);
            hex::encode(
                pad.iter()
                    .zip(mixed)
                    .map(|(p, m)| p ^ m)
                    .collect::<Vec<u8>>(),
            )
        }
        _ => provided.to_owned(),
    }
}

pub fn new_anonymous_cookie(secure: bool) -> (String, Cookie<'static>) {
    let value = hex::encode(rand::random::<[u8; 16]>());
    let cookie = Cookie::build(anonymous_cookie(secure), value.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish();
    (value, cookie)
}

/// The token the current request's forms must carry: from its session if it has a valid session
/// token, else from its anonymous cookie.
pub fn expected_token(req: &actix_web::HttpRequest, state: &AppState) -> Option<String> {
    let name = super::session::cookie_name(&state.settings);
    if let Some(c) = req.cookie(name)
        && let Some(claims) = super::session::decode(&state.key, c.value())
    {
        return Some(token_for_session(&state.key, claims.sid));
    }
    req.cookie(anonymous_cookie(state.settings.served_over_tls()))
        .map(|c| token_for_anonymous(&state.key, c.value()))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware: refuses unsafe methods without the right token.
///
/// The refusal is a response, not an error, so the security headers and request tracing wrapped
/// around this middleware apply to it like to any page; it is audited as the signed-in person
/// when the request carries a live session.
pub async fn protect(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    if is_safe(req.method()) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let expected = expected_token(req.request(), &state);
    let mut provided = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // A plain HTML file-upload form cannot set headers, and its body is too large to read here:
    // it carries the token in its action URL.
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if provided.is_none() && is_multipart {
        provided = url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(k, _)| k == FIELD)
            .map(|(_, v)| v.into_owned());
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if provided.is_none() && is_form {
        let body = req.extract::<web::Bytes>().await.unwrap_or_default();
        if body.len() <= FORM_LIMIT {
            provided = url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == FIELD)
                .map(|(_, v)| v.into_owned());
        }
        // Put the body back for the handler.
        let (_, mut payload) = actix_http::h1::Payload::create(true);
        payload.unread_data(body);
        req.set_payload(payload.into());
    }
    let ok = match (&expected, &provided) {
        (Some(e), Some(p)) => bool::from(e.as_bytes().ct_eq(unmasked(p).as_bytes())),
        _ => false,
    };
    if ok {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let (ip, ua) = super::client_of(req.request());
    let actor = signed_in_actor(req.request(), &state).await;
    let event = Event::new(actor, Action::CsrfReject, Outcome::Denied)
        .client(ip, ua)
        .details(serde_json::json!({
            "path": req.path(),
            "reason": if provided.is_none() { "missing" } else { "mismatch" },
        }));
    // Refused either way; an audit failure only adds a log line.
    let _ = state.audit.record(event).await;
    let refusal = actix_web::ResponseError::error_response(&AppError::CsrfRejected);
    Ok(req.into_response(refusal).map_into_right_body())
}

/// The person a request's live session belongs to, or anonymous.
async fn signed_in_actor(req: &actix_web::HttpRequest, state: &AppState) -> Actor {
    let name = super::session::cookie_name(&state.settings);
    let Some(claims) = req
        .cookie(name)
        .and_then(|c| super::session::decode(&state.key, c.value()))
    else {
        return Actor::ANONYMOUS;
    };
    match super::session::resume(&state.db, &claims).await {
        Ok(Some((_, account))) => Actor::account(account.id, account.role),
        _ => Actor::ANONYMOUS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_token_differs_every_time_and_unmasks_to_itself() {
        let key = ServerKey::for_tests(7);
        let token = token_for_session(&key, uuid::Uuid::nil());
        let (a, b) = (masked(&token), masked(&token));
        assert_ne!(a, b);
        assert_ne!(a, token);
        assert_eq!(unmasked(&a), token);
        assert_eq!(unmasked(&b), token);
        assert_eq!(unmasked(&token), token, "an unmasked token still counts");
        let mut wrong = a.into_bytes();
        wrong[40] = if wrong[40] == b'0' { b'1' } else { b'0' };
        assert_ne!(unmasked(&String::from_utf8(wrong).unwrap()), token);
    }
}
