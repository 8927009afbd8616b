//! Identifiers of the things Weir manages. Each is its own type so that a
//! flow id can never be passed where a connection id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not a valid {kind} name: use 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit"
)]
pub struct InvalidId {
    kind: &'static str,
    value: String,
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        name_id!($(#[$doc])* $name, $kind, is_valid_name);
    };
    ($(#[$doc:meta])* $name:ident, $kind:literal, $valid:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a name.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                if $valid(&value) {
                    Ok(Self(value))
                } else {
                    Err(InvalidId { kind: $kind, value })
                }
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Maps keyed by the name are looked up by text: equality, order and
        // hash are the text's.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

name_id!(
    /// A connection: one partner account with its config, secrets and egress grant.
    ConnectionId,
    "connection"
);
name_id!(
    /// A flow: one source stream moved to one destination.
    FlowId,
    "flow"
);
name_id!(
    /// A connector's name as declared in its spec, e.g. `acme-crm`.
    ConnectorName,
    "connector"
);

name_id!(
    /// A tenant: one customer's installation of the integration. Tenant
    /// names never contain `.`, so `tenant.flow` names one tenant's flow
    /// unambiguously.
    TenantId,
    "tenant",
    is_valid_tenant_name
);

impl TenantId {
    /// The name of this tenant's instance of a flow: `tenant.flow`.
    pub fn scoped_flow(&self, flow: &FlowId) -> FlowId {
        FlowId(format!("{self}.{flow}"))
    }

    /// The name of this tenant's instance of a connection: `tenant.connection`.
    pub fn scoped_connection(&self, connection: &ConnectionId) -> ConnectionId {
        ConnectionId(format!("{self}.{connection}"))
    }
}

fn is_valid_tenant_name(value: &str) -> bool {
    is_valid_name(value) && !value.contains('.')
}

fn is_valid_name(value: &str) -> bool {
    let mut chars = value.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && value.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// One run of a flow, as numbered by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_the_documented_alphabet() {
        assert!(FlowId::new("contacts").is_ok());
        assert!(FlowId::new("acme.contacts-v2_b").is_ok());
        assert!(FlowId::new("9lives").is_ok());
    }

    #[test]
    fn tenant_names_have_no_dots() {
        assert!(TenantId::new("customer-42").is_ok());
        assert!(TenantId::new("acme.eu").is_err());
    }

    #[test]
    fn names_refuse_paths_spaces_and_empty() {
        for bad in ["", "-x", "a b", "a/b", "../x", &"x".repeat(65)] {
            let err = ConnectionId::new(bad).unwrap_err();
            assert!(err.to_string().contains("connection name"), "{err}");
        }
    }
}
