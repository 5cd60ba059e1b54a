//! Sends the outbox. Every instance runs [`keep_dispatching`]; each round claims due deliveries
//! for a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so two instances never claim the same row;
//! SQLite: the claim is one statement under its write lock), sends them, and records what
//! happened: sent, tried again later with a growing delay, or failed for good after
//! [`MAX_ATTEMPTS`] (listed for administrators). A process that dies between sending and
//! recording leaves the row claimed; when its lease ends another round sends it again with the
//! same idempotency key, which the provider recognises. Every attempt is audited
//! (`notification.sent` / `notification.failed`) without the address or the text.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use time::OffsetDateTime;

use super::{Channel, State, sms};
use crate::audit::{Action, Actor, Audit, Event, Outcome};
use crate::db::entities::{notification, outbox};

/// How long a claimed delivery is this instance's: longer than a round of sends can take.
pub const LEASE: time::Duration = time::Duration::minutes(2);
/// Attempts before a delivery is given up (about 2 h 40 min of retries in all).
pub const MAX_ATTEMPTS: i32 = 6;
/// Deliveries claimed per round, and sent at once.
const BATCH: u64 = 20;
const AT_ONCE: usize = 8;

/// The channels this instance can send through, and the address messages point to.
pub struct Senders {
    pub sms: Option<sms::Gateway>,
    pub email: Option<super::email::Mailer>,
    pub portal_url: String,
    /// The server key, to open the sealed address just before sending and to write the
    /// one-time code an SMS carries (`code_of`); without it nothing is sent (`with_code_key`).
    pub code_key: Option<crate::keys::ServerKey>,
}

impl Senders {
    /// These senders, able to open addresses and write the codes of the SMS that carry one.
    pub fn with_code_key(mut self, key: crate::keys::ServerKey) -> Senders {
        self.code_key = Some(key);
        self
    }

    pub fn from_settings(settings: &crate::config::Settings) -> Senders {
        Senders {
            sms: settings.sms.as_ref().map(|s| {
                sms::Gateway::new(s.url.clone(), s.secret.clone(), settings.notify_timeout)
            }),
            email: settings.smtp.as_ref().and_then(|s| {
                let domain = settings.public_url.host_str().unwrap_or("localhost");
                super::email::Mailer::new(&s.url, &s.from, domain, settings.notify_timeout)
                    .map_err(|e| tracing::error!(error = %e, "notifications: e-mail disabled"))
                    .ok()
            }),
            portal_url: settings.public_url.to_string(),
            code_key: None,
        }
    }
}

/// The dispatcher loop of one instance: a round every `every`, at once again when a round was
/// full. Errors (the database away) are logged and the next round tries again.
pub async fn keep_dispatching(
    db: DatabaseConnection,
    audit: Audit,
    clock: crate::clock::Clock,
    senders: Arc<Senders>,
    every: Duration,
) {
    loop {
        match dispatch_due(&db, &audit, &clock, &senders).await {
            Ok(n) if n as u64 == BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "notifications: dispatch round failed"),
        }
        tokio::time::sleep(every).await;
    }
}

