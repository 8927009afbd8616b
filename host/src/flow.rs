//! Flows: pages read from a source connection, made durable at a
//! destination (the local store or another connection), checkpoint by
//! checkpoint.

mod bounds;
pub(crate) mod destination;
mod redeliver;
mod reshape;
mod retry;
mod runner;

pub use destination::Destination;
pub use redeliver::{Redelivery, RedeliverySummary};
pub use reshape::{Reshaped, Reshaper};
pub use retry::RetryPolicy;
pub use runner::{FlowRunner, Legs, RunObserver, RunOptions, RunSummary};
