//! A token bucket over all `/v1` requests, like a partner's per-key quota.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// A request quota: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Tokens added per second. Values below 0.001 are treated as 0.001.
    pub per_second: f64,
    /// Bucket size: requests allowed back to back. At least 1.
    pub burst: u32,
}

impl RateLimit {
    /// `per_second` requests per second, with a burst of one second's worth.
    pub fn per_second(per_second: f64) -> Self {
        Self {
            per_second,
            burst: per_second.ceil().max(1.0) as u32,
        }
    }

    fn sanitized(self) -> Self {
        Self {
            per_second: self.per_second.max(0.001),
            burst: self.burst.max(1),
        }
    }
}

/// The limiter's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// No limit configured.
    Unlimited,
    /// Go ahead; `remaining` whole tokens are left.
    Allowed { limit: u32, remaining: u32 },
    /// Refused: retry in `retry_after` seconds; the bucket is full again in `reset`.
    Limited {
        limit: u32,
        retry_after: u64,
        reset: u64,
    },
}

/// The shared bucket; `None` when requests are not limited.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    bucket: Mutex<Option<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    refilled_at: Instant,
}

impl RateLimiter {
    /// Replaces the limit; a new limit starts with a full bucket.
    pub(crate) fn set(&self, limit: Option<RateLimit>, now: Instant) {
        let bucket = limit.map(|limit| {
            let limit = limit.sanitized();
            Bucket {
                limit,
                tokens: f64::from(limit.burst),
                refilled_at: now,
            }
        });
        *self.bucket.lock().unwrap_or_else(PoisonError::into_inner) = bucket;
    }

    /// Takes a token for a request arriving at `now`, if one is left.
    pub(crate) fn check(&self, now: Instant) -> Verdict {
        let mut guard = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(bucket) = guard.as_mut() else {
            return Verdict::Unlimited;
        };
        let RateLimit { per_second, burst } = bucket.limit;
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(f64::from(burst));
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Verdict::Allowed {
                limit: burst,
                remaining: bucket.tokens.floor() as u32,
            }
        } else {
            let seconds = |tokens: f64| ((tokens / per_second).ceil() as u64).max(1);
            Verdict::Limited {
                limit: burst,
                retry_after: seconds(1.0 - bucket.tokens),
                reset: seconds(f64::from(burst) - bucket.tokens),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unlimited_until_a_limit_is_set() {
        let limiter = RateLimiter::default();
        assert_eq!(limiter.check(Instant::now()), Verdict::Unlimited);
    }

    #[test]
    fn burst_then_refusal_then_refill() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        limiter.set(
            Some(RateLimit {
                per_second: 2.0,
                burst: 3,
            }),
            t0,
        );
        let remaining: Vec<_> = (0..3)
            .map(|_| match limiter.check(t0) {
                Verdict::Allowed { remaining, .. } => remaining,
                other => panic!("expected allowed, got {other:?}"),
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        assert_eq!(
            limiter.check(t0),
            Verdict::Limited {
                limit: 3,
                retry_after: 1,
                reset: 2
            }
        );
        assert!(matches!(
            limiter.check(t0 + Duration::from_millis(500)),
            Verdict::Allowed { remaining: 0, .. }
        ));
    }

    #[test]
    fn slow_limits_ask_for_longer_waits() {
        let limiter = RateLimiter::default();
        let t0 = Instant::now();
        limiter.set(
            Some(RateLimit {
                per_second: 0.1,
                burst: 1,
            }),
            t0,
        );
        limiter.check(t0);
        assert!(matches!(
            limiter.check(t0),
            Verdict::Limited {
                retry_after: 10,
                ..
            }
        ));
    }
}
