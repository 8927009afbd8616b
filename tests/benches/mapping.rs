//! Throughput of a flow's mapping stage on 100,000 contacts of the partner
//! simulator, in pages of 1,000, the same reshaping done two ways:
//!
//! - **mapping**: the declarative ten-rule mapping (native Rust in the host);
//! - **transform**: the `contact-mapper` transform plugin (wasm, sandboxed:
//!   one fresh instance per page, records crossing the boundary as JSON
//!   text), which writes exactly what the mapping writes.
//!
//! Both go through `Reshaper::reshape`, as a flow does; the outputs are
//! checked to be identical, record by record. Prints records/s of each
//! (median of the rounds) and the ratio. Run with `cargo bench -p weir-host
//! --bench mapping`; `WEIR_BENCH_RECORDS` and `WEIR_BENCH_ROUNDS` change
//! the size.

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks set up files directly"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use partner_sim::{PartnerSim, SimConfig};
use serde_json::{Value, json};
use weir_host::config::TransformConfig;
use weir_host::contract::{ChangeKind, Record};
use weir_host::flow::Reshaper;
use weir_host::mapping::Mapping;
use weir_host::plugin::PluginRegistry;
use weir_host::runtime::{Runtime, RuntimeOptions};
use weir_host::store::{PluginLedger, SqliteStore};
use weir_tests::measure::{env_or, median};
use weir_tests::{API_KEY, contact_mapping, guests};

const PAGE: usize = 1_000;

fn main() -> anyhow::Result<()> {
    let records = env_or("WEIR_BENCH_RECORDS", 100_000);
    let rounds = env_or("WEIR_BENCH_ROUNDS", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(records, rounds))
}

async fn bench(count: usize, rounds: usize) -> anyhow::Result<()> {
    let sim = PartnerSim::start(SimConfig {
        contacts: count,
        companies: 2_000,
        api_key: API_KEY.into(),
        ..SimConfig::default()
    })
    .await?;
    let pages: Vec<Vec<Record>> = sim
        .records("contacts")
        .iter()
        .map(|contact| Record {
            key: contact["id"].as_str().unwrap_or_default().to_owned(),
            version: contact["version"].as_u64(),
            kind: ChangeKind::Upsert,
            data: contact.to_string(),
        })
        .collect::<Vec<_>>()
        .chunks(PAGE)
        .map(<[Record]>::to_vec)
        .collect();
    sim.shutdown().await;

    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("plugins"))?;
    std::fs::copy(
        guests::CONTACT_MAPPER,
        dir.path().join("plugins/contact_mapper.wasm"),
    )?;
    let wasm = Runtime::new(RuntimeOptions::new(dir.path().join("cache")))?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("weir.db"))?);
    let ledger: Arc<dyn PluginLedger> = store;
    let registry = PluginRegistry::load_dir(&wasm, &dir.path().join("plugins"), &ledger).await?;
    let mapping = Reshaper::mapping(Arc::new(Mapping::parse(&contact_mapping())?));
    let transform = Reshaper::new(
        &wasm,
        &registry,
        None,
        &[TransformConfig {
            plugin: "contact-mapper".into(),
            config: json!({ "timezone": "Europe/Paris", "source": "acme" }),
        }],
    )
    .map_err(anyhow::Error::new)?;

    println!(
        "mapping stage on {count} contacts in pages of {PAGE}, {rounds} rounds each, pooling allocator: {}",
        wasm.pooling()
    );
    // Warm-up, and the proof that both write the same records.
    let (_, by_mapping) = round(&mapping, &pages).await?;
    let (_, by_transform) = round(&transform, &pages).await?;
    assert_eq!(by_mapping.len(), count, "the mapping kept every record");
    for (a, b) in by_mapping.iter().zip(&by_transform) {
        assert_eq!(a.key, b.key);
        let (a, b): (Value, Value) = (
            serde_json::from_str(&a.data)?,
            serde_json::from_str(&b.data)?,
        );
        assert_eq!(a, b, "the transform writes what the mapping writes");
    }
    drop((by_mapping, by_transform));

    let (mut mapped, mut transformed) = (Vec::new(), Vec::new());
    for n in 1..=rounds {
        let (elapsed, _) = round(&mapping, &pages).await?;
        mapped.push(count as f64 / elapsed.as_secs_f64());
        let (elapsed, _) = round(&transform, &pages).await?;
        transformed.push(count as f64 / elapsed.as_secs_f64());
        println!(
            "  round {n}: mapping {:>9.0} records/s   transform {:>9.0} records/s",
            mapped.last().unwrap(),
            transformed.last().unwrap()
        );
    }
    let (mapped, transformed) = (median(&mut mapped), median(&mut transformed));
    println!("declarative mapping (native)        {mapped:>9.0} records/s");
    println!("contact-mapper transform (wasm)     {transformed:>9.0} records/s");
    println!(
        "ratio transform/mapping             {:>9.2}x",
        transformed / mapped
    );
    Ok(())
}

/// Reshapes every page, one after the other, as a flow's pages go.
async fn round(
    reshaper: &Reshaper,
    pages: &[Vec<Record>],
) -> anyhow::Result<(Duration, Vec<Record>)> {
    let mut out = Vec::with_capacity(pages.len() * PAGE);
    let started = Instant::now();
    for page in pages {
        let reshaped = reshaper.reshape(page).await?;
        anyhow::ensure!(
            reshaped.failed.is_empty(),
            "records failed: {:?}",
            reshaped.failed.first().map(|f| f.failure.reason())
        );
        out.extend(reshaped.records);
    }
    Ok((started.elapsed(), out))
}
