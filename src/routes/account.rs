//! "My account": password change for everyone, personal API tokens for agents.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::flash::{self, Flash};
use super::{Layout, cst, render};
use crate::audit::{Action, Event, Outcome};
use crate::auth::{CurrentUser, client_of, password, session, throttle, tokens};
use crate::db::entities::account;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::vocab::Role;

pub struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "account/index.html")]
struct AccountPage {
    layout: Layout,
    csrf_token: String,
    name: String,
    login: String,
    role: String,
    is_agent: bool,
    tokens: Vec<TokenRow>,
    /// A token just created: shown this once.
    new_token: Option<String>,
    password_error: Option<String>,
    /// The notification form as kept, or as typed when refused.
    mobile: String,
    email: String,
    notify_sms: bool,
    notify_email: bool,
    /// Whether this installation sends SMS and e-mail at all.
    sms_available: bool,
    email_available: bool,
    /// A refused notification choice: the field and why.
    notify_error: Option<(&'static str, String)>,
}

async fn page(state: &AppState, user: &CurrentUser) -> AppResult<AccountPage> {
    let is_agent = user.role() == Role::Agent;
    let tokens = if is_agent {
        tokens::list(&state.db, user.account.id)
            .await?
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                prefix: t.prefix,
                created: cst(t.created_at),
                last_used: t.last_used_at.map(cst).unwrap_or_else(|| "—".into()),
                revoked: t.revoked_at.is_some(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(AccountPage {
        layout: Layout::for_user(user),
        csrf_token: user.csrf_token.clone(),
        name: user.account.display_name.clone(),
        login: user.account.login_masked.clone(),
        role: crate::i18n::label(user.role()),
        is_agent,
        tokens,
        new_token: None,
        password_error: None,
        // Their own numbers, opened for them alone (sealed at rest).
        mobile: user
            .account
            .mobile
            .as_deref()
            .and_then(|m| state.key.open_contact(crate::keys::Contact::Mobile, m))
            .unwrap_or_default(),
        email: user
            .account
            .email
            .as_deref()
            .and_then(|e| state.key.open_contact(crate::keys::Contact::Email, e))
            .unwrap_or_default(),
        notify_sms: user.account.notify_sms,
        notify_email: user.account.notify_email,
        sms_available: state.channels.sms,
        email_available: state.channels.email,
        notify_error: None,
    })
}

#[derive(Deserialize)]
pub struct NotifyForm {
    #[serde(default)]
    mobile: String,
    #[serde(default)]
    email: String,
    sms: Option<String>,
    email_on: Option<String>,
}

/// `POST /account/notifications`: the person's channels and addresses.
pub async fn notifications_post(
    user: CurrentUser,
    state: web::Data<AppState>,
    form: web::Form<NotifyForm>,
) -> AppResult<HttpResponse> {
    use crate::notifications::{ChannelsError, Choice};
    let form = form.into_inner();
    let choice = Choice {
        mobile: form.mobile.clone(),
        email: form.email.clone(),
        sms: form.sms.is_some(),
        email_on: form.email_on.is_some(),
    };
    match crate::notifications::set_channels(
        &state.db,
        &state.audit,
        &state.key,
        &user.account,
        choice,
    )
    .await
    {
        Ok(()) => Ok(flash::see_other(
            "/account#notifications",
            Flash::new("notifications_saved"),
        )),
        Err(ChannelsError::Choice(e)) => {
            let mut page = page(&state, &user).await?;
            page.mobile = form.mobile;
            page.email = form.email;
            page.notify_sms = form.sms.is_some();
            page.notify_email = form.email_on.is_some();
            page.notify_error = Some((e.field, crate::i18n::pick(&e.message)));
            super::render_status(actix_web::http::StatusCode::BAD_REQUEST, &page)
        }
        Err(ChannelsError::Db(e)) => Err(e.into()),
        Err(ChannelsError::Audit(e)) => Err(AppError::Unavailable {
            part: "audit",
            cause: Some(Box::new(e)),
        }),
    }
}

/// `GET /account`
pub async fn view_account_get(
    user: CurrentUser,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    render(&page(&state, &user).await?)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    new: String,
    repeat: String,
}

/// `POST /account/password`: other sessions end; this one stays.
pub async fn password_post(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    // Wrong current passwords count against the account like failed sign-ins (5 lock it for
    // 15 minutes), so a borrowed session cannot guess the password without limit.
    let attempt = throttle::account_attempt(&state.db, user.account.id).await?;
    let locked = attempt.is_some_and(|a| a.locked);
    let stored = user.account.password_hash.clone().unwrap_or_default();
    let ok = if locked {
        false
    } else {
        match password::verify_bounded(form.current, stored).await {
            Ok(ok) => ok,
            Err(busy) => {
                throttle::account_refund(&state.db, user.account.id).await?;
                return Err(super::auth::busy_error(busy));
            }
        }
    };
    if let Some(attempt) = attempt {
        if ok {
            throttle::account_succeeded(&state.db, attempt.account_id).await?;
        } else {
            throttle::account_refused(&state.db, attempt).await?;
        }
    }
    let min = if user.role() == Role::Admin {
        password::MIN_LENGTH_ADMIN
    } else {
        password::MIN_LENGTH
    };
    let problem = if locked {
        Some(crate::i18n::t("account.password.locked"))
    } else if !ok {
        Some(crate::i18n::t("account.password.wrong_current"))
    } else if form.new != form.repeat {
        Some(crate::i18n::t("account.password.differ"))
    } else {
        password::check_strength(
            &form.new,
            &[&user.account.display_name, &user.account.login_masked],
            min,
        )
        .err()
        .map(|e| crate::i18n::pick(&e.to_string()))
    };
    let (ip, ua) = client_of(&req);
    if let Some(problem) = problem {
        state
            .audit
            .record(
                Event::new(user.actor(), Action::AuthPasswordChange, Outcome::Denied)
                    .client(ip, ua)
                    .details(
                        serde_json::json!({ "reason": if locked { "locked" } else if ok { "rules" } else { "wrong_current" } }),
                    ),
            )
            .await?;
        let mut p = page(&state, &user).await?;
        p.password_error = Some(problem);
        return super::render_status(actix_web::http::StatusCode::BAD_REQUEST, &p);
    }
    let new = form.new;
    let hash = password::hash_bounded(new)
        .await
        .map_err(super::auth::busy_error)?
        .map_err(|e| AppError::internal(e.to_string()))?;
    state
        .audit
        .record(
            Event::new(user.actor(), Action::AuthPasswordChange, Outcome::Allowed).client(ip, ua),
        )
        .await?;
    use sea_orm::{ActiveModelTrait, Set};
    let mut row: account::ActiveModel = user.account.clone().into();
    row.password_hash = Set(Some(hash));
    row.updated_at = Set(time::OffsetDateTime::now_utc());
    row.update(&state.db).await?;
    session::revoke_all(&state.db, user.account.id, Some(user.session_id)).await?;
    // A token is as strong as the password it was made under.
    crate::auth::tokens::revoke_all(&state.db, user.account.id).await?;
    Ok(flash::see_other("/account", Flash::new("password_changed")))
}

#[derive(Deserialize)]
pub struct TokenForm {
    name: String,
}

/// `POST /account/tokens` (agents): the new token is shown once, on the page this returns.
pub async fn token_create_post(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<TokenForm>,
) -> AppResult<HttpResponse> {
    if user.role() != Role::Agent {
        return Err(crate::auth::extract::refuse(&req, &user, "role").await);
    }
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_request(
            "invalid_token_name",
            "令牌名称须为1–100个字符 (a name of 1–100 characters)",
        ));
    }
    let (ip, ua) = client_of(&req);
    state
        .audit
        .record(
            Event::new(user.actor(), Action::TokenCreate, Outcome::Allowed)
                .client(ip, ua)
                .details(serde_json::json!({ "name": name })),
        )
        .await?;
    let (row, token) = tokens::create(&state.db, user.account.id, name).await?;
    // Shown once, on a page of its own: a reload there makes no second token.
    let path = format!("/account/tokens/{}", row.id);
    let sealed = super::once::seal(&state.key, &path, &token, state.settings.served_over_tls())
        .ok_or_else(|| AppError::internal("cannot seal the new token"))?;
    let mut res = flash::see_other(&path, Flash::new("token_created").with("name", &row.name));
    res.add_cookie(&sealed).map_err(AppError::internal)?;
    Ok(res)
}

/// `GET /account/tokens/{id}`: the token just created, shown this once; afterwards (or for a
/// token made earlier) the account page's list of tokens.
pub async fn token_created_get(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let mine = tokens::list(&state.db, user.account.id)
        .await?
        .into_iter()
        .any(|t| t.id == id);
    if !mine {
        return Err(AppError::NotFound);
    }
    let Some(token) = super::once::open(&state.key, &req) else {
        return Ok(super::see_other("/account#tokens"));
    };
    let mut p = page(&state, &user).await?;
    p.new_token = Some(token);
    let mut res = render(&p)?;
    res.add_cookie(&super::once::cleared(req.path()))
        .map_err(AppError::internal)?;
    Ok(res)
}

/// `POST /account/tokens/{id}/revoke` (asks first: it cannot be undone)
pub async fn token_revoke_post(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    form: web::Form<super::confirm::ConfirmForm>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let Some(token) = tokens::list(&state.db, user.account.id)
        .await?
        .into_iter()
        .find(|t| t.id == id && t.revoked_at.is_none())
    else {
        return Err(AppError::NotFound);
    };
    if !super::confirm::confirmed(&form.confirmed) {
        return super::confirm::ask(
            Layout::for_user(&user),
            &user.csrf_token,
            super::confirm::Ask {
                what: "revoke_token",
                args: &[("name", &token.name)],
                action: format!("/account/tokens/{id}/revoke"),
                fields: Vec::new(),
                back: "/account#tokens".into(),
            },
        );
    }
    let (ip, ua) = client_of(&req);
    state
        .audit
        .record(
            Event::new(user.actor(), Action::TokenRevoke, Outcome::Allowed)
                .client(ip, ua)
                .details(serde_json::json!({ "token_id": id })),
        )
        .await?;
    tokens::revoke(&state.db, user.account.id, id).await?;
    Ok(flash::see_other(
        "/account#tokens",
        Flash::new("token_revoked"),
    ))
}
