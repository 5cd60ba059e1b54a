//! Parts of the case page and the viewer page, each a named idea: the materials by kind, the
//! review application and window, the notices, the viewer's shape and pages.

use super::{KindGroup, MaterialItem};
use crate::db::entities::{account, case, material};
use crate::error::AppResult;
use crate::policy::CasePermit;
use crate::routes::cst;
use crate::state::AppState;
use crate::vocab::{CaseStatus, MaterialKind, ServiceKind};

/// The case opened by `user`: authorized, and the opening audited.
pub(super) async fn opened(
    state: &AppState,
    user: &crate::auth::CurrentUser,
    req: &actix_web::HttpRequest,
    case_id: uuid::Uuid,
) -> AppResult<(CasePermit, crate::policy::CaseFacts)> {
    use crate::audit::{Action, Event, Outcome};
    let client = crate::auth::client_of(req);
    let (permit, facts) = crate::cases::authorize(
        &state.db,
        &state.audit,
        &user.account,
        client.clone(),
        crate::policy::CaseAction::View,
        case_id,
    )
    .await?;
    state
        .audit
        .record(
            Event::new(user.actor(), Action::CaseView, Outcome::Allowed)
                .case(permit.case_id)
                .client(client.0, client.1),
        )
        .await?;
    Ok((permit, facts))
}

/// The visible evidence grouped by kind, in the law's order; kinds with nothing left out.
pub(super) fn groups(view: &crate::materials::PartyView, permit: &CasePermit) -> Vec<KindGroup> {
    MaterialKind::EVIDENCE
        .iter()
        .map(|kind| KindGroup {
            kind: crate::i18n::label(*kind),
            items: view
                .visible
                .iter()
                .filter(|m| m.kind == *kind)
                .map(|m| MaterialItem {
                    id: m.id,
                    // An unmarked thumbnail is a copy too: none where only viewing is allowed.
                    thumbnail: crate::thumbnails::applies(m) && permit.originals,
                    redacted: view.redactions.contains_key(&m.id),
                    title: m.title.clone(),
                    size: crate::routes::staff::human_size(m.size),
                    uploaded: cst(m.uploaded_at),
                    released: m.decided_at.map(cst).unwrap_or_default(),
                    case_id: m.case_id,
                })
                .collect(),
        })
        .filter(|g| !g.items.is_empty())
        .collect()
}

/// The party's review application, if filed (receipt, state, what happens next), and whether
/// one may be filed now.
pub(super) async fn review_application(
    db: &sea_orm::DatabaseConnection,
    permit: &CasePermit,
    case: &case::Model,
    now: time::OffsetDateTime,
    party_like: bool,
) -> AppResult<(Option<(String, String, String)>, bool)> {
    let filed = match permit.as_party {
        Some(party) if matches!(case.status, CaseStatus::Served | CaseStatus::Closed) => {
            crate::applications::review::of_party(db, case.id, party).await?
        }
        _ => None,
    };
    let may_apply =
        party_like && filed.is_none() && crate::applications::review::window(case, now).is_ok();
    let filed = filed.map(|a| {
        (
            a.receipt_no.clone(),
            crate::i18n::label(a.state),
            crate::i18n::t(&format!("case.review.next.{}", a.state.as_str())),
        )
    });
    Ok((filed, may_apply))
}

/// The review window in words: the last day, days left, or passed.
pub(super) fn review_line(case: &case::Model, today: time::Date) -> Option<String> {
    let deadline = crate::cases::review_deadline(case)?;
    let locale = crate::i18n::Locale::current();
    let date = crate::routes::deadline::day(locale, deadline, today);
    let words = crate::routes::deadline::words(locale, deadline, today);
    Some(match crate::cases::review_days_left(case, today) {
        Some(0) => locale.tf("case.review.last_day", &[("date", &date)]),
        Some(_) => locale.tf("case.review.days_left", &[("deadline", &words)]),
        None => locale.tf("case.review.passed", &[("date", &date)]),
    })
}

/// How many items are withheld, on which grounds (a party's matter).
pub(super) fn withheld_lines(view: &crate::materials::PartyView) -> Vec<String> {
    view.withheld
        .iter()
        .map(|(ground, n)| {
            crate::i18n::Locale::current().tf(
                "case.withheld_count",
                &[
                    ("ground", &crate::i18n::label(*ground)),
                    ("n", &n.to_string()),
                ],
            )
        })
        .collect()
}

/// When and what was served: the determination or the certificate.
pub(super) fn served_line(case: &case::Model) -> Option<String> {
    case.served_on.map(|d| {
        let locale = crate::i18n::Locale::current();
        let kind = if case.service_kind == Some(ServiceKind::Certificate) {
            "case.served_certificate"
        } else {
            "case.served_determination"
        };
        locale.tf(kind, &[("date", &locale.date(d))])
    })
}

/// How the viewer shows a content type: `image`, `pdf`, `video` or `other`.
pub(super) fn shape(content_type: &str) -> &'static str {
    let ct = content_type;
    if ct.starts_with("image/") && ct != "image/tiff" {
        "image"
    } else if ct == "application/pdf" {
        "pdf"
    } else if ct.starts_with("video/") {
        "video"
    } else {
        "other"
    }
}

/// A PDF shown page by page: `pages` with each page's number and alternative text; `other`
/// (a download) where its pages cannot be counted.
pub(super) async fn pages(
    state: &AppState,
    material: &material::Model,
) -> (&'static str, Vec<(u32, String)>) {
    match crate::routes::rendered::page_count(state, material).await {
        Ok(n) => {
            let locale = crate::i18n::Locale::current();
            let pages = (1..=n)
                .map(|i| {
                    let alt = locale.tf(
                        "viewer.page_of",
                        &[("n", &i.to_string()), ("m", &n.to_string())],
                    );
                    (i, alt)
                })
                .collect();
            ("pages", pages)
        }
        Err(e) => {
            tracing::info!(material = %material.id, error = %e, "PDF pages not counted");
            ("other", Vec::new())
        }
    }
}

/// The viewer's mark: masked name, masked login and the time.
pub(super) fn watermark(account: &account::Model) -> String {
    format!(
        "{} {} {}",
        account
            .display_name
            .chars()
            .next()
            .map(|c| format!("{c}**"))
            .unwrap_or_default(),
        account.login_masked,
        cst(time::OffsetDateTime::now_utc())
    )
}
