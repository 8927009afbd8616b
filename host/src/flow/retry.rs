use std::time::{Duration, Instant};

use crate::call::CallError;
use crate::contract::ConnectorError;

/// When a failed call is tried again, and when a run pauses instead.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts for transient failures, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubles each time, with jitter.
    pub base_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
    /// A rate limit asking to wait longer than this pauses the run.
    pub max_rate_limit_wait: Duration,
    /// How many rate-limit waits one call may sit through.
    pub max_rate_limit_waits: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(60),
            max_rate_limit_waits: 20,
        }
    }
}

impl RetryPolicy {
    /// Never tries again nor waits out a rate limit: for callers that
    /// retry on their own terms (the webhook inbox).
    pub fn none() -> Self {
        Self {
            attempts: 1,
            max_rate_limit_waits: 0,
            ..Self::default()
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait, then try again.
    RetryAfter(Duration),
    /// Give up: the run pauses at its last checkpoint (rate limited).
    Pause,
    /// Give up: the run fails at its last checkpoint.
    Fail,
}

/// Counts attempts of one call. With a window (the connection's
/// `call_timeout`), every retry of a transient failure starts and ends
/// within it, counted from the first attempt: retries share the call's
/// deadline instead of multiplying it. A rate-limit wait starts the window
/// again after the wait.
#[derive(Debug, Default)]
pub struct Attempts {
    failures: u32,
    rate_limit_waits: u32,
    window: Option<(Instant, Duration)>,
}

impl Attempts {
    /// Attempts whose retries fit in `window` from now.
    pub fn within(window: Duration) -> Self {
        Self {
            window: Some((Instant::now(), window)),
            ..Self::default()
        }
    }

    /// When the attempt about to start must end, if there is a window.
    pub fn deadline(&self) -> Option<Instant> {
        self.window.map(|(start, window)| start + window)
    }

    fn fits(&self, delay: Duration) -> bool {
        self.deadline()
            .is_none_or(|deadline| Instant::now() + delay < deadline)
    }
}

impl RetryPolicy {
    /// Decides after a failure; `attempts` tracks this call's history.
    pub fn next(&self, error: &CallError, attempts: &mut Attempts) -> Next {
        match error.connector_error() {
            Some(ConnectorError::RateLimited { retry_after, .. }) => {
                attempts.rate_limit_waits += 1;
                if *retry_after <= self.max_rate_limit_wait
                    && attempts.rate_limit_waits <= self.max_rate_limit_waits
                {
                    if let Some((start, _)) = &mut attempts.window {
                        *start = Instant::now() + *retry_after;
                    }
                    Next::RetryAfter(*retry_after)
                } else {
                    Next::Pause
                }
            }
            Some(ConnectorError::Transient(_)) => {
                attempts.failures += 1;
                let delay = self.backoff(attempts.failures);
                if attempts.failures < self.attempts && attempts.fits(delay) {
                    Next::RetryAfter(delay)
                } else {
                    Next::Fail
                }
            }
            _ => Next::Fail,
        }
    }

    /// Exponential backoff with full jitter in the upper half, so that many
    /// flows failing together do not retry together.
    fn backoff(&self, failures: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1 << failures.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(e: ConnectorError) -> CallError {
        CallError::Connector {
            plugin: "p".into(),
            error: e,
            denial: None,
            hint: None,
        }
    }

    #[test]
    fn transient_failures_back_off_then_fail() {
        let policy = RetryPolicy::default();
        let mut attempts = Attempts::default();
        let e = error(ConnectorError::Transient("503".into()));
        let mut delays = vec![];
        while let Next::RetryAfter(d) = policy.next(&e, &mut attempts) {
            delays.push(d);
        }
        assert_eq!(delays.len(), 3);
        assert!(delays[0] >= Duration::from_millis(250) && delays[0] <= Duration::from_millis(500));
        assert!(delays[2] >= Duration::from_secs(1) && delays[2] <= Duration::from_secs(2));
    }

    #[test]
    fn transient_retries_fit_in_the_window_of_the_first_attempt() {
        let policy = RetryPolicy::default();
        let e = error(ConnectorError::Transient("no response".into()));
        let mut spent = Attempts::within(Duration::from_millis(200));
        assert_eq!(
            policy.next(&e, &mut spent),
            Next::Fail,
            "a retry after 250 ms or more does not fit in 200 ms"
        );
        let mut roomy = Attempts::within(Duration::from_secs(60));
        assert!(matches!(policy.next(&e, &mut roomy), Next::RetryAfter(_)));
        let rate_limited = error(ConnectorError::RateLimited {
            retry_after: Duration::from_secs(1),
            message: "slow down".into(),
        });
        let before = roomy.deadline().unwrap();
        policy.next(&rate_limited, &mut roomy);
        assert!(
            roomy.deadline().unwrap() > before,
            "a rate-limit wait starts the window again after it"
        );
    }

    #[test]
    fn long_rate_limits_pause_and_others_fail_at_once() {
        let policy = RetryPolicy::default();
        let long = error(ConnectorError::RateLimited {
            retry_after: Duration::from_secs(3600),
            message: "quota".into(),
        });
        assert_eq!(policy.next(&long, &mut Attempts::default()), Next::Pause);
        let short = error(ConnectorError::RateLimited {
            retry_after: Duration::from_secs(1),
            message: "slow down".into(),
        });
        assert_eq!(
            policy.next(&short, &mut Attempts::default()),
            Next::RetryAfter(Duration::from_secs(1))
        );
        let auth = error(ConnectorError::Auth("401".into()));
        assert_eq!(policy.next(&auth, &mut Attempts::default()), Next::Fail);
    }
}
