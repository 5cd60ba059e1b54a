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
    crate::notifications::inbox_text(crate::i18n::Locale::current(), event, params)
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
    /// Where it stands on each channel it really took: "站内消息：未读 · 短信 138****8000：已发送",
    /// "站内消息：账户未激活，尚不能查看 · 未发短信或邮件" and the like.
    pub channels: String,
    pub failed: bool,
}

/// The case's latest 50 notifications for its staff page.
pub async fn sent_rows(
    db: &sea_orm::DatabaseConnection,
    key: &crate::keys::ServerKey,
    case_id: Uuid,
) -> Result<Vec<SentRow>, sea_orm::DbErr> {
    let locale = crate::i18n::Locale::current();
    Ok(crate::notifications::of_case(db, case_id, 50)
        .await?
        .into_iter()
        .map(|sent| {
            let params: serde_json::Value =
                serde_json::from_str(&sent.notification.params).unwrap_or_default();
            let inbox = match (sent.inbox_open, sent.notification.read_at.is_some()) {
                (false, _) => "staff.notices.inbox_closed",
                (true, true) => "staff.notices.inbox_read",
                (true, false) => "staff.notices.inbox_unread",
            };
            let mut channels = vec![locale.t(inbox).into_owned()];
            channels.extend(
                sent.deliveries
                    .iter()
                    .map(|d| delivery_state(locale, key, d)),
            );
            if sent.deliveries.is_empty() {
                channels.push(locale.t("staff.notices.no_sms_email").into_owned());
            }
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
    key: &crate::keys::ServerKey,
    d: &crate::db::entities::outbox::Model,
) -> String {
    let channel = locale.t(if d.channel == "email" {
        "staff.notices.email"
    } else {
        "staff.notices.sms"
    });
    let address = crate::notifications::masked_delivery_address(key, d);
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
