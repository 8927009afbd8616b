use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::capability::HttpGate;
use crate::connector::ConnectorError;
use crate::diagnostic::{Diagnostic, ErrorCode};

/// What one guest's stdout and stderr may hold per call; the rest is cut.
const CAPTURED_OUTPUT_BYTES: usize = 64 * 1024;

/// Limits of one call into a connector.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Covers guest CPU, host I/O and waits: the whole call.
    pub deadline: Duration,
    /// Largest linear memory of the instance.
    pub memory_bytes: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(120),
            memory_bytes: 256 << 20,
        }
    }
}

/// What calls on behalf of one connection (or of no connection, while a
/// plugin loads) share: lives as long as the connection's configuration.
pub struct CallEnv {
    /// `name version`, for messages.
    pub plugin: String,
    /// The connection, for messages; `None` while loading.
    pub connection: Option<String>,
    /// Outgoing HTTP of this connection.
    pub gate: HttpGate,
    /// Limits of each call.
    pub limits: CallLimits,
}

impl CallEnv {
    /// A fresh store for one call, with memory cap, an empty WASI context
    /// whose output is captured, and a deadline: the guest yields to the
    /// async runtime at every epoch tick and is interrupted at the deadline.
    pub fn new_store(self: &Arc<Self>, engine: &Engine) -> Store<CallState> {
        let stdout = MemoryOutputPipe::new(CAPTURED_OUTPUT_BYTES);
        let stderr = MemoryOutputPipe::new(CAPTURED_OUTPUT_BYTES);
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .instances(32)
            .build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            limits,
            env: self.clone(),
            denial: None,
            stdout,
            stderr,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limits);
        let deadline = Instant::now() + self.limits.deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    fn label(&self) -> String {
        match &self.connection {
            Some(connection) => format!("connector `{}` (connection `{connection}`)", self.plugin),
            None => format!("connector `{}`", self.plugin),
        }
    }
}

