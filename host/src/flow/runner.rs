//! The one run loop: batches from a feed, reshaped, delivered and made
//! durable batch by batch, with the run's record, progress and end.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::bounds::RunBounds;
use super::destination;
use super::feed::{
    Batch, BatchKind, ChangePages, DeadLetterPages, Feed, Pages, PartnerPages, RunContext,
    StoredPages,
};
use super::reshape::Reshaped;
use super::retry::RetryPolicy;
use super::stop::Stop;
use super::store_calls::{StoreCalls, join};
use super::{Destination, Plan};
use crate::connection::Connection;
use crate::contract::Record;
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::ids::{FlowId, RunId};
use crate::store::{
    DeadLetter, Delivered, FlowStore, IdLink, PageCommit, RunEnd, RunStatus, SourcePage, StoreError,
};

/// Records per batch of stored records or dead letters, and so per
/// transaction.
pub const DEFAULT_BATCH: usize = 1_000;

/// How to run a flow.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Retries and pauses.
    pub retry: RetryPolicy,
    /// Ends the run at its last committed batch (shutdown): the batch in
    /// flight is dropped, and read again by the next run.
    pub cancel: Option<CancellationToken>,
    /// Records per batch of stored records or dead letters (a partner's
    /// pages are as long as the partner makes them).
    pub batch: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            cancel: None,
            batch: DEFAULT_BATCH,
        }
    }
}

/// Hears about a run's progress (e.g. to draw a progress bar).
pub trait RunObserver: Send + Sync {
    /// A batch of `records` was made durable.
    fn page_committed(&self, _records: u64) {}
}

impl RunObserver for () {}

