//! From the file's shape to checked settings: names validated, references
//! resolved, relative paths anchored at the config file's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{
    RawAdmin, RawConfig, RawConnection, RawDaemon, RawFlow, RawIngress, RawRateLimit,
};
use super::{
    AdminConfig, Config, ConnectionConfig, DEFAULT_PAGE_SIZE, DaemonConfig, DestinationConfig,
    FlowConfig, StoreConfig, TransformConfig,
};
use crate::call::CallLimits;
use crate::capability::{
    BudgetConfig, DEFAULT_REQUESTS_PER_SECOND, HttpLimits, OriginPattern, SecretSource,
};
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::ids::{ConnectionId, ConnectorName, FlowId};
use crate::mapping::Mapping;
use crate::suggest;

/// Largest page a connection may ask for.
const MAX_PAGE_SIZE: u32 = 10_000;

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or a value of the wrong type.
    #[error("{at}: {message}")]
    Syntax {
        /// `file:line:column`.
        at: String,
        /// The parser's message.
        message: String,
    },
    /// A key Weir does not know.
    #[error("{at}: unknown key `{key}`")]
    UnknownKey {
        /// `file:line:column`.
        at: String,
        /// The key.
        key: String,
        /// Keys allowed there.
        expected: String,
    },
    /// A value is wrong.
    #[error("{}: `{key}` {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted key, e.g. `connections.acme.allowed_hosts[0]`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No such connection.
    #[error("no connection `{name}` in `{}`", path.display())]
    UnknownConnection {
        /// The file.
        path: PathBuf,
        /// Asked name.
        name: String,
        /// Defined names.
        known: Vec<String>,
    },
    /// No such flow.
    #[error("no flow `{name}` in `{}`", path.display())]
    UnknownFlow {
        /// The file.
        path: PathBuf,
        /// Asked name.
        name: String,
        /// Defined names.
        known: Vec<String>,
    },
}

impl Diagnose for ConfigError {
    /// The user-facing form, with code and hint.
    fn diagnostic(&self) -> Diagnostic {
        let message = self.to_string();
        match self {
            Self::Unreadable { .. } => Diagnostic::new(ErrorCode::ConfigUnreadable, message)
                .with_hint("run `weir` where `weir.toml` is, or pass `--config <path>`"),
            Self::Syntax { .. } => Diagnostic::new(ErrorCode::ConfigSyntax, message).with_hint(
                "fix the file at that line and column: strings need quotes, a table is declared once, and README's `weir.toml` reference gives each key's type",
            ),
            Self::UnknownKey { key, expected, .. } => {
                let diagnostic = Diagnostic::new(ErrorCode::ConfigUnknownKey, message);
                if expected.is_empty() {
                    diagnostic
                } else {
                    // `one of `a`, `b`` or `` `a` ``: the names in backticks.
                    let allowed = expected.split('`').skip(1).step_by(2);
                    diagnostic.with_hint(suggest::hint(
                        key,
                        allowed,
                        format_args!("keys allowed here: {expected}"),
                    ))
                }
            }
            Self::Invalid { key, .. } => {
                Diagnostic::new(ErrorCode::ConfigInvalid, message).with_hint(invalid_hint(key))
            }
            Self::UnknownConnection { name, known, .. } => Diagnostic::new(
                ErrorCode::UnknownConnection,
                message,
            )
            .with_hint(known_hint("connections", name, known)),
            Self::UnknownFlow { name, known, .. } => {
                Diagnostic::new(ErrorCode::UnknownFlow, message)
                    .with_hint(known_hint("flows", name, known))
            }
        }
    }
}

impl From<ConfigError> for Diagnostic {
    fn from(error: ConfigError) -> Self {
        error.diagnostic()
    }
}

/// What to do about a wrong value, by the key it is under.
fn invalid_hint(key: &str) -> String {
    let name = key.rsplit('.').next().unwrap_or(key);
    match name.split('[').next().unwrap_or(name) {
        "allowed_hosts" => "write each entry as `scheme://host[:port]` with no path, e.g. `\"https://api.example.com\"`; the host may start with `*.` and the port may be `*`".into(),
        _ => format!("fix `{key}`; README's `weir.toml` reference says what each key takes"),
    }
}

