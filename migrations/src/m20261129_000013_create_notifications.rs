//! Telling people what happened on their case: an inbox row per person and event
//! (`notifications`), and one outbox row per SMS or e-mail to send (`outbox`), both written in
//! the transaction of the change that causes them. Each instance's dispatcher claims due
//! deliveries (`claimed_until` is its lease), sends, and records the result; `idempotency_key`
//! goes to the provider so a retried send is not delivered twice.
//!
//! Accounts gain how they are reached: a mobile number and an e-mail address (both optional),
//! which channels the person chose, and the count of unread notifications (kept with the inbox in
//! one transaction, so the header's badge costs no statement).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Mobile,
    Email,
    NotifySms,
    NotifyEmail,
    UnreadNotifications,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    AccountId,
    CaseId,
    Event,
    Params,
    CreatedAt,
    ReadAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    NotificationId,
    Channel,
    Address,
    IdempotencyKey,
    State,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    LastError,
    SentAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [
            string_len_null(Accounts::Mobile, 32),
            string_len_null(Accounts::Email, 254),
            boolean(Accounts::NotifySms).default(false).to_owned(),
            boolean(Accounts::NotifyEmail).default(false).to_owned(),
            integer(Accounts::UnreadNotifications).default(0).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Accounts::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(pk_uuid(Notifications::Id))
                    .col(uuid(Notifications::AccountId))
                    .col(uuid_null(Notifications::CaseId))
                    .col(string_len(Notifications::Event, 40))
                    .col(text(Notifications::Params))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Notifications::Table, Notifications::AccountId)
                            .to(Accounts::Table, Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_account")
                    .table(Notifications::Table)
                    .col(Notifications::AccountId)
                    .col(Notifications::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(pk_uuid(Outbox::Id))
                    .col(uuid(Outbox::NotificationId))
                    .col(string_len(Outbox::Channel, 8))
                    .col(string_len(Outbox::Address, 254))
                    .col(string_len_uniq(Outbox::IdempotencyKey, 80))
                    .col(string_len(Outbox::State, 12))
                    .col(integer(Outbox::Attempts).default(0).to_owned())
                    .col(timestamp_with_time_zone(Outbox::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Outbox::ClaimedUntil))
                    .col(string_len_null(Outbox::LastError, 300))
                    .col(timestamp_with_time_zone_null(Outbox::SentAt))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Outbox::Table, Outbox::NotificationId)
                            .to(Notifications::Table, Notifications::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The dispatcher's claim reads pending rows in due order.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_due")
                    .table(Outbox::Table)
                    .col(Outbox::State)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Notifications::Table).to_owned())
            .await?;
        for column in [
            Accounts::Mobile,
            Accounts::Email,
            Accounts::NotifySms,
            Accounts::NotifyEmail,
            Accounts::UnreadNotifications,
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
        Ok(())
    }
}
