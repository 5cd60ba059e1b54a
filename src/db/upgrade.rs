//! Upgrades that cannot corrupt: a binary never migrates, nor serves, a database whose schema is
//! newer than the migrations it knows, and on SQLite the database file is copied aside before
//! any pending migration is applied.
//!
//! Migrations are forward-only and, for one release, additive (expand, then contract a release
//! later), so two adjacent versions can serve one PostgreSQL during a rolling upgrade; see the
//! README's "Upgrades".

use std::collections::HashSet;
use std::path::PathBuf;

use migration::{Migrator, MigratorTrait, SchemaManager};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use time::OffsetDateTime;

/// Where a database's schema stands against this binary's migrations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Level {
    /// Nothing applied yet: a new installation.
    Fresh,
    /// Every migration this binary knows is applied, and no other.
    Current { at: String },
    /// Some of this binary's migrations are still to apply.
    Pending { at: String, pending: Vec<String> },
    /// The database has migrations this binary does not know: a newer binary applied them.
    Newer { at: String, latest: String },
}

/// Why an upgrade did not happen. Each displays as the one line the program exits with.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error(
        "the database is at schema {at} (newer than this binary's latest {latest}): use the newer binary"
    )]
    Newer { at: String, latest: String },
    #[error("cannot read the database's schema level: {0}")]
    Level(DbErr),
    #[error("cannot back up the database before migrating (nothing was migrated): {0}")]
    Backup(String),
    #[error("cannot apply database migrations: {0}")]
    Migrate(DbErr),
}

/// What [`upgrade`] did.
#[derive(Debug, Default)]
pub struct Upgraded {
    /// The migrations applied.
    pub applied: Vec<String>,
    /// The copy of the SQLite database taken before them, if any.
    pub backup: Option<PathBuf>,
}

/// The names of this binary's migrations, in order.
pub fn known() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

/// Reads the database's level without changing anything (not even creating the table of
/// applied migrations).
pub async fn level(db: &DatabaseConnection) -> Result<Level, DbErr> {
    let known = known();
    let latest = known.last().cloned().unwrap_or_default();
    if !SchemaManager::new(db).has_table("seaql_migrations").await? {
        return Ok(Level::Fresh);
    }
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM seaql_migrations",
        ))
        .await?;
    let mut applied = Vec::with_capacity(rows.len());
    for row in rows {
        applied.push(row.try_get::<String>("", "version")?);
    }
    applied.sort();
    let Some(at) = applied.last().cloned() else {
        return Ok(Level::Fresh);
    };
    let known_set: HashSet<&String> = known.iter().collect();
    if let Some(unknown) = applied.iter().rev().find(|v| !known_set.contains(v)) {
        // The highest unknown version names what a newer binary did.
        return Ok(Level::Newer {
            at: unknown.max(&at).clone(),
            latest,
        });
    }
    let applied_set: HashSet<&String> = applied.iter().collect();
    let pending: Vec<String> = known
        .iter()
        .filter(|k| !applied_set.contains(k))
        .cloned()
        .collect();
    Ok(if pending.is_empty() {
        Level::Current { at }
    } else {
        Level::Pending { at, pending }
    })
}

/// Refuses a database newer than this binary: every command that opens the database asks first.
pub async fn refuse_newer(db: &DatabaseConnection) -> Result<Level, UpgradeError> {
    match level(db).await.map_err(UpgradeError::Level)? {
        Level::Newer { at, latest } => Err(UpgradeError::Newer { at, latest }),
        other => Ok(other),
    }
}

/// Brings the database to this binary's schema: refuses a newer one; on SQLite with migrations
/// pending over an existing schema, first copies the database aside (`VACUUM INTO`); then applies
/// the pending migrations in one transaction (`super::migrate`). Instances starting together may
/// each take a copy; the copies are named apart.
#[tracing::instrument(skip_all, err)]
pub async fn upgrade(
    db: &DatabaseConnection,
    now: OffsetDateTime,
) -> Result<Upgraded, UpgradeError> {
    let mut upgraded = Upgraded::default();
    match level(db).await.map_err(UpgradeError::Level)? {
        Level::Newer { at, latest } => return Err(UpgradeError::Newer { at, latest }),
        Level::Current { .. } => return Ok(upgraded),
        Level::Pending { at, pending } => {
            if db.get_database_backend() == DbBackend::Sqlite {
                upgraded.backup = Some(backup_sqlite(db, &at, now).await?);
            }
            upgraded.applied = pending;
        }
        Level::Fresh => upgraded.applied = known(),
    }
    super::migrate(db)
        .await
        .map_err(|e| match level_error(&e) {
            Some(line) => UpgradeError::Migrate(DbErr::Custom(line)),
            None => UpgradeError::Migrate(e),
        })?;
    Ok(upgraded)
}

/// sea-orm's words when another instance applied a migration this one does not know between
/// the check and the transaction: kept, but the cause is plain.
fn level_error(e: &DbErr) -> Option<String> {
    let text = e.to_string();
    text.contains("is missing")
        .then(|| format!("{text} (a newer binary migrated this database meanwhile)"))
}

/// Copies the SQLite database to `<file>.before-<schema>-<UTC time>.sqlite` beside it, private
/// (0600), and returns the copy's path. `at` is the schema the copy holds (its last migration's
/// `mYYYYMMDD_NNNNNN`).
#[tracing::instrument(skip_all, err)]
pub async fn backup_sqlite(
    db: &DatabaseConnection,
    at: &str,
    now: OffsetDateTime,
) -> Result<PathBuf, UpgradeError> {
    let fail = |e: String| UpgradeError::Backup(e);
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT file FROM pragma_database_list WHERE name = 'main'",
        ))
        .await
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("SQLite names no main database".into()))?;
    let file: String = row.try_get("", "file").map_err(|e| fail(e.to_string()))?;
    if file.is_empty() {
        return Err(fail("the database is in memory".into()));
    }
    let version: String = at.split('_').take(2).collect::<Vec<_>>().join("_");
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let path = reserve(&format!("{file}.before-{version}-{stamp}"))
        .map_err(|e| fail(format!("cannot create the copy beside {file}: {e}")))?;
    let quoted = path.display().to_string().replace('\'', "''");
    if let Err(e) = db
        .execute_unprepared(&format!("VACUUM INTO '{quoted}'"))
        .await
    {
        let _ = std::fs::remove_file(&path);
        return Err(fail(format!("VACUUM INTO {}: {e}", path.display())));
    }
    Ok(path)
}

/// Creates an empty private file `{stem}.sqlite` (or `{stem}-2.sqlite`, … when taken): SQLite's
/// `VACUUM INTO` writes into an empty file and keeps its mode.
fn reserve(stem: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    for n in 1..100 {
        let path = PathBuf::from(if n == 1 {
            format!("{stem}.sqlite")
        } else {
            format!("{stem}-{n}.sqlite")
        });
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "a hundred copies of this second already exist",
    ))
}
