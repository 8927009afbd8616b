//! `weir run`: the long-running host. It schedules every enabled flow of
//! every tenant, runs them within global and per-connection limits, serves
//! the admin API, picks up tenant changes without a restart, and shuts down
//! gracefully: runs end at their last committed page. One daemon owns a
//! store (`DaemonLock`).

mod context;
mod execute;
mod live_plugins;
mod lock;
mod scheduler;
mod slots;

pub use context::Daemon;
pub use live_plugins::LivePlugins;
pub use lock::{DaemonLock, LockError};
pub use scheduler::{Scheduler, SchedulerHandle, TriggerOutcome};
