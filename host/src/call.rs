//! One call into a guest: its limits, the state its `Store` carries (WASI
//! with captured output, the connection's HTTP gate, memory cap, deadline)
//! and how it fails. Below `abi`, which binds guests to this state, and
//! `runtime`, which compiles and links them.

mod output;

pub use output::CappedOutput;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::capability::{HttpGate, RedirectTrail};
use crate::contract::ConnectorError;
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};

/// What one guest's stdout and stderr may hold per call; the rest is cut.
const CAPTURED_OUTPUT_BYTES: usize = 64 * 1024;
/// How long after its deadline a call waiting on the host is cut off.
const DEADLINE_GRACE: Duration = Duration::from_millis(500);
/// Log messages one call may emit; later ones are counted and dropped.
const LOG_LINES_PER_CALL: u32 = 1_000;
/// Log bytes one call may emit; later messages are counted and dropped.
const LOG_BYTES_PER_CALL: usize = 256 * 1024;
/// Longest log message kept; longer ones are cut.
const LOG_MESSAGE_BYTES: usize = 8 * 1024;

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

/// Whom calls act for: one connection, through its HTTP gate, or nobody
/// (a plugin being loaded, a transform), with every request refused.
#[expect(
    clippy::large_enum_variant,
    reason = "built once per connection and consumed at once by `CallEnv::new`"
)]
pub enum CallScope {
    /// Calls on behalf of a connection.
    Connection {
        /// The connection, for messages.
        id: String,
        /// Its outgoing HTTP.
        gate: HttpGate,
    },
    /// Calls that may send nothing.
    Sealed,
}

/// What calls on behalf of one connection (or of no connection, while a
/// plugin loads) share: lives as long as the connection's configuration.
/// Built by `Runtime::call_env`, which knows the engine and whether limits
/// are enforced.
pub struct CallEnv {
    /// `name version`, for messages.
    plugin: String,
    /// The connection, for messages; `None` while loading.
    connection: Option<String>,
    /// Outgoing HTTP of this connection.
    gate: HttpGate,
    /// Limits of each call.
    limits: CallLimits,
    engine: Engine,
    /// Whether limits are enforced (see `RuntimeOptions::enforce_limits`).
    enforce_limits: bool,
}

impl CallEnv {
    /// The environment of calls into `plugin` for `scope`.
    pub fn new(
        engine: Engine,
        enforce_limits: bool,
        plugin: String,
        scope: CallScope,
        limits: CallLimits,
    ) -> Arc<Self> {
        let (connection, gate) = match scope {
            CallScope::Connection { id, gate } => (Some(id), gate),
            CallScope::Sealed => (None, HttpGate::closed(plugin.clone())),
        };
        Arc::new(Self {
            plugin,
            connection,
            gate,
            limits,
            engine,
            enforce_limits,
        })
    }

    /// `name version` of the plugin called.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The connection calls act for; `None` when sealed.
    pub fn connection(&self) -> Option<&str> {
        self.connection.as_deref()
    }

    /// Outgoing HTTP of the calls.
    pub fn gate(&self) -> &HttpGate {
        &self.gate
    }

    /// A fresh store for one call, with memory cap, an empty WASI context
    /// whose output is captured, and a deadline: the guest yields to the
    /// async runtime at every epoch tick and is interrupted at the deadline.
    pub fn new_store(self: &Arc<Self>) -> Store<CallState> {
        self.new_store_until(Instant::now() + self.limits.deadline)
    }

