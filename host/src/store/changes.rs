//! Changes that arrive by two paths, polls and webhooks, merged by the
//! partner's record version: a newer version wins whatever path brought
//! it, an older one never does, a delete is a versioned tombstone (a late
//! update cannot bring the record back), and the same version with other
//! content is a conflict, counted and kept for operators.

use serde::Serialize;

use super::StoreError;
use crate::connector::Record;
use crate::ids::{ConnectionId, TenantId};

/// Which path brought a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// A scheduled read.
    Poll,
    /// A webhook delivery (with the record, or followed by a fetch).
    Webhook,
}

impl ChangeSource {
    /// Its name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Webhook => "webhook",
        }
    }
}

/// What a merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeOutcome {
    /// Records that were newer and are now stored.
    pub applied: Vec<Record>,
    /// Records at or below the stored version, ignored.
    pub stale: u64,
    /// Records at the stored version with other content.
    pub conflicts: u64,
}

/// Webhook coverage of one connection's stream over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// Distinct record versions seen by either path.
    pub changes: u64,
    /// Of those, seen by a poll with no webhook for that version or a newer
    /// one within the grace period.
    pub poll_only: u64,
    /// Seen by webhooks.
    pub by_webhook: u64,
    /// `1 - poll_only / changes`; none without changes.
    pub coverage: Option<f64>,
    /// When the latest webhook change was seen, ms since the Unix epoch.
    pub last_webhook_at_ms: Option<i64>,
    /// When a poll last found a change, ms since the Unix epoch.
    pub last_poll_change_at_ms: Option<i64>,
    /// Conflicts recorded in the window.
    pub conflicts: u64,
}

/// Changes from both paths, and the webhook endpoints they arrive at.
pub trait ChangeStore: Send + Sync {
    /// Merges records by version and notes them as seen via `source`.
    fn merge(
        &self,
        connection: &ConnectionId,
        stream: &str,
        records: &[Record],
        source: ChangeSource,
    ) -> Result<MergeOutcome, StoreError>;
    /// Coverage of `connection`'s `stream` for changes seen since `since_ms`,
    /// deciding only those seen before `now_ms - grace_ms`.
    fn coverage(
        &self,
        connection: &ConnectionId,
        stream: &str,
        since_ms: i64,
        grace_ms: i64,
        now_ms: i64,
    ) -> Result<Coverage, StoreError>;
    /// The endpoint token of a tenant's connection, created on first use.
    fn endpoint_token(&self, tenant: &TenantId, connection: &str) -> Result<String, StoreError>;
    /// Every endpoint: token, tenant, connection.
    fn endpoints(&self) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Notes a handshake answered on a tenant's connection.
    fn record_handshake(&self, handshake: &Handshake) -> Result<(), StoreError>;
    /// How many handshakes a tenant's connection answered since `since_ms`,
    /// and when the latest was.
    fn handshakes(
        &self,
        tenant: &TenantId,
        connection: &str,
        since_ms: i64,
    ) -> Result<(u64, Option<i64>), StoreError>;
}

/// A webhook handshake answered (a subscription check or challenge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The tenant.
    pub tenant: TenantId,
    /// The connection of weir.toml.
    pub connection: String,
    /// The request's method.
    pub method: String,
    /// The request's path below the endpoint.
    pub path: String,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
}
