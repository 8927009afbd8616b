use std::sync::Arc;

use serde::Serialize;

use super::secrets::secret_sources;
use super::{Tenant, TenantConnection};
use crate::config::{Config, ConnectionConfig, DestinationConfig, FlowConfig, NotConnected};
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::ids::{ConnectionId, ConnectorName, FlowId};
use crate::mapping::Mapping;
use crate::schedule::Schedule;
use crate::suggest::listed;

/// Something wrong in a tenant's settings, with where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TenantError {
    /// Where, e.g. `flows.contacts.mapping.fields[2].format`.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl TenantError {
    pub(crate) fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The user-facing form.
    pub fn diagnostic(&self, tenant: &str) -> Diagnostic {
        Diagnostic::new(ErrorCode::TenantInvalid, format!("tenant `{tenant}`: {self}"))
            .with_hint("fix the tenant's settings (admin API or `weir tenants set`); the names must match weir.toml")
    }
}

/// One tenant's flow, resolved against the integration.
#[derive(Debug, Clone)]
pub struct ResolvedFlow {
    /// The flow, with names scoped to the tenant.
    pub flow: FlowConfig,
    /// Its source connection, scoped.
    pub source: ConnectionConfig,
    /// Its destination connection, scoped, if it writes to one.
    pub destination: Option<ConnectionConfig>,
    /// Whether it is on for this tenant.
    pub enabled: bool,
    /// Connector versions the tenant is pinned to, by connector name.
    pub pins: std::collections::BTreeMap<ConnectorName, String>,
}

impl ResolvedFlow {
    /// The connections it uses that the tenant has not connected; it never
    /// runs while there is one.
    pub fn not_connected(&self) -> impl Iterator<Item = &NotConnected> {
        std::iter::once(&self.source)
            .chain(self.destination.as_ref())
            .filter_map(|c| c.not_connected.as_ref())
    }

    /// Whether it may run: the tenant has its own credentials for every
    /// connection it uses (or they are shared), else why not.
    pub fn ensure_connected(&self) -> Result<(), Diagnostic> {
        match self.not_connected().next() {
            Some(missing) => Err(missing.diagnostic()),
            None => Ok(()),
        }
    }

    /// A flow of `weir.toml` run as it is, outside any tenant.
    pub fn untenanted(config: &Config, flow: &FlowConfig) -> Self {
        Self {
            source: config.connections[&flow.source].clone(),
            destination: match &flow.destination {
                DestinationConfig::Store => None,
                DestinationConfig::Connection { connection, .. } => {
                    Some(config.connections[connection].clone())
                }
            },
            enabled: true,
            pins: Default::default(),
            flow: flow.clone(),
        }
    }
}
/// Checks every setting of a tenant against the integration.
pub fn validate(config: &Config, tenant: &Tenant) -> Result<(), TenantError> {
    for (name, connection) in &tenant.connections {
        let template = template_connection(config, name.as_str())?;
        scope_connection(config, tenant, template, Some(connection))?;
    }
    for name in tenant.flows.keys() {
        let id = Some(name.clone())
            .filter(|id| config.flows.contains_key(id))
            .ok_or_else(|| {
                TenantError::new(
                    format!("flows.{name}"),
                    format!(
                        "weir.toml has no flow `{name}` (it has: {})",
                        listed(config.flows.keys())
                    ),
                )
            })?;
        resolve_flow(config, tenant, &id)?;
    }
    Ok(())
}

/// A tenant's instance of a flow of the integration.
pub fn resolve_flow(
    config: &Config,
    tenant: &Tenant,
    flow: &FlowId,
) -> Result<ResolvedFlow, TenantError> {
    let template = config
        .flows
        .get(flow)
        .ok_or_else(|| TenantError::new(format!("flows.{flow}"), "weir.toml has no such flow"))?;
    let choices = tenant.flows.get(flow.as_str()).cloned().unwrap_or_default();
    let at = |key: &str| format!("flows.{flow}.{key}");
    let connection = |id: &ConnectionId| {
        let template = &config.connections[id];
        scope_connection(
            config,
            tenant,
            template,
            tenant.connections.get(id.as_str()),
        )
    };
    let source = connection(&template.source)?;
    let destination = match &template.destination {
        DestinationConfig::Store => None,
        DestinationConfig::Connection { connection: id, .. } => Some(connection(id)?),
    };
    let mut scoped = template.clone();
    scoped.id = tenant.id.scoped_flow(flow);
    scoped.source = source.id.clone();
    if let (DestinationConfig::Connection { connection, .. }, Some(destination)) =
        (&mut scoped.destination, &destination)
    {
        *connection = destination.id.clone();
    }
    if let Some(schedule) = &choices.schedule {
        scoped.schedule = Some(
            schedule
                .parse::<Schedule>()
                .map_err(|why| TenantError::new(at("schedule"), why))?,
        );
    }
    if let Some(document) = &choices.mapping {
        let mapping = Mapping::parse(document)
            .map_err(|e| TenantError::new(format!("{}.{}", at("mapping"), e.path), e.reason))?;
        scoped.mapping = Some(Arc::new(mapping));
    }
    Ok(ResolvedFlow {
        pins: tenant.pins.clone(),
        enabled: choices.enabled.unwrap_or(template.enabled_by_default),
        flow: scoped,
        source,
        destination,
    })
}

