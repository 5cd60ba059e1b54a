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

pub const STATUSES: [&str; 4] = ["investigating", "disclosing", "served", "closed"];
pub const PARTY_ROLES: [&str; 6] = [
    "driver",
    "passenger",
    "pedestrian",
    "vehicle_owner",
    "close_relative",
    "other",
];
/// Art. 71: a review may be applied for within 3 days of service.
pub const REVIEW_DAYS: i64 = 3;

pub fn status_label(status: &str) -> &'static str {
    match status {
        "investigating" => "调查中",
        "disclosing" => "证据公开中（仅可查看）",
        "served" => "认定书/证明已送达",
        "closed" => "已结案",
        _ => "未知",
    }
}

/// A case status in the current request's language (catalog `status.<status>`).
pub fn status_text(status: &str) -> String {
    let status = if STATUSES.contains(&status) {
        status
    } else {
        "unknown"
    };
    crate::i18n::t(&format!("status.{status}"))
}

/// A party's role in the current request's language (catalog `party_role.<role>`).
pub fn party_role_text(role: &str) -> String {
    let role = if PARTY_ROLES.contains(&role) {
        role
    } else {
        "other"
    };
    crate::i18n::t(&format!("party_role.{role}"))
}

pub fn party_role_label(role: &str) -> &'static str {
    match role {
        "driver" => "驾驶人",
        "passenger" => "乘车人",
        "pedestrian" => "行人",
        "vehicle_owner" => "车辆所有人",
        "close_relative" => "死者近亲属",
        _ => "其他",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// Shown to the person, next to the form.
    #[error("{0}")]
    Invalid(String),
    /// Not this staff member's to do (shown to them, with who can).
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<CaseError> for AppError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Invalid(m) => AppError::bad_request("invalid_case", m),
            CaseError::Forbidden(_) => AppError::Forbidden,
            CaseError::Db(e) => e.into(),
            CaseError::Audit(e) => AppError::Unavailable {
                part: "audit",
                cause: Some(Box::new(e)),
            },
        }
    }
}

fn audit_action(action: CaseAction) -> Action {
    match action {
        CaseAction::View => Action::CaseView,
        CaseAction::ViewMaterial => Action::MaterialView,
        CaseAction::Download => Action::MaterialDownload,
        CaseAction::ViewAccessHistory => Action::AuditView,
        CaseAction::Manage => Action::CaseUpdate,
    }
}

/// Loads what policy needs about `actor` and the case, asks it, and audits a denial. A case that
/// does not exist is denied like one the actor may not know of (404).
pub async fn authorize(
    db: &DatabaseConnection,
    audit: &Audit,
    actor: &account::Model,
    client: (Option<String>, Option<String>),
    action: CaseAction,
    case_id: Uuid,
) -> Result<(CasePermit, CaseFacts), AppError> {
    let found = case_with_own_party(actor.id, case_id).one(db).await?;
    decide(db, audit, actor, client, action, case_id, found).await
}

/// The case and `actor_id`'s own party row in it (if any), as one statement: this runs for
/// every page and every byte range of evidence.
fn case_with_own_party(
    actor_id: Uuid,
    case_id: Uuid,
) -> sea_orm::SelectTwo<case::Entity, case_party::Entity> {
    let own_party = case_party::Relation::Case
        .def()
        .rev()
        .on_condition(move |_, party| {
            Expr::col((party, case_party::Column::AccountId))
                .eq(actor_id)
                .into_condition()
        });
    case::Entity::find_by_id(case_id)
        .join(JoinType::LeftJoin, own_party)
        .select_also(case_party::Entity)
}

