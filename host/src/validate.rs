//! A configuration checked against the connectors it names, before any of
//! them is called: every problem at once, none found only when a run uses
//! it. Nothing here reaches a partner.

use crate::config::{Config, ConnectionConfig, DestinationConfig, FlowConfig};
use crate::connection::{Connection, ConnectionServices};
use crate::contract::ConnectorSpec;
use crate::diagnostic::{Diagnostic, ErrorCode};
use crate::ids::{ConnectionId, FlowId};
use crate::plugin::PluginRegistry;
use crate::runtime::Runtime;
use crate::suggest;

/// What a problem is about, so that a command can pick the ones that
/// concern what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A connection of `weir.toml`.
    Connection(ConnectionId),
    /// A flow of `weir.toml`.
    Flow(FlowId),
}

/// One problem of a configuration.
#[derive(Debug)]
pub struct Finding {
    /// What it is about.
    pub subject: Subject,
    /// Whether anything that uses it fails (an error) or only a feature
    /// that needs it may (a warning).
    pub severity: Severity,
    /// What is wrong, with its code and hint.
    pub diagnostic: Diagnostic,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// What uses it fails.
    Error,
    /// Only what needs it is refused, when used.
    Warning,
}

/// Everything the connectors' specs say is wrong with `config`: a
/// connection whose connector is not loaded, a secret it defines that the
/// connector never declares (a typo such as `secrets.tokn`), a declared
/// secret it does not define, a flow's unknown or read-only stream, a
/// transform that is not loaded.
pub fn check_specs(config: &Config, registry: &PluginRegistry) -> Vec<Finding> {
    let mut findings = Vec::new();
    for connection in config.connections.values() {
        check_connection(connection, registry, &mut findings);
    }
    for flow in config.flows.values() {
        check_flow(flow, config, registry, &mut findings);
    }
    findings
}

/// `check_specs`, and what binding each connection finds as well: secrets
/// whose variable is not set or whose file cannot be read. Binds every
/// connection without calling its connector.
pub fn check_all(config: &Config, runtime: &Runtime, registry: &PluginRegistry) -> Vec<Finding> {
    let services = ConnectionServices::unrecorded();
    let mut findings = Vec::new();
    for connection in config.connections.values() {
        // Not a loaded connector: `check_specs` says so, with a guess.
        let connector = registry
            .get(connection.connector.as_str())
            .is_some_and(|plugin| plugin.spec().is_some());
        if connector
            && let Err(diagnostic) = Connection::open(runtime, registry, connection, &services)
        {
            findings.push(Finding {
                subject: Subject::Connection(connection.id.clone()),
                severity: Severity::Error,
                diagnostic,
            });
        }
    }
    findings.extend(check_specs(config, registry));
    findings
}

impl Finding {
    /// Whether it concerns a flow: the flow's own, or one of the
    /// connections it reads from or writes to.
    pub fn concerns(&self, flow: &FlowConfig) -> bool {
        match &self.subject {
            Subject::Flow(id) => *id == flow.id,
            Subject::Connection(id) => {
                *id == flow.source
                    || matches!(&flow.destination, DestinationConfig::Connection { connection, .. } if connection == id)
            }
        }
    }
}

fn check_connection(
    connection: &ConnectionConfig,
    registry: &PluginRegistry,
    findings: &mut Vec<Finding>,
) {
    let id = &connection.id;
    let mut report = |severity, diagnostic| {
        findings.push(Finding {
            subject: Subject::Connection(id.clone()),
            severity,
            diagnostic,
        })
    };
    let Some(plugin) = registry.get(connection.connector.as_str()) else {
        report(Severity::Error, not_loaded(registry, connection));
        return;
    };
    let Some(spec) = plugin.spec() else {
        report(
            Severity::Error,
            Diagnostic::new(
                ErrorCode::ConnectorNotLoaded,
                format!(
                    "connection `{id}` uses `{}`, which is a transform plugin, not a connector",
                    plugin.name
                ),
            )
            .with_hint(format!("name a connector in `connections.{id}.connector`")),
        );
        return;
    };
    let declared = || spec.secrets.iter().map(|s| s.name.as_str());
    for name in connection.secrets.keys() {
        if declared().any(|d| d == name) {
            continue;
        }
        let listing = match declared().collect::<Vec<_>>() {
            none if none.is_empty() => "it declares none: remove the key".to_string(),
            some => format!("it declares: {}", some.join(", ")),
        };
        report(
            Severity::Error,
            Diagnostic::new(
                ErrorCode::ConfigInvalid,
                format!(
                    "`connections.{id}.secrets.{name}` is a secret connector `{}` never uses",
                    plugin.label()
                ),
            )
            .with_hint(suggest::hint(name, declared(), listing)),
        );
    }
    for secret in &spec.secrets {
        if connection.secrets.contains_key(&secret.name) {
            continue;
        }
        let name = &secret.name;
        report(
            Severity::Warning,
            Diagnostic::new(
                ErrorCode::SecretMissing,
                format!(
                    "connector `{}` declares secret `{name}`, which connection `{id}` does not define: what needs it will be refused",
                    plugin.label(),
                ),
            )
            .with_hint(format!(
                "if you use what needs it, add `secrets.{name} = {{ env = \"VARIABLE\" }}` to `[connections.{id}]` in weir.toml; the connector says it is {}",
                secret.description
            )),
        );
    }
}

