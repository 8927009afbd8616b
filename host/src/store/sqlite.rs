//! The store traits over SQLite: this file opens the database and holds its
//! connection; each submodule implements the traits of one concern.

mod changes;
mod egress;
mod error;
mod pages;
mod plugins;
mod records;
mod runs;
mod tenants;
#[cfg(test)]
pub(super) mod testing;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, params};

use super::StoreError;
use super::presence::Presence;
use super::schema::MIGRATIONS;
use crate::clock::Clock;

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
    /// When things happen, as stored.
    clock: Clock,
}

impl super::Store for SqliteStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

impl SqliteStore {
    /// Opens (creates) the store and brings its schema up to date, then
    /// marks the runs of processes that died interrupted.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_clock(path, Clock::system())
    }

    /// [`Self::open`], with the time of what it records from `clock`.
    pub fn open_with_clock(path: &Path, clock: Clock) -> Result<Self, StoreError> {
        let err = |e| error::store_error(path, e);
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
        let presence = Presence::announce(path).map_err(|e| error::io_error(path, e))?;
        let store = Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            stream_ids: Mutex::default(),
            presence,
            clock,
        };
        let gone = store
            .presence
            .dead_owners()
            .map_err(|e| store.io_error(e))?;
        store.settle_dead_runs(&gone)?;
        Ok(store)
    }

    fn io_error(&self, e: std::io::Error) -> StoreError {
        error::io_error(&self.path, e)
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
        f(&mut conn).map_err(|e| {
            // A failed operation's transaction rolled back, and with it any
            // stream it created that `stream_id` remembered.
            self.stream_ids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            error::store_error(&self.path, e)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Checkpoint;
    use crate::ids::FlowId;
    use crate::store::SyncStore;

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