fn known_hint(what: &str, name: &str, known: &[String]) -> String {
    if known.is_empty() {
        format!("the file defines no {what} yet")
    } else {
        suggest::hint(
            name,
            known.iter().map(String::as_str),
            format_args!("defined {what}: {}", known.join(", ")),
        )
    }
}

/// Resolves every section it can, collecting the problems of all others:
/// one wrong value hides none of the rest. The configuration of what
/// resolved, with every problem; none when the file's shape is wrong at
/// its top.
pub fn resolve(
    path: &Path,
    raw: Option<RawConfig>,
    mut problems: Vec<ConfigError>,
) -> (Option<Config>, Vec<ConfigError>) {
    let Some(raw) = raw else {
        return (None, problems);
    };
    // Absolute, so that every path Weir reports or compares (a plugin file
    // seen by the directory watcher, say) is spelled one way.
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
    let invalid = |key: String, reason: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        key,
        reason,
    };
    let anchor = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    let RawConfig {
        top,
        connections: raw_connections,
        flows: raw_flows,
        unparsed_connections,
    } = raw;

    let store = StoreConfig::parse(top.store.as_deref().unwrap_or("weir.db"), anchor)
        .map_err(|reason| invalid("store".into(), reason));
    let store = kept(&mut problems, store).unwrap_or_else(|| StoreConfig::Sqlite {
        path: anchor("weir.db".into()),
    });
    let store_path = store.local_file().to_path_buf();
    let cache_dir = match top.cache_dir {
        Some(dir) => anchor(dir),
        None => store_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(".weir-cache"),
    };

    let mut connections = BTreeMap::new();
    // Connections that are named but did not resolve: a flow naming one is
    // not reported, its connection's problem is.
    let mut named = unparsed_connections;
    for (name, connection) in raw_connections {
        named.insert(name.clone());
        let resolved = ConnectionId::new(&name)
            .map_err(|e| invalid(format!("connections.{name}"), e.to_string()))
            .and_then(|id| resolve_connection(id, connection, &anchor, &invalid));
        if let Some(resolved) = kept(&mut problems, resolved) {
            connections.insert(resolved.id.clone(), resolved);
        }
    }

    named.retain(|name| !connections.keys().any(|id| id.as_str() == name));
    let broken = named;
    let mut flows = BTreeMap::new();
    for (name, flow) in raw_flows {
        let destination = flow.destination.get("connection").and_then(|c| c.as_str());
        if [Some(flow.source.as_str()), destination]
            .into_iter()
            .flatten()
            .any(|connection| broken.contains(connection))
        {
            continue;
        }
        let resolved = FlowId::new(&name)
            .map_err(|e| invalid(format!("flows.{name}"), e.to_string()))
            .and_then(|id| resolve_flow(id, flow, &connections, &anchor, &invalid));
        match resolved {
            Ok(resolved) => {
                flows.insert(resolved.id.clone(), resolved);
            }
            Err(problem) => problems.push(problem),
        }
    }
    let daemon = kept(&mut problems, resolve_daemon(top.daemon, &invalid));
    let admin = kept(&mut problems, resolve_admin(top.admin, &anchor, &invalid));
    let ingress = kept(
        &mut problems,
        resolve_ingress(top.ingress, &store_path, &anchor, &invalid),
    );
    let sealing_keys = kept(
        &mut problems,
        match top.secrets {
            None => Ok(Vec::new()),
            Some(secrets) => secret_sources(&secrets.key, &anchor)
                .map_err(|why| invalid("secrets.key".into(), why)),
        },
    );

    // The sections that did not resolve take their defaults: what did
    // resolve can still be checked further (against the connectors, say).
    let ingress = ingress.unwrap_or_else(|| {
        resolve_ingress(None, &store_path, &anchor, &invalid).expect("the defaults are valid")
    });
    let config = Config {
        path: path.to_path_buf(),
        plugins_dir: anchor(top.plugins_dir.unwrap_or_else(|| "plugins".into())),
        store,
        cache_dir,
        connections,
        flows,
        daemon: daemon.unwrap_or_default(),
        admin: admin.unwrap_or_default(),
        ingress,
        sealing_keys: sealing_keys.unwrap_or_default(),
    };
    (Some(config), problems)
}

