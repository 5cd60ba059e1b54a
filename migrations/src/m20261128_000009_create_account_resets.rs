//! Account resets: who reset a person's account, when, from which brigade and why — so that the
//! person is told at their next sign-in (authority over accounts follows case scope, DESIGN §4).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_create_departments_and_accounts::Accounts;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AccountResets {
    Table,
    Id,
    AccountId,
    At,
    /// The account that reset it (`NULL`: the command line).
    ByAccountId,
    /// "The brigade or administrator that reset it", as shown to the person.
    ByLabel,
    Reason,
    /// When the person was shown the notice (`NULL`: not yet).
    SeenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountResets::Table)
                    .col(pk_uuid(AccountResets::Id))
                    .col(uuid(AccountResets::AccountId))
                    .col(timestamp_with_time_zone(AccountResets::At))
                    .col(uuid_null(AccountResets::ByAccountId))
                    .col(string_len(AccountResets::ByLabel, 200))
                    .col(string_len(AccountResets::Reason, 500))
                    .col(timestamp_with_time_zone_null(AccountResets::SeenAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccountResets::Table, AccountResets::AccountId)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_account_resets_account")
                    .table(AccountResets::Table)
                    .col(AccountResets::AccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccountResets::Table).to_owned())
            .await
    }
}
