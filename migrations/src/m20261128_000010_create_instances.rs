//! Running instances of the portal, each with a heartbeat: when one stops beating, another
//! (or the next start) closes the transfers it left open as "interrupted" in the audit log.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Instances {
    Table,
    Id,
    StartedAt,
    SeenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Instances::Table)
                    .col(pk_uuid(Instances::Id))
                    .col(timestamp_with_time_zone(Instances::StartedAt))
                    .col(timestamp_with_time_zone(Instances::SeenAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Instances::Table).to_owned())
            .await
    }
}
