use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Engine;

use super::{Plugin, PluginKind};
use crate::abi::{self, AbiMismatch, Exports};
use crate::call::{CallLimits, CallScope, GuestCall};
use crate::contract::SpecProblem;
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::runtime::{CompileCache, Runtime};

/// How long `spec()` may take at load time.
const SPEC_DEADLINE: Duration = Duration::from_secs(10);

/// Why a plugin file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Cannot be read.
    #[error("cannot be read: {0}")]
    Io(#[from] std::io::Error),
    /// Not WebAssembly, or a core module.
    #[error("is not a WebAssembly component ({0})")]
    NotComponent(&'static str),
    /// A precompiled artifact; never loaded from the plugins directory.
    #[error("is a precompiled artifact, which Weir never loads from the plugins directory")]
    Precompiled,
    /// Does not validate or compile.
    #[error("is damaged or truncated: {0}")]
    Invalid(String),
    /// Exports the wrong things, or imports what the host lacks.
    #[error("{0}")]
    Abi(#[from] AbiMismatch),
    /// `spec()` failed or returned an invalid spec.
    #[error("{0}")]
    Spec(String),
    /// Another file already provides the connector.
    #[error("declares connector `{name}`, already provided by `{}`", other.display())]
    Duplicate {
        /// Connector name.
        name: String,
        /// The file kept.
        other: PathBuf,
    },
}

/// A plugin file that did not load, and why.
#[derive(Debug)]
pub struct LoadFailure {
    /// The file.
    pub file: PathBuf,
    /// Why.
    pub error: PluginError,
}

impl Diagnose for LoadFailure {
    /// The user-facing form, with code and hint.
    fn diagnostic(&self) -> Diagnostic {
        let message = format!("plugin `{}` {}", self.file.display(), self.error);
        let (code, hint) = match &self.error {
            PluginError::Io(error) => (ErrorCode::PluginUnreadable, match error.kind() {
                std::io::ErrorKind::NotFound => "check the path; `weir plugins` lists the files of the plugins directory".into(),
                std::io::ErrorKind::PermissionDenied => "let the user that runs `weir` read the file (`chmod a+r` it)".into(),
                _ => "check that the path names a readable file".into(),
            }),
            PluginError::NotComponent(_) | PluginError::Precompiled => (
                ErrorCode::PluginNotComponent,
                "build the connector with `cargo build --release --target wasm32-wasip2` and copy `target/wasm32-wasip2/release/<name>.wasm` here".into(),
            ),
            PluginError::Invalid(_) => (
                ErrorCode::PluginInvalid,
                "copy the file again (to a temporary name, then rename it into place) or rebuild it".into(),
            ),
            PluginError::Abi(mismatch @ AbiMismatch::UnsupportedVersion { .. }) => {
                (ErrorCode::PluginUnsupportedVersion, mismatch.hint())
            }
            PluginError::Abi(AbiMismatch::WrongWorld { .. }) => (
                ErrorCode::PluginWrongWorld,
                "build it against weir-sdk and export it with `weir_sdk::export_connector!`".into(),
            ),
            PluginError::Abi(AbiMismatch::Imports(_)) => (
                ErrorCode::PluginImports,
                "connectors may import only `weir:connector/*` and WASI; remove the dependency that pulls in the import".into(),
            ),
            PluginError::Spec(_) => (ErrorCode::PluginSpec, "fix the connector's `spec()` and rebuild it".into()),
            PluginError::Duplicate { name, other } => (
                ErrorCode::PluginDuplicate,
                format!(
                    "`{}` keeps serving `{name}` and this file is ignored, whatever its version: delete the file you do not want (to upgrade, replace `{}` itself)",
                    other.display(),
                    other.display()
                ),
            ),
        };
        Diagnostic::new(code, message).with_hint(hint)
    }
}

/// Reads, compiles, identifies and (for connectors) asks the spec of one file.
pub async fn load_plugin(runtime: &Arc<Runtime>, file: &Path) -> Result<Plugin, PluginError> {
    let wasm = tokio::fs::read(file).await?;
    load_plugin_bytes(runtime, file, wasm.into()).await
}

/// Like `load_plugin`, from the bytes of `file` already read (or kept).
pub async fn load_plugin_bytes(
    runtime: &Arc<Runtime>,
    file: &Path,
    wasm: Arc<[u8]>,
) -> Result<Plugin, PluginError> {
    check_header(&wasm)?;
    let content_hash = CompileCache::content_hash(&wasm);
    let size = wasm.len() as u64;
    let compiled = {
        let runtime = runtime.clone();
        let wasm = wasm.clone();
        tokio::task::spawn_blocking(move || runtime.compile(&wasm))
            .await
            .map_err(|e| PluginError::Invalid(e.to_string()))?
            .map_err(|e| PluginError::Invalid(first_line(&format!("{e:#}"))))?
    };
    let (exports, wit_version) = Exports::identify(runtime.engine(), runtime.linker(), &compiled)?;
    let file_label = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match exports {
        Exports::Connector(pre) => {
            let spec = call_spec(runtime, pre.as_ref(), &file_label).await?;
            spec.validate().map_err(|problem: SpecProblem| {
                PluginError::Spec(format!("returned an invalid spec: {problem}"))
            })?;
            Ok(Plugin {
                name: spec.name.clone(),
                version: spec.version.clone(),
                file: file.to_path_buf(),
                content_hash,
                size,
                wasm,
                wit_version,
                kind: PluginKind::Connector {
                    spec: Box::new(spec),
                    pre,
                },
            })
        }
        Exports::Transformer(pre) => Ok(Plugin {
            name: file
                .file_stem()
                .map(|s| s.to_string_lossy().replace('_', "-"))
                .unwrap_or_default(),
            version: "-".into(),
            file: file.to_path_buf(),
            content_hash,
            size,
            wasm,
            wit_version,
            kind: PluginKind::Transformer { pre },
        }),
    }
}

async fn call_spec(
    runtime: &Arc<Runtime>,
    pre: &dyn abi::ConnectorInstance,
    file_label: &str,
) -> Result<crate::contract::ConnectorSpec, PluginError> {
    let env = runtime.call_env(
        file_label.to_string(),
        CallScope::Sealed,
        CallLimits {
            deadline: SPEC_DEADLINE,
            ..CallLimits::default()
        },
    );
    let mut store = env.new_store();
    GuestCall::new(&mut store, "spec")
        .run(async |store| Ok(Ok(pre.spec(store).await?)))
        .await
        .map_err(|e| PluginError::Spec(e.to_string()))
}

/// Cheap checks before compiling: is this a component at all?
fn check_header(wasm: &[u8]) -> Result<(), PluginError> {
    if Engine::detect_precompiled(wasm).is_some() {
        return Err(PluginError::Precompiled);
    }
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(PluginError::NotComponent("no WebAssembly header"));
    }
    match wasm[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(PluginError::NotComponent(
            "it is a core module; build for `wasm32-wasip2`, not `wasm32-unknown-unknown` or `wasm32-wasip1`",
        )),
        _ => Err(PluginError::NotComponent("unknown WebAssembly version")),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_components_from_modules_and_junk() {
        assert!(check_header(b"\0asm\x0d\x00\x01\x00rest").is_ok());
        assert!(
            matches!(check_header(b"\0asm\x01\x00\x00\x00"), Err(PluginError::NotComponent(m)) if m.contains("core module"))
        );
        assert!(matches!(
            check_header(b"hello world"),
            Err(PluginError::NotComponent(_))
        ));
        assert!(matches!(
            check_header(b""),
            Err(PluginError::NotComponent(_))
        ));
    }
}
