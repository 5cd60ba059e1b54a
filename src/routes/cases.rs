//! Parties' and agents' pages: "my cases" and the case page.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use uuid::Uuid;

use super::{Layout, cst, render, render_sized};
use crate::auth::{CurrentUser, client_of};
use crate::cases;
use crate::error::AppResult;
use crate::policy::CaseAction;
use crate::state::AppState;
use crate::vocab::{CaseStatus, Role};

mod parts;

pub struct MyCaseRow {
    pub id: Uuid,
    pub number: String,
    pub occurred: String,
    pub status: String,
    pub label: String,
    pub open: bool,
    pub review_deadline: Option<String>,
    pub acting_for: Option<String>,
    pub released: u64,
    /// The case's progress (办理进度): all of it while the case is not open to the person (the
    /// card is all they can see), the latest entry once it is (the case page has the rest).
    pub timeline: Vec<TimelineItem>,
    pub next_step: Option<String>,
    /// For owners and insurers: what their approved application lets them see, until when.
    pub grant: Option<String>,
}

/// A case's current timeline (corrections applied), oldest first, in the page's language.
async fn timeline_of(
    db: &sea_orm::DatabaseConnection,
    case_id: Uuid,
) -> Result<Vec<TimelineItem>, sea_orm::DbErr> {
    let entries = cases::timeline::of_case(db, case_id).await?;
    let locale = crate::i18n::Locale::current();
    Ok(cases::timeline::current(&entries)
        .into_iter()
        .map(|e| TimelineItem {
            date: locale.date(e.occurred_on),
            stage: locale.label(e.stage),
            note: crate::cases::timeline::note_of(e),
        })
        .collect())
}

/// What an owner's or insurer's approved application lets them do, in the page's language.
fn grant_text(g: &crate::db::entities::access_application::Model) -> String {
    super::apply::scope_text(g, "access.grant_scope")
}

fn next_step(status: CaseStatus) -> Option<String> {
    match status {
        CaseStatus::Investigating => Some(crate::i18n::t("timeline.next.investigating")),
        CaseStatus::Disclosing => Some(crate::i18n::t("timeline.next.disclosing")),
        CaseStatus::Served => Some(crate::i18n::t("timeline.next.served")),
        CaseStatus::Closed => None,
    }
}

#[derive(Template)]
#[template(path = "cases/mine.html")]
struct MyCasesPage {
    layout: Layout,
    rows: Vec<MyCaseRow>,
    is_agent: bool,
    /// "Your account was reset on … by … (reason)": each reset the person has not been told of.
    resets: Vec<String>,
    /// An owner's or insurer's applications (those giving their number), newest first.
    applications: Vec<ApplicationRow>,
}

pub struct ApplicationRow {
    pub receipt_no: String,
    pub case_number: String,
    pub filed_at: String,
    pub state: String,
    /// Approved, and in force for this account.
    pub in_force: bool,
    /// Gave this account's number but was not added to it (no grant here until claimed).
    pub not_added: bool,
}

/// The applications an owner's or insurer's account holds or whose number is its own.
async fn applications_of(state: &AppState, user: &CurrentUser) -> AppResult<Vec<ApplicationRow>> {
    use crate::db::entities::{access_application, case};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    if !matches!(user.role(), Role::Owner | Role::Insurer) {
        return Ok(Vec::new());
    }
    let now = state.audit.now();
    let locale = crate::i18n::Locale::current();
    let rows = access_application::Entity::find()
        .filter(access_application::Column::AccountId.eq(user.account.id))
        .order_by_desc(access_application::Column::FiledAt)
        .all(&state.db)
        .await?;
    let numbers: std::collections::HashMap<uuid::Uuid, String> = case::Entity::find()
        .filter(case::Column::Id.is_in(rows.iter().map(|a| a.case_id)))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|c| (c.id, c.case_number))
        .collect();
    Ok(rows
        .into_iter()
        .map(|a| ApplicationRow {
            case_number: numbers.get(&a.case_id).cloned().unwrap_or_default(),
            filed_at: cst(a.filed_at),
            state: locale.label(a.state),
            in_force: a.account_verified && a.in_force(now),
            not_added: !a.account_verified,
            receipt_no: a.receipt_no,
        })
        .collect())
}

