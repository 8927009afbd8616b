use std::collections::HashSet;

use serde::Serialize;

use crate::capability::HostRequirement;

/// How a stream's changes can be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeFeed {
    /// Whole stream on every read.
    FullOnly,
    /// Incremental by a growing cursor field.
    Cursor,
    /// Ordered change log.
    ChangeLog,
}

/// How a stream reports deletions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeleteFeed {
    /// Not reported.
    None,
    /// As `delete` records in reads.
    Tombstones,
    /// Only by webhooks.
    Webhooks,
}

/// How writes to a stream are deduplicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdempotencyStyle {
    /// Read-only stream.
    NotWritable,
    /// The partner deduplicates by idempotency key.
    Key,
    /// Earlier writes can be found by their key.
    Lookup,
    /// Writes are idempotent by nature.
    Natural,
}

/// What a stream supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamCapabilities {
    /// Stream name.
    pub name: String,
    /// How changes are followed.
    pub change_feed: ChangeFeed,
    /// How deletes are reported.
    pub deletes: DeleteFeed,
    /// How writes are deduplicated.
    pub idempotency: IdempotencyStyle,
    /// Whether record versions grow with every change.
    pub versioned: bool,
    /// Whether webhooks report changes.
    pub webhooks: bool,
}

impl StreamCapabilities {
    /// Whether records can be written to this stream.
    pub fn writable(&self) -> bool {
        self.idempotency != IdempotencyStyle::NotWritable
    }
}

/// A stream as discovered for one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamSchema {
    /// Stream name.
    pub name: String,
    /// A sentence.
    pub description: String,
    /// Primary key fields as JSON pointers.
    pub primary_key: Vec<String>,
    /// Cursor field as a JSON pointer.
    pub cursor_field: Option<String>,
    /// JSON Schema of a record, as JSON text.
    pub json_schema: String,
}

/// A secret a connector refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretSpec {
    /// Name used in `http` and `crypto` calls.
    pub name: String,
    /// What it is.
    pub description: String,
}

/// Who a connector is and what it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectorSpec {
    /// Stable kebab-case name.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// A sentence.
    pub description: String,
    /// JSON Schema of the connection config, as JSON text.
    pub config_schema: String,
    /// Origins it needs to reach.
    pub hosts: Vec<String>,
    /// Secrets it refers to.
    pub secrets: Vec<SecretSpec>,
    /// Streams and their capabilities.
    pub streams: Vec<StreamCapabilities>,
    /// Current checkpoint format.
    pub checkpoint_format: u32,
    /// Toolkit version it was built with.
    pub sdk_version: String,
}

/// Why a spec is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecProblem {
    /// Name is not kebab-case.
    #[error(
        "name `{0}` is not kebab-case (lowercase letters, digits and `-`, starting with a letter)"
    )]
    Name(String),
    /// Version is not semver.
    #[error("version `{0}` is not a semantic version such as `1.2.0`")]
    Version(String),
    /// Config schema is not JSON.
    #[error("config-schema is not valid JSON: {0}")]
    ConfigSchema(String),
    /// A host entry cannot be parsed.
    #[error("hosts entry `{entry}` is invalid: {reason}")]
    Host {
        /// The entry.
        entry: String,
        /// Why.
        reason: String,
    },
    /// Two streams share a name, or a name is empty.
    #[error("stream name `{0}` is empty or declared twice")]
    Stream(String),
    /// Two secrets share a name, or a name is empty.
    #[error("secret name `{0}` is empty or declared twice")]
    Secret(String),
}

impl ConnectorSpec {
    /// Checks what the host relies on; returns the first problem.
    pub fn validate(&self) -> Result<(), SpecProblem> {
        if !is_kebab_case(&self.name) {
            return Err(SpecProblem::Name(self.name.clone()));
        }
        if semver::Version::parse(&self.version).is_err() {
            return Err(SpecProblem::Version(self.version.clone()));
        }
        if let Err(err) = serde_json::from_str::<serde_json::Value>(&self.config_schema) {
            return Err(SpecProblem::ConfigSchema(err.to_string()));
        }
        for entry in &self.hosts {
            HostRequirement::parse(entry).map_err(|reason| SpecProblem::Host {
                entry: entry.clone(),
                reason,
            })?;
        }
        let mut streams = HashSet::new();
        for stream in &self.streams {
            if stream.name.is_empty() || !streams.insert(stream.name.as_str()) {
                return Err(SpecProblem::Stream(stream.name.clone()));
            }
        }
        let mut secrets = HashSet::new();
        for secret in &self.secrets {
            if secret.name.is_empty() || !secrets.insert(secret.name.as_str()) {
                return Err(SpecProblem::Secret(secret.name.clone()));
            }
        }
        Ok(())
    }

    /// The capabilities of one stream, if declared.
    pub fn stream(&self, name: &str) -> Option<&StreamCapabilities> {
        self.streams.iter().find(|s| s.name == name)
    }
}

fn is_kebab_case(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ConnectorSpec {
        ConnectorSpec {
            name: "acme-crm".into(),
            version: "1.0.0".into(),
            description: String::new(),
            config_schema: "{}".into(),
            hosts: vec!["config:/base_url".into(), "https://*.acme.example".into()],
            secrets: vec![SecretSpec {
                name: "api_key".into(),
                description: String::new(),
            }],
            streams: vec![],
            checkpoint_format: 1,
            sdk_version: "0.1.0".into(),
        }
    }

    #[test]
    fn a_good_spec_validates() {
        assert_eq!(spec().validate(), Ok(()));
    }

    #[test]
    fn bad_names_versions_and_hosts_are_named() {
        let mut s = spec();
        s.name = "Acme CRM".into();
        assert!(matches!(s.validate(), Err(SpecProblem::Name(_))));
        let mut s = spec();
        s.version = "v1".into();
        assert!(matches!(s.validate(), Err(SpecProblem::Version(_))));
        let mut s = spec();
        s.hosts = vec!["acme.example".into()];
        assert!(matches!(s.validate(), Err(SpecProblem::Host { .. })));
    }
}
