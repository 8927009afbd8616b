//! Decides when each tenant's flow runs: on its schedule (with jitter), on
//! demand, after a pause or with backoff after failures; never two runs of
//! the same flow at once (a trigger meanwhile is folded into one more run);
//! within a global limit and a limit per tenant connection. The table of
//! flows (`slots`) decides; the scheduler reads the store, starts runs and
//! listens to its channels.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Daemon;
use super::execute::execute;
pub use super::slots::TriggerOutcome;
use super::slots::{FlowTable, Wanted};
use crate::config::Trigger;
use crate::diagnostic::Diagnostic;
use crate::flow::RunSummary;
use crate::ids::{FlowId, TenantId};
use crate::store::{COVERAGE_WINDOW, RunStatus};
use crate::tenant::{ResolvedFlow, resolve_flow};

/// How often the scheduler looks at the clock and at tenant changes.
const TICK: Duration = Duration::from_millis(200);
/// How often webhook health is looked at, at most: a change is judged
/// once its grace has passed, so a shorter `coverage_grace` looks sooner.
const HEALTH_EVERY: Duration = Duration::from_secs(30);
/// How often flow states are saved, at most.
const PERSIST_EVERY: Duration = Duration::from_secs(1);

enum Command {
    RunNow(FlowId, oneshot::Sender<TriggerOutcome>),
    Reload,
}

/// Talks to a running scheduler.
#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<Command>,
}

impl SchedulerHandle {
    /// Asks for a run of a tenant's flow now.
    pub async fn run_now(&self, tenant: &TenantId, flow: &FlowId) -> TriggerOutcome {
        let (reply, answer) = oneshot::channel();
        if self
            .tx
            .send(Command::RunNow(tenant.scoped_flow(flow), reply))
            .await
            .is_err()
        {
            return TriggerOutcome::Unknown;
        }
        answer.await.unwrap_or(TriggerOutcome::Unknown)
    }

    /// Tells the scheduler that tenants changed (it would notice at its
    /// next tick anyway).
    pub async fn reload(&self) {
        let _ = self.tx.send(Command::Reload).await;
    }
}

struct Finished {
    flow: FlowId,
    result: Result<RunSummary, Diagnostic>,
}

/// What reaches the scheduler's loop: commands from handles, the ends of
/// runs, webhook health judged in the background. Lives as long as the loop.
struct Inputs {
    commands: mpsc::Receiver<Command>,
    finished_tx: mpsc::Sender<Finished>,
    finished: mpsc::Receiver<Finished>,
    health_tx: mpsc::Sender<Vec<(FlowId, bool)>>,
    health: mpsc::Receiver<Vec<(FlowId, bool)>>,
}

/// When the scheduler last did its periodic chores.
struct Cadence {
    /// The tenants' generation the table was built from.
    generation: Option<i64>,
    last_persist: Instant,
    last_health: Instant,
}

/// The scheduler of a daemon.
pub struct Scheduler {
    daemon: Arc<Daemon>,
    table: FlowTable,
    inputs: Inputs,
    cadence: Cadence,
    runs: CancellationToken,
}

impl Scheduler {
    /// A scheduler and the handle to talk to it.
    pub fn new(daemon: Arc<Daemon>) -> (Self, SchedulerHandle) {
        let (tx, commands) = mpsc::channel(256);
        let (finished_tx, finished) = mpsc::channel(1024);
        let (health_tx, health) = mpsc::channel(4);
        let scheduler = Self {
            daemon,
            table: FlowTable::default(),
            inputs: Inputs {
                commands,
                finished_tx,
                finished,
                health_tx,
                health,
            },
            cadence: Cadence {
                generation: None,
                last_persist: Instant::now(),
                last_health: Instant::now(),
            },
            runs: CancellationToken::new(),
        };
        (scheduler, SchedulerHandle { tx })
    }

