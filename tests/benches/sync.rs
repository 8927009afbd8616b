//! Full sync of 100,000 contacts (~12 fields each) from the partner
//! simulator into SQLite, measured side by side in one process:
//!
//! - **weir**: the `acme-crm` connector (wasm, sandboxed) driven by Weir's
//!   flow runner;
//! - **native**: a Rust program doing the same work without a sandbox: the
//!   same HTTP pages, the same JSON handling (raw records, key and version
//!   read out), the same SQLite upserts with the page's checkpoint in one
//!   transaction, the same overlap of one page's commit with the next fetch.
//!
//! Prints records/s for each (median of the rounds) and Weir's ratio.
//! Run with `cargo xtask bench` (or `cargo bench -p weir-host --bench sync`);
//! `WEIR_BENCH_RECORDS` and `WEIR_BENCH_ROUNDS` change the size.

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks set up files directly"
)]

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use partner_sim::{PartnerSim, SimConfig};
use serde::Deserialize;
use serde_json::value::RawValue;
use weir_host::config::Config;
use weir_host::connection::{Connection, ConnectionServices};
use weir_host::contract::{ChangeKind, Checkpoint, Record};
use weir_host::flow::{Destination, Feed, FlowRunner, Plan, Reshaper, RunOptions};
use weir_host::ids::FlowId;
use weir_host::plugin::PluginRegistry;
use weir_host::runtime::{Runtime, RuntimeOptions};
use weir_host::store::{
    Delivered, PageCommit, PluginLedger, RunLog, SourcePage, SqliteStore, Sweep, SyncStore,
};
use weir_tests::measure::{env_or, median};
use weir_tests::{API_KEY, acme_config, guests};

const PAGE: usize = 1_000;

fn main() -> anyhow::Result<()> {
    let records = env_or("WEIR_BENCH_RECORDS", 100_000);
    let rounds = env_or("WEIR_BENCH_ROUNDS", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(records, rounds))
}

async fn bench(records: usize, rounds: usize) -> anyhow::Result<()> {
    let sim = PartnerSim::start(SimConfig {
        contacts: records,
        companies: 0,
        api_key: API_KEY.into(),
        ..SimConfig::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("plugins"))?;
    std::fs::copy(guests::ACME_CRM, dir.path().join("plugins/acme_crm.wasm"))?;
    let config_path = dir.path().join("weir.toml");
    // SAFETY: set before any other thread reads the environment.
    unsafe { std::env::set_var("ACME_API_KEY", API_KEY) };
    let config = Config::parse(&config_path, &acme_config(&sim.base_url()))?;
    let wasm = Runtime::new(RuntimeOptions::new(dir.path().join("cache")))?;
    let egress = Arc::new(SqliteStore::open(&dir.path().join("egress.db"))?);
    let ledger: Arc<dyn PluginLedger> = egress.clone();
    let registry = PluginRegistry::load_dir(&wasm, &config.plugins_dir, &ledger).await?;
    let services = ConnectionServices::new(egress);
    let connection = Connection::open(&wasm, &registry, config.connection("acme")?, &services)
        .map(Arc::new)
        .map_err(anyhow::Error::new)?;
    let flow = config.flow("contacts")?.clone();

    println!(
        "full sync of {records} contacts in pages of {PAGE}, {rounds} rounds each, pooling allocator: {}",
        wasm.pooling()
    );
    let (mut weir_rates, mut native_rates) = (Vec::new(), Vec::new());
    // Warm-up: connections, caches, the simulator's pages.
    weir_round(dir.path(), &flow, &connection, 0).await?;
    native_round(dir.path(), &sim.base_url(), 0).await?;
    for round in 1..=rounds {
        let (n, t) = weir_round(dir.path(), &flow, &connection, round).await?;
        assert_eq!(n, records as u64, "weir stored every record");
        weir_rates.push(n as f64 / t.as_secs_f64());
        let (n, t) = native_round(dir.path(), &sim.base_url(), round).await?;
        assert_eq!(n, records as u64, "native stored every record");
        native_rates.push(n as f64 / t.as_secs_f64());
        println!(
            "  round {round}: weir {:>9.0} records/s   native {:>9.0} records/s",
            weir_rates.last().unwrap(),
            native_rates.last().unwrap()
        );
    }
    let (weir, native) = (median(&mut weir_rates), median(&mut native_rates));
    println!("weir   (sandboxed connector)  {weir:>9.0} records/s");
    println!("native (Rust, no sandbox)     {native:>9.0} records/s");
    println!("ratio weir/native             {:>9.2}x", weir / native);
    sim.shutdown().await;
    Ok(())
}

async fn weir_round(
    dir: &Path,
    flow: &weir_host::config::FlowConfig,
    connection: &Arc<Connection>,
    round: usize,
) -> anyhow::Result<(u64, Duration)> {
    let store = Arc::new(SqliteStore::open(&dir.join(format!("weir-{round}.db")))?);
    let runner = FlowRunner::new(store);
    let plan = Plan {
        flow: flow.clone(),
        reshaper: Reshaper::identity(),
        destination: Destination::Store,
    };
    let feed = Feed::Partner {
        source: connection.clone(),
        full_refresh: false,
        log_changes: false,
    };
    let summary = runner.run(&plan, feed, &RunOptions::default(), &()).await?;
    if let Some(error) = summary.error {
        anyhow::bail!("the weir run failed: {error}");
    }
    Ok((summary.records_read, summary.elapsed))
}

#[derive(Deserialize)]
struct ListPage<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    next_cursor: Option<String>,
    has_more: bool,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    version: Option<u64>,
    #[serde(default)]
    deleted: bool,
}

