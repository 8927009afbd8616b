//! Durable state behind narrow interfaces: records with the checkpoint that
//! covers them, runs, id links and dead letters. SQLite is the embedded
//! implementation; flows and connectors only see these traits, so another
//! backend (PostgreSQL for multi-host deployments) can be added beside it.

mod changes;
#[cfg(test)]
mod conformance;
mod presence;
mod schema;
mod sqlite;

use serde::Serialize;

pub use changes::{
    CHANGES_KEPT, COVERAGE_WINDOW, ChangeSource, ChangeStore, Coverage, Handshake, MergeDecision,
    MergeOutcome, StoredCopy, conflict_warning, decide,
};
pub use sqlite::SqliteStore;

use crate::capability::{AuditEntry, BudgetState};
use crate::config::StoreConfig;
use crate::contract::{Checkpoint, ConnectorError, Record};
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::ids::{ConnectionId, FlowId, RunId, TenantId};
use crate::tenant::{EditError, Tenant};

/// A store operation failed, in terms any backend can give.
#[derive(Debug, thiserror::Error)]
#[error("the store `{store}` failed: {source}")]
pub struct StoreError {
    /// Which store, as its user names it (for SQLite, the database file).
    pub store: String,
    /// What went wrong, for callers that branch on it.
    pub kind: StoreErrorKind,
    /// The backend's own error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// What went wrong with a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store cannot be opened, read or written: no such directory, no
    /// permission, a full disk.
    Unavailable,
    /// Another process held the store longer than an operation waits.
    Busy,
    /// What the store holds does not decode: written by another version,
    /// changed by hand, or a damaged file.
    Corrupt,
}

impl Diagnose for StoreError {
    /// The user-facing form, with code and hint.
    fn diagnostic(&self) -> Diagnostic {
        let hint = match self.kind {
            StoreErrorKind::Unavailable => {
                "check that the store's directory is writable and the disk not full (`store` in weir.toml)"
            }
            StoreErrorKind::Busy => {
                "another process (a `weir` command, or a tool with the database open) holds the store's write lock: try again once it is done"
            }
            StoreErrorKind::Corrupt => {
                "the store holds what this version of weir cannot read: run the version that wrote it, or restore a backup (`store` in weir.toml)"
            }
        };
        Diagnostic::new(ErrorCode::StoreUnavailable, self.to_string()).with_hint(hint)
    }
}

/// The raw records of a page, as the source gave them. They are always
/// kept, so that a changed mapping can be applied again without reading
/// the partner again.
pub struct SourcePage<'a> {
    /// Whose records.
    pub connection: &'a ConnectionId,
    /// Which stream.
    pub stream: &'a str,
    /// The records, in page order.
    pub records: &'a [Record],
}

/// What a flow delivered from a page, beyond the raw records.
pub enum Delivered<'a> {
    /// Nothing more: the raw records are the result (store destination, no
    /// reshaping).
    Raw,
    /// Reshaped records, kept per flow in the store.
    Mapped(&'a [Record]),
    /// Written to a partner: source keys now linked to the partner's ids.
    Written(&'a [IdLink]),
}

/// Finding the deletes of a stream that does not report them (its delete
/// feed is `none`): a read from scratch notes every record it sees, and
/// when its last page commits, the stored records it did not see (and that
/// nothing stored since it began) are deleted. A read interrupted by a
/// crash or shutdown carries on where it stopped, sweep included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sweep {
    /// The stream reports its deletes: nothing to find.
    #[default]
    Off,
    /// The stream does not report deletes; this page is one of a read.
    Track {
        /// When this page starts a read from scratch: when that read began,
        /// ms since the Unix epoch.
        began_at_ms: Option<i64>,
        /// The source has no more pages after this one.
        last_page: bool,
    },
}

/// One page made durable: raw records, what was delivered, what failed and
/// the checkpoint after it, in one transaction, with the run's progress.
pub struct PageCommit<'a> {
    /// The flow.
    pub flow: &'a FlowId,
    /// The source stream the checkpoint belongs to.
    pub stream: &'a str,
    /// The run.
    pub run: RunId,
    /// Where the next read starts.
    pub checkpoint: &'a Checkpoint,
    /// The raw records.
    pub source: SourcePage<'a>,
    /// What was delivered.
    pub delivered: Delivered<'a>,
    /// Records that could not be delivered, with why.
    pub dead_letters: &'a [DeadLetter],
    /// Whether to note the records as seen by a poll (webhook coverage).
    pub log_changes: bool,
    /// Whether the page is part of a read that finds deletes by absence.
    pub sweep: Sweep,
}

