//! What the inbox counts, in memory and lock-free: answers by kind, ack
//! latency over a recent window, commit batch sizes and depth.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Ack, Refusal};

/// How an operation changed the number of deliveries pending or
/// processing: by a delta, or to a count taken inside the commit (which
/// also corrects any drift, e.g. after another process retried deliveries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepthChange {
    /// Changed by this many.
    By(i64),
    /// Is now this many.
    To(i64),
}

impl DepthChange {
    /// This change followed by `next`, in commit order.
    pub fn then(self, next: DepthChange) -> DepthChange {
        match (self, next) {
            (DepthChange::By(a), DepthChange::By(b)) => DepthChange::By(a + b),
            (DepthChange::To(a), DepthChange::By(b)) => DepthChange::To(a + b),
            (_, to @ DepthChange::To(_)) => to,
        }
    }
}

impl From<i64> for DepthChange {
    fn from(delta: i64) -> Self {
        DepthChange::By(delta)
    }
}

/// A snapshot of the inbox's counters since it was opened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxMetrics {
    /// Deliveries stored and acknowledged.
    pub accepted: u64,
    /// Deliveries acknowledged as duplicates of stored ones.
    pub duplicates: u64,
    /// Deliveries refused, by reason.
    pub refused: Refusals,
    /// Time from `submit` to the acknowledgement, over the last one to two
    /// minutes.
    pub ack_latency: AckLatency,
    /// Deliveries per commit.
    pub batches: BatchSizes,
    /// Deliveries pending or processing.
    pub depth: u64,
}

/// Refused deliveries by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Refusals {
    /// The queue was full.
    pub queue_full: u64,
    /// SQLite failed.
    pub storage: u64,
    /// No commit within the deadline.
    pub deadline: u64,
    /// The inbox was shutting down.
    pub closed: u64,
}

/// Acknowledgement latency percentiles, in µs (within ~3%).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AckLatency {
    /// Acknowledgements measured.
    pub count: u64,
    /// The median.
    pub p50_us: u64,
    /// The 99th percentile.
    pub p99_us: u64,
    /// The slowest.
    pub max_us: u64,
}

/// How many deliveries each commit carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BatchSizes {
    /// Commits that carried deliveries.
    pub commits: u64,
    /// Deliveries per commit, on average.
    pub mean: f64,
    /// The largest commit.
    pub max: u64,
}

pub(super) struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    queue_full: AtomicU64,
    storage: AtomicU64,
    deadline: AtomicU64,
    closed: AtomicU64,
    commits: AtomicU64,
    committed: AtomicU64,
    max_batch: AtomicU64,
    depth: AtomicI64,
    latency: WindowedHistogram,
}

impl Metrics {
    pub fn new(depth: u64) -> Self {
        Self {
            accepted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            queue_full: AtomicU64::new(0),
            storage: AtomicU64::new(0),
            deadline: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            max_batch: AtomicU64::new(0),
            depth: AtomicI64::new(i64::try_from(depth).unwrap_or(i64::MAX)),
            latency: WindowedHistogram::new(LATENCY_WINDOW),
        }
    }

    /// Counts what a caller of `submit` was answered.
    pub fn record_answer(&self, outcome: &Result<Ack, Refusal>, latency: Duration) {
        let counter = match outcome {
            Ok(Ack::Stored { .. }) => &self.accepted,
            Ok(Ack::Duplicate { .. }) => &self.duplicates,
            Err(Refusal::QueueFull) => &self.queue_full,
            Err(Refusal::Storage(_)) => &self.storage,
            Err(Refusal::Deadline) => &self.deadline,
            Err(Refusal::Closed) => &self.closed,
        };
        counter.fetch_add(1, Relaxed);
        if outcome.is_ok() {
            self.latency.record(latency);
        }
    }

    /// Counts a successful commit of `deliveries` that changed the depth.
    pub fn record_commit(&self, deliveries: usize, depth: DepthChange) {
        if deliveries > 0 {
            self.commits.fetch_add(1, Relaxed);
            self.committed.fetch_add(deliveries as u64, Relaxed);
            self.max_batch.fetch_max(deliveries as u64, Relaxed);
        }
        match depth {
            DepthChange::By(delta) => {
                self.depth.fetch_add(delta, Relaxed);
            }
            DepthChange::To(depth) => self.depth.store(depth, Relaxed),
        }
    }

    pub fn depth(&self) -> u64 {
        self.depth.load(Relaxed).max(0) as u64
    }

    pub fn snapshot(&self) -> InboxMetrics {
        let commits = self.commits.load(Relaxed);
        let committed = self.committed.load(Relaxed);
        InboxMetrics {
            accepted: self.accepted.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            refused: Refusals {
                queue_full: self.queue_full.load(Relaxed),
                storage: self.storage.load(Relaxed),
                deadline: self.deadline.load(Relaxed),
                closed: self.closed.load(Relaxed),
            },
            ack_latency: self.latency.summary(),
            batches: BatchSizes {
                commits,
                mean: if commits == 0 {
                    0.0
                } else {
                    committed as f64 / commits as f64
                },
                max: self.max_batch.load(Relaxed),
            },
            depth: self.depth(),
        }
    }
}

