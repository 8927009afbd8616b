//! A connection: one plugin bound to one partner account's config, secrets,
//! egress grant and limits. Every call gets a fresh instance.

mod journal;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::de::IgnoredAny;
use wasmtime::Store;

use crate::abi::{ConnectorInstance, GuestResult};
use crate::call::{CallEnv, CallError, CallScope, CallState, GuestCall};
use crate::capability::{
    AuditSink, BudgetRegistry, EgressGrant, GateSetup, HttpGate, SecretSource, Secrets,
};
use crate::config::ConnectionConfig;
use crate::contract::{
    ChangeNotice, Checkpoint, ConnectorSpec, IncomingRequest, Page, Record, StreamSchema,
    WebhookVerdict, WriteRequest, Written,
};
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::ids::{ConnectionId, ConnectorName};
use crate::plugin::{Plugin, PluginKind, PluginRegistry};
use crate::runtime::Runtime;
use crate::store::EgressLog;
use journal::Journal;

/// What the connections of one process share: rate budgets (flows on the
/// same connection share its budget) and the egress log.
pub struct ConnectionServices {
    budgets: Arc<BudgetRegistry>,
    journal: Arc<Journal>,
    log: Arc<dyn EgressLog>,
}

impl ConnectionServices {
    /// Services recording into `log`; starts its background writer on the
    /// current async runtime.
    pub fn new(log: Arc<dyn EgressLog>) -> Self {
        let budgets = Arc::new(BudgetRegistry::default());
        Self {
            journal: Journal::start(log.clone(), budgets.clone()),
            budgets,
            log,
        }
    }

    /// Services that record nothing and persist no budget (for tools and
    /// measurements; Weir's commands always record).
    pub fn unrecorded() -> Self {
        Self::new(Arc::new(NothingRecorded))
    }

    /// Waits until every audit entry and budget state so far is written.
    pub async fn flush(&self) {
        self.journal.flush().await;
    }
}

/// An egress log that keeps nothing.
struct NothingRecorded;

impl EgressLog for NothingRecorded {
    fn append_audit(
        &self,
        _: &[crate::capability::AuditEntry],
    ) -> Result<(), crate::store::StoreError> {
        Ok(())
    }
    fn audit(
        &self,
        _: Option<&ConnectionId>,
        _: usize,
    ) -> Result<Vec<crate::capability::AuditEntry>, crate::store::StoreError> {
        Ok(Vec::new())
    }
    fn save_budgets(
        &self,
        _: &[(ConnectionId, crate::capability::BudgetState)],
    ) -> Result<(), crate::store::StoreError> {
        Ok(())
    }
    fn load_budget(
        &self,
        _: &ConnectionId,
    ) -> Result<Option<crate::capability::BudgetState>, crate::store::StoreError> {
        Ok(None)
    }
}

/// A tenant's connection without its own credentials is never opened:
/// nothing of it may reach the partner.
fn refuse_unconnected(config: &ConnectionConfig) -> Result<(), Diagnostic> {
    match &config.not_connected {
        Some(not_connected) => Err(not_connected.diagnostic()),
        None => Ok(()),
    }
}

/// A connector ready to be called for one connection.
pub struct Connection {
    config: ConnectionConfig,
    plugin: Arc<Plugin>,
    env: Arc<CallEnv>,
    config_json: String,
}

impl Connection {
    /// Binds the connection's plugin, secrets and egress grant.
    pub fn open(
        runtime: &Runtime,
        registry: &PluginRegistry,
        config: &ConnectionConfig,
        services: &ConnectionServices,
    ) -> Result<Self, Diagnostic> {
        refuse_unconnected(config)?;
        let id = &config.id;
        let plugin = registry.get(config.connector.as_str()).cloned().ok_or_else(|| {
            let loaded: Vec<String> = registry.plugins().map(|p| format!("`{}`", p.name)).collect();
            let failed = registry.failures().len();
            Diagnostic::new(
                ErrorCode::ConnectorNotLoaded,
                format!(
                    "connection `{id}` uses connector `{}`, which no loaded plugin provides",
                    config.connector
                ),
            )
            .with_hint(format!(
                "loaded connectors: {}{}; copy the connector's .wasm into the plugins directory or fix `connections.{id}.connector`",
                if loaded.is_empty() { "none".to_string() } else { loaded.join(", ") },
                if failed > 0 { format!(" ({failed} file(s) failed to load: see `weir plugins`)") } else { String::new() }
            ))
        })?;
        Self::open_with(runtime, plugin, config, services)
    }

