//! Reading the access-audit log: filtered, newest-first pages keyed by sequence number (stable
//! while events keep arriving), the same set streamed as CSV, and a case's access history as its
//! parties see it (names masked).

use std::collections::{BTreeSet, HashMap};

use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, Query};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, DbErr, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect,
};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::db::entities::{account, audit_event, case, case_party};
use crate::db::times;
use crate::error::AppError;
use crate::vocab::Role;

/// Which events a reader may see at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Administrators: every event, including those of no case (sign-ins, accounts).
    All,
    /// Staff: the events of their own brigade's cases, nothing else.
    Brigade(Uuid),
}

/// The filters of the audit page and its CSV export (all optional, combined with AND).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Part of a case number.
    pub case_number: Option<String>,
    /// Part of an actor's name.
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// Dates in China Standard Time, both inclusive.
    pub from: Option<Date>,
    pub to: Option<Date>,
}

pub const OUTCOMES: [&str; 3] = ["allowed", "denied", "failed"];

impl Filter {
    /// Reads the query-string fields, refusing malformed ones with a stable code.
    pub fn parse(
        case_number: Option<&str>,
        actor: Option<&str>,
        action: Option<&str>,
        outcome: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Filter, AppError> {
        let text = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(100).collect::<String>())
        };
        let date = |v: Option<&str>, field: (&str, &str)| -> Result<Option<Date>, AppError> {
            match v.map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => {
                    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                        .map(Some)
                        .map_err(|_| {
                            AppError::bad_request(
                                "bad_filter",
                                format!(
                                    "{}：日期格式应为 YYYY-MM-DD ({}: the date must be YYYY-MM-DD)",
                                    field.0, field.1
                                ),
                            )
                        })
                }
            }
        };
        let action = text(action);
        if let Some(a) = &action
            && !super::Action::ALL.iter().any(|x| x.as_str() == a)
        {
            return Err(AppError::bad_request(
                "bad_filter",
                format!("未知的操作类型 {a} (unknown action)"),
            ));
        }
        let outcome = text(outcome);
        if let Some(o) = &outcome
            && !OUTCOMES.contains(&o.as_str())
        {
            return Err(AppError::bad_request(
                "bad_filter",
                format!("未知的结果 {o} (unknown outcome)"),
            ));
        }
        let filter = Filter {
            case_number: text(case_number),
            actor: text(actor),
            action,
            outcome,
            from: date(from, ("起始日期", "from"))?,
            to: date(to, ("截止日期", "to"))?,
        };
        if let (Some(f), Some(t)) = (filter.from, filter.to)
            && f > t
        {
            return Err(AppError::bad_request(
                "bad_filter",
                "起始日期晚于截止日期 (the start date is after the end date)",
            ));
        }
        Ok(filter)
    }
}

/// The condition selecting `filter`'s events within `scope`.
fn condition(backend: DbBackend, scope: Scope, filter: &Filter) -> Condition {
    let mut cond = Condition::all();
    if let Scope::Brigade(department) = scope {
        cond = cond.add(
            audit_event::Column::CaseId.in_subquery(
                Query::select()
                    .column(case::Column::Id)
                    .from(case::Entity)
                    .and_where(case::Column::DepartmentId.eq(department))
                    .to_owned(),
            ),
        );
    }
    if let Some(number) = &filter.case_number {
        cond = cond.add(
            audit_event::Column::CaseId.in_subquery(
                Query::select()
                    .column(case::Column::Id)
                    .from(case::Entity)
                    .and_where(case::Column::CaseNumber.like(format!("%{}%", escape_like(number))))
                    .to_owned(),
            ),
        );
    }
    if let Some(actor) = &filter.actor {
        cond = cond.add(
            audit_event::Column::ActorId.in_subquery(
                Query::select()
                    .column(account::Column::Id)
                    .from(account::Entity)
                    .and_where(
                        account::Column::DisplayName.like(format!("%{}%", escape_like(actor))),
                    )
                    .to_owned(),
            ),
        );
    }
    if let Some(action) = &filter.action {
        cond = cond.add(audit_event::Column::Action.eq(action.as_str()));
    }
    if let Some(outcome) = &filter.outcome {
        cond = cond.add(audit_event::Column::Outcome.eq(outcome.as_str()));
    }
    if let Some(from) = filter.from {
        cond = cond.add(times::at_or_after(
            backend,
            audit_event::Column::OccurredAt,
            times::cst_day_start(from),
        ));
    }
    if let Some(to) = filter.to {
        cond = cond.add(times::before(
            backend,
            audit_event::Column::OccurredAt,
            times::cst_day_end(to),
        ));
    }
    cond
}

