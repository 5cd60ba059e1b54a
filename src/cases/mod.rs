//! Cases: opening and editing them, moving their status, registering parties, listing them for
//! staff and for parties and agents — and `authorize`, the gate every case route goes through.

use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, JoinType,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Set, TransactionTrait,
};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use std::collections::BTreeSet;

use crate::accounts::{self, AccountError, NewAccount};
use crate::audit::{Action, Actor, Audit, AuditError, Event, Outcome};
use crate::auth::access_code::{self, IssuedCode};
use crate::auth::identifier::Identifier;
use crate::db::entities::{account, case, case_party, delegation};
use crate::db::times;
use crate::error::AppError;
use crate::keys::ServerKey;
use crate::policy::{self, CaseAction, CaseFacts, CasePermit};
use crate::vocab::{CaseStatus, MaterialKind, MaterialState, Role, ServiceKind};

mod delegations;
mod gate;
mod mine;
mod parties;
mod queue;
pub mod reminders;
pub mod timeline;

pub use delegations::*;
pub use gate::*;
pub use mine::*;
pub use parties::*;
pub use queue::*;

/// Art. 71: a review may be applied for within 3 days of service.
pub const REVIEW_DAYS: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// Shown to the person, next to the form.
    #[error("{0}")]
    Invalid(String),
    /// Shown next to the form's `field`, which is marked as the one at fault.
    #[error("{message}")]
    Field {
        field: &'static str,
        message: String,
    },
    /// Not this staff member's to do (shown to them, with who can).
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl CaseError {
    /// A refusal that names the form field at fault.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        CaseError::Field {
            field,
            message: message.into(),
        }
    }

    /// The form field at fault, if the refusal names one.
    pub fn fault(&self) -> Option<&'static str> {
        match self {
            CaseError::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<CaseError> for AppError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Invalid(m) | CaseError::Field { message: m, .. } => {
                AppError::bad_request("invalid_case", m)
            }
            CaseError::Forbidden(_) => AppError::Forbidden,
            CaseError::Db(e) => e.into(),
            CaseError::Audit(e) => AppError::Unavailable {
                part: "audit",
                cause: Some(Box::new(e)),
            },
        }
    }
}

/// The editable facts of a case, as validated from a form.
#[derive(Clone, Debug)]
pub struct CaseDetails {
    pub case_number: String,
    pub occurred_at: OffsetDateTime,
    pub place: String,
    pub summary: String,
    pub fatal: bool,
    pub complex: bool,
}

impl CaseDetails {
    pub fn validate(self) -> Result<Self, CaseError> {
        let number = self.case_number.trim().to_owned();
        if number.is_empty() || number.chars().count() > 64 {
            return Err(CaseError::field(
                "case_number",
                "请填写事故编号（不超过64个字符） (give the case number, at most 64 characters)",
            ));
        }
        if self.place.trim().is_empty() || self.place.chars().count() > 300 {
            return Err(CaseError::field(
                "place",
                "请填写事故地点（不超过300字） (give the place of the accident, at most 300 characters)",
            ));
        }
        if self.summary.chars().count() > 5000 {
            return Err(CaseError::field(
                "summary",
                "简要案情不能超过5000字 (the summary is longer than 5,000 characters)",
            ));
        }
        if self.occurred_at > OffsetDateTime::now_utc() + time::Duration::hours(1) {
            return Err(CaseError::field(
                "occurred_at",
                "事故时间不能晚于现在 (the accident cannot be in the future)",
            ));
        }
        Ok(CaseDetails {
            case_number: number,
            place: self.place.trim().to_owned(),
            summary: self.summary.trim().to_owned(),
            ..self
        })
    }
}

async fn number_taken(
    db: &DatabaseConnection,
    department_id: Uuid,
    number: &str,
    except: Option<Uuid>,
) -> Result<bool, DbErr> {
    let mut q = case::Entity::find()
        .filter(case::Column::DepartmentId.eq(department_id))
        .filter(case::Column::CaseNumber.eq(number));
    if let Some(id) = except {
        q = q.filter(case::Column::Id.ne(id));
    }
    Ok(q.count(db).await? > 0)
}

