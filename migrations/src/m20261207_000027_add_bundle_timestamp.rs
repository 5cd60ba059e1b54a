//! The RFC 3161 timestamp of a bundle's manifest (issue 36): the authority's DER response, kept
//! with the bundle so that the same bundle asked for again is byte for byte the same zip (a
//! second request to the authority would give another token). Empty where no authority is set,
//! and for every bundle made before.
//!
//! (The SM2 signatures of issue 36 need no column: a bundle's is in the zip, a checkpoint's is an
//! object beside the checkpoint in the store.)

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Bundles {
    Table,
    TimestampToken,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Bundles::Table)
                    .add_column(blob_null(Bundles::TimestampToken))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Bundles::Table)
                    .drop_column(Bundles::TimestampToken)
                    .to_owned(),
            )
            .await
    }
}
