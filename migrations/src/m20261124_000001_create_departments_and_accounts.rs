//! Brigades, accounts, one-time access codes and sign-in sessions.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Departments {
    Table,
    Id,
    Code,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum Accounts {
    Table,
    Id,
    Role,
    DisplayName,
    /// HMAC of the normalised login identifier: accounts are found by it, never by the clear text.
    LoginKey,
    /// The identifier as it may be shown (citizen ID numbers masked).
    LoginMasked,
    PasswordHash,
    DepartmentId,
    Disabled,
    FailedLogins,
    LockedUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Activations {
    Table,
    Id,
    AccountId,
    CodeHash,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    AccountId,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    RevokedAt,
    ClientIp,
    UserAgent,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Departments::Table)
                    .col(pk_uuid(Departments::Id))
                    .col(string_len_uniq(Departments::Code, 32))
                    .col(string_len(Departments::Name, 200))
                    .col(timestamp_with_time_zone(Departments::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(pk_uuid(Accounts::Id))
                    .col(string_len(Accounts::Role, 16))
                    .col(string_len(Accounts::DisplayName, 200))
                    .col(string_len_uniq(Accounts::LoginKey, 64))
                    .col(string_len(Accounts::LoginMasked, 64))
                    .col(string_len_null(Accounts::PasswordHash, 200))
                    .col(uuid_null(Accounts::DepartmentId))
                    .col(boolean(Accounts::Disabled).default(false))
                    .col(integer(Accounts::FailedLogins).default(0))
                    .col(timestamp_with_time_zone_null(Accounts::LockedUntil))
                    .col(timestamp_with_time_zone(Accounts::CreatedAt))
                    .col(timestamp_with_time_zone(Accounts::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Accounts::Table, Accounts::DepartmentId)
                            .to(Departments::Table, Departments::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Activations::Table)
                    .col(pk_uuid(Activations::Id))
                    .col(uuid(Activations::AccountId))
                    .col(string_len(Activations::CodeHash, 200))
                    .col(uuid_null(Activations::CreatedBy))
                    .col(timestamp_with_time_zone(Activations::CreatedAt))
                    .col(timestamp_with_time_zone(Activations::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Activations::UsedAt))
                    .col(timestamp_with_time_zone_null(Activations::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Activations::Table, Activations::AccountId)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_activations_account")
                    .table(Activations::Table)
                    .col(Activations::AccountId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(pk_uuid(Sessions::Id))
                    .col(uuid(Sessions::AccountId))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .col(timestamp_with_time_zone(Sessions::LastSeenAt))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                    .col(string_len_null(Sessions::ClientIp, 64))
                    .col(string_len_null(Sessions::UserAgent, 512))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::AccountId)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_account")
                    .table(Sessions::Table)
                    .col(Sessions::AccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Sessions::Table.into_iden(),
            Activations::Table.into_iden(),
            Accounts::Table.into_iden(),
            Departments::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
