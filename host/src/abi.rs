//! The only module that knows WIT versions. It links Weir's imports, finds
//! which version of `weir:connector` a component speaks, and converts between
//! the generated types of each version and the host's own types.

mod v0_1;

use semver::Version;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use crate::call::CallState;
use crate::contract::{
    ChangeNotice, Checkpoint, ConnectorError, ConnectorSpec, IncomingRequest, Page, Record,
    StreamSchema, WebhookVerdict, WriteRequest, Written,
};

/// The release lines of `weir:connector` this host speaks, each as the
/// newest version of the line it was built with. Every earlier version of a
/// line loads too: a compatible release only adds (see the versioning policy
/// in `wit/types.wit`), and wasmtime matches `@0.1.z` names by semver both
/// in the linker and in export lookups.
const LINES: &[&str] = &[v0_1::VERSION];

/// The `weir-sdk` release line that builds components for the newest
/// supported version.
pub const SDK_LINE: &str = "0.1";

/// The versions this host loads, for messages: `` `weir:connector@0.1.0` to `@0.1.1` ``.
pub fn supported_versions() -> String {
    LINES
        .iter()
        .map(|newest| {
            let newest = Version::parse(newest).expect("host versions are semver");
            let first = Version::new(newest.major, newest.minor, 0);
            if first == newest {
                format!("`weir:connector@{newest}`")
            } else {
                format!("`weir:connector@{first}` to `@{newest}`")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Links every supported version's imports.
pub fn add_to_linker(linker: &mut Linker<CallState>) -> anyhow::Result<()> {
    v0_1::add_to_linker(linker)
}

/// What a component turned out to be.
pub enum Exports {
    /// A connector, ready to instantiate.
    Connector(Box<dyn ConnectorInstance>),
    /// A transform plugin, ready to instantiate.
    Transformer(Box<dyn TransformInstance>),
}

/// Why a component cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AbiMismatch {
    /// It exports Weir interfaces of a version this host does not speak.
    #[error(
        "was built for `weir:connector@{found}`, but this host supports {}{}",
        supported_versions(),
        missing.as_ref().map(|m| format!(" (it uses what this host lacks: {m})")).unwrap_or_default()
    )]
    UnsupportedVersion {
        /// The version the component was built for.
        found: String,
        /// For a later release of a supported line: the import it uses that
        /// this host does not provide.
        missing: Option<String>,
    },
    /// It exports no Weir interfaces at all.
    #[error("does not export Weir's interfaces; its exports are: {}", if exports.is_empty() { "none".to_string() } else { exports.join(", ") })]
    WrongWorld {
        /// What it does export.
        exports: Vec<String>,
    },
    /// It imports something the host does not provide.
    #[error("{0}")]
    Imports(String),
}

/// Wasmtime's link error, led by the import it names: "component imports
/// instance `other:clock/now@1.0.0`, but a matching implementation was not
/// found in the linker: ..." becomes "imports `other:clock/now@1.0.0`,
/// which Weir does not provide (...)".
fn missing_import(link_error: &str) -> String {
    let named = link_error
        .split_once("imports instance `")
        .or_else(|| link_error.split_once("imports `"))
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, _)| name);
    match named {
        Some(name) => format!("imports `{name}`, which Weir does not provide ({link_error})"),
        None => link_error.to_string(),
    }
}

impl AbiMismatch {
    /// What to do about a version mismatch, for the operator.
    pub fn hint(&self) -> String {
        let rebuild = format!("rebuild the connector with weir-sdk {SDK_LINE}.x");
        let Self::UnsupportedVersion { found, .. } = self else {
            return rebuild;
        };
        let newer = Version::parse(found).is_ok_and(|found| {
            LINES
                .iter()
                .all(|newest| Version::parse(newest).is_ok_and(|newest| found > newest))
        });
        if newer {
            format!(
                "upgrade Weir to a release that supports `weir:connector@{found}`, or {rebuild}"
            )
        } else {
            rebuild
        }
    }
}

/// Whether two versions belong to one release line, the way wasmtime
/// matches semver names: `1.x.y` by major, `0.x.y` by minor, `0.0.x` and
/// pre-releases only by themselves.
fn same_line(a: &Version, b: &Version) -> bool {
    if !a.pre.is_empty() || !b.pre.is_empty() {
        return a == b;
    }
    match (a.major, a.minor) {
        (0, 0) => a == b,
        (0, minor) => b.major == 0 && b.minor == minor,
        (major, _) => b.major == major,
    }
}

impl Exports {
    /// Identifies the world and the version a component was built for (any
    /// version of a supported line), and checks that the host can satisfy
    /// its imports. Returns the component's own version, e.g. `0.1.0`.
    pub fn identify(
        engine: &Engine,
        linker: &Linker<CallState>,
        component: &Component,
    ) -> Result<(Self, String), AbiMismatch> {
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
        let (connector, found) = match (weir_version("setup"), weir_version("transform")) {
            (Some(found), _) => (true, found),
            (None, Some(found)) => (false, found),
            (None, None) => return Err(AbiMismatch::WrongWorld { exports }),
        };
        let unsupported = |missing| AbiMismatch::UnsupportedVersion {
            found: found.clone(),
            missing,
        };
        let version = Version::parse(&found).map_err(|_| unsupported(None))?;
        let newest = LINES
            .iter()
            .map(|newest| Version::parse(newest).expect("host versions are semver"))
            .find(|newest| same_line(&version, newest))
            .ok_or_else(|| unsupported(None))?;
        let pre = linker.instantiate_pre(component).map_err(|e| {
            // A later release of the line may use an import this host
            // predates: that is the version's fault, not the connector's.
            if version > newest {
                unsupported(Some(format!("{e:#}")))
            } else {
                AbiMismatch::Imports(missing_import(&format!("{e:#}")))
            }
        })?;
        // One line today; the next one gets its own arm here.
        let exports = if connector {
            Self::Connector(Box::new(v0_1::ConnectorPre::new(pre)?))
        } else {
            Self::Transformer(Box::new(v0_1::TransformerPre::new(pre)?))
        };
        Ok((exports, version.to_string()))
    }
}

