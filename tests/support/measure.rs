//! What the benchmarks share to print their figures: their size from the
//! environment, medians of rounds, percentiles of latencies.

use std::time::Duration;

/// The number in environment variable `name`, or `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of `values`, which it sorts.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The `q` quantile (0.0 to 1.0) of `samples`, which it sorts; zero when
/// there are none.
pub fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort_unstable();
    let index = (samples.len().saturating_sub(1) as f64 * q).round() as usize;
    samples.get(index).copied().unwrap_or_default()
}

/// A latency in milliseconds, two decimals: `3.61 ms`.
pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}