/// `GET /cases`: the cases of a party, or those an agent currently acts in.
pub async fn view_my_cases_get(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    if !matches!(
        user.role(),
        Role::Party | Role::Agent | Role::Owner | Role::Insurer
    ) {
        return Err(crate::auth::extract::refuse(&req, &user, "role").await);
    }
    let mine = cases::my_cases(&state.db, &user.account).await?;
    let mut timelines = Vec::with_capacity(mine.len());
    for m in &mine {
        let mut timeline = if m.granted.is_none() {
            timeline_of(&state.db, m.case.id).await?
        } else {
            Vec::new()
        };
        if m.case.status != CaseStatus::Investigating {
            timeline = timeline.split_off(timeline.len().saturating_sub(1));
        }
        timelines.push(timeline);
    }
    let today = state
        .clock
        .now()
        .to_offset(time::macros::offset!(+8))
        .date();
    let rows = mine
        .into_iter()
        .zip(timelines)
        .map(|(m, timeline)| MyCaseRow {
            id: m.case.id,
            grant: m.granted.as_ref().map(grant_text),
            timeline,
            next_step: next_step(m.case.status).filter(|_| m.granted.is_none()),
            open: m.case.status != CaseStatus::Investigating,
            review_deadline: cases::review_deadline(&m.case)
                .filter(|_| m.granted.is_none())
                .map(|d| super::deadline::words(crate::i18n::Locale::current(), d, today)),
            status: crate::i18n::label(m.case.status),
            occurred: cst(m.case.occurred_at),
            number: m.case.case_number,
            label: m.label,
            released: m.released,
            acting_for: m.acting_for.map(|(name, until)| {
                let locale = crate::i18n::Locale::current();
                let (_, last) = cases::delegation_days(until, until);
                locale.tf(
                    "cases.acting_until",
                    &[("name", &name), ("until", &locale.date(last))],
                )
            }),
        })
        .collect();
    let resets = crate::accounts::take_unseen_resets(&state.db, user.account.id)
        .await?
        .into_iter()
        .map(|r| {
            crate::i18n::Locale::current().tf(
                "cases.account_was_reset",
                &[
                    ("time", &cst(r.at)),
                    ("by", &r.by_label),
                    ("reason", &r.reason),
                ],
            )
        })
        .collect();
    render(&MyCasesPage {
        applications: applications_of(&state, &user).await?,
        layout: Layout::for_user(&user),
        rows,
        is_agent: user.role() == Role::Agent,
        resets,
    })
}

#[derive(Template)]
#[template(path = "cases/case.html")]
struct CasePage {
    layout: Layout,
    case_id: Uuid,
    number: String,
    occurred: String,
    place: String,
    status: String,
    view_only: bool,
    served: Option<String>,
    review_deadline: Option<String>,
    /// Who handles the case and how to reach them.
    handling: HandlingPanel,
    /// Where the review window stands ("还剩 2 天"), while it is open or just closed.
    review: Option<String>,
    groups: Vec<KindGroup>,
    /// "证人要求保密 1 份", in the page's language.
    withheld: Vec<String>,
    /// "2 份材料作了遮挡处理（无关人员面部、…）…", when any shown material is a redacted copy.
    redacted: Option<String>,
    /// How many released materials wait for their redacted copy, said so.
    preparing: Option<String>,
    /// Who accessed this case's evidence (查阅记录), newest first.
    history: Vec<crate::audit::read::Access>,
    /// The person's own accesses, newest first (shown folded).
    own_history: Vec<crate::audit::read::Access>,
    /// The case's progress (办理进度), corrections applied, oldest first.
    timeline: Vec<TimelineItem>,
    /// What comes next, while something does.
    next_step: Option<String>,
    /// A party or an agent (who see the history, the timeline and the review application).
    party_like: bool,
    /// The review application made for this party: where it stands.
    /// The party's review application, once filed: its receipt number, where it stands and
    /// the next step the law sets (shown instead of the countdown and the offer to apply).
    review_application: Option<(String, String, String)>,
    /// The review window is open and no application is made yet.
    may_apply: bool,
    /// For owners and insurers: what their approved application lets them see, and until when.
    grant: Option<String>,
}

