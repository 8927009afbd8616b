//! The writer: one OS thread owning the only connection that writes, so
//! SQLite never makes it wait for a lock in-process, and the async runtime
//! never waits for `fsync`.
//!
//! Group commit: block for the first item, take everything queued by then
//! (no lingering: under light load a delivery commits alone and at once,
//! under heavy load batches grow by themselves while the previous commit
//! syncs), write it all in one transaction, `COMMIT`, and only then answer.
//! A failed commit answers everyone of the batch with the error: nobody is
//! acknowledged for a batch that is not durable.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::metrics::{DepthChange, Metrics};
use super::queue::{Batch, Queue};
use super::{Ack, DeliveryId, NewDelivery, Refusal};
use crate::clock::Clock;

/// A delivery waiting for the writer.
pub(crate) struct Submit {
    pub delivery: NewDelivery,
    pub received_at_ms: i64,
    pub reply: oneshot::Sender<Result<Ack, Refusal>>,
}

/// Settings processing operations need.
#[derive(Debug, Clone, Copy)]
pub(super) struct OpEnv {
    pub max_attempts: u32,
    pub retention: Duration,
    pub key_retention: Duration,
}

/// What a processing operation sees: the settings and the time of its
/// commit.
#[derive(Debug, Clone, Copy)]
pub(super) struct OpContext {
    pub now_ms: i64,
    pub env: OpEnv,
}

impl OpContext {
    /// `now + duration`, in ms.
    pub fn after(&self, duration: Duration) -> i64 {
        self.now_ms
            .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
    }
}

type Answer = Box<dyn FnOnce(Result<(), Arc<rusqlite::Error>>) + Send>;

/// A processing operation (claim, settlement, purge) run inside the next
/// commit; its result is answered after that commit.
pub(crate) struct Op(Box<dyn Operation>);

trait Operation: Send {
    /// Runs the operation; its answer waits for the commit.
    fn run(self: Box<Self>, conn: &Connection, cx: &OpContext) -> Settle;
    /// Answers without running: the commit failed before reaching it.
    fn refuse(self: Box<Self>, error: Arc<rusqlite::Error>);
}

struct Work<F, T, D> {
    work: F,
    reply: oneshot::Sender<Result<T, Arc<rusqlite::Error>>>,
    depth: PhantomData<fn() -> D>,
}

impl<F, T, D> Operation for Work<F, T, D>
where
    F: FnOnce(&Connection, &OpContext) -> rusqlite::Result<(T, D)> + Send + 'static,
    T: Send + 'static,
    D: Into<DepthChange>,
{
    fn run(self: Box<Self>, conn: &Connection, cx: &OpContext) -> Settle {
        let Work { work, reply, .. } = *self;
        match work(conn, cx) {
            Ok((value, depth)) => Settle {
                ok: true,
                depth: depth.into(),
                answer: Box::new(move |commit| {
                    let _ = reply.send(commit.map(|()| value));
                }),
            },
            Err(error) => {
                let error = Arc::new(error);
                Settle {
                    ok: false,
                    depth: DepthChange::By(0),
                    answer: Box::new(move |_commit| {
                        let _ = reply.send(Err(error));
                    }),
                }
            }
        }
    }

    fn refuse(self: Box<Self>, error: Arc<rusqlite::Error>) {
        let _ = self.reply.send(Err(error));
    }
}

/// What an operation did, to be answered once the commit is known.
struct Settle {
    ok: bool,
    /// Change of the number of pending and processing deliveries.
    depth: DepthChange,
    answer: Answer,
}

impl Op {
    /// `work` returns its value and how it changed the depth.
    pub fn new<T: Send + 'static, D: Into<DepthChange> + 'static>(
        work: impl FnOnce(&Connection, &OpContext) -> rusqlite::Result<(T, D)> + Send + 'static,
        reply: oneshot::Sender<Result<T, Arc<rusqlite::Error>>>,
    ) -> Self {
        Self(Box::new(Work {
            work,
            reply,
            depth: PhantomData,
        }))
    }
}

/// Starts the writer thread.
pub(super) fn spawn(
    conn: Connection,
    queue: Arc<Queue>,
    metrics: Arc<Metrics>,
    clock: Clock,
    env: OpEnv,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("weir-inbox-writer".into())
        .spawn(move || {
            let mut writer = Writer {
                conn,
                metrics,
                clock,
                env,
                failing: false,
            };
            // Closes the queue if the writer panics: later callers are
            // refused at once instead of waiting for their deadline.
            let _close_on_exit = CloseOnDrop(Arc::clone(&queue));
            let mut batch = Batch::default();
            while queue.take(&mut batch) {
                writer.commit(&mut batch);
            }
        })
}

