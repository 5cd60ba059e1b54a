//! After filing: the application's private status page (behind its key), its voucher, adding
//! it to an account the number already had, and the list of the applications a browser filed.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::super::auth::{anonymous_token, with_cookie};
use super::super::{Layout, cst, render};
use crate::applications::{access, grant};
use crate::auth::{CurrentUser, client_of};
use crate::db::entities::{access_application, case, department};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::vocab::AccessState;

#[derive(Deserialize)]
pub struct StatusQuery {
    #[serde(default)]
    key: String,
    #[serde(default)]
    new: Option<String>,
}

#[derive(Template)]
#[template(path = "public/apply_status.html")]
struct StatusPage {
    layout: Layout,
    csrf_token: String,
    app: access_application::Model,
    case_number: String,
    brigade: String,
    kind: String,
    filed_at: String,
    state: String,
    scope: Option<String>,
    key: String,
    new: bool,
    /// The voucher, with its code if the account is not activated.
    voucher: Option<grant::Voucher>,
    portal: String,
    /// The page's own address (to copy or photograph as a QR code: the way back to it).
    link: String,
    qr: String,
    /// While pending, how the outcome will reach the applicant (`apply.pending.*`).
    awaited: String,
}

/// The application `id` if `key` opens it; anything else is not found (no hint whether the
/// application exists).
async fn by_key(
    state: &AppState,
    id: Uuid,
    key: &str,
) -> AppResult<(access_application::Model, case::Model, String)> {
    use sea_orm::EntityTrait;
    let app = access::by_status_key(&state.db, &state.key, id, key)
        .await?
        .ok_or(AppError::NotFound)?;
    let case = case::Entity::find_by_id(app.case_id)
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound)?;
    let brigade = department::Entity::find_by_id(app.department_id)
        .one(&state.db)
        .await?
        .map(|d| d.name)
        .unwrap_or_default();
    Ok((app, case, brigade))
}

fn status_page(
    state: &AppState,
    csrf_token: String,
    (mut app, case, brigade): (access_application::Model, case::Model, String),
    key: String,
    new: bool,
    voucher: Option<grant::Voucher>,
) -> StatusPage {
    let locale = crate::i18n::Locale::current();
    // The page's form signs in with the number the application gave: opened for its holder
    // alone (it is sealed at rest).
    app.mobile = state
        .key
        .open_contact(crate::keys::Contact::Mobile, &app.mobile)
        .unwrap_or_default();
    let scope =
        (app.state == AccessState::Approved).then(|| scope_text(&app, "staff.access.staff_scope"));
    let mut layout = Layout::new();
    layout.scripts.push(crate::assets::url("page-actions.js"));
    let link = format!("{}apply/{}?key={key}", state.settings.public_url, app.id);
    StatusPage {
        qr: super::super::qr_svg(&link, &crate::i18n::t("apply.link_qr_label"), 140),
        link,
        layout,
        csrf_token,
        case_number: case.case_number,
        brigade,
        kind: locale.label(app.kind),
        filed_at: cst(app.filed_at),
        state: locale.label(app.state),
        scope,
        key,
        new,
        voucher,
        portal: state.settings.public_url.to_string(),
        awaited: crate::notifications::Told::awaited(state.channels, &app).key("apply.pending"),
        app,
    }
}

/// What an approved application grants, worded by catalog `key` (with `%{kinds}`, `%{mode}`
/// and `%{until}`) in the page's language.
pub fn scope_text(app: &access_application::Model, key: &str) -> String {
    let locale = crate::i18n::Locale::current();
    let kinds: Vec<String> = app.kinds().into_iter().map(|k| locale.label(k)).collect();
    locale.tf(
        key,
        &[
            (
                "kinds",
                &kinds.join(locale.t("access.list_separator").as_ref()),
            ),
            (
                "mode",
                &app.granted_mode
                    .map(|m| locale.label(m))
                    .unwrap_or_default(),
            ),
            (
                "until",
                &app.granted_until
                    .map(|d| locale.date(d))
                    .unwrap_or_default(),
            ),
        ],
    )
}

