//! Every stored time in UTC. On SQLite a time is text compared character by character, so the
//! few columns that were written in China Standard Time (`+08:00`: a case's accident time, a
//! delegation's validity) are rewritten in UTC; their instants do not change. PostgreSQL keeps
//! instants (`timestamptz`) and needs nothing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns that may hold an offset other than UTC.
const COLUMNS: [(&str, &str); 3] = [
    ("cases", "occurred_at"),
    ("delegations", "valid_from"),
    ("delegations", "valid_until"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm_migration::sea_orm::DbBackend::Sqlite {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, column) in COLUMNS {
            // strftime reads the offset and writes UTC; these columns never carry a fraction
            // (minutes typed by staff, or midnights), and a row that does is left as it is.
            db.execute_unprepared(&format!(
                "UPDATE {table} SET {column} = strftime('%Y-%m-%dT%H:%M:%SZ', {column}) \
                 WHERE {column} NOT LIKE '%Z' AND {column} NOT LIKE '%.%' \
                 AND strftime('%Y-%m-%dT%H:%M:%SZ', {column}) IS NOT NULL"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The instants are unchanged: nothing to undo.
        Ok(())
    }
}
