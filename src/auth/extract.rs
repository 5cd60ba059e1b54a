//! How handlers get the signed-in user. A handler that takes `StaffUser` cannot run for anyone
//! else: the type is the check (STYLE §4).

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use uuid::Uuid;

use super::{csrf, session, tokens};
use crate::db::entities::account;
use crate::error::AppError;
use crate::state::AppState;
use crate::vocab::Role;

tokio::task_local! {
    static SIGNED_IN: std::cell::RefCell<Option<CurrentUser>>;
}

/// Middleware: remembers who the request turned out to be signed in as, so that an error page
/// of the request keeps the signed-in header (name, home, sign-out) instead of looking signed
/// out.
pub async fn remember_signed_in(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    SIGNED_IN
        .scope(std::cell::RefCell::new(None), next.call(req))
        .await
}

/// Who the request being handled is signed in as, once a handler has asked.
pub fn signed_in() -> Option<CurrentUser> {
    SIGNED_IN.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// A signed-in person with a live session.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub account: account::Model,
    pub session_id: Uuid,
    /// What this session's forms must carry.
    pub csrf_token: String,
    /// When this session last passed a second factor (staff and administrators).
    pub second_factor_at: Option<time::OffsetDateTime>,
}

impl CurrentUser {
    pub fn role(&self) -> Role {
        self.account.role
    }

    pub fn actor(&self) -> crate::audit::Actor {
        crate::audit::Actor::account(self.account.id, self.account.role)
    }

    /// The most sensitive acts (resetting or disabling accounts, exporting the audit log, bulk
    /// release): a staff member or administrator must have passed a second factor within the
    /// last five minutes, or is asked to again and sent back to `back` (the page of the form).
    pub fn require_step_up(&self, back: &str) -> Result<(), AppError> {
        let now = time::OffsetDateTime::now_utc();
        if !super::second_factor::required(self.role())
            || super::second_factor::recent(self.second_factor_at, now)
            || self.in_grace(now)
        {
            return Ok(());
        }
        Err(AppError::SecondFactorRequired {
            next: Some(back.to_owned()),
            step_up: true,
        })
    }

    /// An account the `create-admin` grace still lets act without a second factor.
    fn in_grace(&self, now: time::OffsetDateTime) -> bool {
        self.account
            .second_factor_grace_until
            .is_some_and(|until| until > now)
    }
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::internal("application state missing"))
}

/// The signed-in user, who — if staff or an administrator — has passed a second factor in this
/// session (or is within their grace); else `SecondFactorRequired`.
async fn current_user(req: HttpRequest) -> Result<CurrentUser, AppError> {
    let user = session_user(req).await?;
    if super::second_factor::required(user.role())
        && user.second_factor_at.is_none()
        && !user.in_grace(time::OffsetDateTime::now_utc())
    {
        return Err(AppError::SecondFactorRequired {
            next: None,
            step_up: false,
        });
    }
    Ok(user)
}

/// The signed-in user, second factor or not: only the pages that pass or enrol one take it.
async fn session_user(req: HttpRequest) -> Result<CurrentUser, AppError> {
    let state = state(&req)?;
    let cookie = req
        .cookie(session::cookie_name(&state.settings))
        .ok_or(AppError::NotSignedIn)?;
    // A cookie that opens no session any more: the sign-in page will say it expired. (An
    // empty one is what signing out leaves.)
    let gone = if cookie.value().is_empty() {
        AppError::NotSignedIn
    } else {
        AppError::SessionExpired
    };
    let Some(claims) = session::decode(&state.key, cookie.value()) else {
        return Err(gone);
    };
    let Some((row, account)) = session::resume(&state.db, &claims).await? else {
        return Err(gone);
    };
    let user = CurrentUser {
        // Masked per request: every page carries different bytes (BREACH).
        csrf_token: csrf::masked(&csrf::token_for_session(&state.key, row.id)),
        session_id: row.id,
        second_factor_at: row.second_factor_at,
        account,
    };
    let _ = SIGNED_IN.try_with(|c| *c.borrow_mut() = Some(user.clone()));
    Ok(user)
}

type Fut<T> = Pin<Box<dyn Future<Output = Result<T, AppError>>>>;

/// Refuses a signed-in person a page their role does not open, and audits the refusal.
pub async fn refuse(req: &HttpRequest, user: &CurrentUser, reason: &'static str) -> AppError {
    let Ok(state) = state(req) else {
        return AppError::Forbidden;
    };
    let (ip, ua) = super::client_of(req);
    let event = crate::audit::Event::new(
        user.actor(),
        crate::audit::Action::AccessDenied,
        crate::audit::Outcome::Denied,
    )
    .client(ip, ua)
    .details(serde_json::json!({ "path": req.path(), "method": req.method().as_str(), "reason": reason }));
    match state.audit.record(event).await {
        Ok(_) => AppError::Forbidden,
        Err(e) => AppError::Unavailable {
            part: "audit",
            cause: Some(Box::new(e)),
        },
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(current_user(req.clone()))
    }
}

/// A signed-in person whose session may still lack its second factor: the pages that pass or
/// enrol one (and nothing else) take this.
#[derive(Clone, Debug)]
pub struct PendingUser(pub CurrentUser);

impl FromRequest for PendingUser {
    type Error = AppError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { session_user(req).await.map(PendingUser) })
    }
}

/// A signed-in member of a brigade's staff.
#[derive(Clone, Debug)]
pub struct StaffUser(pub CurrentUser);

impl FromRequest for StaffUser {
    type Error = AppError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let user = current_user(req.clone()).await?;
            if user.role() == Role::Staff && user.account.department_id.is_some() {
                Ok(StaffUser(user))
            } else {
                Err(refuse(&req, &user, "role").await)
            }
        })
    }
}

/// A signed-in administrator.
#[derive(Clone, Debug)]
pub struct AdminUser(pub CurrentUser);

impl FromRequest for AdminUser {
    type Error = AppError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let user = current_user(req.clone()).await?;
            if user.role() == Role::Admin {
                Ok(AdminUser(user))
            } else {
                Err(refuse(&req, &user, "role").await)
            }
        })
    }
}

/// Who is downloading: a session, or (GET and HEAD only) an agent's personal API token. Only
/// download routes take this extractor; every other route takes a session-only one.
#[derive(Clone, Debug)]
pub enum DownloadUser {
    Session(CurrentUser),
    Token {
        account: account::Model,
        token_id: Uuid,
    },
}

impl DownloadUser {
    pub fn account(&self) -> &account::Model {
        match self {
            DownloadUser::Session(u) => &u.account,
            DownloadUser::Token { account, .. } => account,
        }
    }
}

impl FromRequest for DownloadUser {
    type Error = AppError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let bearer = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .map(str::to_owned);
            match bearer {
                Some(token) if matches!(*req.method(), Method::GET | Method::HEAD) => {
                    let state = state(&req)?;
                    let (row, account) = tokens::authenticate(&state.db, &token)
                        .await?
                        .ok_or(AppError::BadToken)?;
                    Ok(DownloadUser::Token {
                        account,
                        token_id: row.id,
                    })
                }
                Some(_) => Err(AppError::BadToken),
                None => current_user(req).await.map(DownloadUser::Session),
            }
        })
    }
}