    /// [`Self::open`] for a tenant's connection, with the connector version
    /// `pins` names for it, or the serving one; a pinned version Weir does
    /// not keep is refused rather than replaced by another.
    pub fn open_pinned(
        pins: &BTreeMap<ConnectorName, String>,
        runtime: &Runtime,
        registry: &PluginRegistry,
        config: &ConnectionConfig,
        services: &ConnectionServices,
    ) -> Result<Self, Diagnostic> {
        let name = config.connector.as_str();
        let Some(version) = pins.get(name) else {
            return Self::open(runtime, registry, config, services);
        };
        let plugin = registry.version(name, version).cloned().ok_or_else(|| {
            let id = config.id.as_str();
            let tenant = id.split_once('.').map_or(id, |(t, _)| t);
            Diagnostic::new(
                ErrorCode::ConnectorNotLoaded,
                format!(
                    "tenant `{tenant}` is pinned to {name} {version}, which Weir does not keep (serving: {})",
                    registry.get(name).map_or("none".to_string(), |p| p.version.clone())
                ),
            )
            .with_hint(format!(
                "`weir tenants unpin {tenant} {name}` follows the serving version; `weir plugins` lists what is loaded"
            ))
        })?;
        Self::open_with(runtime, plugin, config, services)
    }

    /// Binds a given plugin (a pinned version, say) to a connection.
    pub fn open_with(
        runtime: &Runtime,
        plugin: Arc<Plugin>,
        config: &ConnectionConfig,
        services: &ConnectionServices,
    ) -> Result<Self, Diagnostic> {
        refuse_unconnected(config)?;
        let id = &config.id;
        let PluginKind::Connector { spec, .. } = &plugin.kind else {
            return Err(Diagnostic::new(
                ErrorCode::ConnectorNotLoaded,
                format!(
                    "connection `{id}` uses `{}`, which is a transform plugin, not a connector",
                    plugin.name
                ),
            ));
        };
        let secrets = Secrets::resolve(
            config
                .secrets
                .iter()
                .map(|(name, sources)| (name.as_str(), sources.as_slice())),
        )
        .map_err(|(name, why)| {
            let sealed = config.secrets.get(&name).is_some_and(|sources| {
                sources
                    .iter()
                    .any(|source| matches!(source, SecretSource::Sealed { .. }))
            });
            let hint = if sealed {
                "a tenant's sealed value opens only with the `[secrets] key` it was sealed with: list that key in weir.toml (after the current one), or give the value again (`weir tenants connect` or the admin API)".to_string()
            } else {
                format!(
                    "set it in the environment that runs weir, or change `connections.{id}.secrets.{name}` in weir.toml (a tenant's own, with `weir tenants connect`)"
                )
            };
            Diagnostic::new(
                ErrorCode::SecretMissing,
                format!("secret `{name}` of connection `{id}`: {why}"),
            )
            .with_hint(hint)
        })?;
        let (grant, problems) =
            EgressGrant::new(&spec.hosts, &config.config, config.allowed_hosts.clone());
        for problem in problems {
            tracing::warn!(connection = %id, "a host the connector declares grants nothing: {problem}");
        }
        let budget = services.budgets.get_or_create(id, &config.budget, || {
            services.log.load_budget(id).unwrap_or_else(|err| {
                tracing::warn!("cannot read the saved rate budget of `{id}`, starting full: {err}");
                None
            })
        });
        let gate = HttpGate::new(GateSetup {
            connection: id.clone(),
            connector: plugin.label(),
            grant,
            secrets: Arc::new(secrets),
            limits: config.http,
            budget,
            audit: services.journal.clone() as Arc<dyn AuditSink>,
        });
        let env = runtime.call_env(
            plugin.label(),
            CallScope::Connection {
                id: id.to_string(),
                gate,
            },
            config.limits,
        );
        Ok(Self {
            config: config.clone(),
            config_json: config.config.to_string(),
            plugin,
            env,
        })
    }

    /// The connection's name.
    pub fn id(&self) -> &ConnectionId {
        &self.config.id
    }

    /// Its configuration.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// The plugin serving it.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// The connector's spec.
    pub fn spec(&self) -> &ConnectorSpec {
        self.plugin
            .spec()
            .expect("a connection is only opened on a connector")
    }

    /// Declared secrets the connection does not define.
    pub fn missing_secrets(&self) -> Vec<&str> {
        self.spec()
            .secrets
            .iter()
            .map(|s| s.name.as_str())
            .filter(|name| !self.env.gate().secrets().contains(name))
            .collect()
    }

    fn pre(&self) -> &dyn ConnectorInstance {
        match &self.plugin.kind {
            PluginKind::Connector { pre, .. } => pre.as_ref(),
            PluginKind::Transformer { .. } => unreachable!("checked in `open`"),
        }
    }

    async fn call<R>(
        &self,
        name: &'static str,
        invoke: impl AsyncFnOnce(&mut Store<CallState>) -> GuestResult<R>,
    ) -> Result<R, CallError> {
        self.call_until(name, Instant::now() + self.config.limits.deadline, invoke)
            .await
    }

    async fn call_until<R>(
        &self,
        name: &'static str,
        deadline: Instant,
        invoke: impl AsyncFnOnce(&mut Store<CallState>) -> GuestResult<R>,
    ) -> Result<R, CallError> {
        let mut store = self.env.new_store_until(deadline);
        GuestCall::new(&mut store, name).run(invoke).await
    }

    fn contract(&self, call: &'static str, detail: String) -> CallError {
        CallError::Contract {
            plugin: self.env.label(),
            call,
            detail,
        }
    }

    /// Checks config and credentials.
    pub async fn check(&self) -> Result<(), CallError> {
        self.call("check", async |store| {
            self.pre().check(store, &self.config_json).await
        })
        .await
    }

