//! Personal data kept no longer than needed (PIPL minimisation): the sweeps that clear or remove
//! what has served its purpose. Evidence, cases, applications and the audit log are never
//! touched here: how long a case file is kept is the brigade's archive rule, not the portal's.
//!
//! Run by `gc` (listed; applied with `--delete`) and hourly by every serving instance
//! ([`keep_sweeping`]); each sweep is idempotent, so instances may run them together. An
//! account's anonymisation is audited (`account.disable`, `"retention": true`), since audit
//! events name the account; the other sweeps clear rows nobody refers to and are logged with
//! their counts. The periods are the constants below (README "Retention").

use std::time::Duration as StdDuration;

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbBackend, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect,
};
use time::{Duration, OffsetDateTime};

use crate::audit::{Action, Actor, Audit, Event, Outcome};
use crate::db::entities::{
    access_application, account, activation, api_token, application_lookup, login_throttle,
    notification, outbox, rate_limit, second_factor, session, webauthn_challenge,
};
use crate::db::times::{at_or_after, before};
use crate::vocab::{AccessState, Role};

/// A delivered SMS or e-mail keeps its address, and a notification the names in its text, this
/// long; then both are cleared (the state and times stay).
pub const DELIVERED: Duration = Duration::days(90);
/// A failed delivery is resolved when its notification was read in the inbox (the person was
/// told after all), or this long after it was written (administrators' list of failures has had
/// it for that long); then its address is cleared.
pub const FAILED_UNRESOLVED: Duration = Duration::days(90);
/// Sign-in throttle rows (15-minute windows) and rate-limit rows (windows of an hour or a day)
/// are removed once this much older than their window's start and no longer blocking.
pub const RATE_ROWS: Duration = Duration::days(2);
/// Passkey ceremonies (5 minutes), second-factor enrolments never confirmed (15 minutes) and
/// lookup codes (10 minutes) are removed this long after they began or expired.
pub const CEREMONIES: Duration = Duration::hours(1);
/// A session's row (its address and browser) is removed this long after it ended.
pub const SESSIONS: Duration = Duration::days(90);
/// An owner's or insurer's account whose applications were all refused is anonymised this long
/// after the last refusal.
pub const REFUSED_APPLICANTS: Duration = Duration::days(180);
/// How often a serving instance sweeps.
pub const EVERY: StdDuration = StdDuration::from_secs(3600);

/// The display name an anonymised account keeps (audit events still name its id).
pub const REMOVED_NAME: &str = "已删除的申请人 (removed applicant)";

/// Parameters of a notification that name or identify a person; the others (the masked case
/// number, counts, dates, kinds) stay so the inbox still reads.
const PERSONAL_PARAMS: [&str; 3] = ["person", "organisation", "receipt"];

/// What one sweep found (and, applied, cleared or removed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub delivered_addresses: u64,
    pub failed_addresses: u64,
    pub notification_texts: u64,
    pub throttle_rows: u64,
    pub rate_rows: u64,
    pub ceremonies: u64,
    pub enrolments: u64,
    pub lookup_codes: u64,
    pub sessions: u64,
    pub applicants: u64,
}

