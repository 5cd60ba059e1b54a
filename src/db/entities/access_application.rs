//! A vehicle owner's or an insurer's application to query a case (查询申请). Approved with a
//! scope — kinds of material, view or download, until a date — which `policy` applies to the
//! owner or insurer account it was granted to; or refused with a reason.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "access_applications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `CX` + date + five digits, printed on the receipt and the voucher.
    pub receipt_no: String,
    /// `owner` or `insurer`: the role the applicant's account gets.
    pub kind: crate::vocab::Role,
    pub case_id: Uuid,
    /// The brigade handling the case (whose staff decide, and whose ledger lists it).
    pub department_id: Uuid,
    pub applicant_name: String,
    /// The insurer's name (insurers).
    pub organisation: Option<String>,
    /// The insurer's unified social credit code or licence number (insurers).
    pub credit_code: Option<String>,
    /// The accident vehicle's plate number.
    pub plate: String,
    /// The insurance policy covering the vehicle (insurers).
    pub policy_no: Option<String>,
    /// The mobile number given, sealed (`ServerKey::seal_contact`): never kept in clear.
    pub mobile: String,
    /// The e-mail address given, if any, sealed as `mobile` is.
    pub email: Option<String>,
    /// Keyed hash of the mobile number (`ServerKey::contact_hash`): what it is looked up by.
    pub mobile_hash: Option<String>,
    /// The signed authorisation or proof: its object in the store (`gc` counts it referenced),
    /// its file name as given, sniffed type, size and SHA-256.
    pub proof_key: String,
    pub proof_name: String,
    pub proof_type: String,
    pub proof_size: i64,
    pub proof_sha256: String,
    pub state: crate::vocab::AccessState,
    /// Keyed hash of the private status link's key, shown once to the applicant.
    pub status_key_hash: String,
    pub filed_at: TimeDateTimeWithTimeZone,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<TimeDateTimeWithTimeZone>,
    pub refusal_reason: Option<String>,
    /// Comma-separated material kinds granted.
    pub granted_kinds: Option<String>,
    pub granted_mode: Option<crate::vocab::AccessMode>,
    /// The last day (China Standard Time) the grant holds.
    pub granted_until: Option<TimeDate>,
    /// The applicant's owner or insurer account (found or made when filing; `None` when their
    /// mobile number opens an account of another role): the grant's holder once approved.
    pub account_id: Option<Uuid>,
    /// The person who filed this application proved control of `account_id` (activated it with
    /// this application's own code, or signed in to it and claimed this application from its
    /// status link): only then does the grant open the case.
    pub account_verified: bool,
    /// The code the voucher last issued, sealed (`ServerKey::seal`, bound to this row's id), and
    /// until when it holds: a reload of the voucher shows it again instead of a new one.
    pub voucher_code: Option<String>,
    pub voucher_code_expires_at: Option<TimeDateTimeWithTimeZone>,
}

impl Model {
    /// The kinds of material granted (none before approval).
    pub fn kinds(&self) -> Vec<crate::vocab::MaterialKind> {
        self.granted_kinds
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter_map(crate::vocab::MaterialKind::parse)
            .collect()
    }

    /// Whether the grant is in force at `now`: approved, and `now` before the end of its last
    /// day in China Standard Time.
    pub fn in_force(&self, now: time::OffsetDateTime) -> bool {
        self.state == crate::vocab::AccessState::Approved
            && self.granted_until.is_some_and(|last| {
                let end = last
                    .next_day()
                    .unwrap_or(last)
                    .midnight()
                    .assume_offset(time::macros::offset!(+8));
                now < end
            })
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
