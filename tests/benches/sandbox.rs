//! What the sandbox and the rate budgets do and cost, measured in one run:
//!
//! 1. budget accuracy: a budget of 20 requests/s against a partner limiting
//!    at 25/s (400+ requests): achieved rate, the most requests seen in any
//!    1 s window, 429s; then against a partner limiting at 15/s, below the
//!    budget: whether the run completes, its rate and its 429s;
//! 2. instantiate + call latency of a trivial export (p50/p99), with the
//!    pooling allocator and without;
//! 3. records/s of the core sync with every limit on (deadlines, memory
//!    cap, rate budget, audit log) and with none.
//!
//! Run with `cargo xtask bench` (or `cargo bench -p weir-host --bench sandbox`).

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks set up files directly"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use partner_sim::{PartnerSim, RateLimit, SimConfig};
use weir_host::config::Config;
use weir_host::connection::{Connection, ConnectionServices};
use weir_host::contract::Checkpoint;
use weir_host::flow::{Destination, Feed, FlowRunner, Plan, Reshaper, RunOptions, RunSummary};
use weir_host::ids::ConnectionId;
use weir_host::plugin::PluginRegistry;
use weir_host::runtime::{Runtime, RuntimeOptions};
use weir_host::store::{EgressLog, PluginLedger, SqliteStore};
use weir_tests::measure::percentile;
use weir_tests::{API_KEY, acme_config, guests};

fn main() -> anyhow::Result<()> {
    // SAFETY: set before the runtime starts any thread.
    unsafe { std::env::set_var("ACME_API_KEY", API_KEY) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        budget_accuracy(25.0, 4_200).await?;
        budget_accuracy(15.0, 2_000).await?;
        call_latency().await?;
        limits_overhead().await
    })
}

/// A runtime, plugins and one connection `acme` with extra settings.
struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    services: ConnectionServices,
    connection: Arc<Connection>,
    config: Config,
}

async fn setup(
    sim: &PartnerSim,
    settings: &str,
    options: impl FnOnce(&Path) -> RuntimeOptions,
    recorded: bool,
) -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("plugins"))?;
    std::fs::copy(guests::ACME_CRM, dir.path().join("plugins/acme_crm.wasm"))?;
    let text = acme_config(&sim.base_url()).replacen(
        "secrets.api_key = { env = \"ACME_API_KEY\" }",
        &format!("secrets.api_key = {{ env = \"ACME_API_KEY\" }}\n{settings}"),
        1,
    );
    let config = Config::parse(&dir.path().join("weir.toml"), &text)?;
    let runtime = Runtime::new(options(dir.path()))?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("weir.db"))?);
    let ledger: Arc<dyn PluginLedger> = store.clone();
    let registry = PluginRegistry::load_dir(&runtime, &config.plugins_dir, &ledger).await?;
    let services = if recorded {
        ConnectionServices::new(store.clone())
    } else {
        ConnectionServices::unrecorded()
    };
    let connection = Connection::open(&runtime, &registry, config.connection("acme")?, &services)
        .map(Arc::new)
        .map_err(anyhow::Error::new)?;
    Ok(Setup {
        _dir: dir,
        store,
        services,
        connection,
        config,
    })
}

async fn sync(setup: &Setup, store: Arc<SqliteStore>) -> anyhow::Result<RunSummary> {
    let runner = FlowRunner::new(store);
    let flow = setup.config.flow("contacts")?;
    let plan = Plan {
        flow: flow.clone(),
        reshaper: Reshaper::identity(),
        destination: Destination::Store,
    };
    let feed = Feed::Partner {
        source: setup.connection.clone(),
        full_refresh: false,
        log_changes: false,
    };
    Ok(runner.run(&plan, feed, &RunOptions::default(), &()).await?)
}

