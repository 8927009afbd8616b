//! The durable webhook inbox: "persist, then acknowledge".
//!
//! Partners push webhook deliveries to the daemon; the HTTP ingress hands
//! each one to [`Inbox::submit`] and answers 2xx only once the returned
//! future says [`Ack`] — after the SQLite `COMMIT` that holds the delivery
//! (or, for a duplicate, after the commit that proves the earlier row). Any
//! [`Refusal`] becomes 503 with `Retry-After`, never a 2xx and never a 4xx:
//! the partner keeps the delivery and sends it again.
//!
//! How it is built:
//! - the inbox is its own SQLite file (WAL, `synchronous = FULL`), apart
//!   from the store, so that webhook bursts never contend with syncs;
//! - admission is a bounded queue (`queue`): a full queue refuses at once;
//! - one writer thread (`writer`) owns the only connection that writes,
//!   and commits whatever is queued in one transaction (group commit), so
//!   one `fsync` acknowledges many deliveries; WAL checkpoints run on
//!   another thread (`checkpoint`), off the commit path;
//! - workers take deliveries with [`Inbox::claim`] under a lease and settle
//!   them with [`Inbox::complete`] or [`Inbox::fail`] (`lease`); these go
//!   through the same writer, in the same commits as ingress rows;
//! - [`Inbox::purge`] drops payloads of done deliveries after a retention
//!   while their keys stay longer, so late retries are still recognized
//!   (`retention`);
//! - deliveries given up on are listed and made pending again by
//!   [`failed`] and [`retry_failed`], from another process if need be.

mod checkpoint;
mod failed;
mod headers;
mod lease;
mod metrics;
mod queue;
mod retention;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rusqlite::Connection;
use serde::Serialize;
use tokio::sync::oneshot;

pub use failed::{FailedDelivery, FailedFilter, failed, retry_failed};
pub use headers::Headers;
pub use lease::{Claim, ClaimedDelivery, FailOutcome};
pub use metrics::{AckLatency, BatchSizes, InboxMetrics, Refusals};
pub use retention::Purged;

use crate::clock::Clock;
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::ids::{ConnectionId, TenantId};
use checkpoint::Checkpointer;
use metrics::{DepthChange, Metrics};
use queue::{Admission, Queue};
use writer::{OpEnv, Submit};

/// How the inbox behaves. `InboxOptions::default()` suits a daemon.
#[derive(Debug, Clone)]
pub struct InboxOptions {
    /// Deliveries waiting for the writer before new ones are refused with
    /// [`Refusal::QueueFull`].
    pub queue_capacity: usize,
    /// How long [`Inbox::submit`] waits for the commit before it gives up
    /// with [`Refusal::Deadline`] (the partner's own timeout is longer).
    pub commit_deadline: Duration,
    /// How long the writer waits for a lock held by another process (a
    /// backup, an operator's `sqlite3`) before the batch fails.
    pub busy_timeout: Duration,
    /// How long payloads of done deliveries are kept.
    pub retention: Duration,
    /// How long delivery keys are kept, so that late retries are still
    /// recognized as duplicates; at least `retention`.
    pub key_retention: Duration,
    /// Claims of one delivery before [`Inbox::fail`] gives up on it.
    pub max_attempts: u32,
    /// A cap on the database size in bytes: past it, deliveries are refused
    /// as if the disk were full, rather than filling the disk.
    pub max_size: Option<u64>,
    /// Where time comes from (a manual clock in tests).
    pub clock: Clock,
}

impl Default for InboxOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 4_096,
            commit_deadline: Duration::from_secs(2),
            busy_timeout: Duration::from_secs(1),
            retention: Duration::from_secs(24 * 3600),
            key_retention: Duration::from_secs(7 * 24 * 3600),
            max_attempts: 10,
            max_size: None,
            clock: Clock::system(),
        }
    }
}

/// A delivery's number in the inbox; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DeliveryId(pub i64);

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What makes two deliveries of one connection the same delivery: the
/// partner's delivery id (a header such as `X-Webhook-Id`), or a digest of
/// the payload when the partner sends none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey(String);

/// Why a delivery key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a delivery key must be 1 to {max} bytes long, not {len}", max = DeliveryKey::MAX_LEN)]
pub struct InvalidDeliveryKey {
    len: usize,
}

impl DeliveryKey {
    /// The longest key accepted, in bytes.
    pub const MAX_LEN: usize = 512;

