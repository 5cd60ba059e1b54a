//! Account administration: creating accounts with their first access code, disabling,
//! re-enabling and resetting — each change audited, each in one transaction with its code.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::{Action, Actor, Audit, AuditError, Event, Outcome};
use crate::auth::access_code::{self, IssuedCode};
use crate::auth::identifier::Identifier;
use crate::auth::session;
use crate::db::entities::{account, account_reset, department};
use crate::keys::ServerKey;
use crate::vocab::Role;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("已存在使用该登录账号的账户 (an account with this identifier already exists)")]
    Exists,
    #[error("已存在使用该代码的大队 (a brigade with this code already exists)")]
    DepartmentExists,
    #[error("所选大队不存在 (no such brigade)")]
    NoSuchDepartment,
    /// A field that breaks a rule (shown next to the form).
    #[error("{0}")]
    Invalid(String),
    #[error("账户不存在 (no such account)")]
    NotFound,
    #[error("不能对管理员账户执行此操作 (not for administrator accounts)")]
    AdminAccount,
    #[error(
        "请填写重置原因（不超过200字） (give the reason for the reset, at most 200 characters)"
    )]
    NoReason,
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// What a new account is.
pub struct NewAccount {
    pub role: Role,
    pub identifier: Identifier,
    pub display_name: String,
    pub department_id: Option<Uuid>,
}

/// Creates an inactive account and its first access code (returned to be shown once).
pub async fn create(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    by: Actor,
    new: NewAccount,
) -> Result<(account::Model, IssuedCode), AccountError> {
    let login_key = new.identifier.login_key(key);
    if account::Entity::find()
        .filter(account::Column::LoginKey.eq(login_key.clone()))
        .one(db)
        .await?
        .is_some()
    {
        return Err(AccountError::Exists);
    }
    if let Some(dep) = new.department_id
        && department::Entity::find_by_id(dep).one(db).await?.is_none()
    {
        return Err(AccountError::NoSuchDepartment);
    }
    let id = Uuid::now_v7();
    audit
        .record(
            Event::new(by.clone(), Action::AccountCreate, Outcome::Allowed).details(
                serde_json::json!({
                    "account_id": id,
                    "role": new.role,
                    "login": new.identifier.masked(),
                    "department_id": new.department_id,
                }),
            ),
        )
        .await?;
    let now = OffsetDateTime::now_utc();
    let txn = db.begin().await?;
    let row = account::ActiveModel {
        id: Set(id),
        role: Set(new.role),
        display_name: Set(new.display_name),
        login_key: Set(login_key),
        login_masked: Set(new.identifier.masked()),
        password_hash: Set(None),
        department_id: Set(new.department_id),
        disabled: Set(false),
        failed_logins: Set(0),
        locked_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        mobile: Set(None),
        email: Set(None),
        notify_sms: Set(false),
        notify_email: Set(false),
        unread_notifications: Set(0),
        organisation: Set(None),
        second_factor_grace_until: Set(None),
        second_factor_failures: Set(0),
        second_factor_locked_until: Set(None),
        language: Set(None),
        care: Set(false),
    }
    .insert(&txn)
    .await
    .map_err(|e| match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => AccountError::Exists,
        _ => AccountError::Db(e),
    })?;
    let code = access_code::issue(&txn, key, id, by.id).await?;
    txn.commit().await?;
    Ok((row, code))
}

async fn find_managed(db: &DatabaseConnection, id: Uuid) -> Result<account::Model, AccountError> {
    let acc = account::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AccountError::NotFound)?;
    if acc.role == Role::Admin {
        return Err(AccountError::AdminAccount);
    }
    Ok(acc)
}

/// Disables (or re-enables) an account; disabling ends its sessions at once.
pub async fn set_disabled(
    db: &DatabaseConnection,
    audit: &Audit,
    by: Actor,
    id: Uuid,
    disabled: bool,
) -> Result<account::Model, AccountError> {
    let acc = find_managed(db, id).await?;
    let action = if disabled {
        Action::AccountDisable
    } else {
        Action::AccountEnable
    };
    audit
        .record(
            Event::new(by, action, Outcome::Allowed)
                .details(serde_json::json!({ "account_id": id, "login": acc.login_masked })),
        )
        .await?;
    let txn = db.begin().await?;
    let mut row: account::ActiveModel = acc.into();
    row.disabled = Set(disabled);
    row.updated_at = Set(OffsetDateTime::now_utc());
    let acc = row.update(&txn).await?;
    if disabled {
        session::revoke_all(&txn, id, None).await?;
    }
    txn.commit().await?;
    Ok(acc)
}

