//! One event of the access-audit log. Rows are only ever inserted, by `audit::writer`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    /// Gapless from 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    /// UTC, microsecond precision.
    pub occurred_at: TimeDateTimeWithTimeZone,
    pub actor_id: Option<Uuid>,
    pub actor_role: String,
    pub action: String,
    pub case_id: Option<Uuid>,
    pub material_id: Option<Uuid>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub outcome: String,
    /// JSON text, exactly the bytes that were hashed.
    #[sea_orm(column_type = "Text")]
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
