//! What the tests of the SQLite store, its own and the conformance suite's,
//! start from.

use super::SqliteStore;
use crate::clock::Clock;

/// A fresh store timed by `clock`, in a directory of its own, removed when
/// dropped.
pub(in crate::store) fn open(clock: Clock) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with_clock(&dir.path().join("weir.db"), clock).unwrap();
    (dir, store)
}

/// Makes every checkpoint write fail, as a full disk would, or succeed
/// again.
pub(in crate::store) fn fail_checkpoints(store: &SqliteStore, fail: bool) {
    let sql = if fail {
        "CREATE TRIGGER full_disk_insert BEFORE INSERT ON checkpoints
           BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
         CREATE TRIGGER full_disk_update BEFORE UPDATE ON checkpoints
           BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;"
    } else {
        "DROP TRIGGER full_disk_insert; DROP TRIGGER full_disk_update;"
    };
    store.with(|c| c.execute_batch(sql)).unwrap();
}
