use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Destination;
use super::bounds::{Overrun, RunBounds};
use super::destination::{self, Undelivered};
use super::reshape::{Reshaped, Reshaper};
use super::retry::{Attempts, Next, RetryPolicy};
use crate::config::FlowConfig;
use crate::connection::Connection;
use crate::connector::{Checkpoint, ConnectorError, DeleteFeed, Page, Record};
use crate::diagnostic::{Diagnostic, ErrorCode};
use crate::ids::{FlowId, RunId};
use crate::runtime::CallError;
use crate::store::{
    DeadLetter, Delivered, FlowStore, IdLink, PageCommit, PageOutcome, RunEnd, RunStatus,
    SourcePage, StoreError, Sweep,
};

/// How to run a flow.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Ignore the stored checkpoint and read everything.
    pub full_refresh: bool,
    /// Retries and pauses.
    pub retry: RetryPolicy,
    /// Ends the run at its last committed page (shutdown): the page in
    /// flight is dropped, and read again by the next run.
    pub cancel: Option<CancellationToken>,
    /// Notes what polls find, for webhook coverage (when webhooks also feed
    /// the flow).
    pub log_changes: bool,
}

/// Hears about a run's progress (e.g. to draw a progress bar).
pub trait RunObserver: Send + Sync {
    /// A page was made durable.
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
    /// Pages committed.
    pub pages: u64,
    /// Records read.
    pub records_read: u64,
    /// Records changed at the destination.
    pub records_written: u64,
    /// Records sent to the dead letters.
    pub records_failed: u64,
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
    store: Arc<dyn FlowStore>,
}

/// Why a run stopped early.
enum Stop {
    Failed(Diagnostic),
    Paused(Diagnostic, Option<Duration>),
    Cancelled,
    Store(StoreError),
}

impl Stop {
    fn paused(error: &CallError) -> Self {
        let wait = match error.connector_error() {
            Some(ConnectorError::RateLimited { retry_after, .. }) => Some(*retry_after),
            _ => None,
        };
        Stop::Paused(error.diagnostic(), wait)
    }
}

impl From<Overrun> for Stop {
    fn from(overrun: Overrun) -> Self {
        match overrun {
            Overrun::Shutdown => Stop::Cancelled,
            Overrun::Deadline(diagnostic) => Stop::Failed(diagnostic),
        }
    }
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Stop::Store(error)
    }
}

impl From<Undelivered> for Stop {
    fn from(error: Undelivered) -> Self {
        match error {
            Undelivered::Store(error) => Stop::Store(error),
            Undelivered::Pause(error) => Stop::paused(&error),
            Undelivered::Fail(error) => Stop::Failed(error.diagnostic()),
        }
    }
}

/// The legs of a flow: where pages come from, how they are reshaped, where
/// they go.
pub struct Legs<'a> {
    /// The connection read from.
    pub source: &'a Connection,
    /// Mapping and transforms.
    pub reshaper: &'a Reshaper,
    /// Where records go.
    pub destination: &'a Destination,
}

impl FlowRunner {
    /// A runner over a store.
    pub fn new(store: Arc<dyn FlowStore>) -> Self {
        Self { store }
    }

    /// Runs a flow once: reads pages from where the last run stopped until
    /// the source has no more, reshaping them and committing each page with
    /// its checkpoint.
    pub async fn run(
        &self,
        flow: &FlowConfig,
        legs: &Legs<'_>,
        options: &RunOptions,
        observer: &dyn RunObserver,
    ) -> anyhow::Result<RunSummary> {
        let started = Instant::now();
        let run = self
            .blocking({
                let (flow, plugin, full) = (
                    flow.id.clone(),
                    legs.source.plugin().label(),
                    options.full_refresh,
                );
                move |store| store.start_run(&flow, &plugin, full)
            })
            .await?;
        let mut progress = Progress::default();
        let outcome = self
            .read_all(flow, run, legs, options, observer, &mut progress)
            .await;
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
        self.blocking(move |store| store.finish_run(run, &end))
            .await?;
        if progress.conflicts > 0 {
            let warning = crate::store::conflict_warning(
                &legs.source.plugin().name,
                &flow.stream,
                progress.conflicts,
            );
            tracing::warn!("flow `{}`: {warning}", flow.id);
        }
        Ok(RunSummary {
            run,
            flow: flow.id.clone(),
            status,
            pages: progress.pages,
            records_read: progress.read,
            records_written: progress.written,
            records_failed: progress.failed,
            conflicts: progress.conflicts,
            elapsed: started.elapsed(),
            resume_after,
            error,
        })
    }

