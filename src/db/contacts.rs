//! Contact fields in clear sealed at start-up (issue 36): telephone numbers and e-mail
//! addresses written before migration 000028 (or restored from an old backup) are sealed in
//! place, right after migrating and before anything is served, by whichever instance starts.
//!
//! Idempotent and safe to run in several instances at once: a row is rewritten only while it
//! still holds the clear value read (its update names it), in batches of [`BATCH`] rows, each
//! batch in one transaction. When it returns, no contact column holds a value in clear.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::entities::{access_application, account, case_party, outbox};
use crate::keys::{Contact, ServerKey};

/// Rows sealed per transaction.
pub const BATCH: u64 = 200;

/// Seals every contact field still in clear; returns how many values it sealed.
pub async fn seal_clear(db: &DatabaseConnection, key: &ServerKey) -> Result<u64, DbErr> {
    use access_application::Column as A;
    let mut sealed = 0;
    sealed += seal_column::<account::Entity>(
        db,
        key,
        (account::Column::Id, account::Column::Mobile, None),
        Contact::Mobile,
        Condition::all(),
    )
    .await?;
    sealed += seal_column::<account::Entity>(
        db,
        key,
        (account::Column::Id, account::Column::Email, None),
        Contact::Email,
        Condition::all(),
    )
    .await?;
    sealed += seal_column::<case_party::Entity>(
        db,
        key,
        (case_party::Column::Id, case_party::Column::Mobile, None),
        Contact::Mobile,
        Condition::all(),
    )
    .await?;
    sealed += seal_column::<access_application::Entity>(
        db,
        key,
        (A::Id, A::Mobile, Some(A::MobileHash)),
        Contact::Mobile,
        Condition::all(),
    )
    .await?;
    sealed += seal_column::<access_application::Entity>(
        db,
        key,
        (A::Id, A::Email, None),
        Contact::Email,
        Condition::all(),
    )
    .await?;
    for (channel, field) in [("sms", Contact::Mobile), ("email", Contact::Email)] {
        sealed += seal_column::<outbox::Entity>(
            db,
            key,
            (outbox::Column::Id, outbox::Column::Address, None),
            field,
            Condition::all().add(outbox::Column::Channel.eq(channel)),
        )
        .await?;
    }
    if sealed > 0 {
        tracing::info!(sealed, "contact fields in clear sealed");
    }
    Ok(sealed)
}

/// Seals the values of `column` still in clear (not empty, without a cipher's prefix) in rows
/// matching `only`, batch by batch; with `hash`, also writes the value's keyed hash there.
async fn seal_column<E: EntityTrait>(
    db: &DatabaseConnection,
    key: &ServerKey,
    (id, column, hash): (E::Column, E::Column, Option<E::Column>),
    field: Contact,
    only: Condition,
) -> Result<u64, DbErr> {
    let mut sealed = 0;
    loop {
        let txn = db.begin().await?;
        let clear: Vec<(Uuid, String)> = E::find()
            .select_only()
            .column(id)
            .column(column)
            .filter(only.clone())
            .filter(column.is_not_null())
            .filter(column.ne(""))
            .filter(column.not_like("sm4gcm:%"))
            .filter(column.not_like("aes256gcm:%"))
            .limit(BATCH)
            .into_tuple()
            .all(&txn)
            .await?;
        if clear.is_empty() {
            txn.commit().await?;
            return Ok(sealed);
        }
        for (row, value) in &clear {
            let mut update = E::update_many()
                .col_expr(column, Expr::value(key.seal_contact(field, value.trim())))
                .filter(id.eq(*row))
                .filter(column.eq(value.clone()));
            if let Some(hash) = hash {
                update = update.col_expr(hash, Expr::value(key.contact_hash(field, value.trim())));
            }
            update.exec(&txn).await?;
        }
        txn.commit().await?;
        sealed += clear.len() as u64;
    }
}
