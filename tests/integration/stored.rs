//! What a test's store holds, read through the store's own interface
//! rather than SQL, so that assertions hold for any backend.

use std::sync::Arc;

use weir_host::clock::Clock;
use weir_host::config::StoreConfig;
use weir_host::contract::{Checkpoint, Record};
use weir_host::ids::{ConnectionId, FlowId};
use weir_host::store::{FlowState, RunRecord, Store};
use weir_tests::Workspace;

/// Reads of a workspace's store.
pub trait Stored {
    /// The store, opened as `weir` opens it.
    fn port(&self) -> Arc<dyn Store>;

    /// Runs of `flow` (of every flow with `None`), newest first.
    fn runs_of(&self, flow: Option<&str>) -> Vec<RunRecord> {
        let flow = flow.map(flow_id);
        self.port()
            .runs(flow.as_ref(), 10_000)
            .expect("list the runs")
    }

    /// The latest run of `flow` (of any flow with `None`).
    fn last_run(&self, flow: Option<&str>) -> RunRecord {
        self.runs_of(flow)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no run of {flow:?}"))
    }

    /// The first run of `flow` (of any flow with `None`).
    fn first_run(&self, flow: Option<&str>) -> RunRecord {
        self.runs_of(flow)
            .pop()
            .unwrap_or_else(|| panic!("no run of {flow:?}"))
    }

    /// The checkpoint of `flow`'s `stream`.
    fn checkpoint_of(&self, flow: &str, stream: &str) -> Option<Checkpoint> {
        self.port()
            .checkpoint(&flow_id(flow), stream)
            .expect("read the checkpoint")
    }

    /// The one checkpoint of `flow`.
    fn only_checkpoint(&self, flow: &str) -> Checkpoint {
        let mut all = self
            .port()
            .checkpoints(&flow_id(flow))
            .expect("list the checkpoints");
        assert_eq!(all.len(), 1, "checkpoints of `{flow}`");
        all.pop().expect("one").checkpoint
    }

    /// Every stored record of a connection's stream, deleted ones
    /// included, in key order.
    fn all_records(&self, connection: &str, stream: &str) -> Vec<Record> {
        let connection = ConnectionId::new(connection).expect("a connection name");
        let store = self.port();
        let mut all: Vec<Record> = Vec::new();
        loop {
            let after = all.last().map(|r| r.key.clone());
            let page = store
                .scan(&connection, stream, after.as_deref(), 1_000)
                .expect("scan the records");
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// Live (not deleted) records of a connection's stream.
    fn count_records(&self, connection: &str, stream: &str) -> u64 {
        let connection = ConnectionId::new(connection).expect("a connection name");
        self.port()
            .count(&connection, stream)
            .expect("count the records")
    }

    /// The saved state of a tenant's flow (`tenant.flow`).
    fn flow_state(&self, flow: &str) -> FlowState {
        self.port()
            .flow_states()
            .expect("read the flow states")
            .into_iter()
            .find(|s| s.flow == flow)
            .unwrap_or_else(|| panic!("no state of flow `{flow}`"))
    }
}

impl Stored for Workspace {
    fn port(&self) -> Arc<dyn Store> {
        let config = StoreConfig::Sqlite {
            path: self.store_path(),
        };
        weir_host::store::open(&config, Clock::system()).expect("open the store")
    }
}

fn flow_id(name: &str) -> FlowId {
    FlowId::new(name).expect("a flow name")
}