async fn budget_accuracy(partner_limit: f64, contacts: usize) -> anyhow::Result<()> {
    let sim = PartnerSim::start(SimConfig {
        contacts,
        companies: 0,
        api_key: API_KEY.into(),
        ..SimConfig::default()
    })
    .await?;
    sim.set_rate_limit(Some(RateLimit {
        per_second: partner_limit,
        burst: partner_limit as u32,
    }));
    let setup = setup(
        &sim,
        "page_size = 10\nrate_limit = { requests_per_second = 20 }",
        |d| RuntimeOptions::new(d.join("cache")),
        true,
    )
    .await?;
    let summary = sync(&setup, setup.store.clone()).await?;
    setup.services.flush().await;
    let mut sent: Vec<i64> = setup
        .store
        .audit(Some(&ConnectionId::new("acme")?), 100_000)?
        .into_iter()
        .filter(|e| e.status.is_some())
        .map(|e| e.at_ms)
        .collect();
    sent.sort_unstable();
    let span = (sent[sent.len() - 1] - sent[0]) as f64 / 1000.0;
    let rate = (sent.len() - 1) as f64 / span;
    let mut busiest = 0;
    let mut start = 0;
    for end in 0..sent.len() {
        while sent[end] - sent[start] >= 1000 {
            start += 1;
        }
        busiest = busiest.max(end - start + 1);
    }
    println!(
        "budget 20/s, partner limit {partner_limit}/s: run {}, {} requests in {span:.1} s = {rate:.2}/s ({:.1}% of the budget), busiest 1 s window {busiest}, 429s {}",
        summary.status.as_str(),
        sent.len(),
        rate / 20.0 * 100.0,
        sim.counters().status(429),
    );
    sim.shutdown().await;
    Ok(())
}

async fn call_latency() -> anyhow::Result<()> {
    let sim = PartnerSim::start(SimConfig {
        contacts: 10,
        api_key: API_KEY.into(),
        ..SimConfig::default()
    })
    .await?;
    for pooling in [true, false] {
        let setup = setup(
            &sim,
            "",
            |d| RuntimeOptions {
                pooling,
                ..RuntimeOptions::new(d.join("cache"))
            },
            true,
        )
        .await?;
        let old = Checkpoint {
            format: 0,
            state: "{}".into(),
        };
        let mut times = Vec::with_capacity(2_000);
        for i in 0..2_200 {
            let started = Instant::now();
            // acme-crm does not migrate checkpoints: a trivial export call.
            let _ = setup
                .connection
                .migrate_checkpoint("contacts", old.clone())
                .await;
            if i >= 200 {
                times.push(started.elapsed());
            }
        }
        println!(
            "instantiate + trivial call, {}: p50 {:.1} us, p99 {:.1} us",
            if pooling {
                "pooling allocator"
            } else {
                "on-demand allocator"
            },
            percentile(&mut times, 0.5).as_secs_f64() * 1e6,
            percentile(&mut times, 0.99).as_secs_f64() * 1e6,
        );
    }
    sim.shutdown().await;
    Ok(())
}

async fn limits_overhead() -> anyhow::Result<()> {
    let sim = PartnerSim::start(SimConfig {
        contacts: 100_000,
        companies: 0,
        api_key: API_KEY.into(),
        ..SimConfig::default()
    })
    .await?;
    let on = setup(
        &sim,
        "call_timeout = \"2m\"\nmemory_limit_mb = 256\nrate_limit = { requests_per_second = 100000, burst = 1000, daily_quota = 100000000, max_concurrent = 8 }",
        |d| RuntimeOptions::new(d.join("cache")),
        true,
    )
    .await?;
    let off = setup(
        &sim,
        "",
        |d| RuntimeOptions {
            enforce_limits: false,
            ..RuntimeOptions::new(d.join("cache"))
        },
        false,
    )
    .await?;
    let (mut with_limits, mut without) = (Vec::new(), Vec::new());
    let scratch = tempfile::tempdir()?;
    for round in 0..4 {
        for (name, setup, rates) in [("on", &on, &mut with_limits), ("off", &off, &mut without)] {
            let store = Arc::new(SqliteStore::open(
                &scratch.path().join(format!("{name}-{round}.db")),
            )?);
            let summary = sync(setup, store).await?;
            if round > 0 {
                rates.push(summary.records_per_second());
            }
        }
    }
    with_limits.sort_by(f64::total_cmp);
    without.sort_by(f64::total_cmp);
    let (on, off) = (with_limits[1], without[1]);
    println!("sync of 100,000 records, every limit on : {on:>9.0} records/s");
    println!("sync of 100,000 records, no limits      : {off:>9.0} records/s");
    println!(
        "cost of the limits                      : {:>8.1}%",
        (1.0 - on / off) * 100.0
    );
    sim.shutdown().await;
    Ok(())
}