/// A tenant's instance of a connection of the integration.
pub fn resolve_connection(
    config: &Config,
    tenant: &Tenant,
    name: &str,
) -> Result<ConnectionConfig, TenantError> {
    let template = template_connection(config, name)?;
    scope_connection(config, tenant, template, tenant.connections.get(name))
}

/// The integration's connection `name`, which a tenant's settings refer to.
fn template_connection<'c>(
    config: &'c Config,
    name: &str,
) -> Result<&'c ConnectionConfig, TenantError> {
    ConnectionId::new(name)
        .ok()
        .and_then(|id| config.connections.get(&id))
        .ok_or_else(|| {
            TenantError::new(
                format!("connections.{name}"),
                format!(
                    "weir.toml has no connection `{name}` (it has: {})",
                    listed(config.connections.keys())
                ),
            )
        })
}

/// The integration's connection with the tenant's config merged in and its
/// secrets, under the tenant-scoped name.
fn scope_connection(
    config: &Config,
    tenant: &Tenant,
    template: &ConnectionConfig,
    settings: Option<&TenantConnection>,
) -> Result<ConnectionConfig, TenantError> {
    let mut scoped = template.clone();
    scoped.id = tenant.id.scoped_connection(&template.id);
    if !template.shared_credentials {
        scoped.secrets.clear();
    }
    if let Some(settings) = settings {
        for (key, value) in &settings.config {
            merge(&mut scoped.config, key, value.clone());
        }
        for (name, value) in &settings.secrets {
            let sources = secret_sources(config, tenant, template.id.as_str(), name, value)
                .map_err(|why| {
                    TenantError::new(format!("connections.{}.secrets.{name}", template.id), why)
                })?;
            scoped.secrets.insert(name.clone(), sources);
        }
    }
    scoped.not_connected = NotConnected::check(&tenant.id, template, &scoped);
    Ok(scoped)
}

