//! A resolved flow made ready to move records, the same way for every
//! caller (`weir sync`, the scheduler, webhooks, redeliveries): its
//! mapping and transforms, and where records go.

use std::sync::Arc;

use super::{Destination, Reshaper};
use crate::config::{self, ConnectionConfig, FlowConfig};
use crate::connection::{Connection, ConnectionServices};
use crate::diagnostic::Diagnostic;
use crate::plugin::PluginRegistry;
use crate::runtime::Runtime;
use crate::tenant::ResolvedFlow;

/// What opening a flow's connections and plugins needs of the host.
#[derive(Clone, Copy)]
pub struct Opener<'a> {
    /// The wasm runtime.
    pub runtime: &'a Runtime,
    /// The plugins runs use now.
    pub plugins: &'a PluginRegistry,
    /// Budgets and the egress log, shared by every connection.
    pub services: &'a ConnectionServices,
}

impl Opener<'_> {
    /// The flow's source connection, at the version its tenant pins, for
    /// reads from the partner.
    pub fn source(&self, resolved: &ResolvedFlow) -> Result<Arc<Connection>, Diagnostic> {
        self.connection(resolved, &resolved.source)
    }

    fn connection(
        &self,
        resolved: &ResolvedFlow,
        config: &ConnectionConfig,
    ) -> Result<Arc<Connection>, Diagnostic> {
        Connection::open_pinned(
            &resolved.pins,
            self.runtime,
            self.plugins,
            config,
            self.services,
        )
        .map(Arc::new)
    }
}

/// A flow ready to deliver records, wherever they come from (see
/// [`Feed`](super::Feed)).
pub struct Plan {
    /// The flow, as resolved for its tenant.
    pub flow: FlowConfig,
    /// Its mapping and transforms.
    pub reshaper: Reshaper,
    /// Where its records go; a destination connection is open.
    pub destination: Destination,
}

impl Plan {
    /// Opens the destination connection (at the version the tenant pins)
    /// and the transform plugins of a resolved flow.
    pub fn open(resolved: &ResolvedFlow, opener: &Opener<'_>) -> Result<Self, Diagnostic> {
        let destination = match (&resolved.flow.destination, &resolved.destination) {
            (config::DestinationConfig::Connection { stream, .. }, Some(connection)) => {
                Destination::Connection {
                    connection: opener.connection(resolved, connection)?,
                    stream: stream.clone(),
                }
            }
            _ => Destination::Store,
        };
        let reshaper = Reshaper::new(
            opener.runtime,
            opener.plugins,
            resolved.flow.mapping.clone(),
            &resolved.flow.transforms,
        )?;
        Ok(Self {
            flow: resolved.flow.clone(),
            reshaper,
            destination,
        })
    }

    /// Whether records merged into the store still have somewhere to go:
    /// a partner, or a reshaped copy kept per flow. Otherwise the merge
    /// itself delivered them.
    pub fn delivers_beyond_the_merge(&self) -> bool {
        self.destination.is_partner() || !self.reshaper.is_identity()
    }
}
