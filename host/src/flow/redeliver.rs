//! Records already synced, handled again without a single request to the
//! source partner: a changed mapping re-applied to every raw record kept in
//! the store, and dead letters retried once their cause is fixed.
//!
//! Both walk the store in batches; each batch is reshaped, delivered and
//! made durable in one transaction (reshaped records or id links, new dead
//! letters, settled ones removed), so an interrupted redelivery leaves every
//! record either handled or not, and running it again is harmless: a
//! mapped row is replaced by the same shape, a partner write carries the
//! same idempotency key as before.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Destination;
use super::destination::{self, Undelivered};
use super::reshape::{Reshaped, Reshaper};
use super::retry::RetryPolicy;
use crate::config::FlowConfig;
use crate::connector::{ChangeKind, ConnectorError, Record};
use crate::diagnostic::Diagnostic;
use crate::ids::{FlowId, RunId};
use crate::runtime::CallError;
use crate::store::{DeadLetterRecord, FlowStore, RunEnd, RunStatus, StoreError};

/// Records per batch, and so per transaction.
pub const DEFAULT_BATCH: usize = 1_000;

/// What `weir runs` shows as the "plugin" of a reapply run.
const REAPPLY: &str = "reapply";
/// ... and of a dead-letter retry.
const RETRY: &str = "retry-dead-letters";

/// Handles stored records of a flow again: [`reapply`](Self::reapply) and
/// [`retry_dead_letters`](Self::retry_dead_letters).
pub struct Redelivery {
    store: Arc<dyn FlowStore>,
    batch: usize,
    retry: RetryPolicy,
}

/// What a redelivery did.
#[derive(Debug, Serialize)]
pub struct RedeliverySummary {
    /// The run it was recorded as.
    pub run: RunId,
    /// The flow.
    pub flow: FlowId,
    /// How it ended.
    pub status: RunStatus,
    /// Records handled again.
    pub records: u64,
    /// Reshaped records stored, or records written to the partner.
    pub written: u64,
    /// Records that went (back) to the dead letters, with the reason of now.
    pub failed: u64,
    /// Dead letters removed because their record went through this time.
    pub resolved: u64,
    /// Wall time.
    #[serde(serialize_with = "as_secs")]
    pub elapsed: Duration,
    /// Why it did not succeed.
    #[serde(skip)]
    pub error: Option<Diagnostic>,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Why a redelivery stopped early.
enum Stop {
    Failed(Diagnostic),
    Paused(Diagnostic),
    Store(StoreError),
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
            Undelivered::Pause(error) => Stop::Paused(error.diagnostic()),
            Undelivered::Fail(error) => Stop::Failed(error.diagnostic()),
        }
    }
}

impl From<CallError> for Stop {
    fn from(error: CallError) -> Self {
        match error.connector_error() {
            Some(ConnectorError::RateLimited { .. }) => Stop::Paused(error.diagnostic()),
            _ => Stop::Failed(error.diagnostic()),
        }
    }
}

#[derive(Default)]
struct Progress {
    records: u64,
    written: u64,
    failed: u64,
    resolved: u64,
}

/// Dead letter ids by the source key of their record.
type DeadLetterIds = HashMap<String, Vec<i64>>;

impl Redelivery {
    /// Redeliveries over a store, in batches of `DEFAULT_BATCH`.
    pub fn new(store: Arc<dyn FlowStore>) -> Self {
        Self {
            store,
            batch: DEFAULT_BATCH,
            retry: RetryPolicy::default(),
        }
    }

    /// Records per batch (at least 1).
    pub fn batch_size(mut self, records: usize) -> Self {
        self.batch = records.max(1);
        self
    }

    /// How writes to a partner are retried.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Reshapes every raw record of the flow's source stream kept in the
    /// store (`flow.source`, `flow.stream`: a tenant's flow reads its
    /// tenant's records) with `reshaper`, and delivers the result again:
    /// into `mapped_records` for a store destination, to the partner (with
    /// idempotency keys, so an unchanged record is never written twice) for
    /// a connection. Deletes are kept as they are in the store and not sent
    /// to a partner again. Records failing now go to the dead letters;
    /// earlier dead letters of the records handled are settled. Never reads
    /// the source partner.
    pub async fn reapply(
        &self,
        flow: &FlowConfig,
        reshaper: &Reshaper,
        destination: &Destination,
    ) -> anyhow::Result<RedeliverySummary> {
        let started = Instant::now();
        let run = self.start(flow, REAPPLY).await?;
        let mut progress = Progress::default();
        let outcome = self
            .reapply_all(flow, run, reshaper, destination, &mut progress)
            .await;
        self.finish(flow, run, started, progress, outcome).await
    }

