//! `weir status`: every tenant's flows and, with webhooks on, every
//! endpoint's webhook health. Read from the store and the inbox, so it works
//! whether or not `weir run` is running; the live counters (rejections,
//! 429s, ack latency) are the admin API's `GET /webhooks`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use super::{app, output};
use crate::config::Config;
use crate::diagnostic::Diagnose;
use crate::inbox::{self, Backlog};
use crate::ingress::WebhookHealth;
use crate::status::FlowStatus;
use crate::store::Store;

/// What `weir status --json` prints.
#[derive(Serialize)]
struct Status {
    flows: Vec<FlowStatus>,
    /// None without an `[ingress]`.
    webhooks: Option<Webhooks>,
}

#[derive(Serialize)]
struct Webhooks {
    endpoints: Vec<WebhookHealth>,
    /// None until the first delivery creates the inbox.
    inbox: Option<Backlog>,
}

/// `weir status`.
pub fn run(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let store = app::store(&config)?;
    let flows = crate::status::flow_statuses(&config, store.as_ref())
        .map_err(|e| output::fail(e.diagnostic()))?;
    let webhooks = webhooks(&config, store.as_ref())?;
    if json {
        output::print_json(&Status { flows, webhooks })?;
        return Ok(ExitCode::SUCCESS);
    }
    print_flows(&flows);
    if let Some(webhooks) = webhooks {
        print_webhooks(&webhooks);
    }
    Ok(ExitCode::SUCCESS)
}

fn webhooks(config: &Config, store: &dyn Store) -> anyhow::Result<Option<Webhooks>> {
    if config.ingress.listen.is_none() {
        return Ok(None);
    }
    let report = crate::ingress::webhook_health(config, store, None, None)
        .map_err(|e| output::fail(e.diagnostic()))?;
    let inbox =
        inbox::backlog(&config.ingress.inbox_path).map_err(|e| output::fail(e.diagnostic()))?;
    Ok(Some(Webhooks {
        endpoints: report.endpoints,
        inbox,
    }))
}

fn print_flows(statuses: &[FlowStatus]) {
    if statuses.is_empty() {
        println!("nothing scheduled yet: add tenants (`weir tenants add`) and start `weir run`");
        return;
    }
    let mut table = output::table([
        "tenant", "flow", "enabled", "schedule", "last run", "records", "next run", "health",
    ]);
    for s in statuses {
        let last = s.last_run.as_ref();
        table.add_row([
            s.state.tenant.clone(),
            s.state.template.clone(),
            if s.state.enabled { "yes" } else { "no" }.to_string(),
            s.state
                .schedule
                .clone()
                .unwrap_or_else(|| "on demand".into()),
            last.map(|r| {
                format!(
                    "{} {}",
                    r.status.as_str(),
                    output::timestamp(r.started_at_ms)
                )
            })
            .unwrap_or_else(|| "never".into()),
            last.map(|r| output::count(r.records_read))
                .unwrap_or_default(),
            s.state
                .next_run_at_ms
                .map(output::timestamp)
                .unwrap_or_else(|| "-".into()),
            if let Some(missing) = s.not_connected.first() {
                format!(
                    "not-connected: `{}` needs {} (`weir tenants connect`)",
                    missing.connection,
                    missing
                        .missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                health(s)
            },
        ]);
    }
    println!("{table}");
}

/// Healthy or not, and the merge conflicts of its last run: a partner whose
/// versions miss edits.
fn health(status: &FlowStatus) -> String {
    let mut health = if status.state.healthy {
        "ok".to_string()
    } else {
        format!(
            "unhealthy: {}",
            status.state.last_error.clone().unwrap_or_default()
        )
    };
    if let Some(run) = status.last_run.as_ref().filter(|r| r.conflicts > 0) {
        health.push_str(&format!(
            "; {} merge conflict(s) in the last run (`weir runs {}`)",
            output::count(run.conflicts),
            status.state.flow
        ));
    }
    health
}

fn print_webhooks(webhooks: &Webhooks) {
    println!();
    if webhooks.endpoints.is_empty() {
        println!("webhooks: no tenant has a webhook-fed flow yet");
    } else {
        println!("webhooks, last 24 h (live counters: the admin API's GET /webhooks):");
        let mut table = output::table([
            "tenant",
            "connection",
            "stream",
            "coverage",
            "changes",
            "poll only",
            "conflicts",
            "last webhook",
            "alert",
        ]);
        for e in &webhooks.endpoints {
            let c = &e.coverage;
            table.add_row([
                e.tenant.clone(),
                e.connection.clone(),
                e.stream.clone(),
                c.coverage
                    .map(|v| format!("{:.0}%", v * 100.0))
                    .unwrap_or_else(|| "-".into()),
                output::count(c.changes),
                output::count(c.poll_only),
                output::count(c.conflicts),
                c.last_webhook_at_ms
                    .map(output::timestamp)
                    .unwrap_or_else(|| "never".into()),
                if e.silent {
                    "silent: polls find changes, no webhooks arrive; check the partner's \
                     subscription"
                        .to_string()
                } else {
                    String::new()
                },
            ]);
        }
        println!("{table}");
    }
    match &webhooks.inbox {
        None => println!("inbox: no webhook received yet"),
        Some(backlog) => {
            let oldest = backlog
                .oldest_received_at_ms
                .map(|at| {
                    let age =
                        Duration::from_millis((crate::unix_time::now_ms() - at).max(0) as u64);
                    format!(" (oldest waiting {})", output::duration(age))
                })
                .unwrap_or_default();
            println!(
                "inbox: {} waiting{oldest}, {} given up after their last attempt",
                output::count(backlog.waiting),
                output::count(backlog.failed)
            );
            if backlog.failed > 0 {
                println!(
                    "  `weir webhooks failed` lists those, `weir webhooks retry` retries them"
                );
            }
        }
    }
}
