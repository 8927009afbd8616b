//! Changes to a tenant, shared by the admin API and the CLI: each change is
//! validated against the integration before anything is saved.

use std::str::FromStr;

use serde_json::Value;

use super::{Tenant, TenantConnection, TenantError, TenantFlow, validate};
use crate::config::Config;
use crate::diagnostic::{Diagnostic, ErrorCode};
use crate::ids::{InvalidId, TenantId};

/// One change to a tenant.
#[derive(Debug, Clone)]
pub enum TenantChange {
    /// Create it; refused if it exists (its settings would be lost).
    Create(Tenant),
    /// Create it, or replace all its settings.
    Replace(Tenant),
    /// Turn a flow on.
    Enable(String),
    /// Turn a flow off.
    Disable(String),
    /// Set a flow's schedule (none: back to weir.toml's).
    Schedule(String, Option<String>),
    /// Set a flow's mapping (none: back to weir.toml's).
    Mapping(String, Option<Value>),
    /// Set a connection's config and secrets.
    Connection(String, TenantConnection),
    /// Keep a connector at a version (none: follow the newest).
    Pin(String, Option<String>),
}

/// Why a change was not saved.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// No such tenant.
    #[error("no tenant `{0}`")]
    UnknownTenant(String),
    /// Creating a tenant that exists.
    #[error("tenant `{0}` already exists")]
    Exists(String),
    /// The change does not fit the integration.
    #[error("{0}")]
    Invalid(TenantError),
}

impl EditError {
    /// The user-facing form.
    pub fn diagnostic(&self, tenant: &str) -> Diagnostic {
        match self {
            Self::UnknownTenant(_) => Diagnostic::new(ErrorCode::UnknownTenant, self.to_string())
                .with_hint(
                    "`weir tenants list` shows the tenants; `weir tenants add <name>` creates one",
                ),
            Self::Exists(_) => Diagnostic::new(ErrorCode::TenantExists, self.to_string())
                .with_hint(format!(
                    "`weir tenants set {tenant} <file>` (or `PUT /tenants/{tenant}`) replaces its settings; `weir tenants remove {tenant}` removes it"
                )),
            Self::Invalid(error) => error.diagnostic(tenant),
        }
    }
}

/// A tenant's settings of flow `name`, created empty on first use.
fn flow_of<'t>(tenant: &'t mut Tenant, name: &str) -> Result<&'t mut TenantFlow, EditError> {
    Ok(tenant.flows.entry(name_of("flows", name)?).or_default())
}

/// `name` as the key of the tenant's map `map`: a name that is not one
/// is refused here, where it comes in.
fn name_of<K: FromStr<Err = InvalidId>>(map: &str, name: &str) -> Result<K, EditError> {
    K::from_str(name)
        .map_err(|e| EditError::Invalid(TenantError::new(format!("{map}.{name}"), e.to_string())))
}

/// Seals a tenant's secret values again with the first `[secrets] key`,
/// after a new key was put first (then the old keys can go); returns how
/// many were sealed again. A value that opens with none of the keys is
/// refused.
pub fn reseal(config: &Config, tenant: &mut Tenant) -> Result<u64, TenantError> {
    let resealed = super::secrets::reseal(config, tenant)?;
    if resealed > 0 {
        validate(config, tenant)?;
    }
    Ok(resealed)
}

/// The tenant `id` once `change` is applied to `current`, its settings as
/// stored (none: there is no such tenant), sealed and validated, ready to
/// save.
pub fn apply(
    config: &Config,
    current: Option<Tenant>,
    id: &TenantId,
    change: TenantChange,
) -> Result<Tenant, EditError> {
    let mut tenant = match (&change, current) {
        (TenantChange::Create(_), Some(_)) => return Err(EditError::Exists(id.to_string())),
        (TenantChange::Create(new) | TenantChange::Replace(new), _) => new.clone(),
        (_, Some(existing)) => existing,
        (_, None) => return Err(EditError::UnknownTenant(id.to_string())),
    };
    match change {
        TenantChange::Create(_) | TenantChange::Replace(_) => {}
        TenantChange::Enable(flow) => flow_of(&mut tenant, &flow)?.enabled = Some(true),
        TenantChange::Disable(flow) => flow_of(&mut tenant, &flow)?.enabled = Some(false),
        TenantChange::Schedule(flow, schedule) => flow_of(&mut tenant, &flow)?.schedule = schedule,
        TenantChange::Mapping(flow, mapping) => flow_of(&mut tenant, &flow)?.mapping = mapping,
        TenantChange::Connection(name, settings) => {
            let name = name_of("connections", &name)?;
            tenant.connections.insert(name, settings);
        }
        TenantChange::Pin(connector, Some(version)) => {
            tenant.pins.insert(name_of("pins", &connector)?, version);
        }
        TenantChange::Pin(connector, None) => {
            tenant.pins.remove(connector.as_str());
        }
    }
    if &tenant.id != id {
        return Err(EditError::Invalid(TenantError {
            path: "id".into(),
            reason: format!(
                "`{}` does not match the tenant being changed, `{id}`",
                tenant.id
            ),
        }));
    }
    super::secrets::seal_values(config, &mut tenant).map_err(EditError::Invalid)?;
    validate(config, &tenant).map_err(EditError::Invalid)?;
    Ok(tenant)
}
