//! Timestamps as record versions and cursors.
//!
//! A record's version is a number that grows with every change. Partners
//! that have no revision counter usually have a last-modified timestamp;
//! [`rfc3339_micros`] turns it into microseconds since the Unix epoch, which
//! grow the same way. [`format_rfc3339_micros`] goes back, e.g. to send an
//! `updated_since` parameter.
//!
//! Written by hand (no clock, no time zone database): it only needs to read
//! and write fixed-offset RFC 3339 text.

use crate::{Error, Result};

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Converts an RFC 3339 timestamp to microseconds since the Unix epoch.
///
/// Accepts `YYYY-MM-DDTHH:MM:SS`, an optional fraction of any length (digits
/// past microseconds are dropped, not rounded, so versions never jump
/// ahead), and an offset `Z` or `±HH:MM`. `t`, `z` and a space in place of
/// `T` are accepted too. A leap second (`:60`) counts as `:59`. Times before
/// 1970 are an error, since versions are unsigned.
///
/// # Errors
///
/// [`Error::Permanent`] naming the text when it is not such a timestamp.
///
/// # Example
///
/// ```
/// use weir_sdk::time::rfc3339_micros;
///
/// assert_eq!(rfc3339_micros("1970-01-01T00:00:01Z"), Ok(1_000_000));
/// assert_eq!(rfc3339_micros("2024-02-29T12:34:56.789012Z"), Ok(1_709_210_096_789_012));
/// assert_eq!(rfc3339_micros("2024-02-29T13:34:56.789012+01:00"), Ok(1_709_210_096_789_012));
/// assert!(rfc3339_micros("yesterday").is_err());
/// ```
pub fn rfc3339_micros(text: &str) -> Result<u64> {
    parse_rfc3339(text.as_bytes())
        .and_then(|micros| u64::try_from(micros).ok())
        .ok_or_else(|| {
            Error::permanent(format!("`{text}` is not an RFC 3339 timestamp after 1970"))
        })
}

/// Formats microseconds since the Unix epoch as RFC 3339 in UTC with six
/// fraction digits, the inverse of [`rfc3339_micros`].
///
/// # Example
///
/// ```
/// use weir_sdk::time::format_rfc3339_micros;
///
/// assert_eq!(format_rfc3339_micros(1_709_210_096_789_012), "2024-02-29T12:34:56.789012Z");
/// assert_eq!(format_rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
/// ```
pub fn format_rfc3339_micros(micros: u64) -> String {
    // u64 microseconds reach year 586,912: the year may need more than four
    // digits, which RFC 3339 cannot express but which we print rather than
    // panic over.
    let micros = micros as i128;
    let seconds = (micros / MICROS_PER_SECOND as i128) as i64;
    let fraction = (micros % MICROS_PER_SECOND as i128) as i64;
    let (days, second_of_day) = (
        seconds.div_euclid(SECONDS_PER_DAY),
        seconds.rem_euclid(SECONDS_PER_DAY),
    );
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction:06}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    )
}

/// Microseconds since the epoch (negative before 1970), or `None`.
fn parse_rfc3339(text: &[u8]) -> Option<i64> {
    if text.len() < 20 {
        return None;
    }
    let year = digits(text, 0, 4)?;
    expect(text, 4, b'-')?;
    let month = digits(text, 5, 2)?;
    expect(text, 7, b'-')?;
    let day = digits(text, 8, 2)?;
    if !matches!(text[10], b'T' | b't' | b' ') {
        return None;
    }
    let hour = digits(text, 11, 2)?;
    expect(text, 13, b':')?;
    let minute = digits(text, 14, 2)?;
    expect(text, 16, b':')?;
    let second = digits(text, 17, 2)?;

    let mut at = 19;
    let mut fraction_micros = 0;
    if text.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while text.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 6 {
                fraction_micros = fraction_micros * 10 + i64::from(text[at] - b'0');
            }
            at += 1;
        }
        let count = at - start;
        if count == 0 {
            return None;
        }
        for _ in count..6 {
            fraction_micros *= 10;
        }
    }

    let offset_seconds = match text.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if text.len() == at + 6 => {
            let hours = digits(text, at + 1, 2)?;
            expect(text, at + 3, b':')?;
            let minutes = digits(text, at + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };

    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let second = second.min(59);
    let days = days_from_civil(year, month, day);
    let seconds = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * MICROS_PER_SECOND + fraction_micros)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the preferred
