//! A reset of a person's account: by whom, from which brigade, why, and whether the person has
//! been told (they are, at their next sign-in).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_resets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub at: TimeDateTimeWithTimeZone,
    /// `None`: the command line.
    pub by_account_id: Option<Uuid>,
    /// The brigade's name, or "administrator", as shown to the person.
    pub by_label: String,
    pub reason: String,
    pub seen_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
