//! `weir state show|reset` and `weir runs`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::{app, output};
use crate::config::Config;
use crate::diagnostic::Diagnose;
use crate::ids::FlowId;
use crate::store::TenantStore;

/// `weir state ...`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Show the checkpoint a flow resumes from.
    Show {
        /// The flow, or a tenant's instance of it: `tenant.flow`.
        flow: String,
    },
    /// Forget a flow's checkpoint: its next run reads everything again.
    Reset {
        /// The flow, or a tenant's instance of it: `tenant.flow`.
        flow: String,
    },
}

/// Runs a `state` subcommand.
pub fn run(config_path: &Path, command: StateCommand, json: bool) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let store = app::store(&config)?;
    match command {
        StateCommand::Show { flow } => {
            let flow = &flow_named(&config, store.as_ref(), &flow)?;
            let checkpoints = store
                .checkpoints(flow)
                .map_err(|e| output::fail(e.diagnostic()))?;
            if json {
                output::print_json(&checkpoints)?;
            } else if checkpoints.is_empty() {
                println!("flow `{flow}` has no checkpoint: its next run reads everything");
            } else {
                let mut table = output::table(["stream", "format", "state", "run", "updated"]);
                for c in checkpoints {
                    table.add_row([
                        c.stream,
                        c.checkpoint.format.to_string(),
                        c.checkpoint.state,
                        c.run.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                        output::timestamp(c.updated_at_ms),
                    ]);
                }
                println!("{table}");
            }
        }
        StateCommand::Reset { flow } => {
            let flow = &flow_named(&config, store.as_ref(), &flow)?;
            let removed = store
                .reset(flow)
                .map_err(|e| output::fail(e.diagnostic()))?;
            if json {
                output::print_json(&serde_json::json!({ "flow": flow, "removed": removed }))?;
            } else if removed == 0 {
                println!("flow `{flow}` had no checkpoint");
            } else {
                println!(
                    "flow `{flow}`: checkpoint removed; its next run reads everything (records already stored are kept and updated)"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The flow `name` stands for: a flow of weir.toml, or a tenant's instance
/// of one, `tenant.flow` (each has its own runs and checkpoints).
fn flow_named(config: &Config, store: &dyn TenantStore, name: &str) -> anyhow::Result<FlowId> {
    match name.split_once('.') {
        None => Ok(config.flow(name).map_err(app::diagnostic)?.id.clone()),
        Some((tenant, flow)) => {
            let tenant = app::tenant(store, tenant)?;
            let flow = config.flow(flow).map_err(app::diagnostic)?;
            Ok(tenant.id.scoped_flow(&flow.id))
        }
    }
}

/// `weir runs [flow | tenant.flow]`.
pub fn runs(
    config_path: &Path,
    flow: Option<&str>,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let store = app::store(&config)?;
    let flow = flow
        .map(|name| flow_named(&config, store.as_ref(), name))
        .transpose()?;
    let runs = store
        .runs(flow.as_ref(), limit)
        .map_err(|e| output::fail(e.diagnostic()))?;
    if json {
        output::print_json(&runs)?;
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no runs yet: `weir sync <flow>` starts one");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table([
        "run",
        "flow",
        "status",
        "started",
        "took",
        "pages",
        "read",
        "written",
        "failed",
        "conflicts",
        "error",
    ]);
    for run in runs {
        let took = run
            .finished_at_ms
            .unwrap_or_else(crate::unix_time::now_ms)
            .saturating_sub(run.started_at_ms);
        table.add_row([
            run.id.to_string(),
            run.flow,
            run.status.as_str().to_string(),
            output::timestamp(run.started_at_ms),
            output::duration(Duration::from_millis(took.max(0) as u64)),
            output::count(run.pages),
            output::count(run.records_read),
            output::count(run.records_written),
            output::count(run.records_failed),
            output::count(run.conflicts),
            match (run.error_code, run.error) {
                (Some(code), Some(error)) => format!("[{code}] {error}"),
                (_, Some(error)) => error,
                _ => String::new(),
            },
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}
