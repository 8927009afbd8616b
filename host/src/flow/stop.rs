//! Why a run ends before its feed runs dry, the same for every feed.

use std::time::Duration;

use super::bounds::Overrun;
use super::destination::Undelivered;
use crate::call::CallError;
use crate::contract::ConnectorError;
use crate::diagnostic::{Diagnose, Diagnostic};
use crate::store::StoreError;

/// Why a run stopped early.
pub(super) enum Stop {
    /// Retrying will not help; the run fails at its last committed batch.
    Failed(Diagnostic),
    /// The partner asks to wait (for this long, when it says).
    Paused(Diagnostic, Option<Duration>),
    /// A shutdown ended it at its last committed batch.
    Cancelled,
    /// The store failed.
    Store(StoreError),
}

impl Stop {
    /// A call failed in a way the retry policy gave up on by pausing.
    pub fn paused(error: &CallError) -> Self {
        let wait = match error.connector_error() {
            Some(ConnectorError::RateLimited { retry_after, .. }) => Some(*retry_after),
            _ => None,
        };
        Stop::Paused(error.diagnostic(), wait)
    }
}

impl From<Overrun> for Stop {
    fn from(overrun: Overrun) -> Self {
        match overrun {
            Overrun::Shutdown => Stop::Cancelled,
            Overrun::Deadline(diagnostic) => Stop::Failed(diagnostic),
        }
    }
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Stop::Store(error)
    }
}

impl From<Undelivered> for Stop {
    fn from(error: Undelivered) -> Self {
        match error {
            Undelivered::Store(error) => Stop::Store(error),
            Undelivered::Pause(error) => Stop::paused(&error),
            Undelivered::Fail(error) => Stop::Failed(error.diagnostic()),
        }
    }
}

impl From<CallError> for Stop {
    fn from(error: CallError) -> Self {
        match error.connector_error() {
            Some(ConnectorError::RateLimited { .. }) => Stop::paused(&error),
            _ => Stop::Failed(error.diagnostic()),
        }
    }
}
