//! Per-connection rate budgets: a partner credential's requests are paced
//! by a token bucket, a daily quota and a cap on concurrent requests, shared
//! by every flow using the connection; the partner's own signals (429/503
//! with `Retry-After`, `X-RateLimit-*`) slow it down further.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ids::ConnectionId;
use crate::unix_time::now_ms;

/// How fast a connection may send.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetConfig {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests that may be sent at once after a quiet spell. With 1 (the
    /// default) no second ever sees more than `per_second` requests.
    pub burst: u32,
    /// Requests per UTC day.
    pub daily_quota: Option<u64>,
    /// Requests in flight at once.
    pub max_concurrent: Option<u32>,
    /// The longest wait a partner may impose with `Retry-After`; longer
    /// demands are capped to this and reported.
    pub max_backoff: Duration,
}

/// How fast a connection without a configured rate may send: far above
/// what a healthy sync needs (a fast partner serves a few hundred pages a
/// second), low enough that a connector stuck in a loop cannot flood its
/// partner. `rate_limit.requests_per_second` replaces it.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 1_000.0;

/// The default ceiling's bucket: a second's worth, so that a healthy
/// sync's bursts never wait on a timer (whose resolution is a millisecond).
pub const DEFAULT_BURST: u32 = 1_000;

impl BudgetConfig {
    /// No pacing at all; a base for limiters that set their own rate.
    pub fn unlimited() -> Self {
        Self {
            per_second: f64::INFINITY,
            burst: 1,
            daily_quota: None,
            max_concurrent: None,
            max_backoff: Duration::from_secs(15 * 60),
        }
    }

    /// A connection without `rate_limit`: paced only by the default
    /// ceiling and by what the partner asks (`Retry-After`).
    pub fn default_ceiling() -> Self {
        Self {
            per_second: DEFAULT_REQUESTS_PER_SECOND,
            burst: DEFAULT_BURST,
            ..Self::unlimited()
        }
    }
}

/// What survives a restart, so a restart cannot burst past a quota.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetState {
    /// Tokens in the bucket at `at_ms`.
    pub tokens: f64,
    /// When `tokens` was measured, ms since the Unix epoch.
    pub at_ms: i64,
    /// The UTC day (days since the epoch) `used_today` counts.
    pub day: i64,
    /// Requests sent that day.
    pub used_today: u64,
    /// No request before this, ms since the Unix epoch (partner backoff).
    pub blocked_until_ms: i64,
    /// Fraction of `per_second` currently used, lowered by partner 429s.
    pub rate_factor: f64,
}

/// Why the budget refused to wait.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetExhausted {
    /// When trying again makes sense.
    pub retry_after: Duration,
    /// What ran out, for the guest and the operator.
    pub message: String,
}

/// Remaining budget after a request, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct BudgetLeft {
    /// Whole tokens left in the bucket (none when unlimited).
    pub tokens: Option<f64>,
    /// Requests left today (none without a daily quota).
    pub today: Option<u64>,
}

/// Lowest fraction of the configured rate adaptive backoff goes down to.
const MIN_RATE_FACTOR: f64 = 0.05;
/// How much of the configured rate comes back per quiet second.
const RECOVERY_PER_SECOND: f64 = 0.02;

/// One connection's budget.
pub struct RateBudget {
    config: BudgetConfig,
    state: Mutex<BudgetState>,
    concurrency: Option<Arc<Semaphore>>,
    last_penalty_ms: Mutex<i64>,
}

/// Held while a request is in flight.
pub struct BudgetPermit {
    _concurrency: Option<OwnedSemaphorePermit>,
}

const DAY_MS: i64 = 86_400_000;

