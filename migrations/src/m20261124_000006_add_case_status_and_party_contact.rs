//! Who moved a case's status last and when; a party's mobile number; an agent's law firm.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Cases {
    Table,
    StatusChangedBy,
    StatusChangedAt,
}

#[derive(DeriveIden)]
enum CaseParties {
    Table,
    /// For the brigade to reach the party; never shown to other parties.
    Mobile,
}

#[derive(DeriveIden)]
enum Delegations {
    Table,
    LawFirm,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Cases::Table)
                    .add_column(uuid_null(Cases::StatusChangedBy))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Cases::Table)
                    .add_column(timestamp_with_time_zone_null(Cases::StatusChangedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(CaseParties::Table)
                    .add_column(string_len_null(CaseParties::Mobile, 32))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Delegations::Table)
                    .add_column(string_len_null(Delegations::LawFirm, 200))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Delegations::Table)
                    .drop_column(Delegations::LawFirm)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(CaseParties::Table)
                    .drop_column(CaseParties::Mobile)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Cases::Table)
                    .drop_column(Cases::StatusChangedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Cases::Table)
                    .drop_column(Cases::StatusChangedBy)
                    .to_owned(),
            )
            .await
    }
}
