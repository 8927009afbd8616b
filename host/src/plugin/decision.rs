//! An operator's decision on a connector: approve the version that waits
//! (or end a rollback), or roll back to the approved version before the
//! serving one. The admin API and `weir plugins approve|rollback` without a
//! daemon both come here, and the store keeps the decision, so every later
//! load (a restart, `weir sync`) honours it.

use std::sync::Arc;

use super::PluginRegistry;
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::store::PluginLedger;

/// What an operator decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Serve the version that waits, or the file's version after a rollback.
    Approve,
    /// Serve the approved version before the serving one.
    Rollback,
}

impl Decision {
    /// `approve` or `rollback`, as in the command and the API path.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Rollback => "rollback",
        }
    }
}

/// Why a decision was not taken.
#[derive(Debug)]
pub enum Refused {
    /// Nothing to approve, or nothing older to roll back to.
    NothingTo(Diagnostic),
    /// The store could not keep the decision; nothing changed.
    Store(Diagnostic),
}

impl Refused {
    /// The user-facing form.
    pub fn into_diagnostic(self) -> Diagnostic {
        match self {
            Self::NothingTo(d) | Self::Store(d) => d,
        }
    }
}

/// `registry` after `decision` on connector `name`, recorded in `ledger`
/// before it is returned: a decision is in force only once it is durable.
pub async fn decide(
    registry: &PluginRegistry,
    decision: Decision,
    name: &str,
    ledger: &Arc<dyn PluginLedger>,
) -> Result<PluginRegistry, Refused> {
    let next = match decision {
        Decision::Approve => registry.approve(name),
        Decision::Rollback => registry.rollback(name),
    };
    let Some(next) = next else {
        let why = match (decision, registry.get(name)) {
            (_, None) => "is not loaded".to_string(),
            (Decision::Approve, Some(_)) => {
                "has no version waiting for approval, and no rollback in force to end".into()
            }
            (Decision::Rollback, Some(serving)) => format!(
                "has no approved version older than {} kept to roll back to",
                serving.label()
            ),
        };
        return Err(Refused::NothingTo(
            Diagnostic::new(
                ErrorCode::ConnectorNotLoaded,
                format!("plugin `{name}` {why}"),
            )
            .with_hint("`weir plugins` (`GET /plugins`) lists what serves, what waits and the versions kept"),
        ));
    };
    next.record(ledger.clone(), name)
        .await
        .map_err(|e| Refused::Store(e.diagnostic()))?;
    Ok(next)
}
