//! Records already synced, handled again without a single request to the
//! source partner: every raw record kept in the store (a changed mapping
//! applied again), and the dead letters (retried once their cause is
//! fixed). An interrupted run leaves every batch either handled or not,
//! and running it again is harmless: a mapped row is replaced by the same
//! shape, a partner write carries the same idempotency key as before.

use std::collections::{HashMap, HashSet};

use super::{Batch, BatchKind, DeadLetterIds, Pages, RunContext};
use crate::contract::{ChangeKind, Record};
use crate::flow::stop::Stop;
use crate::store::DeadLetterRecord;

/// The raw records of the flow's source stream, in key order.
pub(in crate::flow) struct StoredPages {
    /// Where the last batch ended.
    after: Option<String>,
    /// The flow's dead letters, taken out as their key comes by.
    dead: DeadLetterIds,
    done: bool,
}

impl StoredPages {
    /// Opens the walk; the dead letters of the records walked are settled
    /// as they are handled.
    pub async fn open(run: &RunContext<'_>) -> Result<Self, Stop> {
        let id = run.plan.flow.id.clone();
        let letters = run
            .store
            .call(move |store| store.dead_letters(&id, usize::MAX))
            .await?;
        Ok(Self {
            after: None,
            dead: ids_by_key(&letters),
            done: false,
        })
    }
}

impl Pages for StoredPages {
    async fn next(&mut self, run: &RunContext<'_>) -> Result<Option<Batch>, Stop> {
        if self.done {
            return Ok(None);
        }
        let batch = run.options.batch.max(1);
        let records = {
            let flow = &run.plan.flow;
            let (connection, stream, after) =
                (flow.source.clone(), flow.stream.clone(), self.after.clone());
            run.store
                .call(move |store| store.scan(&connection, &stream, after.as_deref(), batch))
                .await?
        };
        let Some(last) = records.last() else {
            self.done = true;
            return Ok(None);
        };
        self.after = Some(last.key.clone());
        self.done = records.len() < batch;
        // A partner already had each delete delivered by the sync that
        // read it; the store keeps tombstones as they are.
        let records: Vec<Record> = if run.plan.destination.is_partner() {
            records
                .into_iter()
                .filter(|r| r.kind == ChangeKind::Upsert)
                .collect()
        } else {
            records
        };
        let dead = records
            .iter()
            .filter_map(|r| self.dead.remove_entry(&r.key))
            .collect();
        Ok(Some(Batch {
            records,
            kind: BatchKind::Again { dead },
            last: self.done,
        }))
    }
}

/// The flow's dead letters, oldest first, a batch at a time.
pub(in crate::flow) struct DeadLetterPages;

impl Pages for DeadLetterPages {
    /// Each batch starts at the oldest letter left, which the last commit
    /// decides.
    fn reads_ahead(&self) -> bool {
        false
    }

    async fn next(&mut self, run: &RunContext<'_>) -> Result<Option<Batch>, Stop> {
        let flow = &run.plan.flow;
        let letters = {
            let (id, batch) = (flow.id.clone(), run.options.batch.max(1));
            run.store
                .call(move |store| store.dead_letters(&id, batch))
                .await?
        };
        // Letters failing again are stored anew under this run, after
        // every older one (ids only grow past the remaining rows): the
        // first batch holding none but those is the end.
        let letters: Vec<DeadLetterRecord> = letters
            .into_iter()
            .filter(|letter| letter.run != run.run)
            .collect();
        if letters.is_empty() {
            return Ok(None);
        }
        let mut keys: Vec<String> = Vec::with_capacity(letters.len());
        let mut seen = HashSet::new();
        for letter in &letters {
            if seen.insert(letter.source_key.as_str()) {
                keys.push(letter.source_key.clone());
            }
        }
        let mut current: HashMap<String, Record> = {
            let (connection, stream, keys) =
                (flow.source.clone(), flow.stream.clone(), keys.clone());
            run.store
                .call(move |store| {
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    store.records_by_key(&connection, &stream, &keys)
                })
                .await?
                .into_iter()
                .map(|record| (record.key.clone(), record))
                .collect()
        };
        let records = keys
            .into_iter()
            .map(|key| {
                current.remove(&key).unwrap_or_else(|| {
                    let letter = letters
                        .iter()
                        .rev()
                        .find(|l| l.source_key == key)
                        .expect("every key comes from a letter");
                    Record {
                        key,
                        version: letter.version,
                        kind: ChangeKind::Upsert,
                        data: letter.data.clone(),
                    }
                })
            })
            .collect();
        Ok(Some(Batch {
            records,
            kind: BatchKind::Again {
                dead: ids_by_key(&letters),
            },
            last: false,
        }))
    }
}

