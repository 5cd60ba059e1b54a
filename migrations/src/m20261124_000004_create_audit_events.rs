//! The access-audit log: an append-only, hash-chained list of events, and its chain head.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    /// Gapless, from 1, assigned by the writer under the chain-head lock.
    Seq,
    /// UTC, truncated to microseconds (what every database keeps), part of the hash.
    OccurredAt,
    ActorId,
    /// admin | staff | party | agent | anonymous | system.
    ActorRole,
    /// Stable dotted name, e.g. `material.download`.
    Action,
    CaseId,
    MaterialId,
    ClientIp,
    UserAgent,
    /// allowed | denied | failed.
    Outcome,
    /// JSON text exactly as hashed (text, not jsonb: jsonb would re-encode it).
    Details,
    /// Hex SHA-256 of the previous event (64 zeros for the first).
    PrevHash,
    /// Hex SHA-256 of prev_hash ‖ canonical encoding (see src/audit/chain.rs).
    Hash,
}

#[derive(DeriveIden)]
enum AuditChainHead {
    Table,
    /// Always 1: one row, locked by each appending transaction.
    Id,
    /// The last appended event (0 before the first).
    Seq,
    Hash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(big_integer(AuditEvents::Seq).primary_key())
                    .col(timestamp_with_time_zone(AuditEvents::OccurredAt))
                    .col(uuid_null(AuditEvents::ActorId))
                    .col(string_len(AuditEvents::ActorRole, 16))
                    .col(string_len(AuditEvents::Action, 64))
                    .col(uuid_null(AuditEvents::CaseId))
                    .col(uuid_null(AuditEvents::MaterialId))
                    .col(string_len_null(AuditEvents::ClientIp, 64))
                    .col(string_len_null(AuditEvents::UserAgent, 512))
                    .col(string_len(AuditEvents::Outcome, 16))
                    .col(text(AuditEvents::Details))
                    .col(string_len(AuditEvents::PrevHash, 64))
                    .col(string_len(AuditEvents::Hash, 64))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_audit_events_case",
                vec![AuditEvents::CaseId, AuditEvents::Seq],
            ),
            (
                "idx_audit_events_actor",
                vec![AuditEvents::ActorId, AuditEvents::Seq],
            ),
            ("idx_audit_events_occurred", vec![AuditEvents::OccurredAt]),
        ] {
            let mut index = Index::create();
            index.name(name).table(AuditEvents::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuditChainHead::Table)
                    .col(integer(AuditChainHead::Id).primary_key())
                    .col(big_integer(AuditChainHead::Seq))
                    .col(string_len(AuditChainHead::Hash, 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditChainHead::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}
