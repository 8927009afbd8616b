//! Hot reload, measured on a running `weir run` with 20 tenants syncing
//! every second: the time from a plugin file's rename into place to the new
//! version serving, with a cold compile (new content) and with a compile
//! cache hit (content seen before), and the admin API's latency while
//! reloads happen, against its latency at rest.
//!
//! Run with `cargo xtask bench` (or `cargo bench -p weir-host --bench reload`).

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks set up files directly"
)]

use std::time::{Duration, Instant};

use weir_tests::measure::percentile;
use weir_tests::{RunningWeir, Workspace, guests};

const ROUNDS: usize = 5;

fn main() -> anyhow::Result<()> {
    weir_tests::block_on(bench())
}

/// The component with a custom section appended: same behaviour, new
/// content hash, so the compile cache misses.
fn variant(wasm: &[u8], n: usize) -> Vec<u8> {
    let name = b"weir-bench";
    let payload = n.to_le_bytes();
    let mut out = wasm.to_vec();
    out.push(0); // custom section
    out.push((1 + name.len() + payload.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

async fn install(ws: &Workspace, bytes: &[u8]) -> Instant {
    let tmp = ws.plugins_dir().join(".acme_crm.wasm.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    let renamed = Instant::now();
    std::fs::rename(&tmp, ws.plugins_dir().join("acme_crm.wasm")).unwrap();
    renamed
}

async fn serving_hash(weir: &RunningWeir) -> String {
    let (_, plugins) = weir.admin("GET", "/plugins", None).await;
    plugins["loaded"][0]["content_hash"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn time_until_serving(weir: &RunningWeir, renamed: Instant, bytes: &[u8]) -> Duration {
    let expected = hex_sha256(bytes);
    loop {
        if serving_hash(weir).await == expected {
            return renamed.elapsed();
        }
        assert!(
            renamed.elapsed() < Duration::from_secs(60),
            "the reload did not happen"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn admin_latencies(weir: &RunningWeir, during: Duration) -> Vec<Duration> {
    let until = Instant::now() + during;
    let mut samples = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        let (status, _) = weir.admin("GET", "/status", None).await;
        assert_eq!(status, 200);
        samples.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    samples
}

async fn bench() -> anyhow::Result<()> {
    let sim = weir_tests::simulator(200, 0).await;
    let ws = Workspace::new(env!("CARGO_BIN_EXE_weir"));
    let url = sim.base_url();
    ws.write_config(&format!(
        r#"
[admin]
listen = "127.0.0.1:0"

{connection}
[flows.contacts]
source = "acme"
stream = "contacts"
schedule = "every 1s"
"#,
        connection = weir_tests::acme_connection("acme", &url)
    ));
    let v1 = std::fs::read(guests::ACME_CRM)?;
    let v2 = std::fs::read(guests::ACME_CRM_V2)?;
    install(&ws, &v1).await;
    let weir = ws.start_daemon().await;
    for i in 0..20 {
        let (status, body) = weir
            .admin(
                "POST",
                "/tenants",
                Some(weir_tests::connected_tenant(&format!("t{i}"), &["acme"])),
            )
            .await;
        anyhow::ensure!(status == 201, "{body}");
    }
    let mut at_rest = admin_latencies(&weir, Duration::from_secs(3)).await;

    let (mut cold, mut warm, mut during) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let fresh = variant(&v2, round);
        let renamed = install(&ws, &fresh).await;
        let (latency, samples) = tokio::join!(
            time_until_serving(&weir, renamed, &fresh),
            admin_latencies(&weir, Duration::from_millis(1_500))
        );
        cold.push(latency);
        during.extend(samples);
        // Back to v1, whose artifact is in the compile cache.
        let renamed = install(&ws, &v1).await;
        warm.push(time_until_serving(&weir, renamed, &v1).await);
    }
    let status = weir.terminate().await;
    anyhow::ensure!(status.success(), "weir exited with {status}");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "reload, rename -> new version serving ({ROUNDS} rounds, includes the 250 ms quiet period):"
    );
    println!(
        "  cold compile   p50 {:>7.1} ms   max {:>7.1} ms",
        ms(percentile(&mut cold, 0.5)),
        ms(percentile(&mut cold, 1.0))
    );
    println!(
        "  cache hit      p50 {:>7.1} ms   max {:>7.1} ms",
        ms(percentile(&mut warm, 0.5)),
        ms(percentile(&mut warm, 1.0))
    );
    println!("admin API GET /status latency (20 tenants syncing every second):");
    println!(
        "  at rest        p50 {:>7.2} ms   p99 {:>7.2} ms",
        ms(percentile(&mut at_rest, 0.5)),
        ms(percentile(&mut at_rest, 0.99))
    );
    println!(
        "  during reloads p50 {:>7.2} ms   p99 {:>7.2} ms",
        ms(percentile(&mut during, 0.5)),
        ms(percentile(&mut during, 0.99))
    );
    sim.shutdown().await;
    Ok(())
}
