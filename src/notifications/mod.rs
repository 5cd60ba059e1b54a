//! Telling people what happened on their case (issue: notifications).
//!
//! Every event lands in the person's inbox (站内信, always on) and, for each channel they chose
//! (SMS, e-mail), as a delivery in the outbox — both written with [`notify`] inside the
//! transaction of the change that causes them, so a change is never committed without its
//! messages and no message exists for a change that was rolled back. [`dispatch`] sends the
//! deliveries from every instance, each claimed by one of them at a time.
//!
//! Messages carry no evidence, no access code, no name and no ID number: a masked case number,
//! what happened, a date where one matters, and the portal's address. SMS and e-mail are
//! written in the recipient's language alone (the one they last used: `account.language`,
//! Chinese by default), an SMS within one segment where it can be (`text`).

pub mod dispatch;
pub mod email;
mod event;
pub mod sms;
mod text;
mod told;

pub use event::Event;

pub use text::{
    SIGNATURE, email_subject, email_text, inbox_text, masked_address, masked_case_number,
    sms_segments, sms_text,
};
pub use told::{Reached, Sent, Told, failed, of_case, reached};

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::entities::{account, case, notification, outbox};
use crate::i18n::Locale;
use sea_orm::ColumnTrait;
use sea_orm::sea_query::ExprTrait;

pub use crate::state::Channels;

/// The accounts told about a case's events: its parties, and the agents whose delegation is in
/// force at `now`.
pub async fn case_audience(
    db: &impl ConnectionTrait,
    case_id: Uuid,
    now: OffsetDateTime,
) -> Result<Vec<account::Model>, DbErr> {
    use crate::db::entities::{case_party, delegation};
    let mut ids: Vec<Uuid> = case_party::Entity::find()
        .filter(case_party::Column::CaseId.eq(case_id))
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.account_id)
        .collect();
    ids.extend(
        delegation::Entity::find()
            .filter(delegation::Column::CaseId.eq(case_id))
            .filter(delegation::Column::RevokedAt.is_null())
            .filter(delegation::Column::ValidFrom.lte(now))
            .filter(delegation::Column::ValidUntil.gt(now))
            .all(db)
            .await?
            .into_iter()
            .map(|d| d.agent_account_id),
    );
    ids.sort();
    ids.dedup();
    account::Entity::find()
        .filter(account::Column::Id.is_in(ids))
        .filter(account::Column::Disabled.eq(false))
        .all(db)
        .await
}

/// Writes `event` into the inbox of each of `to`, and one delivery per channel they chose,
/// on `txn` — the caller's transaction, so the messages commit with the change or not at all.
pub async fn notify(
    txn: &impl ConnectionTrait,
    channels: Channels,
    to: &[account::Model],
    case: Option<&case::Model>,
    event: &Event,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    notify_keyed(txn, channels, to, case, event, now, None).await?;
    Ok(())
}

/// As [`notify`], once per person and `key`: a reminder a scan finds again (here or in another
/// instance) is not written again. Returns how many were written.
pub async fn notify_once(
    txn: &impl ConnectionTrait,
    channels: Channels,
    to: &[account::Model],
    case: Option<&case::Model>,
    event: &Event,
    now: OffsetDateTime,
    key: &str,
) -> Result<usize, DbErr> {
    notify_keyed(txn, channels, to, case, event, now, Some(key)).await
}

async fn notify_keyed(
    txn: &impl ConnectionTrait,
    channels: Channels,
    to: &[account::Model],
    case: Option<&case::Model>,
    event: &Event,
    now: OffsetDateTime,
    key: Option<&str>,
) -> Result<usize, DbErr> {
    let mut written = 0;
    for person in to {
        let key = key.map(|k| format!("{k}:{}", person.id));
        if notify_person(txn, channels, person, case, event, now, key).await? {
            written += 1;
        }
    }
    Ok(written)
}