/// Who resets an account, and why: the person is told both at their next sign-in.
pub struct ResetBy {
    pub actor: Actor,
    /// The brigade's name, or "administrator", as the person will read it.
    pub label: String,
    pub reason: String,
}

/// Clears the password, ends every session and API token, records who reset it and why (shown
/// to the person at their next sign-in) and issues a new access code (shown once).
pub async fn reset(
    db: &DatabaseConnection,
    key: &ServerKey,
    audit: &Audit,
    channels: crate::notifications::Channels,
    by: ResetBy,
    id: Uuid,
) -> Result<(account::Model, IssuedCode), AccountError> {
    let reason = by.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(AccountError::NoReason);
    }
    let acc = find_managed(db, id).await?;
    audit
        .record(
            Event::new(by.actor.clone(), Action::AccountReset, Outcome::Allowed).details(
                serde_json::json!({ "account_id": id, "login": acc.login_masked, "by": by.label, "reason": reason }),
            ),
        )
        .await?;
    let now = OffsetDateTime::now_utc();
    let txn = db.begin().await?;
    let mut row: account::ActiveModel = acc.into();
    row.password_hash = Set(None);
    row.failed_logins = Set(0);
    row.locked_until = Set(None);
    row.updated_at = Set(now);
    let acc = row.update(&txn).await?;
    session::revoke_all(&txn, id, None).await?;
    crate::auth::tokens::revoke_all(&txn, id).await?;
    account_reset::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(id),
        at: Set(now),
        by_account_id: Set(by.actor.id),
        by_label: Set(by.label.chars().take(200).collect()),
        reason: Set(reason),
        seen_at: Set(None),
    }
    .insert(&txn)
    .await?;
    let code = access_code::issue(&txn, key, id, by.actor.id).await?;
    // A security notice to the person, by every channel they chose: if they did not ask for the
    // reset, they hear of it at once.
    crate::notifications::notify(
        &txn,
        channels,
        std::slice::from_ref(&acc),
        None,
        &crate::notifications::Event::AccountReset,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok((acc, code))
}

/// Removes a staff member's second factor (their app lost with its recovery codes): every factor
/// and recovery code goes, every session ends, the reason is audited (`second_factor.reset`) and
/// the person is told; at their next sign-in they enrol anew. An administrator's is reset with
/// the CLI (`account reset-second-factor`).
pub async fn reset_second_factor(
    db: &DatabaseConnection,
    audit: &Audit,
    channels: crate::notifications::Channels,
    by: ResetBy,
    id: Uuid,
) -> Result<account::Model, AccountError> {
    let reason = by.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(AccountError::NoReason);
    }
    let acc = find_managed(db, id).await?;
    if !crate::auth::second_factor::required(acc.role) {
        return Err(AccountError::Invalid(
            "只有民警和管理员账户有二次验证 (only officers and administrators have a second factor)"
                .into(),
        ));
    }
    audit
        .record(
            Event::new(by.actor.clone(), Action::SecondFactorReset, Outcome::Allowed).details(
                serde_json::json!({ "account_id": id, "login": acc.login_masked, "by": by.label, "reason": reason }),
            ),
        )
        .await?;
    let now = OffsetDateTime::now_utc();
    let txn = db.begin().await?;
    crate::auth::second_factor::reset(&txn, id).await?;
    session::revoke_all(&txn, id, None).await?;
    crate::notifications::notify(
        &txn,
        channels,
        std::slice::from_ref(&acc),
        None,
        &crate::notifications::Event::SecondFactorReset,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(acc)
}