async fn native_round(dir: &Path, base_url: &str, round: usize) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let store = Arc::new(SqliteStore::open(&dir.join(format!("native-{round}.db")))?);
    let flow = FlowId::new("contacts")?;
    let connection = weir_host::ids::ConnectionId::new("acme")?;
    let run = store.start_run(&flow, "native", false)?;
    let client = reqwest::Client::new();
    let url = format!("{base_url}/v1/contacts");
    let mut cursor: Option<String> = None;
    let mut stored = 0;
    let mut pending: Option<tokio::task::JoinHandle<anyhow::Result<u64>>> = None;
    loop {
        let mut request = client.get(&url).header("x-api-key", API_KEY).query(&[
            ("limit", PAGE.to_string()),
            ("include_deleted", "true".into()),
        ]);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let response = request.send().await?.error_for_status()?;
        let body = response.bytes().await?;
        let page: ListPage = serde_json::from_slice(&body)?;
        let records = page
            .data
            .iter()
            .map(|raw| {
                let meta: Meta = serde_json::from_str(raw.get())?;
                Ok(Record {
                    key: meta.id.into_owned(),
                    version: meta.version,
                    kind: if meta.deleted {
                        ChangeKind::Delete
                    } else {
                        ChangeKind::Upsert
                    },
                    data: raw.get().to_string(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let checkpoint = Checkpoint {
            format: 1,
            state: serde_json::json!({ "cursor": page.next_cursor }).to_string(),
        };
        if let Some(previous) = pending.take() {
            stored += previous.await??;
        }
        let (store, flow, connection) = (store.clone(), flow.clone(), connection.clone());
        pending = Some(tokio::task::spawn_blocking(move || {
            store.commit_page(&PageCommit {
                flow: &flow,
                stream: "contacts",
                run,
                checkpoint: &checkpoint,
                source: SourcePage {
                    connection: &connection,
                    stream: "contacts",
                    records: &records,
                },
                delivered: Delivered::Raw,
                dead_letters: &[],
                log_changes: false,
                sweep: Sweep::Off,
            })?;
            Ok(records.len() as u64)
        }));
        if !page.has_more {
            break;
        }
        cursor = page.next_cursor;
    }
    if let Some(previous) = pending.take() {
        stored += previous.await??;
    }
    Ok((stored, started.elapsed()))
}