/// What an export call returns: a trap (outer) or the guest's result (inner).
pub type GuestResult<T> = wasmtime::Result<Result<T, ConnectorError>>;

/// A connector component ready to instantiate, whatever WIT line it
/// speaks: each call instantiates it afresh in `store` and calls one
/// export, in the host's own types. A new export is one method here and
/// one implementation per line; an older line answers it as that line
/// would, as an adapter to the newest.
#[async_trait::async_trait]
#[allow(
    clippy::ptr_arg,
    reason = "the generated bindings take WIT's `config` alias as a `&String`"
)]
pub trait ConnectorInstance: Send + Sync {
    /// `setup.spec`.
    async fn spec(&self, store: &mut Store<CallState>) -> wasmtime::Result<ConnectorSpec>;

    /// `setup.check`.
    async fn check(&self, store: &mut Store<CallState>, config: &String) -> GuestResult<()>;

    /// `setup.discover`.
    async fn discover(
        &self,
        store: &mut Store<CallState>,
        config: &String,
    ) -> GuestResult<Vec<StreamSchema>>;

    /// `setup.migrate-checkpoint`.
    async fn migrate_checkpoint(
        &self,
        store: &mut Store<CallState>,
        stream: &str,
        old: Checkpoint,
    ) -> GuestResult<Checkpoint>;

    /// `source.read`.
    async fn read(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        stream: &str,
        checkpoint: Option<Checkpoint>,
        max_records: u32,
    ) -> GuestResult<Page>;

    /// `source.fetch`.
    async fn fetch(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        stream: &str,
        keys: Vec<String>,
    ) -> GuestResult<Vec<Record>>;

    /// `destination.write`.
    async fn write(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        stream: &str,
        requests: Vec<WriteRequest>,
    ) -> GuestResult<Vec<Result<Written, ConnectorError>>>;

    /// `destination.lookup`.
    async fn lookup(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        stream: &str,
        idempotency_key: &str,
    ) -> GuestResult<Option<Written>>;

    /// `webhooks.verify`.
    async fn verify_webhook(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        request: &IncomingRequest,
    ) -> GuestResult<WebhookVerdict>;

    /// `webhooks.handle`.
    async fn handle_webhook(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        request: &IncomingRequest,
    ) -> GuestResult<Vec<ChangeNotice>>;
}

/// A transform component ready to instantiate, whatever WIT line it
/// speaks.
#[async_trait::async_trait]
#[allow(
    clippy::ptr_arg,
    reason = "the generated bindings take WIT's `config` alias as a `&String`"
)]
pub trait TransformInstance: Send + Sync {
    /// `transform.transform`.
    async fn transform(
        &self,
        store: &mut Store<CallState>,
        config: &String,
        records: Vec<String>,
    ) -> GuestResult<Vec<Result<Option<String>, ConnectorError>>>;
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn release_lines_follow_wasmtime_semver_matching() {
        let v = |text: &str| Version::parse(text).unwrap();
        assert!(same_line(&v("0.1.0"), &v("0.1.1")));
        assert!(same_line(&v("0.1.7"), &v("0.1.1")));
        assert!(!same_line(&v("0.2.0"), &v("0.1.1")));
        assert!(!same_line(&v("1.0.0"), &v("0.1.1")));
        assert!(same_line(&v("1.0.0"), &v("1.4.2")));
        assert!(!same_line(&v("0.0.1"), &v("0.0.2")));
        assert!(!same_line(&v("0.1.1-rc.1"), &v("0.1.1")));
    }

    #[test]
    fn unsupported_versions_name_both_sides_and_the_fix() {
        let future = AbiMismatch::UnsupportedVersion {
            found: "0.2.0".into(),
            missing: None,
        };
        assert_eq!(
            future.to_string(),
            "was built for `weir:connector@0.2.0`, but this host supports `weir:connector@0.1.0` to `@0.1.1`"
        );
        assert_eq!(
            future.hint(),
            "upgrade Weir to a release that supports `weir:connector@0.2.0`, or rebuild the connector with weir-sdk 0.1.x"
        );
        let past = AbiMismatch::UnsupportedVersion {
            found: "0.0.9".into(),
            missing: None,
        };
        assert_eq!(past.hint(), "rebuild the connector with weir-sdk 0.1.x");
    }

    /// Released versions are frozen word for word (policy in
    /// `wit/types.wit`). A change here means a released contract was
    /// edited: undo it, and put the change in the next version instead.
    #[test]
    fn released_wit_is_frozen() {
        let released_0_1_0 = [
            include_str!("../../wit/released/0.1.0/connector.wit"),
            include_str!("../../wit/released/0.1.0/host.wit"),
            include_str!("../../wit/released/0.1.0/types.wit"),
            include_str!("../../wit/released/0.1.0/worlds.wit"),
        ];
        let mut hash = Sha256::new();
        for text in released_0_1_0 {
            hash.update(text);
        }
        assert_eq!(
            hex::encode(hash.finalize()),
            "4b7412b30ac4e82824c99053f4f2f0ff69cc61172845e3cadad056f45d35296a"
        );
    }
}
