//! `weir.toml`: parsed into raw structs (unknown keys refused), then resolved
//! into checked settings. Raw config never leaves this module.

mod credentials;
mod raw;
mod resolve;
mod store;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use credentials::NotConnected;
pub use resolve::ConfigError;
pub use store::StoreConfig;

use crate::call::CallLimits;
use crate::capability::{BudgetConfig, HttpLimits, OriginPattern, SecretSource};
use crate::ids::{ConnectionId, ConnectorName, FlowId};
use crate::mapping::Mapping;
use crate::schedule::Schedule;

fn first(mut problems: Vec<ConfigError>) -> ConfigError {
    // `load_all` and `parse_all` never fail without a problem.
    problems.swap_remove(0)
}

/// Records per page a connector is asked for, unless a connection says otherwise.
pub const DEFAULT_PAGE_SIZE: u32 = 1_000;

/// Checked settings of one Weir installation.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file they came from.
    pub path: PathBuf,
    /// Where plugin files are.
    pub plugins_dir: PathBuf,
    /// The store: backend and where.
    pub store: StoreConfig,
    /// Compiled components.
    pub cache_dir: PathBuf,
    /// Connections by name.
    pub connections: BTreeMap<ConnectionId, ConnectionConfig>,
    /// Flows by name.
    pub flows: BTreeMap<FlowId, FlowConfig>,
    /// How `weir run` schedules.
    pub daemon: DaemonConfig,
    /// The admin API of `weir run`.
    pub admin: AdminConfig,
    /// Webhook ingress of `weir run`.
    pub ingress: IngressConfig,
    /// Where the keys that seal tenants' secret values come from, newest
    /// first; none: tenants' secrets can only be references.
    pub sealing_keys: Vec<SecretSource>,
}

/// Where and how `weir run` receives webhooks.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// Where it listens; none to receive no webhooks.
    pub listen: Option<SocketAddr>,
    /// The inbox database (deliveries are stored there before any answer).
    pub inbox_path: PathBuf,
    /// Deliveries per second one tenant may send, sustained.
    pub per_tenant_rate: f64,
    /// Deliveries one tenant may send at once.
    pub per_tenant_burst: u32,
    /// How long after a poll a webhook of the same change still counts.
    pub coverage_grace: Duration,
    /// Polls finding changes with no webhook for this long raise an alert.
    pub silence_after: Duration,
    /// Times a stored delivery is processed before it is given up (kept
    /// as failed, for `weir webhooks retry`).
    pub delivery_attempts: u32,
    /// How long after a failed attempt a delivery is processed again.
    pub retry_delay: Duration,
}

/// How `weir run` schedules runs.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Runs at once, across all tenants.
    pub max_concurrent_runs: usize,
    /// Runs at once on one tenant's connection.
    pub max_runs_per_connection: usize,
    /// Consecutive failures after which a flow is reported unhealthy.
    pub failures_before_unhealthy: u32,
    /// How long a shutdown waits for runs to end at their last committed
    /// page (the page in flight is dropped at once; only the commit of the
    /// page before it is waited for).
    pub shutdown_grace: Duration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            max_concurrent_runs: 8,
            max_runs_per_connection: 2,
            failures_before_unhealthy: 3,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The admin API of `weir run`.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where it listens (loopback by default).
    pub listen: SocketAddr,
    /// Where the bearer token comes from; without one the API is not served.
    pub token: Option<SecretSource>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            token: Some(SecretSource::Env("WEIR_ADMIN_TOKEN".into())),
        }
    }
}

/// A transform plugin step of a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformConfig {
    /// The transform plugin's name.
    pub plugin: String,
    /// Its configuration, as JSON.
    pub config: serde_json::Value,
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
    /// Whether tenants may use these secrets when they have none of their
    /// own (`shared_credentials = true`); by default they never do.
    pub shared_credentials: bool,
    /// Set on a tenant's instance that lacks its own credentials: such a
    /// connection is never opened, so nothing reaches the partner.
    pub not_connected: Option<NotConnected>,
    /// Limits of each call into the connector.
    pub limits: CallLimits,
    /// Records per page.
    pub page_size: u32,
    /// Largest page, in bytes of record data.
    pub max_page_bytes: usize,
    /// Largest webhook body accepted (413 above it).
    pub max_webhook_bytes: usize,
    /// Limits of outgoing requests.
    pub http: HttpLimits,
    /// How fast the partner may be called.
    pub budget: BudgetConfig,
}

