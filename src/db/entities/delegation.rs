//! An agent's authority to act for one party of one case, within dates, until revoked.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delegations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    /// The `case_parties` row of the principal.
    pub principal_party_id: Uuid,
    pub agent_account_id: Uuid,
    pub valid_from: TimeDateTimeWithTimeZone,
    pub valid_until: TimeDateTimeWithTimeZone,
    pub revoked_at: Option<TimeDateTimeWithTimeZone>,
    pub revoked_by: Option<Uuid>,
    /// The signed 授权委托书 (a material of kind `authorisation`).
    pub authorisation_material_id: Option<Uuid>,
    pub created_by: Uuid,
    pub created_at: TimeDateTimeWithTimeZone,
    pub law_firm: Option<String>,
}

impl Model {
    /// Whether the delegation gives authority at `now`.
    pub fn current(&self, now: TimeDateTimeWithTimeZone) -> bool {
        self.revoked_at.is_none() && self.valid_from <= now && now < self.valid_until
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