/// The rest of `authorize` once the case (`None`: it does not exist) and the actor's party row
/// are loaded: an agent's delegations, then policy; a denial is audited.
async fn decide(
    db: &DatabaseConnection,
    audit: &Audit,
    actor: &account::Model,
    client: (Option<String>, Option<String>),
    action: CaseAction,
    case_id: Uuid,
    found: Option<(case::Model, Option<case_party::Model>)>,
) -> Result<(CasePermit, CaseFacts), AppError> {
    let who = Actor {
        id: Some(actor.id),
        role: crate::auth::extract::role_name(&actor.role),
    };
    let denied = |reason: &'static str| {
        Event::new(who.clone(), audit_action(action), Outcome::Denied)
            .case(case_id)
            .client(client.0.clone(), client.1.clone())
            .details(serde_json::json!({ "reason": reason, "action": format!("{action:?}") }))
    };
    let Some((case, party)) = found else {
        audit
            .record(denied("no_such_case"))
            .await
            .map_err(unavailable)?;
        return Err(AppError::NotFound);
    };
    let delegations = if actor.role == "agent" {
        delegation::Entity::find()
            .filter(delegation::Column::CaseId.eq(case_id))
            .filter(delegation::Column::AgentAccountId.eq(actor.id))
            .all(db)
            .await?
    } else {
        Vec::new()
    };
    let facts = CaseFacts {
        case,
        party,
        delegations,
    };
    match policy::decide(actor, action, &facts, OffsetDateTime::now_utc()) {
        Ok(permit) => Ok((permit, facts)),
        Err(d) => {
            audit.record(denied(d.reason)).await.map_err(unavailable)?;
            Err(if d.hide {
                AppError::NotFound
            } else {
                AppError::Forbidden
            })
        }
    }
}

/// `authorize` for one material: the case permit for `action`, then whether the material
/// itself may be shown (`policy::material_visible`). A material that does not exist or may not
/// be shown is denied as not found, audited.
pub async fn authorize_material(
    db: &DatabaseConnection,
    audit: &Audit,
    actor: &account::Model,
    client: (Option<String>, Option<String>),
    action: CaseAction,
    case_id: Uuid,
    material_id: Uuid,
) -> Result<(CasePermit, CaseFacts, crate::db::entities::material::Model), AppError> {
    use crate::db::entities::material;
    // The case, the actor's party row and the material in one statement. No row: the case is
    // missing, or the material is (or belongs to another case); the two-step path then gives
    // the same answer and denial reason as it always did.
    let found = case_with_own_party(actor.id, case_id)
        .find_also_related(material::Entity)
        .filter(material::Column::Id.eq(material_id))
        .one(db)
        .await?;
    let (permit, facts, material) = match found {
        Some((case, party, material)) => {
            let found = Some((case, party));
            let (permit, facts) =
                decide(db, audit, actor, client.clone(), action, case_id, found).await?;
            (permit, facts, material)
        }
        None => {
            let (permit, facts) =
                authorize(db, audit, actor, client.clone(), action, case_id).await?;
            let material = material::Entity::find_by_id(material_id).one(db).await?;
            (permit, facts, material)
        }
    };
    let reason = match &material {
        None => "no_such_material",
        Some(m) => match policy::material_visible(&permit, actor, m) {
            Ok(()) => "",
            Err(d) => d.reason,
        },
    };
    match material {
        Some(m) if reason.is_empty() => Ok((permit, facts, m)),
        _ => {
            let who = Actor {
                id: Some(actor.id),
                role: crate::auth::extract::role_name(&actor.role),
            };
            audit
                .record(
                    Event::new(who, audit_action(action), Outcome::Denied)
                        .case(case_id)
                        .material(material_id)
                        .client(client.0, client.1)
                        .details(serde_json::json!({ "reason": reason })),
                )
                .await
                .map_err(unavailable)?;
            Err(AppError::NotFound)
        }
    }
}

