//! How the dashboard writes times (always UTC): by hand, so the browser bundle carries none of
//! chrono's format-string machinery.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// `2026-11-26 21:05 UTC`: when something happened, to the minute.
pub fn minute(t: &DateTime<Utc>) -> String {
    format!("{} UTC", stamp(t))
}

/// `2026-11-26 21:05`: [`minute`] where the column already says UTC.
pub fn stamp(t: &DateTime<Utc>) -> String {
    format!("{} {}", day(t), hm(t))
}

/// `2026-11-26 21:05:09`: to the second (the caller says the zone where it matters).
pub fn second(t: &DateTime<Utc>) -> String {
    format!("{} {}", day(t), hms(t))
}

/// `2026-11-26`: the day of a time or a date.
pub fn day(d: &impl Datelike) -> String {
    format!("{}-{:02}", month(d), d.day())
}

/// `2026-11`: the month of a time or a date.
pub fn month(d: &impl Datelike) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

/// `21:05:09`: the time of day.
pub fn hms(t: &DateTime<Utc>) -> String {
    format!("{}:{:02}", hm(t), t.second())
}

/// `21:05`: the time of day, to the minute.
pub fn hm(t: &DateTime<Utc>) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_are_written_as_chrono_would_format_them() {
        for t in [
            Utc.with_ymd_and_hms(2026, 11, 26, 21, 5, 9).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(999, 12, 31, 23, 59, 59).unwrap(),
        ] {
            assert_eq!(minute(&t), t.format("%Y-%m-%d %H:%M UTC").to_string());
            assert_eq!(stamp(&t), t.format("%Y-%m-%d %H:%M").to_string());
            assert_eq!(day(&t), t.format("%Y-%m-%d").to_string());
            assert_eq!(day(&t.date_naive()), t.format("%Y-%m-%d").to_string());
            assert_eq!(month(&t.date_naive()), t.format("%Y-%m").to_string());
            assert_eq!(second(&t), t.format("%Y-%m-%d %H:%M:%S").to_string());
            assert_eq!(hms(&t), t.format("%H:%M:%S").to_string());
            assert_eq!(hm(&t), t.format("%H:%M").to_string());
        }
    }
}
