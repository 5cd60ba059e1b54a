//! The accident evidence portal (交通事故证据材料网上查阅): parties to a road-traffic accident and
//! their agents view and download the released evidence of their case; staff manage it.
//!
//! `main.rs` is a thin CLI; everything else lives here so integration tests run the real app.

// The message catalog (src/locales), compiled in; Chinese when a text is missing.
rust_i18n::i18n!("src/locales", fallback = "zh-CN");

pub mod accounts;
pub mod applications;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bundle;
pub mod cases;
pub mod cli;
pub mod clock;
pub mod config;
pub mod copies;
pub mod db;
pub mod delivery;
pub mod demo;
pub mod error;
pub mod i18n;
pub mod keys;
pub mod limits;
pub mod materials;
pub mod metrics;
pub mod notifications;
pub mod policy;
pub mod redaction;
pub mod render;
pub mod retention;
pub mod routes;
pub mod signing;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod thumbnails;
pub mod vocab;