    async fn read_all(
        &self,
        flow: &FlowConfig,
        run: RunId,
        legs: &Legs<'_>,
        options: &RunOptions,
        observer: &dyn RunObserver,
        progress: &mut Progress,
    ) -> Result<(), Stop> {
        let source = legs.source;
        check_streams(flow, source, legs.destination)?;
        let mut checkpoint = if options.full_refresh {
            // Forgotten before the first request: a full refresh that dies
            // before its first page commits is carried on by the next run,
            // from scratch, delete sweep included.
            self.blocking({
                let id = flow.id.clone();
                move |store| store.reset(&id)
            })
            .await?;
            None
        } else {
            self.resume_point(flow, source).await?
        };
        // Webhook coverage counts changes polls find; a first full read
        // (a backfill) finds records, not changes webhooks would report.
        let log_changes = checkpoint.is_some() && options.log_changes;
        let finds_deletes = finds_deletes_by_absence(flow, source);
        // Until the first page of a read from scratch is committed: when
        // that read began (the sweep counts what it sees from then on).
        let mut began_at_ms = checkpoint.is_none().then(crate::unix_time::now_ms);
        // The commit of page k runs while page k+1 is read: the read only
        // needs page k's checkpoint, which is known before it is durable. A
        // crash meanwhile resumes from page k-1 and reads page k again.
        let mut pending: Option<JoinHandle<Result<Committed, StoreError>>> = None;
        let bounds = RunBounds::start(flow, options.cancel.as_ref());
        let result = loop {
            if let Err(overrun) = bounds.check() {
                break Err(overrun.into());
            }
            let read = read_with_retry(source, &flow.stream, checkpoint.clone(), &options.retry);
            let page = match bounds.within(read).await {
                Ok(page) => page,
                Err(stop) => break Err(denied_by_checkpoint(stop, flow, checkpoint.as_ref())),
            };
            let has_more = page.has_more;
            // A partner destination must hear of the deletes the last page
            // of a sweep finds before they are committed.
            let absent = if finds_deletes && !has_more && legs.destination.is_partner() {
                if let Some(previous) = pending.take() {
                    progress.add(join(previous).await?, observer);
                }
                match self.unseen(flow, source, &page, began_at_ms).await {
                    Ok(absent) => absent,
                    Err(stop) => break Err(stop),
                }
            } else {
                Vec::new()
            };
            let parts = match bounds
                .within(self.deliver(flow, legs, &page, &absent, &options.retry))
                .await
            {
                Ok(parts) => parts,
                Err(stop) => break Err(stop),
            };
            if let Some(previous) = pending.take() {
                progress.add(join(previous).await?, observer);
            }
            let sweep = if finds_deletes {
                Sweep::Track {
                    began_at_ms: began_at_ms.take(),
                    last_page: !has_more,
                }
            } else {
                Sweep::Off
            };
            checkpoint = Some(page.checkpoint.clone());
            let notes = PageNotes { log_changes, sweep };
            pending = Some(self.commit(flow, run, source, page, parts, notes));
            if !has_more {
                break Ok(());
            }
        };
        if let Some(previous) = pending.take() {
            progress.add(join(previous).await?, observer);
        }
        result
    }

    /// The stored records a sweep's last page finds gone from the source,
    /// as deletes (see [`Sweep`]).
    async fn unseen(
        &self,
        flow: &FlowConfig,
        source: &Connection,
        last_page: &Page,
        began_at_ms: Option<i64>,
    ) -> Result<Vec<Record>, Stop> {
        let (id, connection, stream) = (flow.id.clone(), source.id().clone(), flow.stream.clone());
        let unseen = self
            .blocking(move |store| store.unseen(&id, &connection, &stream, began_at_ms))
            .await?;
        // The last page's own records are seen once it commits.
        let on_page: std::collections::HashSet<&str> =
            last_page.records.iter().map(|r| r.key.as_str()).collect();
        Ok(unseen
            .into_iter()
            .filter(|record| !on_page.contains(record.key.as_str()))
            .collect())
    }