    /// Checks and wraps a key.
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidDeliveryKey> {
        let key = key.into();
        if key.is_empty() || key.len() > Self::MAX_LEN {
            return Err(InvalidDeliveryKey { len: key.len() });
        }
        Ok(Self(key))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeliveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A webhook delivery as the partner sent it. Headers and body are kept as
/// raw bytes: signatures are checked against them, so they are never
/// re-serialized.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The tenant it is for.
    pub tenant: TenantId,
    /// The connection it came in on.
    pub connection: ConnectionId,
    /// What identifies it among the connection's deliveries.
    pub key: DeliveryKey,
    /// The HTTP method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// The request headers, in order.
    pub headers: Headers,
    /// The request body.
    pub body: Bytes,
}

/// A delivery made durable: answer the partner 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Stored now.
    Stored {
        /// Its row.
        id: DeliveryId,
    },
    /// Already stored earlier (a partner retry): not stored again.
    Duplicate {
        /// The earlier delivery's row.
        id: DeliveryId,
    },
}

impl Ack {
    /// The delivery's row.
    pub fn id(self) -> DeliveryId {
        match self {
            Self::Stored { id } | Self::Duplicate { id } => id,
        }
    }

    /// Whether it had been stored before.
    pub fn is_duplicate(self) -> bool {
        matches!(self, Self::Duplicate { .. })
    }
}

/// Why a delivery was not acknowledged: the ingress answers 503 with
/// `Retry-After` (see [`Refusal::retry_after`]) and the partner retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The queue to the writer is full: the inbox is overloaded.
    #[error("the webhook inbox is full")]
    QueueFull,
    /// SQLite failed (disk full, I/O error, locked past the busy timeout);
    /// nothing of the batch was stored.
    #[error("the webhook inbox could not store the delivery: {0}")]
    Storage(String),
    /// No commit within the commit deadline. The delivery may still be
    /// stored; the partner's retry is then acknowledged as a duplicate.
    #[error("the webhook inbox did not store the delivery in time")]
    Deadline,
    /// The inbox is shutting down.
    #[error("the webhook inbox is shutting down")]
    Closed,
}

impl Refusal {
    /// A short name for logs and metrics: `queue_full`, `storage`,
    /// `deadline` or `closed`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::Storage(_) => "storage",
            Self::Deadline => "deadline",
            Self::Closed => "closed",
        }
    }

    /// A suggested `Retry-After`: soon for a passing overload, later for a
    /// storage failure that an operator may have to fix.
    pub fn retry_after(&self) -> Duration {
        match self {
            Self::QueueFull | Self::Deadline => Duration::from_secs(5),
            Self::Closed => Duration::from_secs(10),
            Self::Storage(_) => Duration::from_secs(30),
        }
    }
}

/// Opening or using the inbox failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InboxError {
    /// The directory of the database cannot be created.
    #[error("the webhook inbox directory `{}` cannot be created: {source}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database cannot be opened or its schema brought up to date.
    #[error("the webhook inbox `{}` cannot be opened: {source}", path.display())]
    Open {
        /// The database.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer Weir.
    #[error(
        "the webhook inbox `{}` has schema version {found}, newer than this Weir knows ({known})",
        path.display()
    )]
    NewerSchema {
        /// The database.
        path: PathBuf,
        /// Its version.
        found: usize,
        /// The newest version this Weir knows.
        known: usize,
    },
    /// A claim, settlement or purge failed in SQLite.
    #[error("the webhook inbox `{}` failed: {source}", path.display())]
    Storage {
        /// The database.
        path: PathBuf,
        /// Why (shared by every operation of the failed commit).
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The inbox is shutting down.
    #[error("the webhook inbox `{}` is shutting down", path.display())]
    Closed {
        /// The database.
        path: PathBuf,
    },
}

/// What waits in an inbox database, read without opening the inbox (for
/// `weir status`, beside a running daemon that owns the writer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Backlog {
    /// Deliveries pending or being processed.
    pub waiting: u64,
    /// When the oldest of them was received, ms since the Unix epoch.
    pub oldest_received_at_ms: Option<i64>,
    /// Deliveries given up after their last attempt.
    pub failed: u64,
}

/// Reads the backlog of the inbox at `path`; none if there is no inbox
/// there yet (no webhook has been received).
pub fn backlog(path: &Path) -> Result<Option<Backlog>, InboxError> {
    if !path.exists() {
        return Ok(None);
    }
    let err = |source| InboxError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = schema::open_reader(path).map_err(err)?;
    let failed = conn
        .query_row(
            "SELECT count(*) FROM deliveries WHERE state = 'failed'",
            [],
            |row| row.get(0),
        )
        .map_err(err)?;
    Ok(Some(Backlog {
        waiting: schema::depth(&conn).map_err(err)?,
        oldest_received_at_ms: schema::oldest_open(&conn).map_err(err)?,
        failed,
    }))
}

