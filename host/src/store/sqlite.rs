use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use super::changes::{MergeDecision, StoredCopy, decide};
use super::presence::Presence;
use super::schema::MIGRATIONS;
use super::{
    ApprovedVersion, ChangeSource, ChangeStore, CheckpointRecord, Coverage, DeadLetter,
    DeadLetterRecord, Delivered, Deliveries, DeliveryFailure, EgressLog, FlowState, Handshake,
    IdLink, IdLinks, MergeOutcome, PageCommit, PageOutcome, PluginLedger, PluginRollback,
    RecordReader, RunEnd, RunLog, RunRecord, RunStatus, StoreError, SyncStore, TenantStore,
};
use crate::capability::{AuditEntry, BudgetLeft, BudgetState};
use crate::connector::{ChangeKind, Checkpoint, ConnectorError, Record};
use crate::ids::{ConnectionId, FlowId, RunId, TenantId};
use crate::store::Sweep;
use crate::tenant::Tenant;
use crate::unix_time::now_ms;

/// The records of stream `?1` that a read from scratch begun at `?2` has
/// not seen and that nothing stored since it began (a webhook may have
/// brought a record after the read passed its place): gone at the partner.
macro_rules! unseen {
    () => {
        "stream_id = ?1 AND deleted = 0 AND stored_at < ?2 AND (seen_at IS NULL OR seen_at < ?2)"
    };
}

/// The embedded store: one SQLite file in WAL mode.
///
/// Writes go through one connection (SQLite has one writer anyway); callers
/// run store methods on blocking threads, never on the async runtime.
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    stream_ids: Mutex<HashMap<(String, String), i64>>,
    /// This process, as the owner of the runs it starts.
    presence: Presence,
}

impl SqliteStore {
    /// Opens (creates) the store and brings its schema up to date, then
    /// marks the runs of processes that died interrupted.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |source: rusqlite::Error| StoreError {
            path: path.to_path_buf(),
            source: source.into(),
        };
        let mut conn = Connection::open(path).map_err(err)?;
        // WAL: readers never block the writer. NORMAL: a process crash never
        // loses a committed transaction; records and checkpoint always move
        // together, so even a power cut only rolls both back together.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(err)?;
        migrate(&mut conn).map_err(err)?;
        let presence = Presence::announce(path).map_err(|source| StoreError {
            path: path.to_path_buf(),
            source: source.into(),
        })?;
        let store = Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            stream_ids: Mutex::default(),
            presence,
        };
        let gone = store
            .presence
            .dead_owners()
            .map_err(|e| store.io_error(e))?;
        store.settle_dead_runs(&gone)?;
        Ok(store)
    }

    fn io_error(&self, source: std::io::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            source: source.into(),
        }
    }

    /// Marks the runs still `running` whose process died `interrupted`, with
    /// their end at their last commit, then forgets the dead processes.
    /// `known_dead` are owners already found dead (lock files left behind).
    fn settle_dead_runs(&self, known_dead: &[String]) -> Result<(), StoreError> {
        let owners: Vec<Option<String>> = self.with(|conn| {
            conn.prepare_cached("SELECT DISTINCT owner FROM runs WHERE status = 'running'")?
                .query_map([], |row| row.get(0))?
                .collect()
        })?;
        let mut dead: Vec<Option<String>> = known_dead.iter().cloned().map(Some).collect();
        for owner in owners {
            // Runs recorded before owners were: no process of this version.
            let alive = match &owner {
                None => false,
                Some(owner) => self
                    .presence
                    .is_alive(owner)
                    .map_err(|e| self.io_error(e))?,
            };
            if !alive && !dead.contains(&owner) {
                dead.push(owner);
            }
        }
        if dead.is_empty() {
            return Ok(());
        }
        self.with(|conn| {
            let tx = conn.transaction()?;
            {
                let mut interrupt = tx.prepare_cached(
                    "UPDATE runs SET status = 'interrupted',
                       finished_at = coalesce(committed_at, started_at),
                       error = 'its process stopped (killed or crashed) before the run ended; the next run resumes from its last committed page'
                     WHERE status = 'running' AND owner IS ?1",
                )?;
                for owner in &dead {
                    interrupt.execute(params![owner])?;
                }
            }
            tx.commit()
        })?;
        for owner in dead.iter().flatten() {
            self.presence.forget(owner);
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn).map_err(|source| StoreError {
            path: self.path.clone(),
            source: source.into(),
        })
    }

    fn stream_id(
        &self,
        tx: &rusqlite::Transaction<'_>,
        connection: &str,
        stream: &str,
    ) -> rusqlite::Result<i64> {
        let cache_key = (connection.to_string(), stream.to_string());
        if let Some(id) = self
            .stream_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cache_key)
        {
            return Ok(*id);
        }
        tx.execute(
            "INSERT INTO streams (connection, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![connection, stream],
        )?;
        let id = tx.query_row(
            "SELECT id FROM streams WHERE connection = ?1 AND name = ?2",
            params![connection, stream],
            |row| row.get(0),
        )?;
        self.stream_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cache_key, id);
        Ok(id)
    }
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

