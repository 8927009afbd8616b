//! The daemon's cost at rest: 1,000 tenants x 3 flows, all synced once and
//! then idle until their next (hourly) run. Starts the real `weir run`,
//! waits for the 3,000 first runs, then samples its CPU use and resident
//! memory from /proc for 30 s.
//!
//! Run with `cargo xtask bench` (or `cargo bench -p weir-host --bench scheduler`).

#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks set up files directly"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use weir_host::store::{SqliteStore, TenantStore};
use weir_host::tenant::Tenant;
use weir_tests::{Workspace, guests};

const TENANTS: usize = 1_000;
const IDLE_WINDOW: Duration = Duration::from_secs(30);

fn main() -> anyhow::Result<()> {
    weir_tests::block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let sim = weir_tests::simulator(20, 5).await;
    let ws = Workspace::new(env!("CARGO_BIN_EXE_weir"));
    let url = sim.base_url();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&format!(
            r#"
[admin]
listen = "127.0.0.1:0"

{connection}
[flows.contacts]
source = "acme"
stream = "contacts"
schedule = "every 1h"

[flows.companies]
source = "acme"
stream = "companies"
schedule = "every 1h"

[flows.deleted-contacts]
source = "acme"
stream = "contacts"
schedule = "every 1h"
"#,
            connection = weir_tests::acme_connection("acme", &url)
        ));
    {
        let store = SqliteStore::open(&ws.store_path())?;
        for i in 0..TENANTS {
            let tenant: Tenant =
                serde_json::from_value(weir_tests::connected_tenant(&format!("t{i}"), &["acme"]))?;
            store.save_tenant(&tenant)?;
        }
    }
    let started = Instant::now();
    let weir = ws.start_daemon().await;
    let pid = weir.pid();
    loop {
        let runs: i64 = rusqlite::Connection::open(ws.store_path())?.query_row(
            "SELECT count(*) FROM runs WHERE status = 'succeeded'",
            [],
            |r| r.get(0),
        )?;
        if runs >= (TENANTS * 3) as i64 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the first runs did not finish in 10 min ({runs})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "{} tenants x 3 flows: first runs done in {:.1} s ({:.0} runs/s)",
        TENANTS,
        started.elapsed().as_secs_f64(),
        (TENANTS * 3) as f64 / started.elapsed().as_secs_f64()
    );
    let before = cpu_ticks(pid)?;
    let window = Instant::now();
    tokio::time::sleep(IDLE_WINDOW).await;
    let ticks = cpu_ticks(pid)? - before;
    let cpu = ticks as f64 / clock_ticks_per_second() / window.elapsed().as_secs_f64() * 100.0;
    println!(
        "idle: CPU {cpu:.2}% of one core over {} s, RSS {:.1} MiB",
        IDLE_WINDOW.as_secs(),
        rss_kib(pid)? as f64 / 1024.0
    );
    let status = weir.terminate().await;
    anyhow::ensure!(status.success(), "weir exited with {status}");
    sim.shutdown().await;
    Ok(())
}

/// User + system time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))?;
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: 0 kB");
    Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
}

fn clock_ticks_per_second() -> f64 {
    // USER_HZ is 100 on Linux for every architecture Weir targets.
    100.0
}
