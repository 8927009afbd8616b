//! What the tests of every concern start from.

use super::SqliteStore;
use crate::connector::{ChangeKind, Checkpoint, Record};
use crate::ids::{ConnectionId, FlowId};
use crate::store::{Delivered, PageCommit, PageOutcome, RunLog, SourcePage, Sweep, SyncStore};

/// A fresh store in a directory of its own, removed when dropped.
pub(super) fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("weir.db")).unwrap();
    (dir, store)
}

pub(super) fn record(key: &str, version: u64, data: &str) -> Record {
    Record {
        key: key.into(),
        version: Some(version),
        kind: ChangeKind::Upsert,
        data: data.into(),
    }
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
