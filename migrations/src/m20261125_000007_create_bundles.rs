//! Bundles: a zip of a case's evidence, frozen for a while so that a cut download resumes on
//! the same bytes (its generation time is part of the signed manifest).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_create_departments_and_accounts::Accounts;
use crate::m20261124_000002_create_cases_and_parties::Cases;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Bundles {
    Table,
    Id,
    CaseId,
    AccountId,
    /// Hex SHA-256 of everything the bundle's bytes depend on except its generation time.
    Contents,
    GeneratedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Bundles::Table)
                    .col(pk_uuid(Bundles::Id))
                    .col(uuid(Bundles::CaseId))
                    .col(uuid(Bundles::AccountId))
                    .col(string_len(Bundles::Contents, 64))
                    .col(timestamp_with_time_zone(Bundles::GeneratedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Bundles::Table, Bundles::CaseId)
                            .to(Cases::Table, Cases::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Bundles::Table, Bundles::AccountId)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_bundles_account_contents")
                    .table(Bundles::Table)
                    .col(Bundles::AccountId)
                    .col(Bundles::Contents)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Bundles::Table).to_owned())
            .await
    }
}
