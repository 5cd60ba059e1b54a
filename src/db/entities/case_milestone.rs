//! One entry of a case's timeline (办理进度). Never deleted: a correction is a new entry that
//! names the one it `corrects`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "case_milestones")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    pub stage: crate::vocab::Stage,
    pub occurred_on: TimeDate,
    /// For the parties (shown on their case page).
    pub note: Option<String>,
    /// For the file only (staff).
    pub internal_note: Option<String>,
    /// Added by the portal when the case moved, not typed by staff.
    pub automatic: bool,
    pub corrects: Option<Uuid>,
    pub recorded_by: Option<Uuid>,
    pub recorded_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
