//! The one integration-test binary (one link, not one per file). Every test starts the real
//! portal on 127.0.0.1, port 0, with its own data directory, and talks HTTP to it.
//!
//! Backends: SQLite + a local directory by default; `PORTAL_TEST_DATABASE_URL` (a PostgreSQL
//! server: each test gets its own database) and `PORTAL_TEST_STORE_URL` (e.g. `s3://bucket`:
//! each test gets its own key prefix) switch the same suite to the production shape.

// Test helpers panic on failure by design: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod applications;
mod apply_form;
mod at_rest;
mod audit;
mod audit_pages;
mod auth;
mod backup;
mod big;
mod bundles;
mod care;
mod cases;
mod cli;
mod copies;
mod corpus;
mod court;
mod decisions;
mod faults;
mod flows;
mod forms;
mod health;
mod helpers;
mod hostile;
mod i18n;
mod layers;
mod lookup;
mod materials;
mod matrix;
mod new_surfaces;
mod notifications;
mod operations;
mod pages;
mod proxy;
mod readme;
mod redaction;
mod rendering;
mod second_factor;
mod security;
mod sm2;
mod store;
mod timeline;
mod upgrade;
mod video;
mod view_only_matrix;
