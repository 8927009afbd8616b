//! The file's shape, exactly: every table refuses keys it does not know.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub plugins_dir: Option<PathBuf>,
    pub store: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    #[serde(default)]
    pub connections: BTreeMap<String, RawConnection>,
    #[serde(default)]
    pub flows: BTreeMap<String, RawFlow>,
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
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|err| {
            let location = err
                .span()
                .map(|span| {
                    let line = text[..span.start].matches('\n').count() + 1;
                    let column =
                        span.start - text[..span.start].rfind('\n').map_or(0, |n| n + 1) + 1;
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
        })
    }
}