/// Where a flow puts what it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationConfig {
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
    pub destination: DestinationConfig,
    /// When it runs by default under `weir run`; none for on demand only.
    pub schedule: Option<Schedule>,
    /// Whether new tenants have it enabled.
    pub enabled_by_default: bool,
    /// How records are reshaped by default; none keeps them as read.
    pub mapping: Option<Arc<Mapping>>,
    /// Transform plugins applied after the mapping, in order.
    pub transforms: Vec<TransformConfig>,
    /// What starts its changes; none: webhooks and polls when the source
    /// stream has webhooks, polls otherwise.
    pub trigger: Option<Trigger>,
    /// How long one run may go on before it fails at its last checkpoint.
    pub max_run_time: Duration,
}

impl FlowConfig {
    /// `max_run_time` when `weir.toml` sets none: long enough for the
    /// first backfill of a large account, short enough that a connector
    /// that never stops is noticed the same day.
    pub const DEFAULT_MAX_RUN_TIME: Duration = Duration::from_secs(3600);
}

/// What brings a flow's changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// Scheduled reads only.
    Poll,
    /// Webhooks only (no scheduled reads).
    Webhook,
    /// Webhooks, with scheduled reads to catch what they miss.
    WebhookAndPoll,
}

impl Trigger {
    /// Parses `poll`, `webhook` or `webhook+poll`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "poll" => Some(Self::Poll),
            "webhook" => Some(Self::Webhook),
            "webhook+poll" | "poll+webhook" => Some(Self::WebhookAndPoll),
            _ => None,
        }
    }

    /// Whether webhooks bring changes.
    pub fn webhooks(self) -> bool {
        self != Self::Poll
    }

    /// Whether scheduled reads run.
    pub fn polls(self) -> bool {
        self != Self::Webhook
    }
}

impl Config {
    /// Reads and checks a config file; the first problem, if any.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_all(path).map_err(first)
    }

    /// Reads and checks a config file; every problem found, in the file's
    /// order (one for a file that is not TOML at all).
    pub fn load_all(path: &Path) -> Result<Self, Vec<ConfigError>> {
        let text = Self::read(path).map_err(|problem| vec![problem])?;
        Self::parse_all(path, &text)
    }

    /// Like [`Self::parse_partly`], for a file.
    pub fn load_partly(path: &Path) -> (Option<Self>, Vec<ConfigError>) {
        match Self::read(path) {
            Ok(text) => Self::parse_partly(path, &text),
            Err(problem) => (None, vec![problem]),
        }
    }

    #[expect(
        clippy::disallowed_methods,
        reason = "its error names the file already, in the words users see"
    )]
    fn read(path: &Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Checks config text; `path` names it in errors and anchors relative
    /// paths. The first problem, if any.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        Self::parse_all(path, text).map_err(first)
    }

    /// Checks config text; every problem found.
    pub fn parse_all(path: &Path, text: &str) -> Result<Self, Vec<ConfigError>> {
        match Self::parse_partly(path, text) {
            (Some(config), problems) if problems.is_empty() => Ok(config),
            (_, problems) => Err(problems),
        }
    }

    /// Every problem of config text, and the configuration of what has
    /// none (sections with a problem left out or at their defaults), for
    /// checks that go on past the first problem. No configuration when the
    /// text is not TOML or its top level is wrong.
    pub fn parse_partly(path: &Path, text: &str) -> (Option<Self>, Vec<ConfigError>) {
        let (raw, problems) = raw::RawConfig::parse(path, text);
        resolve::resolve(path, raw, problems)
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
