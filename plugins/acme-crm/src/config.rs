//! The connection's configuration: parsed, then checked, once per call.

use serde::Deserialize;
use serde_json::{Value, json};
use weir_sdk::http::Request;
use weir_sdk::webhook::StandardWebhooks;

/// The secret holding the API key, sent as `X-Api-Key`.
pub const API_KEY: &str = "api_key";

/// The secret the partner signs webhooks with.
pub const WEBHOOK_SECRET: &str = "webhook_secret";

/// The largest page Acme CRM serves.
const MAX_PAGE_SIZE: u32 = 1000;

/// A checked configuration: a config that parses but holds a bad value
/// fails as ``config: base_url must start with http:// or https://...``.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct AcmeConfig {
    /// Without a trailing slash.
    base_url: String,
    pub page_size: u32,
    pub start_date: Option<String>,
    /// How deliveries are signed: with the `webhook_secret` secret, or
    /// with a key pair whose public key the config holds.
    pub webhooks: StandardWebhooks,
}

/// The config as the operator wrote it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    base_url: String,
    #[serde(default = "default_page_size")]
    page_size: u32,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    webhook_public_key: Option<String>,
}

fn default_page_size() -> u32 {
    MAX_PAGE_SIZE
}

impl TryFrom<RawConfig> for AcmeConfig {
    type Error = String;

    fn try_from(raw: RawConfig) -> Result<Self, String> {
        let base_url = raw.base_url.trim_end_matches('/');
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(format!(
                "base_url must start with https:// or http://, got `{}`",
                raw.base_url
            ));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&raw.page_size) {
            return Err(format!(
                "page_size must be from 1 to {MAX_PAGE_SIZE}, got {}",
                raw.page_size
            ));
        }
        if let Some(start_date) = &raw.start_date {
            weir_sdk::time::rfc3339_micros(start_date).map_err(|_| {
                format!("start_date must be an RFC 3339 timestamp like 2024-01-01T00:00:00Z, got `{start_date}`")
            })?;
        }
        let webhooks = match &raw.webhook_public_key {
            None => StandardWebhooks::new(WEBHOOK_SECRET),
            Some(key) => StandardWebhooks::ed25519(key).map_err(|_| {
                format!("webhook_public_key must be `whpk_` and the base64 of a 32-byte Ed25519 public key, got `{key}`")
            })?,
        };
        Ok(Self {
            base_url: base_url.to_owned(),
            page_size: raw.page_size,
            start_date: raw.start_date,
            webhooks,
        })
    }
}

impl AcmeConfig {
    /// The URL of `path` under `/v1/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.base_url)
    }
}

/// Authenticates a request: the host fills `X-Api-Key` from the secret.
pub fn authenticated(request: Request) -> Request {
    request.secret_header("x-api-key", API_KEY)
}

/// The JSON Schema of [`AcmeConfig`], for `Spec::config_schema`.
pub fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "required": ["base_url"],
        "properties": {
            "base_url": {
                "type": "string",
                "format": "uri",
                "description": "The Acme CRM API origin, e.g. https://api.acme.example",
                "examples": ["http://127.0.0.1:4010"]
            },
            "page_size": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PAGE_SIZE,
                "default": MAX_PAGE_SIZE,
                "description": "Records per request; the host may ask for fewer"
            },
            "start_date": {
                "type": "string",
                "format": "date-time",
                "description": "Only sync records updated at or after this time (RFC 3339)"
            },
            "webhook_public_key": {
                "type": "string",
                "pattern": "^whpk_",
                "description": "When the webhook subscription signs with a key pair (Standard Webhooks v1a): its public key, whpk_...; otherwise deliveries are checked with the webhook_secret secret"
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<AcmeConfig, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_fill_in_and_the_slash_goes() {
        let config = parse(r#"{"base_url":"http://127.0.0.1:4010/"}"#).unwrap();
        assert_eq!(config.url("contacts"), "http://127.0.0.1:4010/v1/contacts");
        assert_eq!(config.page_size, 1000);
        assert_eq!(config.start_date, None);
    }

    #[test]
    fn bad_values_are_refused_with_the_value() {
        for (json, message) in [
            (
                r#"{"base_url":"ftp://x"}"#,
                "base_url must start with https:// or http://, got `ftp://x`",
            ),
            (
                r#"{"base_url":"http://x","page_size":0}"#,
                "page_size must be from 1 to 1000, got 0",
            ),
            (
                r#"{"base_url":"http://x","start_date":"2024"}"#,
                "start_date must be an RFC 3339",
            ),
            (
                r#"{"base_url":"http://x","webhook_public_key":"whpk_c2hvcnQ="}"#,
                "webhook_public_key must be `whpk_` and the base64 of a 32-byte",
            ),
            (
                r#"{"base_url":"http://x","base":"y"}"#,
                "unknown field `base`",
            ),
            (r#"{}"#, "missing field `base_url`"),
        ] {
            let error = parse(json).unwrap_err();
            assert!(error.starts_with(message), "{json}: {error}");
        }
    }
}
