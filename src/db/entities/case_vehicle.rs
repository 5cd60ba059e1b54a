//! A vehicle of a case (车辆), recorded by staff, against which owners' and insurers'
//! applications to query the case are checked. One per plate and case.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "case_vehicles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    /// The plate number as applications give it (`applications::fields::plate_text`):
    /// full-width folded, spaces, hyphens and dots removed, upper case.
    pub plate: String,
    /// The insurer covering the vehicle, as staff know it (from the policy in the file).
    pub insurer: Option<String>,
    /// A few words for staff ("小型轿车，白色").
    pub description: Option<String>,
    pub created_by: Uuid,
    pub created_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
