//! Weir runs partner connectors — WebAssembly components — in a sandbox and
//! syncs their data into a local store.
//!
//! How the parts fit:
//! - [`config`] parses `weir.toml` into checked settings;
//! - [`runtime`] owns the wasm engine, the compile cache and per-call state;
//! - [`abi`] is the only place that knows WIT versions;
//! - [`plugin`] loads and validates plugin files into a registry;
//! - [`capability`] decides what a connector may reach (egress, secrets);
//! - [`connection`] binds a plugin to one connection's config and grants;
//! - [`flow`] moves pages from a source to a destination;
//! - [`mapping`] reshapes records per tenant: renames, conversions, value maps;
//! - [`tenant`] installs the integration per customer, with their own settings;
//! - [`schedule`] says when a flow runs;
//! - [`store`] keeps records, checkpoints and runs (SQLite by default);
//! - [`inbox`] makes webhook deliveries durable before they are acknowledged;
//! - [`ingress`] receives webhooks, verifies and stores them, merges their changes;
//! - [`validate`] checks a configuration against the loaded connectors, every problem at once;
//! - [`suggest`] guesses which known name a misspelt one meant;
//! - [`cli`] is the `weir` command.

pub mod abi;
pub mod admin;
pub mod capability;
pub mod cli;
pub mod config;
pub mod connection;
pub mod connector;
pub mod daemon;
pub mod diagnostic;
pub mod flow;
pub mod ids;
pub mod inbox;
pub mod ingress;
pub mod mapping;
pub mod plugin;
pub mod runtime;
pub mod schedule;
pub mod status;
pub mod store;
pub mod suggest;
pub mod tenant;
pub mod unix_time;
pub mod validate;
