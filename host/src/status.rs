//! What every tenant's flow is doing: enabled, connected, schedule, last
//! run, next run, records, health. Read from the store and `weir.toml`, so
//! `weir status` works with or without a daemon running.

use serde::Serialize;

use crate::config::Config;
use crate::config::NotConnected;
use crate::store::{FlowState, RunRecord, StoreError, TenantStore};
use crate::tenant::resolve_flow;

/// One tenant's flow.
#[derive(Debug, Clone, Serialize)]
pub struct FlowStatus {
    /// What the scheduler knows.
    #[serde(flatten)]
    pub state: FlowState,
    /// Whether its tenant has its own credentials for every connection it
    /// uses; a `not-connected` flow never runs.
    pub connection: Connection,
    /// What each connection it uses still lacks, when not connected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_connected: Vec<NotConnected>,
    /// Its latest run, if any.
    pub last_run: Option<RunRecord>,
}

/// Whether a tenant's flow may reach its partners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Connection {
    /// It runs with the tenant's own credentials (or shared ones).
    Connected,
    /// The tenant has not given the secrets of a connection it uses.
    NotConnected,
}

/// Every tenant's flow, by name: each flow of `weir.toml` for each tenant,
/// with what the scheduler last saved of it (a flow a daemon has not
/// scheduled yet shows as it would start).
pub fn flow_statuses(
    config: &Config,
    store: &dyn TenantStore,
) -> Result<Vec<FlowStatus>, StoreError> {
    let mut last_runs: std::collections::HashMap<String, RunRecord> = store
        .last_runs()?
        .into_iter()
        .map(|r| (r.flow.clone(), r))
        .collect();
    let mut states: std::collections::HashMap<String, FlowState> = store
        .flow_states()?
        .into_iter()
        .map(|s| (s.flow.clone(), s))
        .collect();
    let mut statuses = Vec::new();
    for tenant in store.tenants()? {
        for template in config.flows.keys() {
            // A tenant whose settings no longer fit weir.toml is not
            // scheduled; the scheduler's log says why.
            let Ok(resolved) = resolve_flow(config, &tenant, template) else {
                continue;
            };
            let flow = resolved.flow.id.to_string();
            let mut state = states.remove(&flow).unwrap_or_else(|| FlowState {
                flow: flow.clone(),
                tenant: tenant.id.to_string(),
                template: template.to_string(),
                enabled: resolved.enabled,
                schedule: resolved.flow.schedule.as_ref().map(|s| s.to_string()),
                next_run_at_ms: None,
                failures: 0,
                healthy: true,
                last_error: None,
            });
            let not_connected: Vec<NotConnected> = resolved.not_connected().cloned().collect();
            if !not_connected.is_empty() {
                state.next_run_at_ms = None;
            }
            statuses.push(FlowStatus {
                last_run: last_runs.remove(&flow),
                connection: if not_connected.is_empty() {
                    Connection::Connected
                } else {
                    Connection::NotConnected
                },
                not_connected,
                state,
            });
        }
    }
    statuses.sort_by(|a, b| a.state.flow.cmp(&b.state.flow));
    Ok(statuses)
}