/// The value, or none with its problem noted.
fn kept<T>(problems: &mut Vec<ConfigError>, result: Result<T, ConfigError>) -> Option<T> {
    result.map_err(|problem| problems.push(problem)).ok()
}

fn resolve_ingress(
    raw: Option<RawIngress>,
    store_path: &Path,
    anchor: &impl Fn(PathBuf) -> PathBuf,
    invalid: &impl Fn(String, String) -> ConfigError,
) -> Result<super::IngressConfig, ConfigError> {
    let raw = raw.unwrap_or(RawIngress {
        listen: None,
        inbox: None,
        per_tenant_rate: None,
        per_tenant_burst: None,
        coverage_grace: None,
        silence_after: None,
        delivery_attempts: None,
        retry_delay: None,
    });
    let listen = raw
        .listen
        .map(|listen| {
            listen.parse().map_err(|_| {
                invalid(
                    "ingress.listen".into(),
                    format!("= \"{listen}\" is not an address like \"0.0.0.0:8080\""),
                )
            })
        })
        .transpose()?;
    let duration =
        |key: &str, value: Option<String>, default: u64| -> Result<Duration, ConfigError> {
            value.map_or(Ok(Duration::from_secs(default)), |v| {
                parse_duration(&v).map_err(|why| invalid(format!("ingress.{key}"), why))
            })
        };
    let rate = raw.per_tenant_rate.unwrap_or(100.0);
    if rate.is_nan() || rate <= 0.0 {
        return Err(invalid(
            "ingress.per_tenant_rate".into(),
            format!("= {rate} must be more than 0"),
        ));
    }
    Ok(super::IngressConfig {
        listen,
        inbox_path: raw
            .inbox
            .map(anchor)
            .unwrap_or_else(|| store_path.with_extension("inbox.db")),
        per_tenant_rate: rate,
        per_tenant_burst: raw.per_tenant_burst.unwrap_or(200).max(1),
        coverage_grace: duration("coverage_grace", raw.coverage_grace, 600)?,
        silence_after: duration("silence_after", raw.silence_after, 1800)?,
        delivery_attempts: raw.delivery_attempts.unwrap_or(10).max(1),
        retry_delay: duration("retry_delay", raw.retry_delay, 10)?,
    })
}

