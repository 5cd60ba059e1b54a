//! A sign-in session; the session cookie's JWT carries its id and is checked against this row
//! on every request, so sign-out, expiry and disabling take effect at once.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub created_at: TimeDateTimeWithTimeZone,
    /// Refreshed at most once a minute; the idle timeout counts from here.
    pub last_seen_at: TimeDateTimeWithTimeZone,
    /// Absolute end (created + 12 h).
    pub expires_at: TimeDateTimeWithTimeZone,
    pub revoked_at: Option<TimeDateTimeWithTimeZone>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// When this session last passed a second factor (staff and administrators).
    pub second_factor_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::account::Entity",
        from = "Column::AccountId",
        to = "super::account::Column::Id"
    )]
    Account,
}

impl Related<super::account::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