impl RateBudget {
    /// A budget starting from a persisted state (or full, without one).
    pub fn new(config: BudgetConfig, restored: Option<BudgetState>) -> Self {
        let now = now_ms();
        let state = restored.unwrap_or(BudgetState {
            tokens: config.burst as f64,
            at_ms: now,
            day: now.div_euclid(DAY_MS),
            used_today: 0,
            blocked_until_ms: 0,
            rate_factor: 1.0,
        });
        Self {
            concurrency: config
                .max_concurrent
                .map(|n| Arc::new(Semaphore::new(n.max(1) as usize))),
            config,
            state: Mutex::new(state),
            last_penalty_ms: Mutex::new(0),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }

    /// The state to persist.
    pub fn snapshot(&self) -> BudgetState {
        let mut state = self.lock();
        self.refill(&mut state, now_ms());
        *state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rate(&self, state: &BudgetState) -> f64 {
        self.config.per_second * state.rate_factor
    }

    /// Brings the bucket, the day and the adaptive rate up to `now`.
    fn refill(&self, state: &mut BudgetState, now: i64) {
        let elapsed = (now - state.at_ms).max(0) as f64 / 1000.0;
        if self.config.per_second.is_finite() {
            state.tokens =
                (state.tokens + elapsed * self.rate(state)).min(self.config.burst as f64);
        }
        state.rate_factor = (state.rate_factor + elapsed * RECOVERY_PER_SECOND).min(1.0);
        state.at_ms = now.max(state.at_ms);
        let today = now.div_euclid(DAY_MS);
        if today != state.day {
            state.day = today;
            state.used_today = 0;
        }
    }

    /// Takes one request's worth of budget, waiting as long as needed if
    /// that ends before `deadline`; otherwise says how long to wait.
    /// A partner's `Retry-After` holds on every connection, paced or not.
    pub async fn acquire(&self, deadline: Instant) -> Result<BudgetPermit, BudgetExhausted> {
        loop {
            let (wait, blocked) = {
                let mut state = self.lock();
                let now = now_ms();
                self.refill(&mut state, now);
                match self.try_take(&mut state, now) {
                    Ok(()) => break,
                    Err(Refusal::Quota(until_next_day)) => {
                        return Err(BudgetExhausted {
                            retry_after: until_next_day,
                            message: format!(
                                "the daily quota of {} requests is spent; it renews at 00:00 UTC",
                                self.config.daily_quota.unwrap_or_default()
                            ),
                        });
                    }
                    Err(Refusal::Wait(wait)) => (wait, false),
                    Err(Refusal::Blocked(wait)) => (wait, true),
                }
            };
            if Instant::now() + wait > deadline {
                let message = if blocked {
                    format!(
                        "the partner asked this connection to send nothing until {} (`Retry-After`, capped by `rate_limit.max_backoff`)",
                        utc_after(wait)
                    )
                } else {
                    format!(
                        "the connection's rate budget needs a wait of {} ms, beyond the call's deadline",
                        wait.as_millis()
                    )
                };
                return Err(BudgetExhausted {
                    retry_after: wait,
                    message,
                });
            }
            tokio::time::sleep(wait).await;
        }
        let concurrency = match &self.concurrency {
            None => None,
            Some(semaphore) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, semaphore.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => Some(permit),
                    _ => {
                        return Err(BudgetExhausted {
                            retry_after: Duration::from_secs(1),
                            message: "every concurrent request slot of the connection stayed busy until the call's deadline".into(),
                        });
                    }
                }
            }
        };
        Ok(BudgetPermit {
            _concurrency: concurrency,
        })
    }

    /// Takes one request's worth of budget if it is there now; otherwise
    /// says how long until it would be. Never waits.
    pub fn try_acquire_now(&self) -> Result<(), Duration> {
        let mut state = self.lock();
        let now = now_ms();
        self.refill(&mut state, now);
        match self.try_take(&mut state, now) {
            Ok(()) => Ok(()),
            Err(Refusal::Wait(wait) | Refusal::Blocked(wait) | Refusal::Quota(wait)) => Err(wait),
        }
    }

    fn try_take(&self, state: &mut BudgetState, now: i64) -> Result<(), Refusal> {
        if let Some(quota) = self.config.daily_quota
            && state.used_today >= quota
        {
            let next_day = (state.day + 1) * DAY_MS;
            return Err(Refusal::Quota(Duration::from_millis(
                (next_day - now).max(0) as u64,
            )));
        }
        if state.blocked_until_ms > now {
            return Err(Refusal::Blocked(Duration::from_millis(
                (state.blocked_until_ms - now) as u64,
            )));
        }
        if self.config.per_second.is_finite() {
            if state.tokens < 1.0 {
                let missing = 1.0 - state.tokens;
                let secs = missing / self.rate(state).max(f64::MIN_POSITIVE);
                return Err(Refusal::Wait(
                    Duration::from_secs_f64(secs).max(Duration::from_millis(1)),
                ));
            }
            state.tokens -= 1.0;
        }
        state.used_today += 1;
        Ok(())
    }

