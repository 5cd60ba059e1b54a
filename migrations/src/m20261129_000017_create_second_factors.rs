//! A second factor for staff and administrators (issue 22).
//!
//! - `second_factors`: an authenticator app (`totp`: its secret sealed under a key derived from
//!   the server key, never stored in the clear; `last_step` the latest time step accepted, so a
//!   code is never accepted twice) or a passkey (`passkey`: the credential as JSON). `confirmed`
//!   once the person has proved it works (a TOTP code at enrolment).
//! - `recovery_codes`: ten one-time codes per enrolment, stored as keyed hashes.
//! - `sessions.second_factor_at`: when this session last passed a second factor (none: it may do
//!   nothing but pass or enrol one; older than five minutes: the most sensitive acts ask again).
//! - `accounts.second_factor_grace_until`: until when an account may act without one (the first
//!   administrator, as `create-admin --second-factor-grace-hours` sets).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SecondFactors {
    Table,
    Id,
    AccountId,
    Kind,
    Name,
    Secret,
    Passkey,
    Confirmed,
    LastStep,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Id,
    AccountId,
    CodeHash,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    SecondFactorAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    SecondFactorGraceUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SecondFactors::Table)
                    .col(pk_uuid(SecondFactors::Id))
                    .col(uuid(SecondFactors::AccountId))
                    .col(string_len(SecondFactors::Kind, 16))
                    .col(text(SecondFactors::Name))
                    .col(text_null(SecondFactors::Secret))
                    .col(text_null(SecondFactors::Passkey))
                    .col(boolean(SecondFactors::Confirmed))
                    .col(big_integer_null(SecondFactors::LastStep))
                    .col(timestamp_with_time_zone(SecondFactors::CreatedAt))
                    .col(timestamp_with_time_zone_null(SecondFactors::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SecondFactors::Table, SecondFactors::AccountId)
                            .to(Alias::new("accounts"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_second_factors_account")
                    .table(SecondFactors::Table)
                    .col(SecondFactors::AccountId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(pk_uuid(RecoveryCodes::Id))
                    .col(uuid(RecoveryCodes::AccountId))
                    .col(string_len(RecoveryCodes::CodeHash, 64))
                    .col(timestamp_with_time_zone(RecoveryCodes::CreatedAt))
                    .col(timestamp_with_time_zone_null(RecoveryCodes::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RecoveryCodes::Table, RecoveryCodes::AccountId)
                            .to(Alias::new("accounts"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recovery_codes_account")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::AccountId)
                    .col(RecoveryCodes::CodeHash)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(timestamp_with_time_zone_null(Sessions::SecondFactorAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(timestamp_with_time_zone_null(
                        Accounts::SecondFactorGraceUntil,
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(Accounts::SecondFactorGraceUntil)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::SecondFactorAt)
                    .to_owned(),
            )
            .await?;
        for table in [
            RecoveryCodes::Table.into_iden(),
            SecondFactors::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