fn check_flow(
    flow: &FlowConfig,
    config: &Config,
    registry: &PluginRegistry,
    findings: &mut Vec<Finding>,
) {
    let spec_of = |id: &ConnectionId| {
        config
            .connections
            .get(id)
            .and_then(|c| registry.get(c.connector.as_str()))
            .and_then(|plugin| Some((plugin.spec()?, plugin.label())))
    };
    let mut report = |diagnostic| {
        findings.push(Finding {
            subject: Subject::Flow(flow.id.clone()),
            severity: Severity::Error,
            diagnostic,
        })
    };
    // A connection without a loaded connector is reported once, as such.
    if let Some((spec, label)) = spec_of(&flow.source)
        && spec.stream(&flow.stream).is_none()
    {
        report(unknown_stream(
            flow,
            "stream",
            &flow.source,
            &flow.stream,
            spec,
            &label,
        ));
    }
    if let DestinationConfig::Connection { connection, stream } = &flow.destination
        && let Some((spec, label)) = spec_of(connection)
    {
        match spec.stream(stream) {
            None => report(unknown_stream(
                flow,
                "destination.stream",
                connection,
                stream,
                spec,
                &label,
            )),
            Some(capabilities) if !capabilities.writable() => report(
                Diagnostic::new(
                    ErrorCode::ConnectorUnsupported,
                    format!(
                        "flow `{}` writes to stream `{stream}` of connection `{connection}`, which connector `{label}` declares read-only",
                        flow.id
                    ),
                )
                .with_hint(writable_hint(flow, spec)),
            ),
            Some(_) => {}
        }
    }
    for (i, transform) in flow.transforms.iter().enumerate() {
        let loaded = registry
            .get(&transform.plugin)
            .is_some_and(|plugin| plugin.spec().is_none());
        if !loaded {
            let transforms: Vec<&str> = registry
                .plugins()
                .filter(|p| p.spec().is_none())
                .map(|p| p.name.as_str())
                .collect();
            let listing = if transforms.is_empty() {
                "no transform plugin is loaded: copy its .wasm into the plugins directory".into()
            } else {
                format!("loaded transforms: {}", transforms.join(", "))
            };
            report(
                Diagnostic::new(
                    ErrorCode::ConnectorNotLoaded,
                    format!(
                        "`flows.{}.transforms[{i}].plugin` = \"{}\" names no loaded transform plugin",
                        flow.id, transform.plugin
                    ),
                )
                .with_hint(suggest::hint(
                    &transform.plugin,
                    transforms.iter().copied(),
                    listing,
                )),
            );
        }
    }
}

fn unknown_stream(
    flow: &FlowConfig,
    key: &str,
    connection: &ConnectionId,
    stream: &str,
    spec: &ConnectorSpec,
    label: &str,
) -> Diagnostic {
    let streams = || spec.streams.iter().map(|s| s.name.as_str());
    Diagnostic::new(
        ErrorCode::UnknownStream,
        format!(
            "`flows.{}.{key}` = \"{stream}\": connector `{label}` of connection `{connection}` has no such stream",
            flow.id
        ),
    )
    .with_hint(suggest::hint(
        stream,
        streams(),
        format_args!("its streams: {}", streams().collect::<Vec<_>>().join(", ")),
    ))
}

fn writable_hint(flow: &FlowConfig, spec: &ConnectorSpec) -> String {
    let writable: Vec<&str> = spec
        .streams
        .iter()
        .filter(|s| s.writable())
        .map(|s| s.name.as_str())
        .collect();
    if writable.is_empty() {
        format!(
            "its connector writes no stream: change `flows.{}.destination`",
            flow.id
        )
    } else {
        format!("its writable streams: {}", writable.join(", "))
    }
}

/// A connection's connector that no loaded plugin provides.
fn not_loaded(registry: &PluginRegistry, connection: &ConnectionConfig) -> Diagnostic {
    let connectors: Vec<&str> = registry
        .plugins()
        .filter(|p| p.spec().is_some())
        .map(|p| p.name.as_str())
        .collect();
    let failed = registry.failures().len();
    let listing = format!(
        "loaded connectors: {}{}; copy the connector's .wasm into the plugins directory or fix `connections.{}.connector`",
        if connectors.is_empty() {
            "none".to_string()
        } else {
            connectors.join(", ")
        },
        if failed > 0 {
            format!(" ({failed} file(s) failed to load: see `weir plugins`)")
        } else {
            String::new()
        },
        connection.id
    );
    Diagnostic::new(
        ErrorCode::ConnectorNotLoaded,
        format!(
            "connection `{}` uses connector `{}`, which no loaded plugin provides",
            connection.id, connection.connector
        ),
    )
    .with_hint(suggest::hint(
        connection.connector.as_str(),
        connectors.iter().copied(),
        listing,
    ))
}