/// The resets of `account_id` its owner has not been told of yet, oldest first; marks them told.
pub async fn take_unseen_resets(
    db: &DatabaseConnection,
    account_id: Uuid,
) -> Result<Vec<account_reset::Model>, DbErr> {
    let unseen = account_reset::Entity::find()
        .filter(account_reset::Column::AccountId.eq(account_id))
        .filter(account_reset::Column::SeenAt.is_null())
        .order_by_asc(account_reset::Column::At)
        .all(db)
        .await?;
    if !unseen.is_empty() {
        account_reset::Entity::update_many()
            .col_expr(
                account_reset::Column::SeenAt,
                sea_orm::sea_query::Expr::value(OffsetDateTime::now_utc()),
            )
            .filter(account_reset::Column::Id.is_in(unseen.iter().map(|r| r.id)))
            .exec(db)
            .await?;
    }
    Ok(unseen)
}

pub async fn create_department(
    db: &DatabaseConnection,
    audit: &Audit,
    by: Actor,
    code: &str,
    name: &str,
) -> Result<department::Model, AccountError> {
    if department::Entity::find()
        .filter(department::Column::Code.eq(code))
        .one(db)
        .await?
        .is_some()
    {
        return Err(AccountError::DepartmentExists);
    }
    let id = Uuid::now_v7();
    audit
        .record(
            Event::new(by, Action::DepartmentCreate, Outcome::Allowed)
                .details(serde_json::json!({ "department_id": id, "code": code, "name": name })),
        )
        .await?;
    Ok(department::ActiveModel {
        id: Set(id),
        code: Set(code.to_owned()),
        name: Set(name.to_owned()),
        created_at: Set(OffsetDateTime::now_utc()),
        address: Set(None),
        phone: Set(None),
        office_hours: Set(None),
    }
    .insert(db)
    .await?)
}

/// How parties reach a brigade; an empty text clears that line.
#[derive(Clone, Debug, Default)]
pub struct BrigadeContact {
    pub address: String,
    pub phone: String,
    pub office_hours: String,
}

/// Sets a brigade's address, telephone and office hours (audited).
pub async fn set_department_contact(
    db: &DatabaseConnection,
    audit: &Audit,
    by: Actor,
    id: Uuid,
    contact: BrigadeContact,
) -> Result<department::Model, AccountError> {
    let current = department::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AccountError::NotFound)?;
    let clean =
        |text: &str, max: usize, what: (&str, &str)| -> Result<Option<String>, AccountError> {
            let text = text.trim();
            if text.chars().count() > max || text.chars().any(char::is_control) {
                return Err(AccountError::Invalid(format!(
                    "{}过长或含有不可见字符 ({}: too long, or has invisible characters)",
                    what.0, what.1
                )));
            }
            Ok((!text.is_empty()).then(|| text.to_owned()))
        };
    let address = clean(&contact.address, 300, ("地址", "the address"))?;
    let phone = clean(&contact.phone, 64, ("电话", "the telephone"))?;
    let office_hours = clean(&contact.office_hours, 200, ("办公时间", "the office hours"))?;
    audit
        .record(
            Event::new(by, Action::DepartmentUpdate, Outcome::Allowed).details(serde_json::json!({
                "department_id": id, "address": address, "phone": phone,
                "office_hours": office_hours,
            })),
        )
        .await?;
    let mut row: department::ActiveModel = current.into();
    row.address = Set(address);
    row.phone = Set(phone);
    row.office_hours = Set(office_hours);
    Ok(row.update(db).await?)
}

pub async fn departments(db: &DatabaseConnection) -> Result<Vec<department::Model>, DbErr> {
    department::Entity::find()
        .order_by_asc(department::Column::Code)
        .all(db)
        .await
}

/// The newest accounts other than admins (the admin page lists these).
pub async fn recent(db: &DatabaseConnection, limit: u64) -> Result<Vec<account::Model>, DbErr> {
    account::Entity::find()
        .filter(account::Column::Role.ne(Role::Admin))
        .order_by_desc(account::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await
}

/// Keeps the care mode (长辈版) the person chose on their account, so that their pages follow
/// it on any device once they sign in. A preference like the language (not audited); written
/// only when it changed.
pub async fn remember_care(
    db: &impl sea_orm::ConnectionTrait,
    account_id: Uuid,
    care: bool,
) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(account::Column::Care, sea_orm::sea_query::Expr::value(care))
        .filter(account::Column::Id.eq(account_id))
        .filter(account::Column::Care.ne(care))
        .exec(db)
        .await?;
    Ok(())
}
