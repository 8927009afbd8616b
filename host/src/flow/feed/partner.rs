//! Pages read from the partner, from the stored checkpoint (migrated to
//! the connector's format) or from scratch.

use std::sync::Arc;

use super::{Batch, BatchKind, Pages, RunContext};
use crate::config::FlowConfig;
use crate::connection::Connection;
use crate::contract::{Checkpoint, DeleteFeed, Page};
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::flow::retry::{Attempts, Next, RetryPolicy};
use crate::flow::stop::Stop;
use crate::store::Sweep;

/// A read of the partner, one page at a time.
pub(in crate::flow) struct PartnerPages {
    source: Arc<Connection>,
    /// Where the next read starts; none: from scratch.
    checkpoint: Option<Checkpoint>,
    log_changes: bool,
    /// The stream reports no deletes: a read from scratch finds them.
    finds_deletes: bool,
    /// Until the first page of a read from scratch is committed: when
    /// that read began (the sweep counts what it sees from then on).
    began_at_ms: Option<i64>,
    done: bool,
}

impl PartnerPages {
    /// Opens a read: from scratch for a full refresh (the checkpoint is
    /// forgotten before the first request, so a full refresh that dies
    /// before its first page commits is carried on by the next run, delete
    /// sweep included), else from the stored checkpoint. The runner has
    /// checked the stream exists.
    pub async fn open(
        source: Arc<Connection>,
        full_refresh: bool,
        log_changes: bool,
        run: &RunContext<'_>,
    ) -> Result<Self, Stop> {
        let flow = &run.plan.flow;
        let checkpoint = if full_refresh {
            let id = flow.id.clone();
            run.store.call(move |store| store.reset(&id)).await?;
            None
        } else {
            resume_point(flow, &source, run).await?
        };
        let finds_deletes = source
            .spec()
            .stream(&flow.stream)
            .is_some_and(|stream| stream.deletes == DeleteFeed::None);
        Ok(Self {
            began_at_ms: checkpoint
                .is_none()
                .then(|| run.store.get().clock().now_ms()),
            // Webhook coverage counts changes polls find; a first full read
            // (a backfill) finds records, not changes webhooks would report.
            log_changes: checkpoint.is_some() && log_changes,
            checkpoint,
            finds_deletes,
            source,
            done: false,
        })
    }
}

impl Pages for PartnerPages {
    async fn next(&mut self, run: &RunContext<'_>) -> Result<Option<Batch>, Stop> {
        if self.done {
            return Ok(None);
        }
        let flow = &run.plan.flow;
        let page = read_with_retry(
            &self.source,
            &flow.stream,
            self.checkpoint.clone(),
            &run.options.retry,
        )
        .await
        .map_err(|stop| denied_by_checkpoint(stop, flow, self.checkpoint.as_ref()))?;
        let last = !page.has_more;
        self.done = last;
        let sweep = if self.finds_deletes {
            Sweep::Track {
                began_at_ms: self.began_at_ms.take(),
                last_page: last,
            }
        } else {
            Sweep::Off
        };
        // The commit of page k runs while page k+1 is read: the read only
        // needs page k's checkpoint, which is known before it is durable. A
        // crash meanwhile resumes from page k-1 and reads page k again.
        self.checkpoint = Some(page.checkpoint.clone());
        Ok(Some(Batch {
            records: page.records,
            kind: BatchKind::Page {
                connection: self.source.id().clone(),
                checkpoint: page.checkpoint,
                sweep,
                log_changes: self.log_changes,
            },
            last,
        }))
    }
}

/// The stored checkpoint, migrated to the connector's current format.
async fn resume_point(
    flow: &FlowConfig,
    source: &Connection,
    run: &RunContext<'_>,
) -> Result<Option<Checkpoint>, Stop> {
    let stored = {
        let (id, stream) = (flow.id.clone(), flow.stream.clone());
        run.store
            .call(move |store| store.checkpoint(&id, &stream))
            .await?
    };
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
    {
        let (id, stream, checkpoint) = (flow.id.clone(), flow.stream.clone(), migrated.clone());
        run.store
            .call(move |store| store.replace_checkpoint(&id, &stream, &checkpoint))
            .await?;
    }
    tracing::info!(flow = %flow.id, from, to = current, "migrated the stored checkpoint");
    Ok(Some(migrated))
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
