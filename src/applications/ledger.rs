//! The brigade's ledger of applications (申请台账): review and access applications in one list,
//! newest first, filtered by kind, state, dates and case number, and exported as CSV as the
//! provincial rules ask brigades to keep one. Staff see their brigade's; administrators all.

use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::db::entities::{access_application, case, case_party, review_application};
use crate::db::times;

/// Rows a page or an export holds at most.
pub const LIMIT: u64 = 2000;

/// Which applications.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// `review` or `access`; anything else: both.
    pub kind: String,
    /// A state word of either kind (`filed`, `pending`, `approved`, …); empty: any.
    pub state: String,
    /// Filed on or after / on or before (China Standard Time).
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// The case number, exactly; empty: any.
    pub case_number: String,
}

/// One line of the ledger.
pub struct Entry {
    pub id: Uuid,
    /// `review` or `access`.
    pub kind: &'static str,
    pub receipt_no: String,
    pub case_id: Uuid,
    pub case_number: String,
    pub filed_at: OffsetDateTime,
    /// The applicant: "甲 张三" for a review, "insurer 李四（中国人民财产保险）" for access.
    pub applicant: String,
    /// The applicant's name alone, and their company (insurers).
    pub name: String,
    pub organisation: Option<String>,
    /// A review filed and not yet forwarded: the last day the brigade may forward it.
    pub forward_by: Option<Date>,
    /// The state word and its catalog section (`review_state` / `access_state`).
    pub state: &'static str,
    pub state_catalog: &'static str,
    /// The latest step's date or the decision's time, as text.
    pub last_step: Option<String>,
}

/// The last day a review application filed at `filed_at` may wait at the brigade: it forwards
/// the application to the reviewing authority within two days of receiving it (Order 146
/// Art. 72), counted in China Standard Time from the day after filing.
pub fn forward_by(filed_at: OffsetDateTime) -> Date {
    filed_at.to_offset(time::macros::offset!(+8)).date() + time::Duration::days(2)
}

/// The filing-date bounds as instants: from the start of `from`, before the end of `to` (CST).
fn bounds(filter: &Filter) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
    (
        filter.from.map(times::cst_day_start),
        filter.to.map(times::cst_day_end),
    )
}

/// The ledger of `department` (`None`: every brigade), newest first, at most [`LIMIT`] rows.
pub async fn list(
    db: &DatabaseConnection,
    department: Option<Uuid>,
    filter: &Filter,
) -> Result<Vec<Entry>, DbErr> {
    let mut case_q = case::Entity::find().select_only().column(case::Column::Id);
    if let Some(d) = department {
        case_q = case_q.filter(case::Column::DepartmentId.eq(d));
    }
    let number = filter.case_number.trim();
    if !number.is_empty() {
        case_q = case_q.filter(case::Column::CaseNumber.eq(number));
    }
    let range = bounds(filter);
    let mut out = Vec::new();
    if filter.kind != "access" {
        out.extend(reviews(db, case_q.clone(), filter, range).await?);
    }
    if filter.kind != "review" {
        out.extend(accesses(db, case_q, filter, range).await?);
    }
    let numbers: std::collections::HashMap<Uuid, String> = case::Entity::find()
        .filter(case::Column::Id.is_in(out.iter().map(|e| e.case_id).collect::<Vec<_>>()))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c.case_number))
        .collect();
    for e in &mut out {
        e.case_number = numbers.get(&e.case_id).cloned().unwrap_or_default();
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.filed_at));
    out.truncate(LIMIT as usize);
    Ok(out)
}