    /// Reshapes and delivers the flow's dead letters again, oldest first.
    /// Each is retried with its record as the store has it now (a copy
    /// synced since wins; a record deleted since is delivered as a delete),
    /// or as the dead letter kept it when the store has none. Those that
    /// go through are removed; those that fail again are stored again with
    /// the new reason.
    pub async fn retry_dead_letters(
        &self,
        flow: &FlowConfig,
        reshaper: &Reshaper,
        destination: &Destination,
    ) -> anyhow::Result<RedeliverySummary> {
        let started = Instant::now();
        let run = self.start(flow, RETRY).await?;
        let mut progress = Progress::default();
        let outcome = self
            .retry_all(flow, run, reshaper, destination, &mut progress)
            .await;
        self.finish(flow, run, started, progress, outcome).await
    }

    async fn reapply_all(
        &self,
        flow: &FlowConfig,
        run: RunId,
        reshaper: &Reshaper,
        destination: &Destination,
        progress: &mut Progress,
    ) -> Result<(), Stop> {
        let dead = self
            .blocking({
                let id = flow.id.clone();
                move |store| store.dead_letters(&id, usize::MAX)
            })
            .await?;
        let dead = ids_by_key(dead.iter());
        let mut after: Option<String> = None;
        loop {
            let records = self
                .blocking({
                    let (connection, stream, batch) =
                        (flow.source.clone(), flow.stream.clone(), self.batch);
                    let after = after.clone();
                    move |store| store.scan(&connection, &stream, after.as_deref(), batch)
                })
                .await?;
            let Some(last) = records.last() else {
                return Ok(());
            };
            after = Some(last.key.clone());
            let more = records.len() == self.batch;
            // A partner already had each delete delivered by the sync that
            // read it; the store keeps tombstones as they are.
            let records = match destination {
                Destination::Store => records,
                Destination::Connection { .. } => records
                    .into_iter()
                    .filter(|r| r.kind == ChangeKind::Upsert)
                    .collect(),
            };
            self.handle(flow, run, records, &dead, reshaper, destination, progress)
                .await?;
            if !more {
                return Ok(());
            }
        }
    }

    async fn retry_all(
        &self,
        flow: &FlowConfig,
        run: RunId,
        reshaper: &Reshaper,
        destination: &Destination,
        progress: &mut Progress,
    ) -> Result<(), Stop> {
        loop {
            let page = self
                .blocking({
                    let (id, batch) = (flow.id.clone(), self.batch);
                    move |store| store.dead_letters(&id, batch)
                })
                .await?;
            // Letters failing again are stored anew under this run, after
            // every older one (ids only grow past the remaining rows): the
            // first page holding none but those is the end.
            let page: Vec<DeadLetterRecord> = page
                .into_iter()
                .filter(|letter| letter.run != run)
                .collect();
            if page.is_empty() {
                return Ok(());
            }
            let dead = ids_by_key(page.iter());
            let mut keys: Vec<&str> = Vec::with_capacity(page.len());
            let mut seen = HashSet::new();
            for letter in &page {
                if seen.insert(letter.source_key.as_str()) {
                    keys.push(&letter.source_key);
                }
            }
            let current: HashMap<String, Record> = self
                .blocking({
                    let (connection, stream) = (flow.source.clone(), flow.stream.clone());
                    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                    move |store| {
                        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                        store.records_by_key(&connection, &stream, &keys)
                    }
                })
                .await?
                .into_iter()
                .map(|record| (record.key.clone(), record))
                .collect();
            let records = keys
                .iter()
                .map(|key| {
                    current.get(*key).cloned().unwrap_or_else(|| {
                        let letter = page
                            .iter()
                            .rev()
                            .find(|l| l.source_key == *key)
                            .expect("every key comes from a letter");
                        Record {
                            key: letter.source_key.clone(),
                            version: letter.version,
                            kind: ChangeKind::Upsert,
                            data: letter.data.clone(),
                        }
                    })
                })
                .collect();
            self.handle(flow, run, records, &dead, reshaper, destination, progress)
                .await?;
        }
    }

