//! A piece of evidence (or an internal document such as an authorisation). Never deleted or
//! overwritten: a correction is a new material that supersedes the old one.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "materials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    /// scene_diagram … other, and the internal `authorisation`.
    pub kind: crate::vocab::MaterialKind,
    pub title: String,
    /// Display text only.
    pub original_name: String,
    /// Sniffed from the bytes.
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    /// Hex SM3 (GB/T 32905); `None` for a material recorded before issue 36 until backfilled
    /// (`materials::sm3`).
    pub sm3: Option<String>,
    pub crc32: i64,
    /// `cases/{case_id}/{material_id}`.
    pub object_key: String,
    /// `draft` | `released` | `withheld`.
    pub state: crate::vocab::MaterialState,
    pub withhold_ground: Option<crate::vocab::WithholdGround>,
    #[sea_orm(column_type = "Text", nullable)]
    pub withhold_note: Option<String>,
    pub uploaded_by: Uuid,
    pub uploaded_at: TimeDateTimeWithTimeZone,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<TimeDateTimeWithTimeZone>,
    pub superseded_by: Option<Uuid>,
    /// 证明对象: what staff say the material proves (≤ 200 characters), for the evidence index.
    pub proves: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::case::Entity",
        from = "Column::CaseId",
        to = "super::case::Column::Id"
    )]
    Case,
}

impl Related<super::case::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Case.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