/// What a page commit changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PageOutcome {
    /// Records inserted or updated (deletes included).
    pub changed: u64,
    /// Records already stored at the same or a newer version.
    pub unchanged: u64,
    /// Records deleted because a read from scratch did not see them.
    pub swept: u64,
    /// Records that came with the stored version and other content.
    pub conflicts: u64,
}

/// A source record's counterpart at a destination partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdLink {
    /// Primary key at the source.
    pub source_key: String,
    /// The partner's id.
    pub external_id: String,
    /// The partner's version after the last write.
    pub version: Option<u64>,
    /// The key the last write used.
    pub idempotency_key: String,
}

/// Where on its way a record failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryFailure {
    /// The field mapping refused it.
    Mapping(String),
    /// A transform plugin refused it.
    Transform(ConnectorError),
    /// The destination partner refused it.
    Destination(ConnectorError),
}

impl DeliveryFailure {
    /// `mapping`, `transform` or `destination`.
    pub fn stage(&self) -> &'static str {
        match self {
            Self::Mapping(_) => "mapping",
            Self::Transform(_) => "transform",
            Self::Destination(_) => "destination",
        }
    }

    /// The reason, for people.
    pub fn reason(&self) -> String {
        match self {
            Self::Mapping(reason) => reason.clone(),
            Self::Transform(e) | Self::Destination(e) => e.to_string(),
        }
    }
}

/// A record that could not be delivered, kept with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Primary key at the source.
    pub source_key: String,
    /// The source's version of the record.
    pub version: Option<u64>,
    /// The raw record as JSON text.
    pub data: String,
    /// What refused it.
    pub failure: DeliveryFailure,
}

/// A stored dead letter.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterRecord {
    /// Its number.
    pub id: i64,
    /// The flow.
    pub flow: String,
    /// The run that produced it.
    pub run: RunId,
    /// Primary key at the source.
    pub source_key: String,
    /// The source's version of the record when it failed.
    pub version: Option<u64>,
    /// `mapping`, `transform` or `destination`.
    pub stage: String,
    /// Why.
    pub error: String,
    /// The raw record.
    pub data: String,
    /// When, ms since the Unix epoch.
    pub created_at_ms: i64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going: its process is alive.
    Running,
    /// Read everything there was.
    Succeeded,
    /// Stopped on an error; resumes from its last checkpoint.
    Failed,
    /// Paused by a rate limit; resumes from its last checkpoint.
    Paused,
    /// The process stopped before the run ended: a shutdown, or its
    /// process died (its end is then its last commit).
    Interrupted,
}

impl RunStatus {
    /// Its name in the store and in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Paused => "paused",
            Self::Interrupted => "interrupted",
        }
    }

    /// The status named `text`, if it is one.
    fn parse(text: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Paused,
            Self::Interrupted,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// A run as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Its number.
    pub id: RunId,
    /// The flow.
    pub flow: String,
    /// How it ended.
    pub status: RunStatus,
    /// Whether it started from scratch.
    pub full_refresh: bool,
    /// `name version` of the source connector.
    pub plugin: String,
    /// Start, ms since the Unix epoch.
    pub started_at_ms: i64,
    /// End, if it ended.
    pub finished_at_ms: Option<i64>,
    /// Pages committed.
    pub pages: u64,
    /// Records read from the source.
    pub records_read: u64,
    /// Records changed at the destination.
    pub records_written: u64,
    /// Records sent to the dead letters.
    pub records_failed: u64,
    /// Records that came with the stored version and other content (see
    /// `merge_conflicts`).
    pub conflicts: u64,
    /// Error code, if it failed.
    pub error_code: Option<String>,
    /// Error message, if it failed.
    pub error: Option<String>,
}

/// The end of a run, as reported by the runner.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// How it ended.
    pub status: RunStatus,
    /// The error's code and message, if any.
    pub error: Option<(String, String)>,
}

/// A stored checkpoint with its flow and stream.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointRecord {
    /// The flow.
    pub flow: String,
    /// The stream.
    pub stream: String,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The run that wrote it.
    pub run: Option<RunId>,
    /// When, ms since the Unix epoch.
    pub updated_at_ms: i64,
}

