//! A running sim: the handle tests hold, and the state its requests share.

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::counters::{CounterBook, Counters};
use crate::faults::{Fault, FaultQueue};
use crate::rate_limit::{RateLimit, RateLimiter};
use crate::schema::{self, Schema};
use crate::store::{Change, Store, WriteError};
use crate::time::format_micros;
use crate::webhooks::{WebhookDelivery, WebhookOutbox, WebhookTarget};
use crate::{api, server};

/// State shared by every request and the [`PartnerSim`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) api_key: String,
    store: RwLock<Store>,
    pub(crate) counters: Arc<CounterBook>,
    pub(crate) limiter: RateLimiter,
    pub(crate) faults: FaultQueue,
    pub(crate) webhooks: WebhookOutbox,
    /// Turns true when the sim shuts down; hung requests wait on it.
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Shared {
    /// Read access to the records.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a write and emits its webhook event before releasing the lock,
    /// so events are queued in `updated_at` order.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Store) -> (T, Option<Change>)) -> T {
        let mut store = self.store.write().unwrap_or_else(PoisonError::into_inner);
        let (result, change) = f(&mut store);
        if let Some(change) = change {
            self.webhooks.emit(&change);
        }
        result
    }

    /// Updates `count` seeded-random live records; returns their ids in change order.
    pub(crate) fn mutate(&self, schema: &'static Schema, count: usize) -> Vec<String> {
        let mut store = self.store.write().unwrap_or_else(PoisonError::into_inner);
        let changes = store.touch_random(schema, count);
        for change in &changes {
            self.webhooks.emit(change);
        }
        changes.into_iter().map(|c| c.id).collect()
    }
}

/// Acme CRM, running on 127.0.0.1. Stops on [`PartnerSim::shutdown`], or
/// (less gracefully) when dropped.
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// use partner_sim::{PartnerSim, SimConfig};
/// let sim = PartnerSim::start(SimConfig { contacts: 10_000, ..SimConfig::default() }).await?;
/// let url = format!("{}/v1/contacts?limit=1000", sim.base_url());
/// // ... sync from `url` with `X-Api-Key: test-key`, then:
/// assert_eq!(sim.counters().route("GET /v1/contacts"), 10);
/// sim.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PartnerSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    deliveries: Option<JoinHandle<()>>,
}