fn resolve_daemon(
    raw: Option<RawDaemon>,
    invalid: &impl Fn(String, String) -> ConfigError,
) -> Result<DaemonConfig, ConfigError> {
    let mut daemon = DaemonConfig::default();
    let Some(raw) = raw else { return Ok(daemon) };
    let at_least_one = |key: &str, value: Option<usize>, default: usize| match value {
        Some(0) => Err(invalid(
            format!("daemon.{key}"),
            "= 0 must be at least 1".into(),
        )),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    daemon.max_concurrent_runs = at_least_one(
        "max_concurrent_runs",
        raw.max_concurrent_runs,
        daemon.max_concurrent_runs,
    )?;
    daemon.max_runs_per_connection = at_least_one(
        "max_runs_per_connection",
        raw.max_runs_per_connection,
        daemon.max_runs_per_connection,
    )?;
    if let Some(n) = raw.failures_before_unhealthy {
        daemon.failures_before_unhealthy = n.max(1);
    }
    if let Some(grace) = raw.shutdown_grace {
        daemon.shutdown_grace =
            parse_duration(&grace).map_err(|why| invalid("daemon.shutdown_grace".into(), why))?;
    }
    Ok(daemon)
}

fn resolve_admin(
    raw: Option<RawAdmin>,
    anchor: &impl Fn(PathBuf) -> PathBuf,
    invalid: &impl Fn(String, String) -> ConfigError,
) -> Result<AdminConfig, ConfigError> {
    let mut admin = AdminConfig::default();
    let Some(raw) = raw else { return Ok(admin) };
    if let Some(listen) = raw.listen {
        admin.listen = listen.parse().map_err(|_| {
            invalid(
                "admin.listen".into(),
                format!("= \"{listen}\" is not an address like \"127.0.0.1:7070\""),
            )
        })?;
    }
    if let Some(token) = raw.token {
        let mut sources =
            secret_sources(&token, anchor).map_err(|why| invalid("admin.token".into(), why))?;
        if sources.len() != 1 {
            return Err(invalid("admin.token".into(), "takes one source".into()));
        }
        admin.token = sources.pop();
    }
    Ok(admin)
}

fn resolve_connection(
    id: ConnectionId,
    raw: RawConnection,
    anchor: &impl Fn(PathBuf) -> PathBuf,
    invalid: &impl Fn(String, String) -> ConfigError,
) -> Result<ConnectionConfig, ConfigError> {
    let key = |k: &str| format!("connections.{id}.{k}");
    let connector =
        ConnectorName::new(&raw.connector).map_err(|e| invalid(key("connector"), e.to_string()))?;
    let config =
        serde_json::to_value(&raw.config).map_err(|e| invalid(key("config"), e.to_string()))?;
    let allowed_hosts = raw
        .allowed_hosts
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            OriginPattern::parse(entry).map_err(|why| {
                invalid(
                    format!("{}[{i}]", key("allowed_hosts")),
                    format!("= \"{entry}\": {why}"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let mut secrets = BTreeMap::new();
    for (name, value) in raw.secrets {
        let sources = secret_sources(&value, anchor)
            .map_err(|why| invalid(format!("{}.{name}", key("secrets")), why))?;
        secrets.insert(name, sources);
    }
    let mut limits = CallLimits::default();
    if let Some(timeout) = raw.call_timeout {
        limits.deadline =
            parse_duration(&timeout).map_err(|why| invalid(key("call_timeout"), why))?;
    }
    if let Some(mb) = raw.memory_limit_mb {
        if !(16..=4096).contains(&mb) {
            return Err(invalid(
                key("memory_limit_mb"),
                format!("= {mb} is outside 16..=4096"),
            ));
        }
        limits.memory_bytes = (mb as usize) << 20;
    }
    let page_size = raw.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(invalid(
            key("page_size"),
            format!("= {page_size} is outside 1..={MAX_PAGE_SIZE}"),
        ));
    }
    let megabytes =
        |name: &str, value: Option<u32>, default: usize| -> Result<usize, ConfigError> {
            match value {
                None => Ok(default),
                Some(mb @ 1..=4096) => Ok((mb as usize) << 20),
                Some(mb) => Err(invalid(key(name), format!("= {mb} is outside 1..=4096"))),
            }
        };
    let mut http = HttpLimits {
        request_timeout: limits.deadline,
        ..HttpLimits::default()
    };
    http.max_response_bytes = megabytes(
        "max_response_mb",
        raw.max_response_mb,
        http.max_response_bytes,
    )?;
    if let Some(t) = raw.request_timeout {
        http.request_timeout =
            parse_duration(&t).map_err(|why| invalid(key("request_timeout"), why))?;
    }
    if let Some(t) = raw.first_byte_timeout {
        http.first_byte_timeout =
            parse_duration(&t).map_err(|why| invalid(key("first_byte_timeout"), why))?;
    }
    if let Some(t) = raw.idle_timeout {
        http.idle_timeout = parse_duration(&t).map_err(|why| invalid(key("idle_timeout"), why))?;
    }
    match raw.max_response_header_kb {
        None => {}
        // hyper refuses heads over ~400 KiB on its own.
        Some(kb @ 1..=256) => http.max_response_header_bytes = (kb as usize) << 10,
        Some(kb) => {
            return Err(invalid(
                key("max_response_header_kb"),
                format!("= {kb} is outside 1..=256"),
            ));
        }
    }
    if let Some(max) = raw.max_redirects {
        http.max_redirects = max;
    }
    let max_page_bytes = megabytes("max_page_mb", raw.max_page_mb, 64 << 20)?;
    let max_webhook_bytes = match raw.max_webhook_kb {
        None => 1 << 20,
        Some(kb @ 1..=65_536) => (kb as usize) << 10,
        Some(kb) => {
            return Err(invalid(
                key("max_webhook_kb"),
                format!("= {kb} is outside 1..=65536"),
            ));
        }
    };
    let budget = match raw.rate_limit {
        None => BudgetConfig::default_ceiling(),
        Some(rate) => resolve_rate_limit(rate)
            .map_err(|(k, why)| invalid(key(&format!("rate_limit.{k}")), why))?,
    };
    Ok(ConnectionConfig {
        id,
        connector,
        config,
        allowed_hosts,
        secrets,
        shared_credentials: raw.shared_credentials.unwrap_or(false),
        not_connected: None,
        limits,
        page_size,
        max_page_bytes,
        max_webhook_bytes,
        http,
        budget,
    })
}

fn resolve_rate_limit(raw: RawRateLimit) -> Result<BudgetConfig, (&'static str, String)> {
    let per_second = match (raw.requests_per_second, raw.requests_per_minute) {
        (Some(_), Some(_)) => {
            return Err((
                "requests_per_minute",
                "cannot be set together with `requests_per_second`".into(),
            ));
        }
        (Some(rps), None) => rps,
        (None, Some(rpm)) => rpm / 60.0,
        (None, None)
            if raw.daily_quota.is_some()
                || raw.max_concurrent.is_some()
                || raw.max_backoff.is_some() =>
        {
            DEFAULT_REQUESTS_PER_SECOND
        }
        (None, None) => {
            return Err((
                "requests_per_second",
                "is missing: set `requests_per_second` or `requests_per_minute` (or only `daily_quota`, `max_concurrent` or `max_backoff`)".into(),
            ));
        }
    };
    if per_second.is_nan() || per_second <= 0.0 {
        return Err((
            "requests_per_second",
            format!("= {per_second} must be more than 0"),
        ));
    }
    let burst = raw.burst.unwrap_or(1);
    if burst == 0 {
        return Err(("burst", "= 0 must be at least 1".into()));
    }
    if raw.max_concurrent == Some(0) {
        return Err(("max_concurrent", "= 0 must be at least 1".into()));
    }
    let mut budget = BudgetConfig {
        per_second,
        burst,
        daily_quota: raw.daily_quota,
        max_concurrent: raw.max_concurrent,
        ..BudgetConfig::unlimited()
    };
    if let Some(backoff) = raw.max_backoff {
        budget.max_backoff = parse_duration(&backoff).map_err(|why| ("max_backoff", why))?;
    }
    Ok(budget)
}

fn secret_sources(
    value: &toml::Value,
    anchor: &impl Fn(PathBuf) -> PathBuf,
) -> Result<Vec<SecretSource>, String> {
    let one = |value: &toml::Value| -> Result<SecretSource, String> {
        let table = value
            .as_table()
            .ok_or("must be `{ env = \"VARIABLE\" }` or `{ file = \"path\" }`")?;
        match (table.get("env"), table.get("file"), table.len()) {
            (Some(toml::Value::String(var)), None, 1) => Ok(SecretSource::Env(var.clone())),
            (None, Some(toml::Value::String(file)), 1) => Ok(SecretSource::File(anchor(file.into()))),
            _ => Err("must be `{ env = \"VARIABLE\" }` or `{ file = \"path\" }` (exactly one key; values are never written in weir.toml)".into()),
        }
    };
    match value {
        toml::Value::Array(items) if !items.is_empty() => items.iter().map(one).collect(),
        toml::Value::Array(_) => Err("lists at least one source".into()),
        other => Ok(vec![one(other)?]),
    }
}

fn resolve_flow(
    id: FlowId,
    raw: RawFlow,
    connections: &BTreeMap<ConnectionId, ConnectionConfig>,
    anchor: &impl Fn(PathBuf) -> PathBuf,
    invalid: &impl Fn(String, String) -> ConfigError,
) -> Result<FlowConfig, ConfigError> {
    let key = |k: &str| format!("flows.{id}.{k}");
    let known = |name: &str, k: &str| -> Result<ConnectionId, ConfigError> {
        ConnectionId::new(name)
            .ok()
            .filter(|c| connections.contains_key(c))
            .ok_or_else(|| {
                let defined = connections.keys().map(|c| c.as_str());
                invalid(
                    key(k),
                    format!(
                        "= \"{name}\" names no connection{} (defined: {})",
                        crate::suggest::did_you_mean(name, defined.clone())
                            .map(|meant| format!("; did you mean `{meant}`?"))
                            .unwrap_or_default(),
                        defined.collect::<Vec<_>>().join(", ")
                    ),
                )
            })
    };
    let source = known(&raw.source, "source")?;
    if raw.stream.is_empty() {
        return Err(invalid(key("stream"), "is empty".into()));
    }
    let destination = match &raw.destination {
        toml::Value::String(s) if s == "store" => DestinationConfig::Store,
        toml::Value::Table(table) => {
            let connection = table.get("connection").and_then(|v| v.as_str());
            let stream = table.get("stream").and_then(|v| v.as_str());
            match (connection, stream, table.len()) {
                (Some(connection), Some(stream), 2) => DestinationConfig::Connection {
                    connection: known(connection, "destination.connection")?,
                    stream: stream.to_string(),
                },
                _ => {
                    return Err(invalid(
                        key("destination"),
                        "must be \"store\" or `{ connection = \"<name>\", stream = \"<stream>\" }`"
                            .into(),
                    ));
                }
            }
        }
        _ => {
            return Err(invalid(
                key("destination"),
                "must be \"store\" or `{ connection = \"<name>\", stream = \"<stream>\" }`".into(),
            ));
        }
    };
    let schedule = raw
        .schedule
        .map(|text| text.parse().map_err(|why| invalid(key("schedule"), why)))
        .transpose()?;
    let document = match (raw.mapping, raw.mapping_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                key("mapping_file"),
                "cannot be set together with `mapping`".into(),
            ));
        }
        (Some(table), None) => {
            Some(serde_json::to_value(&table).map_err(|e| invalid(key("mapping"), e.to_string()))?)
        }
        (None, Some(file)) => {
            let file = anchor(file);
            #[expect(
                clippy::disallowed_methods,
                reason = "its error names the file already, in the words users see"
            )]
            let text = std::fs::read_to_string(&file).map_err(|e| {
                invalid(
                    key("mapping_file"),
                    format!("= `{}` cannot be read: {e}", file.display()),
                )
            })?;
            Some(serde_json::from_str(&text).map_err(|e| {
                invalid(
                    key("mapping_file"),
                    format!("= `{}` is not JSON: {e}", file.display()),
                )
            })?)
        }
        (None, None) => None,
    };
    let mapping = document
        .map(|doc| {
            Mapping::parse(&doc)
                .map(std::sync::Arc::new)
                .map_err(|e| invalid(format!("{}.{}", key("mapping"), e.path), e.reason))
        })
        .transpose()?;
    let transforms = raw
        .transforms
        .into_iter()
        .map(|t| {
            Ok(TransformConfig {
                plugin: t.plugin,
                config: serde_json::to_value(&t.config)
                    .map_err(|e| invalid(key("transforms"), e.to_string()))?,
            })
        })
        .collect::<Result<_, ConfigError>>()?;
    let trigger = raw
        .trigger
        .map(|text| {
            super::Trigger::parse(&text).ok_or_else(|| {
                invalid(
                    key("trigger"),
                    format!("= \"{text}\" is not \"poll\", \"webhook\" or \"webhook+poll\""),
                )
            })
        })
        .transpose()?;
    let max_run_time = raw
        .max_run_time
        .map(|text| parse_duration(&text).map_err(|why| invalid(key("max_run_time"), why)))
        .transpose()?
        .unwrap_or(FlowConfig::DEFAULT_MAX_RUN_TIME);
    Ok(FlowConfig {
        max_run_time,
        trigger,
        id,
        source,
        stream: raw.stream,
        destination,
        schedule,
        enabled_by_default: raw.enabled.unwrap_or(true),
        mapping,
        transforms,
    })
}

