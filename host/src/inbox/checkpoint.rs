//! WAL checkpoints off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold: that commit copies the WAL into the database and syncs the
//! database file before it returns, and every delivery of its batch waits.
//! Here a thread of its own copies the WAL with PASSIVE checkpoints, which
//! never block the writer: one after another while commits keep adding
//! frames, then every `IDLE_INTERVAL` once it has caught up. The writer keeps a much
//! larger automatic checkpoint (see `schema::WRITER_AUTOCHECKPOINT`) as a
//! backstop: under continuous writes only the writer itself can catch up
//! completely, which lets the next commit start the WAL file over instead
//! of growing it; what is left to copy then is what arrived since the last
//! background checkpoint.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

const IDLE_INTERVAL: Duration = Duration::from_millis(100);

pub(super) struct Checkpointer {
    stop: Arc<Stop>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Checkpointer {
    /// Opens the checkpointer's connection and starts its thread.
    pub fn spawn(path: &Path) -> Result<Self, super::InboxError> {
        let open_err = |source| super::InboxError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        // FULL here too: the database file must be synced before the WAL
        // frames it took over can be overwritten.
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;")
            .map_err(open_err)?;
        let stop = Arc::new(Stop::default());
        let handle = std::thread::Builder::new()
            .name("weir-inbox-checkpoint".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || run(&conn, &stop)
            })
            .map_err(|source| super::InboxError::Directory {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            stop,
            handle: Mutex::new(Some(handle)),
        })
    }

    /// Stops the thread after its current checkpoint; returns it to join
    /// the first time.
    pub fn stop(&self) -> Option<JoinHandle<()>> {
        *self.stop.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.wake.notify_all();
        self.handle.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: &Connection, stop: &Stop) {
    let mut behind = false;
    loop {
        // Behind: check for a stop and go on at once (each checkpoint syncs
        // the database file, which paces the loop).
        let wait = if behind {
            Duration::ZERO
        } else {
            IDLE_INTERVAL
        };
        let stopped = stop.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (stopped, _) = stop
            .wake
            .wait_timeout_while(stopped, wait, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        if *stopped {
            return;
        }
        drop(stopped);
        // (busy, frames in the WAL, frames copied). Busy (the writer's
        // backstop is running) or an I/O error: the next round tries again;
        // commits report real trouble.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        }) {
            Ok((frames, copied)) => behind = copied < frames,
            Err(error) => {
                tracing::debug!(%error, "webhook inbox checkpoint skipped");
                behind = false;
            }
        }
    }
}
