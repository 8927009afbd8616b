//! What every tenant's flow is doing: enabled, schedule, last run, next
//! run, records, health. Read from the store, so `weir status` works with
//! or without a daemon running.

use serde::Serialize;

use crate::store::{FlowState, RunRecord, StoreError, TenantStore};

/// One tenant's flow.
#[derive(Debug, Clone, Serialize)]
pub struct FlowStatus {
    /// What the scheduler knows.
    #[serde(flatten)]
    pub state: FlowState,
    /// Its latest run, if any.
    pub last_run: Option<RunRecord>,
}

/// Every tenant's flow, by name.
pub fn flow_statuses(store: &dyn TenantStore) -> Result<Vec<FlowStatus>, StoreError> {
    let mut last_runs: std::collections::HashMap<String, RunRecord> = store
        .last_runs()?
        .into_iter()
        .map(|r| (r.flow.clone(), r))
        .collect();
    Ok(store
        .flow_states()?
        .into_iter()
        .map(|state| FlowStatus {
            last_run: last_runs.remove(&state.flow),
            state,
        })
        .collect())
}
