//! Change events posted in the Standard Webhooks format.
//!
//! Every change is turned into an event while the store is still locked, so
//! events leave in `updated_at` order; one task posts them one at a time, in
//! that order, without retries (like GitHub). Whether an event is dropped is
//! decided by a seeded RNG, so the same run drops the same events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use ed25519_dalek::{Signer as _, SigningKey};
use fastrand::Rng;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::{mpsc, watch};

use crate::counters::CounterBook;
use crate::store::{Change, ChangeKind};
use crate::time::format_micros;

/// Where change events go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookTarget {
    /// Receiver URL, e.g. `http://127.0.0.1:4000/hooks/acme`.
    pub url: String,
    /// How `webhook-signature` is made.
    pub signing: WebhookSigning,
    /// Share of events silently discarded, 0.0..=1.0, like a lossy network.
    pub drop_rate: f64,
}

/// One event and what became of it, from [`PartnerSim::webhook_deliveries`](crate::PartnerSim::webhook_deliveries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// The `webhook-id`, `msg_<n>` counting from 1.
    pub id: String,
    /// E.g. `contact.updated`.
    pub event_type: String,
    /// The changed record's id.
    pub record_id: String,
    /// What happened to it.
    pub outcome: DeliveryOutcome,
}

/// The fate of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryOutcome {
    /// Discarded by the drop rate; never sent.
    Dropped,
    /// Queued or in flight.
    Pending,
    /// The receiver answered 2xx.
    Delivered {
        /// The receiver's status.
        status: u16,
    },
    /// The receiver answered something else, or could not be reached.
    Failed {
        /// The receiver's status, if it answered.
        status: Option<u16>,
        /// The transport error, if it did not.
        error: Option<String>,
    },
}

/// How events are signed (Standard Webhooks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookSigning {
    /// `v1,`: HMAC-SHA256 under this shared secret.
    Secret(Vec<u8>),
    /// `v1a,`: Ed25519 with the key pair of this 32-byte seed; receivers
    /// verify with [`ed25519_public_key`] of it.
    Ed25519([u8; 32]),
}

impl WebhookSigning {
    /// The `webhook-signature` header value for a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        match self {
            WebhookSigning::Secret(secret) => sign_standard_webhook(secret, id, timestamp, body),
            WebhookSigning::Ed25519(seed) => {
                sign_standard_webhook_ed25519(seed, id, timestamp, body)
            }
        }
    }
}

