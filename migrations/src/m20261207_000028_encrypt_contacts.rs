//! Telephone numbers and e-mail addresses encrypted at rest (issue 36): they are kept sealed in
//! the columns that held them (`sm4gcm:v1:…` or `aes256gcm:v1:…`, see `keys::ServerKey::
//! seal_contact`), and an access application's mobile number also as a keyed hash, the only
//! thing it is looked up by.
//!
//! This migration only makes room: the key is not the migrations' to hold, so the portal seals
//! the rows still in clear at start-up, right after migrating (`db::contacts::seal_clear`). On
//! PostgreSQL the columns become `text` (a sealed number is longer than the 16 or 32 characters
//! they had); SQLite does not enforce lengths.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AccessApplications {
    Table,
    MobileHash,
}

/// The columns that hold a mobile number or an e-mail address.
const CONTACT_COLUMNS: [(&str, &str); 5] = [
    ("accounts", "mobile"),
    ("accounts", "email"),
    ("case_parties", "mobile"),
    ("access_applications", "mobile"),
    ("outbox", "address"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AccessApplications::Table)
                    .add_column(string_len_null(AccessApplications::MobileHash, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_access_applications_mobile_hash")
                    .table(AccessApplications::Table)
                    .col(AccessApplications::MobileHash)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres {
            let db = manager.get_connection();
            for (table, column) in CONTACT_COLUMNS {
                db.execute_unprepared(&format!(
                    "ALTER TABLE \"{table}\" ALTER COLUMN \"{column}\" TYPE text"
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The columns stay `text`: sealed values would not fit the old lengths.
        manager
            .drop_index(
                Index::drop()
                    .name("idx_access_applications_mobile_hash")
                    .table(AccessApplications::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AccessApplications::Table)
                    .drop_column(AccessApplications::MobileHash)
                    .to_owned(),
            )
            .await
    }
}
