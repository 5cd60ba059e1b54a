//! A case's timeline (办理进度): dated milestones from the national service's list of stages,
//! recorded by staff or added by the portal when the case moves (opened, served, closed). An
//! entry is never deleted: a correction is a new entry naming the one it `corrects`, and the
//! parties see only the latest version while staff see both.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CaseMilestones {
    Table,
    Id,
    CaseId,
    Stage,
    OccurredOn,
    Note,
    InternalNote,
    Automatic,
    Corrects,
    RecordedBy,
    RecordedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CaseMilestones::Table)
                    .col(pk_uuid(CaseMilestones::Id))
                    .col(uuid(CaseMilestones::CaseId))
                    .col(string_len(CaseMilestones::Stage, 32))
                    .col(date(CaseMilestones::OccurredOn))
                    .col(text_null(CaseMilestones::Note))
                    .col(text_null(CaseMilestones::InternalNote))
                    .col(boolean(CaseMilestones::Automatic))
                    .col(uuid_null(CaseMilestones::Corrects))
                    .col(uuid_null(CaseMilestones::RecordedBy))
                    .col(timestamp_with_time_zone(CaseMilestones::RecordedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CaseMilestones::Table, CaseMilestones::CaseId)
                            .to(Alias::new("cases"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_case_milestones_case")
                    .table(CaseMilestones::Table)
                    .col(CaseMilestones::CaseId)
                    .col(CaseMilestones::OccurredOn)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CaseMilestones::Table).to_owned())
            .await
    }
}