/// The notifications of `ids`, by id.
pub async fn by_id(
    db: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<std::collections::HashMap<Uuid, notification::Model>, DbErr> {
    Ok(notification::Entity::find()
        .filter(notification::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|n| (n.id, n))
        .collect())
}

async fn notify_person(
    txn: &impl ConnectionTrait,
    channels: Channels,
    person: &account::Model,
    case: Option<&case::Model>,
    event: &Event,
    now: OffsetDateTime,
    dedupe_key: Option<String>,
) -> Result<bool, DbErr> {
    let Some(id) = inbox_row(txn, person, case, event, now, dedupe_key).await? else {
        return Ok(false);
    };
    let told = Told::reaching(channels, person);
    let chosen = [
        (Channel::Sms, told.sms, person.mobile.as_deref()),
        (Channel::Email, told.email, person.email.as_deref()),
    ];
    for (channel, chosen, address) in chosen {
        let Some(address) = address.filter(|_| chosen) else {
            continue;
        };
        queue(txn, id, channel, address, now).await?;
    }
    Ok(true)
}

/// Writes `event` into `person`'s inbox and queues it by SMS to `mobile` alone — a number an
/// application gave, whatever the account chose for its own messages — on `txn`. For what must
/// reach the number typed with a receipt number (`Event::AccessLookupCode`); nothing at all
/// where this installation sends no SMS. Returns the notification's id: the code its SMS
/// carries, if it carries one, is [`code_of`] it.
pub async fn text_to(
    txn: &impl ConnectionTrait,
    channels: Channels,
    person: &account::Model,
    mobile: &str,
    event: &Event,
    now: OffsetDateTime,
) -> Result<Option<Uuid>, DbErr> {
    if !channels.sms {
        return Ok(None);
    }
    let Some(id) = inbox_row(txn, person, None, event, now, None).await? else {
        return Ok(None);
    };
    queue(txn, id, Channel::Sms, mobile, now).await?;
    Ok(Some(id))
}

/// The one-time code the SMS of notification `id` carries (see `Event::carries_code`): six
/// digits of a keyed hash of its id. So no row holds the code: the dispatcher computes it as it
/// sends, and whoever queued the message keeps at most a keyed hash of it.
pub fn code_of(key: &crate::keys::ServerKey, id: Uuid) -> String {
    let mac = key.mac(b"notification-code", id.as_bytes());
    let n = mac[..8].iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)) % 1_000_000;
    format!("{n:06}")
}

