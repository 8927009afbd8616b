//! Tenants: one generic integration (in `weir.toml`) installed for many
//! customers. A tenant, kept in the store and changed at runtime, holds the
//! customer's own settings: connection config and secrets, which
//! flows are on, their schedules and their field mappings. A tenant
//! inherits a connection's config from `weir.toml`, never its secrets
//! (see [`NotConnected`]). Resolving a
//! tenant's flow gives an ordinary flow whose names are scoped to the
//! tenant (`tenant.flow`, `tenant.connection`), so checkpoints, records,
//! runs and rate budgets never mix between customers.

mod edit;
mod model;
mod resolve;
mod secrets;

pub use edit::{EditError, TenantChange, apply, reseal};
pub use model::{Tenant, TenantConnection, TenantFlow};
pub use resolve::{ResolvedFlow, TenantError, resolve_connection, resolve_flow, validate};
