//! The inbox (站内信): what the portal told the signed-in person, newest first, and marking it
//! read. Every role has one; the header shows the unread count.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::flash::{self, Flash};
use super::{Layout, cst, render};
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::vocab::Role;

/// Notifications shown on the page.
const SHOWN: u64 = 100;

pub struct Item {
    pub text: String,
    pub when: String,
    pub unread: bool,
    /// The case page, for parties and agents.
    pub case_url: Option<String>,
}

#[derive(Template)]
#[template(path = "account/inbox.html")]
struct InboxPage {
    layout: Layout,
    csrf_token: String,
    items: Vec<Item>,
    /// The newest notification shown: "mark all read" marks up to it, not past it.
    newest: Option<Uuid>,
    any_unread: bool,
}

/// A notification in the reader's language (from the catalog, with its parameters).
pub fn text_of(event: &str, params: &serde_json::Value) -> String {
    let locale = crate::i18n::Locale::current();
    let case = params["case"].as_str().unwrap_or("");
    let count = params["count"].as_u64().unwrap_or(1).to_string();
    let until = params["until"].as_str().map(|u| match u.len() {
        10 => time::Date::parse(u, &time::format_description::well_known::Iso8601::DATE)
            .map(|d| locale.date(d))
            .unwrap_or_else(|_| u.to_owned()),
        _ => u.to_owned(),
    });
    let deadline = params["deadline"]
        .as_str()
        .and_then(|d| {
            time::Date::parse(d, &time::format_description::well_known::Iso8601::DATE).ok()
        })
        .map(|d| locale.date(d));
    let key = match (event, &deadline) {
        ("material.released", _) => "inbox.event.material_released",
        ("case.disclosing", _) => "inbox.event.case_disclosing",
        ("case.served", Some(_)) => "inbox.event.case_served_deadline",
        ("case.served", None) => "inbox.event.case_served",
        ("case.closed", _) => "inbox.event.case_closed",
        ("review.closing", _) => "inbox.event.review_closing",
        ("delegation.registered", _) => "inbox.event.delegation_registered",
        ("delegation.ending", _) => "inbox.event.delegation_ending",
        ("delegation.revoked", _) => "inbox.event.delegation_revoked",
        ("code.expiring", _) => "inbox.event.code_expiring",
        ("account.reset", _) => "inbox.event.account_reset",
        ("second_factor.reset", _) => "inbox.event.second_factor_reset",
        ("review.filed", _) => "inbox.event.review_filed",
        ("review.forwarded", _) => "inbox.event.review_forwarded",
        ("review.accepted", _) => "inbox.event.review_accepted",
        ("review.refused", _) => "inbox.event.review_refused",
        ("review.concluded", _) => "inbox.event.review_concluded",
        _ => "inbox.event.other",
    };
    locale.tf(
        key,
        &[
            ("case", case),
            ("n", &count),
            ("deadline", deadline.as_deref().unwrap_or("")),
            ("until", until.as_deref().unwrap_or("")),
            ("receipt", params["receipt"].as_str().unwrap_or("")),
        ],
    )
}

/// `GET /inbox`
pub async fn view_inbox_get(
    user: CurrentUser,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let rows = crate::notifications::inbox(&state.db, user.account.id, SHOWN).await?;
    let opens_cases = matches!(
        user.role(),
        Role::Party | Role::Agent | Role::Owner | Role::Insurer
    );
    let items: Vec<Item> = rows
        .iter()
        .map(|n| {
            let params: serde_json::Value =
                serde_json::from_str(&n.params).unwrap_or(serde_json::Value::Null);
            Item {
                text: text_of(&n.event, &params),
                when: cst(n.created_at),
                unread: n.read_at.is_none(),
                case_url: n
                    .case_id
                    .filter(|_| opens_cases)
                    .map(|id| format!("/cases/{id}")),
            }
        })
        .collect();
    render(&InboxPage {
        layout: Layout::for_user(&user),
        csrf_token: user.csrf_token.clone(),
        any_unread: items.iter().any(|i| i.unread),
        items,
        newest: rows.first().map(|n| n.id),
    })
}

#[derive(Deserialize)]
pub struct ReadForm {
    upto: Option<String>,
}

/// `POST /inbox/read`: marks what the page showed as read.
pub async fn inbox_read_post(
    user: CurrentUser,
    state: web::Data<AppState>,
    form: web::Form<ReadForm>,
) -> AppResult<HttpResponse> {
    let Some(upto) = form
        .upto
        .as_deref()
        .and_then(|u| Uuid::parse_str(u.trim()).ok())
    else {
        return Err(AppError::bad_request(
            "invalid_form",
            "缺少要标为已读的消息 (which messages to mark as read is missing)",
        ));
    };
    let marked =
        crate::notifications::mark_read(&state.db, user.account.id, upto, state.clock.now())
            .await?;
    Ok(flash::see_other(
        "/inbox",
        Flash::new("inbox_read").with("n", marked),
    ))
}

/// One notification of a case on the staff case page.
pub struct SentRow {
    pub when: String,
    pub recipient: String,
    pub text: String,
    /// "在站内 · 短信 138****8000：已发送" and the like.
    pub channels: String,
    pub failed: bool,
}

/// The case's latest 50 notifications for its staff page.
pub async fn sent_rows(
    db: &sea_orm::DatabaseConnection,
    case_id: Uuid,
) -> Result<Vec<SentRow>, sea_orm::DbErr> {
    let locale = crate::i18n::Locale::current();
    Ok(crate::notifications::of_case(db, case_id, 50)
        .await?
        .into_iter()
        .map(|sent| {
            let params: serde_json::Value =
                serde_json::from_str(&sent.notification.params).unwrap_or_default();
            let mut channels = vec![locale.t("staff.notices.inbox").into_owned()];
            channels.extend(sent.deliveries.iter().map(|d| delivery_state(locale, d)));
            SentRow {
                when: cst(sent.notification.created_at),
                recipient: sent.recipient,
                text: text_of(&sent.notification.event, &params),
                channels: channels.join(" · "),
                failed: sent.deliveries.iter().any(|d| d.state == "failed"),
            }
        })
        .collect())
}

/// Where one SMS or e-mail stands, in the page's language.
pub fn delivery_state(
    locale: crate::i18n::Locale,
    d: &crate::db::entities::outbox::Model,
) -> String {
    let channel = locale.t(if d.channel == "email" {
        "staff.notices.email"
    } else {
        "staff.notices.sms"
    });
    let address = crate::notifications::masked_address(&d.channel, &d.address);
    let error = d.last_error.clone().unwrap_or_default();
    let n = d.attempts.to_string();
    let state = match d.state.as_str() {
        "sent" => locale.t("staff.notices.sent").into_owned(),
        "failed" => locale.tf("staff.notices.failed", &[("error", &error), ("n", &n)]),
        _ if d.attempts == 0 => locale.t("staff.notices.queued").into_owned(),
        _ => locale.tf("staff.notices.retrying", &[("error", &error), ("n", &n)]),
    };
    locale.tf(
        "staff.notices.line",
        &[
            ("channel", &channel),
            ("address", &address),
            ("state", &state),
        ],
    )
}
