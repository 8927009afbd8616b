//! Webhooks under `weir run`: each tenant's connection has an endpoint
//! with an unguessable token. A delivery is verified by the connector while
//! the partner waits, stored durably in the inbox, and only then
//! acknowledged; workers later turn stored deliveries into changes merged
//! by the partner's record version, the same merge polls go through.

mod health;
mod server;
mod upkeep;
mod worker;

pub use health::{HealthReport, IngressCounters, WebhookHealth, webhook_health};
pub use server::{Ingress, router};
pub use upkeep::keep_inbox_tidy;
pub use worker::process_deliveries;
