//! Weir's integration tests: the real `weir` binary, real wasm connectors,
//! the partner simulator on 127.0.0.1. Assertions are on what the store
//! holds, read through the store's interface (`stored`) wherever it says
//! enough, and on the requests the simulator saw.

#![allow(
    clippy::disallowed_methods,
    reason = "tests set up files directly; a failure panics naming the test"
)]

mod bounds;
mod budget;
mod cli;
mod daemon;
mod egress;
mod golden;
mod layers;
mod map;
mod partner_bounds;
mod plugins;
mod reload;
mod sandbox;
mod stored;
mod sync;
mod validate;
mod versioning;
mod webhooks;
mod write;

use weir_tests::{Workspace, simulator};

/// The binary under test.
const WEIR: &str = env!("CARGO_BIN_EXE_weir");

fn workspace() -> Workspace {
    Workspace::new(WEIR)
}
