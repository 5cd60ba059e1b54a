//! Leak tracing (issue 32): a staff member who finds a picture of their brigade's evidence
//! outside — forwarded in a chat, posted online — uploads it, or types the code read off its
//! watermark, and sees which rendered view it came from: who received it, when, which material
//! of which case. A file that is no rendering this portal delivered is said to be so. Every
//! tracing is itself audited.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Deserialize;
use sha2::Digest;

use super::{Layout, cst, render};
use crate::audit::{Action, Event, Outcome};
use crate::auth::{StaffUser, client_of};
use crate::db::entities::{account, audit_event, case, material};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// A delivered rendering, as tracing shows it.
pub struct Found {
    pub when: String,
    pub who: String,
    pub case_number: String,
    pub material: String,
    pub page: i64,
    pub code: String,
    pub seq: i64,
}

#[derive(Template)]
#[template(path = "staff/trace.html")]
struct TracePage {
    layout: Layout,
    csrf_token: String,
    code: String,
    /// `None`: nothing asked yet; `Some(empty)`: asked, not a copy this portal delivered.
    found: Option<Vec<Found>>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct TraceQuery {
    #[serde(default)]
    code: String,
}

/// A watermark's code as typed: 8 hexadecimal digits, spaces and case forgiven.
fn code_of(raw: &str) -> Option<String> {
    let code: String = crate::auth::identifier::clean(raw).to_ascii_lowercase();
    (code.len() == 8 && code.chars().all(|c| c.is_ascii_hexdigit())).then_some(code)
}

/// The renderings of the staff member's brigade whose details hold `needle` (`"code":"…"` or
/// `"sha256":"…"`), newest first.
async fn renderings(state: &AppState, staff: &StaffUser, needle: &str) -> AppResult<Vec<Found>> {
    let department = staff.0.account.department_id.ok_or(AppError::Forbidden)?;
    let events = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq(Action::MaterialRendered.as_str()))
        .filter(audit_event::Column::Details.contains(needle))
        .order_by_desc(audit_event::Column::Seq)
        .limit(50)
        .all(&state.db)
        .await?;
    let mut out = Vec::new();
    for e in events {
        let (Some(case_id), Some(material_id)) = (e.case_id, e.material_id) else {
            continue;
        };
        let Some(c) = case::Entity::find_by_id(case_id)
            .one(&state.db)
            .await?
            .filter(|c| c.department_id == department)
        else {
            continue;
        };
        let title = material::Entity::find_by_id(material_id)
            .one(&state.db)
            .await?
            .map(|m| m.title)
            .unwrap_or_default();
        let who = match e.actor_id {
            Some(id) => account::Entity::find_by_id(id)
                .one(&state.db)
                .await?
                .map(|a| {
                    format!(
                        "{}（{}，{}）",
                        a.display_name,
                        crate::i18n::label(a.role),
                        a.login_masked
                    )
                })
                .unwrap_or_default(),
            None => String::new(),
        };
        let details: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
        out.push(Found {
            when: cst(e.occurred_at),
            who,
            case_number: c.case_number,
            material: title,
            page: details["page"].as_i64().unwrap_or(1),
            code: details["code"].as_str().unwrap_or_default().to_owned(),
            seq: details["of"].as_i64().unwrap_or(e.seq),
        });
    }
    Ok(out)
}

async fn audited(
    state: &AppState,
    staff: &StaffUser,
    req: &HttpRequest,
    by: serde_json::Value,
    found: usize,
) -> AppResult<()> {
    let (ip, ua) = client_of(req);
    state
        .audit
        .record(
            Event::new(staff.0.actor(), Action::AuditView, Outcome::Allowed)
                .client(ip, ua)
                .details(serde_json::json!({ "trace": by, "found": found })),
        )
        .await?;
    Ok(())
}

/// `GET /staff/trace[?code=…]`: the form, or what a watermark's code leads to.
pub async fn view_trace_get(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<TraceQuery>,
) -> AppResult<HttpResponse> {
    let typed = query.into_inner().code;
    let (found, error) = if typed.trim().is_empty() {
        (None, None)
    } else if let Some(code) = code_of(&typed) {
        let found = renderings(&state, &staff, &format!("\"code\":\"{code}\"")).await?;
        audited(
            &state,
            &staff,
            &req,
            serde_json::json!({ "code": code }),
            found.len(),
        )
        .await?;
        (Some(found), None)
    } else {
        (None, Some(crate::i18n::t("trace.code_invalid")))
    };
    render(&TracePage {
        layout: Layout::for_user(&staff.0),
        csrf_token: staff.0.csrf_token.clone(),
        code: typed,
        found,
        error,
    })
}

/// `POST /staff/trace` (multipart: `file`): what a picture found outside was delivered as. Only
/// its SHA-256 is computed, as it streams; nothing of it is kept.
pub async fn trace_post(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    mut payload: actix_multipart::Multipart,
) -> AppResult<HttpResponse> {
    let mut digest: Option<String> = None;
    let mut parts = 0;
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(super::uploads::multipart_error)?;
        parts += 1;
        if parts > 4 {
            return Err(AppError::FormTooLarge {
                message: "表单字段过多：本表单最多 4 项，请从页面重新提交 (the form has too many fields: at most 4; send it again from its page)".into(),
            });
        }
        let is_file = field.name() == Some("file");
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(super::uploads::multipart_error)?;
            size += chunk.len() as u64;
            if size > state.settings.max_upload_bytes {
                return Err(AppError::PayloadTooLarge {
                    limit: state.settings.max_upload_bytes,
                });
            }
            hasher.update(&chunk);
        }
        if is_file && size > 0 && digest.is_none() {
            digest = Some(hex::encode(hasher.finalize()));
        }
    }
    let Some(sha256) = digest else {
        return render(&TracePage {
            layout: Layout::for_user(&staff.0),
            csrf_token: staff.0.csrf_token.clone(),
            code: String::new(),
            found: None,
            error: Some(crate::i18n::t("trace.file_missing")),
        });
    };
    let found = renderings(&state, &staff, &format!("\"sha256\":\"{sha256}\"")).await?;
    audited(
        &state,
        &staff,
        &req,
        serde_json::json!({ "sha256": sha256 }),
        found.len(),
    )
    .await?;
    render(&TracePage {
        layout: Layout::for_user(&staff.0),
        csrf_token: staff.0.csrf_token.clone(),
        code: String::new(),
        found: Some(found),
        error: None,
    })
}