/// Opens a case in the staff member's brigade.
pub async fn create(
    db: &DatabaseConnection,
    audit: &Audit,
    staff: &account::Model,
    details: CaseDetails,
) -> Result<case::Model, CaseError> {
    let details = details.validate()?;
    let department_id = staff.department_id.ok_or_else(|| {
        CaseError::Invalid("您的账户不属于任何大队 (your account belongs to no brigade)".into())
    })?;
    if number_taken(db, department_id, &details.case_number, None).await? {
        return Err(CaseError::field(
            "case_number",
            "本大队已有相同事故编号的案件 (the brigade already has a case with this number)",
        ));
    }
    let id = Uuid::now_v7();
    audit
        .record(
            Event::new(actor(staff), Action::CaseCreate, Outcome::Allowed)
                .case(id)
                .details(serde_json::json!({ "case_number": details.case_number })),
        )
        .await?;
    let now = OffsetDateTime::now_utc();
    let txn = db.begin().await?;
    let case = case::ActiveModel {
        id: Set(id),
        department_id: Set(department_id),
        case_number: Set(details.case_number),
        occurred_at: Set(times::stored(details.occurred_at)),
        place: Set(details.place),
        summary: Set(details.summary),
        fatal: Set(details.fatal),
        complex: Set(details.complex),
        status: Set(CaseStatus::Investigating),
        service_kind: Set(None),
        served_on: Set(None),
        created_by: Set(staff.id),
        created_at: Set(now),
        updated_at: Set(now),
        status_changed_by: Set(Some(staff.id)),
        status_changed_at: Set(Some(now)),
    }
    .insert(&txn)
    .await?;
    let today = now.to_offset(time::macros::offset!(+8)).date();
    crate::db::cases::add_milestone(&txn, id, crate::vocab::Stage::Accepted, today, now).await?;
    txn.commit().await?;
    Ok(case)
}

fn actor(a: &account::Model) -> Actor {
    Actor::account(a.id, a.role)
}

/// Edits a case's facts (staff with a `Manage` permit).
pub async fn update(
    db: &DatabaseConnection,
    audit: &Audit,
    staff: &account::Model,
    permit: &CasePermit,
    current: case::Model,
    details: CaseDetails,
) -> Result<case::Model, CaseError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    let details = details.validate()?;
    if number_taken(
        db,
        current.department_id,
        &details.case_number,
        Some(current.id),
    )
    .await?
    {
        return Err(CaseError::field(
            "case_number",
            "本大队已有相同事故编号的案件 (the brigade already has a case with this number)",
        ));
    }
    if current.status == CaseStatus::Disclosing && !details.fatal && !details.complex {
        return Err(CaseError::Invalid(
            "证据公开阶段的案件须为死亡或复杂疑难事故 (a case in disclosure must be fatal or complex)".into(),
        ));
    }
    audit
        .record(
            Event::new(actor(staff), Action::CaseUpdate, Outcome::Allowed)
                .case(current.id)
                .details(serde_json::json!({ "case_number": details.case_number })),
        )
        .await?;
    let mut row: case::ActiveModel = current.into();
    row.case_number = Set(details.case_number);
    row.occurred_at = Set(times::stored(details.occurred_at));
    row.place = Set(details.place);
    row.summary = Set(details.summary);
    row.fatal = Set(details.fatal);
    row.complex = Set(details.complex);
    row.updated_at = Set(OffsetDateTime::now_utc());
    Ok(row.update(db).await?)
}

/// A requested status move.
pub struct StatusChange {
    pub to: String,
    /// `determination` | `certificate`, required to move to `served`.
    pub service_kind: Option<String>,
    pub served_on: Option<Date>,
}

/// A status move that passed every rule, ready to be recorded (or first confirmed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedMove {
    pub from: CaseStatus,
    pub to: CaseStatus,
    pub service_kind: Option<ServiceKind>,
    pub served_on: Option<Date>,
}

impl CheckedMove {
    /// The last day of the review window this move opens (a service), if any.
    pub fn review_deadline(&self) -> Option<Date> {
        (self.to == CaseStatus::Served)
            .then_some(self.served_on)
            .flatten()
            .and_then(|d| d.checked_add(time::Duration::days(REVIEW_DAYS)))
    }
}

