//! Streams the audit log, filtered, as CSV or JSON Lines (constant memory).

use std::io::Write;

use futures_util::TryStreamExt;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::chain::format_time;
use crate::db::entities::audit_event;
use crate::db::times;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

/// Which events: `from` inclusive, `to` exclusive, of any of `cases` (all if empty).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub cases: Option<Vec<Uuid>>,
}

/// The CSV header: `Line`'s fields, in order.
const COLUMNS: [&str; 13] = [
    "seq",
    "occurred_at",
    "actor_id",
    "actor_role",
    "action",
    "case_id",
    "material_id",
    "client_ip",
    "user_agent",
    "outcome",
    "details",
    "prev_hash",
    "hash",
];

#[derive(Serialize)]
struct Line<'a> {
    seq: i64,
    occurred_at: String,
    actor_id: Option<Uuid>,
    actor_role: &'a str,
    action: &'a str,
    case_id: Option<Uuid>,
    material_id: Option<Uuid>,
    client_ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    outcome: &'a str,
    details: &'a str,
    prev_hash: &'a str,
    hash: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read the audit log: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write the export: {0}")]
    Csv(#[from] csv::Error),
}

/// Writes the events matching `filter`, in sequence order, and returns how many.
#[tracing::instrument(skip_all, err)]
pub async fn export(
    db: &DatabaseConnection,
    filter: &Filter,
    format: Format,
    out: impl Write,
) -> Result<u64, ExportError> {
    let backend = db.get_database_backend();
    let mut query = audit_event::Entity::find().order_by_asc(audit_event::Column::Seq);
    if let Some(from) = filter.from {
        query = query.filter(times::at_or_after(
            backend,
            audit_event::Column::OccurredAt,
            from,
        ));
    }
    if let Some(to) = filter.to {
        query = query.filter(times::before(backend, audit_event::Column::OccurredAt, to));
    }
    if let Some(cases) = &filter.cases {
        query = query.filter(audit_event::Column::CaseId.is_in(cases.iter().copied()));
    }
    let mut rows = query.stream(db).await?;
    let mut count = 0u64;
    match format {
        Format::Csv => {
            // The header is written even when no event matches.
            let mut csv = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(out);
            csv.write_record(COLUMNS)?;
            while let Some(row) = rows.try_next().await? {
                csv.serialize(line(&row))?;
                count += 1;
            }
            csv.flush()?;
        }
        Format::Jsonl => {
            let mut out = out;
            while let Some(row) = rows.try_next().await? {
                serde_json::to_writer(&mut out, &line(&row)).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
                count += 1;
            }
            out.flush()?;
        }
    }
    Ok(count)
}

fn line(row: &audit_event::Model) -> Line<'_> {
    Line {
        seq: row.seq,
        occurred_at: format_time(row.occurred_at),
        actor_id: row.actor_id,
        actor_role: &row.actor_role,
        action: &row.action,
        case_id: row.case_id,
        material_id: row.material_id,
        client_ip: row.client_ip.as_deref(),
        user_agent: row.user_agent.as_deref(),
        outcome: &row.outcome,
        details: &row.details,
        prev_hash: &row.prev_hash,
        hash: &row.hash,
    }
}