/// `90s`, `5m`, `1h 30m`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("= \"{text}\" is not a duration like \"90s\" or \"5m\": {e}"))
        .and_then(|d| {
            if d.is_zero() {
                Err(format!("= \"{text}\" must be longer than zero"))
            } else {
                Ok(d)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/weir/weir.toml"), text)
    }

    const GOOD: &str = r#"
        plugins_dir = "plugins"
        [connections.acme]
        connector = "acme-crm"
        config = { base_url = "http://127.0.0.1:4010" }
        allowed_hosts = ["http://127.0.0.1:4010"]
        secrets.api_key = { env = "ACME_API_KEY" }
        secrets.webhook_secret = [{ env = "NEW" }, { file = "old.key" }]
        call_timeout = "30s"
        rate_limit = { requests_per_minute = 600, burst = 5, daily_quota = 10000, max_concurrent = 2 }

        [flows.contacts]
        source = "acme"
        stream = "contacts"
    "#;

    #[test]
    fn a_good_file_resolves_with_anchored_paths_and_defaults() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.plugins_dir, Path::new("/etc/weir/plugins"));
        assert_eq!(config.store.local_file(), Path::new("/etc/weir/weir.db"));
        assert_eq!(config.cache_dir, Path::new("/etc/weir/.weir-cache"));
        let acme = config.connection("acme").unwrap();
        assert_eq!(acme.config["base_url"], "http://127.0.0.1:4010");
        assert_eq!(acme.limits.deadline, Duration::from_secs(30));
        assert_eq!(acme.budget.per_second, 10.0);
        assert_eq!(
            (
                acme.budget.burst,
                acme.budget.daily_quota,
                acme.budget.max_concurrent
            ),
            (5, Some(10000), Some(2))
        );
        assert_eq!(
            acme.secrets["webhook_secret"],
            vec![
                SecretSource::Env("NEW".into()),
                SecretSource::File("/etc/weir/old.key".into())
            ]
        );
        assert_eq!(
            config.flow("contacts").unwrap().destination,
            DestinationConfig::Store
        );
    }

    #[test]
    fn a_connection_without_rate_limit_is_paced_at_the_default_ceiling() {
        let config = parse(&GOOD.replace(
            "rate_limit = { requests_per_minute = 600, burst = 5, daily_quota = 10000, max_concurrent = 2 }",
            "idle_timeout = \"2s\"\nmax_redirects = 3\nmax_response_header_kb = 16",
        ))
        .unwrap();
        let acme = config.connection("acme").unwrap();
        assert_eq!(acme.budget.per_second, DEFAULT_REQUESTS_PER_SECOND);
        assert_eq!(acme.http.idle_timeout, Duration::from_secs(2));
        assert_eq!(acme.http.max_redirects, 3);
        assert_eq!(acme.http.max_response_header_bytes, 16 << 10);
        let quota_only =
            parse(&GOOD.replace("requests_per_minute = 600, burst = 5, ", "")).unwrap();
        assert_eq!(
            quota_only.connection("acme").unwrap().budget.per_second,
            DEFAULT_REQUESTS_PER_SECOND,
            "a quota alone keeps the ceiling"
        );
    }

    #[test]
    fn unknown_keys_name_the_file_line_and_key() {
        let err = parse(&GOOD.replace("allowed_hosts", "alowed_hosts")).unwrap_err();
        let ConfigError::UnknownKey { at, key, expected } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(key, "alowed_hosts");
        assert!(at.starts_with("/etc/weir/weir.toml:6:"), "{at}");
        assert!(expected.contains("allowed_hosts"), "{expected}");
        assert_eq!(err.diagnostic().code, ErrorCode::ConfigUnknownKey);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (from, to, key) in [
            (
                "\"http://127.0.0.1:4010\"]",
                "\"127.0.0.1\"]",
                "connections.acme.allowed_hosts[0]",
            ),
            (
                "source = \"acme\"",
                "source = \"nope\"",
                "flows.contacts.source",
            ),
            (
                "{ env = \"ACME_API_KEY\" }",
                "\"literal-secret\"",
                "connections.acme.secrets.api_key",
            ),
            ("\"30s\"", "\"soon\"", "connections.acme.call_timeout"),
            (
                "requests_per_minute = 600",
                "requests_per_minute = 0",
                "connections.acme.rate_limit.requests_per_second",
            ),
            (
                "burst = 5",
                "burst = 0",
                "connections.acme.rate_limit.burst",
            ),
        ] {
            let err = parse(&GOOD.replace(from, to)).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { key: k, .. } if k == key),
                "{err}"
            );
        }
    }

    #[test]
    fn a_flows_max_run_time_defaults_to_an_hour_and_is_never_zero() {
        let contacts = |text: &str| {
            parse(text)
                .map(|config| config.flow("contacts").unwrap().max_run_time)
                .map_err(|e| e.to_string())
        };
        assert_eq!(contacts(GOOD), Ok(Duration::from_secs(3600)));
        let with = |value: &str| format!("{GOOD}        max_run_time = {value}\n");
        assert_eq!(contacts(&with("\"90m\"")), Ok(Duration::from_secs(5400)));
        for bad in ["\"0s\"", "\"forever\""] {
            let err = contacts(&with(bad)).unwrap_err();
            assert!(err.contains("flows.contacts.max_run_time"), "{err}");
        }
    }

    #[test]
    fn an_unknown_name_suggests_the_one_it_misspells_and_lists_what_exists() {
        let config = parse(GOOD).unwrap();
        let err = config.flow("contcts").unwrap_err().diagnostic();
        assert_eq!(err.code, ErrorCode::UnknownFlow);
        assert_eq!(
            err.hint.as_deref(),
            Some("did you mean `contacts`? defined flows: contacts")
        );
        let err = config.connection("acmee").unwrap_err().diagnostic();
        assert_eq!(
            err.hint.as_deref(),
            Some("did you mean `acme`? defined connections: acme")
        );
        let err = config.flow("invoices").unwrap_err().diagnostic();
        assert_eq!(err.hint.as_deref(), Some("defined flows: contacts"));
    }

    #[test]
    fn an_unknown_key_suggests_the_key_it_misspells() {
        let err = parse(&GOOD.replace("allowed_hosts", "alowed_hosts"))
            .unwrap_err()
            .diagnostic();
        let hint = err.hint.unwrap();
        assert!(
            hint.starts_with("did you mean `allowed_hosts`? keys allowed here: "),
            "{hint}"
        );
        let err = parse(&GOOD.replace("source = \"acme\"", "source = \"acm\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("names no connection; did you mean `acme`?"),
            "{err}"
        );
    }

    #[test]
    fn every_problem_of_a_file_is_reported_not_only_the_first() {
        let text = format!(
            "{GOOD}{}",
            r#"
        [connections.billing]
        connector = "billing"
        page_sise = 10

        [connections.erp]
        connector = "erp"
        call_timeout = "soon"

        [flows.invoices]
        source = "billing"
        stream = "invoices"

        [flows.orders]
        source = "erp"
        stream = "orders"

        [flows.deals]
        source = "acme"
        stream = "deals"
        schedule = "whenever"

        [flows.tickets]
        source = "helpdesk"
        stream = "tickets"

        [daemon]
        max_concurrent_runs = 0
        "#
        );
        let problems = Config::parse_all(Path::new("/etc/weir/weir.toml"), &text).unwrap_err();
        let keys: Vec<String> = problems
            .iter()
            .map(|p| match p {
                ConfigError::UnknownKey { key, .. } => format!("unknown {key}"),
                ConfigError::Invalid { key, .. } => key.clone(),
                other => panic!("{other}"),
            })
            .collect();
        // Flows of the connections that are wrong themselves are not
        // reported again.
        assert_eq!(
            keys,
            [
                "unknown page_sise",
                "connections.erp.call_timeout",
                "flows.deals.schedule",
                "flows.tickets.source",
                "daemon.max_concurrent_runs",
            ]
        );
        let first = Config::parse(Path::new("/etc/weir/weir.toml"), &text).unwrap_err();
        assert!(matches!(first, ConfigError::UnknownKey { .. }), "{first}");
    }
}
