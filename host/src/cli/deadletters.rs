//! `weir deadletters ...`: records a tenant's flow could not deliver, and
//! delivering them again once the cause is fixed.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::app::Plugins;
use super::map::{TenantFlow, report};
use super::output;
use crate::connection::ConnectionServices;
use crate::flow::Redelivery;
use crate::store::Deliveries;

/// `weir deadletters ...`.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List a tenant's dead letters of a flow, oldest first: key, stage,
    /// error, when.
    List {
        /// The tenant.
        tenant: String,
        /// The flow of weir.toml.
        flow: String,
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Reshape and deliver them again; those that go through are removed,
    /// the others kept with the reason of now.
    Retry {
        /// The tenant.
        tenant: String,
        /// The flow of weir.toml.
        flow: String,
    },
}

/// Runs a `deadletters` subcommand.
pub async fn run(
    config_path: &Path,
    command: DeadLettersCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match command {
        DeadLettersCommand::List {
            tenant,
            flow,
            limit,
        } => {
            let opened = TenantFlow::resolve(config_path, &tenant, &flow)?;
            let store = opened.store.clone();
            let id = opened.resolved.flow.id.clone();
            let letters = tokio::task::spawn_blocking(move || store.dead_letters(&id, limit))
                .await
                .expect("store calls do not panic")
                .map_err(|e| output::fail(e.diagnostic()))?;
            if json {
                output::print_json(&letters)?;
                return Ok(ExitCode::SUCCESS);
            }
            if letters.is_empty() {
                println!("{}: no dead letters", opened.label());
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = output::table(["key", "stage", "error", "when", "run"]);
            for letter in &letters {
                table.add_row([
                    letter.source_key.clone(),
                    letter.stage.clone(),
                    letter.error.clone(),
                    output::timestamp(letter.created_at_ms),
                    letter.run.to_string(),
                ]);
            }
            println!("{table}");
            if letters.len() == limit {
                println!("the oldest {limit} are shown; `--limit` shows more");
            }
            println!(
                "fix the mapping (`weir map set`) or the data at the partner, then `weir deadletters retry {tenant} {flow}`"
            );
            Ok(ExitCode::SUCCESS)
        }
        DeadLettersCommand::Retry { tenant, flow } => {
            let opened = TenantFlow::resolve(config_path, &tenant, &flow)?;
            let plugins = Plugins::load(&opened.config).await?;
            let reshaper = opened.reshaper(&plugins)?;
            let services = ConnectionServices::new(opened.store.clone());
            let destination = opened.destination(&plugins, &services)?;
            let summary = Redelivery::new(opened.store.clone())
                .retry_dead_letters(&opened.resolved.flow, &reshaper, &destination)
                .await;
            services.flush().await;
            let summary = summary?;
            let code = report(
                &summary,
                json,
                ["retried", "written", "still failing", "resolved"],
            )?;
            if !json && summary.failed > 0 {
                println!(
                    "{} still failing: `weir deadletters list {tenant} {flow}` shows why",
                    summary.failed
                );
            }
            Ok(code)
        }
    }
}
