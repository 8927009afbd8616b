use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Plugin;
use super::load::{LoadFailure, PluginError, load_plugin};
use crate::diagnostic::{Diagnostic, ErrorCode};
use crate::runtime::Runtime;

/// Older versions kept per connector, for rollbacks and tenant pins.
const KEPT_VERSIONS: usize = 3;

/// A new version that asks for more than the one serving, waiting for an
/// operator's approval; the serving version goes on meanwhile.
#[derive(Clone)]
pub struct PendingPlugin {
    /// The new version.
    pub plugin: Arc<Plugin>,
    /// What it declares that the serving version does not.
    pub new_hosts: Vec<String>,
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// A new connector, or a new version now serving.
    Activated { name: String, version: String },
    /// A new version waiting for approval.
    Pending {
        name: String,
        version: String,
        new_hosts: Vec<String>,
    },
    /// The same file again (same content): nothing changed.
    Unchanged,
    /// The file failed to load; what served before still serves.
    Failed,
    /// The file was removed; its connector no longer serves.
    Removed { name: Option<String> },
}

/// The plugins of a directory: those that loaded, by name, and those that
/// did not, with why. One bad file never keeps the others from loading.
///
/// A registry is a value: an update returns a new one, so runs in flight
/// keep the registry (and plugin versions) they started with.
#[derive(Clone, Default)]
pub struct PluginRegistry {
    active: BTreeMap<String, Arc<Plugin>>,
    pending: BTreeMap<String, PendingPlugin>,
    history: BTreeMap<String, Vec<Arc<Plugin>>>,
    failures: Vec<Arc<LoadFailure>>,
}

