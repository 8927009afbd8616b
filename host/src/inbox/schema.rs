//! The inbox database: its schema, upgraded in order (`PRAGMA
//! user_version` says how far), and how its connections are opened.

use std::path::Path;

use rusqlite::Connection;

use super::{InboxError, InboxOptions};

/// WAL pages after which a commit checkpoints by itself (64 MiB): a
/// backstop behind the checkpoint thread, see `checkpoint`.
const WRITER_AUTOCHECKPOINT: u32 = 16_384;

/// Each entry upgrades the schema from its index to the next version.
const MIGRATIONS: &[&str] = &[
    r#"
-- One row per delivery, payload byte for byte. AUTOINCREMENT: ids are
-- never reused after a purge, so a kept key never points at another row.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant          TEXT NOT NULL,
    connection      TEXT NOT NULL,
    delivery_key    TEXT NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    query           TEXT,
    headers         BLOB NOT NULL,
    body            BLOB NOT NULL,
    state           TEXT NOT NULL
                    CHECK (state IN ('pending', 'processing', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- Pending: when it may be claimed (later than receipt after a failure).
    available_at_ms INTEGER NOT NULL,
    -- Processing: when the claim runs out and the delivery is handed out again.
    lease_until_ms  INTEGER,
    -- Done or failed: when.
    finished_at_ms  INTEGER,
    error           TEXT,
    UNIQUE (tenant, connection, delivery_key)
);
-- Partial indexes: each holds only the rows of one state, so claiming,
-- reclaiming and purging never walk the others.
CREATE INDEX deliveries_ready ON deliveries (available_at_ms, received_at_ms)
    WHERE state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until_ms, received_at_ms)
    WHERE state = 'processing';
CREATE INDEX deliveries_done ON deliveries (finished_at_ms) WHERE state = 'done';

-- Every key ever stored, kept after the payload is purged, so a late retry
-- is still a duplicate.
CREATE TABLE delivery_keys (
    tenant          TEXT NOT NULL,
    connection      TEXT NOT NULL,
    delivery_key    TEXT NOT NULL,
    first_seen_ms   INTEGER NOT NULL,
    delivery_id     INTEGER NOT NULL,
    PRIMARY KEY (tenant, connection, delivery_key)
);
CREATE INDEX delivery_keys_age ON delivery_keys (first_seen_ms);
"#,
    r#"
-- Attempts made before an operator retried a failed delivery: it gets a
-- fresh set of attempts while `attempts` keeps counting, so claim numbers
-- (the fencing tokens of settlements) are never reused.
ALTER TABLE deliveries ADD COLUMN retried_after_attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_failed ON deliveries (received_at_ms) WHERE state = 'failed';
"#,
];

/// Opens the writer's connection and brings the schema up to date.
pub(super) fn open_writer(path: &Path, options: &InboxOptions) -> Result<Connection, InboxError> {
    let err = |source| InboxError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(options.busy_timeout).map_err(err)?;
    // WAL: health reads never block the writer. FULL: a commit is on disk
    // (the WAL is synced) before it returns, so an acknowledged delivery
    // survives a power cut, not just a process crash.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = 67108864;",
    )
    .map_err(err)?;
    conn.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT)
        .map_err(err)?;
    let found: usize = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(err)?;
    if found > MIGRATIONS.len() {
        return Err(InboxError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known: MIGRATIONS.len(),
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found) {
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(migration).map_err(err)?;
        tx.pragma_update(None, "user_version", index + 1)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    if let Some(max_size) = options.max_size {
        let page_size: u64 = conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .map_err(err)?;
        conn.pragma_update(None, "max_page_count", (max_size / page_size).max(1))
            .map_err(err)?;
    }
    Ok(conn)
}

/// Opens a connection for health reads.
pub(super) fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(1))?;
    Ok(conn)
}

/// Deliveries pending or processing.
pub(super) fn depth(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending')
              + (SELECT count(*) FROM deliveries WHERE state = 'processing')",
        [],
        |row| row.get(0),
    )
}

/// When the oldest delivery pending or processing was received. Walks the
/// partial indexes (which cover `received_at_ms`), not the table.
pub(super) fn oldest_open(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT min(received_at_ms) FROM (
             SELECT min(received_at_ms) AS received_at_ms FROM deliveries WHERE state = 'pending'
             UNION ALL
             SELECT min(received_at_ms) FROM deliveries WHERE state = 'processing')",
        [],
        |row| row.get(0),
    )
}