/// The `webhook-signature` header value for a message: `v1a,` then the
/// base64 of the Ed25519 signature of `"{id}.{timestamp}.{body}"` by the
/// key pair of `seed`.
pub fn sign_standard_webhook_ed25519(
    seed: &[u8; 32],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut message = format!("{id}.{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let signature = SigningKey::from_bytes(seed).sign(&message);
    format!("v1a,{}", STANDARD.encode(signature.to_bytes()))
}

/// The public key of the key pair of `seed`, as Standard Webhooks writes
/// it: `whpk_` then base64.
pub fn ed25519_public_key(seed: &[u8; 32]) -> String {
    let key = SigningKey::from_bytes(seed).verifying_key();
    format!("whpk_{}", STANDARD.encode(key.as_bytes()))
}

/// The `webhook-signature` header value for a message: `v1,` then the
/// base64 of HMAC-SHA256(`secret`, `"{id}.{timestamp}.{body}"`).
pub fn sign_standard_webhook(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Turns changes into queued events.
#[derive(Debug)]
pub(crate) struct WebhookOutbox {
    state: Mutex<OutboxState>,
    queue: mpsc::UnboundedSender<Job>,
    log: Arc<DeliveryLog>,
    counters: Arc<CounterBook>,
}

#[derive(Debug)]
struct OutboxState {
    target: Option<Arc<WebhookTarget>>,
    /// Decides drops; advanced once per event while a target is set.
    rng: Rng,
    next_id: u64,
}

/// Every event so far, and how many are still unsettled.
#[derive(Debug)]
struct DeliveryLog {
    entries: Mutex<Vec<WebhookDelivery>>,
    /// Events handed to the worker.
    queued: AtomicU64,
    /// Events the worker has finished with.
    settled: watch::Sender<u64>,
}

#[derive(Debug)]
struct Job {
    log_index: usize,
    id: String,
    target: Arc<WebhookTarget>,
    body: Bytes,
}

/// The task that posts queued events; see [`DeliveryWorker::run`].
#[derive(Debug)]
pub(crate) struct DeliveryWorker {
    queue: mpsc::UnboundedReceiver<Job>,
    log: Arc<DeliveryLog>,
    counters: Arc<CounterBook>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WebhookOutbox {
    /// An outbox posting to `target`, and the worker that does the posting.
    pub(crate) fn new(
        seed: u64,
        target: Option<WebhookTarget>,
        counters: Arc<CounterBook>,
    ) -> (Self, DeliveryWorker) {
        let (tx, rx) = mpsc::unbounded_channel();
        let log = Arc::new(DeliveryLog {
            entries: Mutex::new(Vec::new()),
            queued: AtomicU64::new(0),
            settled: watch::Sender::new(0),
        });
        let outbox = Self {
            state: Mutex::new(OutboxState {
                target: target.map(Arc::new),
                rng: Rng::with_seed(seed ^ 0x7765_6268_6f6f_6b73),
                next_id: 1,
            }),
            queue: tx,
            log: log.clone(),
            counters: counters.clone(),
        };
        let worker = DeliveryWorker {
            queue: rx,
            log,
            counters,
        };
        (outbox, worker)
    }

    /// Replaces the target; events already queued still go to the old one.
    pub(crate) fn set_target(&self, target: Option<WebhookTarget>) {
        lock(&self.state).target = target.map(Arc::new);
    }

    /// Queues (or drops) the event for `change`; without a target, nothing happens.
    pub(crate) fn emit(&self, change: &Change) {
        let mut state = lock(&self.state);
        let Some(target) = state.target.clone() else {
            return;
        };
        let id = format!("msg_{}", state.next_id);
        state.next_id += 1;
        let dropped = state.rng.f64() < target.drop_rate;
        let verb = match change.kind {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
        };
        let event_type = format!("{}.{verb}", change.schema.singular);

        let mut entries = lock(&self.log.entries);
        let log_index = entries.len();
        entries.push(WebhookDelivery {
            id: id.clone(),
            event_type: event_type.clone(),
            record_id: change.id.clone(),
            outcome: if dropped {
                DeliveryOutcome::Dropped
            } else {
                DeliveryOutcome::Pending
            },
        });
        drop(entries);
        if dropped {
            self.counters.webhook_dropped();
            return;
        }

        let mut body = Vec::with_capacity(change.json.len() + 96);
        body.extend_from_slice(br#"{"type":""#);
        body.extend_from_slice(event_type.as_bytes());
        body.extend_from_slice(br#"","timestamp":""#);
        body.extend_from_slice(format_micros(change.updated_at).as_bytes());
        body.extend_from_slice(br#"","data":"#);
        body.extend_from_slice(&change.json);
        body.push(b'}');
        self.log.queued.fetch_add(1, Ordering::SeqCst);
        let job = Job {
            log_index,
            id,
            target,
            body: Bytes::from(body),
        };
        if self.queue.send(job).is_err() {
            // The worker is gone: the sim is shutting down.
            self.log.settle(
                log_index,
                DeliveryOutcome::Failed {
                    status: None,
                    error: Some("partner-sim is shutting down".into()),
                },
            );
        }
    }

    /// Every event so far.
    pub(crate) fn deliveries(&self) -> Vec<WebhookDelivery> {
        lock(&self.log.entries).clone()
    }

    /// Waits until every event queued so far is delivered or failed.
    pub(crate) async fn wait_settled(&self, timeout: Duration) -> anyhow::Result<()> {
        let queued = self.log.queued.load(Ordering::SeqCst);
        let mut settled = self.log.settled.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            settled.wait_for(|&n| n >= queued).await.map(|_| ())
        })
        .await;
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => bail!("webhook delivery stopped before {queued} events settled"),
            Err(_) => bail!(
                "only {} of {queued} webhook events settled within {timeout:?}",
                *settled.borrow()
            ),
        }
    }
}

impl DeliveryLog {
    fn settle(&self, index: usize, outcome: DeliveryOutcome) {
        lock(&self.entries)[index].outcome = outcome;
        self.settled.send_modify(|n| *n += 1);
    }
}

impl DeliveryWorker {
    /// Posts events one at a time until the outbox is dropped.
    pub(crate) async fn run(mut self) {
        // Built on the first event: most sims never send one.
        let mut client = None;
        while let Some(job) = self.queue.recv().await {
            let client = client.get_or_insert_with(|| {
                reqwest::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(5))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap_or_default()
            });
            let outcome = deliver(client, &job).await;
            let status = match &outcome {
                DeliveryOutcome::Delivered { status } => Some(*status),
                DeliveryOutcome::Failed { status, .. } => *status,
                DeliveryOutcome::Dropped | DeliveryOutcome::Pending => None,
            };
            self.counters.webhook_sent(status);
            self.log.settle(job.log_index, outcome);
        }
    }
}

async fn deliver(client: &reqwest::Client, job: &Job) -> DeliveryOutcome {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let signature = job.target.signing.sign(&job.id, timestamp, &job.body);
    let sent = client
        .post(&job.target.url)
        .header("content-type", "application/json")
        .header("webhook-id", &job.id)
        .header("webhook-timestamp", timestamp)
        .header("webhook-signature", signature)
        .body(job.body.clone())
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read the body so the connection can be reused.
            let _ = response.bytes().await;
            if (200..300).contains(&status) {
                DeliveryOutcome::Delivered { status }
            } else {
                DeliveryOutcome::Failed {
                    status: Some(status),
                    error: None,
                }
            }
        }
        Err(error) => {
            tracing::debug!(id = %job.id, url = %job.target.url, "webhook delivery failed: {error:#}");
            DeliveryOutcome::Failed {
                status: None,
                error: Some(format!("{error:#}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // From the Standard Webhooks reference test vectors.
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign_standard_webhook(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
