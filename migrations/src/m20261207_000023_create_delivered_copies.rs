//! Copies that say who received them (issue 32, `PORTAL_WATERMARK_COPIES`): where an
//! installation hands out burned-in copies instead of originals, one row per copy made for one
//! person of one material — where its bytes are in the store, their SHA-256, CRC-32 and size
//! (a bundle lays them out like any stored object), the code burned into it and the access event
//! it came from, and until when it is kept (then `gc` removes object and row; the next download
//! makes a new one).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeliveredCopies {
    Table,
    Id,
    AccountId,
    MaterialId,
    ObjectKey,
    ContentType,
    Sha256,
    Crc32,
    Size,
    Code,
    EventSeq,
    MadeAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeliveredCopies::Table)
                    .col(pk_uuid(DeliveredCopies::Id))
                    .col(uuid(DeliveredCopies::AccountId))
                    .col(uuid(DeliveredCopies::MaterialId))
                    .col(string_len(DeliveredCopies::ObjectKey, 200))
                    .col(string_len(DeliveredCopies::ContentType, 100))
                    .col(string_len(DeliveredCopies::Sha256, 64))
                    .col(big_integer(DeliveredCopies::Crc32))
                    .col(big_integer(DeliveredCopies::Size))
                    .col(string_len(DeliveredCopies::Code, 16))
                    .col(big_integer(DeliveredCopies::EventSeq))
                    .col(timestamp_with_time_zone(DeliveredCopies::MadeAt))
                    .col(timestamp_with_time_zone(DeliveredCopies::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(DeliveredCopies::Table, DeliveredCopies::AccountId)
                            .to(Alias::new("accounts"), Alias::new("id")),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(DeliveredCopies::Table, DeliveredCopies::MaterialId)
                            .to(Alias::new("materials"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        // A download looks up the person's copy of the material.
        manager
            .create_index(
                Index::create()
                    .name("idx_delivered_copies_account_material")
                    .table(DeliveredCopies::Table)
                    .col(DeliveredCopies::AccountId)
                    .col(DeliveredCopies::MaterialId)
                    .col(DeliveredCopies::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeliveredCopies::Table).to_owned())
            .await
    }
}
