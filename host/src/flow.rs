//! Flows: records from a feed (the source partner, webhook changes, the
//! store, dead letters), reshaped and made durable at a destination (the
//! local store or another connection), batch by batch.

mod bounds;
mod destination;
mod feed;
mod plan;
mod reshape;
mod retry;
mod runner;
mod stop;
mod store_calls;

pub use destination::Destination;
pub use feed::Feed;
pub use plan::{Opener, Plan};
pub use reshape::{Reshaped, Reshaper};
pub use retry::RetryPolicy;
pub use runner::{DEFAULT_BATCH, FlowRunner, RunObserver, RunOptions, RunSummary};
