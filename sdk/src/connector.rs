//! The [`Connector`] trait: what a connector implements.

use serde::de::DeserializeOwned;

use crate::{
    ChangeNotice, Checkpoint, Error, IncomingRequest, Page, ReadRequest, Record, Result, Spec,
    StreamSchema, WebhookVerdict, WriteRequest, Written,
};

/// A partner connector: reads streams, and optionally writes objects and
/// receives webhooks. Implement it on a unit struct and export it with
/// [`export_connector!`](crate::export_connector).
///
/// Every operation is a plain function of the connection's parsed
/// [`Config`](Connector::Config) and its arguments: the host may run each
/// call in a fresh instance, so keep no state between calls (resume state
/// goes in the [`Checkpoint`]).
///
/// Only [`spec`](Connector::spec) and [`read`](Connector::read) are
/// required. [`check`](Connector::check) succeeds once the config parses;
/// every other operation returns [`Error::Unsupported`] until implemented.
///
/// # Example
///
/// A read-only connector for an API that returns every item at once:
///
/// ```
/// use serde::Deserialize;
/// use serde_json::value::RawValue;
/// use weir_sdk::http::Request;
/// use weir_sdk::{Checkpoint, Connector, Page, ReadRequest, RecordFields, Result, Spec, StreamCapabilities};
///
/// struct Holidays;
///
/// #[derive(Deserialize)]
/// struct Config {
///     country: String,
/// }
///
/// impl Connector for Holidays {
///     type Config = Config;
///
///     fn spec() -> Spec {
///         Spec::new("holidays", env!("CARGO_PKG_VERSION"))
///             .description("Public holidays of one country")
///             .host("https://date.nager.at")
///             .stream(StreamCapabilities::new("holidays"))
///     }
///
///     fn read(config: &Config, _request: ReadRequest) -> Result<Page> {
///         let url = format!("https://date.nager.at/api/v3/PublicHolidays/2026/{}", config.country);
///         let response = Request::get(url).send()?.error_for_status()?;
///         let items: Vec<&RawValue> = response.json()?;
///         let records = RecordFields::key("date").records(&items)?;
///         Ok(Page::new(records, Checkpoint::from_json(1, "{}")))
///     }
/// }
///
/// weir_sdk::export_connector!(Holidays);
/// ```
pub trait Connector {
    /// The connection's configuration, parsed from its JSON. A config that
    /// does not parse fails the call with [`Error::Config`] naming the
    /// problem (``config: missing field `base_url` ``); use
    /// `serde_json::Value` to parse it yourself.
    type Config: DeserializeOwned;

    /// Describes the connector. Called once when the plugin loads, without
    /// network access or configuration.
    fn spec() -> Spec;

    /// Checks that `config` is valid and the partner accepts the
    /// credentials, with as few requests as possible (ideally one cheap,
    /// authenticated `GET`).
    ///
    /// Defaults to success: the config parsed.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a value the partner refuses, [`Error::Auth`] for
    /// refused credentials, or whatever the request failed with.
    fn check(config: &Self::Config) -> Result<()> {
        let _ = config;
        Ok(())
    }

    /// Lists the streams this connection offers, with their schemas (which
    /// may depend on the account, e.g. custom fields).
    ///
    /// # Errors
    ///
    /// Defaults to [`Error::Unsupported`].
    fn discover(config: &Self::Config) -> Result<Vec<StreamSchema>> {
        let _ = config;
        Err(unsupported("discover"))
    }

    /// Reads the next page of a stream, starting at `request.checkpoint`
    /// (`None`: from the beginning), with at most `request.max_records`
    /// records.
    ///
    /// Return one partner page per call with the checkpoint that follows it,
    /// and [`has_more`](Page::has_more) true while more records are ready:
    /// the host stores each page with its checkpoint before asking for the
    /// next, so a crash never loses or repeats more than a page.
    ///
    /// # Errors
    ///
    /// [`Error::Permanent`] for an unknown stream
    /// ([`Error::unknown_stream`]), or whatever a request failed with.
    fn read(config: &Self::Config, request: ReadRequest) -> Result<Page>;

    /// Fetches the current state of the objects with the given keys, for
    /// changes reported without data ([`ChangeNotice::thin`]). Keys that no
    /// longer exist come back as records of kind
    /// [`Delete`](crate::ChangeKind::Delete).
    ///
    /// # Errors
    ///
    /// Defaults to [`Error::Unsupported`].
    fn fetch(config: &Self::Config, stream: &str, keys: Vec<String>) -> Result<Vec<Record>> {
        let _ = (config, stream, keys);
        Err(unsupported("fetch"))
    }

    /// Writes a batch of objects. Returns one result per request, in order:
    /// one failed object does not fail the batch. Fail the whole call only
    /// when nothing more can be written (e.g. [`Error::Auth`],
    /// [`Error::RateLimited`]); the host then retries the batch with the same
    /// idempotency keys.
    ///
    /// # Errors
    ///
    /// Defaults to [`Error::Unsupported`].
    fn write(
        config: &Self::Config,
        stream: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<Result<Written>>> {
        let _ = (config, stream, requests);
        Err(unsupported("write"))
    }

    /// Finds the object an earlier write with `idempotency_key` created, to
    /// learn whether a write interrupted by a crash took effect.
    ///
    /// # Errors
    ///
    /// Defaults to [`Error::Unsupported`].
    fn lookup(
        config: &Self::Config,
        stream: &str,
        idempotency_key: &str,
    ) -> Result<Option<Written>> {
        let _ = (config, stream, idempotency_key);
        Err(unsupported("lookup"))
    }

    /// Decides, while the partner waits, whether a request is a handshake,
    /// an authentic delivery or a forgery. Verify signatures over the raw
    /// body with [`webhook`](crate::webhook) or [`crypto`](crate::crypto).
    /// Keep it fast: the partner's deadline is a few seconds.
    ///
    /// # Errors
    ///
    /// Defaults to [`Error::Unsupported`]. A forgery is a
    /// [`WebhookVerdict::Reject`], not an error.
    fn verify_webhook(config: &Self::Config, request: &IncomingRequest) -> Result<WebhookVerdict> {
        let _ = (config, request);
        Err(unsupported("webhooks"))
    }

    /// Turns a stored, verified delivery into change notices. Called after
    /// the delivery was acknowledged, possibly more than once.
    ///
    /// # Errors
    ///
    /// Defaults to [`Error::Unsupported`].
    fn handle_webhook(
        config: &Self::Config,
        request: &IncomingRequest,
    ) -> Result<Vec<ChangeNotice>> {
        let _ = (config, request);
        Err(unsupported("webhooks"))
    }

    /// Converts a checkpoint stored by an older version of this connector to
    /// the current [`Spec::checkpoint_format`](crate::Spec::checkpoint_format).
    /// With a [`State`](crate::State) type per format: read the old one
    /// with [`Checkpoint::decode`], return the new one with
    /// [`Checkpoint::encode`].
    ///
    /// # Errors
    ///
    /// Defaults to [`Error::Unsupported`]: the host then refuses to run the
    /// flow rather than silently starting over.
    fn migrate_checkpoint(stream: &str, old: Checkpoint) -> Result<Checkpoint> {
        let _ = (stream, old);
        Err(unsupported("migrate-checkpoint"))
    }
}

pub(crate) fn unsupported(operation: &str) -> Error {
    Error::unsupported(format!("{operation} is not supported by this connector"))
}
