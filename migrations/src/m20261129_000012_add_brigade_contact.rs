//! How a party reaches the brigade handling their case: its address, telephone and office hours,
//! kept per brigade by administrators and shown on the case page and the printed notice. All
//! optional: brigades made before keep working, and their pages say only what is known.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Departments {
    Table,
    Address,
    Phone,
    OfficeHours,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [
            string_len_null(Departments::Address, 300),
            string_len_null(Departments::Phone, 64),
            string_len_null(Departments::OfficeHours, 200),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Departments::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Departments::Address,
            Departments::Phone,
            Departments::OfficeHours,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Departments::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