/// Checks a requested move against the rules: investigating → (disclosing, fatal or complex
/// only) → served (with the document and a date not in the future) → closed.
pub fn check_status_change(
    current: &case::Model,
    change: &StatusChange,
) -> Result<CheckedMove, CaseError> {
    use CaseStatus::{Closed, Disclosing, Investigating, Served};
    let from = current.status;
    let requested = CaseStatus::parse(&change.to);
    let allowed = matches!(
        (from, requested),
        (Investigating, Some(Disclosing))
            | (Investigating, Some(Served))
            | (Disclosing, Some(Served))
            | (Served, Some(Closed))
    );
    let Some(to) = requested.filter(|_| allowed) else {
        use crate::i18n::Locale::{En, Zh};
        let name = |locale: crate::i18n::Locale| {
            requested.map_or_else(
                || locale.t("status.unknown").into_owned(),
                |to| locale.label(to),
            )
        };
        return Err(CaseError::Invalid(format!(
            "案件不能从“{}”变为“{}” (a case cannot move from “{}” to “{}”)",
            Zh.label(from),
            name(Zh),
            En.label(from),
            name(En)
        )));
    };
    if to == Disclosing && !current.fatal && !current.complex {
        return Err(CaseError::Invalid(
            "只有死亡事故或复杂、疑难的伤人事故才能在认定前公开证据（第六十三条） (only fatal, or complex injury, cases may disclose evidence before the determination (Art. 63))".into(),
        ));
    }
    let today = OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let (kind, served_on) = if to == Served {
        let Some(kind) = change.service_kind.as_deref().and_then(ServiceKind::parse) else {
            return Err(CaseError::Invalid(
                "请选择送达的是事故认定书还是事故证明 (choose whether a determination or a certificate was served)".into(),
            ));
        };
        let on = change.served_on.ok_or_else(|| {
            CaseError::Invalid("请填写送达日期 (give the date of service)".into())
        })?;
        if on > today {
            return Err(CaseError::Invalid(
                "送达日期不能晚于今天 (the date of service cannot be after today)".into(),
            ));
        }
        (Some(kind), Some(on))
    } else {
        (current.service_kind, current.served_on)
    };
    Ok(CheckedMove {
        from,
        to,
        service_kind: kind,
        served_on,
    })
}

/// Moves a case forward (see [`check_status_change`]); audited.
pub async fn change_status(
    db: &DatabaseConnection,
    audit: &Audit,
    channels: crate::notifications::Channels,
    staff: &account::Model,
    permit: &CasePermit,
    current: case::Model,
    change: StatusChange,
) -> Result<case::Model, CaseError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    let CheckedMove {
        from,
        to,
        service_kind: kind,
        served_on,
    } = check_status_change(&current, &change)?;
    audit
        .record(
            Event::new(actor(staff), Action::CaseStatus, Outcome::Allowed)
                .case(current.id)
                .details(serde_json::json!({
                    "from": from, "to": to, "service_kind": kind, "served_on": served_on.map(|d| d.to_string()),
                })),
        )
        .await?;
    let now = OffsetDateTime::now_utc();
    let mut row: case::ActiveModel = current.into();
    row.status = Set(to);
    row.service_kind = Set(kind);
    row.served_on = Set(served_on);
    row.status_changed_by = Set(Some(staff.id));
    row.status_changed_at = Set(Some(now));
    row.updated_at = Set(now);
    // The parties and agents are told in the transaction that moves the case.
    let txn = sea_orm::TransactionTrait::begin(db).await?;
    let case = row.update(&txn).await?;
    timeline::after_status_change(&txn, channels, &case, now).await?;
    txn.commit().await?;
    Ok(case)
}

/// Who handles a case, as its parties are to reach them: the brigade (with its address,
/// telephone and office hours where an administrator gave them) and the officer who opened it.
pub struct Handling {
    pub brigade: crate::db::entities::department::Model,
    pub officer: Option<String>,
}

pub async fn handling(db: &DatabaseConnection, case: &case::Model) -> Result<Handling, DbErr> {
    let brigade = crate::db::entities::department::Entity::find_by_id(case.department_id)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the case's brigade".into()))?;
    let officer = account::Entity::find_by_id(case.created_by)
        .one(db)
        .await?
        .map(|a| a.display_name);
    Ok(Handling { brigade, officer })
}

/// Days left to apply for review on `today` (0 on the last day), or `None` once it has passed.
pub fn review_days_left(case: &case::Model, today: Date) -> Option<i64> {
    let deadline = review_deadline(case)?;
    let left = (deadline - today).whole_days();
    (left >= 0).then_some(left)
}

/// The last day a review (复核) may be applied for: service date + 3 days (Art. 71).
pub fn review_deadline(case: &case::Model) -> Option<Date> {
    case.served_on
        .filter(|_| case.service_kind.is_some())
        .and_then(|d| d.checked_add(time::Duration::days(REVIEW_DAYS)))
}

