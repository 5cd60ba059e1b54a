//! Anyone who signs in: admin, staff, party (当事人) or agent (代理人).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `admin` | `staff` | `party` | `agent` | `owner` | `insurer`.
    pub role: crate::vocab::Role,
    pub display_name: String,
    /// Hex HMAC-SHA256 (server key) of the normalised login identifier; look-ups use only this.
    #[sea_orm(unique)]
    pub login_key: String,
    /// The identifier as it may be displayed: citizen ID numbers masked (`1101**********123X`).
    pub login_masked: String,
    /// argon2id PHC string; `None` until the account is activated.
    pub password_hash: Option<String>,
    /// The brigade of a staff member.
    pub department_id: Option<Uuid>,
    pub disabled: bool,
    pub failed_logins: i32,
    pub locked_until: Option<TimeDateTimeWithTimeZone>,
    pub created_at: TimeDateTimeWithTimeZone,
    pub updated_at: TimeDateTimeWithTimeZone,
    /// Where SMS notifications go (11 digits), if the person gave one: sealed
    /// (`ServerKey::seal_contact`), never kept in clear.
    pub mobile: Option<String>,
    /// Where e-mail notifications go, if the person gave one: sealed as `mobile` is.
    pub email: Option<String>,
    /// The channels the person chose besides the inbox, which is always on.
    pub notify_sms: bool,
    pub notify_email: bool,
    /// Unread inbox rows, kept with them in one transaction (the header's badge).
    pub unread_notifications: i32,
    /// The insurer (or firm) an owner or insurer account acts for, masked in access histories.
    pub organisation: Option<String>,
    /// Until when a staff or administrator account may act without a second factor.
    pub second_factor_grace_until: Option<TimeDateTimeWithTimeZone>,
    /// Wrong second-factor codes since the last one passed (apart from `failed_logins`: a right
    /// password does not clear them).
    pub second_factor_failures: i32,
    /// Until when no second-factor code is tried (five wrong in a row).
    pub second_factor_locked_until: Option<TimeDateTimeWithTimeZone>,
    /// The language the person last used the portal in (`zh-CN` or `en`: switched to, signed
    /// in or applied in); their SMS and e-mail are written in it alone. `None`: Chinese.
    pub language: Option<String>,
    /// The care mode (长辈版: large text and targets) is on for them: the pages follow it once
    /// they sign in, whatever the device's cookie said before (`routes::public::care_get`).
    pub care: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
