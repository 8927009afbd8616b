//! Acme CRM: a simulated partner REST API for Weir's tests, demo and benchmarks.
//!
//! The sim serves seeded `contacts` and `companies` on 127.0.0.1 with cursor
//! pagination, writes with idempotency keys, Standard Webhooks events, a rate
//! limit and injectable faults, and counts what it saw so tests can assert on
//! it. It is deterministic (seeded data, seeded drops, a logical clock) and
//! fast (records are kept as pre-rendered JSON).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use partner_sim::{Fault, PartnerSim, SimConfig};
//! let sim = PartnerSim::start(SimConfig::default()).await?;
//! sim.inject(Fault::new("GET", "/v1/contacts").skip(3).status(500));
//! let changed = sim.mutate("contacts", 100);
//! # Ok(()) }
//! ```
//!
//! Modules, outside in:
//! - `sim`: the [`PartnerSim`] handle and the state requests share
//! - `server`: the accept loop; `api`: routes, handlers and the request pipeline
//! - `page`: list queries, cursors and page assembly
//! - `store`: records, the logical clock and the `(updated_at, id)` index;
//!   `schema`: fields and validation; `data`: seeded generation; `time`: the clock
//! - `idempotency`, `rate_limit`, `faults`, `webhooks`, `counters`: one concern each

#![warn(missing_docs)]

mod api;
mod config;
mod counters;
mod data;
mod faults;
mod idempotency;
mod page;
mod rate_limit;
mod schema;
mod server;
mod sim;
mod store;
mod time;
mod webhooks;

pub use config::SimConfig;
pub use counters::{Counters, ListCall, WebhookCounters, WriteCounts};
pub use faults::{Fault, FaultKind};
pub use rate_limit::RateLimit;
pub use sim::PartnerSim;
pub use webhooks::{
    DeliveryOutcome, WebhookDelivery, WebhookSigning, WebhookTarget, ed25519_public_key,
    sign_standard_webhook, sign_standard_webhook_ed25519,
};
