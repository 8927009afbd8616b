//! `weir run`: the long-running host. It schedules every enabled flow of
//! every tenant, runs them within global and per-connection limits, serves
//! the admin API, picks up tenant changes without a restart, and shuts down
//! gracefully, letting runs commit their page first.

mod context;
mod execute;
mod scheduler;

pub use context::Daemon;
pub use scheduler::{Scheduler, SchedulerHandle, TriggerOutcome};
