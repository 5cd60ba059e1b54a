//! Liveness and readiness probes for load balancers and orchestrators.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::state::AppState;

/// How long each dependency may take to answer a readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failing: Vec<&'static str>,
    /// Parts that do not stop the portal but are missing: `rendering` (no watermark font, so
    /// view-only material is not shown online).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    degraded: Vec<&'static str>,
}

/// `GET /healthz`: the process is alive and serving HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "alive",
        failing: Vec::new(),
        degraded: Vec::new(),
    })
}

/// `GET /readyz`: the database and the object store both answer; otherwise 503 naming the
/// failing parts.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (db, store) = tokio::join!(
        crate::db::check(&state.db, PROBE_TIMEOUT),
        state.store.check(PROBE_TIMEOUT)
    );
    let mut failing = Vec::new();
    if let Err(e) = db {
        tracing::warn!(error = %e, "readiness: database failing");
        failing.push("database");
    }
    if let Err(e) = store {
        tracing::warn!(error = %crate::error::chain(&e), "readiness: object store failing");
        failing.push("store");
    }
    let mut degraded = Vec::new();
    if let Err(e) = crate::render::ready(&state.settings.watermark_font) {
        tracing::warn!(error = %e, "readiness: rendered views unavailable");
        degraded.push("rendering");
    }
    if failing.is_empty() {
        HttpResponse::Ok().json(Health {
            status: "ready",
            failing,
            degraded,
        })
    } else {
        HttpResponse::ServiceUnavailable().json(Health {
            status: "unavailable",
            failing,
            degraded,
        })
    }
}
