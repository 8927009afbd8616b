//! Plugin files: loading, validating and keeping them by connector name.

mod approval;
mod decision;
mod load;
mod registry;
mod watcher;

pub use decision::{Decision, Refused, decide};
pub use load::{LoadFailure, PluginError};
pub use load::{load_plugin, load_plugin_bytes};
pub use registry::{KEPT_VERSIONS, PendingPlugin, PluginRegistry, Update, is_plugin_file};
pub use watcher::{PluginWatcher, ReloadEvent};

use std::path::PathBuf;
use std::sync::Arc;

use crate::abi::{ConnectorInstance, TransformInstance};
use crate::contract::ConnectorSpec;

/// A loaded plugin file.
pub struct Plugin {
    /// The connector's name (for transforms: the file name in kebab-case).
    pub name: String,
    /// The plugin's own version (`-` for transforms, which have no spec).
    pub version: String,
    /// The file it was loaded from.
    pub file: PathBuf,
    /// SHA-256 of the file, hex.
    pub content_hash: String,
    /// Size of the file in bytes.
    pub size: u64,
    /// The file's bytes, kept so that an approved version can be kept in
    /// the store (see `approval`) whatever becomes of the file.
    pub wasm: Arc<[u8]>,
    /// The `weir:connector` version it was built for, e.g. `0.1.0` (the
    /// host speaks every version of a supported line).
    pub wit_version: String,
    /// What it is.
    pub kind: PluginKind,
}

/// Connector or transform.
pub enum PluginKind {
    /// A connector and its spec.
    Connector {
        /// What `spec()` returned.
        spec: Box<ConnectorSpec>,
        /// Ready to instantiate.
        pre: Box<dyn ConnectorInstance>,
    },
    /// A transform.
    Transformer {
        /// Ready to instantiate.
        pre: Box<dyn TransformInstance>,
    },
}

impl Plugin {
    /// `acme-crm 1.2.0`.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// The connector spec, if this is a connector.
    pub fn spec(&self) -> Option<&ConnectorSpec> {
        match &self.kind {
            PluginKind::Connector { spec, .. } => Some(spec),
            PluginKind::Transformer { .. } => None,
        }
    }

    /// `connector` or `transform`.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            PluginKind::Connector { .. } => "connector",
            PluginKind::Transformer { .. } => "transform",
        }
    }
}