    /// Learns from a partner response: 429/503 with `Retry-After` blocks the
    /// connection that long (capped) and halves the rate; `X-RateLimit-
    /// Remaining: 0` with a reset blocks until the reset. Returns the wait
    /// imposed, if any, and whether it was capped.
    pub fn observe(&self, status: u16, headers: &[(String, String)]) -> Option<(Duration, bool)> {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        };
        let now = now_ms();
        let demanded = if status == 429 || status == 503 {
            Some(
                header("retry-after")
                    .and_then(|v| parse_retry_after(v, crate::unix_time::now()))
                    .unwrap_or(Duration::from_secs(1)),
            )
        } else if header("x-ratelimit-remaining") == Some("0") {
            header("x-ratelimit-reset").and_then(|v| parse_reset(v, now))
        } else {
            None
        }?;
        let capped = demanded > self.config.max_backoff;
        let wait = demanded.min(self.config.max_backoff);
        let mut state = self.lock();
        self.refill(&mut state, now);
        state.blocked_until_ms = state.blocked_until_ms.max(now + wait.as_millis() as i64);
        if status == 429 || status == 503 {
            // Halve at most once per second: a burst of 429s is one signal.
            let mut last = self
                .last_penalty_ms
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if now - *last >= 1000 {
                state.rate_factor = (state.rate_factor / 2.0).max(MIN_RATE_FACTOR);
                state.tokens = state.tokens.min(0.0);
                *last = now;
            }
        }
        Some((wait, capped))
    }

    /// What is left, for the audit log.
    pub fn left(&self) -> BudgetLeft {
        let state = self.lock();
        BudgetLeft {
            tokens: self
                .config
                .per_second
                .is_finite()
                .then_some(state.tokens.max(0.0).floor()),
            today: self
                .config
                .daily_quota
                .map(|q| q.saturating_sub(state.used_today)),
        }
    }
}

enum Refusal {
    /// The bucket refills in this long.
    Wait(Duration),
    /// The partner asked to wait this long.
    Blocked(Duration),
    /// The daily quota renews in this long.
    Quota(Duration),
}

/// The UTC time `wait` from now, to the second, for messages.
pub fn utc_after(wait: Duration) -> String {
    let at = now_ms().saturating_add(wait.as_millis().min(i64::MAX as u128) as i64);
    jiff::Timestamp::from_second(at.div_euclid(1000)).map_or_else(
        |_| format!("{} ms from now", wait.as_millis()),
        |t| t.to_string(),
    )
}