/// `GET /apply/{id}?key=…`: where the application stands (the applicant's private link).
pub async fn view_apply_status_get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    query: web::Query<StatusQuery>,
) -> AppResult<HttpResponse> {
    let query = query.into_inner();
    let found = by_key(&state, path.into_inner(), &query.key).await?;
    let (csrf_token, cookie) = anonymous_token(&req, &state);
    let page = status_page(
        &state,
        csrf_token,
        found,
        query.key,
        query.new.is_some(),
        None,
    );
    let mut res = render(&page)?;
    // The link is the applicant's key: never cached (no page sends a referrer at all).
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    with_cookie(res, cookie)
}

#[derive(Deserialize)]
pub struct VoucherForm {
    #[serde(default)]
    key: String,
}

/// `POST /apply/{id}/voucher` (form: `key`): what the status page's button posted before the
/// voucher became a page of its own: `303` to it.
pub async fn apply_voucher_post(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    form: web::Form<VoucherForm>,
) -> AppResult<HttpResponse> {
    let key = form.into_inner().key;
    // Without its key an application does not exist, here as on every page of it.
    let (app, ..) = by_key(&state, path.into_inner(), &key).await?;
    let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
    Ok(super::super::see_other(&format!(
        "/apply/{}/voucher?key={encoded}",
        app.id
    )))
}

/// `GET /apply/{id}/voucher?key=…`: the query voucher of an approved application — printable,
/// with its one-time code while the account is not activated (the same code on every reload
/// while it works), and the activation form filled in with the number; audited.
pub async fn view_apply_voucher_get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    query: web::Query<StatusQuery>,
) -> AppResult<HttpResponse> {
    let key = query.into_inner().key;
    let found = by_key(&state, path.into_inner(), &key).await?;
    let voucher = grant::voucher(
        &state.db,
        &state.audit,
        &state.key,
        &found.0,
        client_of(&req),
    )
    .await
    .map_err(AppError::from)?;
    let (csrf_token, cookie) = anonymous_token(&req, &state);
    let page = status_page(&state, csrf_token, found, key, false, Some(voucher));
    let mut res = render(&page)?;
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    with_cookie(res, cookie)
}

#[derive(Template)]
#[template(path = "public/apply_claim.html")]
struct ClaimPage {
    layout: Layout,
    csrf_token: String,
    receipt_no: String,
    case_number: String,
    brigade: String,
    key: String,
    app_id: Uuid,
    /// The account signed in (masked), and whether it is the one the application's number opens.
    login: String,
    same_account: bool,
    already: bool,
}