pub struct TimelineItem {
    pub date: String,
    pub stage: String,
    pub note: String,
}

/// The brigade and officer handling a case, as the party's page shows them.
pub struct HandlingPanel {
    pub brigade: String,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub hours: Option<String>,
    pub officer: Option<String>,
}

impl HandlingPanel {
    pub fn of(h: cases::Handling) -> Self {
        HandlingPanel {
            brigade: h.brigade.name,
            address: h.brigade.address,
            phone: h.brigade.phone,
            hours: h.brigade.office_hours,
            officer: h.officer,
        }
    }
}

pub struct KindGroup {
    pub kind: String,
    pub items: Vec<MaterialItem>,
}

pub struct MaterialItem {
    pub id: Uuid,
    pub thumbnail: bool,
    /// Shown as its redacted copy (issue 34).
    pub redacted: bool,
    pub title: String,
    pub size: String,
    pub uploaded: String,
    pub released: String,
    pub case_id: Uuid,
}

/// `GET /cases/{id}`: the case as its parties and agents see it (materials come with the
/// materials work). Opening it is audited.
pub async fn view_case_get(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let (permit, facts) = parts::opened(&state, &user, &req, path.into_inner()).await?;
    let view = crate::materials::party_view(&state.db, &permit, &user.account).await?;
    let groups = parts::groups(&view, &permit);
    let party_like = matches!(user.role(), Role::Party | Role::Agent);
    let now = state.audit.now();
    let may_download =
        crate::policy::decide(&user.account, CaseAction::Download, &facts, now).is_ok();
    let grant = facts
        .grants
        .iter()
        .find(|g| g.in_force(now))
        .map(grant_text);
    let case = facts.case;
    let (review_application, may_apply) =
        parts::review_application(&state.db, &permit, &case, now, party_like).await?;
    let handling = HandlingPanel::of(cases::handling(&state.db, &case).await?);
    // A party's (or agent's): who opened their evidence, and what happened when.
    let (own_history, history, timeline) = if party_like {
        let history =
            crate::audit::read::case_history(&state.db, case.id, 100, user.account.id).await?;
        // The person's own views fold away, so that accesses by others stand out.
        let (own, others): (Vec<_>, Vec<_>) = history.into_iter().partition(|h| h.mine);
        (own, others, timeline_of(&state.db, case.id).await?)
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    let today = now.to_offset(time::macros::offset!(+8)).date();
    let review = parts::review_line(&case, today).filter(|_| party_like);
    // ~1.3 KB of markup per material and ~0.3 KB per access, on top of the page's frame.
    let size = 16 * 1024 + 1400 * view.visible.len() + 400 * (history.len() + own_history.len());
    render_sized(
        &CasePage {
            history,
            own_history,
            case_id: case.id,
            groups,
            party_like,
            review_application,
            may_apply,
            grant,
            redacted: crate::materials::redactions::told(&view),
            preparing: (view.preparing > 0).then(|| {
                crate::i18n::Locale::current()
                    .tf("redact.preparing", &[("n", &view.preparing.to_string())])
            }),
            withheld: if party_like {
                parts::withheld_lines(&view)
            } else {
                Vec::new()
            },
            layout: Layout::for_user(&user),
            occurred: cst(case.occurred_at),
            status: crate::i18n::label(case.status),
            view_only: !may_download,
            served: parts::served_line(&case),
            review_deadline: cases::review_deadline(&case)
                .filter(|_| party_like)
                .map(|d| super::deadline::words(crate::i18n::Locale::current(), d, today)),
            handling,
            review,
            timeline,
            next_step: next_step(case.status).filter(|_| party_like),
            number: case.case_number,
            place: case.place,
        },
        size,
    )
}

#[derive(Template)]
#[template(path = "cases/viewer.html")]
struct ViewerPage {
    layout: Layout,
    case_id: Uuid,
    case_number: String,
    title: String,
    kind: String,
    size: String,
    /// `image`, `pdf`, `pages`, `video`, `preparing` or `other`.
    shape: &'static str,
    content_url: String,
    download_url: Option<String>,
    /// The material's custody record (issue 36): staff's full one, or what concerns the reader.
    custody_url: String,
    watermark: String,
    /// View-only: what is shown is rendered with the viewer burned in (and said so).
    view_only: bool,
    /// What is shown is rendered with the viewer burned in, though the original may be
    /// downloaded (after the determination).
    rendered: bool,
    /// A view-only PDF: its pages as rendered images (number, text alternative).
    pages: Vec<(u32, String)>,
    /// A view-only video being made ready (shape `preparing`): how far it is.
    progress: Option<String>,
}

/// `GET /cases/{id}/materials/{material_id}`: the viewer — images with zoom and pan, PDFs page
/// by page as renderings with the viewer burned in (staff: in the browser's own viewer), video
/// with seeking (for a view-only person their watermarked
/// transcode, with its progress while it is made), anything else as a download — under a
/// watermark with the viewer's masked identity and the time. The bytes come from the content
/// route, which audits them.
pub async fn view_material_get(
    user: CurrentUser,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> AppResult<HttpResponse> {
    let (case_id, material_id) = path.into_inner();
    let (permit, facts, material) = cases::authorize_material(
        &state.db,
        &state.audit,
        &user.account,
        client_of(&req),
        CaseAction::ViewMaterial,
        case_id,
        material_id,
    )
    .await?;
    let view_only = !permit.originals;
    // Viewing is always a rendering for the people of a case, whatever the stage (copying is the
    // download): what they see bears them. Staff see originals.
    let rendered = view_only
        || (!matches!(user.account.role, Role::Staff | Role::Admin)
            && crate::render::renderable(&material.content_type)
            && material.size as u64 <= crate::render::MAX_SOURCE);
    let may_download = crate::policy::decide(
        &user.account,
        CaseAction::Download,
        &facts,
        state.audit.now(),
    )
    .is_ok();
    let ct = material.content_type.as_str();
    let mut shape = parts::shape(ct);
    let mut pages = Vec::new();
    let mut progress = None;
    if view_only && shape == "video" {
        let client = client_of(&req);
        (shape, progress) =
            super::video::for_viewer(&state, &user.account, &facts.case, &material, client).await?;
    } else if view_only && !super::rendered::renderable(ct) {
        shape = "other";
    } else if rendered && shape == "pdf" {
        (shape, pages) = parts::pages(&state, &material).await;
    }
    let base = format!("/cases/{case_id}/materials/{material_id}");
    let mut layout = Layout::for_user(&user);
    if shape == "image" || shape == "pages" {
        layout.scripts.push(crate::assets::url("viewer.js"));
    }
    render(&ViewerPage {
        layout,
        case_id,
        case_number: facts.case.case_number,
        kind: crate::i18n::label(material.kind),
        size: super::staff::human_size(material.size),
        shape,
        content_url: format!("{base}/view"),
        download_url: may_download.then(|| format!("{base}/download")),
        custody_url: if user.account.role == crate::vocab::Role::Staff {
            format!("/staff/cases/{case_id}/materials/{material_id}/custody")
        } else {
            format!("/cases/{case_id}/custody/{material_id}")
        },
        view_only,
        rendered,
        pages,
        progress,
        watermark: parts::watermark(&user.account),
        title: material.title,
    })
}