/// Changes a webhook brought: one batch.
pub(in crate::flow) struct ChangePages(pub Option<Vec<Record>>);

impl Pages for ChangePages {
    async fn next(&mut self, _run: &RunContext<'_>) -> Result<Option<Batch>, Stop> {
        Ok(self.0.take().map(|records| Batch {
            records,
            kind: BatchKind::Again {
                dead: DeadLetterIds::new(),
            },
            last: true,
        }))
    }
}

fn ids_by_key(letters: &[DeadLetterRecord]) -> DeadLetterIds {
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

    use std::sync::Arc;

    use crate::config::FlowConfig;
    use crate::contract::{ChangeKind, Checkpoint, Record};
    use crate::flow::{Destination, Feed, FlowRunner, Plan, Reshaper, RunOptions, RunSummary};
    use crate::ids::FlowId;
    use crate::ids::TenantId;
    use crate::mapping::Mapping;
    use crate::store::RunStatus;
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
        let mut records: Vec<Record> = (0..25)
            .map(|i| contact(i, if i % 5 == 0 { "vip" } else { "lead" }))
            .collect();
        records[24].kind = ChangeKind::Delete;
        let old_shape: Vec<Record> = records
            .iter()
            .map(|r| Record {
                data: "{\"old\":true}".into(),
                ..r.clone()
            })
            .collect();
        let stale = DeadLetter {
            source_key: "c_003".into(),
            version: Some(1),
            data: records[3].data.clone(),
            failure: DeliveryFailure::Mapping("an old reason".into()),
        };
        commit(
            &store,
            &records,
            Delivered::Mapped(&old_shape),
            std::slice::from_ref(&stale),
        );
        (dir, store)
    }

    /// Runs the flow from `feed` into the store, `batch` records at a time.
    async fn again(
        store: &Arc<SqliteStore>,
        feed: Feed,
        reshaper: Reshaper,
        batch: usize,
    ) -> RunSummary {
        let plan = Plan {
            flow: flow(),
            reshaper,
            destination: Destination::Store,
        };
        let options = RunOptions {
            batch,
            ..RunOptions::default()
        };
        FlowRunner::new(store.clone())
            .run(&plan, feed, &options, &())
            .await
            .unwrap()
    }

    /// One page of the flow's source stream, committed by a sync run.
    fn commit(
        store: &SqliteStore,
        records: &[Record],
        delivered: Delivered<'_>,
        dead_letters: &[DeadLetter],
    ) {
        let flow = flow();
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
                    records,
                },
                delivered,
                dead_letters,
                log_changes: false,
                sweep: Sweep::Off,
            })
            .unwrap();
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
        let summary = again(&store, Feed::Stored, strict, 7).await;
        assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
        // Five `vip` records do not fit: dead letters; the other 20 (the
        // delete included) are mapped, `c_003` among them: its old dead
        // letter is resolved.
        assert_eq!(
            (
                summary.records_read,
                summary.records_written,
                summary.records_failed,
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
        let summary = again(&store, Feed::DeadLetters, fixed, 2).await;
        assert_eq!(
            (
                summary.records_read,
                summary.records_written,
                summary.records_failed,
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
        let summary = again(&store, Feed::DeadLetters, needs_phone, 1).await;
        assert_eq!(summary.status, RunStatus::Succeeded);
        assert_eq!(
            (
                summary.records_read,
                summary.records_failed,
                summary.resolved
            ),
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
        // Synced again since it failed: a newer copy is in the store.
        let newer = Record {
            version: Some(2),
            data: json!({ "id": "c_003", "email": "new@example.com", "stage": "lead" }).to_string(),
            ..contact(3, "lead")
        };
        commit(&store, std::slice::from_ref(&newer), Delivered::Raw, &[]);
        let copy = reshaper(json!({ "fields": [{ "to": "/mail", "from": "/email" }] }));
        again(&store, Feed::DeadLetters, copy, 1_000).await;
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
