//! The staff case page (`GET /staff/cases/{id}`), a long page of sections: the facts, progress
//! (the status and its moves), timeline, parties, agents, vehicles, evidence, review and query
//! applications, and the notices sent. `case_page_typed` reads the case's rows, then one builder
//! per section turns them into that section's part of [`CasePage`]; the builders are plain
//! functions of rows, so each section can be tested on its own. The page opens with a list of
//! links to its sections (`nav`, `templates/staff/case.html`).

use askama::Template;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CST, Layout, applications, cst, human_size, party_named, period, timeline, vehicles};
use crate::auth::StaffUser;
use crate::cases;
use crate::db::entities::{account, case, case_milestone, case_party, delegation, material};
use crate::error::AppResult;
use crate::i18n::{Locale, t};
use crate::routes::Choice;
use crate::state::AppState;
use crate::vocab::{
    CaseStatus, MaterialKind, MaterialState, PartyRole, ServiceKind, Stage, WithholdGround,
};

#[derive(Template)]
#[template(path = "staff/case.html")]
pub struct CasePage {
    layout: Layout,
    csrf_token: String,
    case: case::Model,
    error: Option<String>,
    today: String,
    /// A refused form as it was typed, with the field at fault.
    typed: Typed,
    /// 基本情况 (`#facts`).
    facts: Facts,
    /// 办理进度 (`#status`).
    progress: Progress,
    /// 办理时间线 (`#timeline`), corrected entries included.
    timeline: TimelineSection,
    /// 当事人 (`#parties`).
    parties: PartiesSection,
    /// 代理人 (`#agents`): the case's delegations.
    delegations: Vec<DelegationRow>,
    /// 车辆 (`#vehicles`): plates and insurers.
    vehicles: Vec<vehicles::VehicleRow>,
    /// 证据材料 (`#materials`).
    materials: MaterialsSection,
    /// 复核申请 and 查询申请 (`#review-applications`, `#access-applications`).
    applications: applications::CaseApplications,
    /// 通知记录 (`#notices`): what the parties and agents were told, and where each SMS and
    /// e-mail stands.
    notices: Vec<crate::routes::inbox::SentRow>,
}

