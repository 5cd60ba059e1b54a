//! A burned-in copy of a material made for one person (`PORTAL_WATERMARK_COPIES`): delivered by
//! their downloads and bundles instead of the original until `expires_at`, then removed by `gc`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delivered_copies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub material_id: Uuid,
    /// Where the copy's bytes are: `copies/{account_id}/{material_id}/{id}`.
    pub object_key: String,
    /// `image/jpeg` for a picture, `application/pdf` for a PDF (its pages as marked images).
    pub content_type: String,
    /// Hex SHA-256 of the copy's bytes (in its `material.rendered` event, for tracing).
    pub sha256: String,
    /// Hex SM3 of the copy (issue 36); `None` for a copy made before.
    pub sm3: Option<String>,
    pub crc32: i64,
    pub size: i64,
    /// The code burned into it: the first 8 hex digits of the access event's chain hash.
    pub code: String,
    /// The access event that made it.
    pub event_seq: i64,
    pub made_at: TimeDateTimeWithTimeZone,
    pub expires_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