/// HTTP date format, into seconds since the epoch.
pub(crate) fn http_date_seconds(text: &str) -> Option<i64> {
    let text = text.trim().as_bytes();
    if text.len() != 29 || &text[3..5] != b", " || &text[25..] != b" GMT" {
        return None;
    }
    let day = digits(text, 5, 2)?;
    expect(text, 7, b' ')?;
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let month = MONTHS.iter().position(|name| *name == &text[8..11])? as i64 + 1;
    expect(text, 11, b' ')?;
    let year = digits(text, 12, 4)?;
    expect(text, 16, b' ')?;
    let hour = digits(text, 17, 2)?;
    expect(text, 19, b':')?;
    let minute = digits(text, 20, 2)?;
    expect(text, 22, b':')?;
    let second = digits(text, 23, 2)?;
    if day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(
        days_from_civil(year, month, day) * SECONDS_PER_DAY
            + hour * 3600
            + minute * 60
            + second.min(59),
    )
}

fn digits(text: &[u8], start: usize, count: usize) -> Option<i64> {
    let slice = text.get(start..start + count)?;
    slice.iter().try_fold(0, |value, byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + i64::from(byte - b'0'))
    })
}

fn expect(text: &[u8], at: usize, byte: u8) -> Option<()> {
    (text.get(at) == Some(&byte)).then_some(())
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        // Expected values computed with Python's `datetime`.
        for (text, micros) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2024-02-29T12:34:56.789012Z", 1_709_210_096_789_012),
            ("2000-03-01T00:00:00+01:00", 951_865_200_000_000),
            ("1999-12-31T23:59:59.999999-08:00", 946_713_599_999_999),
            ("2100-02-28T23:59:59Z", 4_107_542_399_000_000),
            ("2026-01-15T08:30:00.5Z", 1_768_465_800_500_000),
            ("9999-12-31T23:59:59.999999Z", 253_402_300_799_999_999),
            ("2026-01-15t08:30:00.5z", 1_768_465_800_500_000),
            ("2026-01-15 08:30:00.5Z", 1_768_465_800_500_000),
        ] {
            assert_eq!(rfc3339_micros(text), Ok(micros), "{text}");
        }
    }

    #[test]
    fn long_fractions_are_truncated_not_rounded() {
        assert_eq!(
            rfc3339_micros("1970-01-01T00:00:00.123456999Z"),
            Ok(123_456)
        );
        assert_eq!(rfc3339_micros("1970-01-01T00:00:00.1Z"), Ok(100_000));
    }

    #[test]
    fn leap_second_counts_as_the_second_before() {
        assert_eq!(
            rfc3339_micros("2016-12-31T23:59:60Z"),
            rfc3339_micros("2016-12-31T23:59:59Z")
        );
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for text in [
            "",
            "2024-02-29",
            "2024-02-29T12:34:56",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0100",
            "2024-01-01T00:00:00+01:00:00",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00Zjunk",
            "2024-01-01X00:00:00Z",
            "+024-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",
        ] {
            assert!(rfc3339_micros(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for micros in [
            0,
            1,
            951_865_200_000_000,
            1_709_210_096_789_012,
            253_402_300_799_999_999,
        ] {
            assert_eq!(rfc3339_micros(&format_rfc3339_micros(micros)), Ok(micros));
        }
    }

    #[test]
    fn civil_dates_round_trip_across_four_centuries() {
        for days in -1_000..146_097 * 2 {
            let (year, month, day) = civil_from_days(days);
            assert!(day >= 1 && day <= days_in_month(year, month));
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn http_dates_parse_imf_fixdate_only() {
        assert_eq!(
            http_date_seconds("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(http_date_seconds("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(http_date_seconds("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(http_date_seconds("120"), None);
    }
}