    /// Reshapes and delivers one batch, and makes the outcome durable in
    /// one transaction; every dead letter of a record handled is settled:
    /// removed, and stored again if the record failed again.
    #[expect(
        clippy::too_many_arguments,
        reason = "one batch's inputs; a struct would only rename them"
    )]
    async fn handle(
        &self,
        flow: &FlowConfig,
        run: RunId,
        records: Vec<Record>,
        dead: &DeadLetterIds,
        reshaper: &Reshaper,
        destination: &Destination,
        progress: &mut Progress,
    ) -> Result<(), Stop> {
        if records.is_empty() {
            return Ok(());
        }
        let Reshaped {
            records: reshaped,
            mut failed,
        } = reshaper.reshape(&records).await?;
        let (mapped, links) = match destination {
            Destination::Store => (reshaped, Vec::new()),
            Destination::Connection { connection, stream } => {
                let delivered = destination::deliver_retrying(
                    &flow.id,
                    &reshaped,
                    &records,
                    connection,
                    stream,
                    self.store.as_ref(),
                    &self.retry,
                )
                .await?;
                failed.extend(delivered.dead_letters);
                (Vec::new(), delivered.links)
            }
        };
        let failed_keys: HashSet<&str> = failed.iter().map(|f| f.source_key.as_str()).collect();
        let mut settled = Vec::new();
        let mut resolved = 0;
        for record in &records {
            if let Some(ids) = dead.get(&record.key) {
                settled.extend_from_slice(ids);
                if !failed_keys.contains(record.key.as_str()) {
                    resolved += ids.len() as u64;
                }
            }
        }
        progress.records += records.len() as u64;
        progress.written += mapped.len().max(links.len()) as u64;
        progress.failed += failed.len() as u64;
        progress.resolved += resolved;
        let id = flow.id.clone();
        self.blocking(move |store| store.redeliver(&id, run, &mapped, &links, &failed, &settled))
            .await?;
        Ok(())
    }

    async fn start(&self, flow: &FlowConfig, label: &'static str) -> Result<RunId, StoreError> {
        let id = flow.id.clone();
        self.blocking(move |store| store.start_run(&id, label, false))
            .await
    }

    async fn finish(
        &self,
        flow: &FlowConfig,
        run: RunId,
        started: Instant,
        progress: Progress,
        outcome: Result<(), Stop>,
    ) -> anyhow::Result<RedeliverySummary> {
        let (status, error) = match outcome {
            Ok(()) => (RunStatus::Succeeded, None),
            Err(Stop::Failed(diagnostic)) => (RunStatus::Failed, Some(diagnostic)),
            Err(Stop::Paused(diagnostic)) => (RunStatus::Paused, Some(diagnostic)),
            Err(Stop::Store(error)) => (RunStatus::Failed, Some(error.diagnostic())),
        };
        let end = RunEnd {
            status,
            error: error
                .as_ref()
                .map(|d| (d.code.to_string(), d.message.clone())),
        };
        self.blocking(move |store| store.finish_run(run, &end))
            .await?;
        Ok(RedeliverySummary {
            run,
            flow: flow.id.clone(),
            status,
            records: progress.records,
            written: progress.written,
            failed: progress.failed,
            resolved: progress.resolved,
            elapsed: started.elapsed(),
            error,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn FlowStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .expect("store calls do not panic")
    }
}

fn ids_by_key<'a>(letters: impl Iterator<Item = &'a DeadLetterRecord>) -> DeadLetterIds {
    let mut ids = DeadLetterIds::new();
    for letter in letters {
        ids.entry(letter.source_key.clone())
            .or_default()
            .push(letter.id);
    }
    ids
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::connector::Checkpoint;
    use crate::ids::TenantId;
    use crate::mapping::Mapping;
    use crate::store::{
        DeadLetter, Delivered, Deliveries, DeliveryFailure, PageCommit, RunLog, SourcePage,
        SqliteStore, Sweep, SyncStore,
    };
    use crate::tenant::{Tenant, resolve_flow};

    /// Tenant `t1`'s instance of flow `contacts` (ids `t1.contacts`, `t1.acme`).
    fn flow() -> FlowConfig {
        let config = crate::config::Config::parse(
            std::path::Path::new("/weir/weir.toml"),
            r#"
            [connections.acme]
            connector = "acme-crm"
            config = { base_url = "https://api.acme.example" }
            allowed_hosts = ["https://api.acme.example"]

            [flows.contacts]
            source = "acme"
            stream = "contacts"
            "#,
        )
        .unwrap();
        let tenant = Tenant::new(TenantId::new("t1").unwrap());
        resolve_flow(&config, &tenant, &FlowId::new("contacts").unwrap())
            .unwrap()
            .flow
    }

    fn contact(i: usize, stage: &str) -> Record {
        Record {
            key: format!("c_{i:03}"),
            version: Some(1),
            kind: ChangeKind::Upsert,
            data: json!({ "id": format!("c_{i:03}"), "email": format!("p{i}@example.com"), "stage": stage })
                .to_string(),
        }
    }

    fn reshaper(document: Value) -> Reshaper {
        Reshaper::mapping(Arc::new(Mapping::parse(&document).unwrap()))
    }

    /// A synced flow: 25 raw records (one deleted), mapped by an old
    /// mapping, and one stale dead letter.
    fn synced() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("weir.db")).unwrap());
        let flow = flow();
        let mut records: Vec<Record> = (0..25)
            .map(|i| contact(i, if i % 5 == 0 { "vip" } else { "lead" }))
            .collect();
        records[24].kind = ChangeKind::Delete;
        let run = store.start_run(&flow.id, "acme-crm 0.1.0", false).unwrap();
        let old_shape: Vec<Record> = records
            .iter()
            .map(|r| Record {
                data: "{\"old\":true}".into(),
                ..r.clone()
            })
            .collect();
        store
            .commit_page(&PageCommit {
                flow: &flow.id,
                stream: "contacts",
                run,
                checkpoint: &Checkpoint {
                    format: 1,
                    state: "\"end\"".into(),
                },
                source: SourcePage {
                    connection: &flow.source,
                    stream: "contacts",
                    records: &records,
                },
                delivered: Delivered::Mapped(&old_shape),
                dead_letters: &[DeadLetter {
                    source_key: "c_003".into(),
                    version: Some(1),
                    data: records[3].data.clone(),
                    failure: DeliveryFailure::Mapping("an old reason".into()),
                }],
                log_changes: false,
                sweep: Sweep::Off,
            })
            .unwrap();
        (dir, store)
    }

    fn mapped(store: &SqliteStore) -> Vec<Record> {
        store.mapped(&flow().id, None, 1_000).unwrap()
    }

    #[tokio::test]
    async fn reapply_reshapes_every_stored_record_and_settles_dead_letters() {
        let (_dir, store) = synced();
        let flow = flow();
        let strict = reshaper(json!({ "fields": [
            { "to": "/mail", "from": "/email", "required": true },
            { "to": "/stage", "from": "/stage", "values": { "lead": "New" } },
        ]}));
        let summary = Redelivery::new(store.clone())
            .batch_size(7)
            .reapply(&flow, &strict, &Destination::Store)
            .await
            .unwrap();
        assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
        // Five `vip` records do not fit: dead letters; the other 20 (the
        // delete included) are mapped, `c_003` among them: its old dead
        // letter is resolved.
        assert_eq!(
            (
                summary.records,
                summary.written,
                summary.failed,
                summary.resolved
            ),
            (25, 20, 5, 1)
        );
        let rows = mapped(&store);
        assert_eq!(rows.len(), 25);
        let fresh: Vec<&Record> = rows.iter().filter(|r| r.data != "{\"old\":true}").collect();
        assert_eq!(fresh.len(), 20);
        assert_eq!(
            serde_json::from_str::<Value>(&rows[1].data).unwrap(),
            json!({ "mail": "p1@example.com", "stage": "New" })
        );
        assert_eq!(rows[24].kind, ChangeKind::Delete);
        let dead = store.dead_letters(&flow.id, 100).unwrap();
        let keys: Vec<&str> = dead.iter().map(|d| d.source_key.as_str()).collect();
        assert_eq!(keys, ["c_000", "c_005", "c_010", "c_015", "c_020"]);
        assert_eq!(
            dead[0].error,
            "/stage (from /stage): `vip` is not one of the mapped values (`lead`)"
        );
        assert_eq!(dead[0].version, Some(1));
        assert_eq!(dead[0].run, summary.run);
        let run = &store.runs(Some(&flow.id), 1).unwrap()[0];
        assert_eq!(
            (run.plugin.as_str(), run.status, run.records_failed),
            ("reapply", RunStatus::Succeeded, 5)
        );

        // Once the mapping takes `vip`, a retry delivers them and empties the list.
        let fixed = reshaper(json!({ "fields": [
            { "to": "/mail", "from": "/email", "required": true },
            { "to": "/stage", "from": "/stage", "values": { "lead": "New" }, "otherwise": "Other" },
        ]}));
        let summary = Redelivery::new(store.clone())
            .batch_size(2)
            .retry_dead_letters(&flow, &fixed, &Destination::Store)
            .await
            .unwrap();
        assert_eq!(
            (
                summary.records,
                summary.written,
                summary.failed,
                summary.resolved
            ),
            (5, 5, 0, 5)
        );
        assert!(store.dead_letters(&flow.id, 100).unwrap().is_empty());
        let vip: Value = serde_json::from_str(&mapped(&store)[5].data).unwrap();
        assert_eq!(vip, json!({ "mail": "p5@example.com", "stage": "Other" }));
    }

    #[tokio::test]
    async fn dead_letters_failing_again_are_stored_again_with_the_new_reason() {
        let (_dir, store) = synced();
        let flow = flow();
        let needs_phone = reshaper(json!({ "fields": [
            { "to": "/phone", "from": "/phone", "required": true },
        ]}));
        let summary = Redelivery::new(store.clone())
            .batch_size(1)
            .retry_dead_letters(&flow, &needs_phone, &Destination::Store)
            .await
            .unwrap();
        assert_eq!(summary.status, RunStatus::Succeeded);
        assert_eq!(
            (summary.records, summary.failed, summary.resolved),
            (1, 1, 0)
        );
        let dead = store.dead_letters(&flow.id, 100).unwrap();
        assert_eq!(dead.len(), 1, "stored again, not twice");
        assert_eq!(dead[0].source_key, "c_003");
        assert_eq!(
            dead[0].error,
            "/phone (from /phone): is required, but the record has no value"
        );
        assert_eq!(dead[0].run, summary.run);
    }

    #[tokio::test]
    async fn a_retry_uses_the_record_as_stored_now() {
        let (_dir, store) = synced();
        let flow = flow();
        // Synced again since it failed: a newer copy is in the store.
        let newer = Record {
            version: Some(2),
            data: json!({ "id": "c_003", "email": "new@example.com", "stage": "lead" }).to_string(),
            ..contact(3, "lead")
        };
        let run = store.start_run(&flow.id, "acme-crm 0.1.0", false).unwrap();
        store
            .commit_page(&PageCommit {
                flow: &flow.id,
                stream: "contacts",
                run,
                checkpoint: &Checkpoint {
                    format: 1,
                    state: "\"end\"".into(),
                },
                source: SourcePage {
                    connection: &flow.source,
                    stream: "contacts",
                    records: std::slice::from_ref(&newer),
                },
                delivered: Delivered::Raw,
                dead_letters: &[],
                log_changes: false,
                sweep: Sweep::Off,
            })
            .unwrap();
        let copy = reshaper(json!({ "fields": [{ "to": "/mail", "from": "/email" }] }));
        Redelivery::new(store.clone())
            .retry_dead_letters(&flow, &copy, &Destination::Store)
            .await
            .unwrap();
        let row = mapped(&store)
            .into_iter()
            .find(|r| r.key == "c_003")
            .unwrap();
        assert_eq!(
            (row.version, row.data.as_str()),
            (Some(2), r#"{"mail":"new@example.com"}"#)
        );
    }

    #[test]
    fn an_older_copy_never_replaces_a_newer_mapped_record() {
        let (_dir, store) = synced();
        let flow = flow();
        let run = store.start_run(&flow.id, "reapply", false).unwrap();
        let newer = Record {
            version: Some(3),
            data: "{\"v\":3}".into(),
            ..contact(1, "lead")
        };
        let older = Record {
            version: Some(2),
            data: "{\"v\":2}".into(),
            ..contact(1, "lead")
        };
        store
            .redeliver(&flow.id, run, &[newer], &[], &[], &[])
            .unwrap();
        store
            .redeliver(&flow.id, run, &[older], &[], &[], &[])
            .unwrap();
        assert_eq!(mapped(&store)[1].data, "{\"v\":3}");
    }
}
