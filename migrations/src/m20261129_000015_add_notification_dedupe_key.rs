//! Reminders (a review period ending tomorrow, an agency ending, an access code expiring) are
//! found by a periodic scan in every instance; `dedupe_key` (unique where set) lets the first
//! instance to write one win and every later scan find it there, so nobody is reminded twice.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Notifications {
    Table,
    DedupeKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .add_column(string_len_null(Notifications::DedupeKey, 120))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_dedupe_key")
                    .table(Notifications::Table)
                    .col(Notifications::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_notifications_dedupe_key")
                    .table(Notifications::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .drop_column(Notifications::DedupeKey)
                    .to_owned(),
            )
            .await
    }
}
