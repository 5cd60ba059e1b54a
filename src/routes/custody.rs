//! A material's custody record (`materials::custody`): staff at
//! `/staff/cases/{id}/materials/{material_id}/custody`, and whoever of the case may see the
//! material at `/cases/{id}/custody/{material_id}` (what concerns them). A page to print, or
//! with `?format=json` the signed record: `{"record": …, "jws": …}`, the JWS made with the key
//! that signs bundle manifests (its payload is the record's bytes). Every export is audited.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use uuid::Uuid;

use super::{Layout, render};
use crate::audit::{Action, Actor, Event, Outcome};
use crate::auth::{CurrentUser, StaffUser, client_of};
use crate::db::entities::{account, case, material};
use crate::error::{AppError, AppResult};
use crate::materials::custody::{self, Reader, Record};
use crate::policy::CaseAction;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "staff/custody.html")]
struct CustodyPage {
    layout: Layout,
    r: Record,
    /// (seq, time, what, by, details) in the page's language.
    steps: Vec<(i64, String, String, String, String)>,
    json_url: String,
    export_line: String,
}

#[derive(serde::Deserialize)]
pub struct Format {
    #[serde(default)]
    format: String,
}

/// `GET /staff/cases/{id}/materials/{material_id}/custody[?format=json]`
pub async fn staff_custody_get(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<Format>,
) -> AppResult<HttpResponse> {
    use sea_orm::EntityTrait;
    let (case_id, material_id) = path.into_inner();
    let account = &staff.0.account;
    let (_, facts) = crate::cases::authorize(
        &state.db,
        &state.audit,
        account,
        client_of(&req),
        CaseAction::Manage,
        case_id,
    )
    .await?;
    material::Entity::find_by_id(material_id)
        .one(&state.db)
        .await?
        .filter(|m| m.case_id == case_id)
        .ok_or(AppError::NotFound)?;
    let json_url = format!("/staff/cases/{case_id}/materials/{material_id}/custody?format=json");
    let layout = Layout::for_user(&staff.0);
    let export = Export {
        account,
        case: &facts.case,
        material_id,
        reader: Reader::Staff,
    };
    answer(&state, &req, export, &query.format, layout, json_url).await
}

/// `GET /cases/{id}/custody/{material_id}[?format=json]`: for a party, agent or grantee who may
/// see the material; anyone else is refused as the material's own pages refuse them.
pub async fn party_custody_get(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<Format>,
) -> AppResult<HttpResponse> {
    let (case_id, material_id) = path.into_inner();
    let account = &user.account;
    let (_, facts, _) = crate::cases::authorize_material(
        &state.db,
        &state.audit,
        account,
        client_of(&req),
        CaseAction::ViewMaterial,
        case_id,
        material_id,
    )
    .await?;
    let json_url = format!("/cases/{case_id}/custody/{material_id}?format=json");
    let layout = Layout::for_user(&user);
    let export = Export {
        account,
        case: &facts.case,
        material_id,
        reader: Reader::Party {
            account: account.id,
        },
    };
    answer(&state, &req, export, &query.format, layout, json_url).await
}

/// Whose export of which material.
struct Export<'a> {
    account: &'a account::Model,
    case: &'a case::Model,
    material_id: Uuid,
    reader: Reader,
}

/// Records the export, builds the record and answers it as a page or as signed JSON.
async fn answer(
    state: &AppState,
    req: &HttpRequest,
    export: Export<'_>,
    format: &str,
    layout: Layout,
    json_url: String,
) -> AppResult<HttpResponse> {
    let json = format == "json";
    let client = client_of(req);
    let recorded = state
        .audit
        .record(
            Event::new(
                Actor::account(export.account.id, export.account.role),
                Action::AuditExport,
                Outcome::Allowed,
            )
            .case(export.case.id)
            .material(export.material_id)
            .client(client.0, client.1)
            .details(serde_json::json!({
                "what": "custody_record", "format": if json { "json" } else { "html" },
            })),
        )
        .await?;
    let subject = custody::Subject {
        case: export.case,
        material_id: export.material_id,
        reader: export.reader,
        reader_label: reader_label(export.account),
        export_seq: recorded.seq,
        now: state.clock.now(),
    };
    let record = custody::build(&state.db, &state.store, &state.manifest_key, subject).await?;
    if json {
        let (bytes, jws) =
            custody::sign(&record, &state.manifest_key).map_err(AppError::internal)?;
        let record: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(AppError::internal)?;
        let body = serde_json::json!({ "record": record, "jws": jws });
        return Ok(HttpResponse::Ok()
            .content_type("application/json")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"custody-{}.json\"",
                    export.material_id
                ),
            ))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body.to_string()));
    }
    page(state, layout, record, json_url)
}

fn page(
    state: &AppState,
    mut layout: Layout,
    r: Record,
    json_url: String,
) -> AppResult<HttpResponse> {
    let locale = crate::i18n::Locale::current();
    layout.scripts.push(crate::assets::url("page-actions.js"));
    let steps = r
        .steps
        .iter()
        .map(|s| {
            (
                s.seq,
                s.at.clone(),
                locale.t(&format!("audit.action.{}", s.action)).into_owned(),
                s.by.clone(),
                step_details(&s.details, locale),
            )
        })
        .collect();
    let export_line = locale.tf(
        "custody.export",
        &[
            ("seq", &r.export_seq.to_string()),
            ("at", &r.generated_at),
            ("kid", state.manifest_key.kid()),
        ],
    );
    render(&CustodyPage {
        layout,
        r,
        steps,
        json_url,
        export_line,
    })
}

/// A step's details in words: the ground (in the page's language), the note, the reasons, what
/// superseded it.
fn step_details(details: &serde_json::Value, locale: crate::i18n::Locale) -> String {
    let mut parts = Vec::new();
    if let Some(g) = details["ground"]
        .as_str()
        .and_then(crate::vocab::WithholdGround::parse)
    {
        parts.push(locale.label(g));
    }
    for key in ["note", "reasons", "superseded_by"] {
        match &details[key] {
            serde_json::Value::String(s) => parts.push(s.clone()),
            serde_json::Value::Array(a) => parts.push(
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            _ => {}
        }
    }
    parts.join(" · ")
}

/// The reader as the record names them: role and masked name.
fn reader_label(account: &account::Model) -> String {
    let role = crate::i18n::Locale::Zh.label(account.role);
    let name = account
        .display_name
        .chars()
        .next()
        .map(|c| format!(" {c}**"))
        .unwrap_or_default();
    format!("{role}{name}")
}
