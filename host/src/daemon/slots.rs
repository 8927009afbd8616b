//! The daemon's table of flows: one slot per tenant flow, when each is
//! due, which run, and what the end of a run means for the next. Only
//! bookkeeping, at the monotonic instant it is passed (a schedule reads
//! the wall clock for its next time); the scheduler does the I/O (store,
//! runs, channels).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::config::{DaemonConfig, Trigger};
use crate::diagnostic::Diagnostic;
use crate::flow::RunSummary;
use crate::ids::{ConnectionId, FlowId, TenantId};
use crate::store::{FlowState, RunStatus};
use crate::tenant::ResolvedFlow;

/// Backoff after a first failure; doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How much more often a flow polls while its webhooks are poor.
pub(super) const TIGHTENING: u32 = 4;
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

/// One tenant's flow as the scheduler sees it.
pub(super) struct Slot {
    pub(super) resolved: ResolvedFlow,
    tenant: TenantId,
    template: FlowId,
    due: Option<Instant>,
    running: bool,
    rerun: bool,
    failures: u32,
    last_error: Option<String>,
    /// What brings its changes (webhooks, polls or both).
    pub(super) trigger: Trigger,
    /// Webhooks miss many changes or went silent: poll more often.
    poor_webhooks: bool,
}

impl Slot {
    pub(super) fn connection(&self) -> &ConnectionId {
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

/// A flow the tenants want scheduled, as a reload found it.
pub(super) struct Wanted {
    pub tenant: TenantId,
    pub template: FlowId,
    pub resolved: ResolvedFlow,
    pub trigger: Trigger,
}

/// Every tenant flow of the daemon, and what runs.
#[derive(Default)]
pub(super) struct FlowTable {
    slots: BTreeMap<FlowId, Slot>,
    running: usize,
    running_per_connection: HashMap<ConnectionId, usize>,
    /// Changed since the states were last saved.
    dirty: bool,
}

impl FlowTable {
    /// Runs in flight.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Whether anything changed since [`Self::saved`].
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The states were saved.
    pub fn saved(&mut self) {
        self.dirty = false;
    }

    /// A "run now" request for `flow`.
    pub fn run_now(&mut self, flow: &FlowId, now: Instant) -> TriggerOutcome {
        match self.slots.get_mut(flow) {
            None => TriggerOutcome::Unknown,
            Some(slot) if !slot.connected() => TriggerOutcome::NotConnected,
            Some(slot) if slot.running => {
                slot.rerun = true;
                TriggerOutcome::Coalesced
            }
            Some(slot) => {
                slot.due = Some(now);
                TriggerOutcome::Queued
            }
        }
    }

    /// Replaces the table with the flows tenants want now. A slot that
    /// stays keeps its state (a run in flight, failures, when it is due);
    /// a new one is due per [`first_due`]; slots of removed tenants vanish
    /// (a run in flight finishes on its own).
    pub fn reconcile(
        &mut self,
        wanted: Vec<Wanted>,
        last_runs: &HashMap<String, (i64, RunStatus)>,
        now: Instant,
    ) {
        let mut slots = BTreeMap::new();
        for Wanted {
            tenant,
            template,
            resolved,
            trigger,
        } in wanted
        {
            let key = resolved.flow.id.clone();
            let slot = match self.slots.remove(&key) {
                Some(mut slot) => {
                    let schedule_changed = slot.resolved.flow.schedule != resolved.flow.schedule;
                    slot.trigger = trigger;
                    slot.resolved = resolved;
                    if schedule_changed && !slot.running {
                        slot.due = slot.next_scheduled(now);
                    }
                    slot
                }
                None => {
                    let mut slot = Slot {
                        resolved,
                        tenant,
                        template,
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
        self.slots = slots;
        self.dirty = true;
    }

    /// Flows due by `now` that may run (enabled, connected, not running),
    /// the longest overdue first.
    pub fn due(&self, now: Instant) -> Vec<FlowId> {
        let mut due: Vec<(Instant, FlowId)> = self
            .slots
            .iter()
            .filter(|(_, s)| s.resolved.enabled && s.connected() && !s.running)
            .filter_map(|(k, s)| s.due.filter(|d| *d <= now).map(|d| (d, k.clone())))
            .collect();
        due.sort();
        due.into_iter().map(|(_, key)| key).collect()
    }

    /// The slot of a flow.
    pub fn get(&self, flow: &FlowId) -> Option<&Slot> {
        self.slots.get(flow)
    }

    /// Notes why a due flow cannot run (its connector is not loaded): it
    /// stays due, paused rather than failed. Returns whether the note is new.
    pub fn hold(&mut self, flow: &FlowId, note: String) -> bool {
        let Some(slot) = self.slots.get_mut(flow) else {
            return false;
        };
        if slot.last_error.as_deref() == Some(note.as_str()) {
            return false;
        }
        slot.last_error = Some(note);
        self.dirty = true;
        true
    }

    /// Starts a run of `flow` unless its connection already runs
    /// `per_connection` runs; returns whether it started.
    pub fn start(&mut self, flow: &FlowId, per_connection: usize) -> bool {
        let Some(slot) = self.slots.get_mut(flow) else {
            return false;
        };
        let busy = self
            .running_per_connection
            .entry(slot.connection().clone())
            .or_default();
        if *busy >= per_connection {
            return false;
        }
        *busy += 1;
        slot.running = true;
        slot.due = None;
        self.running += 1;
        self.dirty = true;
        true
    }

    /// A run of `flow` ended with `result`: when it runs next.
    pub fn finish(&mut self, flow: &FlowId, result: &Result<RunSummary, Diagnostic>, now: Instant) {
        self.running = self.running.saturating_sub(1);
        let Some(slot) = self.slots.get_mut(flow) else {
            return;
        };
        if let Some(count) = self.running_per_connection.get_mut(slot.connection()) {
            *count = count.saturating_sub(1);
        }
        slot.running = false;
        self.dirty = true;
        match result {
            Ok(summary) if summary.status == RunStatus::Succeeded => {
                slot.failures = 0;
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

    /// Flows whose webhooks are judged, with their source stream.
    pub fn webhook_flows(&self) -> Vec<(FlowId, ConnectionId, String)> {
        self.slots
            .iter()
            .filter(|(_, s)| s.trigger == Trigger::WebhookAndPoll)
            .map(|(k, s)| {
                (
                    k.clone(),
                    s.connection().clone(),
                    s.resolved.flow.stream.clone(),
                )
            })
            .collect()
    }

    /// Whether a flow's webhooks are poor (they miss changes or went
    /// silent): its polls come more often until they recover.
    pub fn note_health(&mut self, flow: &FlowId, poor: bool, now: Instant) {
        let Some(slot) = self.slots.get_mut(flow) else {
            return;
        };
        if slot.poor_webhooks == poor {
            return;
        }
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

    /// Every flow's state as saved for `weir status`: `now` and `now_ms`
    /// are one moment by the monotonic and the wall clock.
    pub fn states(&self, limits: &DaemonConfig, now: Instant, now_ms: i64) -> Vec<FlowState> {
        self.slots
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
                healthy: slot.failures < limits.failures_before_unhealthy,
                last_error: slot.last_error.clone(),
            })
            .collect()
    }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::diagnostic::ErrorCode;
    use crate::ids::RunId;
    use crate::tenant::{Tenant, resolve_flow};

    fn config() -> Config {
        Config::parse(
            Path::new("/weir/weir.toml"),
            r#"
            [connections.acme]
            connector = "acme-crm"
            config = { base_url = "https://api.acme.example" }
            allowed_hosts = ["https://api.acme.example"]
            secrets.api_key = { env = "KEY" }

            [flows.contacts]
            source = "acme"
            stream = "contacts"
            schedule = "every 1h"

            [flows.companies]
            source = "acme"
            stream = "companies"
            schedule = "every 1h"
            "#,
        )
        .unwrap()
    }

    /// A table of both flows of each tenant, none run before.
    fn table(tenants: &[&str], now: Instant) -> FlowTable {
        let mut table = FlowTable::default();
        table.reconcile(table_wanted(tenants), &HashMap::new(), now);
        table
    }

    fn flow(name: &str) -> FlowId {
        FlowId::new(name).unwrap()
    }

    fn ended(status: RunStatus) -> Result<RunSummary, Diagnostic> {
        Ok(RunSummary {
            run: RunId(1),
            flow: flow("t1.contacts"),
            status,
            pages: 0,
            records_read: 0,
            records_written: 0,
            records_failed: 0,
            resolved: 0,
            conflicts: 0,
            elapsed: Duration::ZERO,
            resume_after: None,
            error: None,
        })
    }

    /// Moments after `now` by which `flow` is (not) due.
    fn due_within(table: &FlowTable, flow: &FlowId, now: Instant, within: Duration) -> bool {
        table.due(now + within).contains(flow)
    }

    #[test]
    fn a_new_flow_is_due_soon_and_one_per_connection_runs_at_a_time() {
        let now = Instant::now();
        let mut table = table(&["t1"], now);
        let due = table.due(now + Duration::from_secs(3600));
        assert_eq!(due.len(), 2, "both flows are due once their jitter passed");
        assert!(table.start(&due[0], 1));
        assert!(!table.start(&due[1], 1), "the connection already runs one");
        assert_eq!(table.running(), 1);
        assert!(
            !table.due(now + Duration::from_secs(3600)).contains(&due[0]),
            "running"
        );
        table.finish(&due[0], &ended(RunStatus::Succeeded), now);
        assert!(table.start(&due[1], 1), "the connection is free again");
    }

    #[test]
    fn a_trigger_while_running_is_folded_into_one_more_run() {
        let now = Instant::now();
        let mut table = table(&["t1"], now);
        let contacts = flow("t1.contacts");
        assert_eq!(table.run_now(&contacts, now), TriggerOutcome::Queued);
        assert!(table.start(&contacts, 4));
        assert_eq!(table.run_now(&contacts, now), TriggerOutcome::Coalesced);
        assert_eq!(table.run_now(&contacts, now), TriggerOutcome::Coalesced);
        table.finish(&contacts, &ended(RunStatus::Succeeded), now);
        assert_eq!(
            table.due(now),
            std::slice::from_ref(&contacts),
            "exactly one more run, now"
        );
        assert_eq!(
            table.run_now(&flow("t9.contacts"), now),
            TriggerOutcome::Unknown
        );
    }

    #[test]
    fn failures_back_off_doubling_and_a_success_resets_them() {
        let now = Instant::now();
        let mut table = table(&["t1"], now);
        let contacts = flow("t1.contacts");
        let failure = Err(Diagnostic::new(ErrorCode::ConnectorPermanent, "boom"));
        for (attempt, backoff) in [(1, 5), (2, 10), (3, 20)] {
            table.run_now(&contacts, now);
            assert!(table.start(&contacts, 4));
            table.finish(&contacts, &failure, now);
            let slot = table.get(&contacts).unwrap();
            assert_eq!(slot.failures, attempt);
            let backoff = Duration::from_secs(backoff);
            assert!(!due_within(
                &table,
                &contacts,
                now,
                backoff - Duration::from_millis(1)
            ));
            assert!(
                due_within(&table, &contacts, now, backoff),
                "attempt {attempt}"
            );
        }
        let states = table.states(&config().daemon, now, 0);
        let state = states.iter().find(|s| s.flow == "t1.contacts").unwrap();
        assert!(!state.healthy, "three failures in a row");
        assert_eq!(
            state.last_error.as_deref(),
            Some("[connector-permanent] boom")
        );

        table.run_now(&contacts, now);
        assert!(table.start(&contacts, 4));
        table.finish(&contacts, &ended(RunStatus::Succeeded), now);
        let slot = table.get(&contacts).unwrap();
        assert_eq!((slot.failures, slot.last_error.as_deref()), (0, None));
        assert!(
            !due_within(&table, &contacts, now, Duration::from_secs(60)),
            "next on its hourly schedule"
        );
    }

    #[test]
    fn a_reload_keeps_a_running_flow_and_drops_removed_tenants() {
        let now = Instant::now();
        let mut table = table(&["t1", "t2"], now);
        let contacts = flow("t1.contacts");
        table.run_now(&contacts, now);
        assert!(table.start(&contacts, 4));
        let kept = table_wanted(&["t1"]);
        table.reconcile(kept, &HashMap::new(), now);
        assert!(table.get(&flow("t2.contacts")).is_none(), "t2 is gone");
        assert!(table.get(&contacts).unwrap().running, "still running");
        assert_eq!(table.run_now(&contacts, now), TriggerOutcome::Coalesced);
        assert!(table.is_dirty());
        table.saved();
        assert!(!table.is_dirty());
    }

    /// A tenant that connected `acme` with its own key, except `unconnected`.
    fn tenant(id: &str) -> Tenant {
        let connections = if id == "unconnected" {
            serde_json::json!({})
        } else {
            serde_json::json!({ "acme": { "secrets": { "api_key": { "env": "T_KEY" } } } })
        };
        serde_json::from_value(serde_json::json!({ "id": id, "connections": connections })).unwrap()
    }

    fn table_wanted(tenants: &[&str]) -> Vec<Wanted> {
        let config = config();
        tenants
            .iter()
            .flat_map(|id| {
                let tenant = tenant(id);
                let config = &config;
                config.flows.keys().map(move |template| Wanted {
                    tenant: tenant.id.clone(),
                    template: template.clone(),
                    resolved: resolve_flow(config, &tenant, template).unwrap(),
                    trigger: Trigger::Poll,
                })
            })
            .collect()
    }

    #[test]
    fn a_tenant_that_has_not_connected_never_runs() {
        let now = Instant::now();
        let mut table = table(&["unconnected"], now);
        let contacts = flow("unconnected.contacts");
        assert!(table.due(now + Duration::from_secs(7200)).is_empty());
        assert_eq!(table.run_now(&contacts, now), TriggerOutcome::NotConnected);
        let states = table.states(&config().daemon, now, 0);
        assert!(
            states.iter().all(|s| s.next_run_at_ms.is_none()),
            "{states:?}"
        );
    }

    #[test]
    fn a_missing_connector_holds_a_flow_with_one_note() {
        let now = Instant::now();
        let mut table = table(&["t1"], now);
        let contacts = flow("t1.contacts");
        table.saved();
        assert!(table.hold(&contacts, "paused: gone".into()));
        assert!(!table.hold(&contacts, "paused: gone".into()), "said once");
        assert!(table.is_dirty());
        assert!(
            table.due(now + Duration::from_secs(60)).contains(&contacts),
            "still due"
        );
    }
}