    /// Schedules until `shutdown`, then waits for runs to end at their last
    /// committed page (at most the configured grace) and returns.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                Some(command) = self.inputs.commands.recv() => self.command(command),
                Some(done) = self.inputs.finished.recv() => {
                    self.table.finish(&done.flow, &done.result, Instant::now());
                }
                Some(judged) = self.inputs.health.recv() => {
                    let now = Instant::now();
                    for (flow, poor) in judged {
                        self.table.note_health(&flow, poor, now);
                    }
                }
            }
            self.check_health();
            self.reload_if_changed().await;
            self.launch_due();
            self.persist(false).await;
        }
        self.drain().await;
    }

    async fn drain(&mut self) {
        self.runs.cancel();
        let grace = self.daemon.config.daemon.shutdown_grace;
        let deadline = tokio::time::Instant::now() + grace;
        while self.table.running() > 0 {
            match tokio::time::timeout_at(deadline, self.inputs.finished.recv()).await {
                Ok(Some(done)) => self.table.finish(&done.flow, &done.result, Instant::now()),
                _ => {
                    tracing::warn!(
                        "{} run(s) did not stop within the shutdown grace of {}; they resume from their last checkpoint",
                        self.table.running(),
                        humantime::format_duration(grace)
                    );
                    break;
                }
            }
        }
        self.persist(true).await;
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Reload => self.cadence.generation = None,
            Command::RunNow(flow, reply) => {
                let _ = reply.send(self.table.run_now(&flow, Instant::now()));
            }
        }
    }

    /// Judges, in the background, whether each webhook flow's webhooks are
    /// poor (low coverage) or silent.
    fn check_health(&mut self) {
        let every = HEALTH_EVERY.min(self.daemon.config.ingress.coverage_grace);
        if self.cadence.last_health.elapsed() < every {
            return;
        }
        self.cadence.last_health = Instant::now();
        let flows = self.table.webhook_flows();
        if flows.is_empty() {
            return;
        }
        let (store, tx) = (self.daemon.store.clone(), self.inputs.health_tx.clone());
        let ingress = self.daemon.config.ingress.clone();
        tokio::task::spawn_blocking(move || {
            let now = store.clock().now_ms();
            let since = now - COVERAGE_WINDOW.as_millis() as i64;
            let grace = ingress.coverage_grace.as_millis() as i64;
            let silence = ingress.silence_after.as_millis() as i64;
            let judged = flows
                .into_iter()
                .filter_map(|(flow, connection, stream)| {
                    let c = store
                        .coverage(&connection, &stream, since, grace, now)
                        .ok()?;
                    let silent = c.silent(c.last_webhook_at_ms, since, now, silence);
                    Some((flow, c.poor() || silent))
                })
                .collect();
            let _ = tx.blocking_send(judged);
        });
    }

    async fn reload_if_changed(&mut self) {
        let store = self.daemon.store.clone();
        let generation = match tokio::task::spawn_blocking(move || store.tenants_generation()).await
        {
            Ok(Ok(generation)) => generation,
            Ok(Err(err)) => {
                tracing::warn!("cannot read tenant changes: {err}");
                return;
            }
            Err(_) => return,
        };
        if self.cadence.generation == Some(generation) {
            return;
        }
        let store = self.daemon.store.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::store::StoreError>((store.tenants()?, store.last_runs()?))
        })
        .await;
        let (tenants, last_runs) = match loaded {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(err)) => {
                tracing::warn!("cannot read tenants: {err}");
                return;
            }
            Err(_) => return,
        };
        self.cadence.generation = Some(generation);
        let last_runs: HashMap<String, (i64, RunStatus)> = last_runs
            .into_iter()
            .map(|r| (r.flow, (r.started_at_ms, r.status)))
            .collect();
        let mut wanted = Vec::new();
        for tenant in &tenants {
            for template in self.daemon.config.flows.keys() {
                match resolve_flow(&self.daemon.config, tenant, template) {
                    Ok(resolved) => wanted.push(Wanted {
                        tenant: tenant.id.clone(),
                        template: template.clone(),
                        trigger: trigger_of(&resolved, &self.daemon),
                        resolved,
                    }),
                    Err(err) => tracing::warn!(
                        "tenant `{}`: {err}; its flow `{template}` is not scheduled",
                        tenant.id
                    ),
                }
            }
        }
        self.table.reconcile(wanted, &last_runs, Instant::now());
    }

    fn launch_due(&mut self) {
        let limits = &self.daemon.config.daemon;
        for key in self.table.due(Instant::now()) {
            if self.table.running() >= limits.max_concurrent_runs {
                break;
            }
            let plugins = self.daemon.plugins();
            let slot = self.table.get(&key).expect("listed as due");
            if let Some(missing) = missing_connector(&slot.resolved, &plugins) {
                // Paused, not failed: it runs again once the plugin is back.
                let note = format!(
                    "paused: connector `{missing}` is not loaded (its plugin file was removed or does not load)"
                );
                if self.table.hold(&key, note.clone()) {
                    tracing::warn!(flow = %key, "{note}");
                }
                continue;
            }
            let (resolved, log_changes) = (slot.resolved.clone(), slot.trigger.webhooks());
            if !self.table.start(&key, limits.max_runs_per_connection) {
                continue;
            }
            let (daemon, cancel, tx) = (
                self.daemon.clone(),
                self.runs.child_token(),
                self.inputs.finished_tx.clone(),
            );
            tokio::spawn(async move {
                let flow = resolved.flow.id.clone();
                let result = execute(&daemon, &resolved, cancel, log_changes).await;
                let _ = tx.send(Finished { flow, result }).await;
            });
        }
    }

    async fn persist(&mut self, force: bool) {
        if !self.table.is_dirty() || (!force && self.cadence.last_persist.elapsed() < PERSIST_EVERY)
        {
            return;
        }
        let states = self.table.states(
            &self.daemon.config.daemon,
            Instant::now(),
            self.daemon.store.clock().now_ms(),
        );
        let store = self.daemon.store.clone();
        match tokio::task::spawn_blocking(move || store.save_flow_states(&states)).await {
            Ok(Ok(())) => {
                self.table.saved();
                self.cadence.last_persist = Instant::now();
            }
            Ok(Err(err)) => tracing::warn!("cannot save flow states: {err}"),
            Err(_) => {}
        }
    }
}

/// A flow's trigger: as configured, or webhooks and polls when its source
/// stream has webhooks (per the serving connector's spec). Without an
/// ingress no webhook can arrive: polls only.
fn trigger_of(resolved: &ResolvedFlow, daemon: &Daemon) -> Trigger {
    if daemon.config.ingress.listen.is_none() {
        return Trigger::Poll;
    }
    let plugins = daemon.plugins();
    resolved.flow.trigger.unwrap_or_else(|| {
        let webhooks = plugins
            .get(resolved.source.connector.as_str())
            .and_then(|p| p.spec())
            .and_then(|spec| spec.stream(&resolved.flow.stream))
            .is_some_and(|s| s.webhooks);
        if webhooks {
            Trigger::WebhookAndPoll
        } else {
            Trigger::Poll
        }
    })
}

/// The connector of a flow that no loaded plugin provides, if any.
fn missing_connector(
    resolved: &ResolvedFlow,
    plugins: &crate::plugin::PluginRegistry,
) -> Option<String> {
    std::iter::once(&resolved.source)
        .chain(resolved.destination.as_ref())
        .map(|c| c.connector.as_str())
        .find(|name| plugins.get(name).is_none())
        .map(str::to_string)
}
