//! Evidence materials (never deleted: corrections supersede) and agents' delegations.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_create_departments_and_accounts::Accounts;
use crate::m20261124_000002_create_cases_and_parties::{CaseParties, Cases};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Materials {
    Table,
    Id,
    CaseId,
    /// scene_diagram, scene_photo, survey_record, inspection_report, expert_opinion,
    /// simulation_record, video, document_copy, other, authorisation (internal).
    Kind,
    Title,
    /// Display text only; never part of a path or object key.
    OriginalName,
    /// Sniffed from the bytes at upload, checked against the name.
    ContentType,
    Size,
    /// Lower-case hex SHA-256 of the content: the strong ETag.
    Sha256,
    /// CRC-32 of the content, computed at upload, so bundles know it before streaming.
    Crc32,
    /// Made by the server: `cases/{case_id}/{material_id}`.
    ObjectKey,
    /// `draft` | `released` | `withheld`.
    State,
    /// witness_confidentiality | state_secret | commercial_secret | personal_privacy.
    WithholdGround,
    WithholdNote,
    UploadedBy,
    UploadedAt,
    /// Who released or withheld it, and when.
    DecidedBy,
    DecidedAt,
    SupersededBy,
}

#[derive(DeriveIden)]
enum Delegations {
    Table,
    Id,
    CaseId,
    /// The `case_parties` row of the party the agent acts for.
    PrincipalPartyId,
    AgentAccountId,
    ValidFrom,
    ValidUntil,
    RevokedAt,
    RevokedBy,
    /// The signed 授权委托书, a material of kind `authorisation`.
    AuthorisationMaterialId,
    CreatedBy,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Materials::Table)
                    .col(pk_uuid(Materials::Id))
                    .col(uuid(Materials::CaseId))
                    .col(string_len(Materials::Kind, 32))
                    .col(string_len(Materials::Title, 300))
                    .col(string_len(Materials::OriginalName, 300))
                    .col(string_len(Materials::ContentType, 128))
                    .col(big_integer(Materials::Size))
                    .col(string_len(Materials::Sha256, 64))
                    .col(big_integer(Materials::Crc32))
                    .col(string_len_uniq(Materials::ObjectKey, 200))
                    .col(string_len(Materials::State, 16))
                    .col(string_len_null(Materials::WithholdGround, 32))
                    .col(text_null(Materials::WithholdNote))
                    .col(uuid(Materials::UploadedBy))
                    .col(timestamp_with_time_zone(Materials::UploadedAt))
                    .col(uuid_null(Materials::DecidedBy))
                    .col(timestamp_with_time_zone_null(Materials::DecidedAt))
                    .col(uuid_null(Materials::SupersededBy))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Materials::Table, Materials::CaseId)
                            .to(Cases::Table, Cases::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Materials::Table, Materials::UploadedBy)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_materials_case")
                    .table(Materials::Table)
                    .col(Materials::CaseId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_materials_case_sha256")
                    .table(Materials::Table)
                    .col(Materials::CaseId)
                    .col(Materials::Sha256)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Delegations::Table)
                    .col(pk_uuid(Delegations::Id))
                    .col(uuid(Delegations::CaseId))
                    .col(uuid(Delegations::PrincipalPartyId))
                    .col(uuid(Delegations::AgentAccountId))
                    .col(timestamp_with_time_zone(Delegations::ValidFrom))
                    .col(timestamp_with_time_zone(Delegations::ValidUntil))
                    .col(timestamp_with_time_zone_null(Delegations::RevokedAt))
                    .col(uuid_null(Delegations::RevokedBy))
                    .col(uuid_null(Delegations::AuthorisationMaterialId))
                    .col(uuid(Delegations::CreatedBy))
                    .col(timestamp_with_time_zone(Delegations::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Delegations::Table, Delegations::CaseId)
                            .to(Cases::Table, Cases::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Delegations::Table, Delegations::PrincipalPartyId)
                            .to(CaseParties::Table, CaseParties::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Delegations::Table, Delegations::AgentAccountId)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Delegations::Table, Delegations::AuthorisationMaterialId)
                            .to(Materials::Table, Materials::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_delegations_agent")
                    .table(Delegations::Table)
                    .col(Delegations::AgentAccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Delegations::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Materials::Table).to_owned())
            .await
    }
}
