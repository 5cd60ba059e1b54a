//! The hash chain of the audit log, specified precisely enough to re-implement elsewhere.
//!
//! # Verifying the chain (for outside auditors)
//!
//! Read the rows of `audit_events` in ascending `seq`. For the row with `seq = n`:
//!
//! 1. `n` must equal 1 for the first row and the previous row's `seq + 1` after it (gapless).
//! 2. `prev_hash` must equal the previous row's `hash`; for `seq = 1` it is 64 `0` characters.
//! 3. `hash` must equal the lower-case hex SHA-256 of
//!    `bytes(prev_hash) ‖ canonical(row)`, where `bytes(prev_hash)` is the 32 bytes that the hex
//!    string `prev_hash` denotes, and `canonical(row)` is the concatenation of these 12 fields, in
//!    this order, each written as a 4-byte big-endian length followed by that many bytes of UTF-8
//!    (a NULL field is written as the length `0xFFFFFFFF` and no bytes):
//!
//!    | # | field | text written |
//!    |---|-------|--------------|
//!    | 1 | format tag | `portal-audit-v1` |
//!    | 2 | `seq` | decimal, no sign, no leading zeros |
//!    | 3 | `occurred_at` | UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always 6 fraction digits) |
//!    | 4 | `actor_id` | UUID, lower-case hyphenated, or NULL |
//!    | 5 | `actor_role` | as stored |
//!    | 6 | `action` | as stored |
//!    | 7 | `case_id` | UUID, lower-case hyphenated, or NULL |
//!    | 8 | `material_id` | UUID, lower-case hyphenated, or NULL |
//!    | 9 | `client_ip` | as stored, or NULL |
//!    | 10 | `user_agent` | as stored, or NULL |
//!    | 11 | `outcome` | as stored |
//!    | 12 | `details` | the stored JSON text, byte for byte |
//!
//! 4. The last row's `seq` and `hash` must equal those in `audit_chain_head` (row `id = 1`), so a
//!    removed tail is noticed too. Publishing the head hash elsewhere from time to time (it is
//!    shown to admins) anchors the chain against wholesale rewriting.
//!
//! `evidence-portal audit verify` does exactly this and names the first sequence number at which
//! a check fails.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

/// `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const FORMAT_TAG: &str = "portal-audit-v1";

/// The hashed fields of one event, borrowed from wherever they live.
pub struct Fields<'a> {
    pub seq: i64,
    pub occurred_at: OffsetDateTime,
    pub actor_id: Option<Uuid>,
    pub actor_role: &'a str,
    pub action: &'a str,
    pub case_id: Option<Uuid>,
    pub material_id: Option<Uuid>,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub outcome: &'a str,
    pub details: &'a str,
}

/// `OccurredAt` as hashed: UTC, six fraction digits.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Truncates to whole microseconds, the precision every supported database keeps.
pub fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(t.microsecond() * 1000).unwrap_or(t)
}

/// The canonical encoding of `fields` (step 3 above, without the previous hash).
pub fn canonical(fields: &Fields<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + fields.details.len());
    let uuid = |u: Option<Uuid>| u.map(|u| u.hyphenated().to_string());
    let seq = fields.seq.to_string();
    let time = format_time(fields.occurred_at);
    let actor_id = uuid(fields.actor_id);
    let case_id = uuid(fields.case_id);
    let material_id = uuid(fields.material_id);
    let parts: [Option<&str>; 12] = [
        Some(FORMAT_TAG),
        Some(&seq),
        Some(&time),
        actor_id.as_deref(),
        Some(fields.actor_role),
        Some(fields.action),
        case_id.as_deref(),
        material_id.as_deref(),
        fields.client_ip,
        fields.user_agent,
        Some(fields.outcome),
        Some(fields.details),
    ];
    for part in parts {
        match part {
            Some(text) => {
                out.extend_from_slice(&(text.len() as u32).to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
        }
    }
    out
}

/// The hash of an event: hex SHA-256 of the previous hash's bytes followed by the encoding.
/// `None` if `prev_hash` is not 64 hex digits.
pub fn hash(prev_hash: &str, fields: &Fields<'_>) -> Option<String> {
    let mut prev = [0u8; 32];
    hex::decode_to_slice(prev_hash, &mut prev).ok()?;
    let mut sha = Sha256::new();
    sha.update(prev);
    sha.update(canonical(fields));
    Some(hex::encode(sha.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    // Computed independently (Python, from the module docs alone) for this sample.
    const KNOWN_VECTOR: &str = "1d7ca7d145bc5d486d2e65ea1e79bae1be8ea702b165cf3d88b83749454baf85";

    fn sample() -> Fields<'static> {
        Fields {
            seq: 1,
            occurred_at: datetime!(2026-11-24 08:30:00.123456 +08:00),
            actor_id: Some(Uuid::nil()),
            actor_role: "party",
            action: "material.view",
            case_id: None,
            material_id: None,
            client_ip: Some("127.0.0.1"),
            user_agent: None,
            outcome: "allowed",
            details: "{}",
        }
    }

    #[test]
    fn times_are_utc_with_six_digits() {
        assert_eq!(
            format_time(datetime!(2026-11-24 08:30:00.123456789 +08:00)),
            "2026-11-24T00:30:00.123456Z"
        );
        assert_eq!(
            format_time(datetime!(2026-01-02 03:04:05 UTC)),
            "2026-01-02T03:04:05.000000Z"
        );
        assert_eq!(
            truncate_to_micros(datetime!(2026-01-02 03:04:05.999999999 UTC)),
            datetime!(2026-01-02 03:04:05.999999 UTC)
        );
    }

    #[test]
    fn the_encoding_is_length_prefixed_with_null_marked() {
        let bytes = canonical(&sample());
        assert_eq!(&bytes[..4], &15u32.to_be_bytes());
        assert_eq!(&bytes[4..19], b"portal-audit-v1");
        assert_eq!(&bytes[19..23], &1u32.to_be_bytes());
        assert_eq!(bytes[23], b'1');
        // case_id is NULL.
        let null = u32::MAX.to_be_bytes();
        assert!(bytes.windows(4).any(|w| w == null));
    }

    /// A fixed vector, so an auditor's re-implementation can check itself against ours.
    #[test]
    fn a_known_event_has_a_known_hash() {
        assert_eq!(hash(GENESIS, &sample()).unwrap(), KNOWN_VECTOR);
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = hash(GENESIS, &sample()).unwrap();
        let mut f = sample();
        f.outcome = "denied";
        assert_ne!(hash(GENESIS, &f).unwrap(), base);
        let mut f = sample();
        f.client_ip = None;
        assert_ne!(hash(GENESIS, &f).unwrap(), base);
        let mut f = sample();
        f.client_ip = Some("");
        assert_ne!(hash(GENESIS, &f).unwrap(), base, "empty and NULL differ");
        assert!(hash("zz", &sample()).is_none());
    }
}