impl SyncStore for SqliteStore {
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
                params![flow.as_str(), stream, checkpoint.format, checkpoint.state, now_ms()],
            )
            .map(drop)
        })
    }

    fn commit_page(&self, commit: &PageCommit<'_>) -> Result<PageOutcome, StoreError> {
        let now = now_ms();
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

impl SqliteStore {
    /// Merges records into a stream by [`decide`], the one rule of polls and
    /// webhooks; conflicts are kept in `merge_conflicts`.
    fn merge_records(
        &self,
        tx: &rusqlite::Transaction<'_>,
        connection: &ConnectionId,
        stream: &str,
        records: &[Record],
        now: i64,
    ) -> rusqlite::Result<Merged> {
        let stream_id = self.stream_id(tx, connection.as_str(), stream)?;
        let mut stored = tx.prepare_cached(
            "SELECT version, deleted, data FROM records WHERE stream_id = ?1 AND key = ?2",
        )?;
        let mut upsert = tx.prepare_cached(
            "INSERT INTO records (stream_id, key, version, deleted, data, stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (stream_id, key) DO UPDATE SET
               version = excluded.version, deleted = excluded.deleted,
               data = excluded.data, stored_at = excluded.stored_at",
        )?;
        let mut conflict = tx.prepare_cached(
            "INSERT INTO merge_conflicts (connection, stream, key, version, kept, refused, seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut merged = Merged::default();
        for (index, record) in records.iter().enumerate() {
            let current: Option<(Option<i64>, bool, String)> = stored
                .query_row(params![stream_id, record.key], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let copy = current.as_ref().map(|(version, deleted, data)| StoredCopy {
                version: version.map(|v| v as u64),
                deleted: *deleted,
                data,
            });
            let apply = match decide(copy, record) {
                MergeDecision::Apply => true,
                MergeDecision::Stale => {
                    merged.stale += 1;
                    false
                }
                MergeDecision::Conflict { replace } => {
                    merged.conflicts += 1;
                    let stored_data = copy.map_or("", |c| c.data);
                    let (kept, refused) = if replace {
                        (record.data.as_str(), stored_data)
                    } else {
                        (stored_data, record.data.as_str())
                    };
                    conflict.execute(params![
                        connection.as_str(),
                        stream,
                        record.key,
                        record.version.map(|v| v as i64),
                        kept,
                        refused,
                        now
                    ])?;
                    replace
                }
            };
            if apply {
                upsert.execute(params![
                    stream_id,
                    record.key,
                    record.version.map(|v| v as i64),
                    record.kind == ChangeKind::Delete,
                    record.data,
                    now
                ])?;
                merged.applied.push(index);
            }
        }
        Ok(merged)
    }
}

/// What [`SqliteStore::merge_records`] did.
#[derive(Default)]
struct Merged {
    /// Indexes of the records now stored.
    applied: Vec<usize>,
    stale: u64,
    conflicts: u64,
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

fn log_changes(
    tx: &rusqlite::Transaction<'_>,
    connection: &ConnectionId,
    stream: &str,
    records: &[Record],
    via: ChangeSource,
    now: i64,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO change_log (connection, stream, key, version, via, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for record in records {
        insert.execute(params![
            connection.as_str(),
            stream,
            record.key,
            record.version.map(|v| v as i64),
            via.as_str(),
            now
        ])?;
    }
    Ok(())
}

fn replace_mapped(
    tx: &rusqlite::Transaction<'_>,
    flow: &FlowId,
    records: &[Record],
    now: i64,
) -> rusqlite::Result<()> {
    // The same version is reshaped again (a changed mapping); an older one
    // never replaces a newer one (a reapply racing a sync of the flow).
    let mut upsert = tx.prepare_cached(
        "INSERT INTO mapped_records (flow, key, version, deleted, data, mapped_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (flow, key) DO UPDATE SET version = excluded.version, deleted = excluded.deleted,
           data = excluded.data, mapped_at = excluded.mapped_at
         WHERE excluded.version IS NULL OR mapped_records.version IS NULL
            OR excluded.version >= mapped_records.version",
    )?;
    for record in records {
        upsert.execute(params![
            flow.as_str(),
            record.key,
            record.version.map(|v| v as i64),
            record.kind == ChangeKind::Delete,
            record.data,
            now
        ])?;
    }
    Ok(())
}

fn upsert_links(
    tx: &rusqlite::Transaction<'_>,
    flow: &FlowId,
    links: &[IdLink],
    now: i64,
) -> rusqlite::Result<()> {
    let mut link = tx.prepare_cached(
        "INSERT INTO id_links (flow, source_key, external_id, version, idempotency_key, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (flow, source_key) DO UPDATE SET
           external_id = excluded.external_id, version = excluded.version,
           idempotency_key = excluded.idempotency_key, updated_at = excluded.updated_at",
    )?;
    for l in links {
        link.execute(params![
            flow.as_str(),
            l.source_key,
            l.external_id,
            l.version.map(|v| v as i64),
            l.idempotency_key,
            now
        ])?;
    }
    Ok(())
}

fn insert_dead_letters(
    tx: &rusqlite::Transaction<'_>,
    flow: &FlowId,
    run: RunId,
    dead_letters: &[DeadLetter],
    now: i64,
) -> rusqlite::Result<()> {
    let mut dead = tx.prepare_cached(
        "INSERT INTO dead_letters (flow, run_id, source_key, data, error_kind, error, created_at, stage, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for d in dead_letters {
        let kind = match &d.failure {
            DeliveryFailure::Mapping(_) => "mapping",
            DeliveryFailure::Transform(e) | DeliveryFailure::Destination(e) => error_kind(e),
        };
        dead.execute(params![
            flow.as_str(),
            run.0,
            d.source_key,
            d.data,
            kind,
            d.failure.reason(),
            now,
            d.failure.stage(),
            d.version.map(|v| v as i64)
        ])?;
    }
    Ok(())
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

impl Deliveries for SqliteStore {
    fn redeliver(
        &self,
        flow: &FlowId,
        run: RunId,
        mapped: &[Record],
        links: &[IdLink],
        failed: &[DeadLetter],
        resolved: &[i64],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        self.with(|conn| {
            let tx = conn.transaction()?;
            replace_mapped(&tx, flow, mapped, now)?;
            upsert_links(&tx, flow, links, now)?;
            {
                let mut remove =
                    tx.prepare_cached("DELETE FROM dead_letters WHERE id = ?1 AND flow = ?2")?;
                for id in resolved {
                    remove.execute(params![id, flow.as_str()])?;
                }
            }
            insert_dead_letters(&tx, flow, run, failed, now)?;
            tx.prepare_cached(
                "UPDATE runs SET pages = pages + 1, records_read = records_read + ?2,
                   records_written = records_written + ?3, records_failed = records_failed + ?4,
                   committed_at = ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                run.0,
                (mapped.len().max(links.len()) + failed.len()) as i64,
                mapped.len().max(links.len()) as i64,
                failed.len() as i64,
                now
            ])?;
            tx.commit()
        })
    }

    fn dead_letters(
        &self,
        flow: &FlowId,
        limit: usize,
    ) -> Result<Vec<DeadLetterRecord>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, flow, run_id, source_key, stage, error, data, created_at, version
                 FROM dead_letters WHERE flow = ?1 ORDER BY id LIMIT ?2",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            stmt.query_map(params![flow.as_str(), limit], |row| {
                Ok(DeadLetterRecord {
                    id: row.get(0)?,
                    flow: row.get(1)?,
                    run: RunId(row.get(2)?),
                    source_key: row.get(3)?,
                    version: row.get::<_, Option<i64>>(8)?.map(|v| v as u64),
                    stage: row.get(4)?,
                    error: row.get(5)?,
                    data: row.get(6)?,
                    created_at_ms: row.get(7)?,
                })
            })?
            .collect()
        })
    }

    fn mapped(
        &self,
        flow: &FlowId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT key, version, deleted, data FROM mapped_records
                 WHERE flow = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
            )?;
            stmt.query_map(
                params![flow.as_str(), after.unwrap_or(""), limit as i64],
                record_row,
            )?
            .collect()
        })
    }
}

