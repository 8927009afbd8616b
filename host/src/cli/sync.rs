//! `weir sync`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use futures_util::StreamExt as _;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::app::{self, Plugins};
use super::output;
use crate::config::{self, FlowConfig};
use crate::connection::ConnectionServices;
use crate::flow::{Destination, FlowRunner, Legs, Reshaper, RunObserver, RunOptions, RunSummary};
use crate::tenant::{ResolvedFlow, resolve_flow};

/// Arguments of `weir sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Flows to run.
    #[arg(required_unless_present = "all")]
    flows: Vec<String>,
    /// Run every flow of weir.toml.
    #[arg(long, conflicts_with = "flows")]
    all: bool,
    /// Ignore checkpoints and read everything again.
    #[arg(long)]
    full_refresh: bool,
    /// How many flows run at once (flows on one connection share its rate
    /// budget).
    #[arg(long, short, default_value_t = 1)]
    jobs: usize,
    /// Run the tenant's instance of the flows, with its settings.
    #[arg(long)]
    tenant: Option<String>,
}

/// Runs the flows and prints a summary. One failing flow does not stop the
/// others; the exit code is that of the first failure.
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
    let tenant = match &args.tenant {
        None => None,
        Some(name) => Some(app::tenant(store.as_ref(), name)?),
    };
    let flows: Vec<ResolvedFlow> = flows
        .into_iter()
        .map(|flow| match &tenant {
            None => Ok(ResolvedFlow::untenanted(&config, flow)),
            Some(tenant) => {
                let resolved = resolve_flow(&config, tenant, &flow.id)
                    .map_err(|e| output::fail(e.diagnostic(tenant.id.as_str())))?;
                resolved.ensure_connected().map_err(output::fail)?;
                Ok(resolved)
            }
        })
        .collect::<anyhow::Result<_>>()?;
    let services = ConnectionServices::new(store.clone());
    let runner = FlowRunner::new(store);
    let stop = tokio_util::sync::CancellationToken::new();
    app::stop_on_signal(
        stop.clone(),
        "stopping: each run commits its page in flight, then weir exits",
    );
    let options = RunOptions {
        full_refresh: args.full_refresh,
        cancel: Some(stop.clone()),
        ..RunOptions::default()
    };
    let bars = if json {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    } else {
        MultiProgress::new()
    };
    let context = Context {
        plugins: &plugins,
        runner: &runner,
        services: &services,
        options,
        bars: &bars,
    };
    let results: Vec<anyhow::Result<Option<RunSummary>>> = futures_util::stream::iter(&flows)
        .map(|flow| context.run_flow(flow))
        .buffered(args.jobs.max(1))
        .collect()
        .await;
    services.flush().await;
    let mut summaries = Vec::new();
    let mut exit = ExitCode::SUCCESS;
    // Flows a stop came before never started: nothing to report.
    for result in results {
        let Some(summary) = result? else { continue };
        if let Some(error) = &summary.error {
            output::print_problem(&format!("flow `{}`: error", summary.flow), error);
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
    if stop.is_cancelled() {
        // The conventional status of a command stopped by SIGINT.
        return Ok(ExitCode::from(130));
    }
    Ok(exit)
}

struct Context<'a> {
    plugins: &'a Plugins,
    runner: &'a FlowRunner,
    services: &'a ConnectionServices,
    options: RunOptions,
    bars: &'a MultiProgress,
}

impl Context<'_> {
    async fn run_flow(&self, resolved: &ResolvedFlow) -> anyhow::Result<Option<RunSummary>> {
        if self
            .options
            .cancel
            .as_ref()
            .is_some_and(|c| c.is_cancelled())
        {
            return Ok(None);
        }
        let flow = &resolved.flow;
        let open = |config| {
            resolved
                .open(
                    &self.plugins.runtime,
                    &self.plugins.registry,
                    config,
                    self.services,
                )
                .map(std::sync::Arc::new)
                .map_err(output::fail)
        };
        let source = open(&resolved.source)?;
        let destination = match (&flow.destination, &resolved.destination) {
            (config::Destination::Connection { stream, .. }, Some(connection)) => {
                Destination::Connection {
                    connection: open(connection)?,
                    stream: stream.clone(),
                }
            }
            _ => Destination::Store,
        };
        let reshaper = Reshaper::new(
            &self.plugins.runtime,
            &self.plugins.registry,
            flow.mapping.clone(),
            &flow.transforms,
        )
        .map_err(super::output::fail)?;
        let progress = Progress::new(self.bars, flow.id.as_str());
        let legs = Legs {
            source: &source,
            reshaper: &reshaper,
            destination: &destination,
        };
        let summary = self
            .runner
            .run(flow, &legs, &self.options, &progress)
            .await?;
        progress.bar.finish_and_clear();
        Ok(Some(summary))
    }
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

/// A spinner per flow with the record count and rate; drawn only when
/// stderr is a terminal.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new(bars: &MultiProgress, flow: &str) -> Self {
        let bar = bars.add(ProgressBar::new_spinner());
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
}

impl RunObserver for Progress {
    fn page_committed(&self, records: u64) {
        self.bar.inc(records);
    }
}
