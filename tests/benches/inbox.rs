//! The webhook inbox's durable acknowledgements: deliveries acknowledged
//! per second — each only after the `fsync` of the commit that holds it —
//! and how long each waited, with 1, 32 and 128 concurrent senders calling
//! `Inbox::submit` in-process (no HTTP), ~1 KB bodies with a partner's
//! usual headers, WAL + `synchronous = FULL`, group commit.
//!
//! Run with `cargo bench -p weir-host --bench inbox`. The database goes to
//! the system temp directory, or to `WEIR_BENCH_DIR` (use the disk that
//! production uses: the numbers are bound by its `fsync`, measured first).
//! `WEIR_BENCH_SENDERS=32` (or `1,32`) runs only those levels.

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks set up files directly"
)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_host::ids::{ConnectionId, TenantId};
use weir_host::inbox::{DeliveryKey, Headers, Inbox, InboxOptions, NewDelivery};
use weir_tests::measure::{ms, percentile};

const LEVELS: [usize; 3] = [1, 32, 128];
/// Each level stops after this long or this many deliveries.
const LEVEL_TIME: Duration = Duration::from_secs(5);
const LEVEL_DELIVERIES: i64 = 200_000;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let base = std::env::var_os("WEIR_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base)?;
    let (sync_p50, sync_p99) = fsync_latency(dir.path())?;
    println!(
        "inbox in {}: fsync of 4 KiB p50 {} p99 {}",
        base.display(),
        ms(sync_p50),
        ms(sync_p99)
    );
    println!();
    println!(
        "{:>7} {:>9} {:>10} {:>9} {:>9} {:>9} {:>11} {:>9} {:>8}",
        "senders", "acks", "acks/s", "p50", "p99", "max", "mean batch", "max batch", "refused"
    );
    let levels: Vec<usize> = match std::env::var("WEIR_BENCH_SENDERS") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse())
            .collect::<Result<_, _>>()?,
        Err(_) => LEVELS.to_vec(),
    };
    for senders in levels {
        let level = run_level(&dir.path().join(format!("inbox-{senders}.db")), senders).await?;
        println!(
            "{senders:>7} {:>9} {:>10.0} {:>9} {:>9} {:>9} {:>11.1} {:>9} {:>8}",
            level.acks,
            level.acks as f64 / level.elapsed.as_secs_f64(),
            ms(level.p50),
            ms(level.p99),
            ms(level.max),
            level.mean_batch,
            level.max_batch,
            level.refused,
        );
    }
    Ok(())
}

struct Level {
    acks: u64,
    refused: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    mean_batch: f64,
    max_batch: u64,
}

async fn run_level(path: &Path, senders: usize) -> anyhow::Result<Level> {
    let inbox = Inbox::open(path, InboxOptions::default())?;
    let body = webhook_body();
    let budget = Arc::new(AtomicI64::new(LEVEL_DELIVERIES));
    let started = Instant::now();
    let stop = started + LEVEL_TIME;
    let tasks: Vec<_> = (0..senders)
        .map(|sender| {
            let inbox = inbox.clone();
            let body = body.clone();
            let budget = Arc::clone(&budget);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut refused = 0u64;
                for i in 0.. {
                    if Instant::now() >= stop || budget.fetch_sub(1, Ordering::Relaxed) <= 0 {
                        break;
                    }
                    let delivery = webhook(&format!("evt_{sender}_{i}"), body.clone());
                    let submitted = Instant::now();
                    match inbox.submit(delivery).await {
                        Ok(_) => latencies.push(submitted.elapsed()),
                        Err(_) => refused += 1,
                    }
                }
                (latencies, refused)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (mine, my_refused) = task.await?;
        latencies.extend(mine);
        refused += my_refused;
    }
    let elapsed = started.elapsed();
    let metrics = inbox.snapshot();
    inbox.close().await;
    Ok(Level {
        acks: latencies.len() as u64,
        refused,
        elapsed,
        p50: percentile(&mut latencies, 0.50),
        p99: percentile(&mut latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        mean_batch: metrics.batches.mean,
        max_batch: metrics.batches.max,
    })
}

/// A delivery as a CRM partner sends it.
fn webhook(id: &str, body: Bytes) -> NewDelivery {
    let headers: Headers = [
        ("host", "hooks.example.com".to_string()),
        (
            "user-agent",
            "AcmeCRM-Webhooks/2.3 (+https://acme.example/docs/webhooks)".into(),
        ),
        ("content-type", "application/json; charset=utf-8".into()),
        ("content-length", body.len().to_string()),
        ("accept-encoding", "gzip".into()),
        ("x-acme-webhook-id", id.into()),
        ("x-acme-timestamp", "1718035200".into()),
        (
            "x-acme-signature",
            "t=1718035200,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"
                .into(),
        ),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        ),
        ("x-forwarded-for", "203.0.113.7".into()),
    ]
    .into_iter()
    .map(|(name, value)| (name, Bytes::from(value)))
    .collect();
    NewDelivery {
        tenant: TenantId::new("tenant-042").expect("valid"),
        connection: ConnectionId::new("acme-crm").expect("valid"),
        key: DeliveryKey::new(id).expect("valid"),
        method: "POST".into(),
        path: "/hooks/tenant-042/acme-crm".into(),
        query: None,
        headers,
        body,
    }
}

/// About 1 KB of JSON.
fn webhook_body() -> Bytes {
    let body = serde_json::json!({
        "id": "evt_1PQx8L2eZvKYlo2C0mX3a9Qd",
        "type": "contact.updated",
        "created": 1718035200,
        "api_version": "2024-06-01",
        "account": "acct_7Hq2LmN4pR8sT1vW",
        "data": {
            "object": {
                "id": "con_9f8e7d6c5b4a3210",
                "email": "jordan.avery@northwind.example",
                "first_name": "Jordan",
                "last_name": "Avery",
                "phone": "+1 415 555 0134",
                "company": { "id": "cmp_31ab77", "name": "Northwind Traders", "domain": "northwind.example" },
                "lifecycle_stage": "customer",
                "owner": { "id": "usr_118", "email": "sales.lead@acme.example" },
                "tags": ["enterprise", "renewal-q3", "priority"],
                "address": { "line1": "500 Market Street", "city": "San Francisco", "region": "CA", "postal_code": "94105", "country": "US" },
                "custom_fields": { "plan": "scale", "seats": 250, "renewal_date": "2024-09-30", "nps": 9 },
                "updated_at": "2024-06-10T16:00:00Z"
            },
            "previous_attributes": { "lifecycle_stage": "opportunity", "custom_fields": { "seats": 200 } }
        },
        "request": { "id": "req_4kPz0aYtQ2", "idempotency_key": "8c1f6a0e-8a63-4d8b-9f3c-2b7d1c0e5a44" }
    });
    Bytes::from(serde_json::to_vec_pretty(&body).expect("serializable"))
}

/// The disk's durable-write latency, which bounds every acknowledgement.
fn fsync_latency(dir: &Path) -> std::io::Result<(Duration, Duration)> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let mut times = Vec::new();
    for _ in 0..200 {
        file.write_all(&[7; 4096])?;
        let started = Instant::now();
        file.sync_data()?;
        times.push(started.elapsed());
    }
    std::fs::remove_file(&path)?;
    Ok((percentile(&mut times, 0.5), percentile(&mut times, 0.99)))
}
