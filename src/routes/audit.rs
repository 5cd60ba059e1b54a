//! Reading the access-audit log: the staff/admin audit page with filters and keyset paging, its
//! CSV export, and the administrators' chain verification.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use bytes::Bytes;

use super::{Layout, render};
use crate::audit::read::{self, Filter};
use crate::audit::{Action, Event, Outcome};
use crate::auth::{AdminUser, CurrentUser, client_of};
use crate::error::AppResult;
use crate::i18n::Locale;
use crate::state::AppState;

const PAGE: u64 = 50;

#[derive(serde::Deserialize)]
pub struct AuditQuery {
    case_number: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
}

impl AuditQuery {
    fn filter(&self) -> AppResult<Filter> {
        Filter::parse(
            self.case_number.as_deref(),
            self.actor.as_deref(),
            self.action.as_deref(),
            self.outcome.as_deref(),
            self.from.as_deref(),
            self.to.as_deref(),
        )
    }

    /// The filter as a query string (for the next page and the CSV link).
    fn query_string(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("case_number", &self.case_number),
            ("actor", &self.actor),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

async fn scope_of(req: &HttpRequest, user: &CurrentUser) -> AppResult<read::Scope> {
    match crate::policy::audit_scope(&user.account) {
        Ok(scope) => Ok(scope),
        Err(denied) => Err(crate::auth::extract::refuse(req, user, denied.reason).await),
    }
}

/// What the page and the export both do first: the reader's scope (refusal audited), the
/// filter (a bad one is refused before anything is recorded), then the reading's own event
/// (`action`, with `details`) committed before any event is shown.
async fn open_log(
    req: &HttpRequest,
    user: &CurrentUser,
    state: &AppState,
    query: &AuditQuery,
    action: Action,
    details: serde_json::Value,
) -> AppResult<(read::Scope, Filter)> {
    let scope = scope_of(req, user).await?;
    let filter = query.filter()?;
    let client = client_of(req);
    state
        .audit
        .record(
            Event::new(user.actor(), action, Outcome::Allowed)
                .client(client.0, client.1)
                .details(details),
        )
        .await?;
    Ok((scope, filter))
}

pub struct Row {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub case_number: String,
    pub what: String,
    pub outcome: String,
    pub outcome_code: String,
    pub client: String,
}

#[derive(Template)]
#[template(path = "staff/audit.html")]
struct AuditPage {
    layout: Layout,
    case_number: String,
    actor: String,
    action: String,
    outcome: String,
    from: String,
    to: String,
    actions: Vec<(&'static str, String)>,
    outcomes: Vec<(&'static str, String)>,
    rows: Vec<Row>,
    next_url: Option<String>,
    first_url: Option<String>,
    csv_url: String,
    all_brigades: bool,
}

fn rows(events: &[crate::db::entities::audit_event::Model], names: &read::Names) -> Vec<Row> {
    let locale = crate::i18n::Locale::current();
    events
        .iter()
        .map(|e| Row {
            seq: e.seq,
            at: locale.time(e.occurred_at),
            actor: e
                .actor_id
                .and_then(|id| names.actors.get(&id).cloned())
                .unwrap_or_else(|| "—".to_owned()),
            role: read::role_label(locale, &e.actor_role),
            action: locale.t(&format!("audit.action.{}", e.action)).into_owned(),
            case_number: e
                .case_id
                .and_then(|id| names.cases.get(&id).cloned())
                .unwrap_or_default(),
            what: read::what(&e.action, &e.details, locale),
            outcome: locale
                .t(&format!("audit.outcome.{}", e.outcome))
                .into_owned(),
            outcome_code: e.outcome.clone(),
            client: e.client_ip.clone().unwrap_or_default(),
        })
        .collect()
}

/// `GET /staff/audit`: the audit log of the reader's brigade (all of it for administrators),
/// newest first, filtered; 50 a page, the next page below the last sequence number shown.
pub async fn view_audit_get(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> AppResult<HttpResponse> {
    let details = serde_json::json!({ "filter": query.query_string(), "before": query.before });
    let (scope, filter) = open_log(&req, &user, &state, &query, Action::AuditView, details).await?;
    let mut events = read::page(&state.db, scope, &filter, query.before, PAGE + 1).await?;
    let more = events.len() as u64 > PAGE;
    events.truncate(PAGE as usize);
    let names = read::names(&state.db, &events).await?;
    let qs = query.query_string();
    let sep = if qs.is_empty() { "" } else { "&" };
    let locale = crate::i18n::Locale::current();
    render(&AuditPage {
        layout: Layout::for_user(&user),
        case_number: query.case_number.clone().unwrap_or_default(),
        actor: query.actor.clone().unwrap_or_default(),
        action: query.action.clone().unwrap_or_default(),
        outcome: query.outcome.clone().unwrap_or_default(),
        from: query.from.clone().unwrap_or_default(),
        to: query.to.clone().unwrap_or_default(),
        actions: Action::ALL
            .iter()
            .map(|a| {
                (
                    a.as_str(),
                    locale
                        .t(&format!("audit.action.{}", a.as_str()))
                        .into_owned(),
                )
            })
            .collect(),
        outcomes: read::OUTCOMES
            .iter()
            .map(|o| (*o, locale.t(&format!("audit.outcome.{o}")).into_owned()))
            .collect(),
        next_url: (more)
            .then(|| {
                events
                    .last()
                    .map(|e| format!("/staff/audit?{qs}{sep}before={}", e.seq))
            })
            .flatten(),
        first_url: query.before.map(|_| format!("/staff/audit?{qs}")),
        csv_url: format!("/staff/audit.csv?{qs}"),
        rows: rows(&events, &names),
        all_brigades: scope == read::Scope::All,
    })
}

/// One batch of the CSV export: the rows of `events`, each cell neutralised; the first batch
/// opens with a byte-order mark and `header_row`.
fn csv_batch(
    events: &[crate::db::entities::audit_event::Model],
    names: &read::Names,
    header_row: Option<&[String]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    if header_row.is_some() {
        out.extend_from_slice("\u{feff}".as_bytes());
    }
    {
        let mut w = csv::Writer::from_writer(&mut out);
        if let Some(header_row) = header_row {
            let _ = w.write_record(header_row);
        }
        for (row, e) in rows(events, names).into_iter().zip(events) {
            let cells = [
                row.seq.to_string(),
                row.at,
                row.actor,
                row.role,
                row.action,
                row.case_number,
                row.what,
                row.outcome,
                row.client,
                e.details.clone(),
            ];
            let _ = w.write_record(cells.iter().map(|c| read::neutralise(c)));
        }
        let _ = w.flush();
    }
    out
}

/// `GET /staff/audit.csv`: exactly the filtered set, newest first, streamed in batches of 1000
/// (UTF-8 with a BOM so spreadsheet programs read Chinese; formula-like cells neutralised).
pub async fn audit_csv_get(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> AppResult<HttpResponse> {
    user.require_step_up(&format!("/staff/audit.csv?{}", query.query_string()))?;
    let details = serde_json::json!({ "filter": query.query_string(), "format": "csv" });
    let (scope, filter) =
        open_log(&req, &user, &state, &query, Action::AuditExport, details).await?;
    let locale = crate::i18n::Locale::current();
    let header_row: Vec<String> = [
        "seq",
        "time",
        "actor",
        "role",
        "action",
        "case_number",
        "what",
        "outcome",
        "client",
        "details",
    ]
    .iter()
    .map(|c| locale.t(&format!("audit.csv.{c}")).into_owned())
    .collect();
    let db = state.db.clone();
    // (next `before`, first batch?, done?)
    let body =
        futures_util::stream::unfold((None::<i64>, true, false), move |(before, first, done)| {
            let db = db.clone();
            let filter = filter.clone();
            let header_row = header_row.clone();
            async move {
                if done {
                    return None;
                }
                let events = match read::page(&db, scope, &filter, before, 1000).await {
                    Ok(e) => e,
                    Err(e) => return Some((Err(std::io::Error::other(e)), (before, false, true))),
                };
                let names = match read::names(&db, &events).await {
                    Ok(n) => n,
                    Err(e) => return Some((Err(std::io::Error::other(e)), (before, false, true))),
                };
                let out = csv_batch(&events, &names, first.then_some(header_row.as_slice()));
                let next = events.last().map(|e| e.seq);
                let finished = events.len() < 1000;
                Some((Ok(Bytes::from(out)), (next, false, finished)))
            }
        });
    let day = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"audit-{:04}{:02}{:02}.csv\"",
                day.year(),
                u8::from(day.month()),
                day.day()
            ),
        ))
        .streaming(body))
}

#[derive(Template)]
#[template(path = "admin/audit_verify.html")]
struct VerifyPage {
    layout: Layout,
    events: u64,
    head_hash: String,
    broken_at: Option<i64>,
    reason: String,
    /// The newest signed checkpoint: "event N, hash H, at T".
    checkpoint: Option<String>,
    checkpoint_problem: Option<String>,
    /// The restores from backups the chain records (`audit::restored`), in words.
    restores: Vec<String>,
}

/// `POST /admin/audit/verify`: checks the whole hash chain now and shows the count and head
/// hash, or the first broken sequence number.
pub async fn audit_verify_post(
    admin: AdminUser,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let user = admin.0;
    let result =
        crate::audit::verify::verify_anchored(&state.db, &state.store, &state.manifest_key).await;
    let client = client_of(&req);
    let (page, outcome, details) = match result {
        Ok(a) => (
            VerifyPage {
                layout: Layout::for_user(&user),
                events: a.verified.events,
                broken_at: None,
                reason: String::new(),
                head_hash: a.verified.head_hash.clone(),
                checkpoint: a.checkpoint.as_ref().map(|cp| {
                    Locale::current().tf(
                        "audit.verify.checkpoint_value",
                        &[
                            ("seq", &cp.seq.to_string()),
                            ("hash", &cp.hash),
                            ("time", &Locale::current().time(cp.at)),
                        ],
                    )
                }),
                checkpoint_problem: a.checkpoint_problem.clone(),
                restores: a.restores.iter().map(ToString::to_string).collect(),
            },
            Outcome::Allowed,
            serde_json::json!({
                "events": a.verified.events, "head_hash": a.verified.head_hash,
                "checkpoint": a.checkpoint.map(|cp| cp.seq), "checkpoint_problem": a.checkpoint_problem,
            }),
        ),
        Err(crate::audit::verify::VerifyError::Broken(b)) => (
            VerifyPage {
                layout: Layout::for_user(&user),
                events: 0,
                broken_at: Some(b.seq),
                reason: b.reason.clone(),
                head_hash: String::new(),
                checkpoint: None,
                checkpoint_problem: None,
                restores: Vec::new(),
            },
            Outcome::Failed,
            serde_json::json!({ "broken_at": b.seq, "reason": b.reason }),
        ),
        Err(crate::audit::verify::VerifyError::Db(e)) => return Err(e.into()),
    };
    state
        .audit
        .record(
            Event::new(user.actor(), Action::AuditVerify, outcome)
                .client(client.0, client.1)
                .details(details),
        )
        .await?;
    render(&page)
}
