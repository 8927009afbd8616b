//! Pages committed with their checkpoint, and the sweep of a read from
//! scratch.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::changes::log_changes;
use super::records::{insert_dead_letters, replace_mapped, upsert_links};
use crate::clock::Clock;
use crate::contract::{ChangeKind, Checkpoint, Record};
use crate::ids::{ConnectionId, FlowId, RunId};
use crate::store::{
    ChangeSource, CheckpointRecord, Delivered, PageCommit, PageOutcome, StoreError, Sweep,
    SyncStore,
};

/// The records of stream `?1` that a read from scratch begun at `?2` has
/// not seen and that nothing stored since it began (a webhook may have
/// brought a record after the read passed its place): gone at the partner.
macro_rules! unseen {
    () => {
        "stream_id = ?1 AND deleted = 0 AND stored_at < ?2 AND (seen_at IS NULL OR seen_at < ?2)"
    };
}

impl SyncStore for SqliteStore {
    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn checkpoint(&self, flow: &FlowId, stream: &str) -> Result<Option<Checkpoint>, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT format, state FROM checkpoints WHERE flow = ?1 AND stream = ?2",
                params![flow.as_str(), stream],
                |row| {
                    Ok(Checkpoint {
                        format: row.get(0)?,
                        state: row.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    fn checkpoints(&self, flow: &FlowId) -> Result<Vec<CheckpointRecord>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT stream, format, state, run_id, updated_at FROM checkpoints WHERE flow = ?1 ORDER BY stream",
            )?;
            stmt.query_map(params![flow.as_str()], |row| {
                Ok(CheckpointRecord {
                    flow: flow.to_string(),
                    stream: row.get(0)?,
                    checkpoint: Checkpoint {
                        format: row.get(1)?,
                        state: row.get(2)?,
                    },
                    run: row.get::<_, Option<i64>>(3)?.map(RunId),
                    updated_at_ms: row.get(4)?,
                })
            })?
            .collect()
        })
    }

    fn replace_checkpoint(
        &self,
        flow: &FlowId,
        stream: &str,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO checkpoints (flow, stream, format, state, run_id, updated_at)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5)
                 ON CONFLICT (flow, stream) DO UPDATE SET
                   format = excluded.format, state = excluded.state, updated_at = excluded.updated_at",
                params![flow.as_str(), stream, checkpoint.format, checkpoint.state, self.clock.now_ms()],
            )
            .map(drop)
        })
    }

    fn commit_page(&self, commit: &PageCommit<'_>) -> Result<PageOutcome, StoreError> {
        let now = self.clock.now_ms();
        self.with(|conn| {
            let tx = conn.transaction()?;
            let source = &commit.source;
            let merged =
                self.merge_records(&tx, source.connection, source.stream, source.records, now)?;
            let raw = PageOutcome {
                changed: merged.applied.len() as u64,
                unchanged: (source.records.len() - merged.applied.len()) as u64,
                swept: 0,
                conflicts: merged.conflicts,
            };
            if commit.log_changes {
                log_changes(
                    &tx,
                    source.connection,
                    source.stream,
                    source.records,
                    ChangeSource::Poll,
                    now,
                )?;
            }
            let written = match commit.delivered {
                Delivered::Raw => raw.changed,
                Delivered::Mapped(records) => {
                    replace_mapped(&tx, commit.flow, records, now)?;
                    records.len() as u64
                }
                Delivered::Written(links) => {
                    upsert_links(&tx, commit.flow, links, now)?;
                    links.len() as u64
                }
            };
            insert_dead_letters(&tx, commit.flow, commit.run, commit.dead_letters, now)?;
            save_checkpoint(
                &tx,
                commit.flow,
                commit.stream,
                commit.checkpoint,
                Some(commit.run),
                now,
            )?;
            let swept = match commit.sweep {
                Sweep::Off => 0,
                Sweep::Track {
                    began_at_ms,
                    last_page,
                } => {
                    let stream_id =
                        self.stream_id(&tx, source.connection.as_str(), source.stream)?;
                    let sweep = SweepStep {
                        flow: commit.flow,
                        stream: commit.stream,
                        stream_id,
                        began_at_ms,
                        last_page,
                        mapped: matches!(commit.delivered, Delivered::Mapped(_)),
                    };
                    sweep.commit(&tx, source.records, now)?
                }
            };
            let written = written + swept;
            tx.prepare_cached(
                "UPDATE runs SET pages = pages + 1, records_read = records_read + ?2,
                   records_written = records_written + ?3, records_failed = records_failed + ?4,
                   conflicts = conflicts + ?5, committed_at = ?6
                 WHERE id = ?1",
            )?
            .execute(params![
                commit.run.0,
                source.records.len() as i64,
                written as i64,
                commit.dead_letters.len() as i64,
                raw.conflicts as i64,
                now
            ])?;
            tx.commit()?;
            Ok(PageOutcome {
                changed: written,
                unchanged: raw.unchanged,
                swept,
                conflicts: raw.conflicts,
            })
        })
    }

    fn unseen(
        &self,
        flow: &FlowId,
        connection: &ConnectionId,
        stream: &str,
        began_at_ms: Option<i64>,
    ) -> Result<Vec<Record>, StoreError> {
        self.with(|conn| {
            let since = match began_at_ms {
                Some(began) => began,
                None => match sweep_from(conn, flow, stream)? {
                    Some(since) => since,
                    None => return Ok(Vec::new()),
                },
            };
            let stream_id: Option<i64> = conn
                .prepare_cached("SELECT id FROM streams WHERE connection = ?1 AND name = ?2")?
                .query_row(params![connection.as_str(), stream], |row| row.get(0))
                .optional()?;
            let Some(stream_id) = stream_id else {
                return Ok(Vec::new());
            };
            conn.prepare_cached(concat!(
                "SELECT key, data FROM records WHERE ",
                unseen!(),
                " ORDER BY key"
            ))?
            .query_map(params![stream_id, since], |row| {
                Ok(Record {
                    key: row.get(0)?,
                    version: None,
                    kind: ChangeKind::Delete,
                    data: row.get(1)?,
                })
            })?
            .collect()
        })
    }

    fn reset(&self, flow: &FlowId) -> Result<usize, StoreError> {
        self.with(|conn| {
            conn.execute(
                "DELETE FROM checkpoints WHERE flow = ?1",
                params![flow.as_str()],
            )
        })
    }
}

