//! Every outbound request is recorded: who sent what where, what came back,
//! how long it took and how much budget was left.

use std::borrow::Cow;

use serde::Serialize;

use super::BudgetLeft;

/// One outbound request attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// When it started, ms since the Unix epoch.
    pub at_ms: i64,
    /// The connection it was sent for.
    pub connection: String,
    /// HTTP method.
    pub method: String,
    /// `scheme://host[:port]`.
    pub origin: String,
    /// The path, without the query (which may carry secrets).
    pub path: String,
    /// The response status, if one came.
    pub status: Option<u16>,
    /// `ok`, or why there was no response: `denied`, `rate-limited`,
    /// `timeout`, `transport`, `too-large`, `invalid`.
    pub outcome: Cow<'static, str>,
    /// Request body bytes.
    pub bytes_sent: u64,
    /// Response body bytes.
    pub bytes_received: u64,
    /// Duration in ms.
    pub duration_ms: u64,
    /// 1 for the first attempt, more for retries.
    pub attempt: u32,
    /// The connection's budget after this request.
    pub budget: BudgetLeft,
}

/// Where audit entries go; recording never blocks the request.
pub trait AuditSink: Send + Sync {
    /// Records one entry.
    fn record(&self, entry: AuditEntry);
}

/// Discards entries (for plugin loading, which sends nothing).
pub struct NoAudit;

impl AuditSink for NoAudit {
    fn record(&self, _entry: AuditEntry) {}
}
