//! A staff member's or administrator's second factor: an authenticator app (TOTP) or a passkey.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "second_factors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    /// `totp` | `passkey`.
    pub kind: String,
    /// The person's name for it ("work phone").
    pub name: String,
    /// A TOTP secret, sealed (`auth::second_factor`); never stored in the clear.
    pub secret: Option<String>,
    /// A passkey credential (JSON).
    pub passkey: Option<String>,
    /// Proved to work at enrolment; an unconfirmed one opens nothing.
    pub confirmed: bool,
    /// The latest TOTP time step accepted: a code of that step or an earlier one is refused.
    pub last_step: Option<i64>,
    pub created_at: TimeDateTimeWithTimeZone,
    pub last_used_at: Option<TimeDateTimeWithTimeZone>,
    /// The session that began an enrolment still waiting for its first code (only it may see
    /// the key or confirm it).
    pub session_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