    /// [`Self::new_store`] for a call that must end by `deadline` (earlier
    /// than its own limit: a retry within the first attempt's deadline).
    pub fn new_store_until(self: &Arc<Self>, deadline: Instant) -> Store<CallState> {
        let stdout = CappedOutput::new(CAPTURED_OUTPUT_BYTES);
        let stderr = CappedOutput::new(CAPTURED_OUTPUT_BYTES);
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
        let deadline = deadline.min(Instant::now() + self.limits.deadline);
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            limits,
            env: self.clone(),
            denial: None,
            partner_note: None,
            redirects: RedirectTrail::default(),
            deadline,
            log_lines: 0,
            log_bytes: 0,
            logs_dropped: 0,
            stdout,
            stderr,
        };
        let mut store = Store::new(&self.engine, state);
        if !self.enforce_limits {
            return store;
        }
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        // Host calls end at the deadline; the guest gets a short grace to
        // handle what they returned before its code is interrupted too.
        let interrupt_at = deadline + DEADLINE_GRACE;
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= interrupt_at {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// The plugin and connection, for messages.
    pub fn label(&self) -> String {
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
    /// What the host saw of the partner that explains a permanent failure
    /// (the last answer was a 4xx, a response was over a cap): the hint of
    /// a `connector-permanent` error.
    pub(crate) partner_note: Option<String>,
    /// The redirects this call followed.
    pub(crate) redirects: RedirectTrail,
    /// When the call must be over; host calls (HTTP, budget waits) end by then.
    pub(crate) deadline: Instant,
    log_lines: u32,
    log_bytes: usize,
    logs_dropped: u32,
    stdout: CappedOutput,
    stderr: CappedOutput,
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
    /// Whether the guest may log one more message, and the message cut to
    /// size; a guest cannot flood the operator's logs.
    pub(crate) fn admit_log(&mut self, mut message: String) -> Option<String> {
        self.log_lines += 1;
        if self.log_lines > LOG_LINES_PER_CALL || self.log_bytes >= LOG_BYTES_PER_CALL {
            self.logs_dropped += 1;
            return None;
        }
        if message.len() > LOG_MESSAGE_BYTES {
            let mut end = LOG_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str(" [cut]");
        }
        self.log_bytes += message.len();
        Some(message)
    }

    /// Routes what the guest printed to the log, and returns the tail of its
    /// stderr (where a Rust panic message lands).
    fn drain_output(&self) -> String {
        let plugin = &self.env.plugin;
        let (stdout, stdout_dropped) = self.stdout.contents();
        for line in String::from_utf8_lossy(&stdout).lines() {
            tracing::info!(target: "weir::guest", plugin, "{line}");
        }
        let (stderr, stderr_dropped) = self.stderr.contents();
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        // A panic's message also reaches the operator in the trap's error.
        for line in stderr.lines() {
            tracing::info!(target: "weir::guest", plugin, "stderr: {line}");
        }
        let dropped_logs = self.logs_dropped;
        if stdout_dropped + stderr_dropped > 0 || dropped_logs > 0 {
            tracing::warn!(
                target: "weir::guest",
                plugin,
                "output over the limits was dropped: {stdout_dropped} bytes of stdout, {stderr_dropped} bytes of stderr, {dropped_logs} log messages"
            );
        }
        let tail: Vec<&str> = stderr.lines().rev().take(4).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
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
        /// What to do next, when the host knows more than the connector
        /// said (the partner's 4xx behind a permanent failure).
        hint: Option<String>,
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
    #[error("{plugin} did not finish `{call}` within its deadline of {}", crate::unix_time::humanize_duration(*limit))]
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
    /// The connector's typed error, if that is what this is.
    pub fn connector_error(&self) -> Option<&ConnectorError> {
        match self {
            Self::Connector { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl Diagnose for CallError {
    /// The user-facing form, with code and hint.
    fn diagnostic(&self) -> Diagnostic {
        match self {
            Self::Connector { denial: Some(denial), .. } => Diagnostic {
                code: denial.code,
                message: denial.message.clone(),
                hint: denial.hint.clone(),
            },
            Self::Connector {
                error,
                hint: partner_hint,
                ..
            } => {
                let (code, hint) = match error {
                    ConnectorError::Config(_) => (ErrorCode::ConnectorConfig, Some("fix the connection's `config` in weir.toml; `weir plugins --json` shows the connector's config schema")),
                    ConnectorError::Auth(_) => (ErrorCode::ConnectorAuth, Some("renew the connection's credentials, then verify them with `weir check <connection>`")),
                    ConnectorError::Denied(_) => (ErrorCode::EgressDenied, None),
                    ConnectorError::RateLimited { .. } => (ErrorCode::RateLimited, Some("nothing is lost: run the flow again later and it resumes from its last checkpoint")),
                    ConnectorError::Transient(_) => (ErrorCode::ConnectorTransient, Some("run the flow again later; it resumes from its last checkpoint")),
                    ConnectorError::Permanent(_) => (ErrorCode::ConnectorPermanent, Some(partner_hint.as_deref().unwrap_or("retrying will not help: the message says what the partner or the connector refused; fix that, then run the flow again (it resumes from its last checkpoint)"))),
                    ConnectorError::Unsupported(_) => (ErrorCode::ConnectorUnsupported, Some("the connector does not offer this: choose another stream or connector; `weir discover <connection>` lists what each stream supports")),
                };
                let diagnostic = Diagnostic::new(code, self.to_string());
                match hint {
                    Some(hint) => diagnostic.with_hint(hint),
                    None => diagnostic,
                }
            }
            Self::Trap { detail, .. } if detail.contains("memory allocation") => {
                Diagnostic::new(ErrorCode::ConnectorTrap, self.to_string()).with_hint(
                    "the connector ran out of memory: raise `memory_limit_mb` of the connection in weir.toml if it legitimately needs more, or report the connector's memory use to its author",
                )
            }
            Self::Trap { .. } => Diagnostic::new(ErrorCode::ConnectorTrap, self.to_string())
                .with_hint("this is a bug in the connector: report it to its author with this message; the run can be retried from its last checkpoint"),
            Self::Timeout { .. } => Diagnostic::new(ErrorCode::ConnectorTimeout, self.to_string())
                .with_hint("if the partner is legitimately slow, raise `call_timeout` of the connection in weir.toml"),
            Self::Contract { .. } => Diagnostic::new(ErrorCode::ConnectorContract, self.to_string())
                .with_hint("this is a bug in the connector: nothing of this call was stored"),
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
        // Epoch interruption stops guest code at the deadline, and host calls
        // (HTTP, budget waits) end by it on their own, giving the guest a typed
        // error it can act on; this timeout, a little later, is the backstop.
        let limit = self
            .store
            .data()
            .deadline
            .saturating_duration_since(Instant::now());
        let backstop = limit + DEADLINE_GRACE;
        let outcome = tokio::time::timeout(backstop, invoke(self.store)).await;
        let stderr_tail = self.store.data().drain_output();
        let plugin = env.label();
        match outcome {
            Err(_elapsed) => Err(CallError::Timeout {
                plugin,
                call: self.call,
                limit: env.limits.deadline,
            }),
            Ok(Ok(Ok(value))) => {
                // The connector went on without the refused request: the
                // operator still hears of it, once.
                if let Some(denial) = self.store.data_mut().denial.take() {
                    match &denial.hint {
                        Some(hint) => tracing::warn!(
                            "error[{}]: {}\nhint: {hint}",
                            denial.code,
                            denial.message
                        ),
                        None => tracing::warn!("error[{}]: {}", denial.code, denial.message),
                    }
                }
                Ok(value)
            }
            Ok(Ok(Err(error))) => {
                let state = self.store.data_mut();
                Err(CallError::Connector {
                    plugin,
                    error: error.scrub_urls(),
                    denial: state.denial.take().map(Box::new),
                    hint: state.partner_note.take(),
                })
            }
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
                let detail = crate::capability::printed_url::scrub(&detail).into_owned();
                Err(CallError::Trap {
                    plugin,
                    call: self.call,
                    detail,
                })
            }
        }
    }
}
