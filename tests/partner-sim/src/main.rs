//! `partner-sim`: Acme CRM on 127.0.0.1, for the demo and for tests that
//! drive a separate process.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Parser;
use partner_sim::{PartnerSim, RateLimit, SimConfig, WebhookSigning, WebhookTarget};

/// Acme CRM, a simulated partner API. Prints `partner-sim listening on URL`
/// as its first line, then serves until Ctrl-C or SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "partner-sim", version)]
struct Args {
    /// Loopback address to listen on (`localhost`, `127.0.0.1` or `::1`).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Seed for the data, mutations and webhook drops.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Seeded contacts.
    #[arg(long, default_value_t = 1_000)]
    contacts: usize,
    /// Seeded companies.
    #[arg(long, default_value_t = 100)]
    companies: usize,
    /// API key clients must send in `X-Api-Key`.
    #[arg(long, env = "PARTNER_SIM_API_KEY", default_value = "test-key")]
    api_key: String,
    /// Limit `/v1` requests to this many per second (burst: one second's worth).
    #[arg(long, value_name = "PER_SECOND")]
    rate_limit: Option<f64>,
    /// Post change events to this URL (Standard Webhooks format).
    #[arg(long, requires = "webhook_secret")]
    webhook_url: Option<String>,
    /// Secret that signs webhook events.
    #[arg(long, env = "PARTNER_SIM_WEBHOOK_SECRET", requires = "webhook_url")]
    webhook_secret: Option<String>,
    /// Share of webhook events to drop, 0.0 to 1.0.
    #[arg(long, default_value_t = 0.0)]
    webhook_drop_rate: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(args: Args) -> anyhow::Result<()> {
    let config = resolve(args)?;
    let summary = format!(
        "serving {} contacts and {} companies (seed {}); clients send `X-Api-Key: {}`",
        config.contacts, config.companies, config.seed, config.api_key
    );
    let sim = PartnerSim::start(config).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "partner-sim listening on {}", sim.base_url())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
    drop(stdout);
    eprintln!("{summary}");
    shutdown_signal().await?;
    sim.shutdown().await;
    Ok(())
}

/// Turns arguments into a config, refusing anything but loopback.
fn resolve(args: Args) -> anyhow::Result<SimConfig> {
    let host: IpAddr = match args.host.as_str() {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        other => other.parse().with_context(|| {
            format!("`--host {other}` is not an IP address\nhint: use `--host 127.0.0.1`")
        })?,
    };
    if !host.is_loopback() {
        bail!(
            "`--host {host}` is not a loopback address; partner-sim only listens on this machine\nhint: use `--host 127.0.0.1` (the default) or `--host ::1`"
        );
    }
    let rate_limit = match args.rate_limit {
        Some(per_second) if !per_second.is_finite() || per_second <= 0.0 => {
            bail!("`--rate-limit {per_second}` must be a positive number of requests per second")
        }
        limit => limit.map(RateLimit::per_second),
    };
    if !(0.0..=1.0).contains(&args.webhook_drop_rate) {
        bail!(
            "`--webhook-drop-rate {}` must be between 0.0 and 1.0",
            args.webhook_drop_rate
        );
    }
    let webhook = match (args.webhook_url, args.webhook_secret) {
        (Some(url), Some(secret)) => Some(WebhookTarget {
            url,
            signing: WebhookSigning::Secret(secret.into_bytes()),
            drop_rate: args.webhook_drop_rate,
        }),
        _ => None,
    };
    Ok(SimConfig {
        seed: args.seed,
        contacts: args.contacts,
        companies: args.companies,
        api_key: args.api_key,
        host,
        port: args.port,
        rate_limit,
        webhook,
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C")?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}
