//! `weir webhooks ...`: deliveries the workers gave up on after their last
//! attempt, and handing them back once the cause is fixed. Works whether
//! or not `weir run` is serving: the daemon picks retried deliveries up at
//! its next claim.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{app, output};
use crate::diagnostic::Diagnose;
use crate::ids::TenantId;
use crate::inbox::{self, DeliveryId, FailedFilter};

/// `weir webhooks ...`.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List deliveries given up on, oldest first: tenant, connection,
    /// delivery key, attempts, last error.
    Failed {
        #[command(flatten)]
        which: Which,
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Process failed deliveries again, each with a fresh set of attempts.
    Retry {
        #[command(flatten)]
        which: Which,
    },
}

/// Which failed deliveries: all, a tenant's, or some by id.
#[derive(Debug, Args)]
pub struct Which {
    /// Only this tenant's.
    #[arg(long)]
    tenant: Option<String>,
    /// Only these deliveries (ids from `weir webhooks failed`).
    ids: Vec<i64>,
}

impl Which {
    fn filter(self) -> anyhow::Result<FailedFilter> {
        let tenant = self
            .tenant
            .map(|name| TenantId::new(&name).map_err(|e| anyhow::anyhow!("`--tenant {name}`: {e}")))
            .transpose()?;
        Ok(FailedFilter {
            tenant,
            ids: self.ids.into_iter().map(DeliveryId).collect(),
        })
    }
}

/// Runs a `webhooks` subcommand.
pub fn run(config_path: &Path, command: WebhooksCommand, json: bool) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let path = &config.ingress.inbox_path;
    match command {
        WebhooksCommand::Failed { which, limit } => {
            let failed = inbox::failed(path, &which.filter()?, limit)
                .map_err(|e| output::fail(e.diagnostic()))?;
            if json {
                output::print_json(&failed)?;
                return Ok(ExitCode::SUCCESS);
            }
            if failed.is_empty() {
                println!("no failed webhook deliveries");
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = output::table([
                "id",
                "tenant",
                "connection",
                "delivery",
                "received",
                "attempts",
                "error",
            ]);
            for delivery in &failed {
                table.add_row([
                    delivery.id.0.to_string(),
                    delivery.tenant.clone(),
                    delivery.connection.clone(),
                    delivery.key.clone(),
                    output::timestamp(delivery.received_at_ms),
                    delivery.attempts.to_string(),
                    delivery.error.clone().unwrap_or_default(),
                ]);
            }
            println!("{table}");
            if failed.len() == limit {
                println!("the oldest {limit} are shown; `--limit` shows more");
            }
            println!("once the cause is fixed, `weir webhooks retry` processes them again");
        }
        WebhooksCommand::Retry { which } => {
            let retried = inbox::retry_failed(path, &which.filter()?)
                .map_err(|e| output::fail(e.diagnostic()))?;
            if json {
                output::print_json(&json!({ "retried": retried }))?;
            } else if retried == 0 {
                println!("no failed webhook deliveries matched; `weir webhooks failed` lists them");
            } else {
                println!(
                    "{retried} webhook deliveries are pending again; `weir run` processes them at its next claim"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
