//! `weir.toml`: parsed into raw structs (unknown keys refused), then resolved
//! into checked settings. Raw config never leaves this module.

mod raw;
mod resolve;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use resolve::ConfigError;

use crate::capability::{BudgetConfig, HttpLimits, OriginPattern, SecretSource};
use crate::ids::{ConnectionId, ConnectorName, FlowId};
use crate::runtime::CallLimits;

/// Records per page a connector is asked for, unless a connection says otherwise.
pub const DEFAULT_PAGE_SIZE: u32 = 1_000;

/// Checked settings of one Weir installation.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file they came from.
    pub path: PathBuf,
    /// Where plugin files are.
    pub plugins_dir: PathBuf,
    /// The SQLite store.
    pub store_path: PathBuf,
    /// Compiled components.
    pub cache_dir: PathBuf,
    /// Connections by name.
    pub connections: BTreeMap<ConnectionId, ConnectionConfig>,
    /// Flows by name.
    pub flows: BTreeMap<FlowId, FlowConfig>,
}

/// One partner account.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Its name.
    pub id: ConnectionId,
    /// The connector that talks to the partner.
    pub connector: ConnectorName,
    /// Given to the connector as JSON.
    pub config: serde_json::Value,
    /// Origins the operator allows.
    pub allowed_hosts: Vec<OriginPattern>,
    /// Secret sources by the name the connector uses.
    pub secrets: BTreeMap<String, Vec<SecretSource>>,
    /// Limits of each call into the connector.
    pub limits: CallLimits,
    /// Records per page.
    pub page_size: u32,
    /// Largest page, in bytes of record data.
    pub max_page_bytes: usize,
    /// Limits of outgoing requests.
    pub http: HttpLimits,
    /// How fast the partner may be called.
    pub budget: BudgetConfig,
}

/// Where a flow puts what it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The local store.
    Store,
    /// Another connection's stream, through its connector's `write`.
    Connection {
        /// The connection.
        connection: ConnectionId,
        /// Its stream.
        stream: String,
    },
}

/// One source stream moved to one destination.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Its name.
    pub id: FlowId,
    /// The connection read from.
    pub source: ConnectionId,
    /// The stream read.
    pub stream: String,
    /// Where records go.
    pub destination: Destination,
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Checks config text; `path` names it in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw = raw::RawConfig::parse(path, text)?;
        resolve::resolve(path, raw)
    }

    /// A connection by name, or an error that lists the known ones.
    pub fn connection(&self, id: &str) -> Result<&ConnectionConfig, ConfigError> {
        ConnectionId::new(id)
            .ok()
            .and_then(|id| self.connections.get(&id))
            .ok_or_else(|| ConfigError::UnknownConnection {
                path: self.path.clone(),
                name: id.to_string(),
                known: self.connections.keys().map(|c| c.to_string()).collect(),
            })
    }

    /// A flow by name, or an error that lists the known ones.
    pub fn flow(&self, id: &str) -> Result<&FlowConfig, ConfigError> {
        FlowId::new(id)
            .ok()
            .and_then(|id| self.flows.get(&id))
            .ok_or_else(|| ConfigError::UnknownFlow {
                path: self.path.clone(),
                name: id.to_string(),
                known: self.flows.keys().map(|f| f.to_string()).collect(),
            })
    }
}
