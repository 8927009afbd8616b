//! Where a run's records come from. Every feed yields batches the one
//! runner reshapes, delivers and commits the same way: pages read from the
//! partner, changes a webhook brought, records kept in the store (a
//! changed mapping applied again), dead letters (retried once their cause
//! is fixed).

mod again;
mod partner;

use std::collections::HashMap;
use std::sync::Arc;

pub(super) use again::{ChangePages, DeadLetterPages, StoredPages};
pub(super) use partner::PartnerPages;

use super::Plan;
use super::runner::RunOptions;
use super::stop::Stop;
use super::store_calls::StoreCalls;
use crate::connection::Connection;
use crate::contract::{Checkpoint, Record};
use crate::ids::{ConnectionId, RunId};
use crate::store::Sweep;

/// Where a run's records come from.
pub enum Feed {
    /// Pages read from the partner, from where the last run stopped.
    Partner {
        /// The connection read.
        source: Arc<Connection>,
        /// Ignore the stored checkpoint and read everything.
        full_refresh: bool,
        /// Note what the pages hold as changes a poll found, for webhook
        /// coverage (when webhooks also feed the flow).
        log_changes: bool,
    },
    /// Changes a webhook brought, already merged into the store.
    Changes(Vec<Record>),
    /// The raw records the store keeps of the flow's source stream, in
    /// key order; the source partner is never read. Deletes are delivered
    /// to a partner only by the sync that read them.
    Stored,
    /// The flow's dead letters, oldest first, each with its record as the
    /// store has it now (a copy synced since wins), or as the dead letter
    /// kept it when the store has none.
    DeadLetters,
}

impl Feed {
    /// What `weir runs` shows as the "plugin" of the run.
    pub(super) fn label(&self) -> String {
        match self {
            Feed::Partner { source, .. } => source.plugin().label(),
            Feed::Changes(_) => "webhook".into(),
            Feed::Stored => "reapply".into(),
            Feed::DeadLetters => "retry-dead-letters".into(),
        }
    }

    /// Whether the run reads everything again, checkpoint forgotten.
    pub(super) fn is_full_refresh(&self) -> bool {
        matches!(
            self,
            Feed::Partner {
                full_refresh: true,
                ..
            }
        )
    }

    /// The connector whose records may come with a version already
    /// stored but other content (merge conflicts a run reports).
    pub(super) fn connector(&self) -> Option<&str> {
        match self {
            Feed::Partner { source, .. } => Some(&source.plugin().name),
            _ => None,
        }
    }
}

/// What a feed needs of its run.
pub(super) struct RunContext<'a> {
    pub plan: &'a Plan,
    pub store: &'a StoreCalls,
    pub options: &'a RunOptions,
    pub run: RunId,
}

/// A feed, opened for one run.
pub(super) trait Pages {
    /// Whether the next batch may be read while the last one commits;
    /// not when what is left to read depends on that commit.
    fn reads_ahead(&self) -> bool {
        true
    }

    /// The next batch; none when the feed has run dry.
    async fn next(&mut self, run: &RunContext<'_>) -> Result<Option<Batch>, Stop>;
}

/// Records handled together, and made durable in one transaction.
pub(super) struct Batch {
    /// The records, in the order the feed gave them.
    pub records: Vec<Record>,
    /// How the batch is made durable.
    pub kind: BatchKind,
    /// The feed has nothing after it.
    pub last: bool,
}

/// How a batch is made durable.
pub(super) enum BatchKind {
    /// A page of the partner: its raw records are stored, with the
    /// checkpoint after them.
    Page {
        /// The connection read.
        connection: ConnectionId,
        /// Where the next read starts.
        checkpoint: Checkpoint,
        /// The page's part in finding deletes by absence.
        sweep: Sweep,
        /// The records as changes a poll saw (webhook coverage).
        log_changes: bool,
    },
    /// Records the store holds, delivered again: the dead letters of
    /// their keys are settled by the commit.
    Again { dead: DeadLetterIds },
}

impl Batch {
    /// The last page of a read from scratch that finds deletes by
    /// absence: a partner destination must hear of them before they are
    /// committed. When the page also starts the read: when it began.
    pub fn ends_a_sweep(&self) -> Option<(&ConnectionId, Option<i64>)> {
        match &self.kind {
            BatchKind::Page {
                connection,
                sweep:
                    Sweep::Track {
                        began_at_ms,
                        last_page: true,
                    },
                ..
            } => Some((connection, *began_at_ms)),
            _ => None,
        }
    }
}

/// Dead letter ids by the source key of their record.
pub(super) type DeadLetterIds = HashMap<String, Vec<i64>>;