impl PartnerSim {
    /// Seeds the data and starts serving. Fails if `config.host` is not a
    /// loopback address or the port is taken.
    pub async fn start(config: SimConfig) -> anyhow::Result<Self> {
        let SimConfig {
            seed,
            contacts,
            companies,
            api_key,
            host,
            port,
            rate_limit,
            webhook,
        } = config;
        if !host.is_loopback() {
            bail!(
                "partner-sim only listens on loopback addresses, not `{host}`; use 127.0.0.1 or ::1"
            );
        }
        let listener = TcpListener::bind((host, port))
            .await
            .with_context(|| format!("cannot listen on {host}:{port}"))?;
        let addr = listener
            .local_addr()
            .context("listener has no local address")?;
        let store = tokio::task::spawn_blocking(move || Store::seeded(seed, contacts, companies))
            .await
            .context("seeding the data panicked")?;

        let counters = Arc::new(CounterBook::default());
        let (webhooks, worker) = WebhookOutbox::new(seed, webhook, counters.clone());
        let limiter = RateLimiter::default();
        limiter.set(rate_limit, Instant::now());
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            api_key,
            store: RwLock::new(store),
            counters,
            limiter,
            faults: FaultQueue::default(),
            webhooks,
            shutdown: stopped.clone(),
        });
        let server = tokio::spawn(server::serve(
            listener,
            api::router(shared.clone()),
            stopped,
        ));
        let deliveries = tokio::spawn(worker.run());
        Ok(Self {
            shared,
            addr,
            stop,
            server: Some(server),
            deliveries: Some(deliveries),
        })
    }

    /// Where the sim listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `base_url()` followed by `path`, e.g. `sim.url("/v1/contacts")`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The key clients must send in `X-Api-Key`.
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// A snapshot of what the sim has seen since start or the last reset.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Zeroes the counters (the webhook delivery log is kept).
    pub fn reset_counters(&self) {
        self.shared.counters.reset();
    }

    /// Updates `count` distinct live records of `resource`, picked by the
    /// seeded RNG (all of them if there are fewer); returns their ids in the
    /// order they changed. Each change emits a webhook event.
    ///
    /// # Panics
    /// If `resource` is neither `contacts` nor `companies`.
    pub fn mutate(&self, resource: &str, count: usize) -> Vec<String> {
        self.shared.mutate(known(resource), count)
    }

    /// Creates a record, as `POST /v1/{resource}` would; returns it.
    pub fn create(&self, resource: &str, fields: Value) -> anyhow::Result<Value> {
        let schema = lookup(resource)?;
        let fields = object(fields)?;
        self.apply(schema, "", |store| store.create(schema, &fields))
    }

    /// Merges `patch` into a record, as `PATCH /v1/{resource}/{id}` would; returns it.
    pub fn update(&self, resource: &str, id: &str, patch: Value) -> anyhow::Result<Value> {
        let schema = lookup(resource)?;
        let patch = object(patch)?;
        self.apply(schema, id, |store| store.update(schema, id, &patch))
    }

    /// Merges `patch` into a record like [`PartnerSim::update`], but leaves
    /// its `version` as it was (`updated_at` still moves), as partners
    /// whose version misses edits do; returns it.
    pub fn update_keeping_version(
        &self,
        resource: &str,
        id: &str,
        patch: Value,
    ) -> anyhow::Result<Value> {
        let schema = lookup(resource)?;
        let patch = object(patch)?;
        self.apply(schema, id, |store| {
            store.update_keeping_version(schema, id, &patch)
        })
    }

    /// Deletes a record, as `DELETE /v1/{resource}/{id}` would; returns its tombstone.
    pub fn delete(&self, resource: &str, id: &str) -> anyhow::Result<Value> {
        let schema = lookup(resource)?;
        self.apply(schema, id, |store| store.delete(schema, id))
    }

    fn apply(
        &self,
        schema: &Schema,
        id: &str,
        write: impl FnOnce(&mut Store) -> Result<Change, WriteError>,
    ) -> anyhow::Result<Value> {
        let change = self.shared.write(|store| match write(store) {
            Ok(change) => (Ok(change.clone()), Some(change)),
            Err(e) => (Err(e), None),
        });
        match change {
            Ok(change) => Ok(serde_json::from_slice(&change.json)?),
            Err(WriteError::NotFound) => Err(anyhow!("no {} with id `{id}`", schema.singular)),
            Err(WriteError::Invalid(e)) => {
                Err(anyhow!("invalid {}: {}", schema.singular, e.message))
            }
        }
    }

    /// The live records of `resource`, in id order: the source of truth for
    /// assertions about what a sync should have copied.
    ///
    /// # Panics
    /// If `resource` is neither `contacts` nor `companies`.
    pub fn records(&self, resource: &str) -> Vec<Value> {
        let schema = known(resource);
        let store = self.shared.read();
        store
            .collection(schema)
            .live_records()
            .map(|(index, record)| record.to_value(schema, index))
            .collect()
    }

    /// The live record `id` of `resource`, if there is one.
    ///
    /// # Panics
    /// If `resource` is neither `contacts` nor `companies`.
    pub fn record(&self, resource: &str, id: &str) -> Option<Value> {
        let schema = known(resource);
        let store = self.shared.read();
        let collection = store.collection(schema);
        let index = collection.live_index(id)?;
        Some(collection.records[index as usize].to_value(schema, index))
    }

    /// The logical clock as RFC 3339: changes made now get this `updated_at`
    /// or, if it is taken, the next free microsecond.
    pub fn now(&self) -> String {
        format_micros(self.shared.read().now())
    }

    /// Moves the logical clock forward, as if time passed between changes.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.write(|store| {
            store.advance_clock(by);
            ((), None)
        });
    }

    /// Sets, changes or (with `None`) lifts the rate limit; a new limit
    /// starts with a full bucket.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.shared.limiter.set(limit, Instant::now());
    }

    /// Queues a fault; see [`Fault`].
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.push(fault);
    }

    /// Faults still queued, with their remaining `skip` and `times`.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.shared.faults.pending()
    }

    /// Forgets every queued fault.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Sets, changes or (with `None`) stops the webhook target. Events
    /// already queued still go to the previous target.
    pub fn set_webhook(&self, target: Option<WebhookTarget>) {
        self.shared.webhooks.set_target(target);
    }

    /// Every webhook event emitted so far (dropped ones included), oldest first.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.shared.webhooks.deliveries()
    }

    /// Waits until every webhook event emitted so far was delivered or failed.
    pub async fn wait_for_webhooks(&self, timeout: Duration) -> anyhow::Result<()> {
        self.shared.webhooks.wait_settled(timeout).await
    }

    /// Stops accepting connections, gives in-flight requests up to two
    /// seconds, and stops webhook delivery.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(deliveries) = self.deliveries.take() {
            deliveries.abort();
        }
    }
}

impl Drop for PartnerSim {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for task in [self.server.take(), self.deliveries.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

fn lookup(resource: &str) -> anyhow::Result<&'static Schema> {
    schema::lookup(resource).ok_or_else(|| {
        anyhow!(
            "unknown resource `{resource}`; partner-sim serves {}",
            schema::names()
        )
    })
}

fn known(resource: &str) -> &'static Schema {
    lookup(resource).unwrap_or_else(|e| panic!("{e}"))
}

fn object(value: Value) -> anyhow::Result<Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        other => bail!("fields must be a JSON object, got {other}"),
    }
}
