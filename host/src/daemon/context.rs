use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};

use crate::config::Config;
use crate::connection::ConnectionServices;
use crate::flow::FlowRunner;
use crate::plugin::{PluginRegistry, ReloadEvent};
use crate::runtime::Runtime;
use crate::store::Store;

/// What a running daemon shares between its parts, for its whole life.
pub struct Daemon {
    /// The integration.
    pub config: Arc<Config>,
    /// The wasm runtime.
    pub runtime: Arc<Runtime>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Budgets and the egress log.
    pub services: ConnectionServices,
    /// Runs flows.
    pub runner: FlowRunner,
    plugins: RwLock<Arc<PluginRegistry>>,
    reloads: Mutex<VecDeque<ReloadEvent>>,
}

/// Reload events kept for the admin API.
const KEPT_RELOADS: usize = 50;

impl Daemon {
    /// Everything a daemon needs, once.
    pub fn new(
        config: Config,
        runtime: Arc<Runtime>,
        plugins: PluginRegistry,
        store: Arc<dyn Store>,
    ) -> Arc<Self> {
        Arc::new(Self {
            config: Arc::new(config),
            runtime,
            services: ConnectionServices::new(store.clone()),
            runner: FlowRunner::new(store.clone()),
            store,
            plugins: RwLock::new(Arc::new(plugins)),
            reloads: Mutex::default(),
        })
    }

    /// The plugins new runs use. A run keeps the registry it started with,
    /// so replacing it never disturbs runs in flight.
    pub fn plugins(&self) -> Arc<PluginRegistry> {
        self.plugins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes `plugins` the registry of new runs, and lets the compile cache
    /// forget plugins that are no longer kept.
    pub fn replace_plugins(&self, plugins: PluginRegistry) {
        let live = plugins.live_hashes();
        *self.plugins.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(plugins);
        let removed = self.runtime.prune_cache(&live);
        if removed > 0 {
            tracing::debug!("pruned {removed} compiled artifact(s) of plugins no longer kept");
        }
    }

    /// Remembers a reload for the admin API.
    pub fn record_reload(&self, event: ReloadEvent) {
        let mut reloads = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        if reloads.len() == KEPT_RELOADS {
            reloads.pop_front();
        }
        reloads.push_back(event);
    }

    /// The latest reloads, oldest first.
    pub fn reloads(&self) -> Vec<ReloadEvent> {
        self.reloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}
