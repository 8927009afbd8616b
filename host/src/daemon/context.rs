use std::sync::{Arc, RwLock};

use crate::config::Config;
use crate::connection::ConnectionServices;
use crate::flow::FlowRunner;
use crate::plugin::PluginRegistry;
use crate::runtime::Runtime;
use crate::store::SqliteStore;

/// What a running daemon shares between its parts, for its whole life.
pub struct Daemon {
    /// The integration.
    pub config: Arc<Config>,
    /// The wasm runtime.
    pub runtime: Arc<Runtime>,
    /// The store.
    pub store: Arc<SqliteStore>,
    /// Budgets and the egress log.
    pub services: ConnectionServices,
    /// Runs flows.
    pub runner: FlowRunner,
    plugins: RwLock<Arc<PluginRegistry>>,
}

impl Daemon {
    /// Everything a daemon needs, once.
    pub fn new(
        config: Config,
        runtime: Arc<Runtime>,
        plugins: PluginRegistry,
        store: Arc<SqliteStore>,
    ) -> Arc<Self> {
        Arc::new(Self {
            config: Arc::new(config),
            runtime,
            services: ConnectionServices::new(store.clone()),
            runner: FlowRunner::new(store.clone()),
            store,
            plugins: RwLock::new(Arc::new(plugins)),
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

    /// Makes `plugins` the registry of new runs.
    pub fn replace_plugins(&self, plugins: PluginRegistry) {
        *self.plugins.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(plugins);
    }
}
