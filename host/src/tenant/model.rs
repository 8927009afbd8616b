use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{ConnectionId, ConnectorName, FlowId, TenantId};

/// One customer's installation of the integration, as stored and as the
/// admin API exchanges it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Stable name, e.g. `customer-42`.
    pub id: TenantId,
    /// For people.
    #[serde(default)]
    pub name: String,
    /// Per connection of `weir.toml`: this customer's config and secrets.
    #[serde(default)]
    pub connections: BTreeMap<ConnectionId, TenantConnection>,
    /// Per flow of `weir.toml`: this customer's choices.
    #[serde(default)]
    pub flows: BTreeMap<FlowId, TenantFlow>,
    /// Connector versions this customer stays on (staged rollouts): the
    /// connector's name to a version Weir still has.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pins: BTreeMap<ConnectorName, String>,
}

/// A customer's settings for one connection of the integration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConnection {
    /// Merged over the connection's config from `weir.toml` (objects merge
    /// key by key; other values replace).
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Secrets, by the name the connector uses: `{"env": "VAR"}`,
    /// `{"file": "path"}`, `{"sealed": "v1:..."}` (a value given as
    /// `{"value": "..."}` and sealed when saved), or a list of those.
    #[serde(default)]
    pub secrets: BTreeMap<String, serde_json::Value>,
}

/// A customer's choices for one flow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFlow {
    /// On or off; `weir.toml`'s `enabled` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `every 15m` or a cron expression; the flow's schedule when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// A mapping document; the flow's mapping when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<serde_json::Value>,
}

impl Tenant {
    /// A tenant with nothing set: every flow as `weir.toml` says.
    pub fn new(id: TenantId) -> Self {
        Self {
            name: id.to_string(),
            id,
            connections: BTreeMap::new(),
            flows: BTreeMap::new(),
            pins: BTreeMap::new(),
        }
    }
}
