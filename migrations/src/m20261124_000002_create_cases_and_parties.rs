//! Accident cases of a brigade and the parties registered on them.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_create_departments_and_accounts::{Accounts, Departments};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Cases {
    Table,
    Id,
    DepartmentId,
    /// 事故编号, unique within the brigade.
    CaseNumber,
    OccurredAt,
    Place,
    Summary,
    /// Fatal and complex cases allow the Art. 63 disclosure stage.
    Fatal,
    Complex,
    /// `investigating` | `disclosing` | `served` | `closed`.
    Status,
    /// `determination` (认定书) | `certificate` (证明), once served.
    ServiceKind,
    ServedOn,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum CaseParties {
    Table,
    Id,
    CaseId,
    AccountId,
    /// 甲 / 乙 / 丙 …
    Label,
    /// driver, passenger, pedestrian, vehicle_owner, close_relative, …
    Role,
    Name,
    CreatedBy,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Cases::Table)
                    .col(pk_uuid(Cases::Id))
                    .col(uuid(Cases::DepartmentId))
                    .col(string_len(Cases::CaseNumber, 64))
                    .col(timestamp_with_time_zone(Cases::OccurredAt))
                    .col(string_len(Cases::Place, 300))
                    .col(text(Cases::Summary))
                    .col(boolean(Cases::Fatal).default(false))
                    .col(boolean(Cases::Complex).default(false))
                    .col(string_len(Cases::Status, 16))
                    .col(string_len_null(Cases::ServiceKind, 16))
                    .col(date_null(Cases::ServedOn))
                    .col(uuid(Cases::CreatedBy))
                    .col(timestamp_with_time_zone(Cases::CreatedAt))
                    .col(timestamp_with_time_zone(Cases::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Cases::Table, Cases::DepartmentId)
                            .to(Departments::Table, Departments::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_cases_department_number")
                    .table(Cases::Table)
                    .col(Cases::DepartmentId)
                    .col(Cases::CaseNumber)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CaseParties::Table)
                    .col(pk_uuid(CaseParties::Id))
                    .col(uuid(CaseParties::CaseId))
                    .col(uuid(CaseParties::AccountId))
                    .col(string_len(CaseParties::Label, 16))
                    .col(string_len(CaseParties::Role, 32))
                    .col(string_len(CaseParties::Name, 200))
                    .col(uuid(CaseParties::CreatedBy))
                    .col(timestamp_with_time_zone(CaseParties::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CaseParties::Table, CaseParties::CaseId)
                            .to(Cases::Table, Cases::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(CaseParties::Table, CaseParties::AccountId)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_case_parties_case_account")
                    .table(CaseParties::Table)
                    .col(CaseParties::CaseId)
                    .col(CaseParties::AccountId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_case_parties_case_label")
                    .table(CaseParties::Table)
                    .col(CaseParties::CaseId)
                    .col(CaseParties::Label)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_case_parties_account")
                    .table(CaseParties::Table)
                    .col(CaseParties::AccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CaseParties::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Cases::Table).to_owned())
            .await
    }
}
