//! Time as Weir stores and reports it: wall-clock milliseconds since the
//! Unix epoch, and durations the way operators read them. Deadlines use
//! `Instant` instead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, by the wall clock.
#[expect(
    clippy::disallowed_methods,
    reason = "the one place the wall clock is read"
)]
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// Now, in ms since the Unix epoch (0 on a clock set before 1970).
pub fn now_ms() -> i64 {
    now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `1.5 s`, `2 min 3 s`: durations the way operators read them.
pub fn humanize_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", duration.as_secs_f64())
    } else {
        let secs = duration.as_secs();
        format!("{} min {} s", secs / 60, secs % 60)
    }
}
