//! The plugins of a running daemon: the registry new runs take, replaced
//! on every reload, and the latest reloads for the admin API.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};

use crate::plugin::{PluginRegistry, ReloadEvent};
use crate::runtime::Runtime;

/// Reload events kept for the admin API.
const KEPT_RELOADS: usize = 50;

/// What changes while the daemon runs: its plugins.
pub struct LivePlugins {
    current: RwLock<Arc<PluginRegistry>>,
    reloads: Mutex<VecDeque<ReloadEvent>>,
    /// Whose compile cache forgets plugins no longer kept.
    runtime: Arc<Runtime>,
}

impl LivePlugins {
    /// `plugins`, compiled by `runtime`.
    pub fn new(plugins: PluginRegistry, runtime: Arc<Runtime>) -> Self {
        Self {
            current: RwLock::new(Arc::new(plugins)),
            reloads: Mutex::default(),
            runtime,
        }
    }

    /// The plugins new runs use. A run keeps the registry it started with,
    /// so replacing it never disturbs runs in flight.
    pub fn current(&self) -> Arc<PluginRegistry> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes `plugins` the registry of new runs, and lets the compile cache
    /// forget plugins that are no longer kept.
    pub fn replace(&self, plugins: PluginRegistry) {
        let live = plugins.live_hashes();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(plugins);
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
