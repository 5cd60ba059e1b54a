//! Staff pages, one module per area: the work queue (`queue`), the case list and case form
//! (`case_list`), a case's page and status (here), its people (`parties`), its vehicles
//! (`vehicles`) and its evidence (`materials`); applications on the case page
//! (`applications`), an access application's decision (`decision`) and the ledger (`ledger`). Every handler takes `StaffUser`, and every case route goes through
//! `cases::authorize`.

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
use crate::vocab::{
    CaseStatus, MaterialKind, MaterialState, PartyRole, ServiceKind, WithholdGround,
};
use sea_orm::EntityTrait;

mod applications;
mod case_list;
mod decision;
mod ledger;
mod materials;
mod parties;
mod queue;
mod timeline;
mod vehicles;

pub use applications::review_step_post;
pub use case_list::*;
pub use decision::{access_decide_post, access_proof_get, view_access_application_get};
pub use ledger::{ledger_csv_get, view_ledger_get};
pub use materials::*;
pub use parties::*;
pub use queue::*;
pub use timeline::milestone_post;
pub use vehicles::{vehicle_add_post, vehicle_remove_post};

const CST: time::UtcOffset = time::macros::offset!(+8);
const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");
const DATETIME: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");

fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), DATE).ok()
}

pub struct MaterialRow {
    pub id: Uuid,
    pub kind: String,
    pub title: String,
    pub original_name: String,
    pub size: String,
    pub uploaded: String,
    /// Its state, with the ground if withheld.
    pub state: String,
    /// Its entry in the "correct (replace)" list: kind and title.
    pub choice: String,
    pub decidable: bool,
    pub released: bool,
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

pub struct DelegationRow {
    pub id: Uuid,
    pub agent: String,
    pub login: String,
    pub law_firm: String,
    pub principal: String,
    pub period: String,
    pub state: String,
    pub revocable: bool,
}

pub struct PartyRow {
    pub id: Uuid,
    pub label: String,
    pub name: String,
    pub role: String,
    pub login: String,
    pub activated: bool,
    /// Its entry in the principal list: "Party 甲, 张伟".
    pub choice: String,
}

#[derive(Template)]
#[template(path = "staff/case.html")]
struct CasePage {
    layout: Layout,
    csrf_token: String,
    case: case::Model,
    occurred: String,
    status: String,
    /// Fatal, complex, or ordinary.
    case_type: String,
    served: Option<String>,
    review_deadline: Option<String>,
    parties: Vec<PartyRow>,
    delegations: Vec<DelegationRow>,
    materials: Vec<MaterialRow>,
    kinds: Vec<super::Choice>,
    grounds: Vec<super::Choice>,
    can_disclose: bool,
    error: Option<String>,
    roles: Vec<super::Choice>,
    today: String,
    /// A refused registration form as it was typed, with the field at fault.
    typed: Typed,
    /// What the parties and agents were told, and where each SMS and e-mail stands.
    notices: Vec<super::inbox::SentRow>,
    /// The case's timeline (办理进度), corrected entries included.
    timeline: Vec<timeline::MilestoneRow>,
    stages: Vec<super::Choice>,
    /// The parties' review applications and the access applications of the case.
    applications: applications::CaseApplications,
    /// The case's vehicles (plates, insurers).
    vehicles: Vec<vehicles::VehicleRow>,
}

/// What was typed into one of the case page's forms when it was refused: shown again (nothing
/// to type twice), the field at fault marked (`aria-invalid`), the reason next to the form.
#[derive(Default)]
pub struct Typed {
    /// `party` or `agent`; empty when no form was refused.
    form: &'static str,
    values: Vec<(String, String)>,
    fault: Option<&'static str>,
    message: String,
}

impl Typed {
    /// What was typed into `field` of `form` (empty if another form, or nothing).
    pub fn value(&self, form: &str, field: &str) -> &str {
        if self.form != form {
            return "";
        }
        self.values
            .iter()
            .find(|(f, _)| f == field)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Whether `field` of `form` is the one at fault.
    pub fn faulty(&self, form: &str, field: &str) -> bool {
        self.form == form && self.fault == Some(field)
    }

    /// The reason `form` was refused, if it was.
    pub fn message(&self, form: &str) -> Option<&str> {
        (self.form == form).then_some(self.message.as_str())
    }
}

async fn case_page(
    state: &AppState,
    staff: &StaffUser,
    case: case::Model,
    error: Option<String>,
) -> AppResult<CasePage> {
    case_page_typed(state, staff, case, error, Typed::default()).await
}

async fn case_page_typed(
    state: &AppState,
    staff: &StaffUser,
    case: case::Model,
    error: Option<String>,
    typed: Typed,
) -> AppResult<CasePage> {
    let locale = Locale::current();
    let party_rows = cases::parties(&state.db, case.id).await?;
    let materials = crate::materials::all_of_case(&state.db, case.id)
        .await?
        .into_iter()
        .map(|m| MaterialRow {
            id: m.id,
            kind: crate::i18n::label(m.kind),
            size: human_size(m.size),
            uploaded: cst(m.uploaded_at),
            state: match (m.state, m.superseded_by.is_some(), m.withhold_ground) {
                (_, true, _) => t("staff.materials.superseded"),
                (MaterialState::Withheld, _, Some(g)) => locale.tf(
                    "staff.materials.withheld_on",
                    &[("ground", &locale.label(g))],
                ),
                (MaterialState::Draft, ..) if !m.kind.is_evidence() => {
                    t("staff.materials.internal")
                }
                (state, ..) => locale.label(state),
            },
            choice: locale.tf(
                "staff.materials.option",
                &[("kind", &crate::i18n::label(m.kind)), ("title", &m.title)],
            ),
            decidable: m.kind.is_evidence() && m.superseded_by.is_none(),
            released: m.state == MaterialState::Released,
            title: m.title,
            original_name: m.original_name,
        })
        .collect();
    let now = OffsetDateTime::now_utc();
    let delegations = cases::delegations(&state.db, case.id)
        .await?
        .into_iter()
        .map(|(d, a)| DelegationRow {
            id: d.id,
            agent: a
                .as_ref()
                .map(|a| a.display_name.clone())
                .unwrap_or_default(),
            login: a
                .as_ref()
                .map(|a| a.login_masked.clone())
                .unwrap_or_default(),
            law_firm: d.law_firm.clone().unwrap_or_default(),
            principal: party_rows
                .iter()
                .find(|(p, _)| p.id == d.principal_party_id)
                .map(|(p, _)| {
                    locale.tf(
                        "staff.principal_value",
                        &[("label", &p.label), ("name", &p.name)],
                    )
                })
                .unwrap_or_default(),
            period: period(d.valid_from, d.valid_until),
            state: t(if d.revoked_at.is_some() {
                "staff.agents.revoked"
            } else if d.current(now) {
                "staff.agents.current"
            } else if d.valid_until <= now {
                "staff.agents.expired"
            } else {
                "staff.agents.not_started"
            }),
            revocable: d.revoked_at.is_none() && d.valid_until > now,
        })
        .collect();
    let parties = party_rows
        .into_iter()
        .map(|(p, a)| PartyRow {
            id: p.id,
            choice: party_named(&p.label, &p.name),
            label: p.label,
            name: p.name,
            role: crate::i18n::label(p.role),
            login: a
                .as_ref()
                .map(|a| a.login_masked.clone())
                .unwrap_or_default(),
            activated: a.is_some_and(|a| a.password_hash.is_some()),
        })
        .collect();
    Ok(CasePage {
        layout: Layout::for_user(&staff.0),
        csrf_token: staff.0.csrf_token.clone(),
        occurred: cst(case.occurred_at),
        status: crate::i18n::label(case.status),
        case_type: case_type(&case),
        served: case.served_on.map(|d| {
            let document = t(if case.service_kind == Some(ServiceKind::Certificate) {
                "staff.case.certificate"
            } else {
                "staff.case.determination"
            });
            locale.tf(
                "staff.case.served_value",
                &[("document", &document), ("date", &locale.date(d))],
            )
        }),
        review_deadline: cases::review_deadline(&case).map(|d| locale.date(d)),
        can_disclose: case.status == CaseStatus::Investigating && (case.fatal || case.complex),
        parties,
        delegations,
        materials,
        kinds: crate::routes::choices(&MaterialKind::EVIDENCE),
        grounds: super::choices(WithholdGround::ALL),
        error,
        roles: super::choices(PartyRole::ALL),
        today: OffsetDateTime::now_utc().to_offset(CST).date().to_string(),
        notices: super::inbox::sent_rows(&state.db, case.id).await?,
        timeline: timeline::rows(&cases::timeline::of_case(&state.db, case.id).await?),
        stages: super::choices(crate::vocab::Stage::ALL),
        applications: applications::of_case(state, &case).await?,
        vehicles: vehicles::rows(state, &case).await?,
        case,
        typed,
    })
}

/// "Fatal", "Complex or difficult", both, or "Ordinary".
fn case_type(case: &case::Model) -> String {
    let mut types = Vec::new();
    if case.fatal {
        types.push(t("staff.case.type_fatal"));
    }
    if case.complex {
        types.push(t("staff.case.type_complex"));
    }
    if types.is_empty() {
        types.push(t("staff.case.type_ordinary"));
    }
    types.join(&t("staff.case.type_separator"))
}

/// "Party 甲, 张伟".
fn party_named(label: &str, name: &str) -> String {
    Locale::current().tf("staff.party_named", &[("label", label), ("name", name)])
}

/// A delegation's period: "from to until".
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
