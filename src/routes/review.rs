//! A party's review application (复核申请) from the case page: the form while the window is
//! open, and afterwards the application itself — printable, with its receipt number and time,
//! and where it stands.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use uuid::Uuid;

use super::{Layout, cst, render, render_status};
use crate::applications::{ApplicationError, review};
use crate::auth::{CurrentUser, client_of};
use crate::db::entities::{case, material, review_application};
use crate::error::AppResult;
use crate::policy::{CaseAction, CasePermit};
use crate::routes::flash::{self, Flash};
use crate::state::AppState;
use crate::vocab::Role;

/// The files an application may carry: scans, photos, PDFs.
const ATTACHMENT_TYPES: &[&str] = &["application/pdf", "image/jpeg", "image/png"];

pub struct Choice {
    pub id: Uuid,
    pub label: String,
    pub checked: bool,
}

/// The application as the page (and its print) shows it.
pub struct Filed {
    pub receipt_no: String,
    pub filed_at: String,
    pub party: String,
    pub filed_by: String,
    pub grounds: String,
    pub contested: Vec<String>,
    pub attachments: Vec<String>,
    pub state: String,
    /// Each step after filing, as "date — what".
    pub steps: Vec<String>,
    pub refusal_reason: Option<String>,
    /// To whom the printed application is addressed: the reviewing authority once known, else
    /// the authority one level up, through the brigade.
    pub addressee: String,
    /// The applicant's contact on file (the party's mobile), or none (a line to write it on).
    pub contact: Option<String>,
}

