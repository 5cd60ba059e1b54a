//! A party registered on a case, with its label (甲/乙/丙…) and role in the accident.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "case_parties")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    pub account_id: Uuid,
    pub label: String,
    /// driver | passenger | pedestrian | vehicle_owner | close_relative | other.
    pub role: crate::vocab::PartyRole,
    pub name: String,
    pub created_by: Uuid,
    pub created_at: TimeDateTimeWithTimeZone,
    /// The party's mobile number, sealed (`ServerKey::seal_contact`): never kept in clear.
    pub mobile: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::account::Entity",
        from = "Column::AccountId",
        to = "super::account::Column::Id"
    )]
    Account,
    #[sea_orm(
        belongs_to = "super::case::Entity",
        from = "Column::CaseId",
        to = "super::case::Column::Id"
    )]
    Case,
}

impl Related<super::account::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

impl Related<super::case::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Case.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