/// `%`, `_` and `\` are dropped: the filter is plain text, not a pattern.
fn escape_like(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\\' | '%' | '_'))
        .collect()
}

/// Up to `limit` events newest first, all with `seq < before` when given. Keyset paging: the
/// next page starts below the last `seq` shown, so new events never shift a page.
pub async fn page(
    db: &sea_orm::DatabaseConnection,
    scope: Scope,
    filter: &Filter,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<audit_event::Model>, DbErr> {
    let mut cond = condition(db.get_database_backend(), scope, filter);
    if let Some(b) = before {
        cond = cond.add(audit_event::Column::Seq.lt(b));
    }
    audit_event::Entity::find()
        .filter(cond)
        .order_by_desc(audit_event::Column::Seq)
        .limit(limit)
        .all(db)
        .await
}

/// Names for the ids on a page of events: actors' display names and case numbers.
pub struct Names {
    pub actors: HashMap<Uuid, String>,
    pub cases: HashMap<Uuid, String>,
}

pub async fn names(
    db: &sea_orm::DatabaseConnection,
    events: &[audit_event::Model],
) -> Result<Names, DbErr> {
    let actors = actor_names(db, events.iter().filter_map(|e| e.actor_id)).await?;
    let case_ids: BTreeSet<Uuid> = events.iter().filter_map(|e| e.case_id).collect();
    let cases = case::Entity::find()
        .select_only()
        .columns([case::Column::Id, case::Column::CaseNumber])
        .filter(case::Column::Id.is_in(case_ids))
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(Names { actors, cases })
}

/// Display names of the distinct `ids` (each id once: a page of one person's fifty events asks
/// for one name, not fifty).
async fn actor_names(
    db: &sea_orm::DatabaseConnection,
    ids: impl Iterator<Item = Uuid>,
) -> Result<HashMap<Uuid, String>, DbErr> {
    let ids: BTreeSet<Uuid> = ids.collect();
    Ok(account::Entity::find()
        .select_only()
        .columns([account::Column::Id, account::Column::DisplayName])
        .filter(account::Column::Id.is_in(ids))
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// What an event touched, in words: the material's title, or "bundle of N files".
pub fn what(action: &str, details: &str, locale: crate::i18n::Locale) -> String {
    let details: serde_json::Value = serde_json::from_str(details).unwrap_or_default();
    if action == "bundle.download" {
        let n = details["count"]
            .as_u64()
            .or_else(|| details["materials"].as_array().map(|m| m.len() as u64))
            .unwrap_or(0);
        return locale.tf("audit.bundle_of", &[("n", &n.to_string())]);
    }
    let title = details["title"].as_str().unwrap_or("").to_owned();
    if details["thumbnail"] == true {
        return locale.tf("audit.thumbnail_of", &[("title", &title)]);
    }
    // A view or download of a redacted copy says so (issue 34).
    if details["redaction"].is_string() {
        return locale.tf("audit.redacted_copy_of", &[("title", &title)]);
    }
    title
}

/// A CSV cell that a spreadsheet will not run as a formula.
pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

/// One access in a case's history, as parties and agents see it.
pub struct Access {
    pub at: String,
    pub who: String,
    pub what: String,
    pub action: String,
    pub outcome: String,
    /// For downloads: how the transfer ended (`None` while it runs, or not a download).
    pub ended: Option<Ended>,
    /// The viewer's own access (folded away, so that others' accesses stand out).
    pub mine: bool,
    /// For a refused attempt: why, as the person was told.
    pub refusal: Option<String>,
}

/// How a download ended, as the person is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every byte went out.
    Downloaded,
    /// The connection was cut, or the process serving it stopped.
    Interrupted,
    /// The portal could not read the evidence (the store failed): nothing or part went out.
    Failed,
}

impl Ended {
    fn of(details: &serde_json::Value) -> Option<Ended> {
        Some(if details["completed"].as_bool()? {
            Ended::Downloaded
        } else if details["source_failed"].as_bool() == Some(true) {
            Ended::Failed
        } else {
            Ended::Interrupted
        })
    }

    /// The catalog key of its words.
    pub fn key(self) -> &'static str {
        match self {
            Ended::Downloaded => "audit.history.completed",
            Ended::Interrupted => "audit.history.cut",
            Ended::Failed => "audit.history.failed",
        }
    }
}

/// The accesses a case's history shows.
const ACCESSES: [&str; 4] = [
    "case.view",
    "material.view",
    "material.download",
    "bundle.download",
];

/// The history's statement on PostgreSQL (`$1` the case, `$2` the limit), run after
/// [`HISTORY_SETTINGS_POSTGRES`] in one transaction. Its plan must not depend on statistics:
/// on a young log (never analysed) with one busy case, the builder's statement became a bitmap
/// scan of all the case's events, joined and sorted (40 ms at 20,000 events, 77 ms at 100,000:
/// the review's 342 case pages a second); once analysed, a generic plan for a quiet case walked
/// the whole log backwards on the primary key (17–48 ms). Here the only cheap plan is the case
/// index read backwards for `$2` rows, whatever the statistics:
/// - `case_id = ANY(ARRAY[$1])` keeps the case in the ordering, so only `idx_audit_events_case`
///   supplies it (with `case_id = $1` the planner drops it and the primary key qualifies);
/// - with bitmap scans off, the index path left is the backward scan, cheaper than the same
///   scan plus a sort under any row estimate, and no disabled node carries a penalty cost;
/// - the limit applies before the joins, so names are joined to `$2` rows, not to the case.
///
/// Thumbnails load with every case page: the page view already records that visit, so the
/// history leaves them out (the staff audit log keeps them).
pub const HISTORY_SQL_POSTGRES: &str = r#"SELECT e.seq, e.occurred_at, e.actor_id, e.actor_role, e.action, e.outcome,
       e.details, a.display_name AS actor_name, a.organisation AS actor_organisation,
       p.label AS party_label
FROM (SELECT seq, occurred_at, actor_id, actor_role, action, outcome, details
      FROM audit_events
      WHERE case_id = ANY(ARRAY[$1::uuid])
        AND action IN ('case.view', 'material.view', 'material.download', 'bundle.download')
        AND details NOT LIKE '%"thumbnail":true%'
      ORDER BY case_id DESC, seq DESC
      LIMIT $2) e
LEFT JOIN accounts a ON a.id = e.actor_id
LEFT JOIN case_parties p ON p.account_id = e.actor_id AND p.case_id = $1::uuid
ORDER BY e.seq DESC"#;

/// The planner settings the history's two statements run under on PostgreSQL, in their own
/// transaction only: no bitmap scans (see [`HISTORY_SQL_POSTGRES`]), and no sequential scan of
/// the log when the planner, knowing nothing, guesses that the ends of a busy case's transfers
/// are many (every statement here has an index path, so no disabled node is ever planned).
pub const HISTORY_SETTINGS_POSTGRES: &str =
    "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off";

/// The ends of a case's transfers after `$2` on PostgreSQL (`$1` the case), in the same
/// transaction as the history: only their partial index `idx_audit_events_transfer_end` gives
/// the order `(case_id, seq)` with the case kept in it by `ANY`, so no plan walks the log on the
/// primary key from `$2` (a generic plan did, for quiet cases: 15 ms at 100,000 events); the
/// action is a literal, so generic plans can use the partial index at all.
pub const ENDS_SQL_POSTGRES: &str = "SELECT details FROM audit_events \
     WHERE case_id = ANY(ARRAY[$1::uuid]) AND action = 'transfer.end' AND seq > $2 \
     ORDER BY case_id, seq";

/// The same on SQLite (the action a literal, so that its partial index applies).
fn ends_query(case_id: Uuid, after: i64) -> sea_orm::Select<audit_event::Entity> {
    use audit_event::Column as C;
    audit_event::Entity::find()
        .select_only()
        .column(C::Details)
        .filter(C::CaseId.eq(case_id))
        .filter(Expr::cust(r#""audit_events"."action" = 'transfer.end'"#))
        .filter(C::Seq.gt(after))
}

/// The history's statement on SQLite, whose planner reads the case index backwards here: the
/// latest `limit` accesses, with the actor's name and, for a party of this case, their label.
pub fn history_query(case_id: Uuid, limit: u64) -> sea_orm::Select<audit_event::Entity> {
    use audit_event::Column as C;
    let actor = audit_event::Entity::belongs_to(account::Entity)
        .from(C::ActorId)
        .to(account::Column::Id)
        .into();
    let party_of_case: sea_orm::RelationDef = audit_event::Entity::belongs_to(case_party::Entity)
        .from(C::ActorId)
        .to(case_party::Column::AccountId)
        .into();
    let party_of_case = party_of_case.on_condition(move |_, party| {
        Expr::col((party, case_party::Column::CaseId))
            .eq(case_id)
            .into_condition()
    });
    audit_event::Entity::find()
        .select_only()
        .columns([
            C::Seq,
            C::OccurredAt,
            C::ActorId,
            C::ActorRole,
            C::Action,
            C::Outcome,
            C::Details,
        ])
        .column_as(account::Column::DisplayName, "actor_name")
        .column_as(account::Column::Organisation, "actor_organisation")
        .column_as(case_party::Column::Label, "party_label")
        .join(JoinType::LeftJoin, actor)
        .join(JoinType::LeftJoin, party_of_case)
        .filter(C::CaseId.eq(case_id))
        .filter(C::Action.is_in(ACCESSES))
        .filter(C::Details.not_like("%\"thumbnail\":true%"))
        .order_by_desc(C::CaseId)
        .order_by_desc(C::Seq)
        .limit(limit)
}

/// Only the columns the history shows (it loads with every case page), with the actor's
/// name and, for a party of this case, their label joined in: one statement.
#[derive(sea_orm::FromQueryResult)]
struct HistoryRow {
    seq: i64,
    occurred_at: OffsetDateTime,
    actor_id: Option<Uuid>,
    actor_role: String,
    action: String,
    outcome: String,
    details: String,
    actor_name: Option<String>,
    actor_organisation: Option<String>,
    party_label: Option<String>,
}

/// Who accessed, as the history names them: a party by their label in the case, an
/// administrator by role, an owner or insurer by company, everyone else by role and masked name.
fn who_of(e: &HistoryRow, locale: crate::i18n::Locale) -> String {
    let masked = e
        .actor_name
        .as_deref()
        .and_then(|n| n.chars().next())
        .map(|c| format!("{c}**"))
        .unwrap_or_default();
    let role = Role::parse(&e.actor_role);
    match (role, e.party_label.as_ref()) {
        (Some(Role::Party), Some(label)) => locale.tf(
            "audit.party_label",
            &[("label", &locale.party_label(label))],
        ),
        (Some(Role::Admin), _) => locale.label(Role::Admin),
        // The company in full (a party may ask it for what it did with their evidence;
        // its name is no one's personal data), the person who looked masked.
        (Some(role @ (Role::Owner | Role::Insurer)), _) => match e.actor_organisation.as_deref() {
            Some(org) => format!("{} {org} {masked}", locale.label(role)),
            None => format!("{} {masked}", locale.label(role)),
        },
        _ => format!("{} {masked}", role_label(locale, &e.actor_role)),
    }
}

/// The latest `limit` accesses to a case's evidence (views of the case and of materials,
/// downloads, bundles), with the end of each download folded in, and people named only by role
/// and masked name (parties by their label in the case; an owner's or insurer's company in
/// full).
pub async fn case_history(
    db: &sea_orm::DatabaseConnection,
    case_id: Uuid,
    limit: u64,
    viewer: Uuid,
) -> Result<Vec<Access>, DbErr> {
    let (events, ends) = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            use sea_orm::{ConnectionTrait, FromQueryResult, TransactionTrait};
            let txn = db.begin().await?;
            txn.execute_unprepared(HISTORY_SETTINGS_POSTGRES).await?;
            let events = HistoryRow::find_by_statement(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                HISTORY_SQL_POSTGRES,
                [
                    case_id.into(),
                    i64::try_from(limit).unwrap_or(i64::MAX).into(),
                ],
            ))
            .all(&txn)
            .await?;
            let lowest = events.last().map_or(i64::MAX, |e| e.seq);
            let ends = txn
                .query_all_raw(sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    ENDS_SQL_POSTGRES,
                    [case_id.into(), lowest.into()],
                ))
                .await?
                .iter()
                .map(|row| row.try_get_by_index::<String>(0))
                .collect::<Result<Vec<_>, _>>()?;
            txn.commit().await?;
            (events, ends)
        }
        _ => {
            let events = history_query(case_id, limit)
                .into_model::<HistoryRow>()
                .all(db)
                .await?;
            let lowest = events.last().map_or(i64::MAX, |e| e.seq);
            let ends = ends_query(case_id, lowest)
                .into_tuple::<String>()
                .all(db)
                .await?;
            (events, ends)
        }
    };
    let ends: HashMap<i64, Ended> = ends
        .into_iter()
        .filter_map(|details| {
            let d: serde_json::Value = serde_json::from_str(&details).ok()?;
            Some((d["of"].as_i64()?, Ended::of(&d)?))
        })
        .collect();
    let locale = crate::i18n::Locale::current();
    Ok(events
        .iter()
        .map(|e| {
            let who = who_of(e, locale);
            let is_download = matches!(e.action.as_str(), "material.download" | "bundle.download");
            Access {
                at: locale.time(e.occurred_at),
                who,
                what: what(&e.action, &e.details, locale),
                action: locale.t(&format!("audit.action.{}", e.action)).into_owned(),
                outcome: locale
                    .t(&format!("audit.outcome.{}", e.outcome))
                    .into_owned(),
                ended: if is_download && e.outcome == "allowed" {
                    ends.get(&e.seq).copied()
                } else {
                    None
                },
                mine: e.actor_id == Some(viewer),
                refusal: (e.outcome == "denied")
                    .then(|| {
                        let d: serde_json::Value = serde_json::from_str(&e.details).ok()?;
                        let key = format!("refusal.{}.title", d["reason"].as_str()?);
                        let text = locale.t(&key);
                        (text != key.as_str()).then(|| text.into_owned())
                    })
                    .flatten(),
            }
        })
        .collect())
}

/// The label of an event's recorded role: a person's role, or "user" for the anonymous and the
/// system (the command line).
pub fn role_label(locale: crate::i18n::Locale, recorded: &str) -> String {
    Role::parse(recorded).map_or_else(|| locale.t("role.user").into_owned(), |r| locale.label(r))
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
