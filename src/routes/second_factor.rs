//! The second factor of staff and administrators: passing it after the password (or again for
//! a sensitive act), enrolling an authenticator app, the recovery codes shown once, removing a
//! factor. These pages take `PendingUser`: every other page refuses a session without one.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::flash::{self, Flash};
use super::{Layout, cst, home_for, render, render_status};
use crate::audit::{Action, Event, Outcome};
use crate::auth::second_factor::{self, Passed, Refused};
use crate::auth::{CurrentUser, PendingUser, client_of, throttle};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

#[derive(Template)]
#[template(path = "auth/second_factor.html")]
struct ChallengePage {
    layout: Layout,
    csrf_token: String,
    next: String,
    error: Option<String>,
    /// The account has a passkey (and the installation can use them): offer it.
    passkey: bool,
}

/// Whether to offer `user` signing in with a passkey (and load the script that does it).
async fn offers_passkey(
    state: &AppState,
    user: &CurrentUser,
    layout: &mut Layout,
) -> AppResult<bool> {
    let offer = state.webauthn.is_some()
        && !crate::auth::passkeys::of_account(&state.db, user.account.id)
            .await?
            .is_empty();
    if offer {
        layout.scripts.push(crate::assets::url("passkey.js"));
    }
    Ok(offer)
}

/// Records a second-factor event of `user`: allowed or denied, with its details.
pub(super) async fn audit_factor(
    state: &AppState,
    req: &HttpRequest,
    user: &CurrentUser,
    action: Action,
    allowed: bool,
    details: serde_json::Value,
) -> AppResult<()> {
    let (ip, ua) = client_of(req);
    let outcome = if allowed {
        Outcome::Allowed
    } else {
        Outcome::Denied
    };
    state
        .audit
        .record(
            Event::new(user.actor(), action, outcome)
                .client(ip, ua)
                .details(details),
        )
        .await?;
    Ok(())
}

pub(super) fn next_or_home(next: &str, user: &CurrentUser) -> String {
    super::auth::safe_next(next)
        .filter(|n| !n.starts_with("/login"))
        .unwrap_or(home_for(user.role()))
        .to_owned()
}

/// `GET /login/second-factor?next=…`: the code after the password (or again, for a sensitive
/// act). An account without a factor is sent to enrol one.
pub async fn view_challenge_get(
    PendingUser(user): PendingUser,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> AppResult<HttpResponse> {
    if !second_factor::required(user.role()) {
        return Ok(super::see_other(home_for(user.role())));
    }
    if second_factor::confirmed(&state.db, user.account.id)
        .await?
        .is_empty()
    {
        return Ok(super::see_other("/account/second-factor"));
    }
    let mut layout = Layout::for_user(&user);
    let passkey = offers_passkey(&state, &user, &mut layout).await?;
    render(&ChallengePage {
        layout,
        csrf_token: user.csrf_token.clone(),
        next: query.next.clone(),
        error: None,
        passkey,
    })
}

#[derive(Deserialize)]
pub struct ChallengeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
}

/// Settles a counted second-factor try of `user` (a code or a passkey answer): a pass clears
/// the second factor's count and lock and marks the session; a failure counts, and the fifth
/// in a row locks the second factor for 15 minutes — the password's count has no say — and
/// tells the person (inbox, and SMS or e-mail as they chose). True when this try set the lock.
pub(super) async fn settle_factor(
    state: &AppState,
    user: &CurrentUser,
    attempt: Option<throttle::AccountAttempt>,
    passed: bool,
    now: time::OffsetDateTime,
) -> AppResult<bool> {
    use sea_orm::TransactionTrait;
    if passed {
        throttle::second_factor_passed(&state.db, user.account.id).await?;
        second_factor::mark_session(&state.db, user.session_id, now).await?;
        return Ok(false);
    }
    let Some(attempt) = attempt else {
        return Ok(false);
    };
    let locked = throttle::account_refused(&state.db, attempt).await?;
    if locked {
        let txn = state.db.begin().await?;
        crate::notifications::notify(
            &txn,
            state.channels,
            std::slice::from_ref(&user.account),
            None,
            &crate::notifications::Event::SecondFactorLocked,
            now,
        )
        .await?;
        txn.commit().await?;
    }
    Ok(locked)
}