fn record_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        key: row.get(0)?,
        version: row.get::<_, Option<i64>>(1)?.map(|v| v as u64),
        kind: if row.get::<_, bool>(2)? {
            ChangeKind::Delete
        } else {
            ChangeKind::Upsert
        },
        data: row.get(3)?,
    })
}

fn error_kind(error: &ConnectorError) -> &'static str {
    match error {
        ConnectorError::Config(_) => "config",
        ConnectorError::Auth(_) => "auth",
        ConnectorError::Denied(_) => "denied",
        ConnectorError::RateLimited { .. } => "rate-limited",
        ConnectorError::Transient(_) => "transient",
        ConnectorError::Permanent(_) => "permanent",
        ConnectorError::Unsupported(_) => "unsupported",
    }
}

impl RunLog for SqliteStore {
    fn start_run(
        &self,
        flow: &FlowId,
        plugin: &str,
        full_refresh: bool,
    ) -> Result<RunId, StoreError> {
        // A daemon runs for weeks: the processes that died beside it (a
        // killed `weir sync`) are noticed here too, not only at the next open.
        self.settle_dead_runs(&[])?;
        self.with(|conn| {
            conn.execute(
                "INSERT INTO runs (flow, status, full_refresh, plugin, started_at, owner)
                 VALUES (?1, 'running', ?2, ?3, ?4, ?5)",
                params![
                    flow.as_str(),
                    full_refresh,
                    plugin,
                    now_ms(),
                    self.presence.owner()
                ],
            )?;
            Ok(RunId(conn.last_insert_rowid()))
        })
    }

    fn finish_run(&self, run: RunId, end: &RunEnd) -> Result<(), StoreError> {
        let (code, message) = match &end.error {
            Some((code, message)) => (Some(code.as_str()), Some(message.as_str())),
            None => (None, None),
        };
        self.with(|conn| {
            conn.execute(
                "UPDATE runs SET status = ?2, finished_at = ?3, error_code = ?4, error = ?5 WHERE id = ?1",
                params![run.0, end.status.as_str(), now_ms(), code, message],
            )
            .map(drop)
        })
    }

    fn tenant_runs(&self, tenant: &TenantId, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        // Tenant names have no `.`, so the prefix matches that tenant alone.
        let prefix = format!("{tenant}.");
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE substr(flow, 1, length(?1)) = ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            stmt.query_map(params![prefix, limit as i64], run_row)?.collect()
        })
    }

    fn runs(&self, flow: Option<&FlowId>, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE ?1 IS NULL OR flow = ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            stmt.query_map(params![flow.map(|f| f.as_str()), limit as i64], run_row)?
            .collect()
        })
    }
}

impl RecordReader for SqliteStore {
    fn scan(
        &self,
        connection: &ConnectionId,
        stream: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.key, r.version, r.deleted, r.data FROM records r JOIN streams s ON s.id = r.stream_id
                 WHERE s.connection = ?1 AND s.name = ?2 AND r.key > ?3 ORDER BY r.key LIMIT ?4",
            )?;
            stmt.query_map(
                params![connection.as_str(), stream, after.unwrap_or(""), limit as i64],
                record_row,
            )?
            .collect()
        })
    }

    fn records_by_key(
        &self,
        connection: &ConnectionId,
        stream: &str,
        keys: &[&str],
    ) -> Result<Vec<Record>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.key, r.version, r.deleted, r.data FROM records r JOIN streams s ON s.id = r.stream_id
                 WHERE s.connection = ?1 AND s.name = ?2 AND r.key = ?3",
            )?;
            let mut records = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(record) = stmt
                    .query_row(params![connection.as_str(), stream, key], record_row)
                    .optional()?
                {
                    records.push(record);
                }
            }
            Ok(records)
        })
    }

    fn count(&self, connection: &ConnectionId, stream: &str) -> Result<u64, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT count(*) FROM records r JOIN streams s ON s.id = r.stream_id
                 WHERE s.connection = ?1 AND s.name = ?2 AND r.deleted = 0",
                params![connection.as_str(), stream],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
        })
    }
}

impl IdLinks for SqliteStore {
    fn links(&self, flow: &FlowId, keys: &[&str]) -> Result<Vec<IdLink>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT source_key, external_id, version, idempotency_key FROM id_links
                 WHERE flow = ?1 AND source_key = ?2",
            )?;
            let mut links = Vec::new();
            for key in keys {
                if let Some(link) = stmt
                    .query_row(params![flow.as_str(), key], |row| {
                        Ok(IdLink {
                            source_key: row.get(0)?,
                            external_id: row.get(1)?,
                            version: row.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                            idempotency_key: row.get(3)?,
                        })
                    })
                    .optional()?
                {
                    links.push(link);
                }
            }
            Ok(links)
        })
    }
}

