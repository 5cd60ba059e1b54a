//! One message in a person's inbox (站内信): what happened (`event`, with its parameters as
//! JSON, worded in the reader's language when shown), on which case, and whether it was read.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub case_id: Option<Uuid>,
    /// `notifications::Event`'s stored word.
    pub event: String,
    /// The event's parameters (JSON): a count, a date — never evidence, a code or a name.
    pub params: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub read_at: Option<TimeDateTimeWithTimeZone>,
    /// Set on reminders: the same key is never written twice (unique), whichever instance
    /// scans first.
    pub dedupe_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
