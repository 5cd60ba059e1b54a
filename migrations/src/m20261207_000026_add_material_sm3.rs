//! SM3 (GB/T 32905) beside SHA-256 (issue 36): the hex SM3 of every material, redacted copy and
//! delivered copy, empty for rows made before (filled by `gc`, in the background at `serve`
//! start, or by the first bundle that needs it); and a material's 证明对象 — what staff say it
//! proves, printed in the evidence index of a bundle.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Materials {
    Table,
    Sm3,
    Proves,
}

#[derive(DeriveIden)]
enum Redactions {
    Table,
    Sm3,
}

#[derive(DeriveIden)]
enum DeliveredCopies {
    Table,
    Sm3,
}

/// One column per statement: SQLite alters one at a time.
fn add(table: impl IntoIden, column: ColumnDef) -> TableAlterStatement {
    Table::alter().table(table).add_column(column).to_owned()
}

fn remove(table: impl IntoIden, column: impl IntoIden) -> TableAlterStatement {
    Table::alter().table(table).drop_column(column).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(add(Materials::Table, string_len_null(Materials::Sm3, 64)))
            .await?;
        manager
            .alter_table(add(
                Materials::Table,
                string_len_null(Materials::Proves, 200),
            ))
            .await?;
        manager
            .alter_table(add(Redactions::Table, string_len_null(Redactions::Sm3, 64)))
            .await?;
        manager
            .alter_table(add(
                DeliveredCopies::Table,
                string_len_null(DeliveredCopies::Sm3, 64),
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(remove(DeliveredCopies::Table, DeliveredCopies::Sm3))
            .await?;
        manager
            .alter_table(remove(Redactions::Table, Redactions::Sm3))
            .await?;
        manager
            .alter_table(remove(Materials::Table, Materials::Proves))
            .await?;
        manager
            .alter_table(remove(Materials::Table, Materials::Sm3))
            .await
    }
}
