//! Deadlines written one way everywhere (issue 35): "截至 12月10日（含当日），还剩 3 天" /
//! "until 10 December (inclusive): 3 days left" — the day without the year unless it is
//! another year's, inclusive said in words, and the days left counted for the reader.

use time::Date;

use crate::i18n::Locale;

/// The day `d` as a deadline names it: "12月10日" / "10 December", with the year when it is not
/// `today`'s year ("2027年1月2日" / "2 January 2027").
pub fn day(locale: Locale, d: Date, today: Date) -> String {
    let key = if d.year() == today.year() {
        "deadline.day"
    } else {
        "deadline.day_year"
    };
    locale.tf(
        key,
        &[
            ("y", &d.year().to_string()),
            ("m", &u8::from(d.month()).to_string()),
            ("d", &d.day().to_string()),
            ("month", &d.month().to_string()),
        ],
    )
}

/// A deadline on `today`: "截至 12月10日（含当日），还剩 3 天", "…，今天是最后一天", or
/// "已于 12月10日截止" once it has passed.
pub fn words(locale: Locale, deadline: Date, today: Date) -> String {
    let date = day(locale, deadline, today);
    match (deadline - today).whole_days() {
        0 => locale.tf("deadline.today", &[("date", &date)]),
        n if n > 0 => locale.tf("deadline.left", &[("date", &date), ("n", &n.to_string())]),
        _ => locale.tf("deadline.passed", &[("date", &date)]),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn a_deadline_reads_the_same_everywhere() {
        let today = date!(2026 - 12 - 07);
        assert_eq!(
            words(Locale::Zh, date!(2026 - 12 - 10), today),
            "截至 12月10日（含当日），还剩 3 天"
        );
        assert_eq!(
            words(Locale::En, date!(2026 - 12 - 10), today),
            "until 10 December (inclusive): 3 days left"
        );
        assert_eq!(
            words(Locale::Zh, today, today),
            "截至 12月7日（含当日），今天是最后一天"
        );
        assert_eq!(
            words(Locale::Zh, date!(2026 - 12 - 06), today),
            "已于 12月6日截止"
        );
        assert_eq!(
            day(Locale::Zh, date!(2027 - 01 - 02), today),
            "2027年1月2日"
        );
        assert_eq!(
            day(Locale::En, date!(2027 - 01 - 02), today),
            "2 January 2027"
        );
    }
}
