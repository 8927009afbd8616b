//! The contract between connectors and the host, in the host's own types:
//! specs, records, checkpoints, errors, webhook verdicts. The rest of the
//! host never sees WIT-generated types (only `abi` does).

mod error;
mod record;
mod spec;
mod webhook;

pub use error::ConnectorError;
pub use record::{ChangeKind, Checkpoint, Page, Record, WriteRequest, Written};
pub use spec::{
    ChangeFeed, ConnectorSpec, DeleteFeed, IdempotencyStyle, SecretSpec, SpecProblem,
    StreamCapabilities, StreamSchema,
};
pub use webhook::{
    AcceptedDelivery, ChangeNotice, IncomingRequest, Rejection, RejectionReason, Reply,
    WebhookVerdict,
};
