//! Agents' personal API tokens: `ep_` + 64 hex digits (256 bits), shown once, stored as a
//! SHA-256, revocable. Accepted as `Authorization: Bearer` on download routes only.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::entities::{account, api_token};
use crate::vocab::Role;

const PREFIX: &str = "ep_";

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token for `account_id`; returns the row and the token (never stored).
pub async fn create(
    db: &impl ConnectionTrait,
    account_id: Uuid,
    name: &str,
) -> Result<(api_token::Model, String), DbErr> {
    let token = format!("{PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
    let row = api_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        name: Set(name.to_owned()),
        token_hash: Set(hash(&token)),
        prefix: Set(token[..10].to_owned()),
        created_at: Set(OffsetDateTime::now_utc()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok((row, token))
}

pub async fn list(
    db: &impl ConnectionTrait,
    account_id: Uuid,
) -> Result<Vec<api_token::Model>, DbErr> {
    api_token::Entity::find()
        .filter(api_token::Column::AccountId.eq(account_id))
        .order_by_desc(api_token::Column::CreatedAt)
        .all(db)
        .await
}

/// Revokes one of `account_id`'s tokens; false if it has no such live token.
pub async fn revoke(
    db: &impl ConnectionTrait,
    account_id: Uuid,
    token_id: Uuid,
) -> Result<bool, DbErr> {
    let done = api_token::Entity::update_many()
        .col_expr(
            api_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(OffsetDateTime::now_utc()),
        )
        .filter(api_token::Column::Id.eq(token_id))
        .filter(api_token::Column::AccountId.eq(account_id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Revokes every live token of an account (password change, reset): a token is as strong as the
/// password it was made under.
pub async fn revoke_all(db: &impl ConnectionTrait, account_id: Uuid) -> Result<u64, DbErr> {
    Ok(api_token::Entity::update_many()
        .col_expr(
            api_token::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(OffsetDateTime::now_utc()),
        )
        .filter(api_token::Column::AccountId.eq(account_id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// The enabled agent account a live token belongs to.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    token: &str,
) -> Result<Option<(api_token::Model, account::Model)>, DbErr> {
    if !token.starts_with(PREFIX) || token.len() > 100 {
        return Ok(None);
    }
    // The token and its owner in one statement (every ranged request of a `curl -C -` pays it).
    let Some((row, Some(owner))) = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(hash(token)))
        .find_also_related(account::Entity)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if row.revoked_at.is_some() {
        return Ok(None);
    }
    if owner.disabled || owner.role != Role::Agent || owner.password_hash.is_none() {
        return Ok(None);
    }
    // "Last used" to the minute, like a session's last activity: not a write per request.
    let now = OffsetDateTime::now_utc();
    if row
        .last_used_at
        .is_none_or(|at| now - at >= super::session::TOUCH_EVERY)
    {
        let mut touched: api_token::ActiveModel = row.clone().into();
        touched.last_used_at = Set(Some(now));
        touched.update(db).await?;
    }
    Ok(Some((row, owner)))
}
