//! Passkey ceremonies in progress (issue 22): the relying party's state between the challenge
//! sent to the browser and the answer, per session and purpose (`register` | `authenticate`),
//! kept in the database so any instance can finish what another began; deleted when used,
//! useless after five minutes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebauthnChallenges {
    Table,
    Id,
    SessionId,
    Purpose,
    State,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebauthnChallenges::Table)
                    .col(pk_uuid(WebauthnChallenges::Id))
                    .col(uuid(WebauthnChallenges::SessionId))
                    .col(string_len(WebauthnChallenges::Purpose, 16))
                    .col(text(WebauthnChallenges::State))
                    .col(timestamp_with_time_zone(WebauthnChallenges::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webauthn_challenges_session")
                    .table(WebauthnChallenges::Table)
                    .col(WebauthnChallenges::SessionId)
                    .col(WebauthnChallenges::Purpose)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebauthnChallenges::Table).to_owned())
            .await
    }
}
