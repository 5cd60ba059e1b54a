//! The public access application (查询申请) of a vehicle owner or an insurer's staff member:
//! the form (no account needed), its private status page, and the query voucher (查询凭证) of
//! an approved application — printable, with the one-time code that opens the account.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;
use uuid::Uuid;

use super::auth::{anonymous_token, with_cookie};
use super::{Layout, cst, render, render_status};
use crate::applications::{ApplicationError, access, grant};
use crate::auth::client_of;
use crate::db::entities::{access_application, case, department};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::vocab::AccessState;

/// What a proof may be: a signed authorisation or certificate, scanned or as a PDF.
const PROOF_TYPES: &[&str] = &["application/pdf", "image/jpeg", "image/png"];

pub struct Brigade {
    pub id: Uuid,
    pub name: String,
}

#[derive(Template)]
#[template(path = "public/apply.html")]
struct ApplyPage {
    layout: Layout,
    csrf_token: String,
    brigades: Vec<Brigade>,
    typed: access::NewAccess,
    error: Option<(&'static str, String)>,
}

async fn brigades(state: &AppState) -> AppResult<Vec<Brigade>> {
    Ok(crate::accounts::departments(&state.db)
        .await?
        .into_iter()
        .map(|d: department::Model| Brigade {
            id: d.id,
            name: d.name,
        })
        .collect())
}

/// `GET /apply`
pub async fn view_apply_get(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (csrf_token, cookie) = anonymous_token(&req, &state);
    let page = ApplyPage {
        layout: Layout::new(),
        csrf_token,
        brigades: brigades(&state).await?,
        typed: access::NewAccess {
            kind: "insurer".into(),
            ..Default::default()
        },
        error: None,
    };
    with_cookie(render(&page)?, cookie)
}

fn set(typed: &mut access::NewAccess, name: &str, value: String) {
    match name {
        "kind" => typed.kind = value,
        "brigade" => typed.brigade = value,
        "case_number" => typed.case_number = value,
        "applicant_name" => typed.applicant_name = value,
        "organisation" => typed.organisation = value,
        "credit_code" => typed.credit_code = value,
        "plate" => typed.plate = value,
        "policy_no" => typed.policy_no = value,
        "mobile" => typed.mobile = value,
        "email" => typed.email = value,
        _ => {}
    }
}

/// `POST /apply` (multipart: the fields, then the `proof` file). Counted against the limits per
/// address before anything is read and per case before the file is kept; the file is stored
/// only once the fields have passed their checks.
pub async fn apply_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    let client = client_of(&req);
    let now = state.audit.now();
    if !access::within_limits(
        &state.db,
        state.settings.applications_per_hour,
        client.0.as_deref(),
        None,
        now,
    )
    .await?
    {
        return Err(AppError::TooManyAttempts);
    }
    let rule = super::uploads::Rule {
        file_field: "proof",
        max_files: 1,
        field_limit: 4096,
        allowed: PROOF_TYPES,
        allowed_text: "PDF、JPEG、PNG",
        file_limit: crate::applications::FILE_BYTES,
    };
    let mut typed = access::NewAccess::default();
    let mut checked: Option<Result<access::Checked, ApplicationError>> = None;
    let mut proof = None;
    let read: AppResult<()> = async {
        while let Some(field) = payload.next().await {
            let field = field.map_err(super::uploads::multipart_error)?;
            let name = field.name().unwrap_or("").to_owned();
            if name != rule.file_field {
                let value = super::uploads::read_text(field, rule.field_limit).await?;
                set(&mut typed, &name, value);
                continue;
            }
            if checked.is_some() {
                super::uploads::drain(field).await?;
                continue;
            }
            let result = access::check(&state.db, &typed).await;
            let result = match result {
                Ok(c)
                    if !access::within_limits(&state.db, 0, None, Some(c.case.id), now).await? =>
                {
                    return Err(AppError::TooManyAttempts);
                }
                Ok(c) => match super::uploads::receive_file(&state, c.case.id, field, &rule).await?
                {
                    Ok(received) => {
                        proof = Some(received);
                        Ok(c)
                    }
                    Err(problem) => Err(ApplicationError::field("proof", &problem)),
                },
                Err(e) => {
                    super::uploads::drain(field).await?;
                    Err(e)
                }
            };
            checked = Some(result);
        }
        Ok(())
    }
    .await;
    if let Err(e) = read {
        super::uploads::discard(&state, proof.iter()).await;
        return Err(e);
    }
    let outcome = match (checked, &proof) {
        (Some(Ok(c)), Some(p)) => {
            access::file(&state.db, &state.audit, &state.key, c, p, client).await
        }
        (Some(Err(e)), _) => Err(e),
        (None, _) | (Some(Ok(_)), None) => match access::check(&state.db, &typed).await {
            Err(e) => Err(e),
            Ok(_) => Err(ApplicationError::field(
                "proof",
                "请上传签字的授权书或证明材料（PDF、JPEG 或 PNG） (upload the signed authorisation or proof: PDF, JPEG or PNG)",
            )),
        },
    };
    match outcome {
        Ok(filed) => Ok(super::see_other(&format!(
            "/apply/{}?key={}&new=1",
            filed.application.id, filed.status_key
        ))),
        Err(e) => {
            super::uploads::discard(&state, proof.iter()).await;
            let field = match &e {
                ApplicationError::Field { field, .. } => *field,
                ApplicationError::Refused { .. } => "",
                _ => return Err(e.into()),
            };
            let (csrf_token, cookie) = anonymous_token(&req, &state);
            let page = ApplyPage {
                layout: Layout::new(),
                csrf_token,
                brigades: brigades(&state).await?,
                typed,
                error: Some((field, crate::i18n::pick(&e.to_string()))),
            };
            with_cookie(
                render_status(actix_web::http::StatusCode::BAD_REQUEST, &page)?,
                cookie,
            )
        }
    }
}

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
    /// The voucher just issued (shown once), with its code if the account is not activated.
    voucher: Option<grant::Voucher>,
    portal: String,
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
    (app, case, brigade): (access_application::Model, case::Model, String),
    key: String,
    new: bool,
    voucher: Option<grant::Voucher>,
) -> StatusPage {
    let locale = crate::i18n::Locale::current();
    let scope =
        (app.state == AccessState::Approved).then(|| scope_text(&app, "staff.access.staff_scope"));
    StatusPage {
        layout: Layout::new(),
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

/// `POST /apply/{id}/voucher` (form: `key`): the query voucher of an approved application,
/// with a fresh one-time code while the account is not activated; audited.
pub async fn apply_voucher_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    form: web::Form<VoucherForm>,
) -> AppResult<HttpResponse> {
    let key = form.into_inner().key;
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