/// Filters of the staff case list.
#[derive(Clone, Debug, Default)]
pub struct Search {
    pub number: Option<String>,
    pub party_name: Option<String>,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub status: Option<String>,
    /// How the list is ordered (see [`search`]).
    pub sort: Option<String>,
}

pub const PAGE_SIZE: u64 = 20;

/// One page of the brigade's cases, newest accident first, and the number of pages.
pub async fn search(
    db: &DatabaseConnection,
    department_id: Uuid,
    filter: &Search,
    page: u64,
) -> Result<(Vec<case::Model>, u64), DbErr> {
    let mut cond = Condition::all().add(case::Column::DepartmentId.eq(department_id));
    if let Some(n) = filter
        .number
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        cond = cond.add(case::Column::CaseNumber.contains(n));
    }
    if let Some(s) = filter.status.as_deref().and_then(CaseStatus::parse) {
        cond = cond.add(case::Column::Status.eq(s));
    }
    let backend = db.get_database_backend();
    if let Some(from) = filter.from {
        cond = cond.add(times::at_or_after(
            backend,
            case::Column::OccurredAt,
            times::cst_day_start(from),
        ));
    }
    if let Some(to) = filter.to {
        cond = cond.add(times::before(
            backend,
            case::Column::OccurredAt,
            times::cst_day_end(to),
        ));
    }
    if let Some(name) = filter
        .party_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let ids: Vec<Uuid> = case_party::Entity::find()
            .select_only()
            .column(case_party::Column::CaseId)
            .filter(case_party::Column::Name.contains(name))
            .into_tuple()
            .all(db)
            .await?;
        cond = cond.add(case::Column::Id.is_in(ids));
    }
    let query = case::Entity::find().filter(cond);
    // Newest accident first unless asked otherwise; the id last, so pages never overlap.
    let query = match filter.sort.as_deref() {
        Some("occurred_asc") => query.order_by_asc(case::Column::OccurredAt),
        Some("number") => query.order_by_asc(case::Column::CaseNumber),
        Some("status") => query
            .order_by_asc(case::Column::Status)
            .order_by_desc(case::Column::OccurredAt),
        _ => query.order_by_desc(case::Column::OccurredAt),
    };
    let paginator = query
        .order_by_desc(case::Column::Id)
        .paginate(db, PAGE_SIZE);
    let pages = paginator.num_pages().await?;
    Ok((paginator.fetch_page(page).await?, pages))
}

/// A case number as compared when someone types it (the public application form): full-width
/// characters folded (NFKC), every kind of bracket one kind (〔〕［］【】（）), spaces dropped,
/// leading zeros of each run of digits dropped — so `京公交认字(2026)第1号` finds
/// `京公交认字〔2026〕第00001号`. Stored numbers are kept as staff typed them.
pub fn number_key(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::with_capacity(raw.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if !digits.is_empty() {
            let trimmed = digits.trim_start_matches('0');
            out.push_str(if trimmed.is_empty() { "0" } else { trimmed });
            digits.clear();
        }
    };
    for c in raw.nfkc() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out);
        match c {
            '〔' | '［' | '【' | '(' | '[' | '〖' | '﹝' => out.push('('),
            '〕' | '］' | '】' | ')' | ']' | '〗' | '﹞' => out.push(')'),
            c if c.is_whitespace() || c == '\u{3000}' => {}
            c => out.push(c.to_ascii_uppercase()),
        }
    }
    flush(&mut digits, &mut out);
    // Dropping spaces can bring combining marks next to letters: compose them again.
    out.nfkc().collect()
}

#[cfg(test)]
mod number_tests {
    use super::number_key;
    use proptest::prelude::*;

    #[test]
    fn typed_variants_of_one_number_meet() {
        let stored = number_key("京公交认字〔2026〕第00001号");
        for typed in [
            "京公交认字(2026)第1号",
            "京公交认字（2026）第０００１号",
            "京公交认字 [2026] 第001号",
            "京公交认字【2026】第1号",
        ] {
            assert_eq!(number_key(typed), stored, "{typed}");
        }
        assert_ne!(number_key("京公交认字〔2026〕第10号"), stored);
        assert_ne!(number_key("京公交认字〔2025〕第1号"), stored);
        assert_eq!(number_key("2026-保险-1"), number_key("２０２６－保险－1"));
    }

    proptest! {
        #[test]
        fn keys_are_stable(raw in "\\PC{0,40}") {
            let once = number_key(&raw);
            prop_assert_eq!(number_key(&once), once);
        }
    }
}
