//! The way back to an access application's status page from another browser: a one-time code
//! texted to the mobile number the application gave, asked for with its receipt number. One
//! row per code asked for: its keyed hash (never the code), until when it works, how many wrong
//! tries it has taken (five end it) and when it was used (once).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApplicationLookups {
    Table,
    Id,
    ApplicationId,
    CodeHash,
    CreatedAt,
    ExpiresAt,
    Failures,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApplicationLookups::Table)
                    .col(pk_uuid(ApplicationLookups::Id))
                    .col(uuid(ApplicationLookups::ApplicationId))
                    .col(string_len(ApplicationLookups::CodeHash, 64))
                    .col(timestamp_with_time_zone(ApplicationLookups::CreatedAt))
                    .col(timestamp_with_time_zone(ApplicationLookups::ExpiresAt))
                    .col(integer(ApplicationLookups::Failures).default(0).to_owned())
                    .col(timestamp_with_time_zone_null(ApplicationLookups::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApplicationLookups::Table, ApplicationLookups::ApplicationId)
                            .to(Alias::new("access_applications"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        // A code typed is checked against the application's newest.
        manager
            .create_index(
                Index::create()
                    .name("idx_application_lookups_application")
                    .table(ApplicationLookups::Table)
                    .col(ApplicationLookups::ApplicationId)
                    .col(ApplicationLookups::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ApplicationLookups::Table).to_owned())
            .await
    }
}