impl Diagnose for InboxError {
    /// The user-facing form, with code and hint.
    fn diagnostic(&self) -> Diagnostic {
        let hint = match self {
            Self::Directory { .. } | Self::Open { .. } | Self::Storage { .. } => {
                "check that the inbox's directory is writable and the disk not full; \
                 another process holding a write lock shows up as `database is locked`"
            }
            Self::NewerSchema { .. } => {
                "run the Weir version that wrote it, or move the file aside to start an empty inbox \
                 (partners retry what was not acknowledged; what was acknowledged is in that file)"
            }
            Self::Closed { .. } => "the daemon is stopping; start it again",
        };
        Diagnostic::new(ErrorCode::StoreUnavailable, self.to_string()).with_hint(hint)
    }
}

/// The durable webhook inbox. Cheap to clone; the writer stops when the
/// last clone is dropped or [`Inbox::close`] is called.
#[derive(Clone)]
pub struct Inbox {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    queue: Arc<Queue>,
    metrics: Arc<Metrics>,
    clock: Clock,
    commit_deadline: Duration,
    /// Health reads; WAL lets them run beside the writer.
    reader: Mutex<Connection>,
    writer: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Checkpointer,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer commits and answers what is queued, then stops.
        self.queue.close();
    }
}

impl Inbox {
    /// Opens (creates) the inbox database, brings its schema up to date and
    /// starts the writer thread. Blocking: call it at startup or on a
    /// blocking thread.
    pub fn open(path: &Path, options: InboxOptions) -> Result<Self, InboxError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs_err::create_dir_all(dir).map_err(|source| InboxError::Directory {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = schema::open_writer(path, &options)?;
        let reader = schema::open_reader(path).map_err(|source| InboxError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let depth = schema::depth(&conn).map_err(|source| InboxError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let checkpointer = Checkpointer::spawn(path)?;
        let metrics = Arc::new(Metrics::new(depth));
        let queue = Arc::new(Queue::new(options.queue_capacity.max(1)));
        let env = OpEnv {
            max_attempts: options.max_attempts.max(1),
            retention: options.retention,
            key_retention: options.key_retention.max(options.retention),
        };
        let handle = writer::spawn(
            conn,
            Arc::clone(&queue),
            Arc::clone(&metrics),
            options.clock.clone(),
            env,
        )
        .map_err(|source| InboxError::Directory {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                queue,
                metrics,
                clock: options.clock,
                commit_deadline: options.commit_deadline,
                reader: Mutex::new(reader),
                writer: Mutex::new(Some(handle)),
                checkpointer,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stores a delivery; the future resolves once it is durable ([`Ack`])
    /// or refused. Admission happens in this call, without waiting: a full
    /// queue is refused at once. Needs a Tokio runtime (for the deadline).
    pub fn submit(
        &self,
        delivery: NewDelivery,
    ) -> impl Future<Output = Result<Ack, Refusal>> + Send + 'static {
        let started = Instant::now();
        let (reply, answer) = oneshot::channel();
        let submit = Submit {
            delivery,
            received_at_ms: self.inner.clock.now_ms(),
            reply,
        };
        let admitted = self.inner.queue.try_submit(submit);
        let metrics = Arc::clone(&self.inner.metrics);
        let deadline = self.inner.commit_deadline;
        async move {
            let outcome = match admitted {
                Err(Admission::Full) => Err(Refusal::QueueFull),
                Err(Admission::Closed) => Err(Refusal::Closed),
                Ok(()) => {
                    match tokio::time::timeout_at((started + deadline).into(), answer).await {
                        Err(_elapsed) => Err(Refusal::Deadline),
                        // The writer stopped without answering.
                        Ok(Err(_dropped)) => Err(Refusal::Closed),
                        Ok(Ok(outcome)) => outcome,
                    }
                }
            };
            metrics.record_answer(&outcome, started.elapsed());
            outcome
        }
    }

    /// Takes up to `limit` deliveries to process: pending ones that are due
    /// and processing ones whose lease expired (their worker died), marking
    /// them processing until `now + lease`. At-least-once: a delivery whose
    /// lease runs out is handed out again.
    pub async fn claim(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedDelivery>, InboxError> {
        self.run(move |conn, env| lease::claim(conn, env, limit, lease))
            .await
    }

    /// Takes back every delivery being processed: its lease runs out now,
    /// so the next [`Inbox::claim`] hands it out again. Only for the one
    /// process that knows no other worker is alive (a daemon holding the
    /// inbox's lock, whose predecessor died mid-delivery). Returns how many.
    pub async fn take_back_leases(&self) -> Result<usize, InboxError> {
        self.run(lease::take_back).await
    }

    /// Extends a claim's lease. False if the claim is no longer current
    /// (its lease ran out and the delivery was settled or handed to another
    /// worker).
    pub async fn renew(&self, claim: Claim, lease: Duration) -> Result<bool, InboxError> {
        self.run(move |conn, env| lease::renew(conn, env, claim, lease))
            .await
    }

    /// Marks a processed delivery done. False if the claim is no longer
    /// current: another worker holds the delivery, or it was settled.
    pub async fn complete(&self, claim: Claim) -> Result<bool, InboxError> {
        self.run(move |conn, env| lease::complete(conn, env, claim))
            .await
    }

    /// Records a failed attempt: the delivery is due again after
    /// `retry_after`, or is given up (`failed`) after `max_attempts`.
    pub async fn fail(
        &self,
        claim: Claim,
        error: &str,
        retry_after: Duration,
    ) -> Result<FailOutcome, InboxError> {
        let error = error.to_string();
        self.run(move |conn, env| lease::fail(conn, env, claim, &error, retry_after))
            .await
    }

    /// Drops payloads of deliveries done for longer than the retention and
    /// keys older than the key retention (never the key of a delivery still
    /// stored). Works in small transactions, so ingress is never held up.
    /// Then recounts the depth, which another process may have changed
    /// (see [`retry_failed`]).
    pub async fn purge(&self) -> Result<Purged, InboxError> {
        let mut total = Purged::default();
        loop {
            let chunk = self.run(retention::purge_chunk).await?;
            total.payloads += chunk.payloads;
            total.keys += chunk.keys;
            if !chunk.more {
                break;
            }
        }
        self.run(|conn, _| {
            let depth = schema::depth(conn)?;
            Ok((
                (),
                DepthChange::To(i64::try_from(depth).unwrap_or(i64::MAX)),
            ))
        })
        .await?;
        Ok(total)
    }

    /// Deliveries pending or processing.
    pub fn depth(&self) -> u64 {
        self.inner.metrics.depth()
    }

    /// How long the oldest delivery pending or processing has waited, if
    /// any. Reads the database (on a blocking thread).
    pub async fn oldest_pending_age(&self) -> Result<Option<Duration>, InboxError> {
        let inner = Arc::clone(&self.inner);
        let oldest = tokio::task::spawn_blocking(move || {
            let conn = inner.reader.lock().unwrap_or_else(|p| p.into_inner());
            schema::oldest_open(&conn)
        })
        .await
        .expect("the inbox read does not panic")
        .map_err(|source| self.storage_error(Arc::new(source)))?;
        let now = self.inner.clock.now_ms();
        Ok(oldest.map(|received| Duration::from_millis((now - received).max(0) as u64)))
    }

    /// Counters, ack latency and batch sizes since the inbox was opened.
    pub fn snapshot(&self) -> InboxMetrics {
        self.inner.metrics.snapshot()
    }

    /// Refuses new deliveries, lets the writer commit and answer everything
    /// queued, and waits for it to stop.
    pub async fn close(&self) {
        self.inner.queue.close();
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let checkpointer = self.inner.checkpointer.stop();
        // A writer panic was already answered as `Closed` to everyone.
        let _ = tokio::task::spawn_blocking(move || {
            for handle in writer.into_iter().chain(checkpointer) {
                let _ = handle.join();
            }
        })
        .await;
    }

    /// Runs a processing operation inside the writer's next commit and
    /// returns its result once that commit is durable.
    async fn run<T: Send + 'static, D: Into<DepthChange> + 'static>(
        &self,
        work: impl FnOnce(&Connection, &writer::OpContext) -> rusqlite::Result<(T, D)> + Send + 'static,
    ) -> Result<T, InboxError> {
        let (reply, answer) = oneshot::channel();
        let op = writer::Op::new(work, reply);
        if self.inner.queue.push_op(op).is_err() {
            return Err(self.closed_error());
        }
        match answer.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(self.storage_error(source)),
            Err(_dropped) => Err(self.closed_error()),
        }
    }

    fn storage_error(&self, source: Arc<rusqlite::Error>) -> InboxError {
        InboxError::Storage {
            path: self.inner.path.clone(),
            source,
        }
    }

    fn closed_error(&self) -> InboxError {
        InboxError::Closed {
            path: self.inner.path.clone(),
        }
    }
}
