//! Decides when each tenant's flow runs: on its schedule (with jitter), on
//! demand, after a pause or with backoff after failures; never two runs of
//! the same flow at once (a trigger meanwhile is folded into one more run);
//! within a global limit and a limit per tenant connection.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Daemon;
use super::execute::execute;
use crate::config::Trigger;
use crate::diagnostic::Diagnostic;
use crate::flow::RunSummary;
use crate::ids::{ConnectionId, FlowId, TenantId};
use crate::store::{FlowState, RunStatus};
use crate::tenant::{ResolvedFlow, resolve_flow};

/// How often the scheduler looks at the clock and at tenant changes.
const TICK: Duration = Duration::from_millis(200);
/// Backoff after a first failure; doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How much more often a flow polls while its webhooks are poor.
const TIGHTENING: u32 = 4;
/// Coverage below which webhooks count as poor.
const POOR_COVERAGE: f64 = 0.8;
/// How often webhook health is looked at, at most: a change is judged
/// once its grace has passed, so a shorter `coverage_grace` looks sooner.
const HEALTH_EVERY: Duration = Duration::from_secs(30);
/// Unfinished runs resume after a restart within this spread.
const RESUME_SPREAD: Duration = Duration::from_secs(5);
/// How long a paused run waits when the partner gave no time.
const DEFAULT_PAUSE: Duration = Duration::from_secs(60);

/// What happened to a "run now" request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerOutcome {
    /// It starts at the next tick.
    Queued,
    /// A run is in progress; one more run follows it.
    Coalesced,
    /// The tenant has no such flow.
    Unknown,
    /// The tenant has not connected a connection the flow uses: it does
    /// not run.
    NotConnected,
}

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

struct Slot {
    resolved: ResolvedFlow,
    tenant: TenantId,
    template: FlowId,
    due: Option<Instant>,
    running: bool,
    rerun: bool,
    failures: u32,
    last_error: Option<String>,
    /// What brings its changes (webhooks, polls or both).
    trigger: Trigger,
    /// Webhooks miss many changes or went silent: poll more often.
    poor_webhooks: bool,
}

impl Slot {
    fn connection(&self) -> &ConnectionId {
        &self.resolved.source.id
    }

    /// Whether its tenant connected every connection it uses; until then
    /// it never runs.
    fn connected(&self) -> bool {
        self.resolved.not_connected().next().is_none()
    }

    fn jitter(&self) -> Duration {
        self.resolved
            .flow
            .schedule
            .as_ref()
            .map_or(Duration::ZERO, |s| s.jitter(self.resolved.flow.id.as_str()))
    }

    /// The next scheduled poll after `now`, if it polls on a schedule. While
    /// webhooks are poor or silent, polls come four times as often.
    fn next_scheduled(&self, now: Instant) -> Option<Instant> {
        if !self.trigger.polls() {
            return None;
        }
        let schedule = self.resolved.flow.schedule.as_ref()?;
        let wall_now = jiff::Timestamp::now();
        let next = schedule.next_after(wall_now);
        let mut wait = Duration::try_from(next.duration_since(wall_now)).unwrap_or(Duration::ZERO);
        if self.poor_webhooks {
            wait = (wait / TIGHTENING).max(Duration::from_secs(1));
        }
        Some(now + wait + self.jitter())
    }
}

struct Finished {
    flow: FlowId,
    result: Result<RunSummary, Diagnostic>,
}

