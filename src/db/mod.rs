//! Database connection, migrations, entities and the named queries the rest of the portal uses.

pub mod accounts;
pub mod entities;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm::TransactionTrait;

use crate::config::DatabaseUrl;

/// Opens the pool. SQLite gets WAL, foreign keys, a busy timeout and `synchronous=FULL`
/// (evidence and the audit log must survive a power cut); PostgreSQL is used as given.
#[tracing::instrument(skip_all, err, fields(url = %url.redacted()))]
pub async fn connect(url: &DatabaseUrl) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.expose().to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10));
    if url.is_sqlite() {
        options
            .max_connections(8)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    .synchronous(SqliteSynchronous::Full)
            });
    } else {
        options.max_connections(20);
    }
    let db = Database::connect(options).await?;
    // Fail now, not at the first request, if the database cannot answer.
    db.execute_unprepared("SELECT 1").await?;
    Ok(db)
}

/// Applies every pending migration. On PostgreSQL an advisory lock serialises instances that
/// start together, and the whole run is one transaction (DDL is transactional there).
#[tracing::instrument(skip_all, err)]
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                .await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await
        }
        _ => Migrator::up(db, None).await,
    }
}

/// Advisory-lock key of the migration run ("portal-m" in ASCII).
const MIGRATION_LOCK: i64 = 0x706f_7274_616c_2d6d;

/// One line per migration: its name and whether it has been applied.
pub async fn migration_status(db: &DatabaseConnection) -> Result<Vec<(String, bool)>, DbErr> {
    let all = Migrator::get_migration_with_status(db).await?;
    Ok(all
        .iter()
        .map(|m| {
            (
                m.name().to_owned(),
                matches!(m.status(), migration::MigrationStatus::Applied),
            )
        })
        .collect())
}

/// Whether the database answers, within `within`.
pub async fn check(db: &DatabaseConnection, within: Duration) -> Result<(), String> {
    match tokio::time::timeout(within, db.execute_unprepared("SELECT 1")).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {within:?}")),
    }
}
