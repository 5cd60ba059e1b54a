//! A zip of a case's evidence as generated for one person. Rows are kept: a repeated request for
//! the same contents within the freeze window gets the byte-identical zip (and can resume).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bundles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    pub account_id: Uuid,
    /// Hex SHA-256 of everything the bytes depend on except `generated_at`.
    pub contents: String,
    pub generated_at: TimeDateTimeWithTimeZone,
    /// The time-stamping authority's DER response for this bundle's `manifest.json`
    /// (`PORTAL_TSA_URL`), kept so the same bundle is the same bytes again.
    pub timestamp_token: Option<Vec<u8>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