    /// Lists the connection's streams.
    pub async fn discover(&self) -> Result<Vec<StreamSchema>, CallError> {
        self.call("discover", async |store| {
            self.pre().discover(store, &self.config_json).await
        })
        .await
    }

    /// Reads the page after `checkpoint`, checked against the contract.
    pub async fn read(
        &self,
        stream: &str,
        checkpoint: Option<Checkpoint>,
    ) -> Result<Page, CallError> {
        let deadline = Instant::now() + self.config.limits.deadline;
        self.read_until(stream, checkpoint, deadline).await
    }

    /// [`Self::read`], ending by `deadline` (a retry within the first
    /// attempt's `call_timeout`).
    pub async fn read_until(
        &self,
        stream: &str,
        checkpoint: Option<Checkpoint>,
        deadline: Instant,
    ) -> Result<Page, CallError> {
        let max = self.config.page_size;
        let started_from = checkpoint.clone();
        let page = self
            .call_until("read", deadline, async |store| {
                self.pre()
                    .read(store, &self.config_json, stream, checkpoint, max)
                    .await
            })
            .await?;
        if page.records.len() > max as usize {
            return Err(self.contract(
                "read",
                format!(
                    "returned {} records where at most {max} were asked for",
                    page.records.len()
                ),
            ));
        }
        let bytes: usize = page
            .records
            .iter()
            .map(|r| r.data.len() + r.key.len())
            .sum();
        if bytes > self.config.max_page_bytes {
            return Err(self.contract(
                "read",
                format!(
                    "returned a page of {bytes} bytes, over the connection's limit of {} (`max_page_mb`); ask the partner for fewer records per page (`page_size`)",
                    self.config.max_page_bytes
                ),
            ));
        }
        if let Some(bad) = page
            .records
            .iter()
            .find(|r| !is_object_text(&r.data) || r.key.is_empty())
        {
            return Err(self.contract(
                "read",
                format!(
                    "record `{}` has an empty key or data that is not a JSON object",
                    bad.key
                ),
            ));
        }
        if serde_json::from_str::<IgnoredAny>(&page.checkpoint.state).is_err() {
            return Err(self.contract("read", "the checkpoint state is not valid JSON".into()));
        }
        // Reading on from the same checkpoint would return this page again,
        // forever (a partner's `next` link pointing to itself, say).
        if page.has_more && started_from.as_ref() == Some(&page.checkpoint) {
            return Err(self.contract(
                "read",
                format!(
                    "returned a page of stream `{stream}` whose checkpoint is the one it started from, with more records said to be ready: reading on would fetch that page forever"
                ),
            ));
        }
        Ok(page)
    }

    /// Fetches current objects by key.
    pub async fn fetch(&self, stream: &str, keys: Vec<String>) -> Result<Vec<Record>, CallError> {
        self.call("fetch", async |store| {
            self.pre()
                .fetch(store, &self.config_json, stream, keys)
                .await
        })
        .await
    }

    /// Writes objects; one result per request, in order.
    pub async fn write(
        &self,
        stream: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<Result<Written, crate::contract::ConnectorError>>, CallError> {
        let expected = requests.len();
        let results = self
            .call("write", async |store| {
                self.pre()
                    .write(store, &self.config_json, stream, requests)
                    .await
            })
            .await?;
        if results.len() != expected {
            return Err(self.contract(
                "write",
                format!("returned {} results for {expected} requests", results.len()),
            ));
        }
        Ok(results)
    }

    /// Finds an earlier write by its idempotency key.
    pub async fn lookup(
        &self,
        stream: &str,
        idempotency_key: &str,
    ) -> Result<Option<Written>, CallError> {
        self.call("lookup", async |store| {
            self.pre()
                .lookup(store, &self.config_json, stream, idempotency_key)
                .await
        })
        .await
    }

    /// Converts a checkpoint of an older format.
    pub async fn migrate_checkpoint(
        &self,
        stream: &str,
        old: Checkpoint,
    ) -> Result<Checkpoint, CallError> {
        self.call("migrate-checkpoint", async |store| {
            self.pre().migrate_checkpoint(store, stream, old).await
        })
        .await
    }

    /// Classifies a received webhook request.
    pub async fn verify_webhook(
        &self,
        request: &IncomingRequest,
    ) -> Result<WebhookVerdict, CallError> {
        self.call("verify", async |store| {
            self.pre()
                .verify_webhook(store, &self.config_json, request)
                .await
        })
        .await
    }

    /// Turns a stored delivery into change notices.
    pub async fn handle_webhook(
        &self,
        request: &IncomingRequest,
    ) -> Result<Vec<ChangeNotice>, CallError> {
        self.call("handle", async |store| {
            self.pre()
                .handle_webhook(store, &self.config_json, request)
                .await
        })
        .await
    }
}

/// A cheap check that text is a JSON object: full validation would mean
/// parsing every record again on the hot path.
fn is_object_text(data: &str) -> bool {
    let trimmed = data.trim_ascii();
    trimmed.starts_with('{') && trimmed.ends_with('}')
}