impl EgressLog for SqliteStore {
    fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO http_audit (at, connection, method, origin, path, status, outcome, bytes_sent,
                       bytes_received, duration_ms, attempt, budget_tokens, budget_today)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )?;
                for e in entries {
                    insert.execute(params![
                        e.at_ms,
                        e.connection,
                        e.method,
                        e.origin,
                        e.path,
                        e.status,
                        e.outcome.as_ref(),
                        e.bytes_sent as i64,
                        e.bytes_received as i64,
                        e.duration_ms as i64,
                        e.attempt,
                        e.budget.tokens,
                        e.budget.today.map(|t| t as i64),
                    ])?;
                }
            }
            tx.commit()
        })
    }

    fn audit(
        &self,
        connection: Option<&ConnectionId>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT at, connection, method, origin, path, status, outcome, bytes_sent, bytes_received,
                        duration_ms, attempt, budget_tokens, budget_today
                 FROM http_audit WHERE ?1 IS NULL OR connection = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            stmt.query_map(params![connection.map(|c| c.as_str()), limit as i64], |row| {
                Ok(AuditEntry {
                    at_ms: row.get(0)?,
                    connection: row.get(1)?,
                    method: row.get(2)?,
                    origin: row.get(3)?,
                    path: row.get(4)?,
                    status: row.get(5)?,
                    outcome: row.get::<_, String>(6)?.into(),
                    bytes_sent: row.get::<_, i64>(7)? as u64,
                    bytes_received: row.get::<_, i64>(8)? as u64,
                    duration_ms: row.get::<_, i64>(9)? as u64,
                    attempt: row.get(10)?,
                    budget: BudgetLeft {
                        tokens: row.get(11)?,
                        today: row.get::<_, Option<i64>>(12)?.map(|t| t as u64),
                    },
                })
            })?
            .collect()
        })
    }

    fn save_budgets(&self, budgets: &[(ConnectionId, BudgetState)]) -> Result<(), StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO rate_budgets (connection, state, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (connection) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                )?;
                for (connection, state) in budgets {
                    let json = serde_json::to_string(state).expect("budget state serializes");
                    upsert.execute(params![connection.as_str(), json, now_ms()])?;
                }
            }
            tx.commit()
        })
    }

    fn load_budget(&self, connection: &ConnectionId) -> Result<Option<BudgetState>, StoreError> {
        let json: Option<String> = self.with(|conn| {
            conn.query_row(
                "SELECT state FROM rate_budgets WHERE connection = ?1",
                params![connection.as_str()],
                |row| row.get(0),
            )
            .optional()
        })?;
        // A state written by another version that no longer parses is
        // dropped: the budget then starts full, as for a new connection.
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }
}

const RUN_COLUMNS: &str = "id, flow, status, full_refresh, plugin, started_at, finished_at, pages,
    records_read, records_written, records_failed, error_code, error, conflicts";

fn run_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: RunId(row.get(0)?),
        flow: row.get(1)?,
        status: RunStatus::parse(&row.get::<_, String>(2)?),
        full_refresh: row.get(3)?,
        plugin: row.get(4)?,
        started_at_ms: row.get(5)?,
        finished_at_ms: row.get(6)?,
        pages: row.get::<_, i64>(7)? as u64,
        records_read: row.get::<_, i64>(8)? as u64,
        records_written: row.get::<_, i64>(9)? as u64,
        records_failed: row.get::<_, i64>(10)? as u64,
        error_code: row.get(11)?,
        error: row.get(12)?,
        conflicts: row.get::<_, i64>(13)? as u64,
    })
}

impl PluginLedger for SqliteStore {
    fn approved_versions(&self, name: &str) -> Result<Vec<ApprovedVersion>, StoreError> {
        self.with(|conn| {
            conn.prepare_cached(
                "SELECT name, version, content_hash, hosts, approved_at FROM plugin_versions
                 WHERE name = ?1 ORDER BY approved_at DESC, rowid DESC",
            )?
            .query_map(params![name], |row| {
                let hosts: String = row.get(3)?;
                Ok(ApprovedVersion {
                    name: row.get(0)?,
                    version: row.get(1)?,
                    content_hash: row.get(2)?,
                    hosts: serde_json::from_str(&hosts).unwrap_or_default(),
                    approved_at_ms: row.get(4)?,
                })
            })?
            .collect()
        })
    }