/// The scheduler of a daemon.
pub struct Scheduler {
    daemon: Arc<Daemon>,
    slots: BTreeMap<FlowId, Slot>,
    running_per_connection: HashMap<ConnectionId, usize>,
    running: usize,
    generation: Option<i64>,
    commands: mpsc::Receiver<Command>,
    finished_tx: mpsc::Sender<Finished>,
    finished: mpsc::Receiver<Finished>,
    dirty: bool,
    last_persist: Instant,
    last_health: Instant,
    health_tx: mpsc::Sender<Vec<(FlowId, bool)>>,
    health: mpsc::Receiver<Vec<(FlowId, bool)>>,
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
            slots: BTreeMap::new(),
            running_per_connection: HashMap::new(),
            running: 0,
            generation: None,
            commands,
            finished_tx,
            finished,
            dirty: true,
            last_persist: Instant::now(),
            last_health: Instant::now(),
            health_tx,
            health,
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
                Some(command) = self.commands.recv() => self.command(command),
                Some(done) = self.finished.recv() => self.finish(done),
                Some(judged) = self.health.recv() => self.note_health(judged),
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
        while self.running > 0 {
            match tokio::time::timeout_at(deadline, self.finished.recv()).await {
                Ok(Some(done)) => self.finish(done),
                _ => {
                    tracing::warn!(
                        "{} run(s) did not stop within the shutdown grace of {}; they resume from their last checkpoint",
                        self.running,
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
            Command::Reload => self.generation = None,
            Command::RunNow(flow, reply) => {
                let outcome = match self.slots.get_mut(&flow) {
                    None => TriggerOutcome::Unknown,
                    Some(slot) if !slot.connected() => TriggerOutcome::NotConnected,
                    Some(slot) if slot.running => {
                        slot.rerun = true;
                        TriggerOutcome::Coalesced
                    }
                    Some(slot) => {
                        slot.due = Some(Instant::now());
                        TriggerOutcome::Queued
                    }
                };
                let _ = reply.send(outcome);
            }
        }
    }

    /// Judges, in the background, whether each webhook flow's webhooks are
    /// poor (low coverage) or silent.
    fn check_health(&mut self) {
        let every = HEALTH_EVERY.min(self.daemon.config.ingress.coverage_grace);
        if self.last_health.elapsed() < every {
            return;
        }
        self.last_health = Instant::now();
        let flows: Vec<(FlowId, ConnectionId, String)> = self
            .slots
            .iter()
            .filter(|(_, s)| s.trigger == Trigger::WebhookAndPoll)
            .map(|(k, s)| {
                (
                    k.clone(),
                    s.resolved.source.id.clone(),
                    s.resolved.flow.stream.clone(),
                )
            })
            .collect();
        if flows.is_empty() {
            return;
        }
        let (store, tx) = (self.daemon.store.clone(), self.health_tx.clone());
        let ingress = self.daemon.config.ingress.clone();
        tokio::task::spawn_blocking(move || {
            let now = crate::unix_time::now_ms();
            let since = now - 24 * 3_600_000;
            let grace = ingress.coverage_grace.as_millis() as i64;
            let silence = ingress.silence_after.as_millis() as i64;
            let judged = flows
                .into_iter()
                .filter_map(|(flow, connection, stream)| {
                    let c = store
                        .coverage(&connection, &stream, since, grace, now)
                        .ok()?;
                    let poor = c.coverage.is_some_and(|c| c < POOR_COVERAGE);
                    let silent = c.last_poll_change_at_ms.is_some_and(|polled| {
                        let heard = c.last_webhook_at_ms.unwrap_or(since);
                        polled > heard && now - heard > silence
                    });
                    Some((flow, poor || silent))
                })
                .collect();
            let _ = tx.blocking_send(judged);
        });
    }

    fn note_health(&mut self, judged: Vec<(FlowId, bool)>) {
        let now = Instant::now();
        for (flow, poor) in judged {
            let Some(slot) = self.slots.get_mut(&flow) else {
                continue;
            };
            if slot.poor_webhooks != poor {
                slot.poor_webhooks = poor;
                if poor {
                    tracing::warn!(flow = %flow, "webhooks miss changes or went silent: polling {TIGHTENING} times as often until they recover");
                } else {
                    tracing::info!(flow = %flow, "webhooks recovered: polling on the normal schedule");
                }
                if !slot.running {
                    slot.due = slot.next_scheduled(now);
                }
            }
        }
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
        if self.generation == Some(generation) {
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
        self.generation = Some(generation);
        let last_runs: HashMap<String, (i64, RunStatus)> = last_runs
            .into_iter()
            .map(|r| (r.flow, (r.started_at_ms, r.status)))
            .collect();
        let now = Instant::now();
        let mut slots = BTreeMap::new();
        for tenant in &tenants {
            for template in self.daemon.config.flows.keys() {
                let resolved = match resolve_flow(&self.daemon.config, tenant, template) {
                    Ok(resolved) => resolved,
                    Err(err) => {
                        tracing::warn!(
                            "tenant `{}`: {err}; its flow `{template}` is not scheduled",
                            tenant.id
                        );
                        continue;
                    }
                };
                let key = resolved.flow.id.clone();
                let slot = match self.slots.remove(&key) {
                    Some(mut slot) => {
                        let schedule_changed =
                            slot.resolved.flow.schedule != resolved.flow.schedule;
                        slot.trigger = trigger_of(&resolved, &self.daemon);
                        slot.resolved = resolved;
                        if schedule_changed && !slot.running {
                            slot.due = slot.next_scheduled(now);
                        }
                        slot
                    }
                    None => {
                        let trigger = trigger_of(&resolved, &self.daemon);
                        let mut slot = Slot {
                            resolved,
                            tenant: tenant.id.clone(),
                            template: template.clone(),
                            due: None,
                            running: false,
                            rerun: false,
                            failures: 0,
                            last_error: None,
                            trigger,
                            poor_webhooks: false,
                        };
                        slot.due = first_due(&slot, last_runs.get(key.as_str()).copied(), now);
                        slot
                    }
                };
                slots.insert(key, slot);
            }
        }
        // Slots of removed tenants vanish; a run in flight finishes on its own.
        self.slots = slots;
        self.dirty = true;
    }

    fn launch_due(&mut self) {
        let now = Instant::now();
        let limits = &self.daemon.config.daemon;
        let mut due: Vec<(Instant, FlowId)> = self
            .slots
            .iter()
            .filter(|(_, s)| s.resolved.enabled && s.connected() && !s.running)
            .filter_map(|(k, s)| s.due.filter(|d| *d <= now).map(|d| (d, k.clone())))
            .collect();
        due.sort();
        for (_, key) in due {
            if self.running >= limits.max_concurrent_runs {
                break;
            }
            let plugins = self.daemon.plugins();
            let slot = self.slots.get_mut(&key).expect("listed above");
            if let Some(missing) = missing_connector(&slot.resolved, &plugins) {
                // Paused, not failed: it runs again once the plugin is back.
                let note = format!(
                    "paused: connector `{missing}` is not loaded (its plugin file was removed or does not load)"
                );
                if slot.last_error.as_deref() != Some(note.as_str()) {
                    tracing::warn!(flow = %key, "{note}");
                    slot.last_error = Some(note);
                    self.dirty = true;
                }
                continue;
            }
            let connection = slot.connection().clone();
            let busy = self
                .running_per_connection
                .get(&connection)
                .copied()
                .unwrap_or(0);
            if busy >= limits.max_runs_per_connection {
                continue;
            }
            slot.running = true;
            slot.due = None;
            self.running += 1;
            *self.running_per_connection.entry(connection).or_default() += 1;
            let log_changes = slot.trigger.webhooks();
            let (daemon, resolved, cancel, tx) = (
                self.daemon.clone(),
                slot.resolved.clone(),
                self.runs.child_token(),
                self.finished_tx.clone(),
            );
            tokio::spawn(async move {
                let flow = resolved.flow.id.clone();
                let result = execute(&daemon, &resolved, cancel, log_changes).await;
                let _ = tx.send(Finished { flow, result }).await;
            });
            self.dirty = true;
        }
    }

    fn finish(&mut self, done: Finished) {
        self.running = self.running.saturating_sub(1);
        let now = Instant::now();
        let Some(slot) = self.slots.get_mut(&done.flow) else {
            return;
        };
        if let Some(count) = self.running_per_connection.get_mut(slot.connection()) {
            *count = count.saturating_sub(1);
        }
        slot.running = false;
        self.dirty = true;
        match &done.result {
            Ok(summary) if summary.status == RunStatus::Succeeded => {
                slot.failures = 0;
                slot.last_error = None;
                slot.last_error = None;
                slot.due = slot.next_scheduled(now);
            }
            Ok(summary) if summary.status == RunStatus::Paused => {
                let wait = summary
                    .resume_after
                    .unwrap_or(DEFAULT_PAUSE)
                    .min(MAX_BACKOFF);
                slot.last_error = summary
                    .error
                    .as_ref()
                    .map(|d| format!("[{}] {}", d.code, d.message));
                slot.due = Some(now + wait);
            }
            Ok(summary) if summary.status == RunStatus::Interrupted => {}
            Ok(summary) => failed(slot, summary.error.as_ref(), now),
            Err(diagnostic) => failed(slot, Some(diagnostic), now),
        }
        if slot.rerun {
            slot.rerun = false;
            slot.due = Some(now);
        }
    }

    async fn persist(&mut self, force: bool) {
        if !self.dirty || (!force && self.last_persist.elapsed() < Duration::from_secs(1)) {
            return;
        }
        let threshold = self.daemon.config.daemon.failures_before_unhealthy;
        let now = Instant::now();
        let now_ms = crate::unix_time::now_ms();
        let states: Vec<FlowState> = self
            .slots
            .iter()
            .map(|(key, slot)| FlowState {
                flow: key.to_string(),
                tenant: slot.tenant.to_string(),
                template: slot.template.to_string(),
                enabled: slot.resolved.enabled,
                schedule: slot.resolved.flow.schedule.as_ref().map(|s| s.to_string()),
                next_run_at_ms: slot
                    .due
                    .filter(|_| slot.resolved.enabled && slot.connected())
                    .map(|due| now_ms + due.saturating_duration_since(now).as_millis() as i64),
                failures: slot.failures,
                healthy: slot.failures < threshold,
                last_error: slot.last_error.clone(),
            })
            .collect();
        let store = self.daemon.store.clone();
        match tokio::task::spawn_blocking(move || store.save_flow_states(&states)).await {
            Ok(Ok(())) => {
                self.dirty = false;
                self.last_persist = Instant::now();
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

fn failed(slot: &mut Slot, error: Option<&Diagnostic>, now: Instant) {
    slot.failures += 1;
    slot.last_error = error.map(|d| format!("[{}] {}", d.code, d.message));
    let backoff = FIRST_BACKOFF
        .saturating_mul(1 << (slot.failures - 1).min(12))
        .min(MAX_BACKOFF);
    // Never wait longer than the schedule would anyway.
    let scheduled = slot.next_scheduled(now);
    slot.due = Some(match scheduled {
        Some(next) => (now + backoff).min(next),
        None => now + backoff,
    });
    tracing::warn!(flow = %slot.resolved.flow.id, failures = slot.failures, "run failed: {}", slot.last_error.as_deref().unwrap_or("?"));
}

/// When a flow first runs after the daemon starts: on schedule counted from
/// its last run, or right away (with its jitter) if that time has passed;
/// a run that did not finish (interrupted by a shutdown, failed, paused)
/// resumes within seconds.
fn first_due(slot: &Slot, last_run: Option<(i64, RunStatus)>, now: Instant) -> Option<Instant> {
    let unfinished = last_run.is_some_and(|(_, status)| status != RunStatus::Succeeded);
    // Webhooks sent while Weir was down are lost: a poll covers that window
    // before anything else.
    if unfinished || slot.trigger.webhooks() {
        return Some(now + slot.jitter().min(RESUME_SPREAD));
    }
    let schedule = slot.resolved.flow.schedule.as_ref()?;
    let soon = now + slot.jitter();
    let Some(last) = last_run.and_then(|(ms, _)| jiff::Timestamp::from_millisecond(ms).ok()) else {
        return Some(soon);
    };
    let next = schedule.next_after(last);
    let wall_now = jiff::Timestamp::now();
    if next <= wall_now {
        Some(soon)
    } else {
        Some(
            now + Duration::try_from(next.duration_since(wall_now)).unwrap_or(Duration::ZERO)
                + slot.jitter(),
        )
    }
}
