//! Named queries on accounts.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::entities::account;

/// A new administrator account, active at once with the given password hash.
pub struct NewAdmin<'a> {
    pub id: Uuid,
    pub login_key: &'a str,
    pub login_masked: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    /// Until when the administrator may act without a second factor.
    pub second_factor_grace_until: Option<time::OffsetDateTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("an account with this sign-in name already exists")]
    Exists,
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[tracing::instrument(skip_all, err)]
pub async fn create_admin(db: &DatabaseConnection, new: NewAdmin<'_>) -> Result<Uuid, CreateError> {
    if find_by_login_key(db, new.login_key).await?.is_some() {
        return Err(CreateError::Exists);
    }
    let now = OffsetDateTime::now_utc();
    let id = new.id;
    account::ActiveModel {
        id: Set(id),
        role: Set(crate::vocab::Role::Admin),
        display_name: Set(new.display_name.into()),
        login_key: Set(new.login_key.into()),
        login_masked: Set(new.login_masked.into()),
        password_hash: Set(Some(new.password_hash.into())),
        department_id: Set(None),
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
        second_factor_grace_until: Set(new.second_factor_grace_until),
        second_factor_failures: Set(0),
        second_factor_locked_until: Set(None),
        language: Set(None),
        care: Set(false),
    }
    .insert(db)
    .await
    .map_err(|e| match e.sql_err() {
        // Two concurrent creators: the unique index decides.
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => CreateError::Exists,
        _ => CreateError::Db(e),
    })?;
    Ok(id)
}

pub async fn find_by_login_key(
    db: &DatabaseConnection,
    login_key: &str,
) -> Result<Option<account::Model>, DbErr> {
    account::Entity::find()
        .filter(account::Column::LoginKey.eq(login_key))
        .one(db)
        .await
}