struct CloseOnDrop(Arc<Queue>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

struct Writer {
    conn: Connection,
    metrics: Arc<Metrics>,
    clock: Clock,
    env: OpEnv,
    /// Whether the last commit failed: failures are logged when they
    /// start and end, not for every batch (a full disk fails them all).
    failing: bool,
}

impl Writer {
    /// Writes, commits and answers one batch, leaving it empty.
    fn commit(&mut self, batch: &mut Batch) {
        // A caller that gave up (deadline, dropped request) was answered
        // 503 already; skipping it sheds load when the inbox is behind.
        batch.submits.retain(|submit| !submit.reply.is_closed());
        let cx = OpContext {
            now_ms: self.clock.now_ms(),
            env: self.env,
        };
        let mut acks = Vec::with_capacity(batch.submits.len());
        let mut settles = Vec::with_capacity(batch.ops.len());
        let result = self.write(&batch.submits, &mut batch.ops, &cx, &mut acks, &mut settles);
        match result {
            Ok(()) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!("the webhook inbox commits again");
                }
                let stored = acks
                    .iter()
                    .filter(|ack| matches!(ack, Ack::Stored { .. }))
                    .count() as i64;
                let depth = settles
                    .iter()
                    .filter(|settle| settle.ok)
                    .fold(DepthChange::By(stored), |depth, settle| {
                        depth.then(settle.depth)
                    });
                self.metrics.record_commit(batch.submits.len(), depth);
                for (submit, ack) in batch.submits.drain(..).zip(acks) {
                    let _ = submit.reply.send(Ok(ack));
                }
                for settle in settles {
                    (settle.answer)(Ok(()));
                }
            }
            Err(error) => {
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!(%error, "the webhook inbox cannot commit: deliveries are refused");
                }
                let message = error.to_string();
                for submit in batch.submits.drain(..) {
                    let _ = submit.reply.send(Err(Refusal::Storage(message.clone())));
                }
                let error = Arc::new(error);
                for settle in settles {
                    (settle.answer)(Err(Arc::clone(&error)));
                }
                // Operations the failure came before.
                for op in batch.ops.drain(..) {
                    op.0.refuse(Arc::clone(&error));
                }
            }
        }
        batch.submits.clear();
        batch.ops.clear();
    }

    fn write(
        &mut self,
        submits: &[Submit],
        ops: &mut Vec<Op>,
        cx: &OpContext,
        acks: &mut Vec<Ack>,
        settles: &mut Vec<Settle>,
    ) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for submit in submits {
            acks.push(insert(&tx, submit)?);
        }
        // After the deliveries, so a claim sees the rows just stored. Each
        // operation runs in a savepoint: one that fails is undone and
        // answered with its error, without failing the deliveries.
        let mut queued = std::mem::take(ops).into_iter();
        let mut failed = None;
        for op in queued.by_ref() {
            if let Err(error) = tx.execute_batch("SAVEPOINT op") {
                ops.push(op);
                failed = Some(error);
                break;
            }
            let settle = op.0.run(&tx, cx);
            let end = if settle.ok {
                "RELEASE op"
            } else {
                "ROLLBACK TO op; RELEASE op"
            };
            settles.push(settle);
            if let Err(error) = tx.execute_batch(end) {
                failed = Some(error);
                break;
            }
        }
        // What the failure came before is refused by the caller.
        ops.extend(queued);
        if let Some(error) = failed {
            return Err(error);
        }
        tx.commit()
    }
}

/// Stores one delivery, or finds the row that already holds its key.
fn insert(conn: &Connection, submit: &Submit) -> rusqlite::Result<Ack> {
    let d = &submit.delivery;
    let key = (d.tenant.as_str(), d.connection.as_str(), d.key.as_str());
    // Keys outlive payloads: a retry of a delivery whose payload was
    // already purged is still a duplicate.
    let known: Option<i64> = conn
        .prepare_cached(
            "SELECT delivery_id FROM delivery_keys
             WHERE tenant = ?1 AND connection = ?2 AND delivery_key = ?3",
        )?
        .query_row(key, |row| row.get(0))
        .optional()?;
    if let Some(id) = known {
        return Ok(Ack::Duplicate { id: DeliveryId(id) });
    }
    let stored: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO deliveries (tenant, connection, delivery_key, received_at_ms, method, path,
                                     query, headers, body, state, attempts, available_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', 0, ?4)
             ON CONFLICT (tenant, connection, delivery_key) DO NOTHING
             RETURNING id",
        )?
        .query_row(
            params![
                key.0,
                key.1,
                key.2,
                submit.received_at_ms,
                d.method,
                d.path,
                d.query,
                d.headers.encode(),
                &d.body[..],
            ],
            |row| row.get(0),
        )
        .optional()?;
    let ack = match stored {
        Some(id) => Ack::Stored { id: DeliveryId(id) },
        // The row exists without its key (never left so by `purge`, which
        // keeps the keys of stored rows): answer it and restore the key.
        None => Ack::Duplicate {
            id: DeliveryId(conn.query_row(
                "SELECT id FROM deliveries WHERE tenant = ?1 AND connection = ?2 AND delivery_key = ?3",
                key,
                |row| row.get(0),
            )?),
        },
    };
    conn.prepare_cached(
        "INSERT INTO delivery_keys (tenant, connection, delivery_key, first_seen_ms, delivery_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        key.0,
        key.1,
        key.2,
        submit.received_at_ms,
        ack.id().0
    ])?;
    Ok(ack)
}
