//! Browser journeys: the portal as people use it, in headless Chromium driven through
//! chromedriver (WebDriver). Each journey starts the real portal like `tests/api` does (port 0,
//! its own data directory, and PostgreSQL / S3 when `PORTAL_TEST_DATABASE_URL` /
//! `PORTAL_TEST_STORE_URL` are set) and photographs every step at 360×740 and 1280×800 into
//! `<target>/browser-screenshots/<journey>/`.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian: `chromium chromium-driver`);
//! without them the journeys are skipped, except under CI (`CI` set), where they fail.

// Test helpers panic on failure by design: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod driver;
// The API suite's server spawner, shared so both suites start the portal the same way.
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod setup;

mod agent;
mod applications;
mod care;
mod english;
mod keyboard;
mod party;
mod redaction;
mod second_factor;
mod staff;
mod targets;
mod view_only;
