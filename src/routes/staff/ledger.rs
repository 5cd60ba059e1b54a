//! The brigade's ledger of applications (申请台账), review and access alike, filtered, and its
//! CSV export.

use super::*;
use crate::applications::ledger;
use crate::vocab::{AccessState, ReviewState};

#[derive(Deserialize, Default)]
pub struct LedgerQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    case: String,
}

impl LedgerQuery {
    fn filter(&self) -> ledger::Filter {
        let date = |s: &str| {
            time::Date::parse(
                s.trim(),
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .ok()
        };
        ledger::Filter {
            kind: self.kind.clone(),
            state: self.state.clone(),
            from: date(&self.from),
            to: date(&self.to),
            case_number: self.case.clone(),
        }
    }

    fn query_string(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("kind", &self.kind)
            .append_pair("state", &self.state)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .append_pair("case", &self.case)
            .finish()
    }
}

pub struct LedgerRow {
    pub id: Uuid,
    pub kind: String,
    pub access: bool,
    pub receipt_no: String,
    pub case_id: Uuid,
    pub case_number: String,
    pub filed_at: String,
    pub applicant: String,
    pub state: String,
    pub last_step: String,
}

#[derive(Template)]
#[template(path = "staff/applications.html")]
struct LedgerPage {
    layout: Layout,
    rows: Vec<LedgerRow>,
    query: LedgerQuery,
    csv_url: String,
    states: Vec<super::super::Choice>,
    limit: u64,
}

fn rows(entries: Vec<ledger::Entry>) -> Vec<LedgerRow> {
    let locale = Locale::current();
    entries
        .into_iter()
        .map(|e| LedgerRow {
            id: e.id,
            kind: locale.t(&format!("ledger.kind.{}", e.kind)).into_owned(),
            access: e.kind == "access",
            receipt_no: e.receipt_no,
            case_id: e.case_id,
            case_number: e.case_number,
            filed_at: cst(e.filed_at),
            applicant: e.applicant,
            state: locale
                .t(&format!("{}.{}", e.state_catalog, e.state))
                .into_owned(),
            last_step: e.last_step.unwrap_or_default(),
        })
        .collect()
}

/// `GET /staff/applications`: the brigade's ledger (申请台账), filtered.
pub async fn view_ledger_get(
    staff: StaffUser,
    state: web::Data<AppState>,
    query: web::Query<LedgerQuery>,
) -> AppResult<HttpResponse> {
    let department = staff.0.account.department_id.ok_or(AppError::Forbidden)?;
    let query = query.into_inner();
    let entries = ledger::list(&state.db, Some(department), &query.filter()).await?;
    let mut states = super::super::choices(ReviewState::ALL);
    states.extend(super::super::choices(AccessState::ALL));
    render(&LedgerPage {
        layout: Layout::for_user(&staff.0),
        rows: rows(entries),
        csv_url: format!("/staff/applications.csv?{}", query.query_string()),
        query,
        states,
        limit: ledger::LIMIT,
    })
}

/// `GET /staff/applications.csv`: the same list as CSV (UTF-8 with a BOM, so spreadsheet
/// programs read the Chinese), cells neutralised against formulas; the export is audited.
pub async fn ledger_csv_get(
    staff: StaffUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LedgerQuery>,
) -> AppResult<HttpResponse> {
    use crate::audit::read::neutralise;
    let department = staff.0.account.department_id.ok_or(AppError::Forbidden)?;
    // Every applicant's name and organisation: asked like the audit log's export.
    staff
        .0
        .require_step_up(&format!("/staff/applications.csv?{}", req.query_string()))?;
    let query = query.into_inner();
    let entries = ledger::list(&state.db, Some(department), &query.filter()).await?;
    let client = client_of(&req);
    state
        .audit
        .record(
            crate::audit::Event::new(
                staff.0.actor(),
                crate::audit::Action::AuditExport,
                crate::audit::Outcome::Allowed,
            )
            .client(client.0, client.1)
            .details(serde_json::json!({
                "export": "applications", "rows": entries.len(), "filter": query.query_string(),
            })),
        )
        .await?;
    let locale = Locale::current();
    let mut out = String::from("\u{feff}");
    let header = [
        "ledger.col.kind",
        "ledger.col.receipt",
        "ledger.col.case",
        "ledger.col.filed",
        "ledger.col.applicant",
        "ledger.col.state",
        "ledger.col.last_step",
    ]
    .map(|k| locale.t(k).into_owned());
    let line = |cells: &[String]| -> String {
        let quoted: Vec<String> = cells
            .iter()
            .map(|c| format!("\"{}\"", neutralise(c).replace('"', "\"\"")))
            .collect();
        quoted.join(",") + "\r\n"
    };
    out.push_str(&line(&header));
    for r in rows(entries) {
        out.push_str(&line(&[
            r.kind,
            r.receipt_no,
            r.case_number,
            r.filed_at,
            r.applicant,
            r.state,
            r.last_step,
        ]));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"applications.csv\"",
        ))
        .body(out))
}
