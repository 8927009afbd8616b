//! How well webhooks work, per tenant connection: how many changes only
//! polls found (coverage), verification failures by reason, duplicates,
//! throttling, the inbox, and whether webhooks went silent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::config::{Config, Trigger};
use crate::contract::RejectionReason;
use crate::ids::TenantId;
use crate::inbox::InboxMetrics;
use crate::store::{COVERAGE_WINDOW, ChangeStore, Coverage, StoreError, SyncStore, TenantStore};

/// Counts of one tenant connection's deliveries.
#[derive(Default)]
pub struct Counts {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    missing_signature: AtomicU64,
    bad_signature: AtomicU64,
    stale_timestamp: AtomicU64,
    malformed: AtomicU64,
    throttled: AtomicU64,
    unavailable: AtomicU64,
    too_large: AtomicU64,
    last_received_ms: AtomicI64,
}

impl Counts {
    pub(crate) fn count_accepted(&self, duplicate: bool, received_at_ms: u64) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        if duplicate {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        self.last_received_ms
            .fetch_max(received_at_ms as i64, Ordering::Relaxed);
    }

    pub(crate) fn count_rejected(&self, reason: RejectionReason) {
        match reason {
            RejectionReason::MissingSignature => &self.missing_signature,
            RejectionReason::BadSignature => &self.bad_signature,
            RejectionReason::StaleTimestamp => &self.stale_timestamp,
            RejectionReason::Malformed => &self.malformed,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_unavailable(&self) {
        self.unavailable.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_too_large(&self) {
        self.too_large.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts of every tenant connection since the daemon started.
#[derive(Default)]
pub struct IngressCounters {
    by_endpoint: Mutex<BTreeMap<(String, String), Arc<Counts>>>,
    /// Receipt to merged in the store, ms, for the latest deliveries.
    lags: Mutex<std::collections::VecDeque<u64>>,
}

/// Lags kept for percentiles.
const KEPT_LAGS: usize = 10_000;

/// Time from a delivery's receipt to its changes in the store.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Lag {
    /// Deliveries measured.
    pub samples: usize,
    /// Median, ms.
    pub p50_ms: u64,
    /// 99th percentile, ms.
    pub p99_ms: u64,
}

impl IngressCounters {
    /// Notes that a delivery received at `received_at_ms` is now merged.
    pub fn record_applied(&self, received_at_ms: i64) {
        let now = crate::unix_time::now_ms();
        let mut lags = self.lags.lock().unwrap_or_else(|p| p.into_inner());
        if lags.len() == KEPT_LAGS {
            lags.pop_front();
        }
        lags.push_back((now - received_at_ms).max(0) as u64);
    }

    /// Percentiles of the latest lags.
    pub fn lag(&self) -> Lag {
        let mut lags: Vec<u64> = self
            .lags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        if lags.is_empty() {
            return Lag::default();
        }
        lags.sort_unstable();
        let at = |p: f64| lags[((lags.len() - 1) as f64 * p).round() as usize];
        Lag {
            samples: lags.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
        }
    }

    /// The counts of a tenant's connection.
    pub fn of(&self, tenant: &TenantId, connection: &str) -> Arc<Counts> {
        self.by_endpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((tenant.to_string(), connection.to_string()))
            .or_default()
            .clone()
    }
}

/// Webhook health of one tenant connection's stream.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookHealth {
    /// The tenant.
    pub tenant: String,
    /// The connection of weir.toml.
    pub connection: String,
    /// The stream.
    pub stream: String,
    /// Where the partner sends webhooks (path of the ingress).
    pub endpoint: String,
    /// Changes seen by both paths over the window, and how many only polls found.
    pub coverage: Coverage,
    /// Deliveries stored.
    pub accepted: u64,
    /// Of those, repeats of a delivery already stored.
    pub duplicates: u64,
    /// Refused deliveries, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Answered 429 (this tenant sent too fast).
    pub throttled: u64,
    /// Answered 503 (Weir could not store in time).
    pub unavailable: u64,
    /// Answered 413.
    pub too_large: u64,
    /// Handshakes answered over the window (audit rows in the store).
    pub handshakes: u64,
    /// When the latest handshake was answered, ms since the Unix epoch.
    pub last_handshake_at_ms: Option<i64>,
    /// Polls keep finding changes while no webhook has come for `silence_after`.
    pub silent: bool,
}

/// The inbox and every tenant connection's webhook health.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// The inbox: depth, ack latency, batch sizes, refusals.
    pub inbox: Option<InboxMetrics>,
    /// Receipt to merged in the store.
    pub lag: Option<Lag>,
    /// Per tenant connection and stream.
    pub endpoints: Vec<WebhookHealth>,
}

/// Webhook health of every tenant connection whose connector has webhook
/// streams (per weir.toml's flows).
pub fn webhook_health(
    config: &Config,
    store: &(impl ChangeStore + SyncStore + TenantStore + ?Sized),
    counters: Option<&IngressCounters>,
    inbox: Option<InboxMetrics>,
) -> Result<HealthReport, StoreError> {
    let now = store.clock().now_ms();
    let since = now - COVERAGE_WINDOW.as_millis() as i64;
    let grace = config.ingress.coverage_grace.as_millis() as i64;
    let silence = config.ingress.silence_after.as_millis() as i64;
    let mut endpoints = Vec::new();
    for tenant in store.tenants()? {
        let mut seen = std::collections::BTreeSet::new();
        for flow in config.flows.values() {
            if flow.trigger == Some(Trigger::Poll)
                || !seen.insert((flow.source.to_string(), flow.stream.clone()))
            {
                continue;
            }
            let scoped = tenant.id.scoped_connection(&flow.source);
            let coverage = store.coverage(&scoped, &flow.stream, since, grace, now)?;
            let token = store.endpoint_token(&tenant.id, flow.source.as_str())?;
            let (handshakes, last_handshake_at_ms) =
                store.handshakes(&tenant.id, flow.source.as_str(), since)?;
            let counts = counters.map(|c| c.of(&tenant.id, flow.source.as_str()));
            let get = |f: fn(&Counts) -> &AtomicU64| {
                counts.as_ref().map_or(0, |c| f(c).load(Ordering::Relaxed))
            };
            let last_webhook = coverage.last_webhook_at_ms.max(
                counts
                    .as_ref()
                    .map(|c| c.last_received_ms.load(Ordering::Relaxed))
                    .filter(|t| *t > 0),
            );
            let silent = coverage.silent(last_webhook, since, now, silence);
            endpoints.push(WebhookHealth {
                tenant: tenant.id.to_string(),
                connection: flow.source.to_string(),
                stream: flow.stream.clone(),
                endpoint: format!("/hooks/{token}"),
                accepted: get(|c| &c.accepted),
                duplicates: get(|c| &c.duplicates),
                rejected: [
                    ("missing_signature", get(|c| &c.missing_signature)),
                    ("bad_signature", get(|c| &c.bad_signature)),
                    ("stale_timestamp", get(|c| &c.stale_timestamp)),
                    ("malformed", get(|c| &c.malformed)),
                ]
                .into_iter()
                .collect(),
                throttled: get(|c| &c.throttled),
                unavailable: get(|c| &c.unavailable),
                too_large: get(|c| &c.too_large),
                handshakes,
                last_handshake_at_ms,
                silent,
                coverage,
            });
        }
    }
    Ok(HealthReport {
        inbox,
        lag: counters.map(IngressCounters::lag),
        endpoints,
    })
}
