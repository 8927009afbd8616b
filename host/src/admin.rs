//! The admin API of `weir run`: JSON over HTTP, on loopback by default,
//! behind a bearer token. It is what a SaaS product's own settings page
//! calls to install the integration for a customer, toggle flows, set
//! schedules and mappings, run a flow now and see how things are going.

mod routes;

pub use routes::{AdminState, router};
