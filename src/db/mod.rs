//! Database connection, migrations, entities and the named queries the rest of the portal uses.

pub mod accounts;
pub mod cases;
pub mod contacts;
pub mod entities;
pub mod times;
pub mod upgrade;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};

use crate::config::DatabaseUrl;

/// Opens the pool. SQLite gets WAL, foreign keys, a busy timeout and `synchronous=FULL`
/// (evidence and the audit log must survive a power cut); PostgreSQL is used as given.
///
/// No ping before every checkout (sqlx's default): on SQLite it is one more hand-off to the
/// connection's worker thread per query, for a file that cannot "drop" a connection (a 20 KiB
/// download under load went from 41 to 34 context switches per request). PostgreSQL
/// connections are pinged only after 30 s idle, when a proxy or firewall may have cut them.
#[tracing::instrument(skip_all, err, fields(url = %url.redacted()))]
///
/// `timeout` bounds the wait for a pooled connection, SQLite's wait for its write lock and, on
/// PostgreSQL, every statement (`statement_timeout`): a database that cannot answer in time is
/// an outage, answered 503.
pub async fn connect(url: &DatabaseUrl, timeout: Duration) -> Result<DatabaseConnection, DbErr> {
    if url.is_sqlite() {
        no_memory_statistics();
    }
    let mut options = ConnectOptions::new(url.expose().to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .acquire_timeout(timeout);
    if url.is_sqlite() {
        options.test_before_acquire(false);
        options.max_connections(8).map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(timeout)
                .synchronous(SqliteSynchronous::Full)
        });
        options.map_sqlx_sqlite_pool_opts(|pool| {
            pool.after_connect(|conn, _| Box::pin(stable_plans(conn)))
                .before_acquire(|conn, _| Box::pin(outside_transaction(conn)))
        });
    } else {
        options
            .max_connections(20)
            .test_before_acquire_if_idle_for(Duration::from_secs(30));
        let statement_timeout = format!("{}ms", timeout.as_millis());
        options.map_sqlx_postgres_opts(move |o| {
            o.options([("statement_timeout", statement_timeout.as_str())])
        });
    }
    // Two processes creating the same SQLite file at once can see SQLITE_BUSY while one switches
    // it to WAL (the busy handler does not cover that step): retry briefly.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let opened = async {
            let db = Database::connect(options.clone()).await?;
            // Fail now, not at the first request, if the database cannot answer.
            db.execute_unprepared("SELECT 1").await?;
            Ok::<_, DbErr>(db)
        }
        .await;
        match opened {
            Err(e)
                if url.is_sqlite()
                    && attempt < 5
                    && e.to_string().contains("database is locked") =>
            {
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// Applies every pending migration in one transaction that instances starting together queue
/// on: `BEGIN IMMEDIATE` on SQLite, an advisory lock on PostgreSQL (DDL is transactional on both).
/// Switches off SQLite's memory statistics, process-wide, before the first connection opens.
///
/// With them on (SQLite's default) every allocation inside SQLite takes one global mutex. sqlx
/// copies each value of each row out with `sqlite3_value_dup`, so with a worker thread per
/// connection that mutex was contended: a case page of 200 materials spent ~8 % of the CPU
/// waking threads from inside sqlx's row copy. The portal never reads those statistics.
/// SQLite accepts the setting only before it initialises; a later call (another pool in the
/// same process, as in the tests) is refused with SQLITE_MISUSE and changes nothing.
fn no_memory_statistics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use libsqlite3_sys::{SQLITE_CONFIG_MEMSTATUS, sqlite3_config};
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int. sqlite3_config must not run while
        // another thread uses SQLite: `Once` makes it the first SQLite call of this module,
        // and it precedes the first connection of the first pool.
        let _ = unsafe { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int) };
    });
}

/// Turns on SQLite's query-planner stability guarantee (`SQLITE_DBCONFIG_ENABLE_QPSG`) for a
/// new connection.
///
/// Without it, a statement whose `LIMIT` is a bound value (every `.one()` of sea-orm) is marked
/// to be re-planned whenever its bindings change — and sqlx clears the bindings before every
/// execution of a cached statement, so SQLite parsed and planned such statements afresh each
/// time: ~1.8 re-prepares per 20 KiB download, ~5 % of the CPU under load. With stable plans a
/// cached statement is prepared once per connection. (Plans never depended on bound values here
/// anyway: the portal does not run ANALYZE.)
async fn stable_plans(conn: &mut sea_orm::sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    use libsqlite3_sys::{SQLITE_DBCONFIG_ENABLE_QPSG, SQLITE_OK, sqlite3_db_config};
    use std::ffi::c_int;
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    let mut now: c_int = -1;
    // SAFETY: `db` is the open connection's handle, held exclusively through `handle` (the
    // connection's worker is parked while the lock is held). SQLITE_DBCONFIG_ENABLE_QPSG takes
    // exactly (int on/off, int *result) per the SQLite documentation; `now` outlives the call.
    let rc = unsafe { sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_QPSG, 1 as c_int, &mut now) };
    if rc != SQLITE_OK || now != 1 {
        return Err(sqlx::Error::Configuration(
            format!("SQLite refused the query-planner stability setting (rc {rc})").into(),
        ));
    }
    Ok(())
}

/// Whether a database error means the database cannot serve now (unreachable, timed out, out of
/// space, locked): answered 503 with `Retry-After`, not 500.
pub fn is_outage(e: &DbErr) -> bool {
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(sea_orm::RuntimeErr::SqlxError(s))
        | DbErr::Query(sea_orm::RuntimeErr::SqlxError(s)) => outage_sqlx(s),
        _ => {
            let text = e.to_string();
            OUTAGE_TEXTS.iter().any(|t| text.contains(t))
        }
    }
}

