//! Staff pages, one module per area: the work queue (`queue`), the case list and case form
//! (`case_list`), a case's page (`case_page`, one builder per section) and its status (here),
//! its people (`parties`), its vehicles (`vehicles`) and its evidence (`materials`);
//! applications on the case page (`applications`), an access application's decision
//! (`decision`) and the ledger (`ledger`). Every handler takes `StaffUser`, and every case route
//! goes through `cases::authorize`.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::{Date, OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use super::{Layout, confirm, cst, render, render_status};
use crate::auth::identifier::{self, Identifier};
use crate::auth::{StaffUser, client_of};
use crate::cases::{self, CaseDetails, CaseError, NewParty, Search, StatusChange};
use crate::db::entities::{case, department};
use crate::error::{AppError, AppResult};
use crate::i18n::{Locale, t};
use crate::policy::CaseAction;
use crate::routes::flash::{self, Flash};
use crate::state::AppState;
use crate::vocab::{CaseStatus, MaterialKind};
use sea_orm::EntityTrait;

mod applications;
mod case_list;
mod case_page;
mod decision;
mod ledger;
mod materials;
mod parties;
mod queue;
mod redact;
mod timeline;
mod vehicles;

pub use applications::review_step_post;
pub use case_list::*;
pub use decision::{access_decide_post, access_proof_get, view_access_application_get};
pub use ledger::{ledger_csv_get, view_ledger_get};
pub use materials::*;
pub use parties::*;
pub use queue::*;
pub use redact::{
    page_asked, redact_post, redaction_asked, redaction_review_post, view_redact_get,
};
pub use timeline::milestone_post;
pub use vehicles::{vehicle_add_post, vehicle_remove_post};

use case_page::{Typed, case_page, case_page_typed};

const CST: time::UtcOffset = time::macros::offset!(+8);
const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");
const DATETIME: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");

fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), DATE).ok()
}

/// Bytes for people: 1.5 MB, 230 KB.
pub fn human_size(bytes: i64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.0} KB", b / 1024.0)
    } else {
        Locale::current().tf("staff.size_bytes", &[("n", &bytes.to_string())])
    }
}

/// "Party 甲, 张伟".
fn party_named(label: &str, name: &str) -> String {
    Locale::current().tf("staff.party_named", &[("label", label), ("name", name)])
}

/// A delegation's days: "2026-11-29 至 2027-02-27" (its last day, not the instant it ends).
fn period(from: OffsetDateTime, until: OffsetDateTime) -> String {
    let (first, last) = cases::delegation_days(from, until);
    let locale = Locale::current();
    locale.tf(
        "staff.period",
        &[("from", &locale.date(first)), ("until", &locale.date(last))],
    )
}

async fn authorize(
    state: &AppState,
    staff: &StaffUser,
    req: &HttpRequest,
    id: Uuid,
) -> AppResult<(crate::policy::CasePermit, case::Model)> {
    let (permit, facts) = cases::authorize(
        &state.db,
        &state.audit,
        &staff.0.account,
        client_of(req),
        CaseAction::Manage,
        id,
    )
    .await?;
    Ok((permit, facts.case))
}

/// `GET /staff/cases/{id}`
pub async fn view_case_get(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let (_, case) = authorize(&state, &staff, &req, path.into_inner()).await?;
    render(&case_page(&state, &staff, case, None).await?)
}

/// The message of a refused form in the page's language (domain messages written
/// `中文 (English)` are picked; Chinese-only ones stay Chinese).
fn form_error(e: CaseError) -> Result<String, AppError> {
    match e {
        CaseError::Invalid(m) | CaseError::Forbidden(m) | CaseError::Field { message: m, .. } => {
            Ok(crate::i18n::pick(&m))
        }
        other => Err(other.into()),
    }
}

/// The case page again (400) with a registration form as it was typed, the field at fault
/// marked and the reason next to it.
async fn refused_typed(
    state: &AppState,
    staff: &StaffUser,
    case: case::Model,
    e: CaseError,
    form: &'static str,
    values: Vec<(String, String)>,
) -> AppResult<HttpResponse> {
    // The domain names the person's identifier "identifier"; on the agent form it is the
    // agent's.
    let fault = match (e.fault(), form) {
        (Some("identifier"), "agent") => Some("agent_identifier"),
        (fault, _) => fault,
    };
    let message = form_error(e)?;
    let typed = Typed {
        form,
        values,
        fault,
        message,
    };
    render_status(
        actix_web::http::StatusCode::BAD_REQUEST,
        &case_page_typed(state, staff, case, None, typed).await?,
    )
}

async fn refused(
    state: &AppState,
    staff: &StaffUser,
    case: case::Model,
    e: CaseError,
) -> AppResult<HttpResponse> {
    let message = form_error(e)?;
    render_status(
        actix_web::http::StatusCode::BAD_REQUEST,
        &case_page(state, staff, case, Some(message)).await?,
    )
}

#[derive(Deserialize)]
pub struct StatusForm {
    to: String,
    #[serde(default)]
    service_kind: String,
    #[serde(default)]
    served_on: String,
    #[serde(default)]
    confirmed: String,
}

/// `POST /staff/cases/{id}/status`
pub async fn case_status_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    form: web::Form<StatusForm>,
) -> AppResult<HttpResponse> {
    let (permit, case) = authorize(&state, &staff, &req, path.into_inner()).await?;
    let id = case.id;
    let change = StatusChange {
        to: form.to.clone(),
        service_kind: Some(form.service_kind.clone()).filter(|k| !k.is_empty()),
        served_on: parse_date(&form.served_on),
    };
    // Every move is irreversible: a valid one is first confirmed, with what it starts.
    if !confirm::confirmed(&form.confirmed) {
        let checked = match cases::check_status_change(&case, &change) {
            Ok(checked) => checked,
            Err(e) => return refused(&state, &staff, case, e).await,
        };
        let locale = Locale::current();
        let document = checked
            .service_kind
            .map(|k| locale.label(k))
            .unwrap_or_default();
        let date = checked
            .served_on
            .map(|d| locale.date(d))
            .unwrap_or_default();
        let deadline = checked
            .review_deadline()
            .map(|d| locale.date(d))
            .unwrap_or_default();
        return confirm::ask(
            Layout::for_user(&staff.0),
            &staff.0.csrf_token,
            confirm::Ask {
                what: checked.to.as_str(),
                args: &[
                    ("document", &document),
                    ("date", &date),
                    ("deadline", &deadline),
                ],
                action: format!("/staff/cases/{id}/status"),
                fields: vec![
                    ("to".into(), form.to.clone()),
                    ("service_kind".into(), form.service_kind.clone()),
                    ("served_on".into(), form.served_on.clone()),
                ],
                back: format!("/staff/cases/{id}#status"),
            },
        );
    }
    match cases::change_status(
        &state.db,
        &state.audit,
        state.channels,
        &staff.0.account,
        &permit,
        case.clone(),
        change,
    )
    .await
    {
        Ok(changed) => Ok(flash::see_other(
            &format!("/staff/cases/{id}#status"),
            match changed.status {
                CaseStatus::Served => match cases::review_deadline(&changed) {
                    Some(deadline) => Flash::new("served").with_date("deadline", deadline),
                    None => Flash::new("status_changed"),
                },
                CaseStatus::Disclosing => Flash::new("status.disclosing"),
                CaseStatus::Closed => Flash::new("status.closed"),
                CaseStatus::Investigating => Flash::new("status_changed"),
            },
        )),
        Err(e) => refused(&state, &staff, case, e).await,
    }
}
