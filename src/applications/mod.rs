//! Applications made online (issue 21):
//! - [`review`]: a party's review application (复核, Order 146 Art. 71), filed by the party or
//!   their agent while the window is open, once per party, and followed by staff through its
//!   forwarding, the authority's acceptance or refusal and its conclusion;
//! - [`access`]: a vehicle owner's or an insurer's application to query a case, made without an
//!   account; [`grant`]: approved with a scope (which `policy` applies to the applicant's
//!   account) or refused with a reason, and the query voucher (查询凭证) of an approved one;
//!   [`revoke`]: an approved grant revoked or shortened; [`vehicles`]: the case's vehicles that
//!   staff record and an application's plate is checked against; [`lookup`]: the applicant's
//!   way back to its status page from another browser (a code texted to the number it gave);
//! - [`ledger`]: the brigade's list of both (台账), with filters and a CSV export.
//!
//! Every step is audited, on the case's timeline where the parties should see it, and told to
//! the people concerned in the transaction of the change.

pub mod access;
pub mod fields;
pub mod grant;
pub mod ledger;
pub mod lookup;
pub mod review;
pub mod revoke;
pub mod vehicles;

use rand::Rng;
use time::OffsetDateTime;

/// The largest file an applicant may attach (a review attachment, an access application's
/// proof): scans and PDFs, not evidence videos. 20 MiB.
pub const FILE_BYTES: u64 = 20 * 1024 * 1024;

/// Why an application or a step on it was refused, in words for the person.
#[derive(Debug, thiserror::Error)]
pub enum ApplicationError {
    /// A field breaks a rule (the form marks it); the text is bilingual (`中文 (English)`).
    #[error("{message}")]
    Field {
        field: &'static str,
        message: String,
    },
    /// The request cannot be granted as things stand (the window has passed, one exists, the
    /// step is out of order): a stable code and bilingual words.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("申请不存在 (no such application)")]
    NotFound,
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl ApplicationError {
    pub fn field(field: &'static str, message: &str) -> Self {
        ApplicationError::Field {
            field,
            message: message.to_owned(),
        }
    }

    pub fn refused(code: &'static str, message: &str) -> Self {
        ApplicationError::Refused {
            code,
            message: message.to_owned(),
        }
    }

    /// The stable code a refusal is answered with.
    pub fn code(&self) -> &'static str {
        match self {
            ApplicationError::Field { .. } => "invalid_application",
            ApplicationError::Refused { code, .. } => code,
            ApplicationError::NotFound => "not_found",
            ApplicationError::Db(_) => "database",
            ApplicationError::Audit(_) => "audit",
        }
    }
}

impl From<ApplicationError> for crate::error::AppError {
    fn from(e: ApplicationError) -> Self {
        use crate::error::AppError;
        match e {
            ApplicationError::Field { message, .. } => {
                AppError::bad_request("invalid_application", message)
            }
            ApplicationError::Refused { code, message } => AppError::bad_request(code, message),
            ApplicationError::NotFound => AppError::NotFound,
            ApplicationError::Db(e) => e.into(),
            ApplicationError::Audit(e) => e.into(),
        }
    }
}

/// A receipt number: `prefix`, the date (China Standard Time) and eight random digits
/// (`FH20261129-04718263`). Unique in its table; a clash (one in 10⁸ per day) is refused by
/// the unique index, never overwritten.
pub fn receipt_no(prefix: &str, now: OffsetDateTime) -> String {
    let d = now.to_offset(time::macros::offset!(+8)).date();
    let n: u32 = rand::rng().random_range(0..100_000_000);
    format!(
        "{prefix}{:04}{:02}{:02}-{n:08}",
        d.year(),
        u8::from(d.month()),
        d.day()
    )
}

/// Today in China Standard Time.
pub(crate) fn today(now: OffsetDateTime) -> time::Date {
    now.to_offset(time::macros::offset!(+8)).date()
}

/// A `YYYY-MM-DD` date typed in a form, within `earliest..=latest`.
pub(crate) fn date_between(
    raw: &str,
    earliest: time::Date,
    latest: time::Date,
) -> Option<time::Date> {
    time::Date::parse(
        raw.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
    .filter(|d| *d >= earliest && *d <= latest)
}

/// Free text from a form: trimmed, control characters (other than line breaks) and bidi
/// overrides removed, Unicode NFC.
pub(crate) fn clean_text(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    raw.nfc()
        .filter(|c| {
            (*c == '\n' || !c.is_control())
                && !matches!(*c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn receipt_numbers_carry_the_date_in_china() {
        let t = time::macros::datetime!(2026-11-29 17:00 UTC);
        let r = receipt_no("FH", t);
        assert!(r.starts_with("FH20261130-"), "{r}");
        assert_eq!(r.len(), "FH20261130-".len() + 8);
    }

    #[test]
    fn dates_outside_the_bounds_are_refused() {
        let a = time::macros::date!(2026 - 11 - 01);
        let b = time::macros::date!(2026 - 11 - 29);
        assert_eq!(
            date_between("2026-11-15", a, b),
            Some(time::macros::date!(2026 - 11 - 15))
        );
        assert_eq!(date_between("2026-10-31", a, b), None);
        assert_eq!(date_between("2026-11-30", a, b), None);
        assert_eq!(date_between("99999-01-01", a, b), None);
        assert_eq!(date_between("", a, b), None);
    }

    proptest! {
        #[test]
        fn cleaned_text_has_no_controls_or_overrides(raw in "\\PC*|[\\x00-\\x1f\\u{202E}a-z]*") {
            let c = clean_text(&raw);
            prop_assert!(c.chars().all(|ch| ch == '\n' || !ch.is_control()));
            let override_char = '\u{202E}';
            prop_assert!(!c.contains(override_char), "an override survived");
            prop_assert_eq!(c.trim(), c.as_str());
        }
    }
}
