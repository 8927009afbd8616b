//! Weir runs partner connectors — WebAssembly components — in a sandbox and
//! syncs their data into a local store.
//!
//! Every module, by layer; a layer uses the ones above it.
//!
//! Contract types and shared vocabulary:
//! - [`ids`]: identifiers, each its own type;
//! - [`contract`]: what connectors and the host exchange (specs, records,
//!   errors), in the host's own types;
//! - [`diagnostic`]: stable error codes, with what to do next;
//! - [`unix_time`]: wall-clock time as stored and reported;
//! - [`clock`]: where the host's time comes from (tests move it by hand);
//! - [`suggest`]: which known name a misspelt one meant.
//!
//! Configuration:
//! - [`config`]: `weir.toml` parsed into checked settings;
//! - [`tenant`]: the integration installed per customer, with their settings;
//! - [`schedule`]: when a flow runs.
//!
//! Capability (what a connector may do):
//! - [`capability`]: egress, secrets, rate budgets, the HTTP gate.
//!
//! Storage:
//! - [`store`]: records, checkpoints, runs, approvals (SQLite by default);
//! - [`inbox`]: webhook deliveries made durable before they are acknowledged.
//!
//! Runtime and guests:
//! - [`call`]: one call into a guest: limits, store state, deadline, errors;
//! - [`runtime`]: the wasm engine, its linker, the compile cache;
//! - [`abi`]: the only place that knows WIT versions;
//! - [`plugin`]: plugin files loaded, judged and kept in a registry;
//! - [`connection`]: a plugin bound to one connection's config and grants.
//!
//! Flows:
//! - [`mapping`]: records reshaped per tenant (renames, conversions, value maps);
//! - [`flow`]: pages moved from a source to a destination;
//! - [`validate`]: a configuration checked against the loaded connectors.
//!
//! Triggers:
//! - [`daemon`]: `weir run`, scheduling every tenant's flows;
//! - [`ingress`]: webhooks received, verified, stored and merged.
//!
//! Interfaces:
//! - [`status`]: what every tenant's flow is doing, daemon or not;
//! - [`admin`]: the admin API of `weir run`;
//! - [`cli`]: the `weir` command.

#![cfg_attr(
    test,
    allow(
        clippy::disallowed_methods,
        reason = "tests set up files and clocks directly; a failure panics naming the test"
    )
)]

pub mod abi;
pub mod admin;
pub mod call;
pub mod capability;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connection;
pub mod contract;
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
