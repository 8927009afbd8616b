//! `weir sync`.

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use futures_util::StreamExt as _;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::app::{self, Plugins};
use super::output;
use crate::config::{self, FlowConfig};
use crate::connection::ConnectionServices;
use crate::diagnostic::{Diagnostic, ErrorCode};
use crate::flow::{Feed, FlowRunner, Opener, Plan, RunObserver, RunOptions, RunSummary};
use crate::ids::FlowId;
use crate::store::RunStatus;
use crate::tenant::{ResolvedFlow, resolve_flow};
use crate::validate;

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
    /// When stderr is not a terminal (a pipe, a log file): how often a
    /// plain progress line per running flow is printed there; `0s` for none.
    #[arg(long, env = "WEIR_PROGRESS_EVERY", value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    progress_every: Duration,
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
    let store = app::store(&config)?;
    let plugins = Plugins::load(&config, &store).await?;
    let (refused, first_problem) = misconfigured(&config, &plugins, &flows);
    let flows: Vec<&FlowConfig> = flows
        .into_iter()
        .filter(|flow| !refused.contains(&flow.id))
        .collect();
    if let Some(code) = first_problem
        && flows.is_empty()
    {
        return Ok(output::exit_code(code));
    }
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
        "stopping: runs end at their last committed page, then weir exits",
    );
    let options = RunOptions {
        cancel: Some(stop.clone()),
        ..RunOptions::default()
    };
    let board = ProgressBoard::new(!json && std::io::stderr().is_terminal());
    let lines = board.print_lines_every(args.progress_every);
    let context = Context {
        plugins: &plugins,
        runner: &runner,
        services: &services,
        options,
        full_refresh: args.full_refresh,
        board: &board,
    };
    let results: Vec<anyhow::Result<Option<RunSummary>>> = futures_util::stream::iter(&flows)
        .map(|flow| context.run_flow(flow))
        .buffered(args.jobs.max(1))
        .collect()
        .await;
    if let Some(lines) = lines {
        lines.abort();
    }
    services.flush().await;
    let mut summaries = Vec::new();
    let mut exit = first_problem.map_or(ExitCode::SUCCESS, output::exit_code);
    // Flows a stop came before never started: nothing to report.
    for result in results {
        let Some(summary) = result? else { continue };
        if let Some(error) = &summary.error {
            output::print_problem(&format!("flow `{}`: error", summary.flow), error);
            if exit == ExitCode::SUCCESS {
                exit = output::exit_code(error.code);
            }
        } else if summary.status == RunStatus::Interrupted {
            output::print_problem(
                &format!("flow `{}`: stopped", summary.flow),
                &stopped_by_shutdown(&summary.flow),
            );
        }
        if summary.records_failed > 0 {
            output::print_problem(
                &format!("flow `{}`: warning", summary.flow),
                &records_in_dead_letters(&summary.flow, summary.records_failed),
            );
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

/// Checks the flows against their connectors' specs before anything runs
/// (an unknown stream, a misspelt secret): no request goes out for a flow
/// that cannot be right. Prints each problem once and returns the flows
/// it concerns (the others run) and the code of the first problem.
fn misconfigured(
    config: &config::Config,
    plugins: &Plugins,
    flows: &[&FlowConfig],
) -> (Vec<FlowId>, Option<ErrorCode>) {
    let mut findings = validate::check_specs(config, &plugins.registry);
    findings.retain(|finding| {
        finding.severity == validate::Severity::Error
            && flows.iter().any(|flow| finding.concerns(flow))
    });
    for finding in &findings {
        output::print_problem("error", &finding.diagnostic);
    }
    let refused: Vec<FlowId> = flows
        .iter()
        .filter(|flow| findings.iter().any(|finding| finding.concerns(flow)))
        .map(|flow| flow.id.clone())
        .collect();
    for flow in &refused {
        eprintln!("weir: flow `{flow}` did not run: its configuration has the problems above");
    }
    (refused, findings.first().map(|f| f.diagnostic.code))
}

struct Context<'a> {
    plugins: &'a Plugins,
    runner: &'a FlowRunner,
    services: &'a ConnectionServices,
    options: RunOptions,
    full_refresh: bool,
    board: &'a ProgressBoard,
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
        let opener = Opener {
            runtime: &self.plugins.runtime,
            plugins: &self.plugins.registry,
            services: self.services,
        };
        let source = opener.source(resolved).map_err(output::fail)?;
        let plan = Plan::open(resolved, &opener).map_err(output::fail)?;
        let progress = self.board.add(resolved.flow.id.as_str());
        let feed = Feed::Partner {
            source,
            full_refresh: self.full_refresh,
            log_changes: false,
        };
        let summary = self
            .runner
            .run(&plan, feed, &self.options, &progress)
            .await?;
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

/// Progress of the running flows, on stderr: a spinner per flow on a
/// terminal; anywhere else (a pipe, a log file, `--json`) plain lines, one
/// per running flow every so often, which a log keeps readable.
struct ProgressBoard {
    bars: MultiProgress,
    terminal: bool,
    running: Arc<Mutex<Vec<ProgressBar>>>,
}

impl ProgressBoard {
    fn new(terminal: bool) -> Self {
        let bars = if terminal {
            MultiProgress::new()
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        };
        Self {
            bars,
            terminal,
            running: Arc::default(),
        }
    }

    fn add(&self, flow: &str) -> Progress {
        let bar = self.bars.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix}: {human_pos} records ({rate}) {elapsed}",
            )
            .expect("the template is valid")
            .with_key(
                "rate",
                |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&rate(state.per_sec()));
                },
            ),
        );
        bar.set_prefix(flow.to_string());
        if self.terminal {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        lock(&self.running).push(bar.clone());
        Progress { bar }
    }

    /// Off a terminal: prints a line per running flow every `every`
    /// until the task is aborted.
    fn print_lines_every(&self, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
        if self.terminal || every.is_zero() {
            return None;
        }
        let running = self.running.clone();
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate: nothing has happened yet.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                for bar in lock(&running).iter().filter(|bar| !bar.is_finished()) {
                    eprintln!(
                        "weir: flow `{}`: {} records ({}), {}",
                        bar.prefix(),
                        output::count(bar.position()),
                        rate(bar.per_sec()),
                        output::duration(bar.elapsed())
                    );
                }
            }
        }))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Records per second as people read them: `1,234/s`, never `1234.5678/s`.