/// Checks a code for `user`'s session: counted on the second factor's own count (five wrong
/// lock it for 15 minutes, and a right password does not clear them), audited either way;
/// passing marks the session.
async fn pass(
    state: &AppState,
    req: &HttpRequest,
    user: &CurrentUser,
    code: &str,
) -> AppResult<Result<Passed, &'static str>> {
    let now = time::OffsetDateTime::now_utc();
    let attempt = throttle::second_factor_attempt(&state.db, user.account.id).await?;
    let outcome = match attempt {
        Some(a) if a.locked => Err("locked"),
        _ => second_factor::verify(&state.db, &state.key, user.account.id, code, now)
            .await?
            .map_err(|r| r.as_str()),
    };
    let details = match &outcome {
        Ok(Passed::Totp { factor_id }) => {
            serde_json::json!({ "method": "totp", "factor_id": factor_id })
        }
        Ok(Passed::Recovery { left }) => {
            serde_json::json!({ "method": "recovery_code", "recovery_codes_left": left })
        }
        Err(reason) => serde_json::json!({ "reason": reason }),
    };
    audit_factor(
        state,
        req,
        user,
        Action::AuthSecondFactor,
        outcome.is_ok(),
        details,
    )
    .await?;
    // The try that sets the lock says so (the next ones are refused as locked).
    if settle_factor(state, user, attempt, outcome.is_ok(), now).await? {
        return Ok(Err("locked"));
    }
    Ok(outcome)
}

/// `POST /login/second-factor`
pub async fn challenge_post(
    PendingUser(user): PendingUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<ChallengeForm>,
) -> AppResult<HttpResponse> {
    if !second_factor::required(user.role()) {
        return Ok(super::see_other(home_for(user.role())));
    }
    let form = form.into_inner();
    match pass(&state, &req, &user, &form.code).await? {
        Ok(Passed::Recovery { left }) => Ok(flash::see_other(
            &next_or_home(&form.next, &user),
            Flash::new("recovery_code_used").with("n", left),
        )),
        Ok(Passed::Totp { .. }) => Ok(flash::see_other(
            &next_or_home(&form.next, &user),
            Flash::new("second_factor_passed"),
        )),
        Err(reason) => {
            let key = match reason {
                "locked" => "second_factor.locked",
                "replayed_second_factor" => "second_factor.replayed",
                _ => "second_factor.wrong",
            };
            let mut layout = Layout::for_user(&user);
            let passkey = offers_passkey(&state, &user, &mut layout).await?;
            render_status(
                actix_web::http::StatusCode::BAD_REQUEST,
                &ChallengePage {
                    layout,
                    csrf_token: user.csrf_token.clone(),
                    next: form.next,
                    error: Some(crate::i18n::t(key)),
                    passkey,
                },
            )
        }
    }
}

pub struct FactorRow {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub added: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "account/second_factor.html")]
struct ManagePage {
    layout: Layout,
    csrf_token: String,
    factors: Vec<FactorRow>,
    recovery_left: u64,
    required: bool,
    /// An enrolment in progress: its id, the key to type, and the QR code (inline SVG).
    enrolment: Option<(Uuid, String, String)>,
    error: Option<String>,
    /// Just enrolled: the recovery codes, shown this once.
    recovery_codes: Vec<String>,
    /// Passkeys can be registered here (the portal is reached by a domain name).
    passkeys: bool,
}

async fn manage_page(
    state: &AppState,
    user: &CurrentUser,
    enrolment: Option<(Uuid, String, String)>,
    error: Option<String>,
    recovery_codes: Vec<String>,
) -> AppResult<ManagePage> {
    let locale = crate::i18n::Locale::current();
    let factors = second_factor::confirmed(&state.db, user.account.id)
        .await?
        .into_iter()
        .map(|f| FactorRow {
            id: f.id,
            kind: locale
                .t(&format!("second_factor.kind.{}", f.kind))
                .into_owned(),
            name: f.name,
            added: cst(f.created_at),
            last_used: f
                .last_used_at
                .map(cst)
                .unwrap_or_else(|| locale.t("second_factor.manage.never").into_owned()),
        })
        .collect();
    let mut layout = Layout::for_user(user);
    let passkeys = state.webauthn.is_some();
    if passkeys {
        layout.scripts.push(crate::assets::url("passkey.js"));
    }
    Ok(ManagePage {
        passkeys,
        layout,
        csrf_token: user.csrf_token.clone(),
        factors,
        recovery_left: second_factor::recovery_codes_left(&state.db, user.account.id).await?,
        required: second_factor::required(user.role()),
        enrolment,
        error,
        recovery_codes,
    })
}

/// Only staff and administrators have a second factor (parties and agents sign in with their
/// password and see only their own cases).
pub(super) async fn staff_or_admin(req: &HttpRequest, user: &CurrentUser) -> AppResult<()> {
    if second_factor::required(user.role()) {
        Ok(())
    } else {
        Err(crate::auth::extract::refuse(req, user, "role").await)
    }
}

/// `GET /account/second-factor`: the account's factors, and adding one.
pub async fn view_manage_get(
    PendingUser(user): PendingUser,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    staff_or_admin(&req, &user).await?;
    render(&manage_page(&state, &user, None, None, Vec::new()).await?)
}