#[derive(Template)]
#[template(path = "cases/review.html")]
struct ReviewPage {
    layout: Layout,
    case_id: Uuid,
    number: String,
    csrf_token: String,
    /// The application made for this party, if any (then no form).
    filed: Option<Filed>,
    /// Why no application can be made now (no form then either).
    closed: Option<String>,
    /// The last day, while the window is open.
    deadline: Option<String>,
    choices: Vec<Choice>,
    grounds: String,
    error: Option<(&'static str, String)>,
    max_files: usize,
}

async fn gate(
    state: &AppState,
    user: &CurrentUser,
    req: &HttpRequest,
    case_id: Uuid,
) -> AppResult<(CasePermit, case::Model)> {
    if !matches!(user.role(), Role::Party | Role::Agent) {
        return Err(crate::auth::extract::refuse(req, user, "role").await);
    }
    let (permit, facts) = crate::cases::authorize(
        &state.db,
        &state.audit,
        &user.account,
        client_of(req),
        CaseAction::View,
        case_id,
    )
    .await?;
    Ok((permit, facts.case))
}

/// The steps after filing, as "date — what" in the page's language (the party's page and the
/// staff case page alike).
pub fn step_lines(app: &review_application::Model) -> Vec<String> {
    let locale = crate::i18n::Locale::current();
    let mut steps = Vec::new();
    if let (Some(on), Some(authority)) = (app.forwarded_on, &app.authority) {
        steps.push(locale.tf(
            "review.step.forwarded",
            &[("date", &locale.date(on)), ("authority", authority)],
        ));
    }
    if let Some(on) = app.decided_on {
        let key = match app.state {
            crate::vocab::ReviewState::Refused => "review.step.refused",
            _ => "review.step.accepted",
        };
        steps.push(locale.tf(key, &[("date", &locale.date(on))]));
    }
    if let Some(on) = app.concluded_on {
        steps.push(locale.tf("review.step.concluded", &[("date", &locale.date(on))]));
    }
    steps
}

async fn describe(state: &AppState, app: &review_application::Model) -> AppResult<Filed> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let locale = crate::i18n::Locale::current();
    let mut ids = review::ids(&app.contested);
    ids.extend(review::ids(&app.attachments));
    let materials: Vec<material::Model> = material::Entity::find()
        .filter(material::Column::Id.is_in(ids))
        .all(&state.db)
        .await?;
    let titles = |json: &str| -> Vec<String> {
        review::ids(json)
            .iter()
            .filter_map(|id| materials.iter().find(|m| m.id == *id))
            .map(|m| {
                locale.tf(
                    "review.kind_title",
                    &[("kind", &locale.label(m.kind)), ("title", &m.title)],
                )
            })
            .collect()
    };
    let party = crate::db::entities::case_party::Entity::find_by_id(app.party_id)
        .one(&state.db)
        .await?;
    let filer = crate::db::entities::account::Entity::find_by_id(app.filed_by)
        .one(&state.db)
        .await?;
    let brigade = match case::Entity::find_by_id(app.case_id).one(&state.db).await? {
        Some(c) => crate::db::entities::department::Entity::find_by_id(c.department_id)
            .one(&state.db)
            .await?
            .map(|d| d.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let addressee = match &app.authority {
        Some(authority) => authority.clone(),
        None => locale.tf("review.print.addressee_via", &[("brigade", &brigade)]),
    };
    Ok(Filed {
        addressee,
        contact: party.as_ref().and_then(|p| {
            let sealed = p.mobile.as_deref()?;
            state.key.open_contact(crate::keys::Contact::Mobile, sealed)
        }),
        receipt_no: app.receipt_no.clone(),
        filed_at: cst(app.filed_at),
        party: party
            .map(|p| format!("{} {}", locale.party_label(&p.label), p.name))
            .unwrap_or_default(),
        filed_by: filer
            .map(|a| format!("{}（{}）", a.display_name, locale.label(a.role)))
            .unwrap_or_default(),
        grounds: app.grounds.clone(),
        contested: titles(&app.contested),
        attachments: titles(&app.attachments),
        state: locale.label(app.state),
        steps: step_lines(app),
        refusal_reason: app.refusal_reason.clone(),
    })
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    permit: &CasePermit,
    case: case::Model,
    grounds: String,
    contested: &[Uuid],
    error: Option<(&'static str, String)>,
) -> AppResult<ReviewPage> {
    let locale = crate::i18n::Locale::current();
    let existing = match permit.as_party {
        Some(p) => review::of_party(&state.db, case.id, p).await?,
        None => None,
    };
    let filed = match &existing {
        Some(app) => Some(describe(state, app).await?),
        None => None,
    };
    let window = review::window(&case, state.audit.now());
    let choices = if filed.is_none() && window.is_ok() {
        crate::materials::party_view(&state.db, permit, &user.account)
            .await?
            .visible
            .into_iter()
            .map(|m| Choice {
                id: m.id,
                checked: contested.contains(&m.id),
                label: locale.tf(
                    "review.kind_title",
                    &[("kind", &locale.label(m.kind)), ("title", &m.title)],
                ),
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut layout = Layout::for_user(user);
    if filed.is_some() {
        layout.scripts.push(crate::assets::url("page-actions.js"));
    }
    Ok(ReviewPage {
        layout,
        case_id: case.id,
        number: case.case_number,
        csrf_token: user.csrf_token.clone(),
        closed: match (&filed, &window) {
            (None, Err(e)) => Some(crate::i18n::pick(&e.to_string())),
            _ => None,
        },
        deadline: window.ok().map(|d| {
            let today = state
                .audit
                .now()
                .to_offset(time::macros::offset!(+8))
                .date();
            super::deadline::words(locale, d, today)
        }),
        filed,
        choices,
        grounds,
        error,
        max_files: review::MAX_ATTACHMENTS,
    })
}

/// `GET /cases/{id}/review`: the form, or the application made.
pub async fn view_review_get(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let (permit, case) = gate(&state, &user, &req, path.into_inner()).await?;
    render(&page(&state, &user, &permit, case, String::new(), &[], None).await?)
}

/// `POST /cases/{id}/review` (multipart: `grounds`, `contested` repeated, `attachment` files).
pub async fn review_file_post(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    mut payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    let (permit, case) = gate(&state, &user, &req, path.into_inner()).await?;
    // One box per material the party may contest: the form's size follows the case's.
    let choices = crate::materials::party_view(&state.db, &permit, &user.account)
        .await?
        .visible
        .len();
    let rule = super::uploads::Rule {
        file_field: "attachment",
        max_files: review::MAX_ATTACHMENTS,
        // The grounds, the files, the boxes, and a few to spare.
        max_parts: 16 + review::MAX_ATTACHMENTS + choices,
        // The grounds (5,000 characters) may take 20 KB; each box's name and id under 64 bytes.
        field_limit: 32 * 1024,
        text_limit: 40 * 1024 + 64 * choices,
        allowed: ATTACHMENT_TYPES,
        allowed_text: "PDF、JPEG、PNG",
        file_limit: crate::applications::FILE_BYTES,
    };
    let form = super::uploads::read(&state, case.id, &mut payload, &rule).await?;
    let contested: Vec<Uuid> = form
        .all("contested")
        .iter()
        .filter_map(|v| Uuid::parse_str(v.trim()).ok())
        .collect();
    let grounds = form.get("grounds").to_owned();
    let outcome = match &form.problem {
        Some(p) => Err(ApplicationError::field("attachment", p)),
        None => {
            review::file(
                &state.db,
                &state.audit,
                state.channels,
                &user.account,
                &permit,
                &case,
                review::NewReview {
                    grounds: grounds.clone(),
                    contested: contested.clone(),
                },
                &form.files,
            )
            .await
        }
    };
    match outcome {
        Ok(app) => Ok(flash::see_other(
            &format!("/cases/{}/review", case.id),
            Flash::new("review_filed").with("receipt", &app.receipt_no),
        )),
        Err(e) => {
            super::uploads::discard(&state, form.files.iter()).await;
            let field = match &e {
                ApplicationError::Field { field, .. } => *field,
                ApplicationError::Refused { .. } => "",
                _ => return Err(e.into()),
            };
            let message = crate::i18n::pick(&e.to_string());
            let page = page(
                &state,
                &user,
                &permit,
                case,
                grounds,
                &contested,
                Some((field, message)),
            )
            .await?;
            render_status(actix_web::http::StatusCode::BAD_REQUEST, &page)
        }
    }
}