/// What a run did.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    /// Its number.
    pub run: RunId,
    /// The flow.
    pub flow: FlowId,
    /// How it ended.
    pub status: RunStatus,
    /// Batches committed (pages, for a read of the partner).
    pub pages: u64,
    /// Records read.
    pub records_read: u64,
    /// Records changed at the destination.
    pub records_written: u64,
    /// Records sent to the dead letters.
    pub records_failed: u64,
    /// Dead letters removed because their record went through this time.
    pub resolved: u64,
    /// Records that came with the stored version and other content.
    pub conflicts: u64,
    /// Wall time.
    #[serde(serialize_with = "as_secs")]
    pub elapsed: Duration,
    /// When a paused run may resume.
    #[serde(skip)]
    pub resume_after: Option<Duration>,
    /// Why it did not succeed: code, message and hint.
    pub error: Option<Diagnostic>,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl RunSummary {
    /// Records read per second.
    pub fn records_per_second(&self) -> f64 {
        self.records_read as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs flows against a store.
pub struct FlowRunner {
    store: StoreCalls,
}

impl FlowRunner {
    /// A runner over a store.
    pub fn new(store: Arc<dyn FlowStore>) -> Self {
        Self {
            store: StoreCalls::new(store),
        }
    }

    /// Runs a flow once, recorded as a run: batches from `feed` until it
    /// runs dry, each reshaped, delivered and committed in one transaction
    /// (with its checkpoint, for a partner's page). Only a store failure
    /// recording the run itself is an error; any other failure ends the
    /// run, and the summary says why.
    pub async fn run(
        &self,
        plan: &Plan,
        feed: Feed,
        options: &RunOptions,
        observer: &dyn RunObserver,
    ) -> Result<RunSummary, StoreError> {
        let started = Instant::now();
        let run = {
            let (flow, label, full) = (plan.flow.id.clone(), feed.label(), feed.is_full_refresh());
            self.store
                .call(move |store| store.start_run(&flow, &label, full))
                .await?
        };
        let connector = feed.connector().map(str::to_owned);
        let context = RunContext {
            plan,
            store: &self.store,
            options,
            run,
        };
        let mut progress = Progress::default();
        let outcome = match check_streams(plan, &feed) {
            Err(stop) => Err(stop),
            Ok(()) => match feed {
                Feed::Partner {
                    source,
                    full_refresh,
                    log_changes,
                } => match PartnerPages::open(source, full_refresh, log_changes, &context).await {
                    Ok(pages) => self.drive(pages, &context, &mut progress, observer).await,
                    Err(stop) => Err(stop),
                },
                Feed::Changes(records) => {
                    let pages = ChangePages(Some(records));
                    self.drive(pages, &context, &mut progress, observer).await
                }
                Feed::Stored => match StoredPages::open(&context).await {
                    Ok(pages) => self.drive(pages, &context, &mut progress, observer).await,
                    Err(stop) => Err(stop),
                },
                Feed::DeadLetters => {
                    self.drive(DeadLetterPages, &context, &mut progress, observer)
                        .await
                }
            },
        };
        let mut resume_after = None;
        let (status, error) = match outcome {
            Ok(()) => (RunStatus::Succeeded, None),
            Err(Stop::Failed(diagnostic)) => (RunStatus::Failed, Some(diagnostic)),
            Err(Stop::Paused(diagnostic, wait)) => {
                resume_after = wait;
                (RunStatus::Paused, Some(diagnostic))
            }
            Err(Stop::Cancelled) => (RunStatus::Interrupted, None),
            Err(Stop::Store(error)) => (RunStatus::Failed, Some(error.diagnostic())),
        };
        let end = RunEnd {
            status,
            error: match (&error, status) {
                (Some(d), _) => Some((d.code.to_string(), d.message.clone())),
                (None, RunStatus::Interrupted) => Some((
                    ErrorCode::Shutdown.to_string(),
                    "stopped by a shutdown after its last page was committed; the next run resumes from there"
                        .to_string(),
                )),
                _ => None,
            },
        };
        self.store
            .call(move |store| store.finish_run(run, &end))
            .await?;
        if let Some(connector) = connector.filter(|_| progress.conflicts > 0) {
            let warning =
                crate::store::conflict_warning(&connector, &plan.flow.stream, progress.conflicts);
            tracing::warn!("flow `{}`: {warning}", plan.flow.id);
        }
        Ok(RunSummary {
            run,
            flow: plan.flow.id.clone(),
            status,
            pages: progress.pages,
            records_read: progress.read,
            records_written: progress.written,
            records_failed: progress.failed,
            resolved: progress.resolved,
            conflicts: progress.conflicts,
            elapsed: started.elapsed(),
            resume_after,
            error,
        })
    }

    /// Handles every batch of `pages`. The commit of a batch runs while
    /// the next one is read and delivered, when the feed allows it.
    async fn drive(
        &self,
        mut pages: impl Pages,
        run: &RunContext<'_>,
        progress: &mut Progress,
        observer: &dyn RunObserver,
    ) -> Result<(), Stop> {
        let bounds = RunBounds::start(&run.plan.flow, run.options.cancel.as_ref());
        let mut pending: Option<JoinHandle<Result<Committed, StoreError>>> = None;
        let result = loop {
            if let Err(overrun) = bounds.check() {
                break Err(overrun.into());
            }
            if !pages.reads_ahead()
                && let Some(previous) = pending.take()
            {
                progress.add(join(previous).await?, observer);
            }
            let batch = match bounds.within(pages.next(run)).await {
                Ok(Some(batch)) => batch,
                Ok(None) => break Ok(()),
                Err(stop) => break Err(stop),
            };
            if batch.records.is_empty() && matches!(batch.kind, BatchKind::Again { .. }) {
                if batch.last {
                    break Ok(());
                }
                continue;
            }
            // A partner destination must hear of the deletes the last page
            // of a sweep finds before they are committed.
            let absent = match batch.ends_a_sweep() {
                Some(_) if run.plan.destination.is_partner() => {
                    if let Some(previous) = pending.take() {
                        progress.add(join(previous).await?, observer);
                    }
                    match self.unseen(run, &batch).await {
                        Ok(absent) => absent,
                        Err(stop) => break Err(stop),
                    }
                }
                _ => Vec::new(),
            };
            let parts = match bounds.within(self.deliver(run, &batch, &absent)).await {
                Ok(parts) => parts,
                Err(stop) => break Err(stop),
            };
            if let Some(previous) = pending.take() {
                progress.add(join(previous).await?, observer);
            }
            let last = batch.last;
            pending = Some(self.commit(run, batch, parts));
            if last {
                break Ok(());
            }
        };
        if let Some(previous) = pending.take() {
            progress.add(join(previous).await?, observer);
        }
        result
    }

    /// The stored records a sweep's last page finds gone from the source,
    /// as deletes (see [`Sweep`](crate::store::Sweep)).
    async fn unseen(&self, run: &RunContext<'_>, last_page: &Batch) -> Result<Vec<Record>, Stop> {
        let Some((connection, began_at_ms)) = last_page.ends_a_sweep() else {
            return Ok(Vec::new());
        };
        let flow = &run.plan.flow;
        let (id, connection, stream) = (flow.id.clone(), connection.clone(), flow.stream.clone());
        let unseen = self
            .store
            .call(move |store| store.unseen(&id, &connection, &stream, began_at_ms))
            .await?;
        // The last page's own records are seen once it commits.
        let on_page: HashSet<&str> = last_page.records.iter().map(|r| r.key.as_str()).collect();
        Ok(unseen
            .into_iter()
            .filter(|record| !on_page.contains(record.key.as_str()))
            .collect())
    }

    /// Reshapes a batch and hands it to the destination, with `absent`:
    /// the deletes a sweep found, for a partner destination. A partner's
    /// page the flow does not reshape is stored as read; records handled
    /// again are always reshaped, so that a mapping removed since replaces
    /// the copies an older one made.
    async fn deliver(
        &self,
        run: &RunContext<'_>,
        batch: &Batch,
        absent: &[Record],
    ) -> Result<PageParts, Stop> {
        let reshaper = &run.plan.reshaper;
        let keeps_raw = matches!(batch.kind, BatchKind::Page { .. }) && reshaper.is_identity();
        let reshaped = if keeps_raw {
            None
        } else {
            Some(reshaper.reshape(&batch.records).await?)
        };
        match &run.plan.destination {
            Destination::Store => Ok(match reshaped {
                None => PageParts::default(),
                Some(Reshaped { records, failed }) => PageParts {
                    mapped: Some(records),
                    links: Vec::new(),
                    dead_letters: failed,
                },
            }),
            Destination::Connection { connection, stream } => {
                let (mut records, mut dead_letters) = match reshaped {
                    None => (batch.records.clone(), Vec::new()),
                    Some(Reshaped { records, failed }) => (records, failed),
                };
                // Deletes need no reshaping: only their link is used.
                records.extend_from_slice(absent);
                let raw = if absent.is_empty() {
                    Cow::Borrowed(&batch.records[..])
                } else {
                    Cow::Owned([&batch.records[..], absent].concat())
                };
                let delivered = destination::deliver_retrying(
                    &run.plan.flow.id,
                    &records,
                    &raw,
                    connection,
                    stream,
                    self.store.get(),
                    &run.options.retry,
                )
                .await?;
                dead_letters.extend(delivered.dead_letters);
                Ok(PageParts {
                    mapped: None,
                    links: delivered.links,
                    dead_letters,
                })
            }
        }
    }

    /// Makes a delivered batch durable, in one transaction, on a blocking
    /// thread.
    fn commit(
        &self,
        run: &RunContext<'_>,
        batch: Batch,
        parts: PageParts,
    ) -> JoinHandle<Result<Committed, StoreError>> {
        let (flow, stream, id) = (
            run.plan.flow.id.clone(),
            run.plan.flow.stream.clone(),
            run.run,
        );
        let writes = run.plan.destination.is_partner();
        self.store.spawn(move |store| {
            let read = batch.records.len() as u64;
            let failed = parts.dead_letters.len() as u64;
            match batch.kind {
                BatchKind::Page {
                    connection,
                    checkpoint,
                    sweep,
                    log_changes,
                } => {
                    let delivered = match (&parts.mapped, writes) {
                        (_, true) => Delivered::Written(&parts.links),
                        (Some(mapped), false) => Delivered::Mapped(mapped),
                        (None, false) => Delivered::Raw,
                    };
                    let outcome = store.commit_page(&PageCommit {
                        flow: &flow,
                        stream: &stream,
                        run: id,
                        checkpoint: &checkpoint,
                        source: SourcePage {
                            connection: &connection,
                            stream: &stream,
                            records: &batch.records,
                        },
                        delivered,
                        dead_letters: &parts.dead_letters,
                        log_changes,
                        sweep,
                    })?;
                    Ok(Committed {
                        read,
                        written: outcome.changed,
                        failed,
                        resolved: 0,
                        conflicts: outcome.conflicts,
                    })
                }
                BatchKind::Again { dead } => {
                    let failing: HashSet<&str> = parts
                        .dead_letters
                        .iter()
                        .map(|f| f.source_key.as_str())
                        .collect();
                    let mut settled = Vec::new();
                    let mut resolved = 0;
                    for record in &batch.records {
                        if let Some(ids) = dead.get(&record.key) {
                            settled.extend_from_slice(ids);
                            if !failing.contains(record.key.as_str()) {
                                resolved += ids.len() as u64;
                            }
                        }
                    }
                    let mapped = parts.mapped.unwrap_or_default();
                    store.redeliver(
                        &flow,
                        id,
                        &mapped,
                        &parts.links,
                        &parts.dead_letters,
                        &settled,
                    )?;
                    Ok(Committed {
                        read,
                        written: mapped.len().max(parts.links.len()) as u64,
                        failed,
                        resolved,
                        conflicts: 0,
                    })
                }
            }
        })
    }
}

/// What a batch produced besides its raw records.
#[derive(Default)]
struct PageParts {
    /// Reshaped records for the store; none: the raw records are the
    /// result.
    mapped: Option<Vec<Record>>,
    links: Vec<IdLink>,
    dead_letters: Vec<DeadLetter>,
}

/// One durable batch.
struct Committed {
    read: u64,
    written: u64,
    failed: u64,
    resolved: u64,
    conflicts: u64,
}

#[derive(Default)]
struct Progress {
    pages: u64,
    read: u64,
    written: u64,
    failed: u64,
    resolved: u64,
    conflicts: u64,
}

impl Progress {
    fn add(&mut self, batch: Committed, observer: &dyn RunObserver) {
        self.pages += 1;
        self.read += batch.read;
        self.written += batch.written;
        self.failed += batch.failed;
        self.resolved += batch.resolved;
        self.conflicts += batch.conflicts;
        observer.page_committed(batch.read);
    }
}

/// The streams a run reads and writes must exist, and the one written
/// must take writes: checked before anything is read or reset.
fn check_streams(plan: &Plan, feed: &Feed) -> Result<(), Stop> {
    if let Feed::Partner { source, .. } = feed
        && source.spec().stream(&plan.flow.stream).is_none()
    {
        return Err(Stop::Failed(unknown_stream(source, &plan.flow.stream)));
    }
    let Destination::Connection { connection, stream } = &plan.destination else {
        return Ok(());
    };
    let Some(capabilities) = connection.spec().stream(stream) else {
        return Err(Stop::Failed(unknown_stream(connection, stream)));
    };
    if !capabilities.writable() {
        return Err(Stop::Failed(
            Diagnostic::new(
                ErrorCode::ConnectorUnsupported,
                format!(
                    "the flow writes to stream `{stream}` of connection `{}`, which connector `{}` declares read-only",
                    connection.id(),
                    connection.plugin().label()
                ),
            )
            .with_hint(format!(
                "write to a stream `weir discover {}` marks writable, or deliver to the store",
                connection.id()
            )),
        ));
    }
    Ok(())
}

/// A flow names a stream its connector does not have.
fn unknown_stream(connection: &Connection, stream: &str) -> Diagnostic {
    let spec = connection.spec();
    Diagnostic::new(
        ErrorCode::UnknownStream,
        format!(
            "connector `{}` of connection `{}` has no stream `{stream}`",
            connection.plugin().label(),
            connection.id()
        ),
    )
    .with_hint(format!(
        "its streams: {}",
        spec.streams
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
