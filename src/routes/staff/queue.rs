//! The officer's landing page: what needs doing in their brigade — applications (who, how long
//! they have waited, when a review must be forwarded), drafts, parties to activate, review
//! windows.

use super::*;

#[derive(Template)]
#[template(path = "staff/queue.html")]
struct QueuePage {
    layout: Layout,
    drafts: Vec<QueueCase>,
    drafts_total: usize,
    waiting: Vec<QueueParty>,
    reviews: Vec<QueueCase>,
    /// Review applications to forward or follow, access applications to decide.
    applications: Vec<QueueApplication>,
}

struct QueueApplication {
    id: Uuid,
    /// The staff page where the next step is taken.
    url: String,
    receipt_no: String,
    number: String,
    kind: String,
    state: String,
    /// The applicant's name, and their company (insurers).
    name: String,
    organisation: Option<String>,
    /// How long ago it was filed ("2天前").
    age: String,
    /// A review to forward: the last day to do it (Art. 72), and whether it has passed.
    forward_by: Option<(String, bool)>,
}

/// How long ago `filed_at` was, at `now`, in the page's language: minutes within the hour,
/// hours within the day, then days ("2天前").
pub(super) fn age(filed_at: OffsetDateTime, now: OffsetDateTime) -> String {
    let waited = (now - filed_at).max(time::Duration::ZERO);
    let (key, n) = if waited < time::Duration::HOUR {
        ("queue.age.minutes", waited.whole_minutes())
    } else if waited < time::Duration::DAY {
        ("queue.age.hours", waited.whole_hours())
    } else {
        ("queue.age.days", waited.whole_days())
    };
    Locale::current().tf(key, &[("n", &n.to_string())])
}

struct QueueCase {
    id: Uuid,
    number: String,
    count: usize,
    /// For a review: where its window stands.
    count_text: String,
}

struct QueueParty {
    case_id: Uuid,
    number: String,
    party: String,
    /// When the party's code runs out, or that a new notice is needed.
    code: String,
    /// The code runs out within three days, or already has.
    urgent: bool,
}

/// The brigade's applications still open (filed, forwarded, accepted, pending), each linking to
/// where it is decided.
async fn open_applications(
    state: &AppState,
    department_id: Uuid,
    now: OffsetDateTime,
    today: time::Date,
) -> AppResult<Vec<QueueApplication>> {
    let locale = Locale::current();
    let open = ["filed", "forwarded", "accepted", "pending"];
    Ok(crate::applications::ledger::list(
        &state.db,
        Some(department_id),
        &crate::applications::ledger::Filter::default(),
    )
    .await?
    .into_iter()
    .filter(|e| open.contains(&e.state))
    .map(|e| QueueApplication {
        id: e.id,
        age: age(e.filed_at, now),
        forward_by: e.forward_by.map(|last| (locale.date(last), last < today)),
        name: e.name,
        organisation: e.organisation,
        url: if e.kind == "access" {
            format!("/staff/applications/{}", e.id)
        } else {
            format!("/staff/cases/{}#review-{}", e.case_id, e.id)
        },
        receipt_no: e.receipt_no,
        number: e.case_number,
        kind: locale.t(&format!("ledger.kind.{}", e.kind)).into_owned(),
        state: locale
            .t(&format!("{}.{}", e.state_catalog, e.state))
            .into_owned(),
    })
    .collect())
}

/// `GET /staff`: what needs doing in the officer's brigade — drafts to decide, parties still to
/// activate (and whose codes run out), cases in their review window — each linking to the place
/// on the case page where it is done.
pub async fn view_queue_get(
    staff: StaffUser,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let department_id = staff.0.account.department_id.ok_or(AppError::Forbidden)?;
    let now = state.clock.now();
    let today = now.to_offset(time::macros::offset!(+8)).date();
    let queue = cases::work_queue(&state.db, department_id, today, now).await?;
    let locale = Locale::current();
    let applications = open_applications(&state, department_id, now, today).await?;
    let drafts: Vec<QueueCase> = queue
        .drafts
        .into_iter()
        .map(|(c, n)| QueueCase {
            id: c.id,
            number: c.case_number,
            count: n,
            count_text: String::new(),
        })
        .collect();
    render(&QueuePage {
        layout: Layout::for_user(&staff.0),
        applications,
        drafts_total: drafts.iter().map(|d| d.count).sum(),
        drafts,
        waiting: queue
            .waiting
            .into_iter()
            .map(|w| QueueParty {
                case_id: w.case.id,
                number: w.case.case_number,
                party: locale.tf(
                    "staff.notice.party_value",
                    &[("name", &w.party.name), ("label", &w.party.label)],
                ),
                urgent: w
                    .code_expires
                    .is_none_or(|e| e - now < time::Duration::days(3)),
                code: w.code_expires.map_or_else(
                    || locale.t("queue.code_gone").into_owned(),
                    |e| locale.tf("queue.code_until", &[("time", &cst(e))]),
                ),
            })
            .collect(),
        reviews: queue
            .reviews
            .into_iter()
            .map(|(c, deadline)| QueueCase {
                count: 0,
                count_text: match cases::review_days_left(&c, today) {
                    Some(0) => {
                        locale.tf("queue.review_last_day", &[("date", &locale.date(deadline))])
                    }
                    Some(n) => locale.tf(
                        "queue.review_days_left",
                        &[("date", &locale.date(deadline)), ("n", &n.to_string())],
                    ),
                    None => String::new(),
                },
                id: c.id,
                number: c.case_number,
            })
            .collect(),
    })
}
