//! The people of a case: its parties, the accounts they sign in with, and who may credential
//! or reset those accounts (`policy::may_credential`).

use super::*;
use crate::vocab::{PartyRole, Role};

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
pub(super) async fn account_for(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    staff: &account::Model,
    role: Role,
    identifier: &Identifier,
    name: &str,
) -> Result<(account::Model, Option<IssuedCode>), CaseError> {
    let existing = account::Entity::find()
        .filter(account::Column::LoginKey.eq(identifier.login_key(key)))
        .one(db)
        .await?;
    match existing {
        Some(a) if a.role != role => Err(CaseError::field(
            "identifier",
            "该号码已用于其他类型的账户 (the identifier belongs to another kind of account)",
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
        return Err(CaseError::field(
            "name",
            "请填写当事人姓名（不超过100字） (give the party's name, at most 100 characters)",
        ));
    }
    if label.is_empty() || label.chars().count() > 8 {
        return Err(CaseError::field(
            "label",
            "请填写当事人代号，如甲、乙、丙 (give the party's label, such as 甲, 乙, 丙)",
        ));
    }
    let Some(role) = PartyRole::parse(&new.role) else {
        return Err(CaseError::field(
            "role",
            "请选择当事人在事故中的身份 (choose the party's part in the accident)",
        ));
    };
    let existing = case_party::Entity::find()
        .filter(case_party::Column::CaseId.eq(case.id))
        .find_also_related(account::Entity)
        .all(db)
        .await?;
    if existing.iter().any(|(p, _)| p.label == label) {
        return Err(CaseError::field(
            "label",
            format!("本案已有当事人{label} (the case already has a party {label})"),
        ));
    }
    let login_key = new.identifier.login_key(key);
    if existing
        .iter()
        .any(|(_, a)| a.as_ref().is_some_and(|a| a.login_key == login_key))
    {
        return Err(CaseError::field(
            "identifier",
            "该当事人已登记在本案 (this party is already registered in the case)",
        ));
    }
    let (party_account, code) =
        account_for(db, key, audit, staff, Role::Party, &new.identifier, &name).await?;
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
        role: Set(role),
        name: Set(name),
        created_by: Set(staff.id),
        created_at: Set(OffsetDateTime::now_utc()),
        mobile: Set(new
            .mobile
            .filter(|m| !m.is_empty())
            .map(|m| key.seal_contact(crate::keys::Contact::Mobile, &m))),
    }
    .insert(db)
    .await?;
    texted_at(db, party_account.id, row.mobile.as_deref()).await?;
    Ok((row, party_account, code))
}

/// The number the brigade took down (sealed) is where the party's SMS go, unless the account
/// already has one; the party can change it, or turn SMS off, on their account page.
async fn texted_at(
    db: &DatabaseConnection,
    account_id: Uuid,
    mobile: Option<&str>,
) -> Result<(), DbErr> {
    if let Some(mobile) = mobile {
        account::Entity::update_many()
            .col_expr(account::Column::Mobile, Expr::value(mobile))
            .col_expr(account::Column::NotifySms, Expr::value(true))
            .filter(account::Column::Id.eq(account_id))
            .filter(account::Column::Mobile.is_null())
            .exec(db)
            .await?;
    }
    Ok(())
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
    channels: crate::notifications::Channels,
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
    match accounts::reset(db, key, audit, channels, by, account.id).await {
        Ok((account, code)) => Ok((party, account, code)),
        Err(AccountError::Db(e)) => Err(e.into()),
        Err(AccountError::Audit(e)) => Err(e.into()),
        Err(other) => Err(CaseError::Invalid(other.to_string())),
    }
}
