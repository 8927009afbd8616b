//! A tenant's credentials are its own. `weir.toml`'s connection is a
//! template: a tenant inherits its config, never its secrets, unless the
//! connection says `shared_credentials = true`. A tenant's connection that
//! lacks a secret the template names is *not connected*: it is never
//! opened, so none of its flows reaches the partner until the tenant
//! connects it.

use serde::Serialize;

use super::ConnectionConfig;
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::ids::{ConnectionId, TenantId};

/// A tenant's connection without its own credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotConnected {
    /// The tenant.
    pub tenant: TenantId,
    /// The connection of `weir.toml`.
    pub connection: ConnectionId,
    /// The secrets `weir.toml`'s connection names that the tenant has not
    /// given.
    pub missing: Vec<String>,
}

impl NotConnected {
    /// What a tenant's instance of `template` lacks, given the secrets it
    /// has (its own, or the template's when they are shared); none when it
    /// is connected.
    pub(crate) fn check(
        tenant: &TenantId,
        template: &ConnectionConfig,
        scoped: &ConnectionConfig,
    ) -> Option<Self> {
        let missing: Vec<String> = template
            .secrets
            .keys()
            .filter(|name| !scoped.secrets.contains_key(*name))
            .cloned()
            .collect();
        (!missing.is_empty()).then(|| Self {
            tenant: tenant.clone(),
            connection: template.id.clone(),
            missing,
        })
    }
}

impl Diagnose for NotConnected {
    /// The user-facing form, with how to connect.
    fn diagnostic(&self) -> Diagnostic {
        let (tenant, connection) = (&self.tenant, &self.connection);
        let missing = self
            .missing
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let example = self
            .missing
            .iter()
            .map(|m| format!("\"{m}\": {{\"value\": \"...\"}}"))
            .collect::<Vec<_>>()
            .join(", ");
        Diagnostic::new(
            ErrorCode::NotConnected,
            format!(
                "tenant `{tenant}` has not connected `{connection}`: it has no {missing} of its own, and the secrets of weir.toml's `{connection}` are not shared with tenants"
            ),
        )
        .with_hint(format!(
            "connect it with `weir tenants connect {tenant} {connection} --secrets '{{{example}}}'` or `PUT /tenants/{tenant}/connections/{connection}` on the admin API; to let every tenant use weir.toml's credentials, set `shared_credentials = true` in `[connections.{connection}]`"
        ))
    }
}
