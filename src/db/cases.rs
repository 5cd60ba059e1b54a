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

/// Adds an entry the portal makes itself to a case's timeline (the case opened, served, closed,
/// an expert opinion released), on `db` — the transaction of the change that caused it.
pub async fn add_milestone(
    db: &impl ConnectionTrait,
    case_id: Uuid,
    stage: crate::vocab::Stage,
    on: time::Date,
    now: time::OffsetDateTime,
) -> Result<(), DbErr> {
    add_milestone_noted(db, case_id, stage, on, "", now).await
}

/// As [`add_milestone`], with a note for the parties written `中文 (English)` (shown in the
/// reader's language); an empty note is none.
pub async fn add_milestone_noted(
    db: &impl ConnectionTrait,
    case_id: Uuid,
    stage: crate::vocab::Stage,
    on: time::Date,
    note: &str,
    now: time::OffsetDateTime,
) -> Result<(), DbErr> {
    use sea_orm::{ActiveModelTrait, Set};
    super::entities::case_milestone::ActiveModel {
        id: Set(Uuid::now_v7()),
        case_id: Set(case_id),
        stage: Set(stage),
        occurred_on: Set(on),
        note: Set(Some(note.to_owned()).filter(|n| !n.is_empty())),
        internal_note: Set(None),
        automatic: Set(true),
        corrects: Set(None),
        recorded_by: Set(None),
        recorded_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}
