//! sea-orm entities, one file per table. Non-obvious columns are documented on the migration that
//! created them and again here.

pub mod access_application;
pub mod account;
pub mod account_reset;
pub mod activation;
pub mod api_token;
pub mod application_lookup;
pub mod audit_event;
pub mod bundle;
pub mod case;
pub mod case_milestone;
pub mod case_party;
pub mod case_vehicle;
pub mod delegation;
pub mod delivered_copy;
pub mod department;
pub mod instance;
pub mod login_throttle;
pub mod material;
pub mod notification;
pub mod outbox;
pub mod rate_limit;
pub mod recovery_code;
pub mod redaction;
pub mod review_application;
pub mod second_factor;
pub mod session;
pub mod webauthn_challenge;
