//! Security of the applications and the second factor (issue 30).
//!
//! - `access_applications.account_verified`: the applicant who filed this application proved
//!   control of its account — by activating the account with the code its own voucher issued
//!   (the application that made the account), or by signing in to it and claiming the
//!   application from its private status link. Only a verified application's grant opens a case:
//!   an application giving a number that already has an account no longer hands that account
//!   its grant, nor its code. Existing rows: the first application of each account (the one
//!   that made it) is verified.
//! - `access_applications.voucher_code`, `voucher_code_expires_at`: the one-time code the
//!   voucher last issued, sealed under a key derived from the server key (never in clear), so
//!   that the voucher is a page the applicant can reload and see the same code on, instead of
//!   a form whose every post issued a new one.
//! - `accounts.second_factor_failures`, `accounts.second_factor_locked_until`: wrong second-factor
//!   codes counted apart from wrong passwords, so that a right password no longer wipes them;
//!   cleared only by a passed second factor (or an administrator's reset of the factors).
//! - `second_factors.session_id`: the session that began an enrolment still waiting for its
//!   first code; no other session can see its key or confirm it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AccessApplications {
    Table,
    AccountVerified,
    VoucherCode,
    VoucherCodeExpiresAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    SecondFactorFailures,
    SecondFactorLockedUntil,
}

#[derive(DeriveIden)]
enum SecondFactors {
    Table,
    SessionId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AccessApplications::Table)
                    .add_column(boolean(AccessApplications::AccountVerified).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE access_applications SET account_verified = TRUE \
                 WHERE account_id IS NOT NULL AND filed_at = (SELECT MIN(a2.filed_at) \
                 FROM access_applications a2 WHERE a2.account_id = access_applications.account_id)",
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AccessApplications::Table)
                    .add_column(text_null(AccessApplications::VoucherCode))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AccessApplications::Table)
                    .add_column(timestamp_with_time_zone_null(
                        AccessApplications::VoucherCodeExpiresAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(integer(Accounts::SecondFactorFailures).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(timestamp_with_time_zone_null(
                        Accounts::SecondFactorLockedUntil,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SecondFactors::Table)
                    .add_column(uuid_null(SecondFactors::SessionId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SecondFactors::Table)
                    .drop_column(SecondFactors::SessionId)
                    .to_owned(),
            )
            .await?;
        for column in [
            Accounts::SecondFactorLockedUntil,
            Accounts::SecondFactorFailures,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Accounts::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            AccessApplications::VoucherCodeExpiresAt,
            AccessApplications::VoucherCode,
            AccessApplications::AccountVerified,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AccessApplications::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
