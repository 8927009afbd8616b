//! The sim's logical clock and its RFC 3339 rendering.
//!
//! Time is microseconds since the Unix epoch. The clock only moves when a
//! test moves it, so runs are reproducible: seeded records live in 2025 and
//! every later change happens at or after [`CLOCK_START`].

use std::time::Duration;

/// Microseconds since the Unix epoch.
pub(crate) type Micros = i64;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// 2025-01-01T00:00:00Z: seeded records are created and updated in 2025.
pub(crate) const SEED_YEAR_START: Micros = 1_735_689_600 * MICROS_PER_SECOND;
/// 2026-01-01T00:00:00Z.
pub(crate) const SEED_YEAR_END: Micros = 1_767_225_600 * MICROS_PER_SECOND;
/// Where the logical clock starts: after every seeded timestamp, so changes
/// made during a run always sort after the seeded data.
pub(crate) const CLOCK_START: Micros = SEED_YEAR_END;

/// Renders `micros` as RFC 3339 UTC with exactly six fractional digits,
/// e.g. `2025-03-04T05:06:07.123456Z`.
pub(crate) fn format_micros(micros: Micros) -> String {
    match jiff::Timestamp::from_microsecond(micros) {
        Ok(ts) => format!("{ts:.6}"),
        // Unreachable for clock values, which stay within a few years of 2025.
        Err(_) => String::from("1970-01-01T00:00:00.000000Z"),
    }
}

/// Parses an RFC 3339 timestamp (any offset) into microseconds, truncating
/// sub-microsecond digits.
pub(crate) fn parse_rfc3339(text: &str) -> Option<Micros> {
    let ts: jiff::Timestamp = text.parse().ok()?;
    Some(ts.as_microsecond())
}

/// A clock that hands out unique, strictly increasing change timestamps.
#[derive(Debug, Clone)]
pub(crate) struct LogicalClock {
    now: Micros,
    last_issued: Micros,
}

impl LogicalClock {
    /// A clock reading `now`, which has issued nothing after `last_issued`.
    pub(crate) fn new(now: Micros, last_issued: Micros) -> Self {
        Self { now, last_issued }
    }

    /// The timestamp for the next change: `max(now, last_issued + 1µs)`.
    pub(crate) fn issue(&mut self) -> Micros {
        let at = self.now.max(self.last_issued + 1);
        self.last_issued = at;
        at
    }

    /// Moves "now" forward; never backwards.
    pub(crate) fn advance(&mut self, by: Duration) {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.now = self.now.saturating_add(by);
    }

    /// The current reading.
    pub(crate) fn now(&self) -> Micros {
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_six_fractional_digits_in_utc() {
        assert_eq!(
            format_micros(SEED_YEAR_START),
            "2025-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            format_micros(SEED_YEAR_START + 5 * MICROS_PER_SECOND + 123_456),
            "2025-01-01T00:00:05.123456Z"
        );
    }

    #[test]
    fn parses_offsets_and_round_trips_the_format() {
        let t = SEED_YEAR_START + 7_654_321;
        assert_eq!(parse_rfc3339(&format_micros(t)), Some(t));
        assert_eq!(
            parse_rfc3339("2025-01-01T01:00:00+01:00"),
            Some(SEED_YEAR_START)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn issued_timestamps_are_unique_and_increasing() {
        let mut clock = LogicalClock::new(CLOCK_START, SEED_YEAR_END - 1);
        let a = clock.issue();
        let b = clock.issue();
        assert_eq!(a, CLOCK_START);
        assert_eq!(b, CLOCK_START + 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.issue(), CLOCK_START + MICROS_PER_SECOND);
        assert_eq!(clock.issue(), CLOCK_START + MICROS_PER_SECOND + 1);
    }
}