fn merge(target: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    if !target.is_object() {
        *target = serde_json::Value::Object(Default::default());
    }
    let object = target.as_object_mut().expect("made an object");
    match (object.get_mut(key), value) {
        (Some(existing @ serde_json::Value::Object(_)), serde_json::Value::Object(overrides)) => {
            for (k, v) in overrides {
                merge(existing, &k, v);
            }
        }
        (_, value) => {
            object.insert(key.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::capability::SecretSource;
    use crate::ids::TenantId;

    fn config() -> Config {
        Config::parse(
            Path::new("/weir/weir.toml"),
            r#"
            [connections.acme]
            connector = "acme-crm"
            config = { base_url = "https://api.acme.example", options = { page = 10, region = "us" } }
            allowed_hosts = ["https://api.acme.example"]
            secrets.api_key = { env = "DEFAULT_KEY" }

            [flows.contacts]
            source = "acme"
            stream = "contacts"
            schedule = "every 15m"
            enabled = false
            "#,
        )
        .unwrap()
    }

    fn tenant(json: serde_json::Value) -> Tenant {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_tenant_scopes_names_and_overrides_what_it_sets() {
        let config = config();
        let t = tenant(serde_json::json!({
            "id": "customer-42",
            "connections": { "acme": {
                "config": { "options": { "region": "eu" } },
                "secrets": { "api_key": { "env": "CUSTOMER_42_KEY" } }
            }},
            "flows": { "contacts": { "enabled": true, "schedule": "every 5m" } }
        }));
        validate(&config, &t).unwrap();
        let resolved = resolve_flow(&config, &t, &FlowId::new("contacts").unwrap()).unwrap();
        assert!(resolved.enabled);
        assert_eq!(resolved.flow.id.as_str(), "customer-42.contacts");
        assert_eq!(resolved.source.id.as_str(), "customer-42.acme");
        assert_eq!(resolved.flow.source, resolved.source.id);
        assert_eq!(
            resolved.source.config["options"],
            serde_json::json!({"page": 10, "region": "eu"})
        );
        assert_eq!(
            resolved.source.config["base_url"],
            "https://api.acme.example"
        );
        assert_eq!(
            resolved.source.secrets["api_key"],
            vec![SecretSource::Env("CUSTOMER_42_KEY".into())]
        );
        assert_eq!(resolved.flow.schedule.unwrap().to_string(), "every 5m");
    }

    #[test]
    fn names_in_tenant_settings_are_checked_where_they_come_in() {
        let parsed = serde_json::from_value::<Tenant>(serde_json::json!({
            "id": "t1",
            "flows": { "not a name": { "enabled": true } }
        }));
        let err = parsed.unwrap_err().to_string();
        assert!(err.contains("not a name"), "{err}");

        let id = TenantId::new("t1").unwrap();
        let refused = crate::tenant::apply(
            &config(),
            Some(Tenant::new(id.clone())),
            &id,
            crate::tenant::TenantChange::Enable("no/such".into()),
        )
        .unwrap_err()
        .diagnostic("t1");
        assert_eq!(refused.code, ErrorCode::TenantInvalid);
        assert!(
            refused.message.contains("flows.no/such"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn defaults_come_from_weir_toml_but_its_credentials_never_do() {
        let config = config();
        let t = Tenant::new(TenantId::new("t1").unwrap());
        let resolved = resolve_flow(&config, &t, &FlowId::new("contacts").unwrap()).unwrap();
        assert!(!resolved.enabled);
        assert_eq!(
            resolved.flow.schedule.as_ref().unwrap().to_string(),
            "every 15m"
        );
        assert_eq!(
            resolved.source.config["base_url"],
            "https://api.acme.example"
        );
        assert!(resolved.source.secrets.is_empty(), "no secret is inherited");
        let missing: Vec<_> = resolved.not_connected().collect();
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].connection.as_str(), "acme");
        assert_eq!(missing[0].missing, vec!["api_key".to_string()]);
        let refused = resolved.ensure_connected().unwrap_err();
        assert_eq!(refused.code, ErrorCode::NotConnected);
        assert!(
            refused
                .hint
                .unwrap()
                .contains("weir tenants connect t1 acme")
        );
    }

    #[test]
    fn a_tenant_missing_one_of_the_templates_secrets_is_not_connected() {
        let config = Config::parse(
            Path::new("/weir/weir.toml"),
            r#"
            [connections.acme]
            connector = "acme-crm"
            secrets.api_key = { env = "DEFAULT_KEY" }
            secrets.webhook_secret = { env = "DEFAULT_HOOK" }

            [flows.contacts]
            source = "acme"
            stream = "contacts"
            "#,
        )
        .unwrap();
        let t = tenant(serde_json::json!({
            "id": "t1",
            "connections": { "acme": { "secrets": { "api_key": { "env": "T1_KEY" } } } }
        }));
        let resolved = resolve_flow(&config, &t, &FlowId::new("contacts").unwrap()).unwrap();
        let missing: Vec<_> = resolved.not_connected().collect();
        assert_eq!(missing[0].missing, vec!["webhook_secret".to_string()]);
        assert!(!resolved.source.secrets.contains_key("webhook_secret"));
    }

    #[test]
    fn shared_credentials_lend_weir_toml_secrets_to_tenants_without_their_own() {
        let text = r#"
            [connections.acme]
            connector = "acme-crm"
            secrets.api_key = { env = "DEFAULT_KEY" }
            shared_credentials = true

            [flows.contacts]
            source = "acme"
            stream = "contacts"
            "#;
        let config = Config::parse(Path::new("/weir/weir.toml"), text).unwrap();
        let contacts = FlowId::new("contacts").unwrap();
        let bare = Tenant::new(TenantId::new("t1").unwrap());
        let resolved = resolve_flow(&config, &bare, &contacts).unwrap();
        resolved.ensure_connected().unwrap();
        assert_eq!(
            resolved.source.secrets["api_key"],
            vec![SecretSource::Env("DEFAULT_KEY".into())]
        );
        let own = tenant(serde_json::json!({
            "id": "t2",
            "connections": { "acme": { "secrets": { "api_key": { "env": "T2_KEY" } } } }
        }));
        let resolved = resolve_flow(&config, &own, &contacts).unwrap();
        assert_eq!(
            resolved.source.secrets["api_key"],
            vec![SecretSource::Env("T2_KEY".into())],
            "a tenant's own secret comes first"
        );
    }

    #[test]
    fn bad_settings_name_their_path() {
        let config = config();
        for (json, path) in [
            (
                serde_json::json!({"id": "t", "flows": {"contcts": {}}}),
                "flows.contcts",
            ),
            (
                serde_json::json!({"id": "t", "connections": {"nope": {}}}),
                "connections.nope",
            ),
            (
                serde_json::json!({"id": "t", "flows": {"contacts": {"schedule": "sometimes"}}}),
                "flows.contacts.schedule",
            ),
            (
                serde_json::json!({"id": "t", "flows": {"contacts": {"mapping": {"fields": [{"to": "/a", "from": "/b", "type": "colour"}]}}}}),
                "flows.contacts.mapping.fields[0]",
            ),
            (
                serde_json::json!({"id": "t", "connections": {"acme": {"secrets": {"api_key": "plain-text-key"}}}}),
                "connections.acme.secrets.api_key",
            ),
        ] {
            let err = validate(&config, &tenant(json)).unwrap_err();
            assert!(err.path.starts_with(path), "{err}");
        }
    }
}
