//! Times and dates as the models read them, by hand: chrono's own `Deserialize` goes through
//! its general format parser, about 20 KB of WASM in every page that shows a time. Every
//! `DateTime<Utc>` field of a model names [`utc`] (or [`option_utc`]), every `NaiveDate` one
//! [`date`]; they read what chrono writes (`2026-11-26T21:05:09.123Z`, `2026-11-26`) and any
//! RFC 3339 offset, and serialize as before (chrono's `Serialize` is untouched).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Deserializer, de};

/// Why a time did not read.
const INVALID: &str = "an RFC 3339 time such as 2026-11-26T21:05:09Z";

/// Reads `2026-11-26T21:05:09[.fraction](Z|±hh:mm)` (`t`, `z` and a space separator too).
pub fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let day = date_of(&b[..10])?;
    let (hour, minute, second) = (number(b, 11, 13)?, number(b, 14, 16)?, number(b, 17, 19)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0;
    if let Some((b'.', fraction)) = rest.split_first() {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for (i, &c) in fraction[..digits].iter().enumerate() {
            if i < 9 {
                nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
            }
        }
        rest = &fraction[digits..];
    }
    let offset_secs = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let secs = number(rest, 1, 3)? * 3600 + number(rest, 4, 6)? * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let time = NaiveTime::from_hms_nano_opt(hour as u32, minute as u32, second as u32, nanos)?;
    let offset = FixedOffset::east_opt(offset_secs)?;
    NaiveDateTime::new(day, time)
        .and_local_timezone(offset)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// Reads `2026-11-26`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    date_of(text.as_bytes())
}

/// The date in `b`, exactly `yyyy-mm-dd`.
fn date_of(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(
        number(b, 0, 4)?,
        number(b, 5, 7)? as u32,
        number(b, 8, 10)? as u32,
    )
}

/// The decimal number in `b[from..to]`, digits only.
fn number(b: &[u8], from: usize, to: usize) -> Option<i32> {
    b.get(from..to)?.iter().try_fold(0, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + i32::from(c - b'0'))
    })
}

/// `#[serde(deserialize_with = "…::utc")]` for a `DateTime<Utc>`.
pub fn utc<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_utc(&text).ok_or_else(|| de::Error::invalid_value(de::Unexpected::Str(&text), &INVALID))
}

/// `#[serde(default, deserialize_with = "…::option_utc")]` for an `Option<DateTime<Utc>>`.
pub fn option_utc<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) => parse_utc(&text)
            .map(Some)
            .ok_or_else(|| de::Error::invalid_value(de::Unexpected::Str(&text), &INVALID)),
    }
}

/// `#[serde(deserialize_with = "…::date")]` for a `NaiveDate`.
pub fn date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_date(&text).ok_or_else(|| {
        de::Error::invalid_value(de::Unexpected::Str(&text), &"a date such as 2026-11-26")
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn what_chrono_writes_reads_back_the_same() {
        let base = Utc.with_ymd_and_hms(2026, 11, 26, 21, 5, 9).unwrap();
        for t in [
            base,
            base + Duration::milliseconds(123),
            base + Duration::nanoseconds(1),
            base + Duration::microseconds(999_999),
            Utc.with_ymd_and_hms(2024, 2, 29, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1, 1, 1, 23, 59, 59).unwrap(),
        ] {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(parse_utc(json.trim_matches('"')), Some(t), "{json}");
            assert_eq!(parse_utc(&t.to_rfc3339()), Some(t));
            let day = t.date_naive();
            assert_eq!(
                parse_date(serde_json::to_string(&day).unwrap().trim_matches('"')),
                Some(day)
            );
        }
    }

    #[test]
    fn an_offset_is_applied_and_chronos_relaxed_forms_are_read() {
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 21, 5, 9).unwrap();
        for text in [
            "2026-11-26T22:35:09+01:30",
            "2026-11-26T19:05:09-02:00",
            "2026-11-26t21:05:09z",
            "2026-11-26 21:05:09Z",
        ] {
            assert_eq!(parse_utc(text), Some(t), "{text}");
            assert_eq!(
                text.parse::<DateTime<Utc>>().ok(),
                Some(t),
                "chrono agrees on {text}"
            );
        }
    }

    #[test]
    fn what_is_not_a_time_is_refused() {
        for text in [
            "",
            "2026-11-26",
            "2026-11-26T21:05:09",
            "2026-11-26T21:05:09.Z",
            "2026-13-26T21:05:09Z",
            "2026-02-30T21:05:09Z",
            "2026-11-26T24:05:09Z",
            "2026-11-26T21:05:09+0100",
            "2026-11-26T21:05:09Zjunk",
            "2026-11-26X21:05:09Z",
            "+2026-11-26T21:05:09Z",
            "２026-11-26T21:05:09Z",
        ] {
            assert_eq!(parse_utc(text), None, "{text}");
        }
        for text in ["2026-11-31", "2026-1-26", "26-11-2026", "2026/11/26"] {
            assert_eq!(parse_date(text), None, "{text}");
        }
    }

    #[test]
    fn a_model_reads_its_times_through_these_and_names_a_bad_one() {
        let progress: crate::models::JobProgress = crate::json::from_slice(
            br#"[{"step":"hetzner_create","state":"done","started_at":"2026-11-26T21:05:09Z"}]"#,
        )
        .unwrap();
        assert_eq!(progress.steps()[0].finished_at, None);
        let err = crate::json::from_slice::<crate::models::JobProgress>(
            br#"[{"step":"hetzner_create","state":"done","started_at":"yesterday"}]"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"yesterday\", expected an RFC 3339 time"),
            "{err}"
        );
    }

    #[test]
    fn every_time_field_of_a_model_is_read_through_these() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/models");
        let mut fields = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let source = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = source.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let field = line.trim();
                let helper = if field.ends_with(": Option<DateTime<Utc>>,") {
                    "option_utc"
                } else if field.ends_with(": DateTime<Utc>,") {
                    "utc"
                } else if field.ends_with(": NaiveDate,") {
                    "date"
                } else {
                    continue;
                };
                if !field.starts_with("pub ") {
                    continue;
                }
                fields += 1;
                let attribute = lines[..i]
                    .iter()
                    .rev()
                    .find(|l| !l.trim().starts_with("///"));
                assert!(
                    attribute.is_some_and(|a| a.contains(&format!("rfc3339::{helper}\""))),
                    "{}:{}: `{field}` needs #[serde(deserialize_with = \"super::rfc3339::{helper}\")]",
                    path.display(),
                    i + 1
                );
            }
        }
        assert!(fields > 30, "the scan found only {fields} time fields");
    }
}