    fn approved_wasm(&self, content_hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT wasm FROM plugin_versions WHERE content_hash = ?1",
                params![content_hash],
                |row| row.get(0),
            )
            .optional()
        })
    }

    fn approve_version(
        &self,
        version: &ApprovedVersion,
        wasm: &[u8],
        keep: usize,
    ) -> Result<(), StoreError> {
        let hosts = serde_json::to_string(&version.hosts).expect("hosts serialize");
        self.with(|conn| {
            let tx = conn.transaction()?;
            // The wasm is written once; approving again only moves the time.
            tx.execute(
                "INSERT INTO plugin_versions (content_hash, name, version, hosts, wasm, approved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (content_hash) DO UPDATE SET approved_at = excluded.approved_at",
                params![
                    version.content_hash,
                    version.name,
                    version.version,
                    hosts,
                    wasm,
                    version.approved_at_ms
                ],
            )?;
            tx.execute(
                "DELETE FROM plugin_versions WHERE name = ?1 AND content_hash NOT IN (
                   SELECT content_hash FROM plugin_versions WHERE name = ?1
                   ORDER BY approved_at DESC, rowid DESC LIMIT ?2)",
                params![version.name, keep as i64],
            )?;
            tx.commit()
        })
    }

    fn rollback(&self, name: &str) -> Result<Option<PluginRollback>, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT file_hash, serving FROM plugin_rollbacks WHERE name = ?1",
                params![name],
                |row| {
                    Ok(PluginRollback {
                        file_hash: row.get(0)?,
                        serving: row.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    fn set_rollback(
        &self,
        name: &str,
        rollback: Option<&PluginRollback>,
    ) -> Result<(), StoreError> {
        self.with(|conn| match rollback {
            None => conn
                .execute("DELETE FROM plugin_rollbacks WHERE name = ?1", params![name])
                .map(drop),
            Some(rollback) => conn
                .execute(
                    "INSERT INTO plugin_rollbacks (name, file_hash, serving) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET file_hash = excluded.file_hash, serving = excluded.serving",
                    params![name, rollback.file_hash, rollback.serving],
                )
                .map(drop),
        })
    }
}

impl TenantStore for SqliteStore {
    fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare("SELECT document FROM tenants ORDER BY id")?;
            let docs: Vec<String> = stmt
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(docs
                .iter()
                .filter_map(|d| serde_json::from_str(d).ok())
                .collect())
        })
    }

    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let doc: Option<String> = self.with(|conn| {
            conn.query_row(
                "SELECT document FROM tenants WHERE id = ?1",
                params![id.as_str()],
                |row| row.get(0),
            )
            .optional()
        })?;
        Ok(doc.and_then(|d| serde_json::from_str(&d).ok()))
    }

    fn save_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let doc = serde_json::to_string(tenant).expect("a tenant serializes");
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO tenants (id, document, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
                params![tenant.id.as_str(), doc, now_ms()],
            )?;
            tx.execute("UPDATE tenants_generation SET generation = generation + 1", [])?;
            tx.commit()
        })
    }

    fn delete_tenant(&self, id: &TenantId) -> Result<bool, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let removed = tx.execute("DELETE FROM tenants WHERE id = ?1", params![id.as_str()])?;
            tx.execute(
                "DELETE FROM flow_states WHERE tenant = ?1",
                params![id.as_str()],
            )?;
            tx.execute(
                "UPDATE tenants_generation SET generation = generation + 1",
                [],
            )?;
            tx.commit()?;
            Ok(removed > 0)
        })
    }

    fn tenants_generation(&self) -> Result<i64, StoreError> {
        self.with(|conn| {
            conn.query_row("SELECT generation FROM tenants_generation", [], |row| {
                row.get(0)
            })
        })
    }

    fn save_flow_states(&self, states: &[FlowState]) -> Result<(), StoreError> {
        let now = now_ms();
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM flow_states", [])?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO flow_states (flow, tenant, template, enabled, schedule, next_run_at, failures,
                       healthy, last_error, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?;
                for s in states {
                    insert.execute(params![
                        s.flow,
                        s.tenant,
                        s.template,
                        s.enabled,
                        s.schedule,
                        s.next_run_at_ms,
                        s.failures,
                        s.healthy,
                        s.last_error,
                        now
                    ])?;
                }
            }
            tx.commit()
        })
    }

    fn flow_states(&self) -> Result<Vec<FlowState>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT flow, tenant, template, enabled, schedule, next_run_at, failures, healthy, last_error
                 FROM flow_states ORDER BY flow",
            )?;
            stmt.query_map([], |row| {
                Ok(FlowState {
                    flow: row.get(0)?,
                    tenant: row.get(1)?,
                    template: row.get(2)?,
                    enabled: row.get(3)?,
                    schedule: row.get(4)?,
                    next_run_at_ms: row.get(5)?,
                    failures: row.get(6)?,
                    healthy: row.get(7)?,
                    last_error: row.get(8)?,
                })
            })?
            .collect()
        })
    }

    fn last_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE id IN (SELECT max(id) FROM runs GROUP BY flow) ORDER BY flow"
            ))?;
            stmt.query_map([], run_row)?.collect()
        })
    }
}

impl ChangeStore for SqliteStore {
    fn merge(
        &self,
        connection: &ConnectionId,
        stream: &str,
        records: &[Record],
        source: ChangeSource,
    ) -> Result<MergeOutcome, StoreError> {
        let now = now_ms();
        self.with(|conn| {
            let tx = conn.transaction()?;
            let merged = self.merge_records(&tx, connection, stream, records, now)?;
            log_changes(&tx, connection, stream, records, source, now)?;
            tx.commit()?;
            Ok(MergeOutcome {
                applied: merged
                    .applied
                    .into_iter()
                    .map(|i| records[i].clone())
                    .collect(),
                stale: merged.stale,
                conflicts: merged.conflicts,
            })
        })
    }

