//! The file's shape, exactly: every table refuses keys it does not know.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::ConfigError;

/// The whole file: its top-level settings, and the connections and flows
/// that parsed. Each connection and flow is parsed on its own, so that one
/// wrong table hides none of the problems of the others.
#[derive(Debug)]
pub struct RawConfig {
    pub top: RawTop,
    pub connections: BTreeMap<String, RawConnection>,
    pub flows: BTreeMap<String, RawFlow>,
    /// Connections whose table did not parse (their problem is reported):
    /// flows naming them are not reported again.
    pub unparsed_connections: BTreeSet<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTop {
    pub plugins_dir: Option<PathBuf>,
    pub store: Option<String>,
    pub cache_dir: Option<PathBuf>,
    // Parsed entry by entry (see `RawConfig`); named here as allowed keys.
    #[serde(default, rename = "connections")]
    _connections: BTreeMap<String, IgnoredAny>,
    #[serde(default, rename = "flows")]
    _flows: BTreeMap<String, IgnoredAny>,
    pub daemon: Option<RawDaemon>,
    pub admin: Option<RawAdmin>,
    pub ingress: Option<RawIngress>,
    pub secrets: Option<RawSecrets>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecrets {
    /// `{ env = "VAR" }` or `{ file = "path" }`.
    pub key: toml::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngress {
    pub listen: Option<String>,
    pub inbox: Option<PathBuf>,
    pub per_tenant_rate: Option<f64>,
    pub per_tenant_burst: Option<u32>,
    pub coverage_grace: Option<String>,
    pub silence_after: Option<String>,
    pub delivery_attempts: Option<u32>,
    pub retry_delay: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub max_concurrent_runs: Option<usize>,
    pub max_runs_per_connection: Option<usize>,
    pub failures_before_unhealthy: Option<u32>,
    pub shutdown_grace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<String>,
    /// `{ env = "VAR" }` or `{ file = "path" }`.
    pub token: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnection {
    pub connector: String,
    #[serde(default)]
    pub config: toml::Table,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// `name = { env = "VAR" }`, `{ file = "path" }`, or a list of those
    /// (newest first) during a rotation.
    #[serde(default)]
    pub secrets: BTreeMap<String, toml::Value>,
    pub shared_credentials: Option<bool>,
    pub call_timeout: Option<String>,
    pub memory_limit_mb: Option<u32>,
    pub page_size: Option<u32>,
    pub max_page_mb: Option<u32>,
    pub max_webhook_kb: Option<u32>,
    pub request_timeout: Option<String>,
    pub first_byte_timeout: Option<String>,
    pub max_response_mb: Option<u32>,
    pub idle_timeout: Option<String>,
    pub max_response_header_kb: Option<u32>,
    pub max_redirects: Option<u32>,
    pub rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub requests_per_second: Option<f64>,
    pub requests_per_minute: Option<f64>,
    pub burst: Option<u32>,
    pub daily_quota: Option<u64>,
    pub max_concurrent: Option<u32>,
    pub max_backoff: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlow {
    pub source: String,
    pub stream: String,
    /// `"store"` or `{ connection = "...", stream = "..." }`.
    #[serde(default = "store_destination")]
    pub destination: toml::Value,
    pub schedule: Option<String>,
    pub enabled: Option<bool>,
    /// A mapping document inline...
    pub mapping: Option<toml::Table>,
    /// ...or in a JSON file.
    pub mapping_file: Option<PathBuf>,
    #[serde(default)]
    pub transforms: Vec<RawTransform>,
    /// `poll`, `webhook` or `webhook+poll`.
    pub trigger: Option<String>,
    pub max_run_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransform {
    pub plugin: String,
    #[serde(default)]
    pub config: toml::Table,
}

fn store_destination() -> toml::Value {
    toml::Value::String("store".into())
}

impl RawConfig {
    /// The file's sections that parse, and the problems of those that do not
    /// (or only the syntax error, when the file is not TOML at all).
    pub fn parse(path: &Path, text: &str) -> (Option<Self>, Vec<ConfigError>) {
        let problem = |err: toml::de::Error| shape_error(path, text, err);
        let document = match DeTable::parse(text) {
            Ok(document) => document,
            Err(err) => return (None, vec![problem(err)]),
        };
        let mut problems = Vec::new();
        let mut sections: BTreeMap<String, Spanned<DeValue<'_>>> = BTreeMap::new();
        for (key, value) in document.get_ref().iter() {
            if matches!(key.get_ref().as_ref(), "connections" | "flows") {
                sections.insert(key.get_ref().to_string(), value.clone());
            }
        }
        let (span, root) = (document.span(), document.into_inner());
        let top = RawTop::deserialize(ValueDeserializer::from(Spanned::new(
            span,
            DeValue::Table(root),
        )))
        .map_err(|err| problems.push(problem(err)))
        .ok();
        let mut entries = |section: &str| match sections.remove(section).map(Spanned::into_inner) {
            Some(DeValue::Table(table)) => table
                .into_iter()
                .map(|(name, value)| (name.into_inner().into_owned(), value))
                .collect(),
            // Not a table: `RawTop` reported it.
            _ => Vec::new(),
        };
        let (raw_connections, raw_flows) = (entries("connections"), entries("flows"));
        let mut connections = BTreeMap::new();
        let mut unparsed_connections = BTreeSet::new();
        for (name, value) in raw_connections {
            match RawConnection::deserialize(ValueDeserializer::from(value)) {
                Ok(connection) => {
                    connections.insert(name, connection);
                }
                Err(err) => {
                    problems.push(problem(err));
                    unparsed_connections.insert(name);
                }
            }
        }
        let mut flows = BTreeMap::new();
        for (name, value) in raw_flows {
            match RawFlow::deserialize(ValueDeserializer::from(value)) {
                Ok(flow) => {
                    flows.insert(name, flow);
                }
                Err(err) => problems.push(problem(err)),
            }
        }
        let raw = top.map(|top| Self {
            top,
            connections,
            flows,
            unparsed_connections,
        });
        (raw, problems)
    }
}

/// A parser's complaint about the file's shape, located at `file:line:column`.
fn shape_error(path: &Path, text: &str, err: toml::de::Error) -> ConfigError {
    let location = err
        .span()
        .filter(|span| span.start <= text.len())
        .map(|span| {
            let line = text[..span.start].matches('\n').count() + 1;
            let column = span.start - text[..span.start].rfind('\n').map_or(0, |n| n + 1) + 1;
            format!(":{line}:{column}")
        })
        .unwrap_or_default();
    let message = err.message().to_string();
    let at = format!("{}{location}", path.display());
    match message.strip_prefix("unknown field ") {
        Some(rest) => ConfigError::UnknownKey {
            at,
            key: rest
                .split(',')
                .next()
                .unwrap_or(rest)
                .trim_matches('`')
                .to_string(),
            expected: rest
                .split_once("expected ")
                .map(|(_, e)| e.to_string())
                .unwrap_or_default(),
        },
        None => ConfigError::Syntax { at, message },
    }
}