/// Latency percentiles cover the current window and the one before it.
const LATENCY_WINDOW: Duration = Duration::from_secs(60);

/// Two histograms taking turns: each covers one window and is cleared when
/// its turn comes again, so percentiles reflect the last one to two windows
/// and recording stays one atomic add.
struct WindowedHistogram {
    started: Instant,
    window: Duration,
    halves: [Histogram; 2],
}

impl WindowedHistogram {
    fn new(window: Duration) -> Self {
        Self {
            started: Instant::now(),
            window,
            halves: [Histogram::new(), Histogram::new()],
        }
    }

    fn epoch(&self) -> u64 {
        (self.started.elapsed().as_nanos() / self.window.as_nanos().max(1)) as u64
    }

    fn record(&self, latency: Duration) {
        let epoch = self.epoch();
        let half = &self.halves[(epoch % 2) as usize];
        let seen = half.epoch.load(Relaxed);
        if seen != epoch
            && half
                .epoch
                .compare_exchange(seen, epoch, Relaxed, Relaxed)
                .is_ok()
        {
            // A value recorded by another thread during the reset may be
            // lost: fine for a metric.
            half.clear();
        }
        half.record(latency);
    }

    fn summary(&self) -> AckLatency {
        let epoch = self.epoch();
        let mut counts = vec![0u64; BUCKETS];
        let mut max_us = 0;
        for half in &self.halves {
            let seen = half.epoch.load(Relaxed);
            if seen == epoch || seen + 1 == epoch {
                for (total, count) in counts.iter_mut().zip(&half.counts) {
                    *total += count.load(Relaxed);
                }
                max_us = max_us.max(half.max_us.load(Relaxed));
            }
        }
        let count: u64 = counts.iter().sum();
        AckLatency {
            count,
            p50_us: percentile(&counts, count, 0.50),
            p99_us: percentile(&counts, count, 0.99),
            max_us,
        }
    }
}

/// Log-linear buckets: exact below 64 µs, then 32 buckets per power of
/// two (a relative error under 3.2%), up to ~71 minutes.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const MAX_US: u64 = (1 << 32) - 1;
const BUCKETS: usize = bucket(MAX_US) + 1;

const fn bucket(us: u64) -> usize {
    if us < 2 * SUB {
        return us as usize;
    }
    let shift = 63 - us.leading_zeros() - SUB_BITS;
    (shift as u64 * SUB + (us >> shift)) as usize
}

/// The largest value that falls in a bucket.
fn bucket_high(index: usize) -> u64 {
    let index = index as u64;
    if index < 2 * SUB {
        return index;
    }
    let shift = index / SUB - 1;
    let mantissa = index - shift * SUB;
    ((mantissa + 1) << shift) - 1
}

fn percentile(counts: &[u64], total: u64, quantile: f64) -> u64 {
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64 * quantile).ceil() as u64).max(1);
    let mut seen = 0;
    for (index, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return bucket_high(index);
        }
    }
    MAX_US
}

struct Histogram {
    /// The window this histogram holds.
    epoch: AtomicU64,
    counts: Box<[AtomicU64]>,
    max_us: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
        }
    }

    fn record(&self, latency: Duration) {
        let us = (latency.as_micros() as u64).min(MAX_US);
        self.counts[bucket(us)].fetch_add(1, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
    }

    fn clear(&self) {
        for count in &self.counts {
            count.store(0, Relaxed);
        }
        self.max_us.store(0, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut previous = 0;
        for us in [
            0,
            1,
            63,
            64,
            65,
            127,
            128,
            1_000,
            3_400,
            10_000,
            1 << 20,
            MAX_US,
        ] {
            let index = bucket(us);
            assert!(index >= previous, "{us}");
            previous = index;
            let high = bucket_high(index);
            assert!(high >= us, "{us} above its bucket's top {high}");
            assert!(
                (high - us) as f64 <= us as f64 * 0.032 + 1.0,
                "{us}: {high}"
            );
            assert_eq!(bucket(high), index, "{us}");
        }
        for index in 1..BUCKETS {
            assert_eq!(bucket(bucket_high(index - 1) + 1), index);
        }
    }

    #[test]
    fn percentiles_come_from_the_recorded_latencies() {
        let latencies = WindowedHistogram::new(Duration::from_secs(3600));
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, 100);
        assert!((50_000..=51_600).contains(&summary.p50_us), "{summary:?}");
        assert!((99_000..=102_200).contains(&summary.p99_us), "{summary:?}");
        assert_eq!(summary.max_us, 100_000);
    }
}
