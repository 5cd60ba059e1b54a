//! Redacted copies (issue 34): staff black out a bystander's face, another car's plate or a
//! third party's details in a material; the original is never changed. Each redaction is a new
//! stored object linked to its original, with its own SHA-256, the boxes and reasons as data, who
//! made it and when. A newer redaction of the same material replaces the older one (which stays,
//! for the history). A video's is made in the background and waits for an officer's review.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Redactions {
    Table,
    Id,
    CaseId,
    MaterialId,
    SourceSha256,
    ObjectKey,
    ContentType,
    Sha256,
    Crc32,
    Size,
    Areas,
    Reasons,
    State,
    Failure,
    MadeBy,
    MadeAt,
    ReviewedBy,
    ReviewedAt,
    ReplacedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Redactions::Table)
                    .col(pk_uuid(Redactions::Id))
                    .col(uuid(Redactions::CaseId))
                    .col(uuid(Redactions::MaterialId))
                    .col(string_len(Redactions::SourceSha256, 64))
                    .col(string_len(Redactions::ObjectKey, 200))
                    .col(string_len(Redactions::ContentType, 100))
                    .col(string_len_null(Redactions::Sha256, 64))
                    .col(big_integer_null(Redactions::Crc32))
                    .col(big_integer_null(Redactions::Size))
                    .col(text(Redactions::Areas))
                    .col(string_len(Redactions::Reasons, 300))
                    .col(string_len(Redactions::State, 16))
                    .col(text_null(Redactions::Failure))
                    .col(uuid(Redactions::MadeBy))
                    .col(timestamp_with_time_zone(Redactions::MadeAt))
                    .col(uuid_null(Redactions::ReviewedBy))
                    .col(timestamp_with_time_zone_null(Redactions::ReviewedAt))
                    .col(uuid_null(Redactions::ReplacedBy))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Redactions::Table, Redactions::MaterialId)
                            .to(Alias::new("materials"), Alias::new("id")),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Redactions::Table, Redactions::CaseId)
                            .to(Alias::new("cases"), Alias::new("id")),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Redactions::Table, Redactions::MadeBy)
                            .to(Alias::new("accounts"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        // A case's pages look up the current redaction of each of its materials.
        manager
            .create_index(
                Index::create()
                    .name("idx_redactions_case_current")
                    .table(Redactions::Table)
                    .col(Redactions::CaseId)
                    .col(Redactions::ReplacedBy)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_redactions_material")
                    .table(Redactions::Table)
                    .col(Redactions::MaterialId)
                    .col(Redactions::MadeAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Redactions::Table).to_owned())
            .await
    }
}
