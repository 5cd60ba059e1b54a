//! Schema migrations of the evidence portal, one file per migration, applied in order.
//!
//! A landed migration is never edited: a change to the schema is a new file. No seed data
//! lives here (the portal's `demo` command seeds).

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_departments_and_accounts;
mod m20261124_000002_create_cases_and_parties;
mod m20261124_000003_create_materials_and_delegations;
mod m20261124_000004_create_audit_events;
mod m20261124_000005_create_api_tokens_and_login_throttles;
mod m20261124_000006_add_case_status_and_party_contact;
mod m20261125_000007_create_bundles;
mod m20261128_000008_times_in_utc;
mod m20261128_000009_create_account_resets;
mod m20261128_000010_create_instances;
mod m20261129_000011_index_transfer_ends;
mod m20261129_000012_add_brigade_contact;
mod m20261129_000013_create_notifications;
mod m20261129_000014_create_case_milestones;
mod m20261129_000015_add_notification_dedupe_key;
mod m20261129_000016_create_applications;
mod m20261129_000017_create_second_factors;
mod m20261129_000018_create_webauthn_challenges;
mod m20261207_000019_bind_grants_and_second_factor_failures;
mod m20261207_000020_add_account_language;
mod m20261207_000021_create_case_vehicles;
mod m20261207_000022_create_application_lookups;
mod m20261207_000023_create_delivered_copies;
mod m20261207_000024_create_redactions;
mod m20261207_000025_add_account_care;
mod m20261207_000026_add_material_sm3;
mod m20261207_000027_add_bundle_timestamp;
mod m20261207_000028_encrypt_contacts;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_departments_and_accounts::Migration),
            Box::new(m20261124_000002_create_cases_and_parties::Migration),
            Box::new(m20261124_000003_create_materials_and_delegations::Migration),
            Box::new(m20261124_000004_create_audit_events::Migration),
            Box::new(m20261124_000005_create_api_tokens_and_login_throttles::Migration),
            Box::new(m20261124_000006_add_case_status_and_party_contact::Migration),
            Box::new(m20261125_000007_create_bundles::Migration),
            Box::new(m20261128_000008_times_in_utc::Migration),
            Box::new(m20261128_000009_create_account_resets::Migration),
            Box::new(m20261128_000010_create_instances::Migration),
            Box::new(m20261129_000011_index_transfer_ends::Migration),
            Box::new(m20261129_000012_add_brigade_contact::Migration),
            Box::new(m20261129_000013_create_notifications::Migration),
            Box::new(m20261129_000014_create_case_milestones::Migration),
            Box::new(m20261129_000015_add_notification_dedupe_key::Migration),
            Box::new(m20261129_000016_create_applications::Migration),
            Box::new(m20261129_000017_create_second_factors::Migration),
            Box::new(m20261129_000018_create_webauthn_challenges::Migration),
            Box::new(m20261207_000019_bind_grants_and_second_factor_failures::Migration),
            Box::new(m20261207_000020_add_account_language::Migration),
            Box::new(m20261207_000021_create_case_vehicles::Migration),
            Box::new(m20261207_000022_create_application_lookups::Migration),
            Box::new(m20261207_000023_create_delivered_copies::Migration),
            Box::new(m20261207_000024_create_redactions::Migration),
            Box::new(m20261207_000025_add_account_care::Migration),
            Box::new(m20261207_000026_add_material_sm3::Migration),
            Box::new(m20261207_000027_add_bundle_timestamp::Migration),
            Box::new(m20261207_000028_encrypt_contacts::Migration),
        ]
    }
}
pub use sea_orm_migration::MigrationStatus;
