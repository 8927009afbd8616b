use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Plugin;
use super::approval::{Serving, Version, judge};
use super::load::{LoadFailure, PluginError, load_plugin, load_plugin_bytes};
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::runtime::Runtime;
use crate::store::{ApprovedVersion, PluginLedger, PluginRollback, StoreError};
use crate::unix_time::now_ms;

/// Approved versions kept per connector, the serving one included, for
/// rollbacks and tenant pins (the store keeps as many).
pub const KEPT_VERSIONS: usize = 4;

/// A new version that asks for more than the latest approved one, waiting
/// for an operator's approval; an approved version serves meanwhile.
#[derive(Clone)]
pub struct PendingPlugin {
    /// The new version.
    pub plugin: Arc<Plugin>,
    /// What it declares that the latest approved version does not.
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
/// Which version of a connector serves follows `approval::judge`, over the
/// approved versions and rollbacks the store keeps.
///
/// A registry is a value: an update returns a new one, so runs in flight
/// keep the registry (and plugin versions) they started with.
#[derive(Clone, Default)]
pub struct PluginRegistry {
    active: BTreeMap<String, Arc<Plugin>>,
    pending: BTreeMap<String, PendingPlugin>,
    /// Approved versions, the latest approved first.
    kept: BTreeMap<String, Vec<Arc<Plugin>>>,
    rollbacks: BTreeMap<String, PluginRollback>,
    failures: Vec<Arc<LoadFailure>>,
}

impl PluginRegistry {
    /// Loads every `*.wasm` file of `dir`, in file-name order, each judged
    /// against the decisions `ledger` keeps; first-seen and newly approved
    /// versions are recorded there.
    pub async fn load_dir(
        runtime: &Arc<Runtime>,
        dir: &Path,
        ledger: &Arc<dyn PluginLedger>,
    ) -> anyhow::Result<Self> {
        #[expect(
            clippy::disallowed_methods,
            reason = "its error names the file already, in the words users see"
        )]
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|error| anyhow::Error::new(unreadable_dir(dir, &error)))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| is_plugin_file(path))
            .collect();
        files.sort();
        let mut registry = Self::default();
        for file in files {
            registry = match load_plugin(runtime, &file).await {
                Ok(plugin) => {
                    let plugin = Arc::new(plugin);
                    let (next, _) = registry
                        .with_decisions(runtime, ledger, &plugin)
                        .await
                        .map_err(|e| anyhow::Error::new(e.diagnostic()))?
                        .with_loaded(plugin.clone());
                    next.record(ledger.clone(), &plugin.name)
                        .await
                        .map_err(|e| anyhow::Error::new(e.diagnostic()))?;
                    next
                }
                Err(error) => registry.with_failed(file, error),
            };
        }
        Ok(registry)
    }

    /// With the store's decisions on the connector `loaded` (just loaded
    /// from its file) provides: its approved versions, loaded from their
    /// kept wasm as if from that file (`loaded` itself when it is one of
    /// them), and its rollback. Unless this registry knows them already.
    pub async fn with_decisions(
        &self,
        runtime: &Arc<Runtime>,
        ledger: &Arc<dyn PluginLedger>,
        loaded: &Arc<Plugin>,
    ) -> Result<Self, StoreError> {
        let (name, file) = (loaded.name.as_str(), loaded.file.as_path());
        if self.kept.contains_key(name) {
            return Ok(self.clone());
        }
        let (approved, rollback) = blocking(ledger, {
            let name = name.to_string();
            move |ledger| Ok((ledger.approved_versions(&name)?, ledger.rollback(&name)?))
        })
        .await?;
        let mut kept = Vec::new();
        for version in approved {
            if version.content_hash == loaded.content_hash {
                kept.push(loaded.clone());
                continue;
            }
            let hash = version.content_hash.clone();
            let Some(wasm) = blocking(ledger, move |ledger| ledger.approved_wasm(&hash)).await?
            else {
                continue;
            };
            match load_plugin_bytes(runtime, file, wasm.into()).await {
                Ok(plugin) => kept.push(Arc::new(plugin)),
                // A version this host can no longer run (say, of a WIT line
                // it dropped) cannot be served; the others still can.
                Err(error) => tracing::warn!(
                    "the kept version {} {} of `{}` no longer loads ({error}); it cannot be rolled back to",
                    version.name,
                    version.version,
                    file.display()
                ),
            }
        }
        let mut next = self.clone();
        next.kept.insert(name.to_string(), kept);
        if let Some(rollback) = rollback {
            next.rollbacks.insert(name.to_string(), rollback);
        }
        Ok(next)
    }

    /// Makes `ledger` agree with this registry on connector `name`: its
    /// latest approved version and its rollback.
    pub async fn record(
        &self,
        ledger: Arc<dyn PluginLedger>,
        name: &str,
    ) -> Result<(), StoreError> {
        let latest = self.kept.get(name).and_then(|k| k.first()).cloned();
        let rollback = self.rollbacks.get(name).cloned();
        let name = name.to_string();
        blocking(&ledger, move |ledger| {
            if let Some(latest) = latest {
                let approved = ledger.approved_versions(&name)?;
                if approved.first().map(|v| v.content_hash.as_str())
                    != Some(latest.content_hash.as_str())
                {
                    // Strictly after every earlier approval, however fast.
                    let after = approved.first().map_or(0, |v| v.approved_at_ms + 1);
                    let version = ApprovedVersion {
                        name: name.clone(),
                        version: latest.version.clone(),
                        content_hash: latest.content_hash.clone(),
                        hosts: latest.hosts().to_vec(),
                        approved_at_ms: now_ms().max(after),
                    };
                    ledger.approve_version(&version, &latest.wasm, KEPT_VERSIONS)?;
                }
            }
            if ledger.rollback(&name)? != rollback {
                ledger.set_rollback(&name, rollback.as_ref())?;
            }
            Ok(())
        })
        .await
    }

    /// A serving plugin by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.active.get(name)
    }

    /// A given version of a connector: the serving one or a kept one.
    pub fn version(&self, name: &str, version: &str) -> Option<&Arc<Plugin>> {
        self.active
            .get(name)
            .into_iter()
            .chain(self.kept.get(name).into_iter().flatten())
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

    /// A connector's approved versions, the latest approved first.
    pub fn kept(&self, name: &str) -> &[Arc<Plugin>] {
        self.kept.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether an operator's rollback of the connector is in force.
    pub fn is_rolled_back(&self, name: &str) -> bool {
        self.rollbacks.contains_key(name)
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

    /// The content hash of the version in the plugins directory.
    fn file_version(&self, name: &str) -> Option<&str> {
        self.pending
            .get(name)
            .map(|p| p.plugin.content_hash.as_str())
            .or_else(|| self.rollbacks.get(name).map(|r| r.file_hash.as_str()))
            .or_else(|| self.active.get(name).map(|p| p.content_hash.as_str()))
    }

    /// With `plugin` (loaded from its file) in, judged by
    /// `approval::judge` against the versions approved before.
    pub fn with_loaded(&self, plugin: Arc<Plugin>) -> (Self, Update) {
        let mut next = self.clone();
        next.failures.retain(|f| f.file != plugin.file);
        let name = plugin.name.clone();
        // The file used to provide another connector: that one leaves.
        if let Some(previous) = self.name_of_file(&plugin.file)
            && previous != name
        {
            next.retire(&previous);
        }
        if let Some(current) = next.active.get(&name) {
            if current.file != plugin.file
                && self.name_of_file(&current.file).is_some()
                && current.file.exists()
            {
                let other = current.file.clone();
                next.failures.push(Arc::new(LoadFailure {
                    error: PluginError::Duplicate { name, other },
                    file: plugin.file.clone(),
                }));
                return (next, Update::Failed);
            }
            if self.file_version(&name) == Some(plugin.content_hash.as_str()) {
                return (self.clone(), Update::Unchanged);
            }
        }
        if next
            .rollbacks
            .get(&name)
            .is_some_and(|r| r.file_hash != plugin.content_hash)
        {
            next.rollbacks.remove(&name);
        }
        let kept = next.kept.get(&name).cloned().unwrap_or_default();
        let rollback = next
            .rollbacks
            .get(&name)
            .map(|r| (r.file_hash.as_str(), r.serving.as_str()));
        let judgement = judge(&plugin, &kept, rollback);
        if judgement.approve_file {
            next.keep(plugin.clone());
        }
        let serving = match &judgement.serving {
            Serving::File => plugin.clone(),
            Serving::Kept(hash) => kept
                .iter()
                .find(|p| &p.content_hash == hash)
                .cloned()
                .expect("the judge serves only a kept version"),
        };
        next.active.insert(name.clone(), serving.clone());
        let update = match judgement.waiting {
            Some(new_hosts) => {
                next.pending.insert(
                    name.clone(),
                    PendingPlugin {
                        plugin: plugin.clone(),
                        new_hosts: new_hosts.clone(),
                    },
                );
                Update::Pending {
                    name,
                    version: plugin.version.clone(),
                    new_hosts,
                }
            }
            None => {
                next.pending.remove(&name);
                Update::Activated {
                    name,
                    version: serving.version.clone(),
                }
            }
        };
        (next, update)
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

    /// With the version waiting for approval now serving, or, when none
    /// waits, the plugin file's version again after a rollback. `None` when
    /// there is nothing to approve.
    pub fn approve(&self, name: &str) -> Option<Self> {
        let mut next = self.clone();
        if let Some(pending) = next.pending.remove(name) {
            next.keep(pending.plugin.clone());
            next.active.insert(name.to_string(), pending.plugin);
        } else {
            let rollback = next.rollbacks.get(name)?;
            let file = next
                .kept(name)
                .iter()
                .find(|p| p.content_hash == rollback.file_hash)?
                .clone();
            next.active.insert(name.to_string(), file);
        }
        next.rollbacks.remove(name);
        Some(next)
    }

    /// With the approved version before the serving one serving instead,
    /// until the plugin file changes or `approve` ends the rollback. `None`
    /// when no older version is kept.
    pub fn rollback(&self, name: &str) -> Option<Self> {
        let serving = self.active.get(name)?;
        let kept = self.kept(name);
        let at = kept
            .iter()
            .position(|p| p.content_hash == serving.content_hash)?;
        let older = kept.get(at + 1)?.clone();
        let file_hash = self.file_version(name)?.to_string();
        let mut next = self.clone();
        next.rollbacks.insert(
            name.to_string(),
            PluginRollback {
                file_hash,
                serving: older.content_hash.clone(),
            },
        );
        next.active.insert(name.to_string(), older);
        Some(next)
    }

    /// Approved now: the latest approved version of its connector.
    fn keep(&mut self, plugin: Arc<Plugin>) {
        let kept = self.kept.entry(plugin.name.clone()).or_default();
        kept.retain(|p| p.content_hash != plugin.content_hash);
        kept.insert(0, plugin);
        kept.truncate(KEPT_VERSIONS);
    }

    fn retire(&mut self, name: &str) {
        self.active.remove(name);
        self.pending.remove(name);
    }

    /// Content hashes of every plugin kept, serving or not (the compile
    /// cache keeps their artifacts).
    pub fn live_hashes(&self) -> Vec<String> {
        self.active
            .values()
            .chain(self.pending.values().map(|p| &p.plugin))
            .chain(self.kept.values().flatten())
            .map(|p| p.content_hash.clone())
            .collect()
    }
}

impl Version for Arc<Plugin> {
    fn content_hash(&self) -> &str {
        &self.content_hash
    }
    fn hosts(&self) -> &[String] {
        self.spec().map_or(&[], |s| s.hosts.as_slice())
    }
}

/// Runs a store call on a blocking thread.
async fn blocking<T: Send + 'static>(
    ledger: &Arc<dyn PluginLedger>,
    f: impl FnOnce(&dyn PluginLedger) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let ledger = ledger.clone();
    tokio::task::spawn_blocking(move || f(ledger.as_ref()))
        .await
        .expect("store calls do not panic")
}

/// Plugin files are `*.wasm`; dot-files (temporary copies) are not.
pub fn is_plugin_file(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "wasm")
        && !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
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