/// The data of one `Store`: lives for exactly one call.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    pub(crate) env: Arc<CallEnv>,
    /// The first policy denial of this call, for the operator.
    pub(crate) denial: Option<Diagnostic>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl CallState {
    /// Routes what the guest printed to the log, and returns the tail of its
    /// stderr (where a Rust panic message lands).
    fn drain_output(&self) -> String {
        let plugin = &self.env.plugin;
        for line in String::from_utf8_lossy(&self.stdout.contents()).lines() {
            tracing::info!(target: "weir::guest", plugin, "{line}");
        }
        let stderr = String::from_utf8_lossy(&self.stderr.contents()).into_owned();
        for line in stderr.lines() {
            tracing::warn!(target: "weir::guest", plugin, "{line}");
        }
        stderr
            .lines()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// Why a call into a connector did not return a value.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The connector returned a typed error.
    #[error("{plugin}: {error}")]
    Connector {
        /// Who.
        plugin: String,
        /// What it said.
        error: ConnectorError,
        /// The policy denial behind it, if any.
        denial: Option<Box<Diagnostic>>,
    },
    /// The guest trapped: a bug in the connector.
    #[error("{plugin} crashed in `{call}`: {detail}")]
    Trap {
        /// Who.
        plugin: String,
        /// Which export.
        call: &'static str,
        /// Trap and panic message.
        detail: String,
    },
    /// The call exceeded its deadline.
    #[error("{plugin} did not finish `{call}` within its deadline of {}", crate::connector::humanize_duration(*limit))]
    Timeout {
        /// Who.
        plugin: String,
        /// Which export.
        call: &'static str,
        /// The deadline.
        limit: Duration,
    },
    /// The connector returned data that breaks the contract.
    #[error("{plugin} broke the contract in `{call}`: {detail}")]
    Contract {
        /// Who.
        plugin: String,
        /// Which export.
        call: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl CallError {
    /// The user-facing form, with code and hint.
    pub fn diagnostic(&self) -> Diagnostic {
        match self {
            Self::Connector { denial: Some(denial), .. } => Diagnostic {
                code: denial.code,
                message: denial.message.clone(),
                hint: denial.hint.clone(),
            },
            Self::Connector { error, .. } => {
                let (code, hint) = match error {
                    ConnectorError::Config(_) => (ErrorCode::ConnectorConfig, Some("fix the connection's `config` in weir.toml; `weir plugins --json` shows the connector's config schema")),
                    ConnectorError::Auth(_) => (ErrorCode::ConnectorAuth, Some("renew the connection's credentials, then verify them with `weir check <connection>`")),
                    ConnectorError::Denied(_) => (ErrorCode::EgressDenied, None),
                    ConnectorError::RateLimited { .. } => (ErrorCode::RateLimited, Some("nothing is lost: run the flow again later and it resumes from its last checkpoint")),
                    ConnectorError::Transient(_) => (ErrorCode::ConnectorTransient, Some("run the flow again later; it resumes from its last checkpoint")),
                    ConnectorError::Permanent(_) => (ErrorCode::ConnectorPermanent, None),
                    ConnectorError::Unsupported(_) => (ErrorCode::ConnectorUnsupported, None),
                };
                let diagnostic = Diagnostic::new(code, self.to_string());
                match hint {
                    Some(hint) => diagnostic.with_hint(hint),
                    None => diagnostic,
                }
            }
            Self::Trap { .. } => Diagnostic::new(ErrorCode::ConnectorTrap, self.to_string())
                .with_hint("this is a bug in the connector: report it to its author with this message; the run can be retried from its last checkpoint"),
            Self::Timeout { .. } => Diagnostic::new(ErrorCode::ConnectorTimeout, self.to_string())
                .with_hint("if the partner is legitimately slow, raise `call_timeout` of the connection in weir.toml"),
            Self::Contract { .. } => Diagnostic::new(ErrorCode::ConnectorContract, self.to_string())
                .with_hint("this is a bug in the connector: nothing of this call was stored"),
        }
    }

    /// The connector's typed error, if that is what this is.
    pub fn connector_error(&self) -> Option<&ConnectorError> {
        match self {
            Self::Connector { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Runs one export call under the environment's deadline and turns traps,
/// timeouts and typed errors into a `CallError`. The store is dropped by the
/// caller afterwards: a trapped instance is never entered again.
pub struct GuestCall<'a> {
    store: &'a mut Store<CallState>,
    call: &'static str,
}

impl<'a> GuestCall<'a> {
    /// Prepares a call of export `call`.
    pub fn new(store: &'a mut Store<CallState>, call: &'static str) -> Self {
        Self { store, call }
    }

    /// Runs it. `invoke` receives the store and returns the export's result.
    pub async fn run<R>(
        self,
        invoke: impl AsyncFnOnce(&mut Store<CallState>) -> wasmtime::Result<Result<R, ConnectorError>>,
    ) -> Result<R, CallError> {
        let env = self.store.data().env.clone();
        // Epoch interruption stops guest code; the timeout also covers host
        // calls the guest is waiting on (HTTP, budget waits).
        let outcome = tokio::time::timeout(env.limits.deadline, invoke(self.store)).await;
        let stderr_tail = self.store.data().drain_output();
        let plugin = env.label();
        match outcome {
            Err(_elapsed) => Err(CallError::Timeout {
                plugin,
                call: self.call,
                limit: env.limits.deadline,
            }),
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(error))) => Err(CallError::Connector {
                plugin,
                error,
                denial: self.store.data_mut().denial.take().map(Box::new),
            }),
            Ok(Err(trap)) => {
                if trap.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    return Err(CallError::Timeout {
                        plugin,
                        call: self.call,
                        limit: env.limits.deadline,
                    });
                }
                let mut detail = match trap.downcast_ref::<Trap>() {
                    Some(code) => code.to_string(),
                    None => format!("{trap:#}"),
                };
                if !stderr_tail.is_empty() {
                    detail = format!("{detail}; the connector printed: {stderr_tail}");
                }
                Err(CallError::Trap {
                    plugin,
                    call: self.call,
                    detail,
                })
            }
        }
    }
}
