//! A party's review application (复核申请, Order 146 Art. 71): one per party of a case, filed by
//! the party or their agent within the review window, followed through its steps by staff.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "review_applications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    /// The party the application is made for (`case_parties.id`).
    pub party_id: Uuid,
    /// The account that filed it: the party or their agent.
    pub filed_by: Uuid,
    /// `FH` + date + five digits, printed on the receipt.
    pub receipt_no: String,
    pub grounds: String,
    /// JSON array of the contested materials' ids (released materials of the case).
    pub contested: String,
    /// JSON array of the attachments' material ids (kind `review_attachment`).
    pub attachments: String,
    pub state: crate::vocab::ReviewState,
    pub filed_at: TimeDateTimeWithTimeZone,
    /// Forwarded to the reviewing authority (the next-level traffic police) on this date.
    pub forwarded_on: Option<TimeDate>,
    pub authority: Option<String>,
    /// The authority accepted or refused the application on this date.
    pub decided_on: Option<TimeDate>,
    pub refusal_reason: Option<String>,
    pub concluded_on: Option<TimeDate>,
    /// The review conclusion (复核结论), a material of kind `review_conclusion`.
    pub conclusion_material_id: Option<Uuid>,
    pub updated_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
