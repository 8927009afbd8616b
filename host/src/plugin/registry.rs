use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use super::Plugin;
use super::load::{LoadFailure, PluginError, load_plugin};
use crate::runtime::Runtime;

/// The plugins of a directory: those that loaded, by name, and those that
/// did not, with why. One bad file never keeps the others from loading.
#[derive(Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<String, Arc<Plugin>>,
    failures: Vec<LoadFailure>,
}

impl PluginRegistry {
    /// Loads every `*.wasm` file of `dir`, in file-name order.
    pub async fn load_dir(runtime: &Arc<Runtime>, dir: &Path) -> anyhow::Result<Self> {
        let mut files: Vec<_> = fs_err::read_dir(dir)
            .with_context(|| "cannot list the plugins directory (`plugins_dir` in weir.toml)")?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| {
                path.extension().is_some_and(|ext| ext == "wasm")
                    && !path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        let mut registry = Self::default();
        for file in files {
            match load_plugin(runtime, &file).await {
                Ok(plugin) => registry.add(plugin),
                Err(error) => registry.failures.push(LoadFailure { file, error }),
            }
        }
        Ok(registry)
    }

    fn add(&mut self, plugin: Plugin) {
        if let Some(existing) = self.plugins.get(&plugin.name) {
            self.failures.push(LoadFailure {
                file: plugin.file.clone(),
                error: PluginError::Duplicate {
                    name: plugin.name.clone(),
                    other: existing.file.clone(),
                },
            });
            return;
        }
        tracing::debug!(plugin = %plugin.label(), file = %plugin.file.display(), "loaded plugin");
        self.plugins.insert(plugin.name.clone(), Arc::new(plugin));
    }

    /// A loaded plugin by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    /// Loaded plugins, by name.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values()
    }

    /// Files that did not load.
    pub fn failures(&self) -> &[LoadFailure] {
        &self.failures
    }
}
