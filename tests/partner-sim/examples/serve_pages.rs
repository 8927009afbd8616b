//! Hand-run perf check: how fast the sim serves full pages.
//!
//! ```sh
//! cargo run -p partner-sim --release --example serve_pages
//! ```
//!
//! Seeds 100,000 contacts, then reads all of them as 100 pages of 1,000
//! records, one request after another, from a reqwest client in the same
//! process. Prints seeding time, wall time per page and the process's CPU
//! time (client included) per page.

use std::time::{Duration, Instant};

use partner_sim::{PartnerSim, SimConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let sim = PartnerSim::start(SimConfig {
        contacts: 100_000,
        companies: 1_000,
        ..SimConfig::default()
    })
    .await?;
    println!("seeded 100,000 contacts in {:?}", started.elapsed());

    let client = reqwest::Client::builder().no_proxy().build()?;
    for round in ["warm-up", "measured"] {
        let (cpu_before, wall) = (cpu_time(), Instant::now());
        let (mut cursor, mut pages, mut bytes) = (None::<String>, 0, 0);
        loop {
            let mut request = client
                .get(sim.url("/v1/contacts"))
                .header("x-api-key", sim.api_key())
                .query(&[("limit", "1000")]);
            if let Some(cursor) = &cursor {
                request = request.query(&[("cursor", cursor)]);
            }
            let body = request.send().await?.error_for_status()?.bytes().await?;
            bytes += body.len();
            pages += 1;
            // Read the tail by hand so the client's cost stays small next to the server's.
            let tail = std::str::from_utf8(&body[body.len().saturating_sub(200)..])?;
            if !tail.ends_with(r#""has_more":true}"#) || pages >= 200 {
                break;
            }
            let (_, after) = tail.split_once(r#""next_cursor":""#).expect("a cursor");
            cursor = after.split_once('"').map(|(c, _)| c.to_owned());
        }
        let (wall, cpu) = (wall.elapsed(), cpu_time().saturating_sub(cpu_before));
        println!(
            "{round}: {pages} pages, {:.1} MB in {wall:?}: {:?} wall and {:?} CPU per page (client included)",
            bytes as f64 / 1e6,
            wall / pages,
            cpu / pages,
        );
    }
    sim.shutdown().await;
    Ok(())
}

/// User + system CPU time of this process, from /proc (Linux only).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, rest)| rest.split(' ').collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, in clock ticks (100 Hz on Linux).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
