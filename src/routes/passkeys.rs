//! Passkeys as a second factor, for the page's script (`static/passkey.js`): the options of a
//! ceremony, then the browser's answer, as JSON. Registering asks for a fresh second factor when
//! the account already has one (a new key must not be added by whoever holds only a password).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::second_factor::{audit_factor, next_or_home, staff_or_admin};
use crate::audit::Action;
use crate::auth::{PendingUser, passkeys, second_factor, throttle};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

fn relying_party(state: &AppState) -> AppResult<&webauthn_rs::Webauthn> {
    state.webauthn.as_deref().ok_or_else(|| {
        AppError::bad_request(
            "passkeys_unavailable",
            "本系统的网址不是域名，不能使用通行密钥，请使用验证器应用 (passkeys need the portal to be reached by a domain name: use an authenticator app)",
        )
    })
}

/// The script's JSON body, read once the person is known (so a stranger learns nothing from
/// how a malformed body is refused).
fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> AppResult<T> {
    serde_json::from_slice(body).map_err(|_| {
        AppError::bad_request(
            "bad_passkey_answer",
            "浏览器返回的通行密钥数据无法读取，请重试 (the browser's passkey answer could not be read: try again)",
        )
    })
}

/// `POST /account/second-factor/passkey/begin`: the options to create a passkey with.
pub async fn register_begin_post(
    PendingUser(user): PendingUser,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    staff_or_admin(&req, &user).await?;
    if !second_factor::confirmed(&state.db, user.account.id)
        .await?
        .is_empty()
    {
        user.require_step_up("/account/second-factor")?;
    }
    let webauthn = relying_party(&state)?;
    let now = time::OffsetDateTime::now_utc();
    let options =
        passkeys::begin_registration(&state.db, webauthn, &user.account, user.session_id, now)
            .await?
            .ok_or_else(|| AppError::internal("the passkey registration could not start"))?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(options))
}

#[derive(Deserialize)]
pub struct Registered {
    #[serde(default)]
    name: String,
    credential: RegisterPublicKeyCredential,
}

/// `POST /account/second-factor/passkey/finish`: the new passkey, checked and kept; the session
/// counts as having passed; an account without recovery codes gets ten, returned once.
pub async fn register_finish_post(
    PendingUser(user): PendingUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    staff_or_admin(&req, &user).await?;
    let webauthn = relying_party(&state)?;
    let body: Registered = json(&body)?;
    let now = time::OffsetDateTime::now_utc();
    let name = second_factor::factor_name(&body.name, "passkey");
    let outcome = passkeys::finish_registration(
        &state.db,
        webauthn,
        &user.account,
        user.session_id,
        &body.credential,
        &name,
        now,
    )
    .await?;
    let details = match &outcome {
        Ok(id) => serde_json::json!({ "kind": "passkey", "factor_id": id }),
        Err(r) => serde_json::json!({ "kind": "passkey", "reason": r.as_str() }),
    };
    audit_factor(
        &state,
        &req,
        &user,
        Action::SecondFactorEnrol,
        outcome.is_ok(),
        details,
    )
    .await?;
    match outcome {
        Ok(_) => {
            second_factor::mark_session(&state.db, user.session_id, now).await?;
            let codes =
                if second_factor::recovery_codes_left(&state.db, user.account.id).await? == 0 {
                    second_factor::new_recovery_codes(&state.db, &state.key, user.account.id, now)
                        .await?
                } else {
                    Vec::new()
                };
            Ok(HttpResponse::Ok()
                .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
                .json(serde_json::json!({ "ok": true, "recovery_codes": codes })))
        }
        Err(r) => Err(AppError::bad_request(
            r.as_str(),
            "通行密钥未能添加，请重试 (the passkey could not be added: try again)",
        )),
    }
}

/// `POST /login/second-factor/passkey/begin`: the options to sign in with one of the account's
/// passkeys.
pub async fn sign_in_begin_post(
    PendingUser(user): PendingUser,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    staff_or_admin(&req, &user).await?;
    let webauthn = relying_party(&state)?;
    let now = time::OffsetDateTime::now_utc();
    let options = passkeys::begin_authentication(
        &state.db,
        webauthn,
        user.account.id,
        user.session_id,
        now,
    )
    .await?
    .ok_or_else(|| {
        AppError::bad_request(
            "no_passkey",
            "此账户没有通行密钥，请输入验证器应用的动态码 (this account has no passkey: enter your app's code)",
        )
    })?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(options))
}

#[derive(Deserialize)]
pub struct Answered {
    #[serde(default)]
    next: String,
    credential: PublicKeyCredential,
}

/// `POST /login/second-factor/passkey/finish`: the browser's answer. Counted like a code (a
/// wrong answer is a failed attempt), audited either way; passing marks the session.
pub async fn sign_in_finish_post(
    PendingUser(user): PendingUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    staff_or_admin(&req, &user).await?;
    let webauthn = relying_party(&state)?;
    let body: Answered = json(&body)?;
    let now = time::OffsetDateTime::now_utc();
    let attempt = throttle::second_factor_attempt(&state.db, user.account.id).await?;
    let outcome = match attempt {
        Some(a) if a.locked => Err("locked"),
        _ => passkeys::finish_authentication(
            &state.db,
            webauthn,
            user.account.id,
            user.session_id,
            &body.credential,
            now,
        )
        .await?
        .map_err(|r| r.as_str()),
    };
    let details = match &outcome {
        Ok(id) => serde_json::json!({ "method": "passkey", "factor_id": id }),
        Err(reason) => serde_json::json!({ "method": "passkey", "reason": reason }),
    };
    audit_factor(
        &state,
        &req,
        &user,
        Action::AuthSecondFactor,
        outcome.is_ok(),
        details,
    )
    .await?;
    let locked_now =
        super::second_factor::settle_factor(&state, &user, attempt, outcome.is_ok(), now).await?;
    match outcome.and_then(|id| if locked_now { Err("locked") } else { Ok(id) }) {
        Ok(_) => {
            let next = next_or_home(&body.next, &user);
            Ok(HttpResponse::Ok().json(serde_json::json!({ "redirect": next })))
        }
        Err(reason) => Err(AppError::bad_request(
            reason,
            match reason {
                "locked" => {
                    "错误次数过多，账户已锁定 15 分钟 (too many failures: the account is locked for 15 minutes)"
                }
                _ => {
                    "通行密钥未通过验证，请换用已登记的通行密钥或验证器应用 (the passkey did not verify: use a registered one, or your app's code)"
                }
            },
        )),
    }
}
