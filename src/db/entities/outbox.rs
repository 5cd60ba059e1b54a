//! One SMS or e-mail to send for a notification: a row of the outbox. Claimed by a dispatcher for a
//! lease (`claimed_until`), then `sent`, retried later (`pending` with a later
//! `next_attempt_at`), or `failed` after the last attempt.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub notification_id: Uuid,
    /// `sms` | `email`.
    pub channel: String,
    /// The mobile number or e-mail address at the time of the event, sealed
    /// (`ServerKey::seal_contact`); emptied once delivered long enough (`retention`).
    pub address: String,
    /// Sent to the provider with every attempt, so a retry is recognised, not delivered twice.
    #[sea_orm(unique)]
    pub idempotency_key: String,
    /// `pending` | `sent` | `failed`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: TimeDateTimeWithTimeZone,
    pub claimed_until: Option<TimeDateTimeWithTimeZone>,
    pub last_error: Option<String>,
    pub sent_at: Option<TimeDateTimeWithTimeZone>,
    pub created_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
