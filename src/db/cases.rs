//! Named queries on cases.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, Value};
use uuid::Uuid;

/// The ids of the cases a person means by `case`: its id, or a case number (事故编号), which is
/// unique only within a brigade and so may name several.
pub async fn ids_matching(db: &DatabaseConnection, case: &str) -> Result<Vec<Uuid>, DbErr> {
    if let Ok(id) = Uuid::parse_str(case.trim()) {
        return Ok(vec![id]);
    }
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "SELECT id FROM cases WHERE case_number = $1",
        _ => "SELECT id FROM cases WHERE case_number = ?",
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(case.trim().to_owned())],
        ))
        .await?;
    rows.iter().map(|r| r.try_get::<Uuid>("", "id")).collect()
}
