//! A rolling upgrade, one expand step (issue 33 item 4): while an instance of this release
//! serves, the next release's first instance migrates the shared database with an additive step
//! — a new table, a nullable column on a table every request touches, an index, and its row in
//! `seaql_migrations` — and the running instance serves on, reading and writing the tables it
//! knows; a fresh start of this release on that database then refuses, naming both versions.
//! The next release is played by SQL, as its migration would run: the rule the README states is
//! what makes this work, and this test is what holds this release to it (its entities name
//! their columns; nothing reads `*`).

use std::process::Stdio;

use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use sha2::Digest;

use crate::helpers::{assert_status, spawn_app};
use crate::materials::released;

#[tokio::test]
async fn an_instance_serves_on_through_the_next_releases_expand_step() {
    let app = spawn_app().await;
    let before = b"%PDF-1.4\n% before the upgrade\n".to_vec();
    let (staff, party, case_id, id) = released(&app, "现场图.pdf", &before, true).await;

    // The next release's expand step, on the database this instance is serving from.
    let db = &app.state.db;
    for statement in [
        "CREATE TABLE case_notes_next (id VARCHAR(36) PRIMARY KEY, case_id VARCHAR(36) NOT NULL, note TEXT)",
        "ALTER TABLE cases ADD COLUMN archive_ref_next VARCHAR(64) NULL",
        "ALTER TABLE materials ADD COLUMN checked_by_next VARCHAR(36) NULL",
        "ALTER TABLE accounts ADD COLUMN locale_next VARCHAR(16) NOT NULL DEFAULT 'zh-CN'",
        "CREATE INDEX idx_materials_checked_by_next ON materials (checked_by_next)",
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_expand_for_the_next_release', 0)",
    ] {
        db.execute_unprepared(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    // The running instance reads and writes what it knows: pages, a new upload and its
    // release, downloads of old and new material, the audit chain.
    assert_status(
        &staff.get(&format!("/staff/cases/{case_id}")).await,
        StatusCode::OK,
    );
    let after = b"%PDF-1.4\n% after the expand step\n".to_vec();
    let new_id = crate::materials::uploaded(
        &staff,
        &case_id,
        "survey_record",
        "勘查笔录（补充）",
        "补充.pdf",
        &after,
    )
    .await;
    crate::materials::decide(&staff, &case_id, &new_id, "release", &[]).await;
    for (material, bytes) in [(&id, &before), (&new_id, &after)] {
        let res = party
            .get(&format!("/cases/{case_id}/materials/{material}/download"))
            .await;
        assert_status(&res, StatusCode::OK);
        assert_eq!(
            hex::encode(sha2::Sha256::digest(res.bytes().await.unwrap())),
            hex::encode(sha2::Sha256::digest(bytes))
        );
    }
    assert_status(
        &party.get(&format!("/cases/{case_id}")).await,
        StatusCode::OK,
    );
    let verified = std::process::Command::new(env!("CARGO_BIN_EXE_evidence-portal"))
        .args(["audit", "verify"])
        .envs(&app.env)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // This release, started afresh on the expanded database, refuses it (one line, exit 1):
    // upgrade every instance, never start an older one again.
    assert_eq!(
        verified.status.code(),
        Some(1),
        "{}",
        crate::cli::stderr(&verified)
    );
    assert!(
        crate::cli::stderr(&verified).contains(
            "m20991231_000001_expand_for_the_next_release (newer than this binary's latest"
        ),
        "{}",
        crate::cli::stderr(&verified)
    );
    // The running instance's own chain is whole.
    let broken = evidence_portal::audit::verify::verify(db).await;
    assert!(broken.is_ok(), "{broken:?}");
}
