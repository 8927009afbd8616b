//! Hot reload: the plugins directory is watched; a new, changed or removed
//! `.wasm` is handled once its writer has been quiet for a moment, loaded
//! and compiled off the scheduling path, and swapped in as a new registry.
//! Runs in flight keep the version they started with.
//!
//! Install a plugin by copying it under a temporary name (or a dot-file)
//! and renaming it into place: a rename is atomic, so Weir never sees half a
//! file. A file written in place still works: a half-written file fails to
//! load, the previous version keeps serving, and the file is loaded again
//! when its writer is done.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::{PluginRegistry, Update, is_plugin_file, load_plugin};
use crate::runtime::Runtime;
use crate::store::PluginLedger;

/// How long a file must stay unchanged before it is loaded.
pub const QUIET_PERIOD: Duration = Duration::from_millis(250);

/// What a reload did, for logs, the admin API and measurements.
#[derive(Debug, Clone)]
pub struct ReloadEvent {
    /// The file.
    pub file: PathBuf,
    /// What changed.
    pub update: Update,
    /// The error, when the file failed to load.
    pub error: Option<String>,
    /// From the last change of the file to the new registry in place.
    pub latency: Duration,
}

/// Watches a plugins directory until dropped.
pub struct PluginWatcher {
    _watcher: notify::RecommendedWatcher,
}

impl PluginWatcher {
    /// Starts watching `dir`. `current` gives the registry in force; each
    /// reload is judged against `ledger`'s decisions (and recorded there),
    /// hands the new registry to `install` (which must also make it
    /// current), then reports to `events`.
    pub fn start(
        dir: &Path,
        runtime: Arc<Runtime>,
        ledger: Arc<dyn PluginLedger>,
        current: impl Fn() -> Arc<PluginRegistry> + Send + 'static,
        install: impl Fn(PluginRegistry, &Update) + Send + 'static,
        events: mpsc::UnboundedSender<ReloadEvent>,
    ) -> notify::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event
                    && matches!(
                        event.kind,
                        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
                    )
                {
                    for path in event.paths {
                        let _ = tx.send(path);
                    }
                }
            })?;
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
        tokio::spawn(reload_loop(rx, runtime, ledger, current, install, events));
        Ok(Self { _watcher: watcher })
    }
}

async fn reload_loop(
    mut changes: mpsc::UnboundedReceiver<PathBuf>,
    runtime: Arc<Runtime>,
    ledger: Arc<dyn PluginLedger>,
    current: impl Fn() -> Arc<PluginRegistry>,
    install: impl Fn(PluginRegistry, &Update),
    events: mpsc::UnboundedSender<ReloadEvent>,
) {
    while let Some(first) = changes.recv().await {
        let mut changed = BTreeSet::from([first]);
        let mut last_change = Instant::now();
        // Wait until the writers have been quiet for a moment.
        loop {
            match tokio::time::timeout(QUIET_PERIOD, changes.recv()).await {
                Ok(Some(path)) => {
                    changed.insert(path);
                    last_change = Instant::now();
                }
                Ok(None) => return,
                Err(_quiet) => break,
            }
        }
        for file in changed.into_iter().filter(|p| is_plugin_file(p)) {
            let (registry, update, error) = if file.exists() {
                match load_plugin(&runtime, &file).await {
                    Ok(plugin) => {
                        let (registry, update) =
                            judged(&runtime, &ledger, &current(), plugin).await;
                        (registry, update, None)
                    }
                    Err(error) => {
                        let message = error.to_string();
                        (
                            current().with_failed(file.clone(), error),
                            Update::Failed,
                            Some(message),
                        )
                    }
                }
            } else {
                let (registry, update) = current().with_removed(&file);
                (registry, update, None)
            };
            if update != Update::Unchanged {
                install(registry, &update);
            }
            let event = ReloadEvent {
                file,
                update,
                error,
                latency: last_change.elapsed(),
            };
            log(&event);
            let _ = events.send(event);
        }
    }
}

/// The registry with `plugin` in, judged against the store's decisions,
/// and those decisions brought up to date. Without the store the daemon
/// goes on with what it knows, and says so.
async fn judged(
    runtime: &Arc<Runtime>,
    ledger: &Arc<dyn PluginLedger>,
    current: &PluginRegistry,
    plugin: super::Plugin,
) -> (PluginRegistry, Update) {
    let plugin = Arc::new(plugin);
    let name = plugin.name.clone();
    let known = match current.with_decisions(runtime, ledger, &plugin).await {
        Ok(known) => known,
        Err(error) => {
            tracing::warn!("cannot read the decisions on `{name}`: {error}");
            current.clone()
        }
    };
    let (registry, update) = known.with_loaded(plugin);
    if update != Update::Unchanged
        && let Err(error) = registry.record(ledger.clone(), &name).await
    {
        tracing::warn!(
            "cannot record which version of `{name}` serves: {error}; after a restart the plugin file is judged again"
        );
    }
    (registry, update)
}

fn log(event: &ReloadEvent) {
    let file = event.file.display();
    let ms = event.latency.as_millis();
    match &event.update {
        Update::Activated { name, version } => {
            tracing::info!(
                "plugin `{file}`: {name} {version} now serves new runs ({ms} ms after the last change)"
            )
        }
        Update::Pending {
            name,
            version,
            new_hosts,
        } => tracing::warn!(
            "plugin `{file}`: {name} {version} declares new hosts {new_hosts:?}; the current version keeps serving until an operator approves it (`weir plugins approve {name}`)"
        ),
        Update::Failed => tracing::warn!(
            "plugin `{file}` did not load: {}; the previous version (if any) keeps serving",
            event.error.as_deref().unwrap_or("?")
        ),
        Update::Removed { name: Some(name) } => {
            tracing::warn!(
                "plugin `{file}` was removed: flows using `{name}` pause until it is back"
            )
        }
        Update::Removed { name: None } | Update::Unchanged => {}
    }
}