/// Checkpoints and the pages they cover, made durable together.
pub trait SyncStore: Send + Sync {
    /// The clock that times what this store records. A read from scratch
    /// takes its start from it, so its sweep compares times of one clock.
    fn clock(&self) -> &crate::clock::Clock;
    /// The checkpoint to resume a flow's stream from.
    fn checkpoint(&self, flow: &FlowId, stream: &str) -> Result<Option<Checkpoint>, StoreError>;
    /// Every checkpoint of a flow.
    fn checkpoints(&self, flow: &FlowId) -> Result<Vec<CheckpointRecord>, StoreError>;
    /// Replaces a checkpoint outside of a page (after a format migration).
    fn replace_checkpoint(
        &self,
        flow: &FlowId,
        stream: &str,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError>;
    /// Commits a page and its checkpoint atomically.
    fn commit_page(&self, commit: &PageCommit<'_>) -> Result<PageOutcome, StoreError>;
    /// The records of a connection's stream that the read from scratch of
    /// `flow` under way has not seen (see [`Sweep`]), as deletes; none when
    /// no such read is under way. `began_at_ms` is that read's start when
    /// no page of it is committed yet. Its last page will delete them: a
    /// flow writing to a partner delivers these deletes first.
    fn unseen(
        &self,
        flow: &FlowId,
        connection: &ConnectionId,
        stream: &str,
        began_at_ms: Option<i64>,
    ) -> Result<Vec<Record>, StoreError>;
    /// Forgets a flow's checkpoints (its next run is a full sync). Returns
    /// how many were removed.
    fn reset(&self, flow: &FlowId) -> Result<usize, StoreError>;
}

/// The history of runs.
pub trait RunLog: Send + Sync {
    /// Records the start of a run, owned by this process. Runs still marked
    /// running whose process died are marked interrupted first.
    fn start_run(
        &self,
        flow: &FlowId,
        plugin: &str,
        full_refresh: bool,
    ) -> Result<RunId, StoreError>;
    /// Records the end of a run.
    fn finish_run(&self, run: RunId, end: &RunEnd) -> Result<(), StoreError>;
    /// The latest runs, newest first, of one flow or of all.
    fn runs(&self, flow: Option<&FlowId>, limit: usize) -> Result<Vec<RunRecord>, StoreError>;
    /// The latest runs, newest first, of every flow of a tenant.
    fn tenant_runs(&self, tenant: &TenantId, limit: usize) -> Result<Vec<RunRecord>, StoreError>;
}

/// Reading the local copy of records.
pub trait RecordReader: Send + Sync {
    /// Records of a connection's stream that are not deleted.
    fn count(&self, connection: &ConnectionId, stream: &str) -> Result<u64, StoreError>;
    /// Up to `limit` raw records (deleted ones included) with keys after
    /// `after`, in key order: a stable way to walk a whole stream.
    fn scan(
        &self,
        connection: &ConnectionId,
        stream: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;
    /// The raw records (deleted ones included) with the given keys, in no
    /// particular order; keys not stored are left out.
    fn records_by_key(
        &self,
        connection: &ConnectionId,
        stream: &str,
        keys: &[&str],
    ) -> Result<Vec<Record>, StoreError>;
}

/// Reshaped records and records that failed, per flow.
pub trait Deliveries: Send + Sync {
    /// Replaces reshaped records and dead letters of records handled again
    /// (a mapping re-applied, dead letters retried) in one transaction;
    /// `resolved` are dead letters that now went through.
    fn redeliver(
        &self,
        flow: &FlowId,
        run: RunId,
        mapped: &[Record],
        links: &[IdLink],
        failed: &[DeadLetter],
        resolved: &[i64],
    ) -> Result<(), StoreError>;
    /// Dead letters of a flow, oldest first.
    fn dead_letters(
        &self,
        flow: &FlowId,
        limit: usize,
    ) -> Result<Vec<DeadLetterRecord>, StoreError>;
    /// Reshaped records of a flow, by key.
    fn mapped(
        &self,
        flow: &FlowId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;
}

/// Which source records a write flow has already delivered, and where.
pub trait IdLinks: Send + Sync {
    /// The links of the given source keys.
    fn links(&self, flow: &FlowId, keys: &[&str]) -> Result<Vec<IdLink>, StoreError>;
}

/// Everything a flow run needs from a store.
pub trait FlowStore: SyncStore + RunLog + IdLinks + RecordReader + Deliveries {}

impl<T: SyncStore + RunLog + IdLinks + RecordReader + Deliveries> FlowStore for T {}

/// The whole store of a host: every part above, from one backend. A
/// second backend is one module implementing it and one arm in [`open`].
pub trait Store: FlowStore + EgressLog + PluginLedger + TenantStore + ChangeStore {
    /// Where it is, as its configuration names it, for messages.
    fn location(&self) -> String;
}

/// Opens the store `config` names and brings its schema up to date; what
/// it records is timed by `clock`.
pub fn open(
    config: &StoreConfig,
    clock: crate::clock::Clock,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    match config {
        StoreConfig::Sqlite { path } => Ok(std::sync::Arc::new(SqliteStore::open_with_clock(
            path, clock,
        )?)),
    }
}

/// What outbound traffic leaves behind: the audit log and rate budgets.
pub trait EgressLog: Send + Sync {
    /// Appends audit entries.
    fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError>;
    /// The latest audit entries, newest first, of one connection or of all.
    fn audit(
        &self,
        connection: Option<&ConnectionId>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    /// Saves budget states.
    fn save_budgets(&self, budgets: &[(ConnectionId, BudgetState)]) -> Result<(), StoreError>;
    /// A connection's saved budget state.
    fn load_budget(&self, connection: &ConnectionId) -> Result<Option<BudgetState>, StoreError>;
}

/// A connector version an operator approved (or that served first, or
/// asked for nothing new), kept with its wasm.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovedVersion {
    /// The connector.
    pub name: String,
    /// Its own version, e.g. `1.2.0`.
    pub version: String,
    /// SHA-256 of the wasm, hex.
    pub content_hash: String,
    /// The hosts its spec declares.
    pub hosts: Vec<String>,
    /// When it was approved, ms since the Unix epoch.
    pub approved_at_ms: i64,
}

/// An operator's rollback of a connector: `serving` serves while the
/// plugin file is still the version `file_hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginRollback {
    /// The version in the plugins directory when it was rolled back.
    pub file_hash: String,
    /// The version that serves instead.
    pub serving: String,
}

/// Which connector versions may serve: what `weir plugins approve` and
/// `rollback` decided, so that every command and every restart honours it.
pub trait PluginLedger: Send + Sync {
    /// A connector's approved versions, the latest approved first.
    fn approved_versions(&self, name: &str) -> Result<Vec<ApprovedVersion>, StoreError>;
    /// The wasm of an approved version.
    fn approved_wasm(&self, content_hash: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Approves a version now (again, if it was already), keeping `wasm`
    /// and the connector's `keep` latest approved versions only.
    fn approve_version(
        &self,
        version: &ApprovedVersion,
        wasm: &[u8],
        keep: usize,
    ) -> Result<(), StoreError>;
    /// The rollback in force for a connector, if any.
    fn rollback(&self, name: &str) -> Result<Option<PluginRollback>, StoreError>;
    /// Records (or, with none, ends) a connector's rollback.
    fn set_rollback(&self, name: &str, rollback: Option<&PluginRollback>)
    -> Result<(), StoreError>;
}

/// What the scheduler knows of one tenant's flow, for `weir status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowState {
    /// The scoped flow, `tenant.flow`.
    pub flow: String,
    /// The tenant.
    pub tenant: String,
    /// The flow of `weir.toml`.
    pub template: String,
    /// Whether it is on.
    pub enabled: bool,
    /// Its schedule, if any.
    pub schedule: Option<String>,
    /// When it runs next, ms since the Unix epoch.
    pub next_run_at_ms: Option<i64>,
    /// Failed runs in a row.
    pub failures: u32,
    /// False after too many failures in a row.
    pub healthy: bool,
    /// The latest failure.
    pub last_error: Option<String>,
}

/// Tenants and what the scheduler knows of their flows.
pub trait TenantStore: Send + Sync {
    /// Every tenant, by name.
    fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    /// One tenant.
    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;
    /// Creates or replaces a tenant (validate it first).
    fn save_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;
    /// Removes a tenant's settings; returns whether it existed. Its synced
    /// data stays in the store.
    fn delete_tenant(&self, id: &TenantId) -> Result<bool, StoreError>;
    /// Reads tenant `id` (none when there is no such tenant), has `edit`
    /// decide its new settings, and saves them. The outer error is the
    /// store's; the inner one the edit's, when it refused: nothing is then
    /// saved.
    fn update_tenant(
        &self,
        id: &TenantId,
        edit: &mut dyn FnMut(Option<Tenant>) -> Result<Tenant, EditError>,
    ) -> Result<Result<Tenant, EditError>, StoreError> {
        let edited = edit(self.tenant(id)?);
        if let Ok(tenant) = &edited {
            self.save_tenant(tenant)?;
        }
        Ok(edited)
    }
    /// A number that changes whenever any tenant changes.
    fn tenants_generation(&self) -> Result<i64, StoreError>;
    /// Replaces the scheduler's view of flows.
    fn save_flow_states(&self, states: &[FlowState]) -> Result<(), StoreError>;
    /// The scheduler's view of flows, by name.
    fn flow_states(&self) -> Result<Vec<FlowState>, StoreError>;
    /// The latest run of every flow, by flow name.
    fn last_runs(&self) -> Result<Vec<RunRecord>, StoreError>;
}
