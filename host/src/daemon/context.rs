use std::sync::Arc;

use super::live_plugins::LivePlugins;
use crate::config::Config;
use crate::connection::ConnectionServices;
use crate::flow::FlowRunner;
use crate::plugin::PluginRegistry;
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
    /// Its plugins, replaced on reloads.
    pub live: LivePlugins,
}

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
            live: LivePlugins::new(plugins, runtime.clone()),
            runtime,
            services: ConnectionServices::new(store.clone()),
            runner: FlowRunner::new(store.clone()),
            store,
        })
    }

    /// The plugins new runs use (see [`LivePlugins::current`]).
    pub fn plugins(&self) -> Arc<PluginRegistry> {
        self.live.current()
    }
}
