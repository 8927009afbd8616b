//! Webhooks end to end through a real `weir run`: signed deliveries sent
//! over HTTP by 32 concurrent senders, each verified by the connector
//! (wasm), stored durably, acknowledged, then merged into the store.
//! Prints acks/s, the senders' ack latency, and the time from receipt to
//! the change in the store (p50/p99).
//!
//! Run with `cargo xtask bench` (or `cargo bench -p weir-host --bench webhooks`).

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks set up files directly"
)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use partner_sim::sign_standard_webhook;
use serde_json::json;
use weir_tests::measure::percentile;
use weir_tests::{Workspace, guests};

const SENDERS: usize = 32;
const PER_SENDER: usize = 300;
const SECRET: &str = "bench-signing-secret";

fn main() -> anyhow::Result<()> {
    weir_tests::block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let sim = weir_tests::simulator(1_000, 0).await;
    let ws = Workspace::new(env!("CARGO_BIN_EXE_weir"));
    let url = sim.base_url();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&format!(
            r#"
[admin]
listen = "127.0.0.1:0"

[ingress]
listen = "127.0.0.1:0"
per_tenant_rate = 1000000
per_tenant_burst = 1000000

{connection}secrets.webhook_secret = {{ env = "ACME_WEBHOOK_SECRET" }}
shared_credentials = true

[flows.contacts]
source = "acme"
stream = "contacts"
"#,
            connection = weir_tests::acme_connection("acme", &url)
        ));
    let weir = ws
        .start_daemon_with(&[("ACME_WEBHOOK_SECRET", SECRET)])
        .await;
    let (status, body) = weir
        .admin("POST", "/tenants", Some(json!({ "id": "t1" })))
        .await;
    anyhow::ensure!(status == 201, "{body}");
    let endpoint = weir.webhook_url("t1", "acme").await;
    let records = sim.records("contacts");
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(SENDERS)
        .build()?;

    let started = Instant::now();
    let senders = (0..SENDERS).map(|s| {
        let (client, endpoint, records) = (client.clone(), endpoint.clone(), records.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(PER_SENDER);
            for i in 0..PER_SENDER {
                let mut record = records[(s * PER_SENDER + i) % records.len()].clone();
                record["version"] = json!(1_000 + s * PER_SENDER + i);
                let body = json!({ "type": "contact.updated", "timestamp": record["updated_at"], "data": record }).to_string();
                let id = format!("msg_{s}_{i}");
                let request = client
                    .post(&endpoint)
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", now.to_string())
                    .header("webhook-signature", sign_standard_webhook(SECRET.as_bytes(), &id, now, body.as_bytes()))
                    .body(body);
                let sent = Instant::now();
                let response = request.send().await.expect("the ingress answers");
                assert_eq!(response.status(), 200, "acknowledged");
                latencies.push(sent.elapsed());
            }
            latencies
        })
    });
    let mut latencies = Vec::new();
    for sender in senders.collect::<Vec<_>>() {
        latencies.extend(sender.await?);
    }
    let elapsed = started.elapsed();
    let total = SENDERS * PER_SENDER;
    let mut pct = |q: f64| percentile(&mut latencies, q).as_secs_f64() * 1000.0;
    println!(
        "{total} deliveries from {SENDERS} senders over HTTP, verified in wasm, stored durably:"
    );
    println!(
        "  {:.0} acks/s   ack latency p50 {:.2} ms   p99 {:.2} ms",
        total as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, report) = weir.admin("GET", "/webhooks", None).await;
        let lag = &report["lag"];
        if lag["samples"].as_u64().unwrap_or(0) as usize >= total.min(10_000) {
            println!(
                "  receipt -> change in the store: p50 {} ms   p99 {} ms ({} deliveries)",
                lag["p50_ms"], lag["p99_ms"], lag["samples"]
            );
            let inbox = &report["inbox"];
            println!("  inbox: {inbox}");
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the workers did not catch up: {report}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = weir.terminate().await;
    anyhow::ensure!(status.success());
    sim.shutdown().await;
    Ok(())
}