fn unavailable(e: AuditError) -> AppError {
    AppError::Unavailable {
        part: "audit",
        cause: Some(Box::new(e)),
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
            return Err(CaseError::Invalid(
                "请填写事故编号（不超过64个字符）".into(),
            ));
        }
        if self.place.trim().is_empty() || self.place.chars().count() > 300 {
            return Err(CaseError::Invalid("请填写事故地点（不超过300字）".into()));
        }
        if self.summary.chars().count() > 5000 {
            return Err(CaseError::Invalid("简要案情不能超过5000字".into()));
        }
        if self.occurred_at > OffsetDateTime::now_utc() + time::Duration::hours(1) {
            return Err(CaseError::Invalid("事故时间不能晚于现在".into()));
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
    let department_id = staff
        .department_id
        .ok_or_else(|| CaseError::Invalid("您的账户不属于任何大队".into()))?;
    if number_taken(db, department_id, &details.case_number, None).await? {
        return Err(CaseError::Invalid("本大队已有相同事故编号的案件".into()));
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
    Ok(case::ActiveModel {
        id: Set(id),
        department_id: Set(department_id),
        case_number: Set(details.case_number),
        occurred_at: Set(times::stored(details.occurred_at)),
        place: Set(details.place),
        summary: Set(details.summary),
        fatal: Set(details.fatal),
        complex: Set(details.complex),
        status: Set("investigating".into()),
        service_kind: Set(None),
        served_on: Set(None),
        created_by: Set(staff.id),
        created_at: Set(now),
        updated_at: Set(now),
        status_changed_by: Set(Some(staff.id)),
        status_changed_at: Set(Some(now)),
    }
    .insert(db)
    .await?)
}

fn actor(a: &account::Model) -> Actor {
    Actor {
        id: Some(a.id),
        role: crate::auth::extract::role_name(&a.role),
    }
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
        return Err(CaseError::Invalid("本大队已有相同事故编号的案件".into()));
    }
    if current.status == "disclosing" && !details.fatal && !details.complex {
        return Err(CaseError::Invalid(
            "证据公开阶段的案件须为死亡或复杂疑难事故".into(),
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

/// Moves a case forward: investigating → (disclosing, fatal or complex only) → served → closed.
pub async fn change_status(
    db: &DatabaseConnection,
    audit: &Audit,
    staff: &account::Model,
    permit: &CasePermit,
    current: case::Model,
    change: StatusChange,
) -> Result<case::Model, CaseError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    let from = current.status.as_str();
    let to = change.to.as_str();
    let allowed = matches!(
        (from, to),
        ("investigating", "disclosing")
            | ("investigating", "served")
            | ("disclosing", "served")
            | ("served", "closed")
    );
    if !allowed {
        return Err(CaseError::Invalid(format!(
            "案件不能从“{}”变为“{}”",
            status_label(from),
            status_label(to)
        )));
    }
    if to == "disclosing" && !current.fatal && !current.complex {
        return Err(CaseError::Invalid(
            "只有死亡事故或复杂、疑难的伤人事故才能在认定前公开证据（第六十三条）".into(),
        ));
    }
    let today = OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let (kind, served_on) = if to == "served" {
        let kind = match change.service_kind.as_deref() {
            Some(k @ ("determination" | "certificate")) => k.to_owned(),
            _ => {
                return Err(CaseError::Invalid(
                    "请选择送达的是事故认定书还是事故证明".into(),
                ));
            }
        };
        let on = change
            .served_on
            .ok_or_else(|| CaseError::Invalid("请填写送达日期".into()))?;
        if on > today {
            return Err(CaseError::Invalid("送达日期不能晚于今天".into()));
        }
        (Some(kind), Some(on))
    } else {
        (current.service_kind.clone(), current.served_on)
    };
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
    row.status = Set(to.to_owned());
    row.service_kind = Set(kind);
    row.served_on = Set(served_on);
    row.status_changed_by = Set(Some(staff.id));
    row.status_changed_at = Set(Some(now));
    row.updated_at = Set(now);
    Ok(row.update(db).await?)
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
    if let Some(s) = filter.status.as_deref().filter(|s| STATUSES.contains(s)) {
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
    let paginator = case::Entity::find()
        .filter(cond)
        .order_by_desc(case::Column::OccurredAt)
        .order_by_desc(case::Column::Id)
        .paginate(db, PAGE_SIZE);
    let pages = paginator.num_pages().await?;
    Ok((paginator.fetch_page(page).await?, pages))
}

pub async fn parties(
    db: &DatabaseConnection,
    case_id: Uuid,
) -> Result<Vec<(case_party::Model, Option<account::Model>)>, DbErr> {
    case_party::Entity::find()
        .filter(case_party::Column::CaseId.eq(case_id))
        .order_by_asc(case_party::Column::Label)
        .find_also_related(account::Entity)
        .all(db)
        .await
}

/// The brigades of every case an account is a party to or holds a delegation on: the reach of
/// whoever may credential it (see `policy::may_credential`).
pub async fn account_scope(
    db: &impl sea_orm::ConnectionTrait,
    account_id: Uuid,
) -> Result<BTreeSet<Uuid>, DbErr> {
    let as_party = case::Entity::find()
        .select_only()
        .column(case::Column::DepartmentId)
        .inner_join(case_party::Entity)
        .filter(case_party::Column::AccountId.eq(account_id))
        .into_tuple::<Uuid>()
        .all(db)
        .await?;
    let agent_cases = delegation::Entity::find()
        .select_only()
        .column(delegation::Column::CaseId)
        .filter(delegation::Column::AgentAccountId.eq(account_id))
        .into_tuple::<Uuid>()
        .all(db)
        .await?;
    let as_agent = if agent_cases.is_empty() {
        Vec::new()
    } else {
        case::Entity::find()
            .select_only()
            .column(case::Column::DepartmentId)
            .filter(case::Column::Id.is_in(agent_cases))
            .into_tuple::<Uuid>()
            .all(db)
            .await?
    };
    Ok(as_party.into_iter().chain(as_agent).collect())
}

/// The account of a person staff register (a party or an agent): an existing account with the
/// same identifier and role is reused; one not activated yet gets a fresh code only if the
/// staff member may credential it (its cases are all in their brigade) — otherwise the person
/// activates with the code they already hold, or an administrator issues one. A new account is
/// created with a code. Another role's account with the identifier is refused.
async fn account_for(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    staff: &account::Model,
    role: &'static str,
    identifier: &Identifier,
    name: &str,
) -> Result<(account::Model, Option<IssuedCode>), CaseError> {
    let existing = account::Entity::find()
        .filter(account::Column::LoginKey.eq(identifier.login_key(key)))
        .one(db)
        .await?;
    match existing {
        Some(a) if a.role != role => Err(CaseError::Invalid(
            "该号码已用于其他类型的账户 (the identifier belongs to another kind of account)".into(),
        )),
        Some(a) if a.password_hash.is_some() => Ok((a, None)),
        Some(a) => {
            let code = issue_code_in_scope(db, key, audit, staff, &a).await?;
            Ok((a, code))
        }
        None => {
            let new = NewAccount {
                role,
                identifier: identifier.clone(),
                display_name: name.to_owned(),
                department_id: None,
            };
            match accounts::create(db, key, audit, actor(staff), new).await {
                Ok((a, code)) => Ok((a, Some(code))),
                Err(AccountError::Db(e)) => Err(e.into()),
                Err(AccountError::Audit(e)) => Err(e.into()),
                Err(other) => Err(CaseError::Invalid(other.to_string())),
            }
        }
    }
}

/// A fresh access code for a not-yet-activated account (earlier codes stop working), if
/// `staff` may credential it; `None` (and nothing changed) if the account reaches beyond their
/// brigade.
async fn issue_code_in_scope(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    staff: &account::Model,
    account: &account::Model,
) -> Result<Option<IssuedCode>, CaseError> {
    debug_assert!(account.password_hash.is_none());
    let scope = account_scope(db, account.id).await?;
    if !policy::may_credential(staff, &scope) {
        return Ok(None);
    }
    audit
        .record(
            Event::new(actor(staff), Action::AccessCodeIssue, Outcome::Allowed).details(
                serde_json::json!({ "account_id": account.id, "login": account.login_masked }),
            ),
        )
        .await?;
    let txn = db.begin().await?;
    let code = access_code::issue(&txn, key, account.id, Some(staff.id)).await?;
    txn.commit().await?;
    Ok(Some(code))
}

/// A party to register.
pub struct NewParty {
    pub name: String,
    pub identifier: Identifier,
    pub mobile: Option<String>,
    pub label: String,
    pub role: String,
}

/// Registers a party on a case: an existing party account with the same identifier is reused;
/// otherwise one is created. A code is issued whenever the account is not yet activated.
pub async fn register_party(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    staff: &account::Model,
    permit: &CasePermit,
    case: &case::Model,
    new: NewParty,
) -> Result<(case_party::Model, account::Model, Option<IssuedCode>), CaseError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    let name = new.name.trim().to_owned();
    let label = new.label.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(CaseError::Invalid("请填写当事人姓名（不超过100字）".into()));
    }
    if label.is_empty() || label.chars().count() > 8 {
        return Err(CaseError::Invalid("请填写当事人代号，如甲、乙、丙".into()));
    }
    if !PARTY_ROLES.contains(&new.role.as_str()) {
        return Err(CaseError::Invalid("请选择当事人在事故中的身份".into()));
    }
    let existing = case_party::Entity::find()
        .filter(case_party::Column::CaseId.eq(case.id))
        .find_also_related(account::Entity)
        .all(db)
        .await?;
    if existing.iter().any(|(p, _)| p.label == label) {
        return Err(CaseError::Invalid(format!("本案已有当事人{label}")));
    }
    let login_key = new.identifier.login_key(key);
    if existing
        .iter()
        .any(|(_, a)| a.as_ref().is_some_and(|a| a.login_key == login_key))
    {
        return Err(CaseError::Invalid("该当事人已登记在本案".into()));
    }
    let (party_account, code) =
        account_for(db, key, audit, staff, "party", &new.identifier, &name).await?;
    let id = Uuid::now_v7();
    audit
        .record(
            Event::new(actor(staff), Action::PartyRegister, Outcome::Allowed)
                .case(case.id)
                .details(serde_json::json!({
                    "party_id": id, "account_id": party_account.id, "label": label,
                    "role": new.role, "login": party_account.login_masked, "code_issued": code.is_some(),
                })),
        )
        .await?;
    let row = case_party::ActiveModel {
        id: Set(id),
        case_id: Set(case.id),
        account_id: Set(party_account.id),
        label: Set(label),
        role: Set(new.role),
        name: Set(name),
        created_by: Set(staff.id),
        created_at: Set(OffsetDateTime::now_utc()),
        mobile: Set(new.mobile.filter(|m| !m.is_empty())),
    }
    .insert(db)
    .await?;
    Ok((row, party_account, code))
}

/// A party of the case with their account.
pub async fn party_of(
    db: &DatabaseConnection,
    case: &case::Model,
    party_id: Uuid,
) -> Result<Option<(case_party::Model, account::Model)>, DbErr> {
    Ok(case_party::Entity::find_by_id(party_id)
        .find_also_related(account::Entity)
        .one(db)
        .await?
        .filter(|(p, _)| p.case_id == case.id)
        .and_then(|(p, a)| a.map(|a| (p, a))))
}

/// What a reprinted notice carries: never a reset. An activated account keeps its password
/// (the notice says so); one not activated yet gets a fresh code when the staff member may
/// credential it, and otherwise none (the notice says whom to ask).
pub async fn party_notice(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    staff: &account::Model,
    permit: &CasePermit,
    case: &case::Model,
    party_id: Uuid,
) -> Result<(case_party::Model, account::Model, Option<IssuedCode>), AppError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    let (party, account) = party_of(db, case, party_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if account.password_hash.is_some() {
        return Ok((party, account, None));
    }
    let code = issue_code_in_scope(db, key, audit, staff, &account)
        .await
        .map_err(AppError::from)?;
    Ok((party, account, code))
}

/// Resets a party's account (password, sessions and tokens end; a new code is issued), with a
/// reason the party is shown at their next sign-in — only if every case and delegation of the
/// account lies in the staff member's brigade. A refusal is audited and says who can do it.
#[allow(clippy::too_many_arguments)]
pub async fn reset_party_account(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    staff: &account::Model,
    brigade: String,
    permit: &CasePermit,
    case: &case::Model,
    (party, account): (case_party::Model, account::Model),
    reason: String,
) -> Result<(case_party::Model, account::Model, IssuedCode), CaseError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    debug_assert_eq!(party.case_id, case.id);
    let scope = account_scope(db, account.id).await?;
    if !policy::may_credential(staff, &scope) {
        audit
            .record(
                Event::new(actor(staff), Action::AccountReset, Outcome::Denied)
                    .case(case.id)
                    .details(serde_json::json!({
                        "account_id": account.id, "login": account.login_masked,
                        "reason": "outside_brigade",
                    })),
            )
            .await?;
        return Err(CaseError::Forbidden(
            "该当事人的账户也用于其他大队的案件，只有系统管理员可以重置 (the account is also used on another brigade's cases: only an administrator can reset it)".into(),
        ));
    }
    let by = accounts::ResetBy {
        actor: actor(staff),
        label: brigade,
        reason,
    };
    match accounts::reset(db, key, audit, by, account.id).await {
        Ok((account, code)) => Ok((party, account, code)),
        Err(AccountError::Db(e)) => Err(e.into()),
        Err(AccountError::Audit(e)) => Err(e.into()),
        Err(other) => Err(CaseError::Invalid(other.to_string())),
    }
}

/// A case as its party or agent sees it in "my cases".
pub struct MyCase {
    pub case: case::Model,
    /// The label of the party the person is or acts for.
    pub label: String,
    /// For agents: the principal's name and the delegation's end.
    pub acting_for: Option<(String, OffsetDateTime)>,
    /// Released, current evidence (what a party can open).
    pub released: u64,
}

/// How many materials of a case its parties can see: released, current, evidence.
pub async fn released_count(db: &DatabaseConnection, case_id: Uuid) -> Result<u64, DbErr> {
    use crate::db::entities::material;
    material::Entity::find()
        .filter(material::Column::CaseId.eq(case_id))
        .filter(material::Column::State.eq("released"))
        .filter(material::Column::Kind.ne("authorisation"))
        .filter(material::Column::SupersededBy.is_null())
        .count(db)
        .await
}

/// The cases a party is registered on, or an agent holds a current delegation for.
pub async fn my_cases(
    db: &DatabaseConnection,
    person: &account::Model,
) -> Result<Vec<MyCase>, DbErr> {
    let mut out = Vec::new();
    if person.role == "party" {
        let rows = case_party::Entity::find()
            .filter(case_party::Column::AccountId.eq(person.id))
            .all(db)
            .await?;
        for p in rows {
            if let Some(c) = case::Entity::find_by_id(p.case_id).one(db).await? {
                let released = released_count(db, c.id).await?;
                out.push(MyCase {
                    case: c,
                    label: p.label,
                    acting_for: None,
                    released,
                });
            }
        }
    } else if person.role == "agent" {
        let now = OffsetDateTime::now_utc();
        let rows = delegation::Entity::find()
            .filter(delegation::Column::AgentAccountId.eq(person.id))
            .all(db)
            .await?;
        for d in rows.into_iter().filter(|d| d.current(now)) {
            let principal = case_party::Entity::find_by_id(d.principal_party_id)
                .one(db)
                .await?;
            if let (Some(c), Some(p)) = (
                case::Entity::find_by_id(d.case_id).one(db).await?,
                principal,
            ) {
                let released = released_count(db, c.id).await?;
                out.push(MyCase {
                    case: c,
                    label: p.label,
                    acting_for: Some((p.name, d.valid_until)),
                    released,
                });
            }
        }
    }
    out.sort_by_key(|m| std::cmp::Reverse(m.case.occurred_at));
    Ok(out)
}

/// An agent's authority to register (the authorisation document is already in the store).
pub struct NewDelegation {
    pub principal_party_id: Uuid,
    pub agent: Identifier,
    pub agent_name: String,
    pub law_firm: Option<String>,
    pub valid_from: Date,
    /// Inclusive: the authority ends at the end of this day (China Standard Time).
    pub valid_until: Date,
}

/// Registers a delegation with its authorisation document (recorded as an internal material of
/// kind `authorisation`, never shown to parties). An existing agent account with the same
/// identifier is reused; otherwise one is created with an access code.
#[allow(clippy::too_many_arguments)]
pub async fn grant_delegation(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    staff: &account::Model,
    permit: &CasePermit,
    case: &case::Model,
    new: NewDelegation,
    document: &crate::materials::Received,
) -> Result<(delegation::Model, account::Model, Option<IssuedCode>), CaseError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    let principal = case_party::Entity::find_by_id(new.principal_party_id)
        .one(db)
        .await?
        .filter(|p| p.case_id == case.id)
        .ok_or_else(|| CaseError::Invalid("请选择委托人（本案当事人）".into()))?;
    let name = new.agent_name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(CaseError::Invalid("请填写代理人姓名（不超过100字）".into()));
    }
    let valid_from = times::cst_day_start(new.valid_from);
    let valid_until = new
        .valid_until
        .next_day()
        .map(times::cst_day_start)
        .ok_or_else(|| CaseError::Invalid("委托截止日期无效".into()))?;
    if valid_until <= valid_from {
        return Err(CaseError::Invalid("委托截止日期不能早于开始日期".into()));
    }
    if valid_until <= OffsetDateTime::now_utc() {
        return Err(CaseError::Invalid("委托期限已经届满".into()));
    }
    let (agent, code) = account_for(db, key, audit, staff, "agent", &new.agent, &name).await?;
    let id = Uuid::now_v7();
    audit
        .record(
            Event::new(actor(staff), Action::DelegationGrant, Outcome::Allowed)
                .case(case.id)
                .material(document.material_id)
                .details(serde_json::json!({
                    "delegation_id": id, "agent_id": agent.id, "agent": agent.login_masked,
                    "principal_party_id": principal.id, "principal_label": principal.label,
                    "valid_from": new.valid_from.to_string(), "valid_until": new.valid_until.to_string(),
                    "document_sha256": document.stored.sha256,
                })),
        )
        .await?;
    let txn = db.begin().await?;
    let title = format!("授权委托书（当事人{}）", principal.label);
    crate::materials::record(
        &txn,
        case.id,
        document,
        "authorisation",
        &title,
        "draft",
        staff.id,
    )
    .await?;
    let row = delegation::ActiveModel {
        id: Set(id),
        case_id: Set(case.id),
        principal_party_id: Set(principal.id),
        agent_account_id: Set(agent.id),
        valid_from: Set(valid_from),
        valid_until: Set(valid_until),
        revoked_at: Set(None),
        revoked_by: Set(None),
        authorisation_material_id: Set(Some(document.material_id)),
        created_by: Set(staff.id),
        created_at: Set(OffsetDateTime::now_utc()),
        law_firm: Set(new
            .law_firm
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok((row, agent, code))
}

/// Ends a delegation now; the agent's next request is refused.
pub async fn revoke_delegation(
    db: &DatabaseConnection,
    audit: &Audit,
    staff: &account::Model,
    permit: &CasePermit,
    case: &case::Model,
    delegation_id: Uuid,
) -> Result<(), AppError> {
    debug_assert_eq!(permit.action, CaseAction::Manage);
    let d = delegation::Entity::find_by_id(delegation_id)
        .one(db)
        .await?
        .filter(|d| d.case_id == case.id)
        .ok_or(AppError::NotFound)?;
    if d.revoked_at.is_some() {
        return Ok(());
    }
    audit
        .record(
            Event::new(actor(staff), Action::DelegationRevoke, Outcome::Allowed)
                .case(case.id)
                .details(
                    serde_json::json!({ "delegation_id": d.id, "agent_id": d.agent_account_id }),
                ),
        )
        .await
        .map_err(unavailable)?;
    let mut row: delegation::ActiveModel = d.into();
    row.revoked_at = Set(Some(OffsetDateTime::now_utc()));
    row.revoked_by = Set(Some(staff.id));
    row.update(db).await?;
    Ok(())
}

/// A case's delegations with their agents, newest first.
pub async fn delegations(
    db: &DatabaseConnection,
    case_id: Uuid,
) -> Result<Vec<(delegation::Model, Option<account::Model>)>, DbErr> {
    let rows = delegation::Entity::find()
        .filter(delegation::Column::CaseId.eq(case_id))
        .order_by_desc(delegation::Column::CreatedAt)
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for d in rows {
        let agent = account::Entity::find_by_id(d.agent_account_id)
            .one(db)
            .await?;
        out.push((d, agent));
    }
    Ok(out)
}
