//! Applications made online (issue 21): a party's review application (复核, Order 146 Art. 71)
//! and a vehicle owner's or an insurer's application to query a case, which staff approve with
//! a scope (kinds of material, view or download, until a date) or refuse with a reason.
//!
//! - `review_applications`: one per party of a case (unique `case_id, party_id`), so two
//!   submissions at once cannot both land. `contested` and `attachments` are JSON arrays of
//!   material ids (attachments are materials of the internal kind `review_attachment`). The
//!   steps after filing are dated columns: forwarded to the reviewing authority, accepted or
//!   refused by it, concluded (the conclusion uploaded as a material).
//! - `access_applications`: the applicant's particulars as given; `proof_*` the uploaded
//!   authorisation or proof, streamed into the store with the checks of staff uploads
//!   `status_key_hash` the keyed hash of the private link the applicant follows it by;
//!   (the proof is no material of the case: its object in the store is named by `proof_key`,
//!   which `gc` counts as referenced, and staff open it on the application's page);
//!   `granted_*` the scope once approved; `account_id` the applicant's owner or insurer account
//!   (found or made when filing, never activated before approval: what they are told through,
//!   and what holds the grant once approved).
//! - `rate_limits`: counters per key and window (addresses, case numbers), counted atomically
//!   with one upsert so parallel submissions each see their own count.
//! - `accounts.organisation`: the insurer (or firm) an owner or insurer account acts for,
//!   shown masked in the parties' access history.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReviewApplications {
    Table,
    Id,
    CaseId,
    PartyId,
    FiledBy,
    ReceiptNo,
    Grounds,
    Contested,
    Attachments,
    State,
    FiledAt,
    ForwardedOn,
    Authority,
    DecidedOn,
    RefusalReason,
    ConcludedOn,
    ConclusionMaterialId,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AccessApplications {
    Table,
    Id,
    ReceiptNo,
    Kind,
    CaseId,
    DepartmentId,
    ApplicantName,
    Organisation,
    CreditCode,
    Plate,
    PolicyNo,
    Mobile,
    Email,
    ProofKey,
    ProofName,
    ProofType,
    ProofSize,
    ProofSha256,
    State,
    StatusKeyHash,
    FiledAt,
    DecidedBy,
    DecidedAt,
    RefusalReason,
    GrantedKinds,
    GrantedMode,
    GrantedUntil,
    AccountId,
}

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    Key,
    WindowStart,
    Count,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Organisation,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ReviewApplications::Table)
                    .col(pk_uuid(ReviewApplications::Id))
                    .col(uuid(ReviewApplications::CaseId))
                    .col(uuid(ReviewApplications::PartyId))
                    .col(uuid(ReviewApplications::FiledBy))
                    .col(string_len_uniq(ReviewApplications::ReceiptNo, 32))
                    .col(text(ReviewApplications::Grounds))
                    .col(text(ReviewApplications::Contested))
                    .col(text(ReviewApplications::Attachments))
                    .col(string_len(ReviewApplications::State, 16))
                    .col(timestamp_with_time_zone(ReviewApplications::FiledAt))
                    .col(date_null(ReviewApplications::ForwardedOn))
                    .col(text_null(ReviewApplications::Authority))
                    .col(date_null(ReviewApplications::DecidedOn))
                    .col(text_null(ReviewApplications::RefusalReason))
                    .col(date_null(ReviewApplications::ConcludedOn))
                    .col(uuid_null(ReviewApplications::ConclusionMaterialId))
                    .col(timestamp_with_time_zone(ReviewApplications::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReviewApplications::Table, ReviewApplications::CaseId)
                            .to(Alias::new("cases"), Alias::new("id")),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ReviewApplications::Table, ReviewApplications::PartyId)
                            .to(Alias::new("case_parties"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_review_applications_once_per_party")
                    .table(ReviewApplications::Table)
                    .col(ReviewApplications::CaseId)
                    .col(ReviewApplications::PartyId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccessApplications::Table)
                    .col(pk_uuid(AccessApplications::Id))
                    .col(string_len_uniq(AccessApplications::ReceiptNo, 32))
                    .col(string_len(AccessApplications::Kind, 16))
                    .col(uuid(AccessApplications::CaseId))
                    .col(uuid(AccessApplications::DepartmentId))
                    .col(text(AccessApplications::ApplicantName))
                    .col(text_null(AccessApplications::Organisation))
                    .col(text_null(AccessApplications::CreditCode))
                    .col(text(AccessApplications::Plate))
                    .col(text_null(AccessApplications::PolicyNo))
                    .col(string_len(AccessApplications::Mobile, 16))
                    .col(text_null(AccessApplications::Email))
                    .col(string_len(AccessApplications::ProofKey, 200))
                    .col(text(AccessApplications::ProofName))
                    .col(string_len(AccessApplications::ProofType, 100))
                    .col(big_integer(AccessApplications::ProofSize))
                    .col(string_len(AccessApplications::ProofSha256, 64))
                    .col(string_len(AccessApplications::State, 16))
                    .col(string_len(AccessApplications::StatusKeyHash, 64))
                    .col(timestamp_with_time_zone(AccessApplications::FiledAt))
                    .col(uuid_null(AccessApplications::DecidedBy))
                    .col(timestamp_with_time_zone_null(AccessApplications::DecidedAt))
                    .col(text_null(AccessApplications::RefusalReason))
                    .col(text_null(AccessApplications::GrantedKinds))
                    .col(string_len_null(AccessApplications::GrantedMode, 16))
                    .col(date_null(AccessApplications::GrantedUntil))
                    .col(uuid_null(AccessApplications::AccountId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccessApplications::Table, AccessApplications::CaseId)
                            .to(Alias::new("cases"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_access_applications_grantee")
                    .table(AccessApplications::Table)
                    .col(AccessApplications::AccountId)
                    .col(AccessApplications::CaseId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_access_applications_brigade")
                    .table(AccessApplications::Table)
                    .col(AccessApplications::DepartmentId)
                    .col(AccessApplications::FiledAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RateLimits::Table)
                    .col(string_len(RateLimits::Key, 200).primary_key())
                    .col(timestamp_with_time_zone(RateLimits::WindowStart))
                    .col(integer(RateLimits::Count))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(text_null(Accounts::Organisation))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(Accounts::Organisation)
                    .to_owned(),
            )
            .await?;
        for table in [
            RateLimits::Table.into_iden(),
            AccessApplications::Table.into_iden(),
            ReviewApplications::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
