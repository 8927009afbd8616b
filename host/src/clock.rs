//! Where the host's wall-clock time comes from: the system clock, or a
//! manual one that tests move forward instead of sleeping. One clock is
//! handed to the store and the inbox, so what they record agrees.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Wall-clock time in ms since the Unix epoch, as stored: checkpoints,
/// runs, records, inbox receipts, leases and retention.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that stands at `now_ms` until [`Clock::advance`] moves it.
    pub fn manual(now_ms: i64) -> Self {
        Self(Some(Arc::new(AtomicI64::new(now_ms))))
    }

    /// Moves a manual clock (and its clones) forward; does nothing to the
    /// system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(now) = &self.0 {
            let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            now.fetch_add(by, Ordering::Relaxed);
        }
    }

    /// The time, ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            Some(now) => now.load(Ordering::Relaxed),
            None => crate::unix_time::now_ms(),
        }
    }
}
