//! The only module that knows WIT versions. It links Weir's imports, finds
//! which version of `weir:connector` a component speaks, and converts between
//! the generated types of each version and the host's own types.

mod v0_1;

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use crate::connector::{
    ChangeNotice, Checkpoint, ConnectorError, ConnectorSpec, IncomingRequest, Page, Record,
    StreamSchema, WebhookVerdict, WriteRequest, Written,
};
use crate::runtime::CallState;

/// The WIT package versions this host speaks.
pub const SUPPORTED_VERSIONS: &[&str] = &[v0_1::VERSION];

/// The `weir-sdk` release line that builds components for the newest
/// supported version.
pub const SDK_LINE: &str = "0.1";

/// Links every supported version's imports.
pub fn add_to_linker(linker: &mut Linker<CallState>) -> anyhow::Result<()> {
    v0_1::add_to_linker(linker)
}

/// What a component turned out to be.
pub enum Exports {
    /// A connector, ready to instantiate.
    Connector(ConnectorPre),
    /// A transform plugin, ready to instantiate.
    Transformer(TransformerPre),
}

/// Why a component cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AbiMismatch {
    /// It exports Weir interfaces of another version.
    #[error("it was built for `weir:connector@{found}`, but this host supports {}", SUPPORTED_VERSIONS.iter().map(|v| format!("`@{v}`")).collect::<Vec<_>>().join(", "))]
    UnsupportedVersion {
        /// The version found.
        found: String,
    },
    /// It exports no Weir interfaces at all.
    #[error("it does not export Weir's interfaces; its exports are: {}", if exports.is_empty() { "none".to_string() } else { exports.join(", ") })]
    WrongWorld {
        /// What it does export.
        exports: Vec<String>,
    },
    /// It imports something the host does not provide.
    #[error("{0}")]
    Imports(String),
}

impl Exports {
    /// Identifies the world and version a component implements and checks
    /// that the host can satisfy its imports.
    pub fn identify(
        engine: &Engine,
        linker: &Linker<CallState>,
        component: &Component,
    ) -> Result<(Self, &'static str), AbiMismatch> {
        let exports: Vec<String> = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let weir_version = |interface: &str| {
            exports.iter().find_map(|name| {
                name.strip_prefix(&format!("weir:connector/{interface}@"))
                    .map(str::to_string)
            })
        };
        let instance_pre = |component: &Component| {
            linker
                .instantiate_pre(component)
                .map_err(|e| AbiMismatch::Imports(format!("{e:#}")))
        };
        match (weir_version("setup"), weir_version("transform")) {
            (Some(v), _) if v == v0_1::VERSION => Ok((
                Self::Connector(ConnectorPre::V0_1(v0_1::ConnectorPre::new(instance_pre(
                    component,
                )?)?)),
                v0_1::VERSION,
            )),
            (None, Some(v)) if v == v0_1::VERSION => Ok((
                Self::Transformer(TransformerPre::V0_1(v0_1::TransformerPre::new(
                    instance_pre(component)?,
                )?)),
                v0_1::VERSION,
            )),
            (Some(found), _) | (None, Some(found)) => {
                Err(AbiMismatch::UnsupportedVersion { found })
            }
            (None, None) => Err(AbiMismatch::WrongWorld { exports }),
        }
    }
}

/// A connector component ready to instantiate, per WIT version.
pub enum ConnectorPre {
    /// `weir:connector@0.1.0`.
    V0_1(v0_1::ConnectorPre),
}

/// A transform component ready to instantiate, per WIT version.
pub enum TransformerPre {
    /// `weir:connector@0.1.0`.
    V0_1(v0_1::TransformerPre),
}

/// What an export call returns: a trap (outer) or the guest's result (inner).
pub type GuestResult<T> = wasmtime::Result<Result<T, ConnectorError>>;

// Each method instantiates a fresh instance in `store` and calls one export.
impl ConnectorPre {
    /// `setup.spec`.
    pub async fn spec(&self, store: &mut Store<CallState>) -> wasmtime::Result<ConnectorSpec> {
        match self {
            Self::V0_1(pre) => pre.spec(store).await,
        }
    }

    /// `setup.check`.
    pub async fn check(&self, store: &mut Store<CallState>, config: &String) -> GuestResult<()> {
        match self {
            Self::V0_1(pre) => pre.check(store, config).await,
        }
    }

    /// `setup.discover`.
    pub async fn discover(
        &self,
        store: &mut Store<CallState>,
        config: &String,
    ) -> GuestResult<Vec<StreamSchema>> {
        match self {
            Self::V0_1(pre) => pre.discover(store, config).await,
        }
    }

    /// `setup.migrate-checkpoint`.
    pub async fn migrate_checkpoint(
        &self,
        store: &mut Store<CallState>,
        stream: &str,
        old: Checkpoint,
    ) -> GuestResult<Checkpoint> {
        match self {
            Self::V0_1(pre) => pre.migrate_checkpoint(store, stream, old).await,
        }
    }

    /// `source.read`.
    pub async fn read(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        stream: &str,
        checkpoint: Option<Checkpoint>,
        max_records: u32,
    ) -> GuestResult<Page> {
        match self {
            Self::V0_1(pre) => {
                pre.read(store, config, stream, checkpoint, max_records)
                    .await
            }
        }
    }

    /// `source.fetch`.
    pub async fn fetch(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        stream: &str,
        keys: Vec<String>,
    ) -> GuestResult<Vec<Record>> {
        match self {
            Self::V0_1(pre) => pre.fetch(store, config, stream, keys).await,
        }
    }

    /// `destination.write`.
    pub async fn write(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        stream: &str,
        requests: Vec<WriteRequest>,
    ) -> GuestResult<Vec<Result<Written, ConnectorError>>> {
        match self {
            Self::V0_1(pre) => pre.write(store, config, stream, requests).await,
        }
    }

    /// `destination.lookup`.
    pub async fn lookup(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        stream: &str,
        idempotency_key: &str,
    ) -> GuestResult<Option<Written>> {
        match self {
            Self::V0_1(pre) => pre.lookup(store, config, stream, idempotency_key).await,
        }
    }

    /// `webhooks.verify`.
    pub async fn verify_webhook(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        request: &IncomingRequest,
    ) -> GuestResult<WebhookVerdict> {
        match self {
            Self::V0_1(pre) => pre.verify_webhook(store, config, request).await,
        }
    }

    /// `webhooks.handle`.
    pub async fn handle_webhook(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        request: &IncomingRequest,
    ) -> GuestResult<Vec<ChangeNotice>> {
        match self {
            Self::V0_1(pre) => pre.handle_webhook(store, config, request).await,
        }
    }
}

impl TransformerPre {
    /// `transform.transform`.
    pub async fn transform(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        records: Vec<String>,
    ) -> GuestResult<Vec<Result<Option<String>, ConnectorError>>> {
        match self {
            Self::V0_1(pre) => pre.transform(store, config, records).await,
        }
    }
}