/// `GET /apply/{id}/claim?key=…`: the applicant of an application whose number already had an
/// account, signed in to that account (the sign-in page first if need be), adds it there with
/// one button. Until then its approval opens nothing.
pub async fn view_claim_get(
    user: CurrentUser,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    query: web::Query<StatusQuery>,
) -> AppResult<HttpResponse> {
    let key = query.into_inner().key;
    let (app, case, brigade) = by_key(&state, path.into_inner(), &key).await?;
    let mut res = render(&ClaimPage {
        layout: Layout::for_user(&user),
        csrf_token: user.csrf_token.clone(),
        receipt_no: app.receipt_no.clone(),
        case_number: case.case_number,
        brigade,
        key,
        app_id: app.id,
        login: user.account.login_masked.clone(),
        same_account: app.account_id == Some(user.account.id) && app.kind == user.role(),
        already: app.account_verified,
    })?;
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

/// `POST /apply/{id}/claim` (form: `key`): adds the application to the signed-in account
/// (`grant::claim`: the number's account, proved by signing in; the application, proved by
/// its key); audited.
pub async fn claim_post(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    form: web::Form<VoucherForm>,
) -> AppResult<HttpResponse> {
    let key = form.into_inner().key;
    let (app, ..) = by_key(&state, path.into_inner(), &key).await?;
    let claimed = grant::claim(
        &state.db,
        &state.audit,
        &app,
        &user.account,
        client_of(&req),
    )
    .await
    .map_err(AppError::from)?;
    Ok(super::super::flash::see_other(
        super::super::home_for(user.role()),
        super::super::flash::Flash::new("application_claimed").with("receipt", &claimed.receipt_no),
    ))
}

/// The cookie that remembers, in the browser that filed them, the applications filed there
/// (their ids and status keys, sealed): the way back to the status page for an applicant who
/// closed the tab or lost the link, without any account.
const MINE_COOKIE: &str = "portal-applications";
/// How many applications one browser remembers (the newest).
const MINE_KEPT: usize = 20;
/// How long it remembers them: the longest a grant runs, and a month to collect it.
const MINE_DAYS: i64 = 210;

/// The applications the browser's cookie remembers: (id, status key), newest first.
fn remembered(state: &AppState, req: &HttpRequest) -> Vec<(Uuid, String)> {
    req.cookie(MINE_COOKIE)
        .and_then(|c| state.key.open(MINE_COOKIE, b"", c.value()))
        .and_then(|plain| serde_json::from_slice::<Vec<(Uuid, String)>>(&plain).ok())
        .unwrap_or_default()
}

/// Adds a just-filed application to what this browser remembers.
pub fn remember(
    state: &AppState,
    req: &HttpRequest,
    res: &mut HttpResponse,
    id: Uuid,
    status_key: &str,
) -> AppResult<()> {
    let mut mine = remembered(state, req);
    mine.retain(|(known, _)| *known != id);
    mine.insert(0, (id, status_key.to_owned()));
    mine.truncate(MINE_KEPT);
    let plain = serde_json::to_vec(&mine).map_err(AppError::internal)?;
    let sealed = state
        .key
        .seal(MINE_COOKIE, b"", &plain)
        .ok_or_else(|| AppError::internal("cannot seal the applications cookie"))?;
    let cookie = actix_web::cookie::Cookie::build(MINE_COOKIE, sealed)
        .path("/apply")
        .http_only(true)
        .secure(state.settings.served_over_tls())
        .same_site(actix_web::cookie::SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::days(MINE_DAYS))
        .finish();
    res.add_cookie(&cookie).map_err(AppError::internal)
}

pub struct MineRow {
    pub receipt_no: String,
    pub case_number: String,
    pub filed_at: String,
    pub state: String,
    pub link: String,
}

#[derive(Template)]
#[template(path = "public/apply_mine.html")]
struct MinePage {
    layout: Layout,
    rows: Vec<MineRow>,
    /// This installation sends SMS: an application filed elsewhere is found by its receipt and
    /// mobile numbers (`lookup`).
    sms: bool,
}

/// `GET /apply/mine`: "查询申请进度" — the applications filed in this browser, each with its
/// status page (the way back for an applicant who lost the link); an applicant with an
/// account also finds them under "My cases" after signing in, and, where SMS is sent, anyone
/// by the receipt and mobile numbers (`/apply/find`).
pub async fn view_apply_mine_get(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let locale = crate::i18n::Locale::current();
    let mut rows = Vec::new();
    for (id, key) in remembered(&state, &req) {
        // A key that no longer opens its application (renewed from another browser: `lookup`)
        // is skipped.
        let Ok((app, case, _)) = by_key(&state, id, &key).await else {
            continue;
        };
        rows.push(MineRow {
            receipt_no: app.receipt_no,
            case_number: case.case_number,
            filed_at: cst(app.filed_at),
            state: locale.label(app.state),
            link: format!("/apply/{id}?key={key}"),
        });
    }
    let mut res = render(&MinePage {
        layout: Layout::new(),
        rows,
        sms: state.channels.sms,
    })?;
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}
