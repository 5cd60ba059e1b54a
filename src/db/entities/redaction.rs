//! A redacted copy of a material (issue 34): a new stored object made from the original with
//! solid boxes burned in, linked to it. The original is never changed; a newer redaction of the
//! same material replaces this one (`replaced_by`), which stays for the history.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "redactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    pub material_id: Uuid,
    /// The original's SHA-256 when the copy was made (the bundle's manifest names both).
    pub source_sha256: String,
    /// `cases/{case_id}/redactions/{id}`; written once the copy is made.
    pub object_key: String,
    pub content_type: String,
    /// Hex SHA-256, CRC-32 and length of the copy; `None` until a video's copy is made.
    pub sha256: Option<String>,
    /// Hex SM3 of the copy (issue 36); `None` until made, or for a copy made before.
    pub sm3: Option<String>,
    pub crc32: Option<i64>,
    pub size: Option<i64>,
    /// The boxes as JSON (`redaction::Areas`): where, on which page or when, and why.
    #[sea_orm(column_type = "Text")]
    pub areas: String,
    /// The reasons' codes, sorted and comma-separated (what the party is told).
    pub reasons: String,
    pub state: crate::vocab::RedactionState,
    /// Why a video's copy could not be made.
    #[sea_orm(column_type = "Text", nullable)]
    pub failure: Option<String>,
    pub made_by: Uuid,
    pub made_at: TimeDateTimeWithTimeZone,
    /// The officer who watched the whole of a video's copy and confirmed it (已逐帧复核).
    pub reviewed_by: Option<Uuid>,
    pub reviewed_at: Option<TimeDateTimeWithTimeZone>,
    pub replaced_by: Option<Uuid>,
}

impl Model {
    /// The reasons as words (codes the catalog no longer knows are left out).
    pub fn reason_words(&self) -> Vec<crate::vocab::RedactionReason> {
        self.reasons
            .split(',')
            .filter_map(crate::vocab::RedactionReason::parse)
            .collect()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::material::Entity",
        from = "Column::MaterialId",
        to = "super::material::Column::Id"
    )]
    Material,
}

impl Related<super::material::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Material.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
