//! A one-time code asked for to find an access application again from another browser (its
//! receipt number and the mobile number it gave): texted to that number, kept only as a keyed
//! hash, working for ten minutes, five wrong tries and one use (`applications::lookup`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "application_lookups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub application_id: Uuid,
    /// Hex HMAC of `{id}:{code}` under the server key (`ServerKey::mac`): the code itself is
    /// stored nowhere.
    pub code_hash: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub expires_at: TimeDateTimeWithTimeZone,
    /// Wrong codes typed for it; at five it is spent (counted atomically).
    pub failures: i32,
    /// When the right code was typed: single use.
    pub used_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