/// The review applications of the cases `case_q` selects, as the filter asks.
async fn reviews(
    db: &DatabaseConnection,
    case_q: sea_orm::Select<case::Entity>,
    filter: &Filter,
    range: (Option<OffsetDateTime>, Option<OffsetDateTime>),
) -> Result<Vec<Entry>, DbErr> {
    let backend = db.get_database_backend();
    let (from, to) = range;
    let mut q = review_application::Entity::find().filter(
        review_application::Column::CaseId
            .in_subquery(sea_orm::QueryTrait::into_query(case_q.clone())),
    );
    if let Some(s) = crate::vocab::ReviewState::parse(filter.state.trim()) {
        q = q.filter(review_application::Column::State.eq(s));
    } else if !filter.state.trim().is_empty() {
        q = q.filter(review_application::Column::Id.is_null());
    }
    if let Some(f) = from {
        q = q.filter(times::at_or_after(
            backend,
            review_application::Column::FiledAt,
            f,
        ));
    }
    if let Some(t) = to {
        q = q.filter(times::before(
            backend,
            review_application::Column::FiledAt,
            t,
        ));
    }
    let rows = q
        .order_by_desc(review_application::Column::FiledAt)
        .limit(LIMIT)
        .all(db)
        .await?;
    let parties: std::collections::HashMap<Uuid, case_party::Model> = case_party::Entity::find()
        .filter(case_party::Column::Id.is_in(rows.iter().map(|r| r.party_id).collect::<Vec<_>>()))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let mut out = Vec::new();
    for r in rows {
        let party = parties.get(&r.party_id);
        out.push(Entry {
            id: r.id,
            kind: "review",
            receipt_no: r.receipt_no,
            case_id: r.case_id,
            case_number: String::new(),
            filed_at: r.filed_at,
            applicant: party
                .map(|p| format!("{} {}", p.label, p.name))
                .unwrap_or_default(),
            name: party.map(|p| p.name.clone()).unwrap_or_default(),
            organisation: None,
            forward_by: (r.state == crate::vocab::ReviewState::Filed)
                .then(|| forward_by(r.filed_at)),
            state: r.state.as_str(),
            state_catalog: "review_state",
            last_step: r
                .concluded_on
                .or(r.decided_on)
                .or(r.forwarded_on)
                .map(|d| d.to_string()),
        });
    }
    Ok(out)
}

/// The owners' and insurers' access applications of the cases `case_q` selects, as the filter
/// asks.
async fn accesses(
    db: &DatabaseConnection,
    case_q: sea_orm::Select<case::Entity>,
    filter: &Filter,
    range: (Option<OffsetDateTime>, Option<OffsetDateTime>),
) -> Result<Vec<Entry>, DbErr> {
    let backend = db.get_database_backend();
    let (from, to) = range;
    let mut q = access_application::Entity::find().filter(
        access_application::Column::CaseId.in_subquery(sea_orm::QueryTrait::into_query(case_q)),
    );
    if let Some(s) = crate::vocab::AccessState::parse(filter.state.trim()) {
        q = q.filter(access_application::Column::State.eq(s));
    } else if !filter.state.trim().is_empty() {
        q = q.filter(access_application::Column::Id.is_null());
    }
    if let Some(f) = from {
        q = q.filter(times::at_or_after(
            backend,
            access_application::Column::FiledAt,
            f,
        ));
    }
    if let Some(t) = to {
        q = q.filter(times::before(
            backend,
            access_application::Column::FiledAt,
            t,
        ));
    }
    let mut out = Vec::new();
    for a in q
        .order_by_desc(access_application::Column::FiledAt)
        .limit(LIMIT)
        .all(db)
        .await?
    {
        out.push(Entry {
            id: a.id,
            kind: "access",
            receipt_no: a.receipt_no,
            case_id: a.case_id,
            case_number: String::new(),
            filed_at: a.filed_at,
            applicant: match &a.organisation {
                Some(org) => format!("{}（{org}）", a.applicant_name),
                None => a.applicant_name.clone(),
            },
            name: a.applicant_name,
            organisation: a.organisation,
            forward_by: None,
            state: a.state.as_str(),
            state_catalog: "access_state",
            last_step: a
                .decided_at
                .map(|t| t.to_offset(time::macros::offset!(+8)).date().to_string()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_is_forwarded_within_two_days_of_its_filing_in_china() {
        // 23:30 CST on 1 December: filed that day, forwarded by the 3rd.
        let late = time::macros::datetime!(2026-12-01 15:30 UTC);
        assert_eq!(forward_by(late), time::macros::date!(2026 - 12 - 03));
        // 00:30 CST on 2 December (still the 1st in UTC): the 4th.
        let early = time::macros::datetime!(2026-12-01 16:30 UTC);
        assert_eq!(forward_by(early), time::macros::date!(2026 - 12 - 04));
    }
}