/// `POST /account/second-factor/totp`: starts adding an authenticator app (a new key each time;
/// an unfinished earlier one is dropped).
pub async fn totp_begin_post(
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
    let issuer = crate::i18n::Locale::Zh.t("site.name").into_owned();
    let enrolment = second_factor::begin_totp(
        &state.db,
        &state.key,
        &user.account,
        user.session_id,
        &issuer,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    let qr = super::qr_svg(
        &enrolment.uri,
        &crate::i18n::t("second_factor.enrol.qr_label"),
        180,
    );
    let mut res = render(
        &manage_page(
            &state,
            &user,
            Some((enrolment.factor_id, enrolment.secret, qr)),
            None,
            Vec::new(),
        )
        .await?,
    )?;
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    factor_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    code: String,
}

/// `POST /account/second-factor/totp/confirm`: the app's first code proves it works; the
/// recovery codes are shown once, and the session counts as having passed.
pub async fn totp_confirm_post(
    PendingUser(user): PendingUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<ConfirmForm>,
) -> AppResult<HttpResponse> {
    staff_or_admin(&req, &user).await?;
    // Adding a factor beside one that exists asks for a fresh pass, as beginning it did.
    if !second_factor::confirmed(&state.db, user.account.id)
        .await?
        .is_empty()
    {
        user.require_step_up("/account/second-factor")?;
    }
    let form = form.into_inner();
    let factor_id = Uuid::parse_str(form.factor_id.trim()).unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    let name = second_factor::factor_name(&form.name, "totp");
    let outcome = second_factor::confirm_totp(
        &state.db,
        &state.key,
        &user.account,
        user.session_id,
        factor_id,
        &name,
        &form.code,
        now,
    )
    .await?;
    let details = match &outcome {
        Ok(_) => {
            serde_json::json!({ "kind": "totp", "factor_id": factor_id, "recovery_codes": second_factor::RECOVERY_CODES })
        }
        Err(r) => serde_json::json!({ "kind": "totp", "reason": r.as_str() }),
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
        Ok(codes) => {
            second_factor::mark_session(&state.db, user.session_id, now).await?;
            let mut res = render(&manage_page(&state, &user, None, None, codes).await?)?;
            res.headers_mut().insert(
                actix_web::http::header::CACHE_CONTROL,
                actix_web::http::header::HeaderValue::from_static("no-store"),
            );
            Ok(res)
        }
        Err(refused) => try_again(&state, &user, factor_id, refused, now).await,
    }
}

/// The enrolment page again (400) after a wrong or replayed first code: the same key, so the
/// person can try the next code of the app they set up.
async fn try_again(
    state: &AppState,
    user: &CurrentUser,
    factor_id: Uuid,
    refused: Refused,
    now: time::OffsetDateTime,
) -> AppResult<HttpResponse> {
    let issuer = crate::i18n::Locale::Zh.t("site.name").into_owned();
    let enrolment = second_factor::pending_totp(
        &state.db,
        &state.key,
        &user.account,
        user.session_id,
        factor_id,
        &issuer,
        now,
    )
    .await?
    .map(|e| {
        (
            e.factor_id,
            e.secret,
            super::qr_svg(&e.uri, &crate::i18n::t("second_factor.enrol.qr_label"), 180),
        )
    });
    let key = if refused == Refused::Replayed {
        "second_factor.replayed"
    } else {
        "second_factor.wrong"
    };
    render_status(
        actix_web::http::StatusCode::BAD_REQUEST,
        &manage_page(
            state,
            user,
            enrolment,
            Some(crate::i18n::t(key)),
            Vec::new(),
        )
        .await?,
    )
}

/// `POST /account/second-factor/{id}/remove`: removes a factor (a sensitive act; the last one of
/// a staff member or administrator stays).
pub async fn remove_post(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    staff_or_admin(&req, &user).await?;
    user.require_step_up("/account/second-factor")?;
    let id = path.into_inner();
    let factors = second_factor::confirmed(&state.db, user.account.id).await?;
    if !factors.iter().any(|f| f.id == id) {
        return Err(AppError::NotFound);
    }
    if second_factor::required(user.role()) && factors.len() <= 1 {
        return render_status(
            actix_web::http::StatusCode::BAD_REQUEST,
            &manage_page(
                &state,
                &user,
                None,
                Some(crate::i18n::t("second_factor.manage.keep_one")),
                Vec::new(),
            )
            .await?,
        );
    }
    let details = serde_json::json!({ "factor_id": id });
    audit_factor(
        &state,
        &req,
        &user,
        Action::SecondFactorRemove,
        true,
        details,
    )
    .await?;
    second_factor::remove(&state.db, user.account.id, id).await?;
    Ok(flash::see_other(
        "/account/second-factor",
        Flash::new("second_factor_removed"),
    ))
}