/// What was typed into one of the case page's forms when it was refused: shown again (nothing
/// to type twice), the field at fault marked (`aria-invalid`), the reason next to the form.
#[derive(Default)]
pub struct Typed {
    /// `party`, `agent`, `milestone` or `vehicle`; empty when no form was refused.
    pub(super) form: &'static str,
    pub(super) values: Vec<(String, String)>,
    pub(super) fault: Option<&'static str>,
    pub(super) message: String,
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

/// The facts of the case as the page shows them.
pub struct Facts {
    pub occurred: String,
    pub status: String,
    /// Fatal, complex, or ordinary.
    pub case_type: String,
    /// "事故认定书，2026-11-20 送达", once served.
    pub served: Option<String>,
    pub review_deadline: Option<String>,
}

/// What the progress section offers besides the moves every status has.
pub struct Progress {
    /// Disclosure before the determination (Art. 63): only for fatal or complex cases that are
    /// still being investigated.
    pub can_disclose: bool,
}

pub struct TimelineSection {
    pub entries: Vec<timeline::MilestoneRow>,
    /// The stages the form offers.
    pub stages: Vec<Choice>,
}

pub struct PartiesSection {
    pub rows: Vec<PartyRow>,
    /// The roles in the accident the registration form offers.
    pub roles: Vec<Choice>,
}

pub struct MaterialsSection {
    pub rows: Vec<MaterialRow>,
    /// The kinds the upload form offers.
    pub kinds: Vec<Choice>,
    /// The grounds the withhold form offers.
    pub grounds: Vec<Choice>,
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

pub struct MaterialRow {
    pub id: Uuid,
    pub kind: String,
    pub title: String,
    pub original_name: String,
    pub size: String,
    pub uploaded: String,
    /// Both digests of the stored bytes (issue 36); SM3 "—" until filled in.
    pub sha256: String,
    pub sm3: String,
    /// 证明对象, for the evidence index.
    pub proves: Option<String>,
    /// Its state, with the ground if withheld.
    pub state: String,
    /// Its entry in the "correct (replace)" list: kind and title.
    pub choice: String,
    pub decidable: bool,
    pub released: bool,
}

/// The case page with nothing typed and no refusal shown, or with `error` at the top.
pub(super) async fn case_page(
    state: &AppState,
    staff: &StaffUser,
    case: case::Model,
    error: Option<String>,
) -> AppResult<CasePage> {
    case_page_typed(state, staff, case, error, Typed::default()).await
}

/// The case page: reads the case's rows, then builds each section from them.
pub(super) async fn case_page_typed(
    state: &AppState,
    staff: &StaffUser,
    case: case::Model,
    error: Option<String>,
    typed: Typed,
) -> AppResult<CasePage> {
    let parties = cases::parties(&state.db, case.id).await?;
    let delegations = cases::delegations(&state.db, case.id).await?;
    let materials = crate::materials::all_of_case(&state.db, case.id).await?;
    let milestones = cases::timeline::of_case(&state.db, case.id).await?;
    let now = OffsetDateTime::now_utc();
    Ok(CasePage {
        layout: Layout::for_user(&staff.0),
        csrf_token: staff.0.csrf_token.clone(),
        error,
        today: now.to_offset(CST).date().to_string(),
        typed,
        facts: facts(&case),
        progress: progress(&case),
        timeline: timeline_section(&milestones),
        delegations: agents_section(delegations, &parties, now),
        parties: parties_section(parties),
        vehicles: vehicles::rows(state, &case).await?,
        materials: materials_section(materials),
        applications: applications::of_case(state, &case).await?,
        notices: crate::routes::inbox::sent_rows(&state.db, &state.key, case.id).await?,
        case,
    })
}

/// 基本情况: when, the type, the status, and the service and review deadline once served.
pub fn facts(case: &case::Model) -> Facts {
    let locale = Locale::current();
    Facts {
        occurred: cst(case.occurred_at),
        status: crate::i18n::label(case.status),
        case_type: case_type(case),
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
        review_deadline: cases::review_deadline(case).map(|d| locale.date(d)),
    }
}

/// 办理进度: whether disclosure before the determination may start.
pub fn progress(case: &case::Model) -> Progress {
    Progress {
        can_disclose: case.status == CaseStatus::Investigating && (case.fatal || case.complex),
    }
}

/// 办理时间线: every entry as staff see it, and the stages the form offers.
pub fn timeline_section(entries: &[case_milestone::Model]) -> TimelineSection {
    TimelineSection {
        entries: timeline::rows(entries),
        stages: crate::routes::choices(Stage::ALL),
    }
}

/// 当事人: each party with its sign-in and whether the account is activated.
pub fn parties_section(
    parties: Vec<(case_party::Model, Option<account::Model>)>,
) -> PartiesSection {
    let rows = parties
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
    PartiesSection {
        rows,
        roles: crate::routes::choices(PartyRole::ALL),
    }
}

/// 代理人: each delegation with its principal among `parties`, its days, and where it stands at
/// `now` (current, not started, expired, revoked); only one not revoked and not over may be
/// revoked.
pub fn agents_section(
    delegations: Vec<(delegation::Model, Option<account::Model>)>,
    parties: &[(case_party::Model, Option<account::Model>)],
    now: OffsetDateTime,
) -> Vec<DelegationRow> {
    let locale = Locale::current();
    delegations
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
            principal: parties
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
        .collect()
}

/// 证据材料: each material with its state (superseded, withheld and on what ground, internal,
/// or its state), and whether it may still be released or withheld.
pub fn materials_section(materials: Vec<material::Model>) -> MaterialsSection {
    let locale = Locale::current();
    let rows = materials
        .into_iter()
        .map(|m| MaterialRow {
            id: m.id,
            kind: crate::i18n::label(m.kind),
            size: human_size(m.size),
            uploaded: cst(m.uploaded_at),
            sha256: m.sha256.clone(),
            sm3: m.sm3.clone().unwrap_or_else(|| "—".into()),
            proves: m.proves.clone(),
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
    MaterialsSection {
        rows,
        kinds: crate::routes::choices(&MaterialKind::EVIDENCE),
        grounds: crate::routes::choices(WithholdGround::ALL),
    }
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

#[cfg(test)]
#[path = "case_page_tests.rs"]
mod tests;
