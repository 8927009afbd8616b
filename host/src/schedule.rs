//! When a flow runs: `every 15m`, or a cron expression (`0 9 * * 1-5`,
//! optionally `in Europe/Paris`), with a stable per-flow jitter so that many
//! tenants on one schedule do not all fire at the same instant.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use croner::Cron;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A parsed schedule.
#[derive(Clone)]
pub enum Schedule {
    /// A fixed interval.
    Every(Duration),
    /// A cron expression in a time zone.
    Cron {
        /// The expression as written.
        text: String,
        /// Parsed.
        cron: Box<Cron>,
        /// Where its hours are read.
        zone: TimeZone,
    },
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({self})")
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Every(d) => write!(f, "every {}", humantime::format_duration(*d)),
            Self::Cron { text, .. } => f.write_str(text),
        }
    }
}

/// Shortest interval: anything faster is a misconfiguration, not a schedule.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

impl FromStr for Schedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(interval) = text.strip_prefix("every ") {
            let interval = humantime::parse_duration(interval.trim()).map_err(|e| {
                format!("`{text}`: `{interval}` is not a duration like `15m` or `1h 30m`: {e}")
            })?;
            if interval < MIN_INTERVAL {
                return Err(format!("`{text}`: the shortest interval is 1s"));
            }
            return Ok(Self::Every(interval));
        }
        let (expression, zone) = match text.split_once(" in ") {
            Some((expression, zone)) => (
                expression,
                TimeZone::get(zone.trim())
                    .map_err(|e| format!("`{text}`: unknown time zone `{zone}`: {e}"))?,
            ),
            None => (text, TimeZone::UTC),
        };
        let cron = Cron::from_str(expression).map_err(|e| {
            format!("`{text}` is neither `every <duration>` nor a cron expression like `0 9 * * 1-5`: {e}")
        })?;
        Ok(Self::Cron {
            text: text.to_string(),
            cron: Box::new(cron),
            zone,
        })
    }
}

impl Schedule {
    /// The next time to run after `after`, jitter not included.
    pub fn next_after(&self, after: Timestamp) -> Timestamp {
        match self {
            Self::Every(interval) => {
                after
                    + jiff::SignedDuration::try_from(*interval).unwrap_or(jiff::SignedDuration::MAX)
            }
            Self::Cron { cron, zone, .. } => cron
                .find_next_occurrence(&after.to_zoned(zone.clone()), false)
                .map(|z| z.timestamp())
                // A pattern that never matches again (Feb 30th) never runs.
                .unwrap_or(Timestamp::MAX),
        }
    }

    /// A stable offset for one (tenant, flow), at most a tenth of the
    /// interval and at most a minute, spreading tenants over time.
    pub fn jitter(&self, key: &str) -> Duration {
        let span = match self {
            Self::Every(interval) => *interval / 10,
            Self::Cron { .. } => Duration::from_secs(60),
        }
        .min(Duration::from_secs(60));
        if span.is_zero() {
            return Duration::ZERO;
        }
        // FNV-1a: stable across runs and versions, unlike `DefaultHasher`.
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        Duration::from_millis(hash % span.as_millis().max(1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn intervals_add_up() {
        let s: Schedule = "every 15m".parse().unwrap();
        assert_eq!(
            s.next_after(at("2026-01-01T00:00:00Z")),
            at("2026-01-01T00:15:00Z")
        );
        assert_eq!(s.to_string(), "every 15m");
    }

    #[test]
    fn cron_expressions_follow_their_time_zone() {
        let s: Schedule = "0 9 * * 1-5 in Europe/Paris".parse().unwrap();
        // Friday 2026-01-02 10:00 Paris -> next is Monday 09:00 Paris (08:00 UTC).
        assert_eq!(
            s.next_after(at("2026-01-02T09:00:00Z")),
            at("2026-01-05T08:00:00Z")
        );
        let utc: Schedule = "*/5 * * * *".parse().unwrap();
        assert_eq!(
            utc.next_after(at("2026-01-01T00:01:00Z")),
            at("2026-01-01T00:05:00Z")
        );
    }

    #[test]
    fn bad_schedules_say_what_is_expected() {
        for (bad, words) in [
            ("every soon", "not a duration"),
            ("every 10ms", "shortest interval"),
            (
                "hourly-ish",
                "neither `every <duration>` nor a cron expression",
            ),
            ("0 9 * * * in Mars/Olympus", "unknown time zone"),
        ] {
            let err = bad.parse::<Schedule>().unwrap_err();
            assert!(err.contains(words), "{bad}: {err}");
        }
    }

    #[test]
    fn jitter_is_stable_bounded_and_spread() {
        let s: Schedule = "every 10m".parse().unwrap();
        let a = s.jitter("t1.contacts");
        assert_eq!(a, s.jitter("t1.contacts"));
        assert!(a < Duration::from_secs(60));
        let distinct: std::collections::HashSet<_> = (0..50)
            .map(|i| s.jitter(&format!("t{i}.contacts")))
            .collect();
        assert!(distinct.len() > 40, "50 tenants spread over the minute");
    }
}