impl PluginRegistry {
    /// Loads every `*.wasm` file of `dir`, in file-name order.
    pub async fn load_dir(runtime: &Arc<Runtime>, dir: &Path) -> anyhow::Result<Self> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|error| anyhow::Error::new(unreadable_dir(dir, &error)))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| is_plugin_file(path))
            .collect();
        files.sort();
        let mut registry = Self::default();
        for file in files {
            registry = match load_plugin(runtime, &file).await {
                Ok(plugin) => registry.with_loaded(plugin, |_| true).0,
                Err(error) => registry.with_failed(file, error),
            };
        }
        Ok(registry)
    }

    /// A serving plugin by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.active.get(name)
    }

    /// A given version of a connector: the serving one or a kept older one.
    pub fn version(&self, name: &str, version: &str) -> Option<&Arc<Plugin>> {
        self.active
            .get(name)
            .into_iter()
            .chain(self.history.get(name).into_iter().flatten())
            .find(|p| p.version == version)
    }

    /// Serving plugins, by name.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.active.values()
    }

    /// Versions waiting for approval, by name.
    pub fn pending(&self) -> impl Iterator<Item = &PendingPlugin> {
        self.pending.values()
    }

    /// Files that did not load.
    pub fn failures(&self) -> &[Arc<LoadFailure>] {
        &self.failures
    }

    /// The connector a file provides, if it loaded.
    fn name_of_file(&self, file: &Path) -> Option<String> {
        self.active
            .values()
            .chain(self.pending.values().map(|p| &p.plugin))
            .find(|p| p.file == file)
            .map(|p| p.name.clone())
    }

    /// With `plugin` (loaded from its file) in. A new version serves at once
    /// unless it declares hosts the serving version does not and `approved`
    /// says no: then it waits for approval.
    pub fn with_loaded(
        &self,
        plugin: Plugin,
        approved: impl Fn(&Plugin) -> bool,
    ) -> (Self, Update) {
        let mut next = self.clone();
        next.failures.retain(|f| f.file != plugin.file);
        let name = plugin.name.clone();
        let version = plugin.version.clone();
        let current = next.active.get(&name).cloned();
        // The file used to provide another connector: that one leaves.
        if let Some(previous) = self.name_of_file(&plugin.file)
            && previous != name
        {
            next.retire(&previous);
        }
        let Some(current) = current else {
            next.active.insert(name.clone(), Arc::new(plugin));
            return (next, Update::Activated { name, version });
        };
        if current.file != plugin.file
            && self.name_of_file(&current.file).is_some()
            && current.file.exists()
        {
            next.failures.push(Arc::new(LoadFailure {
                error: PluginError::Duplicate {
                    name: name.clone(),
                    other: current.file.clone(),
                },
                file: plugin.file,
            }));
            return (next, Update::Failed);
        }
        if current.content_hash == plugin.content_hash {
            return (self.clone(), Update::Unchanged);
        }
        let new_hosts = new_hosts(&current, &plugin);
        let plugin = Arc::new(plugin);
        if !new_hosts.is_empty() && !approved(&plugin) {
            next.pending.insert(
                name.clone(),
                PendingPlugin {
                    plugin,
                    new_hosts: new_hosts.clone(),
                },
            );
            return (
                next,
                Update::Pending {
                    name,
                    version,
                    new_hosts,
                },
            );
        }
        next.pending.remove(&name);
        next.promote(plugin);
        (next, Update::Activated { name, version })
    }

    /// With a file that failed: what it provided before keeps serving.
    pub fn with_failed(&self, file: PathBuf, error: PluginError) -> Self {
        let mut next = self.clone();
        next.failures.retain(|f| f.file != file);
        next.failures.push(Arc::new(LoadFailure { file, error }));
        next
    }

    /// Without a removed file's connector.
    pub fn with_removed(&self, file: &Path) -> (Self, Update) {
        let mut next = self.clone();
        next.failures.retain(|f| f.file != file);
        let name = self.name_of_file(file);
        if let Some(name) = &name {
            next.retire(name);
        }
        (next, Update::Removed { name })
    }

    /// With the version waiting for approval now serving.
    pub fn approve(&self, name: &str) -> Option<Self> {
        let mut next = self.clone();
        let pending = next.pending.remove(name)?;
        next.promote(pending.plugin);
        Some(next)
    }

    /// With the previous good version serving again; the current one is
    /// kept, so it can be rolled forward by a reload.
    pub fn rollback(&self, name: &str) -> Option<Self> {
        let mut next = self.clone();
        let history = next.history.get_mut(name)?;
        if history.is_empty() {
            return None;
        }
        let previous = history.remove(0);
        let current = next.active.insert(name.to_string(), previous)?;
        history.insert(0, current);
        Some(next)
    }

    fn promote(&mut self, plugin: Arc<Plugin>) {
        if let Some(old) = self.active.insert(plugin.name.clone(), plugin.clone()) {
            let kept = self.history.entry(plugin.name.clone()).or_default();
            kept.retain(|p| {
                p.content_hash != old.content_hash && p.content_hash != plugin.content_hash
            });
            kept.insert(0, old);
            kept.truncate(KEPT_VERSIONS);
        }
    }

    fn retire(&mut self, name: &str) {
        if let Some(old) = self.active.remove(name) {
            let kept = self.history.entry(name.to_string()).or_default();
            kept.insert(0, old);
            kept.truncate(KEPT_VERSIONS);
        }
        self.pending.remove(name);
    }

    /// Content hashes of every plugin kept, serving or not (the compile
    /// cache keeps their artifacts).
    pub fn live_hashes(&self) -> Vec<String> {
        self.active
            .values()
            .chain(self.pending.values().map(|p| &p.plugin))
            .chain(self.history.values().flatten())
            .map(|p| p.content_hash.clone())
            .collect()
    }
}

/// Plugin files are `*.wasm`; dot-files (temporary copies) are not.
pub fn is_plugin_file(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "wasm")
        && !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Hosts `new` declares that `current` does not.
fn new_hosts(current: &Plugin, new: &Plugin) -> Vec<String> {
    let (Some(current), Some(new)) = (current.spec(), new.spec()) else {
        return Vec::new();
    };
    new.hosts
        .iter()
        .filter(|h| !current.hosts.contains(h))
        .cloned()
        .collect()
}

/// The plugins directory cannot be listed: most often it does not exist
/// yet, on a first run.
fn unreadable_dir(dir: &Path, error: &std::io::Error) -> Diagnostic {
    let message = format!(
        "cannot read the plugins directory `{}`: {error}",
        dir.display()
    );
    let hint = if error.kind() == std::io::ErrorKind::NotFound {
        format!(
            "create it (`mkdir -p {}`) and copy connectors' `.wasm` files into it, or point `plugins_dir` in weir.toml at the directory that holds them",
            dir.display()
        )
    } else {
        "let the user that runs `weir` list it, or point `plugins_dir` in weir.toml at another directory".into()
    };
    Diagnostic::new(ErrorCode::PluginUnreadable, message).with_hint(hint)
}
