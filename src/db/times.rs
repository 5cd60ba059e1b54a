//! Stored times, and the bounds compared with them: the one place that makes either.
//!
//! Every time is stored in UTC. PostgreSQL keeps `timestamptz` and compares instants. SQLite
//! keeps the text sqlx writes — RFC 3339 in UTC with the fraction trimmed
//! (`2026-11-28T21:00:31.372033Z`) — and compares it character by character, so a bound written
//! in another offset (`2026-11-29T00:00:00+08:00`) compares the wrong characters: an event at
//! 05:00 CST on the 29th (21:00 UTC on the 28th) falls outside "the 29th". A bound therefore goes
//! through [`at_or_after`] or [`before`], which bind UTC in the stored layout on either backend.
//!
//! Bounds are whole seconds (a bound's fraction is dropped). On SQLite a bound is bound as
//! `YYYY-MM-DDTHH:MM:SS` without a suffix: every stored text within that second starts with it
//! and so sorts after it, and every earlier one differs at an earlier character — which makes
//! `>=` and `<` exact whatever fraction the stored value has. (`>` and `<=` cannot be made exact
//! against trimmed fractions, so there are none.)

use sea_orm::sea_query::SimpleExpr;
use sea_orm::{ColumnTrait, DbBackend, Value};
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// China Standard Time, in which people read and type dates.
pub const CST: UtcOffset = time::macros::offset!(+8);

/// `t` as it is stored: in UTC. Every time a row is written with goes through this or is
/// already UTC (`OffsetDateTime::now_utc()`).
pub fn stored(t: OffsetDateTime) -> OffsetDateTime {
    t.checked_to_offset(UtcOffset::UTC).unwrap_or_else(|| {
        if t.year() < 0 {
            PrimitiveDateTime::MIN.assume_utc()
        } else {
            PrimitiveDateTime::MAX.assume_utc()
        }
    })
}

/// The first instant of `day` in China Standard Time.
pub fn cst_day_start(day: Date) -> OffsetDateTime {
    stored(day.midnight().assume_offset(CST))
}

/// The first instant after `day` in China Standard Time (the exclusive end of a day filter).
pub fn cst_day_end(day: Date) -> OffsetDateTime {
    day.next_day()
        .map_or_else(|| PrimitiveDateTime::MAX.assume_utc(), cst_day_start)
}

/// `column >= t`, exact on both backends.
pub fn at_or_after(backend: DbBackend, column: impl ColumnTrait, t: OffsetDateTime) -> SimpleExpr {
    column.gte(bound(backend, t))
}

/// `column < t`, exact on both backends.
pub fn before(backend: DbBackend, column: impl ColumnTrait, t: OffsetDateTime) -> SimpleExpr {
    column.lt(bound(backend, t))
}

/// The value a bound is bound as, for hand-written SQL (`column < ?` or `column >= ?` only; see
/// the module's documentation).
pub fn bound(backend: DbBackend, t: OffsetDateTime) -> Value {
    let t = stored(t);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    match backend {
        DbBackend::Sqlite => Value::from(sqlite_text(t)),
        _ => Value::from(t),
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a UTC time: the prefix its stored text starts with.
fn sqlite_text(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;
    use time::macros::{date, datetime};

    /// What sqlx writes for an `OffsetDateTime` column on SQLite.
    fn stored_text(t: OffsetDateTime) -> String {
        stored(t).format(&Rfc3339).unwrap()
    }

    #[test]
    fn a_cst_day_is_its_utc_interval() {
        assert_eq!(
            cst_day_start(date!(2026 - 11 - 29)),
            datetime!(2026-11-28 16:00 UTC)
        );
        assert_eq!(
            cst_day_end(date!(2026 - 11 - 29)),
            datetime!(2026-11-29 16:00 UTC)
        );
        assert_eq!(
            cst_day_start(date!(2026 - 11 - 29)).offset(),
            UtcOffset::UTC
        );
        // The last representable day and the first do not overflow.
        assert!(cst_day_end(Date::MAX) > cst_day_start(Date::MAX));
        assert!(cst_day_start(Date::MIN).year() < 0);
    }

    /// The SQLite text bound orders exactly like the instants, for stored texts with any
    /// fraction (none, trimmed, nanoseconds) on either side of the bound.
    #[test]
    fn sqlite_text_bounds_compare_like_instants() {
        let bound = datetime!(2026-11-28 16:00 UTC);
        let text = sqlite_text(bound);
        for offset_ns in [
            -86_400_000_000_000i64,
            -1_000_000_000,
            -999_999_999,
            -500_000_000,
            -1,
            0,
            1,
            1_000,
            100_000_000,
            500_000_000,
            999_999_999,
            1_000_000_000,
            86_400_000_000_000,
        ] {
            let t = bound + time::Duration::nanoseconds(offset_ns);
            let stored = stored_text(t);
            assert_eq!(
                stored.as_str() >= text.as_str(),
                t >= bound,
                "{stored} vs {text}"
            );
        }
        // A bound in another offset is bound in UTC.
        assert_eq!(
            sqlite_text(stored(datetime!(2026-11-29 00:00 +8))),
            "2026-11-28T16:00:00"
        );
    }
}
