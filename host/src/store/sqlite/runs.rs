//! The history of runs, and the runs of processes that died.

use rusqlite::params;

use super::SqliteStore;
use super::error::undecodable;
use crate::ids::{FlowId, RunId, TenantId};
use crate::store::{RunEnd, RunLog, RunRecord, RunStatus, StoreError};

impl SqliteStore {
    /// Marks the runs still `running` whose process died `interrupted`, with
    /// their end at their last commit, then forgets the dead processes.
    /// `known_dead` are owners already found dead (lock files left behind).
    pub(super) fn settle_dead_runs(&self, known_dead: &[String]) -> Result<(), StoreError> {
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
                    self.clock.now_ms(),
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
                params![run.0, end.status.as_str(), self.clock.now_ms(), code, message],
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

pub(super) const RUN_COLUMNS: &str =
    "id, flow, status, full_refresh, plugin, started_at, finished_at, pages,
    records_read, records_written, records_failed, error_code, error, conflicts";

pub(super) fn run_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: RunId(row.get(0)?),
        flow: row.get(1)?,
        status: {
            let status: String = row.get(2)?;
            RunStatus::parse(&status).ok_or_else(|| {
                undecodable(
                    2,
                    "the status of a run".into(),
                    format!("no status `{status}`"),
                )
            })?
        },
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
