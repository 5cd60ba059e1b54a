//! An accident case (事故) of one brigade.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub department_id: Uuid,
    /// 事故编号, unique within the brigade.
    pub case_number: String,
    pub occurred_at: TimeDateTimeWithTimeZone,
    pub place: String,
    #[sea_orm(column_type = "Text")]
    pub summary: String,
    /// Fatal and complex cases may go through the Art. 63 disclosure stage.
    pub fatal: bool,
    pub complex: bool,
    /// `investigating` | `disclosing` | `served` | `closed`.
    pub status: crate::vocab::CaseStatus,
    /// `determination` (认定书) | `certificate` (证明), once served.
    pub service_kind: Option<crate::vocab::ServiceKind>,
    pub served_on: Option<TimeDate>,
    pub created_by: Uuid,
    pub created_at: TimeDateTimeWithTimeZone,
    pub updated_at: TimeDateTimeWithTimeZone,
    pub status_changed_by: Option<Uuid>,
    pub status_changed_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::case_party::Entity")]
    Party,
    #[sea_orm(has_many = "super::material::Entity")]
    Material,
}

impl Related<super::case_party::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Party.def()
    }
}

impl Related<super::material::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Material.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
