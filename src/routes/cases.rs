//! Parties' and agents' pages: "my cases" and the case page.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use uuid::Uuid;

use super::{Layout, cst, render};
use crate::audit::{Action, Event, Outcome};
use crate::auth::{CurrentUser, client_of};
use crate::cases;
use crate::error::{AppError, AppResult};
use crate::policy::CaseAction;
use crate::startup::AppState;

pub struct MyCaseRow {
    pub id: Uuid,
    pub number: String,
    pub occurred: String,
    pub status: &'static str,
    pub label: String,
    pub open: bool,
    pub review_deadline: Option<String>,
    pub acting_for: Option<String>,
    pub released: u64,
}

#[derive(Template)]
#[template(path = "cases/mine.html")]
struct MyCasesPage {
    layout: Layout,
    rows: Vec<MyCaseRow>,
    is_agent: bool,
}

/// `GET /cases`: the cases of a party, or those an agent currently acts in.
pub async fn view_my_cases_get(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    if !matches!(user.role(), "party" | "agent") {
        return Err(crate::auth::extract::refuse(&req, &user, "role").await);
    }
    let rows = cases::my_cases(&state.db, &user.account)
        .await?
        .into_iter()
        .map(|m| MyCaseRow {
            id: m.case.id,
            open: m.case.status != "investigating",
            review_deadline: cases::review_deadline(&m.case).map(|d| d.to_string()),
            status: cases::status_label(&m.case.status),
            occurred: cst(m.case.occurred_at),
            number: m.case.case_number,
            label: m.label,
            released: m.released,
            acting_for: m
                .acting_for
                .map(|(name, until)| format!("{name}（委托至 {}）", cst(until))),
        })
        .collect();
    render(&MyCasesPage {
        layout: Layout::for_user(&user),
        rows,
        is_agent: user.role() == "agent",
    })
}

#[derive(Template)]
#[template(path = "cases/case.html")]
struct CasePage {
    layout: Layout,
    number: String,
    occurred: String,
    place: String,
    status: &'static str,
    view_only: bool,
    served: Option<String>,
    review_deadline: Option<String>,
    groups: Vec<KindGroup>,
    withheld: Vec<(&'static str, usize)>,
}

pub struct KindGroup {
    pub kind: &'static str,
    pub items: Vec<MaterialItem>,
}

pub struct MaterialItem {
    pub id: Uuid,
    pub title: String,
    pub size: String,
    pub uploaded: String,
    pub released: String,
}

/// `GET /cases/{id}`: the case as its parties and agents see it (materials come with the
/// materials work). Opening it is audited.
pub async fn view_case_get(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let client = client_of(&req);
    let (permit, facts) = cases::authorize(
        &state.db,
        &state.audit,
        &user.account,
        client.clone(),
        CaseAction::View,
        path.into_inner(),
    )
    .await?;
    state
        .audit
        .record(
            Event::new(user.actor(), Action::CaseView, Outcome::Allowed)
                .case(permit.case_id)
                .client(client.0, client.1),
        )
        .await
        .map_err(|e| AppError::Unavailable {
            part: "audit",
            cause: Some(Box::new(e)),
        })?;
    let view = crate::materials::party_view(&state.db, &permit, &user.account).await?;
    let groups = crate::materials::KINDS
        .iter()
        .map(|(kind, label)| KindGroup {
            kind: label,
            items: view
                .visible
                .iter()
                .filter(|m| m.kind == *kind)
                .map(|m| MaterialItem {
                    id: m.id,
                    title: m.title.clone(),
                    size: super::staff::human_size(m.size),
                    uploaded: cst(m.uploaded_at),
                    released: m.decided_at.map(cst).unwrap_or_default(),
                })
                .collect(),
        })
        .filter(|g| !g.items.is_empty())
        .collect();
    let case = facts.case;
    render(&CasePage {
        groups,
        withheld: view.withheld,
        layout: Layout::for_user(&user),
        occurred: cst(case.occurred_at),
        status: cases::status_label(&case.status),
        view_only: case.status == "disclosing",
        served: case.served_on.map(|d| {
            let kind = if case.service_kind.as_deref() == Some("certificate") {
                "事故证明"
            } else {
                "事故认定书"
            };
            format!("{kind}已于 {d} 送达")
        }),
        review_deadline: cases::review_deadline(&case).map(|d| d.to_string()),
        number: case.case_number,
        place: case.place,
    })
}