/// The inbox row of `event` for `person` (and their unread count), unless `dedupe_key` was
/// written before: its id.
async fn inbox_row(
    txn: &impl ConnectionTrait,
    person: &account::Model,
    case: Option<&case::Model>,
    event: &Event,
    now: OffsetDateTime,
    dedupe_key: Option<String>,
) -> Result<Option<Uuid>, DbErr> {
    use sea_orm::sea_query::OnConflict;
    let mut params = event.params();
    if let Some(case) = case {
        params.insert("case".into(), masked_case_number(&case.case_number).into());
    }
    let id = Uuid::now_v7();
    let row = notification::ActiveModel {
        id: Set(id),
        account_id: Set(person.id),
        case_id: Set(case.map(|c| c.id)),
        event: Set(event.word().to_owned()),
        params: Set(serde_json::Value::Object(params).to_string()),
        created_at: Set(now),
        read_at: Set(None),
        dedupe_key: Set(dedupe_key),
    };
    let written = notification::Entity::insert(row)
        .on_conflict(
            OnConflict::column(notification::Column::DedupeKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    if written == 0 {
        return Ok(None);
    }
    account::Entity::update_many()
        .col_expr(
            account::Column::UnreadNotifications,
            sea_orm::sea_query::Expr::col(account::Column::UnreadNotifications).add(1),
        )
        .filter(account::Column::Id.eq(person.id))
        .exec(txn)
        .await?;
    Ok(Some(id))
}

/// One delivery of notification `id` by `channel` to `address`, due now.
async fn queue(
    txn: &impl ConnectionTrait,
    id: Uuid,
    channel: Channel,
    address: &str,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        notification_id: Set(id),
        channel: Set(channel.as_str().to_owned()),
        address: Set(address.to_owned()),
        idempotency_key: Set(format!("{id}-{}", channel.as_str())),
        state: Set(State::Pending.as_str().to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        claimed_until: Set(None),
        last_error: Set(None),
        sent_at: Set(None),
        created_at: Set(now),
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// A delivery's address as staff lists show it (`138****8000`, `z***@example.com`): opened
/// (it is sealed at rest), then masked; an address retention emptied shows as the mask of
/// nothing.
pub fn masked_delivery_address(key: &crate::keys::ServerKey, d: &outbox::Model) -> String {
    let field = match Channel::parse(&d.channel) {
        Some(Channel::Email) => crate::keys::Contact::Email,
        _ => crate::keys::Contact::Mobile,
    };
    let address = key.open_contact(field, &d.address).unwrap_or_default();
    masked_address(&d.channel, &address)
}

/// Keeps `locale` as the language the person last used: their SMS and e-mail are written in
/// it. Written only when it changed.
pub async fn remember_language(
    db: &impl ConnectionTrait,
    account_id: Uuid,
    locale: Locale,
) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(
            account::Column::Language,
            sea_orm::sea_query::Expr::value(locale.code()),
        )
        .filter(account::Column::Id.eq(account_id))
        .filter(
            account::Column::Language
                .is_null()
                .or(account::Column::Language.ne(locale.code())),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// The language of an account as messages to it are written: the one it last used, else
/// Chinese.
pub fn language_of(person: &account::Model) -> Locale {
    person
        .language
        .as_deref()
        .and_then(Locale::from_code)
        .unwrap_or_default()
}

/// The languages of `ids` ([`language_of`]), by id.
pub async fn languages(
    db: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<std::collections::HashMap<Uuid, Locale>, DbErr> {
    Ok(account::Entity::find()
        .filter(account::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.id, language_of(&a)))
        .collect())
}

/// The person's latest `limit` notifications, newest first.
pub async fn inbox(
    db: &impl ConnectionTrait,
    account_id: Uuid,
    limit: u64,
) -> Result<Vec<notification::Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    notification::Entity::find()
        .filter(notification::Column::AccountId.eq(account_id))
        .order_by_desc(notification::Column::CreatedAt)
        .order_by_desc(notification::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Marks the person's notifications up to `upto` (the newest their page showed) as read — not
/// one that arrived after the page was drawn — and recounts their unread ones, in one
/// transaction. Returns how many were marked.
pub async fn mark_read(
    db: &sea_orm::DatabaseConnection,
    account_id: Uuid,
    upto: Uuid,
    now: OffsetDateTime,
) -> Result<u64, DbErr> {
    use sea_orm::TransactionTrait;
    use sea_orm::sea_query::{Expr, Query};
    let txn = db.begin().await?;
    let Some(last) = notification::Entity::find_by_id(upto)
        .one(&txn)
        .await?
        .filter(|n| n.account_id == account_id)
    else {
        return Ok(0);
    };
    let marked = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(now))
        .filter(notification::Column::AccountId.eq(account_id))
        .filter(notification::Column::ReadAt.is_null())
        .filter(notification::Column::CreatedAt.lte(last.created_at))
        .exec(&txn)
        .await?
        .rows_affected;
    let unread = Query::select()
        .expr(Expr::col(notification::Column::Id).count())
        .from(notification::Entity)
        .and_where(notification::Column::AccountId.eq(account_id))
        .and_where(notification::Column::ReadAt.is_null())
        .to_owned();
    account::Entity::update_many()
        .col_expr(account::Column::UnreadNotifications, Expr::expr(unread))
        .filter(account::Column::Id.eq(account_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(marked)
}

/// How a person wants to be told, as their account page sends it.
pub struct Choice {
    pub mobile: String,
    pub email: String,
    pub sms: bool,
    pub email_on: bool,
}

/// A choice that cannot be kept: which field, and why.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ChoiceError {
    pub field: &'static str,
    pub message: String,
}

/// A plausible e-mail address, bare: one `@` with text either side, a dot in the domain, no
/// spaces or control characters, at most 254 characters — and none of the characters that make
/// a display name, a quoted part, a comment or a list (`<>()[]",;:\`): `李明<x@example.com>`
/// or `x@example.com, y@example.com` is refused, not kept as what a mailer would read it as.
/// Whether it reaches anyone, only a message can tell.
pub fn parse_email(raw: &str) -> Option<String> {
    let s = raw.trim();
    let (local, domain) = s.split_once('@')?;
    let plausible = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.len() <= 254
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || NOT_IN_A_BARE_ADDRESS.contains(&c));
    plausible.then(|| s.to_owned())
}

/// RFC 5322's specials (with `@` checked apart): they belong to the syntax around an address
/// (display names, quoting, comments, groups, lists), never inside a bare one as people type it.
const NOT_IN_A_BARE_ADDRESS: &[char] = &['<', '>', '(', ')', '[', ']', '"', ',', ';', ':', '\\'];

/// Checks and keeps a person's channels and addresses (sealed: `ServerKey::seal_contact`),
/// audited (`account.notifications`, with the channels chosen and the addresses masked).
pub async fn set_channels(
    db: &sea_orm::DatabaseConnection,
    audit: &crate::audit::Audit,
    key: &crate::keys::ServerKey,
    person: &account::Model,
    choice: Choice,
) -> Result<(), ChannelsError> {
    let mobile = match choice.mobile.trim() {
        "" => None,
        raw => Some(
            crate::auth::identifier::parse_mobile(raw).map_err(|e| ChoiceError {
                field: "mobile",
                message: e.to_string(),
            })?,
        ),
    };
    let email = match choice.email.trim() {
        "" => None,
        raw => Some(parse_email(raw).ok_or(ChoiceError {
            field: "email",
            message: "电子邮箱地址格式不对 (this is not an e-mail address)".into(),
        })?),
    };
    if choice.sms && mobile.is_none() {
        return Err(ChoiceError {
            field: "mobile",
            message: "要接收短信，请填写手机号码 (give a mobile number to receive SMS)".into(),
        }
        .into());
    }
    if choice.email_on && email.is_none() {
        return Err(ChoiceError {
            field: "email",
            message: "要接收邮件，请填写电子邮箱 (give an e-mail address to receive e-mail)".into(),
        }
        .into());
    }
    // Masked as the staff lists show them: the audit log keeps no address in clear.
    let masked_mobile = mobile.as_deref().map(|m| masked_address("sms", m));
    let email_domain = email.as_deref().map(|e| masked_address("email", e));
    audit
        .record(
            crate::audit::Event::new(
                crate::audit::Actor::account(person.id, person.role),
                crate::audit::Action::AccountNotifications,
                crate::audit::Outcome::Allowed,
            )
            .details(serde_json::json!({
                "sms": choice.sms, "email": choice.email_on,
                "mobile": masked_mobile, "email_address": email_domain,
            })),
        )
        .await?;
    let mut row: account::ActiveModel = person.clone().into();
    use crate::keys::Contact;
    row.mobile = Set(mobile.map(|m| key.seal_contact(Contact::Mobile, &m)));
    row.email = Set(email.map(|e| key.seal_contact(Contact::Email, &e)));
    row.notify_sms = Set(choice.sms);
    row.notify_email = Set(choice.email_on);
    row.update(db).await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelsError {
    #[error(transparent)]
    Choice(#[from] ChoiceError),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// How a delivery travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Sms,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "sms" => Some(Channel::Sms),
            "email" => Some(Channel::Email),
            _ => None,
        }
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    Sent,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sent => "sent",
            State::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests;