/// `Retry-After` is either seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// `X-RateLimit-Reset` is seconds to wait, or a Unix timestamp in seconds.
fn parse_reset(value: &str, now_ms: i64) -> Option<Duration> {
    let n: i64 = value.parse().ok()?;
    let now_secs = now_ms / 1000;
    let secs = if n > 1_000_000_000 { n - now_secs } else { n };
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// Every connection's budget in this process, so flows sharing a
/// connection share its budget.
#[derive(Default)]
pub struct BudgetRegistry {
    budgets: Mutex<HashMap<ConnectionId, Arc<RateBudget>>>,
}

impl BudgetRegistry {
    /// The connection's budget, created on first use from `config` and the
    /// persisted state `restore` provides.
    pub fn get_or_create(
        &self,
        connection: &ConnectionId,
        config: &BudgetConfig,
        restore: impl FnOnce() -> Option<BudgetState>,
    ) -> Arc<RateBudget> {
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(budget) = budgets.get(connection)
            && budget.config() == config
        {
            return budget.clone();
        }
        let budget = Arc::new(RateBudget::new(config.clone(), restore()));
        budgets.insert(connection.clone(), budget.clone());
        budget
    }

    /// Every budget with its connection, to persist.
    pub fn all(&self) -> Vec<(ConnectionId, Arc<RateBudget>)> {
        self.budgets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(c, b)| (c.clone(), b.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(per_second: f64, burst: u32) -> BudgetConfig {
        BudgetConfig {
            per_second,
            burst,
            daily_quota: None,
            max_concurrent: None,
            max_backoff: Duration::from_secs(60),
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn the_bucket_paces_requests_after_the_burst() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let budget = RateBudget::new(config(50.0, 5), None);
        runtime.block_on(async {
            let start = Instant::now();
            // A deadline of now: granted only if a token is there already.
            for _ in 0..5 {
                budget
                    .acquire(Instant::now())
                    .await
                    .expect("the burst goes at once");
            }
            for _ in 0..10 {
                budget.acquire(far()).await.unwrap();
            }
            // However fast or slow the machine, no sooner than the rate.
            let paced = start.elapsed();
            assert!(
                paced >= Duration::from_millis(190),
                "10 more at 50/s take 200 ms: {paced:?}"
            );
        });
    }

    #[test]
    fn a_wait_beyond_the_deadline_is_refused_with_the_wait() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        // One a minute: the next token is far beyond the deadline, however
        // long this thread is kept from running between the two calls.
        let budget = RateBudget::new(config(1.0 / 60.0, 1), None);
        runtime.block_on(async {
            budget.acquire(far()).await.unwrap();
            let err = budget
                .acquire(Instant::now() + Duration::from_millis(100))
                .await
                .err()
                .expect("no token within 100 ms");
            assert!(err.retry_after > Duration::from_secs(30), "{err:?}");
            assert!(err.message.contains("beyond the call's deadline"));
        });
    }

    #[test]
    fn the_daily_quota_is_kept_across_a_restart() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut cfg = config(f64::INFINITY, 1);
        cfg.daily_quota = Some(3);
        let budget = RateBudget::new(cfg.clone(), None);
        runtime.block_on(async {
            for _ in 0..3 {
                budget.acquire(far()).await.unwrap();
            }
            let restarted = RateBudget::new(cfg, Some(budget.snapshot()));
            let err = restarted.acquire(far()).await.err().expect("quota spent");
            assert!(err.message.contains("daily quota of 3"));
            assert!(err.retry_after <= Duration::from_secs(86_400));
        });
        assert_eq!(budget.left().today, Some(0));
    }

    #[test]
    fn a_restart_does_not_refill_the_bucket() {
        let budget = RateBudget::new(config(1.0, 10), None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            for _ in 0..10 {
                budget.acquire(far()).await.unwrap();
            }
        });
        let restarted = RateBudget::new(config(1.0, 10), Some(budget.snapshot()));
        assert!(
            restarted.snapshot().tokens < 1.0,
            "no fresh burst after a restart"
        );
    }

    #[test]
    fn retry_after_blocks_and_halves_the_rate() {
        let budget = RateBudget::new(config(20.0, 1), None);
        let (wait, capped) = budget
            .observe(429, &[("Retry-After".into(), "2".into())])
            .unwrap();
        assert_eq!((wait, capped), (Duration::from_secs(2), false));
        let state = budget.snapshot();
        assert!(state.blocked_until_ms > now_ms() + 1500);
        assert!((state.rate_factor - 0.5).abs() < 0.01);
        let (wait, capped) = budget
            .observe(503, &[("retry-after".into(), "86400".into())])
            .unwrap();
        assert_eq!(
            (wait, capped),
            (Duration::from_secs(60), true),
            "capped at max_backoff"
        );
    }

    #[test]
    fn retry_after_holds_on_a_connection_without_rate_limit_and_across_a_restart() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let cfg = BudgetConfig::default_ceiling();
        let budget = RateBudget::new(cfg.clone(), None);
        let (wait, capped) = budget
            .observe(429, &[("retry-after".into(), "86400".into())])
            .unwrap();
        assert_eq!((wait, capped), (cfg.max_backoff, true));
        let soon = || Instant::now() + Duration::from_millis(50);
        runtime.block_on(async {
            let err = budget.acquire(soon()).await.err().expect("blocked");
            assert!(err.retry_after > Duration::from_secs(14 * 60), "{err:?}");
            assert!(err.message.contains("send nothing until"), "{err:?}");
            let restarted = RateBudget::new(cfg, Some(budget.snapshot()));
            assert!(
                restarted.acquire(soon()).await.is_err(),
                "a restart keeps the partner's wait"
            );
        });
    }

    #[test]
    fn the_default_ceiling_paces_a_connection_without_rate_limit() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let budget = RateBudget::new(BudgetConfig::default_ceiling(), None);
        runtime.block_on(async {
            let start = Instant::now();
            // The bucket's second's worth goes at once; the next 100 are
            // paced at 1,000/s.
            for _ in 0..DEFAULT_BURST + 100 {
                budget.acquire(far()).await.unwrap();
            }
            // The bucket counts whole milliseconds of the wall clock, a
            // token each, so the run can end up to a millisecond (and a
            // clock adjustment) short of 100 ms; unpaced it takes about 1.
            let took = start.elapsed();
            assert!(
                took >= Duration::from_millis(90),
                "100 requests after the burst at 1,000/s take about 100 ms: {took:?}"
            );
        });
    }

    #[test]
    fn rate_limit_headers_block_until_the_reset() {
        let budget = RateBudget::new(config(20.0, 1), None);
        let headers = [
            ("x-ratelimit-remaining".to_string(), "0".to_string()),
            ("x-ratelimit-reset".to_string(), "3".to_string()),
        ];
        assert_eq!(
            budget.observe(200, &headers),
            Some((Duration::from_secs(3), false))
        );
        assert_eq!(budget.observe(200, &[]), None);
        assert!(
            (budget.snapshot().rate_factor - 1.0).abs() < 0.01,
            "a 200 does not slow down"
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