    /// Reshapes a page and hands it to its destination, with `absent`: the
    /// deletes a sweep found, for a partner destination.
    async fn deliver(
        &self,
        flow: &FlowConfig,
        legs: &Legs<'_>,
        page: &Page,
        absent: &[Record],
        retry: &RetryPolicy,
    ) -> Result<PageParts, Stop> {
        let reshaped = if legs.reshaper.is_identity() {
            None
        } else {
            Some(
                legs.reshaper
                    .reshape(&page.records)
                    .await
                    .map_err(Stop::from)?,
            )
        };
        match legs.destination {
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
                    None => (page.records.clone(), Vec::new()),
                    Some(Reshaped { records, failed }) => (records, failed),
                };
                // Deletes need no reshaping: only their link is used.
                records.extend_from_slice(absent);
                let raw = if absent.is_empty() {
                    std::borrow::Cow::Borrowed(&page.records[..])
                } else {
                    std::borrow::Cow::Owned([&page.records[..], absent].concat())
                };
                let delivered = destination::deliver_retrying(
                    &flow.id,
                    &records,
                    &raw,
                    connection,
                    stream,
                    self.store.as_ref(),
                    retry,
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

    /// The stored checkpoint, migrated to the connector's current format.
    async fn resume_point(
        &self,
        flow: &FlowConfig,
        source: &Connection,
    ) -> Result<Option<Checkpoint>, Stop> {
        let stored = self
            .blocking({
                let (id, stream) = (flow.id.clone(), flow.stream.clone());
                move |store| store.checkpoint(&id, &stream)
            })
            .await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let current = source.spec().checkpoint_format;
        if stored.format == current {
            return Ok(Some(stored));
        }
        let from = stored.format;
        let migrated = source
            .migrate_checkpoint(&flow.stream, stored)
            .await
            .ok()
            .filter(|c| c.format == current)
            .ok_or_else(|| {
                Stop::Failed(
                    Diagnostic::new(
                        ErrorCode::CheckpointMigration,
                        format!(
                            "flow `{}` has a checkpoint in format {from}, which connector `{}` (format {current}) cannot migrate",
                            flow.id,
                            source.plugin().label()
                        ),
                    )
                    .with_hint(format!(
                        "install a connector version that migrates format {from}, or run `weir state reset {}` to start a full sync deliberately",
                        flow.id
                    )),
                )
            })?;
        self.blocking({
            let (id, stream, checkpoint) = (flow.id.clone(), flow.stream.clone(), migrated.clone());
            move |store| store.replace_checkpoint(&id, &stream, &checkpoint)
        })
        .await?;
        tracing::info!(flow = %flow.id, from, to = current, "migrated the stored checkpoint");
        Ok(Some(migrated))
    }

    fn commit(
        &self,
        flow: &FlowConfig,
        run: RunId,
        source: &Connection,
        page: Page,
        parts: PageParts,
        notes: PageNotes,
    ) -> JoinHandle<Result<Committed, StoreError>> {
        let store = self.store.clone();
        let (flow_id, stream, connection) =
            (flow.id.clone(), flow.stream.clone(), source.id().clone());
        let writes = flow.destination != crate::config::Destination::Store;
        tokio::task::spawn_blocking(move || {
            let delivered = match (&parts.mapped, writes) {
                (_, true) => Delivered::Written(&parts.links),
                (Some(mapped), false) => Delivered::Mapped(mapped),
                (None, false) => Delivered::Raw,
            };
            let outcome = store.commit_page(&PageCommit {
                flow: &flow_id,
                stream: &stream,
                run,
                checkpoint: &page.checkpoint,
                source: SourcePage {
                    connection: &connection,
                    stream: &stream,
                    records: &page.records,
                },
                delivered,
                dead_letters: &parts.dead_letters,
                log_changes: notes.log_changes,
                sweep: notes.sweep,
            })?;
            Ok(Committed {
                outcome,
                read: page.records.len() as u64,
                failed: parts.dead_letters.len() as u64,
            })
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn FlowStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .expect("store calls do not panic")
    }
}

/// What a page produced besides its raw records.
#[derive(Default)]
struct PageParts {
    mapped: Option<Vec<Record>>,
    links: Vec<IdLink>,
    dead_letters: Vec<DeadLetter>,
}

/// One durable page.
struct Committed {
    outcome: PageOutcome,
    read: u64,
    failed: u64,
}

#[derive(Default)]
struct Progress {
    pages: u64,
    read: u64,
    written: u64,
    failed: u64,
    conflicts: u64,
}

impl Progress {
    fn add(&mut self, page: Committed, observer: &dyn RunObserver) {
        self.pages += 1;
        self.read += page.read;
        self.written += page.outcome.changed;
        self.failed += page.failed;
        self.conflicts += page.outcome.conflicts;
        observer.page_committed(page.read);
    }
}

async fn join(handle: JoinHandle<Result<Committed, StoreError>>) -> Result<Committed, StoreError> {
    handle.await.expect("store calls do not panic")
}

async fn read_with_retry(
    source: &Connection,
    stream: &str,
    checkpoint: Option<Checkpoint>,
    retry: &RetryPolicy,
) -> Result<Page, Stop> {
    let mut attempts = Attempts::within(source.config().limits.deadline);
    loop {
        let deadline = attempts.deadline().expect("a window was given");
        match source
            .read_until(stream, checkpoint.clone(), deadline)
            .await
        {
            Ok(page) => return Ok(page),
            Err(error) => match retry.next(&error, &mut attempts) {
                Next::RetryAfter(delay) => {
                    tracing::info!(connection = %source.id(), "retrying in {delay:?}: {error}");
                    tokio::time::sleep(delay).await;
                }
                Next::Pause => return Err(Stop::paused(&error)),
                Next::Fail => return Err(Stop::Failed(error.diagnostic())),
            },
        }
    }
}

/// What a page's commit notes besides its records.
#[derive(Debug, Clone, Copy)]
struct PageNotes {
    /// The records as changes a poll saw (webhook coverage).
    log_changes: bool,
    /// The page's part in finding deletes by absence.
    sweep: Sweep,
}

/// Whether a read from scratch deletes the stored records it does not see:
/// for streams that report no deletes.
fn finds_deletes_by_absence(flow: &FlowConfig, source: &Connection) -> bool {
    source
        .spec()
        .stream(&flow.stream)
        .is_some_and(|stream| stream.deletes == DeleteFeed::None)
}

/// A run denied an address its own checkpoint holds (a next-page URL the
/// partner once gave) fails the same way on every run from there: the
/// hint says how to look at the checkpoint and start over.
fn denied_by_checkpoint(stop: Stop, flow: &FlowConfig, checkpoint: Option<&Checkpoint>) -> Stop {
    let Stop::Failed(mut diagnostic) = stop else {
        return stop;
    };
    let from_checkpoint = diagnostic.code == ErrorCode::EgressDenied
        && checkpoint.is_some_and(|checkpoint| {
            hosts_in(&checkpoint.state).any(|host| diagnostic.message.contains(&host))
        });
    if from_checkpoint {
        let note = format!(
            "the address comes from the flow's checkpoint, so every run from it is denied: `weir state show {flow}` shows it, `weir state reset {flow}` starts over",
            flow = flow.id
        );
        diagnostic.hint = Some(match diagnostic.hint {
            Some(hint) => format!("{hint}; {note}"),
            None => note,
        });
    }
    Stop::Failed(diagnostic)
}

/// The hosts (with their port, when the URL gives one) of the URLs
/// written in a checkpoint's state.
fn hosts_in(state: &str) -> impl Iterator<Item = String> + '_ {
    state.match_indices("http").filter_map(|(at, _)| {
        let candidate: String = state[at..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\\' | '\''))
            .collect();
        let url = url::Url::parse(&candidate).ok()?;
        let host = url.host_str()?;
        Some(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        })
    })
}

fn check_streams(
    flow: &FlowConfig,
    source: &Connection,
    destination: &Destination,
) -> Result<(), Stop> {
    let unknown = |connection: &Connection, stream: &str| {
        let spec = connection.spec();
        Stop::Failed(
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
            )),
        )
    };
    if source.spec().stream(&flow.stream).is_none() {
        return Err(unknown(source, &flow.stream));
    }
    if let Destination::Connection { connection, stream } = destination {
        let Some(capabilities) = connection.spec().stream(stream) else {
            return Err(unknown(connection, stream));
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
    }
    Ok(())
}

impl From<CallError> for Stop {
    fn from(error: CallError) -> Self {
        match error.connector_error() {
            Some(ConnectorError::RateLimited { .. }) => Stop::paused(&error),
            _ => Stop::Failed(error.diagnostic()),
        }
    }
}