/// What SQLite and PostgreSQL say when they cannot serve for now.
const OUTAGE_TEXTS: [&str; 8] = [
    "database or disk is full",
    "database is locked",
    "disk I/O error",
    "unable to open database file",
    "No space left on device",
    "could not extend file",
    "canceling statement due to statement timeout",
    "the database system is",
];

fn outage_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        other => {
            let text = other.to_string();
            OUTAGE_TEXTS.iter().any(|t| text.contains(t))
        }
    }
}

/// Until when (Unix milliseconds) pooled SQLite connections are checked before use: a minute
/// after the last database error.
static SUSPECT_UNTIL: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Records that a database statement failed. For the next minute, every SQLite connection taken
/// from the pool is first checked to be outside any transaction (see [`outside_transaction`]).
/// Call it before a failed transaction is dropped, so its connection is checked at its next use.
pub fn error_seen() {
    SUSPECT_UNTIL.store(now_millis() + 60_000, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a pooled SQLite connection may be used: not if it is still inside a transaction.
///
/// When SQLite refuses a write (`database or disk is full`) inside a transaction, the
/// transaction's rollback can fail too and leave the connection inside it. Handed out again,
/// that connection runs every later statement inside the dead transaction: its writes — audit
/// events among them — look committed to their caller and are never durable, and the write lock
/// it holds makes every other connection wait until `database is locked`. Such a connection is
/// closed instead (closing rolls the transaction back) and the pool opens a fresh one, so the
/// instance recovers by itself once space returns. The check costs a hand-off to the
/// connection's thread, so it runs only within a minute of an error ([`error_seen`]).
async fn outside_transaction(
    conn: &mut sea_orm::sqlx::SqliteConnection,
) -> Result<bool, sqlx::Error> {
    if now_millis() > SUSPECT_UNTIL.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(true);
    }
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is the open connection's, held exclusively while `handle` lives;
    // sqlite3_get_autocommit only reads the connection's state.
    let autocommit =
        unsafe { libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) } != 0;
    if !autocommit {
        tracing::error!("a pooled SQLite connection was still inside a transaction: closed");
    }
    Ok(autocommit)
}

#[tracing::instrument(skip_all, err)]
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            .await?;
    }
    Migrator::up(&txn, None).await?;
    txn.commit().await
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

/// A statement whose SQL sea-orm's builder writes once per process and that is then reused with
/// each call's values: the statements every signed-in request runs (the session, the case and
/// the material) skip building, quoting and dropping a query tree each time (~6 % of a 20 KiB
/// download's CPU). The SQL still comes from the entities; only the values change.
///
/// `build` must bind exactly `values`, in order. Debug builds (every test) build the statement
/// each time anyway and compare, so a reused statement with its values in the wrong places
/// cannot pass the tests.
pub struct Reused {
    sql: std::sync::OnceLock<(DbBackend, String)>,
}

impl Reused {
    pub const fn new() -> Self {
        Reused {
            sql: std::sync::OnceLock::new(),
        }
    }

    pub fn statement(
        &self,
        backend: DbBackend,
        values: Vec<sea_orm::Value>,
        build: impl FnOnce() -> sea_orm::Statement,
    ) -> sea_orm::Statement {
        match self.sql.get() {
            Some((built_for, sql)) if *built_for == backend => {
                let reused = sea_orm::Statement::from_sql_and_values(backend, sql.clone(), values);
                #[cfg(debug_assertions)]
                {
                    let fresh = build();
                    assert_eq!(fresh.sql, reused.sql, "a reused statement's SQL changed");
                    assert_eq!(
                        fresh.values, reused.values,
                        "a reused statement's values are not bound as its builder binds them"
                    );
                }
                reused
            }
            _ => {
                let fresh = build();
                let _ = self.sql.set((backend, fresh.sql.clone()));
                fresh
            }
        }
    }
}

impl Default for Reused {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Reused;
    use sea_orm::{DbBackend, Statement, Value};

    fn build(a: i32, b: i32) -> Statement {
        Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT ? , ?",
            [Value::from(a), Value::from(b)],
        )
    }

    #[test]
    fn a_reused_statement_takes_the_new_values() {
        let reused = Reused::new();
        let first = reused.statement(DbBackend::Sqlite, vec![1.into(), 2.into()], || build(1, 2));
        assert_eq!(first.values, build(1, 2).values);
        let second = reused.statement(DbBackend::Sqlite, vec![3.into(), 4.into()], || build(3, 4));
        assert_eq!(second.sql, first.sql);
        assert_eq!(second.values, build(3, 4).values);
        // Another backend is built afresh, never given the first backend's SQL.
        let other = reused.statement(DbBackend::Postgres, vec![5.into(), 6.into()], || {
            Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT $1, $2",
                [Value::from(5), Value::from(6)],
            )
        });
        assert_eq!(other.sql, "SELECT $1, $2");
    }

    /// Values given in another order than the builder binds them fail in debug builds (every
    /// test), so a reused hot statement cannot silently swap a case id for an account id.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not bound as its builder binds them")]
    fn values_out_of_the_builders_order_fail() {
        let reused = Reused::new();
        reused.statement(DbBackend::Sqlite, vec![1.into(), 2.into()], || build(1, 2));
        reused.statement(DbBackend::Sqlite, vec![4.into(), 3.into()], || build(3, 4));
    }
}
