//! Agents' delegations: granted with a signed authorisation for a dated period, revoked at once.

use super::parties::account_for;
use super::*;
use crate::vocab::{MaterialKind, MaterialState, Role};

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

/// The agent's name (trimmed, 1 to 100 characters) and the delegation's period as instants:
/// from the start of its first day to the end of its last (CST), not already over.
fn checked_name_and_period(
    new: &NewDelegation,
) -> Result<(String, OffsetDateTime, OffsetDateTime), CaseError> {
    let name = new.agent_name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(CaseError::field(
            "agent_name",
            "请填写代理人姓名（不超过100字） (give the agent's name, at most 100 characters)",
        ));
    }
    let valid_from = times::cst_day_start(new.valid_from);
    let valid_until = new
        .valid_until
        .next_day()
        .map(times::cst_day_start)
        .ok_or_else(|| {
            CaseError::field(
                "valid_until",
                "委托截止日期无效 (the end of the delegation is not a valid date)",
            )
        })?;
    if valid_until <= valid_from {
        return Err(CaseError::field(
            "valid_until",
            "委托截止日期不能早于开始日期 (the delegation cannot end before it starts)",
        ));
    }
    if valid_until <= OffsetDateTime::now_utc() {
        return Err(CaseError::field(
            "valid_until",
            "委托期限已经届满 (the delegation would already have ended)",
        ));
    }
    Ok((name, valid_from, valid_until))
}

/// An agent known by a mobile number is texted there, unless their account already has one
/// (they can change it, or turn SMS off, on their account page).
async fn text_at_their_mobile(
    db: &DatabaseConnection,
    key: &ServerKey,
    identifier: &Identifier,
    agent: &mut account::Model,
) -> Result<(), CaseError> {
    if let (crate::auth::identifier::Identifier::Mobile(m), None) = (identifier, &agent.mobile) {
        let sealed = key.seal_contact(crate::keys::Contact::Mobile, m);
        let set = account::Entity::update_many()
            .col_expr(account::Column::Mobile, Expr::value(sealed.clone()))
            .col_expr(account::Column::NotifySms, Expr::value(true))
            .filter(account::Column::Id.eq(agent.id))
            .filter(account::Column::Mobile.is_null())
            .exec(db)
            .await?;
        if set.rows_affected == 1 {
            agent.mobile = Some(sealed);
            agent.notify_sms = true;
        }
    }
    Ok(())
}

/// Registers a delegation with its authorisation document (recorded as an internal material of
/// kind `authorisation`, never shown to parties). An existing agent account with the same
/// identifier is reused; otherwise one is created with an access code.
#[allow(clippy::too_many_arguments)]
pub async fn grant_delegation(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    channels: crate::notifications::Channels,
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
        .ok_or_else(|| {
            CaseError::field(
                "principal",
                "请选择委托人（本案当事人） (choose the party the agent acts for)",
            )
        })?;
    let (name, valid_from, valid_until) = checked_name_and_period(&new)?;
    let (mut agent, code) =
        account_for(db, key, audit, staff, Role::Agent, &new.agent, &name).await?;
    text_at_their_mobile(db, key, &new.agent, &mut agent).await?;
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
        MaterialKind::Authorisation,
        &title,
        MaterialState::Draft,
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
    // The principal and the agent are told, with the end of the agency (its last day, CST).
    let (_, last) = super::delegation_days(row.valid_from, row.valid_until);
    tell_both(
        &txn,
        channels,
        case,
        principal.account_id,
        agent.id,
        &crate::notifications::Event::DelegationRegistered { until: last },
    )
    .await?;
    txn.commit().await?;
    Ok((row, agent, code))
}

/// Ends a delegation now; the agent's next request is refused.
pub async fn revoke_delegation(
    db: &DatabaseConnection,
    audit: &Audit,
    channels: crate::notifications::Channels,
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
        .await?;
    let principal = case_party::Entity::find_by_id(d.principal_party_id)
        .one(db)
        .await?
        .map(|p| p.account_id);
    let agent = d.agent_account_id;
    let mut row: delegation::ActiveModel = d.into();
    row.revoked_at = Set(Some(OffsetDateTime::now_utc()));
    row.revoked_by = Set(Some(staff.id));
    let txn = db.begin().await?;
    row.update(&txn).await?;
    if let Some(principal) = principal {
        tell_both(
            &txn,
            channels,
            case,
            principal,
            agent,
            &crate::notifications::Event::DelegationRevoked,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Tells a delegation's principal and agent of `event`, on `txn`.
async fn tell_both(
    txn: &impl sea_orm::ConnectionTrait,
    channels: crate::notifications::Channels,
    case: &case::Model,
    principal: Uuid,
    agent: Uuid,
    event: &crate::notifications::Event,
) -> Result<(), DbErr> {
    let people = account::Entity::find()
        .filter(account::Column::Id.is_in([principal, agent]))
        .all(txn)
        .await?;
    crate::notifications::notify(
        txn,
        channels,
        &people,
        Some(case),
        event,
        OffsetDateTime::now_utc(),
    )
    .await
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

/// The days a delegation is in force, as people name them: its first and its last day in China
/// Standard Time (it is stored as the instants from the first day's start to the end of the
/// last day, i.e. the next day's start).
pub fn delegation_days(
    valid_from: time::OffsetDateTime,
    valid_until: time::OffsetDateTime,
) -> (time::Date, time::Date) {
    let cst = time::macros::offset!(+8);
    (
        valid_from.to_offset(cst).date(),
        (valid_until - time::Duration::seconds(1))
            .to_offset(cst)
            .date(),
    )
}