    fn coverage(
        &self,
        connection: &ConnectionId,
        stream: &str,
        since_ms: i64,
        grace_ms: i64,
        now_ms: i64,
    ) -> Result<Coverage, StoreError> {
        let decided_before = now_ms - grace_ms;
        self.with(|conn| {
            let (changes, by_webhook): (i64, i64) = conn.query_row(
                "SELECT count(*), coalesce(sum(webhook), 0) FROM (
                   SELECT key, version, max(via = 'webhook') AS webhook FROM change_log
                   WHERE connection = ?1 AND stream = ?2 AND seen_at >= ?3 AND seen_at <= ?4
                   GROUP BY key, version)",
                params![connection.as_str(), stream, since_ms, decided_before],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            // A poll's change is covered by a webhook of that version or a
            // newer one, before the poll or within the grace period after it.
            let poll_only: i64 = conn.query_row(
                "SELECT count(*) FROM (SELECT DISTINCT p.key, p.version FROM change_log p
                 WHERE p.connection = ?1 AND p.stream = ?2 AND p.via = 'poll'
                   AND p.seen_at >= ?3 AND p.seen_at <= ?4
                   AND NOT EXISTS (
                     SELECT 1 FROM change_log w WHERE w.connection = p.connection AND w.stream = p.stream
                       AND w.key = p.key AND w.via = 'webhook'
                       AND coalesce(w.version, 0) >= coalesce(p.version, 0)
                       AND w.seen_at <= p.seen_at + ?5))",
                params![connection.as_str(), stream, since_ms, decided_before, grace_ms],
                |r| r.get(0),
            )?;
            let last = |via: &str| -> rusqlite::Result<Option<i64>> {
                conn.query_row(
                    "SELECT max(seen_at) FROM change_log WHERE connection = ?1 AND stream = ?2 AND via = ?3",
                    params![connection.as_str(), stream, via],
                    |r| r.get(0),
                )
            };
            let conflicts: i64 = conn.query_row(
                "SELECT count(*) FROM merge_conflicts WHERE connection = ?1 AND stream = ?2 AND seen_at >= ?3",
                params![connection.as_str(), stream, since_ms],
                |r| r.get(0),
            )?;
            Ok(Coverage {
                changes: changes as u64,
                poll_only: poll_only as u64,
                by_webhook: by_webhook as u64,
                coverage: (changes > 0).then(|| 1.0 - poll_only as f64 / changes as f64),
                last_webhook_at_ms: last("webhook")?,
                last_poll_change_at_ms: last("poll")?,
                conflicts: conflicts as u64,
            })
        })
    }

    fn endpoint_token(&self, tenant: &TenantId, connection: &str) -> Result<String, StoreError> {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        let fresh = hex::encode(bytes);
        self.with(|conn| {
            conn.execute(
                "INSERT INTO webhook_endpoints (token, tenant, connection, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, connection) DO NOTHING",
                params![fresh, tenant.as_str(), connection, now_ms()],
            )?;
            conn.query_row(
                "SELECT token FROM webhook_endpoints WHERE tenant = ?1 AND connection = ?2",
                params![tenant.as_str(), connection],
                |r| r.get(0),
            )
        })
    }

    fn endpoints(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.with(|conn| {
            let mut stmt =
                conn.prepare("SELECT token, tenant, connection FROM webhook_endpoints")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
    }

    fn record_handshake(&self, handshake: &Handshake) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO webhook_handshakes (tenant, connection, method, path, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    handshake.tenant.as_str(),
                    handshake.connection,
                    handshake.method,
                    handshake.path,
                    handshake.at_ms
                ],
            )
            .map(drop)
        })
    }

    fn handshakes(
        &self,
        tenant: &TenantId,
        connection: &str,
        since_ms: i64,
    ) -> Result<(u64, Option<i64>), StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT count(*), max(at_ms) FROM webhook_handshakes
                 WHERE tenant = ?1 AND connection = ?2 AND at_ms >= ?3",
                params![tenant.as_str(), connection, since_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SourcePage;

    fn record(key: &str, version: u64, data: &str) -> Record {
        Record {
            key: key.into(),
            version: Some(version),
            kind: ChangeKind::Upsert,
            data: data.into(),
        }
    }

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("weir.db")).unwrap();
        (dir, store)
    }

    /// Commits `records` as one page of flow `f` over connection `c`'s
    /// stream `s`, in a run of its own, delivered raw or mapped as they are.
    pub(super) fn commit_page_of_f(
        store: &SqliteStore,
        records: &[Record],
        mapped: bool,
        log_changes: bool,
        sweep: Sweep,
    ) -> PageOutcome {
        // Distinct milliseconds: the sweep compares store times.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let flow = FlowId::new("f").unwrap();
        let run = store
            .start_run(&flow, "x 1.0.0", sweep != Sweep::Off)
            .unwrap();
        store
            .commit_page(&PageCommit {
                flow: &flow,
                stream: "s",
                run,
                checkpoint: &Checkpoint {
                    format: 1,
                    state: "{}".into(),
                },
                source: SourcePage {
                    connection: &ConnectionId::new("c").unwrap(),
                    stream: "s",
                    records,
                },
                delivered: if mapped {
                    Delivered::Mapped(records)
                } else {
                    Delivered::Raw
                },
                dead_letters: &[],
                log_changes,
                sweep,
            })
            .unwrap()
    }

    fn commit_sweeping(
        store: &SqliteStore,
        records: &[Record],
        mapped: bool,
        sweep: Sweep,
    ) -> PageOutcome {
        commit_page_of_f(store, records, mapped, false, sweep)
    }

    fn live_keys(store: &SqliteStore, table: &str) -> Vec<String> {
        store
            .with(|c| {
                c.prepare(&format!(
                    "SELECT key FROM {table} WHERE deleted = 0 ORDER BY key"
                ))?
                .query_map([], |r| r.get(0))?
                .collect()
            })
            .unwrap()
    }

    #[test]
    fn a_read_from_scratch_deletes_what_it_did_not_see_and_nothing_newer() {
        let (_dir, store) = open();
        let [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map(|k| record(k, 1, "{}"));
        let track = |begins: bool, last_page| {
            // After what was stored before the read, by the clock.
            std::thread::sleep(std::time::Duration::from_millis(2));
            Sweep::Track {
                began_at_ms: begins.then(now_ms),
                last_page,
            }
        };
        commit_sweeping(
            &store,
            &[a.clone(), b.clone(), c.clone(), d],
            false,
            Sweep::Off,
        );

        // Two pages; the second in another run, as after a restart.
        let first = commit_sweeping(&store, std::slice::from_ref(&a), false, track(true, false));
        assert_eq!(first.swept, 0, "not before the last page");
        // A webhook stores `e` while the read runs: newer than the read.
        commit_sweeping(&store, &[e], false, Sweep::Off);
        let unseen = |began| -> Vec<String> {
            store
                .unseen(
                    &FlowId::new("f").unwrap(),
                    &ConnectionId::new("c").unwrap(),
                    "s",
                    began,
                )
                .unwrap()
                .into_iter()
                .inspect(|r| assert_eq!((r.kind, r.version), (ChangeKind::Delete, None)))
                .map(|r| r.key)
                .collect()
        };
        assert_eq!(unseen(None), ["b", "c", "d"], "what a partner must hear of");
        let last = commit_sweeping(&store, std::slice::from_ref(&c), false, track(false, true));
        assert_eq!(last.swept, 2);
        assert_eq!(last.changed, 2, "the run's written count includes deletes");
        assert_eq!(live_keys(&store, "records"), ["a", "c", "e"]);
        let versions: Vec<Option<i64>> = store
            .with(|c| {
                c.prepare("SELECT version FROM records WHERE deleted = 1")?
                    .query_map([], |r| r.get(0))?
                    .collect()
            })
            .unwrap();
        assert_eq!(versions, [None, None], "whatever comes next wins");

        assert!(unseen(None).is_empty(), "no read from scratch under way");
        assert_eq!(
            unseen(Some(now_ms() + 1)),
            ["a", "c", "e"],
            "one starting now"
        );
        // The sweep is over: an incremental read deletes nothing.
        let incremental = commit_sweeping(&store, &[], false, track(false, true));
        assert_eq!(incremental.swept, 0);
        // A swept record the partner lists again is live again.
        commit_sweeping(&store, &[b], false, Sweep::Off);
        assert_eq!(live_keys(&store, "records"), ["a", "b", "c", "e"]);
    }

    #[test]
    fn a_sweep_deletes_the_flows_reshaped_copies_too() {
        let (_dir, store) = open();
        let [a, b] = ["a", "b"].map(|k| record(k, 1, "{}"));
        commit_sweeping(&store, &[a.clone(), b], true, Sweep::Off);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let sweep = Sweep::Track {
            began_at_ms: Some(now_ms()),
            last_page: true,
        };
        assert_eq!(commit_sweeping(&store, &[a], true, sweep).swept, 1);
        assert_eq!(live_keys(&store, "records"), ["a"]);
        assert_eq!(live_keys(&store, "mapped_records"), ["a"]);
    }

    #[test]
    fn a_page_and_its_checkpoint_commit_together_and_old_versions_never_win() {
        let (_dir, store) = open();
        let flow = FlowId::new("f").unwrap();
        let connection = ConnectionId::new("c").unwrap();
        let run = store.start_run(&flow, "x 1.0.0", false).unwrap();
        let checkpoint = Checkpoint {
            format: 1,
            state: "\"p1\"".into(),
        };
        let records = [record("a", 2, "{\"v\":2}"), record("b", 1, "{}")];
        let commit = PageCommit {
            flow: &flow,
            stream: "s",
            run,
            checkpoint: &checkpoint,
            source: SourcePage {
                connection: &connection,
                stream: "s",
                records: &records,
            },
            delivered: Delivered::Raw,
            dead_letters: &[],
            log_changes: false,
            sweep: Sweep::Off,
        };
        assert_eq!(
            store.commit_page(&commit).unwrap(),
            PageOutcome {
                changed: 2,
                unchanged: 0,
                swept: 0,
                conflicts: 0,
            }
        );
        assert_eq!(
            store.checkpoint(&flow, "s").unwrap(),
            Some(checkpoint.clone())
        );

        let stale = [record("a", 1, "{\"v\":1}")];
        let commit = PageCommit {
            source: SourcePage {
                connection: &connection,
                stream: "s",
                records: &stale,
            },
            ..commit
        };
        assert_eq!(
            store.commit_page(&commit).unwrap(),
            PageOutcome {
                changed: 0,
                unchanged: 1,
                swept: 0,
                conflicts: 0,
            }
        );
        let data: String = store
            .with(|c| c.query_row("SELECT data FROM records WHERE key = 'a'", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(data, "{\"v\":2}");
        assert_eq!(store.count(&connection, "s").unwrap(), 2);
        let runs = store.runs(Some(&flow), 10).unwrap();
        assert_eq!(
            (runs[0].pages, runs[0].records_read, runs[0].records_written),
            (2, 3, 2)
        );
    }

    #[test]
    fn a_run_whose_process_died_is_interrupted_at_its_last_commit_and_a_live_ones_stays_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.db");
        let flow = FlowId::new("f").unwrap();
        let dead = SqliteStore::open(&path).unwrap();
        let killed = dead.start_run(&flow, "x 1.0.0", false).unwrap();
        let committed_at = 1_000;
        dead.with(|c| {
            c.execute(
                "UPDATE runs SET committed_at = ?1 WHERE id = ?2",
                params![committed_at, killed.0],
            )
        })
        .unwrap();
        let live = SqliteStore::open(&path).unwrap();
        let running = live.start_run(&flow, "x 1.0.0", false).unwrap();
        let before = live.start_run(&flow, "x 1.0.0", false).unwrap();
        // As SIGKILL leaves it: the lock is released, its file stays.
        let owner = dead.presence.owner().to_string();
        let file = dir.path().join(format!("weir.db.processes/{owner}.lock"));
        std::mem::forget(dead);
        std::fs::rename(&file, dir.path().join("moved")).unwrap();
        std::fs::write(&file, "").unwrap();

        let next = SqliteStore::open(&path).unwrap();
        let runs = next.runs(Some(&flow), 10).unwrap();
        let status = |id: RunId| runs.iter().find(|r| r.id == id).unwrap();
        assert_eq!(status(killed).status, RunStatus::Interrupted);
        assert_eq!(status(killed).finished_at_ms, Some(committed_at));
        assert!(status(killed).error.as_deref().unwrap().contains("killed"));
        assert_eq!(
            status(running).status,
            RunStatus::Running,
            "its process lives"
        );
        assert_eq!(status(before).status, RunStatus::Running);
        assert!(!file.exists(), "the dead process is forgotten");
    }

    #[test]
    fn approved_versions_keep_their_wasm_the_latest_first_and_only_as_many_as_asked() {
        let (_dir, store) = open();
        let version = |hash: &str, at: i64| ApprovedVersion {
            name: "acme-crm".into(),
            version: format!("1.0.{hash}"),
            content_hash: hash.into(),
            hosts: vec!["https://api.acme.example".into()],
            approved_at_ms: at,
        };
        for (i, hash) in ["a", "b", "c"].iter().enumerate() {
            store
                .approve_version(&version(hash, i as i64), hash.as_bytes(), 2)
                .unwrap();
        }
        let hashes = |store: &SqliteStore| -> Vec<String> {
            store
                .approved_versions("acme-crm")
                .unwrap()
                .into_iter()
                .map(|v| v.content_hash)
                .collect()
        };
        assert_eq!(hashes(&store), ["c", "b"], "the oldest is forgotten");
        assert_eq!(store.approved_wasm("a").unwrap(), None);
        // Approving a kept version again moves it first; its wasm stays.
        store.approve_version(&version("b", 9), b"", 2).unwrap();
        assert_eq!(hashes(&store), ["b", "c"]);
        assert_eq!(
            store.approved_wasm("b").unwrap().as_deref(),
            Some(&b"b"[..])
        );
        assert_eq!(
            store.approved_versions("acme-crm").unwrap()[0].hosts,
            ["https://api.acme.example"]
        );

        let rollback = PluginRollback {
            file_hash: "b".into(),
            serving: "c".into(),
        };
        store.set_rollback("acme-crm", Some(&rollback)).unwrap();
        assert_eq!(store.rollback("acme-crm").unwrap(), Some(rollback));
        store.set_rollback("acme-crm", None).unwrap();
        assert_eq!(store.rollback("acme-crm").unwrap(), None);
    }

    #[test]
    fn reopening_keeps_the_schema_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.db");
        let flow = FlowId::new("f").unwrap();
        SqliteStore::open(&path)
            .unwrap()
            .replace_checkpoint(
                &flow,
                "s",
                &Checkpoint {
                    format: 2,
                    state: "{}".into(),
                },
            )
            .unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.checkpoint(&flow, "s").unwrap().unwrap().format, 2);
        assert_eq!(store.reset(&flow).unwrap(), 1);
        assert_eq!(store.checkpoint(&flow, "s").unwrap(), None);
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("weir.db")).unwrap();
        (dir, store)
    }

    fn record(key: &str, version: u64, kind: ChangeKind, data: &str) -> Record {
        Record {
            key: key.into(),
            version: Some(version),
            kind,
            data: data.into(),
        }
    }

    fn stored(store: &SqliteStore) -> (i64, bool, String) {
        store
            .with(|c| {
                c.query_row(
                    "SELECT version, deleted, data FROM records WHERE key = 'k'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .unwrap()
    }

    /// A poll: a page committed through the run path.
    fn poll(store: &SqliteStore, records: &[Record]) {
        super::tests::commit_page_of_f(store, records, false, true, Sweep::Off);
    }

    fn webhook(store: &SqliteStore, records: &[Record]) -> MergeOutcome {
        store
            .merge(
                &ConnectionId::new("c").unwrap(),
                "s",
                records,
                ChangeSource::Webhook,
            )
            .unwrap()
    }

    #[test]
    fn a_webhook_v3_then_a_poll_v2_keeps_v3() {
        let (_dir, store) = open();
        assert_eq!(
            webhook(&store, &[record("k", 3, ChangeKind::Upsert, r#"{"v":3}"#)])
                .applied
                .len(),
            1
        );
        poll(&store, &[record("k", 2, ChangeKind::Upsert, r#"{"v":2}"#)]);
        assert_eq!(stored(&store), (3, false, r#"{"v":3}"#.into()));
    }

    #[test]
    fn a_poll_v2_then_a_late_webhook_v1_keeps_v2() {
        let (_dir, store) = open();
        poll(&store, &[record("k", 2, ChangeKind::Upsert, r#"{"v":2}"#)]);
        let outcome = webhook(&store, &[record("k", 1, ChangeKind::Upsert, r#"{"v":1}"#)]);
        assert_eq!((outcome.applied.len(), outcome.stale), (0, 1));
        assert_eq!(stored(&store).0, 2);
    }

    #[test]
    fn a_delete_v5_then_an_update_v4_stays_deleted() {
        let (_dir, store) = open();
        webhook(&store, &[record("k", 5, ChangeKind::Delete, "{}")]);
        webhook(&store, &[record("k", 4, ChangeKind::Upsert, r#"{"v":4}"#)]);
        poll(&store, &[record("k", 4, ChangeKind::Upsert, r#"{"v":4}"#)]);
        assert_eq!(
            stored(&store),
            (5, true, "{}".into()),
            "a late update cannot resurrect it"
        );
    }

    #[test]
    fn the_same_version_with_other_content_is_a_conflict_counted_and_kept() {
        let (_dir, store) = open();
        webhook(
            &store,
            &[record("k", 7, ChangeKind::Upsert, r#"{"a":1,"b":2}"#)],
        );
        let same = webhook(
            &store,
            &[record("k", 7, ChangeKind::Upsert, r#"{"b":2, "a":1}"#)],
        );
        assert_eq!(
            (same.conflicts, same.stale),
            (0, 1),
            "equal JSON is no conflict"
        );
        let other = webhook(&store, &[record("k", 7, ChangeKind::Upsert, r#"{"a":9}"#)]);
        assert_eq!((other.conflicts, other.applied.len()), (1, 1));
        assert_eq!(
            stored(&store).2,
            r#"{"a":9}"#,
            "the copy read last is stored"
        );
        let kept: (String, String) = store
            .with(|c| {
                c.query_row("SELECT kept, refused FROM merge_conflicts", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .unwrap();
        assert_eq!(kept, (r#"{"a":9}"#.into(), r#"{"a":1,"b":2}"#.into()));
    }

    #[test]
    fn a_poll_with_other_content_under_the_stored_version_is_a_counted_conflict_and_stored() {
        let (_dir, store) = open();
        let flow = FlowId::new("f").unwrap();
        let page = |data: &str| {
            super::tests::commit_page_of_f(
                &store,
                &[record("k", 1, ChangeKind::Upsert, data)],
                false,
                false,
                Sweep::Off,
            )
        };
        page(r#"{"title":"old"}"#);
        let again = page(r#"{"title":"old"}"#);
        assert_eq!(
            (again.changed, again.conflicts),
            (0, 0),
            "a page read again"
        );
        let edited = page(r#"{"title":"new"}"#);
        assert_eq!((edited.changed, edited.conflicts), (1, 1));
        assert_eq!(stored(&store), (1, false, r#"{"title":"new"}"#.into()));
        let run = &store.runs(Some(&flow), 1).unwrap()[0];
        assert_eq!((run.records_written, run.conflicts), (1, 1));
        // A webhook bringing the old copy afterwards is one too, and wins
        // as the copy read last: the next poll settles it.
        let late = webhook(
            &store,
            &[record("k", 1, ChangeKind::Upsert, r#"{"title":"old"}"#)],
        );
        assert_eq!(late.conflicts, 1);
    }

    #[test]
    fn coverage_counts_changes_only_polls_found_after_the_grace_period() {
        let (_dir, store) = open();
        let connection = ConnectionId::new("c").unwrap();
        webhook(&store, &[record("a", 2, ChangeKind::Upsert, "{}")]);
        poll(
            &store,
            &[
                record("a", 2, ChangeKind::Upsert, "{}"),
                record("b", 2, ChangeKind::Upsert, "{}"),
            ],
        );
        let now = now_ms() + 10_000;
        let coverage = store.coverage(&connection, "s", 0, 1_000, now).unwrap();
        assert_eq!(
            (coverage.changes, coverage.poll_only, coverage.by_webhook),
            (2, 1, 1)
        );
        assert_eq!(coverage.coverage, Some(0.5));
        // A webhook arriving within the grace period after the poll is no miss.
        webhook(&store, &[record("b", 2, ChangeKind::Upsert, "{}")]);
        let coverage = store.coverage(&connection, "s", 0, 5_000, now).unwrap();
        assert_eq!((coverage.changes, coverage.poll_only), (2, 0));
    }
}