/// When the read from scratch of a flow's stream under way began, if one is.
fn sweep_from(conn: &Connection, flow: &FlowId, stream: &str) -> rusqlite::Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT sweep_from FROM checkpoints WHERE flow = ?1 AND stream = ?2")?
        .query_row(params![flow.as_str(), stream], |row| row.get(0))
        .optional()?
        .flatten())
}

/// One page's part of a sweep (see [`Sweep`]).
struct SweepStep<'a> {
    flow: &'a FlowId,
    stream: &'a str,
    stream_id: i64,
    began_at_ms: Option<i64>,
    last_page: bool,
    /// The flow keeps reshaped copies, deleted along with the records.
    mapped: bool,
}

impl SweepStep<'_> {
    /// Notes the page's records as seen by the read in progress, if one is;
    /// on its last page, deletes what it did not see. Returns how many.
    fn commit(
        &self,
        tx: &rusqlite::Transaction<'_>,
        records: &[Record],
        now: i64,
    ) -> rusqlite::Result<u64> {
        if let Some(began) = self.began_at_ms {
            tx.prepare_cached(
                "UPDATE checkpoints SET sweep_from = ?3 WHERE flow = ?1 AND stream = ?2",
            )?
            .execute(params![self.flow.as_str(), self.stream, began])?;
        }
        // An incremental read (no read from scratch under way) finds nothing.
        let Some(sweep_from) = sweep_from(tx, self.flow, self.stream)? else {
            return Ok(0);
        };
        let mut seen =
            tx.prepare_cached("UPDATE records SET seen_at = ?3 WHERE stream_id = ?1 AND key = ?2")?;
        for record in records {
            seen.execute(params![self.stream_id, record.key, now])?;
        }
        if !self.last_page {
            return Ok(0);
        }
        // The version goes: whatever the partner sends next is newer.
        let swept: Vec<String> = tx
            .prepare_cached(concat!(
                "UPDATE records SET deleted = 1, version = NULL, stored_at = ?3 WHERE ",
                unseen!(),
                " RETURNING key"
            ))?
            .query_map(params![self.stream_id, sweep_from, now], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if self.mapped {
            let mut delete = tx.prepare_cached(
                "UPDATE mapped_records SET deleted = 1, version = NULL, mapped_at = ?3
                 WHERE flow = ?1 AND key = ?2",
            )?;
            for key in &swept {
                delete.execute(params![self.flow.as_str(), key, now])?;
            }
        }
        tx.prepare_cached(
            "UPDATE checkpoints SET sweep_from = NULL WHERE flow = ?1 AND stream = ?2",
        )?
        .execute(params![self.flow.as_str(), self.stream])?;
        Ok(swept.len() as u64)
    }
}

fn save_checkpoint(
    tx: &rusqlite::Transaction<'_>,
    flow: &FlowId,
    stream: &str,
    checkpoint: &Checkpoint,
    run: Option<RunId>,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO checkpoints (flow, stream, format, state, run_id, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (flow, stream) DO UPDATE SET
           format = excluded.format, state = excluded.state,
           run_id = coalesce(excluded.run_id, checkpoints.run_id), updated_at = excluded.updated_at",
    )?
    .execute(params![flow.as_str(), stream, checkpoint.format, checkpoint.state, run.map(|r| r.0), now])?;
    Ok(())
}
