//! The vehicles of a case (车辆), recorded by staff: each plate (normalised as applications
//! give it) and, where known, its insurer and a few words of description. An owner's or
//! insurer's application to query the case is checked against them. One row per plate and case.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CaseVehicles {
    Table,
    Id,
    CaseId,
    Plate,
    Insurer,
    Description,
    CreatedBy,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CaseVehicles::Table)
                    .col(pk_uuid(CaseVehicles::Id))
                    .col(uuid(CaseVehicles::CaseId))
                    .col(string_len(CaseVehicles::Plate, 16))
                    .col(text_null(CaseVehicles::Insurer))
                    .col(text_null(CaseVehicles::Description))
                    .col(uuid(CaseVehicles::CreatedBy))
                    .col(timestamp_with_time_zone(CaseVehicles::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CaseVehicles::Table, CaseVehicles::CaseId)
                            .to(Alias::new("cases"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_case_vehicles_case_plate")
                    .table(CaseVehicles::Table)
                    .col(CaseVehicles::CaseId)
                    .col(CaseVehicles::Plate)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CaseVehicles::Table).to_owned())
            .await
    }
}
