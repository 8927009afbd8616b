//! Write [Weir](https://github.com/weir-dev/weir) connectors in Rust.
//!
//! A connector is a WebAssembly component that moves records between a
//! partner's API and Weir. With this crate you implement one trait,
//! [`Connector`], and register it with one macro,
//! [`export_connector!`]; the host handles scheduling, retries, storage,
//! credentials and network policy.
//!
//! # Your first connector
//!
//! ```
//! use serde::Deserialize;
//! use serde_json::value::RawValue;
//! use weir_sdk::http::Request;
//! use weir_sdk::{Connector, Page, ReadRequest, RecordFields, Result, Spec, StreamCapabilities, Checkpoint};
//!
//! struct Todos;
//!
//! #[derive(Deserialize)]
//! struct Config { base_url: String }
//!
//! impl Connector for Todos {
//!     type Config = Config;
//!
//!     fn spec() -> Spec {
//!         Spec::new("todos", env!("CARGO_PKG_VERSION"))
//!             .host("config:/base_url")
//!             .secret("token", "an API token of the todo service")
//!             .stream(StreamCapabilities::new("todos"))
//!     }
//!
//!     fn read(config: &Config, _request: ReadRequest) -> Result<Page> {
//!         let response = Request::get(format!("{}/todos", config.base_url))
//!             .bearer_secret("token")
//!             .send()?
//!             .error_for_status()?;
//!         let todos: Vec<&RawValue> = response.json()?;
//!         let records = RecordFields::key("id").records(&todos)?;
//!         Ok(Page::new(records, Checkpoint::from_json(1, "{}")))
//!     }
//! }
//!
//! weir_sdk::export_connector!(Todos);
//! ```
//!
//! Build it as a component with `crate-type = ["cdylib"]` and
//! `cargo build --release --target wasm32-wasip2`.
//!
//! # What is where
//!
//! - [`Connector`] and its types: [`Spec`] with [`StreamCapabilities`],
//!   [`StreamSchema`], both from one [`Streams`] table that declares each
//!   [`Stream`] once; reading with [`ReadRequest`], [`Page`], [`Record`],
//!   [`Checkpoint`] holding a typed [`State`] ([`CheckpointError`] when a
//!   stored one does not decode); writing with [`WriteRequest`],
//!   [`Written`]; webhooks with [`IncomingRequest`], [`WebhookVerdict`],
//!   [`ChangeNotice`].
//! - [`Error`]: pick the case that tells the host what to do next.
//! - [`http`]: requests through the host, with secrets the connector never
//!   sees; statuses mapped to errors; query strings read with
//!   [`http::query_param`].
//! - [`RecordFields`]: records from a partner's JSON without re-serializing
//!   it, the fast path for reads.
//! - [`webhook`]: Standard Webhooks and `X-Hub-Signature-256` checks;
//!   [`crypto`] for other schemes.
//! - [`time`]: RFC 3339 timestamps as versions; [`log`]: operator logs.
//! - [`Transform`] and [`export_transform!`] for transform plugins.
//! - `testing` (native targets only): a mock host for `cargo test`.
//!
//! # Performance
//!
//! Record data crosses into the host as the JSON text you give it. Passing
//! the partner's own text through ([`RecordFields`], `&RawValue`) avoids
//! parsing every field and serializing it again.

#![deny(missing_docs)]

mod connector;
mod convert;
pub mod crypto;
mod error;
mod export;
mod host;
pub mod http;
pub mod log;
mod record;
mod spec;
mod state;
mod streams;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;
mod transform;
pub mod webhook;
mod write;

pub use connector::Connector;
pub use error::{Error, Result, ResultExt};
pub use record::{ChangeKind, Checkpoint, Page, ReadRequest, Record, RecordFields};
pub use spec::{
    ChangeFeed, DeleteFeed, IdempotencyStyle, SecretSpec, Spec, StreamCapabilities, StreamSchema,
};
pub use state::{CheckpointError, State};
pub use streams::{Stream, Streams};
pub use transform::Transform;
pub use webhook::{ChangeNotice, IncomingRequest, RejectionReason, Reply, WebhookVerdict};
pub use write::{WriteRequest, Written};

/// The version of this crate, put in [`Spec::sdk_version`].
///
/// ```
/// assert_eq!(weir_sdk::SDK_VERSION, weir_sdk::Spec::new("x", "1.0.0").sdk_version);
/// ```
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The README's example, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The "write your first connector" walkthrough of Weir's README, compiled
/// as a doc test so that it never goes stale.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct WeirReadmeDoctests;

/// The generated bindings, for the export macros. Not public API.
#[doc(hidden)]
#[path = "bindings.rs"]
pub mod __bindings;
use __bindings as bindings;

/// What the export macros expand to. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{ConnectorExports, TransformExports};
}
