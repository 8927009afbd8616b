//! What commands need, loaded on demand: config, plugins, store.

use std::path::Path;
use std::sync::Arc;

use crate::capability::{SecretValue, Secrets};
use crate::clock::Clock;
use crate::config::{AdminConfig, Config};
use crate::connection::{Connection, ConnectionServices};
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::ids::TenantId;
use crate::plugin::{PendingPlugin, PluginRegistry};
use crate::runtime::{Runtime, RuntimeOptions};
use crate::store::{PluginLedger, Store};
use crate::tenant::{Tenant, TenantChange};

use super::output::fail;

/// Reads `weir.toml`. Of several problems, all but the last are printed
/// here and the last is returned, so that every one is shown.
pub fn config(path: &Path) -> anyhow::Result<Config> {
    Config::load_all(path).map_err(|problems| {
        let mut problems: Vec<Diagnostic> = problems.iter().map(|p| p.diagnostic()).collect();
        let last = problems
            .pop()
            .expect("a configuration that does not load has a problem");
        for problem in &problems {
            super::output::print_problem("error", problem);
        }
        fail(last)
    })
}

/// The runtime and the plugins of the configured directory.
pub struct Plugins {
    pub runtime: Arc<Runtime>,
    pub registry: PluginRegistry,
}

impl Plugins {
    /// Starts the runtime and loads every plugin file, judged against the
    /// decisions `store` keeps (see `plugin::approval`); files that fail,
    /// and versions that wait for approval, are reported as warnings (one
    /// bad file never stops the others).
    pub async fn load(config: &Config, store: &Arc<dyn Store>) -> anyhow::Result<Self> {
        let plugins = Self::load_quietly(config, store).await?;
        for failure in plugins.registry.failures() {
            super::output::print_problem("warning", &failure.diagnostic());
        }
        for pending in plugins.registry.pending() {
            super::output::print_problem("warning", &waiting(pending, &plugins.registry));
        }
        Ok(plugins)
    }

    /// Like `load`, leaving failures and waiting versions to the caller.
    pub async fn load_quietly(config: &Config, store: &Arc<dyn Store>) -> anyhow::Result<Self> {
        let runtime = Runtime::new(RuntimeOptions::new(config.cache_dir.clone()))?;
        let ledger: Arc<dyn PluginLedger> = store.clone();
        let registry = PluginRegistry::load_dir(&runtime, &config.plugins_dir, &ledger).await?;
        Ok(Self { runtime, registry })
    }

    /// Opens a connection by name.
    pub fn connection(
        &self,
        config: &Config,
        name: &str,
        services: &ConnectionServices,
    ) -> anyhow::Result<Arc<Connection>> {
        let connection = config.connection(name).map_err(|e| fail(e.diagnostic()))?;
        Connection::open(&self.runtime, &self.registry, connection, services)
            .map(Arc::new)
            .map_err(fail)
    }
}

/// A version that waits for approval while an approved one serves.
pub fn waiting(pending: &PendingPlugin, registry: &PluginRegistry) -> Diagnostic {
    let plugin = &pending.plugin;
    let serving = registry
        .get(&plugin.name)
        .map_or("no version".to_string(), |p| p.label());
    Diagnostic::new(
        ErrorCode::PluginWaiting,
        format!(
            "plugin `{}` is {}, which declares hosts no approved version does ({}); {serving} serves until an operator approves it",
            plugin.file.display(),
            plugin.label(),
            pending.new_hosts.join(", ")
        ),
    )
    .with_hint(format!(
        "if `{}` should reach them, run `weir plugins approve {}`; otherwise put the approved version's file back",
        plugin.name, plugin.name
    ))
}

/// Opens the store, timed by the system clock.
pub fn store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    store_with_clock(config, Clock::system())
}

/// Opens the store, timed by `clock`.
pub fn store_with_clock(config: &Config, clock: Clock) -> anyhow::Result<Arc<dyn Store>> {
    crate::store::open(&config.store, clock).map_err(|e| fail(e.diagnostic()))
}

/// Applies a change to tenant `id` (spelled `name` in messages) and saves
/// it; returns it as saved.
pub fn edit_tenant(
    config: &Config,
    store: &dyn Store,
    id: &TenantId,
    change: TenantChange,
) -> anyhow::Result<Tenant> {
    let mut change = Some(change);
    store
        .update_tenant(id, &mut |current| {
            let change = change.take().expect("an edit runs once");
            crate::tenant::apply(config, current, id, change)
        })
        .map_err(|e| fail(e.diagnostic()))?
        .map_err(|e| fail(e.diagnostic(id.as_str())))
}

/// The admin API's token, from `[admin] token`: none when the file sets
/// none, or why it cannot be read.
pub fn admin_token(config: &AdminConfig) -> Result<Option<SecretValue>, String> {
    let Some(source) = config.token.as_ref() else {
        return Ok(None);
    };
    let secrets =
        Secrets::resolve([("admin", std::slice::from_ref(source))]).map_err(|(_, why)| why)?;
    Ok(secrets.current("admin").cloned())
}

/// Converts a diagnostic-bearing error into an `anyhow` one.
pub fn diagnostic(d: impl Into<Diagnostic>) -> anyhow::Error {
    fail(d.into())
}

/// A tenant by name, or an error saying how to list them.
pub fn tenant(
    store: &dyn crate::store::TenantStore,
    name: &str,
) -> anyhow::Result<crate::tenant::Tenant> {
    let unknown =
        || fail(crate::tenant::EditError::UnknownTenant(name.to_string()).diagnostic(name));
    let id = crate::ids::TenantId::new(name).map_err(|_| unknown())?;
    store
        .tenant(&id)
        .map_err(|e| fail(e.diagnostic()))?
        .ok_or_else(unknown)
}

/// Cancels `stop` at the first SIGINT or SIGTERM, saying `what` happens
/// now on stderr. A second signal exits at once with 130: every page
/// commits in a transaction, so nothing is lost and the next run reads at
/// most two pages again (the one in flight and the one committing).
pub fn stop_on_signal(stop: tokio_util::sync::CancellationToken, what: &'static str) {
    tokio::spawn(async move {
        signalled().await;
        tracing::info!("{what}");
        eprintln!("weir: {what} (again to stop at once)");
        stop.cancel();
        signalled().await;
        eprintln!("weir: stopped at once; the next run resumes from the last committed page");
        std::process::exit(130);
    });
}

async fn signalled() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM can be handled");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
