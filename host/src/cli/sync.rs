//! `weir sync`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::app::{self, Plugins};
use super::output;
use crate::config::{self, Config, FlowConfig};
use crate::flow::{Destination, FlowRunner, RunObserver, RunOptions, RunSummary};
use crate::store::RunStatus;

/// Arguments of `weir sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Flows to run, in order.
    #[arg(required_unless_present = "all")]
    flows: Vec<String>,
    /// Run every flow of weir.toml.
    #[arg(long, conflicts_with = "flows")]
    all: bool,
    /// Ignore checkpoints and read everything again.
    #[arg(long)]
    full_refresh: bool,
}

/// Runs the flows one after the other and prints a summary. Exits with the
/// code of the first failure, after running the rest.
pub async fn run(config_path: &Path, args: SyncArgs, json: bool) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let flows: Vec<&FlowConfig> = if args.all {
        config.flows.values().collect()
    } else {
        args.flows
            .iter()
            .map(|f| config.flow(f))
            .collect::<Result<_, _>>()
            .map_err(app::diagnostic)?
    };
    let plugins = Plugins::load(&config).await?;
    let store = app::store(&config)?;
    let runner = FlowRunner::new(store);
    let options = RunOptions {
        full_refresh: args.full_refresh,
        ..RunOptions::default()
    };
    let mut summaries = Vec::new();
    let mut exit = ExitCode::SUCCESS;
    for flow in flows {
        let summary = run_flow(&config, &plugins, &runner, flow, &options, json).await?;
        if let Some(error) = &summary.error {
            output::print_problem(&format!("flow `{}`: error", flow.id), error);
            if exit == ExitCode::SUCCESS {
                exit = output::exit_code(error.code);
            }
        }
        summaries.push(summary);
    }
    if json {
        output::print_json(&summaries)?;
    } else {
        print_summary(&summaries);
    }
    Ok(exit)
}

async fn run_flow(
    config: &Config,
    plugins: &Plugins,
    runner: &FlowRunner,
    flow: &FlowConfig,
    options: &RunOptions,
    quiet: bool,
) -> anyhow::Result<RunSummary> {
    let source = plugins.connection(config, flow.source.as_str())?;
    let destination = match &flow.destination {
        config::Destination::Store => Destination::Store,
        config::Destination::Connection { connection, stream } => Destination::Connection {
            connection: plugins.connection(config, connection.as_str())?,
            stream: stream.clone(),
        },
    };
    let progress = Progress::new(flow.id.as_str(), quiet);
    let summary = runner
        .run(flow, &source, &destination, options, &progress)
        .await?;
    progress.finish(&summary);
    Ok(summary)
}

fn print_summary(summaries: &[RunSummary]) {
    let mut table = output::table([
        "flow",
        "status",
        "records",
        "written",
        "failed",
        "duration",
        "records/s",
    ]);
    for s in summaries {
        table.add_row([
            s.flow.to_string(),
            s.status.as_str().to_string(),
            output::count(s.records_read),
            output::count(s.records_written),
            output::count(s.records_failed),
            output::duration(s.elapsed),
            output::count(s.records_per_second().round() as u64),
        ]);
    }
    println!("{table}");
}

/// A spinner with the record count and rate; hidden when stderr is not a
/// terminal or with `--json`.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new(flow: &str, quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new_spinner()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix}: {human_pos} records ({per_sec}) {elapsed}",
            )
            .expect("the template is valid"),
        );
        bar.set_prefix(flow.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self { bar }
    }

    fn finish(&self, summary: &RunSummary) {
        let verdict = match summary.status {
            RunStatus::Succeeded => "done",
            RunStatus::Paused => "paused",
            _ => "failed",
        };
        self.bar.finish_with_message(verdict);
        self.bar.finish_and_clear();
    }
}

impl RunObserver for Progress {
    fn page_committed(&self, records: u64) {
        self.bar.inc(records);
    }
}