fn rate(per_second: f64) -> String {
    format!("{}/s", output::count(per_second.round() as u64))
}

/// One flow's progress; its spinner (or line) ends with the run, however
/// the run ends.
struct Progress {
    bar: ProgressBar,
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl RunObserver for Progress {
    fn page_committed(&self, records: u64) {
        self.bar.inc(records);
    }
}

/// A run a Ctrl-C (or SIGTERM) ended: not a failure, but said, so that a
/// stopped flow is never mistaken for a finished one.
fn stopped_by_shutdown(flow: &FlowId) -> Diagnostic {
    Diagnostic::new(
        ErrorCode::Shutdown,
        format!("`{flow}` was stopped by a shutdown at its last committed page"),
    )
    .with_hint("nothing is lost: the flow's next run resumes from that page")
}

/// Records the mapping (or a transform) refused: the run went on without
/// them, and they wait in the dead letters.
fn records_in_dead_letters(flow: &FlowId, count: u64) -> Diagnostic {
    Diagnostic::new(
        ErrorCode::MappingRecord,
        format!(
            "{} did not fit the flow's mapping and went to the dead letters",
            if count == 1 { "1 record".to_string() } else { format!("{} records", output::count(count)) }
        ),
    )
    .with_hint(format!(
        "`weir deadletters list {flow}` shows each reason; fix the mapping or the data, then `weir deadletters retry {flow}`"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rate_is_shown_in_whole_records_per_second() {
        assert_eq!(super::rate(1234.5678), "1,235/s");
        assert_eq!(super::rate(0.4), "0/s");
    }
}