/// One round: claims what is due, sends, records. Returns how many were claimed.
pub async fn dispatch_due(
    db: &DatabaseConnection,
    audit: &Audit,
    clock: &crate::clock::Clock,
    senders: &Senders,
) -> Result<usize, DbErr> {
    let now = clock.now();
    let claimed = claim(db, now, BATCH).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let notes = super::by_id(db, claimed.iter().map(|d| d.notification_id).collect()).await?;
    // Each in the language its recipient last used, as it is when sent.
    let languages = super::languages(db, notes.values().map(|n| n.account_id).collect()).await?;
    let n = claimed.len();
    let results: Vec<Result<(), DbErr>> = futures_util::stream::iter(claimed)
        .map(|d| {
            let note = notes.get(&d.notification_id);
            let locale = note
                .and_then(|n| languages.get(&n.account_id).copied())
                .unwrap_or_default();
            async move {
                let outcome = match note {
                    Some(note) => send(senders, &d, note, locale, clock.now()).await,
                    None => sms::Outcome::Final("notification missing".into()),
                };
                record(db, audit, clock.now(), &d, note, outcome).await
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, DbErr>>()?;
    Ok(n)
}

/// Marks up to `limit` due deliveries as this round's for [`LEASE`] and counts the attempt.
async fn claim(
    db: &DatabaseConnection,
    now: OffsetDateTime,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    use outbox::Column as C;
    let mut due = Query::select();
    due.column(C::Id)
        .from(outbox::Entity)
        .and_where(C::State.eq(State::Pending.as_str()))
        .and_where(C::NextAttemptAt.lte(now))
        .and_where(C::ClaimedUntil.is_null().or(C::ClaimedUntil.lt(now)))
        .order_by(C::NextAttemptAt, Order::Asc)
        .limit(limit);
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    outbox::Entity::update_many()
        .col_expr(C::ClaimedUntil, Expr::value(now + LEASE))
        .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
        .filter(C::Id.in_subquery(due))
        .exec_with_returning(db)
        .await
}

async fn send(
    senders: &Senders,
    d: &outbox::Model,
    note: &notification::Model,
    locale: crate::i18n::Locale,
    now: OffsetDateTime,
) -> sms::Outcome {
    let params: serde_json::Value =
        serde_json::from_str(&note.params).unwrap_or(serde_json::Value::Null);
    let portal = &senders.portal_url;
    // The address is opened here, just before it is sent to, and kept nowhere.
    let field = match Channel::parse(&d.channel) {
        Some(Channel::Email) => crate::keys::Contact::Email,
        _ => crate::keys::Contact::Mobile,
    };
    let Some(address) = (senders.code_key.as_ref()).and_then(|k| k.open_contact(field, &d.address))
    else {
        return sms::Outcome::Final("the address cannot be opened with this key".into());
    };
    match Channel::parse(&d.channel) {
        Some(Channel::Sms) => match &senders.sms {
            Some(gateway) => {
                let mut params = params.clone();
                if super::Event::carries_code(&note.event) {
                    let Some(key) = &senders.code_key else {
                        return sms::Outcome::Final("no key to write the code with".into());
                    };
                    if let Some(map) = params.as_object_mut() {
                        map.insert("code".into(), super::code_of(key, note.id).into());
                    }
                }
                let text = super::sms_text(locale, &note.event, &params, portal);
                if let Some(map) = params.as_object_mut() {
                    map.insert("url".into(), portal.clone().into());
                }
                let sms = sms::Sms {
                    phone: &address,
                    template: &note.event,
                    lang: locale.code(),
                    params: &params,
                    text: &text,
                    key: &d.idempotency_key,
                };
                gateway.send(&sms, now.unix_timestamp()).await
            }
            None => sms::Outcome::Final("SMS gateway not configured (PORTAL_SMS_URL)".into()),
        },
        Some(Channel::Email) => match &senders.email {
            Some(mailer) => {
                let subject = super::email_subject(locale, &params);
                let text = super::email_text(locale, &note.event, &params, portal);
                mailer
                    .send(&address, &subject, &text, &d.idempotency_key)
                    .await
            }
            None => sms::Outcome::Final("e-mail not configured (PORTAL_SMTP_URL)".into()),
        },
        None => sms::Outcome::Final(format!("unknown channel {:?}", d.channel)),
    }
}

/// The delay before attempt `attempts + 1`: 1, 4, 16, 64 minutes…, at most 2 hours.
pub fn backoff(attempts: i32) -> time::Duration {
    let exp = attempts.clamp(1, 8) as u32 - 1;
    time::Duration::minutes(std::cmp::min(4i64.pow(exp), 120))
}

async fn record(
    db: &DatabaseConnection,
    audit: &Audit,
    now: OffsetDateTime,
    d: &outbox::Model,
    note: Option<&notification::Model>,
    outcome: sms::Outcome,
) -> Result<(), DbErr> {
    use outbox::Column as C;
    let (state, error) = match &outcome {
        sms::Outcome::Delivered => (State::Sent, None),
        sms::Outcome::Retry(why) if d.attempts < MAX_ATTEMPTS => (State::Pending, Some(why)),
        sms::Outcome::Retry(why) | sms::Outcome::Final(why) => (State::Failed, Some(why)),
    };
    let (action, result) = match state {
        State::Sent => (Action::NotificationSent, Outcome::Allowed),
        _ => (Action::NotificationFailed, Outcome::Failed),
    };
    let mut event = Event::new(Actor::SYSTEM, action, result).details(serde_json::json!({
        "delivery_id": d.id,
        "notification_id": d.notification_id,
        "channel": d.channel,
        "event": note.map(|n| n.event.as_str()),
        "attempt": d.attempts,
        "will_retry": state == State::Pending,
        "error": error,
    }));
    if let Some(case_id) = note.and_then(|n| n.case_id) {
        event = event.case(case_id);
    }
    if let Err(e) = audit.record(event).await {
        // Unrecorded, the attempt is not settled either: the lease runs out and it is tried
        // again (the idempotency key keeps a provider from delivering twice).
        tracing::warn!(error = %e, "notifications: attempt not audited; left to its lease");
        return Ok(());
    }
    let mut update = outbox::Entity::update_many()
        .col_expr(C::State, Expr::value(state.as_str()))
        .col_expr(C::ClaimedUntil, Expr::value(Option::<OffsetDateTime>::None))
        .col_expr(
            C::LastError,
            Expr::value(error.map(|e| e.chars().take(300).collect::<String>())),
        );
    match state {
        State::Sent => update = update.col_expr(C::SentAt, Expr::value(now)),
        State::Pending => {
            update = update.col_expr(C::NextAttemptAt, Expr::value(now + backoff(d.attempts)))
        }
        State::Failed => {}
    }
    // Only while the lease is still this round's: a round that overran it leaves the row to
    // whoever claimed it next.
    update
        .filter(C::Id.eq(d.id))
        .filter(C::ClaimedUntil.eq(d.claimed_until))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn retries_back_off_up_to_two_hours() {
        let minutes: Vec<i64> = (1..=8).map(|a| super::backoff(a).whole_minutes()).collect();
        assert_eq!(minutes, [1, 4, 16, 64, 120, 120, 120, 120]);
    }
}