impl Swept {
    /// `(what, how many)` for printing and logging.
    pub fn lines(&self) -> [(&'static str, u64); 10] {
        [
            (
                "addresses of deliveries sent 90 days ago",
                self.delivered_addresses,
            ),
            (
                "addresses of failed deliveries resolved",
                self.failed_addresses,
            ),
            (
                "names in notifications of 90 days ago",
                self.notification_texts,
            ),
            (
                "sign-in throttle rows past their window",
                self.throttle_rows,
            ),
            ("rate-limit rows past their window", self.rate_rows),
            ("passkey ceremonies abandoned", self.ceremonies),
            ("second-factor enrolments never confirmed", self.enrolments),
            ("lookup codes expired", self.lookup_codes),
            ("sessions ended 90 days ago", self.sessions),
            (
                "accounts of applicants refused 180 days ago, anonymised",
                self.applicants,
            ),
        ]
    }

    pub fn total(&self) -> u64 {
        self.lines().iter().map(|(_, n)| n).sum()
    }
}

/// Runs every sweep as of `now`: with `apply` false only counts.
#[tracing::instrument(skip_all, err, fields(apply))]
pub async fn sweep(
    db: &DatabaseConnection,
    audit: &Audit,
    now: OffsetDateTime,
    apply: bool,
) -> Result<Swept, DbErr> {
    let b = db.get_database_backend();
    let mut swept = Swept::default();
    let (delivered, failed) = (deliveries_sent(b, now), deliveries_failed_resolved(b, now));
    swept.delivered_addresses = outbox::Entity::find()
        .filter(delivered.clone())
        .count(db)
        .await?;
    swept.failed_addresses = outbox::Entity::find()
        .filter(failed.clone())
        .count(db)
        .await?;
    if apply {
        for cond in [delivered, failed] {
            outbox::Entity::update_many()
                .col_expr(outbox::Column::Address, Expr::value(""))
                .col_expr(
                    outbox::Column::LastError,
                    Expr::value(Option::<String>::None),
                )
                .filter(cond)
                .exec(db)
                .await?;
        }
    }
    swept.notification_texts = notification_texts(db, now, apply).await?;

    let throttles = Condition::all()
        .add(before(
            b,
            login_throttle::Column::WindowStart,
            now - RATE_ROWS,
        ))
        .add(
            Condition::any()
                .add(login_throttle::Column::BlockedUntil.is_null())
                .add(before(b, login_throttle::Column::BlockedUntil, now)),
        );
    swept.throttle_rows = remove::<login_throttle::Entity>(db, throttles, apply).await?;
    let rates = Condition::all().add(before(b, rate_limit::Column::WindowStart, now - RATE_ROWS));
    swept.rate_rows = remove::<rate_limit::Entity>(db, rates, apply).await?;
    let ceremonies = Condition::all().add(before(
        b,
        webauthn_challenge::Column::CreatedAt,
        now - CEREMONIES,
    ));
    swept.ceremonies = remove::<webauthn_challenge::Entity>(db, ceremonies, apply).await?;
    let enrolments = Condition::all()
        .add(second_factor::Column::Confirmed.eq(false))
        .add(before(
            b,
            second_factor::Column::CreatedAt,
            now - CEREMONIES,
        ));
    swept.enrolments = remove::<second_factor::Entity>(db, enrolments, apply).await?;
    let lookups = Condition::all().add(before(
        b,
        application_lookup::Column::ExpiresAt,
        now - CEREMONIES,
    ));
    swept.lookup_codes = remove::<application_lookup::Entity>(db, lookups, apply).await?;
    let sessions = Condition::any()
        .add(before(b, session::Column::ExpiresAt, now - SESSIONS))
        .add(before(b, session::Column::RevokedAt, now - SESSIONS));
    swept.sessions = remove::<session::Entity>(db, sessions, apply).await?;

    let applicants = refused_applicants(db, now).await?;
    swept.applicants = applicants.len() as u64;
    if apply {
        for id in applicants {
            anonymise(db, audit, id).await?;
        }
    }
    Ok(swept)
}

/// Deliveries sent [`DELIVERED`] ago that still hold their address.
fn deliveries_sent(b: DbBackend, now: OffsetDateTime) -> Condition {
    Condition::all()
        .add(outbox::Column::State.eq("sent"))
        .add(before(b, outbox::Column::SentAt, now - DELIVERED))
        .add(outbox::Column::Address.ne(""))
}

/// Failed deliveries that are resolved (see [`FAILED_UNRESOLVED`]) and still hold their address.
fn deliveries_failed_resolved(b: DbBackend, now: OffsetDateTime) -> Condition {
    let read = Query::select()
        .column(notification::Column::Id)
        .from(notification::Entity)
        .and_where(notification::Column::ReadAt.is_not_null())
        .to_owned();
    Condition::all()
        .add(outbox::Column::State.eq("failed"))
        .add(outbox::Column::Address.ne(""))
        .add(
            Condition::any()
                .add(before(
                    b,
                    outbox::Column::CreatedAt,
                    now - FAILED_UNRESOLVED,
                ))
                .add(outbox::Column::NotificationId.in_subquery(read)),
        )
}

/// Notifications written [`DELIVERED`] ago, none of whose deliveries is still pending, lose the
/// parameters that name a person ([`PERSONAL_PARAMS`]). Returns how many (would) change.
async fn notification_texts(
    db: &DatabaseConnection,
    now: OffsetDateTime,
    apply: bool,
) -> Result<u64, DbErr> {
    let b = db.get_database_backend();
    let pending = Query::select()
        .column(outbox::Column::NotificationId)
        .from(outbox::Entity)
        .and_where(outbox::Column::State.eq("pending"))
        .to_owned();
    let mut named = Condition::any();
    for key in PERSONAL_PARAMS {
        named = named.add(notification::Column::Params.contains(format!("\"{key}\"")));
    }
    let rows: Vec<(uuid::Uuid, String)> = notification::Entity::find()
        .select_only()
        .column(notification::Column::Id)
        .column(notification::Column::Params)
        .filter(before(b, notification::Column::CreatedAt, now - DELIVERED))
        .filter(notification::Column::Id.not_in_subquery(pending))
        .filter(named)
        .into_tuple()
        .all(db)
        .await?;
    let mut changed = 0;
    for (id, params) in rows {
        let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(&params) else {
            continue;
        };
        if PERSONAL_PARAMS
            .iter()
            .filter_map(|k| map.remove(*k))
            .count()
            == 0
        {
            continue;
        }
        changed += 1;
        if apply {
            notification::Entity::update_many()
                .col_expr(
                    notification::Column::Params,
                    Expr::value(serde_json::Value::Object(map).to_string()),
                )
                .filter(notification::Column::Id.eq(id))
                .exec(db)
                .await?;
        }
    }
    Ok(changed)
}

/// Counts the rows of `entity` matching `cond`, and removes them when `apply`.
async fn remove<E: EntityTrait>(
    db: &DatabaseConnection,
    cond: Condition,
    apply: bool,
) -> Result<u64, DbErr>
where
    E::Model: Sync,
{
    if apply {
        Ok(E::delete_many().filter(cond).exec(db).await?.rows_affected)
    } else {
        E::find().filter(cond).count(db).await
    }
}

/// Owner and insurer accounts not yet anonymised that filed at least one application, all of
/// them refused, the last refusal [`REFUSED_APPLICANTS`] ago.
async fn refused_applicants(
    db: &DatabaseConnection,
    now: OffsetDateTime,
) -> Result<Vec<uuid::Uuid>, DbErr> {
    let b = db.get_database_backend();
    let filed = Query::select()
        .column(access_application::Column::AccountId)
        .from(access_application::Entity)
        .and_where(access_application::Column::AccountId.is_not_null())
        .to_owned();
    let still_open = Query::select()
        .column(access_application::Column::AccountId)
        .from(access_application::Entity)
        .and_where(access_application::Column::AccountId.is_not_null())
        .cond_where(
            Condition::any()
                .add(access_application::Column::State.ne(AccessState::Refused))
                .add(access_application::Column::DecidedAt.is_null())
                .add(at_or_after(
                    b,
                    access_application::Column::DecidedAt,
                    now - REFUSED_APPLICANTS,
                )),
        )
        .to_owned();
    account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .filter(account::Column::Role.is_in([Role::Owner, Role::Insurer]))
        .filter(account::Column::LoginKey.not_like("removed:%"))
        .filter(account::Column::Id.in_subquery(filed))
        .filter(account::Column::Id.not_in_subquery(still_open))
        .into_tuple()
        .all(db)
        .await
}

/// Anonymises one refused applicant's account: audited first (events name the account's id,
/// so the row stays, emptied, and disabled), then its name, sign-in, contacts, sessions, tokens,
/// access codes and inbox go.
async fn anonymise(db: &DatabaseConnection, audit: &Audit, id: uuid::Uuid) -> Result<(), DbErr> {
    use sea_orm::TransactionTrait;
    let event = Event::new(Actor::SYSTEM, Action::AccountDisable, Outcome::Allowed).details(
        serde_json::json!({
            "account_id": id,
            "retention": true,
            "reason": "every application refused more than 180 days ago: account anonymised",
        }),
    );
    if let Err(e) = audit.record(event).await {
        tracing::warn!(error = %e, "retention: anonymisation not audited; left for the next sweep");
        return Ok(());
    }
    let txn = db.begin().await?;
    let notes = Query::select()
        .column(notification::Column::Id)
        .from(notification::Entity)
        .and_where(notification::Column::AccountId.eq(id))
        .to_owned();
    outbox::Entity::delete_many()
        .filter(outbox::Column::NotificationId.in_subquery(notes))
        .exec(&txn)
        .await?;
    notification::Entity::delete_many()
        .filter(notification::Column::AccountId.eq(id))
        .exec(&txn)
        .await?;
    session::Entity::delete_many()
        .filter(session::Column::AccountId.eq(id))
        .exec(&txn)
        .await?;
    api_token::Entity::delete_many()
        .filter(api_token::Column::AccountId.eq(id))
        .exec(&txn)
        .await?;
    activation::Entity::delete_many()
        .filter(activation::Column::AccountId.eq(id))
        .exec(&txn)
        .await?;
    use account::Column as A;
    account::Entity::update_many()
        .col_expr(A::DisplayName, Expr::value(REMOVED_NAME))
        .col_expr(A::LoginKey, Expr::value(format!("removed:{id}")))
        .col_expr(A::LoginMasked, Expr::value("—"))
        .col_expr(A::PasswordHash, Expr::value(Option::<String>::None))
        .col_expr(A::Mobile, Expr::value(Option::<String>::None))
        .col_expr(A::Email, Expr::value(Option::<String>::None))
        .col_expr(A::Organisation, Expr::value(Option::<String>::None))
        .col_expr(A::Language, Expr::value(Option::<String>::None))
        .col_expr(A::NotifySms, Expr::value(false))
        .col_expr(A::NotifyEmail, Expr::value(false))
        .col_expr(A::UnreadNotifications, Expr::value(0))
        .col_expr(A::Disabled, Expr::value(true))
        .filter(A::Id.eq(id))
        .exec(&txn)
        .await?;
    txn.commit().await
}

/// Runs for the life of the process: every [`EVERY`] (the first an interval after start),
/// applies every sweep as of the portal's clock and logs what it cleared.
pub async fn keep_sweeping(db: DatabaseConnection, audit: Audit, clock: crate::clock::Clock) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match sweep(&db, &audit, clock.now(), true).await {
            Ok(swept) => {
                for (what, n) in swept.lines().into_iter().filter(|(_, n)| *n > 0) {
                    tracing::info!(count = n, "retention: {what}");
                }
            }
            Err(e) => tracing::warn!(error = %e, "retention: sweep failed; tried again later"),
        }
    }
}
