//! A traffic-police brigade (交警大队): staff and cases belong to one.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "departments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Short code, unique (e.g. the brigade's administrative code).
    pub code: String,
    pub name: String,
    pub created_at: TimeDateTimeWithTimeZone,
    /// Where parties find the brigade (shown on case pages and notices; optional).
    pub address: Option<String>,
    pub phone: Option<String>,
    /// E.g. "工作日 9:00–12:00，13:30–17:30".
    pub office_hours: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
