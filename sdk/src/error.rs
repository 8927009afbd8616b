//! [`Error`], the one error type of every connector operation.

use std::fmt;
use std::time::Duration;

/// The result of a connector operation.
///
/// # Example
///
/// ```
/// use weir_sdk::{Error, Result};
///
/// fn page_size(requested: u32) -> Result<u32> {
///     if requested == 0 {
///         return Err(Error::config("page_size must be at least 1"));
///     }
///     Ok(requested.min(1000))
/// }
/// assert_eq!(page_size(5000), Ok(1000));
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an operation failed.
///
/// The host decides what happens next from the case, so pick the one that
/// tells it the truth:
///
/// | case              | the host                                              |
/// |-------------------|-------------------------------------------------------|
/// | [`Config`]        | stops; the operator must fix the connection's config  |
/// | [`Auth`]          | stops; the operator must renew the credentials        |
/// | [`Denied`]        | stops; the host's policy refused something            |
/// | [`RateLimited`]   | pauses at the last checkpoint, resumes after the wait |
/// | [`Transient`]     | retries from the last checkpoint with backoff         |
/// | [`Permanent`]     | stops (or dead-letters the one record it concerns)    |
/// | [`Unsupported`]   | reports that the connector cannot do this             |
///
/// Messages are shown to operators: say what failed and, when you know, what
/// to do about it (lower case, no trailing period).
///
/// Most errors come from the SDK already classified: HTTP failures
/// ([`http::Request::send`](crate::http::Request::send)), partner statuses
/// ([`http::Response::error_for_status`](crate::http::Response::error_for_status)),
/// JSON that does not parse (`Permanent`), a config that does not parse
/// (`Config`).
///
/// # Example
///
/// ```
/// use weir_sdk::Error;
///
/// let error = Error::auth("the partner refused api_key")
///     .context("checking the connection");
/// assert_eq!(error.to_string(), "checking the connection: the partner refused api_key");
/// assert!(matches!(error, Error::Auth(_)));
/// ```
///
/// [`Config`]: Error::Config
/// [`Auth`]: Error::Auth
/// [`Denied`]: Error::Denied
/// [`RateLimited`]: Error::RateLimited
/// [`Transient`]: Error::Transient
/// [`Permanent`]: Error::Permanent
/// [`Unsupported`]: Error::Unsupported
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The connection's configuration is missing something or holds a value
    /// the partner refuses, e.g. `base_url must start with https://`.
    Config(String),
    /// The partner refused the credentials (HTTP 401/403, revoked token).
    Auth(String),
    /// The host refused a request: its egress policy, or a secret the
    /// connection does not define. Comes from the host; rarely built by hand.
    Denied(String),
    /// Too many requests: the partner said so (HTTP 429) or the connection's
    /// rate budget is spent.
    RateLimited {
        /// Milliseconds to wait before the next attempt.
        retry_after_ms: u64,
        /// What was limited, for the operator.
        message: String,
    },
    /// A failure that may pass: network error, timeout, partner 5xx.
    Transient(String),
    /// A failure that will not pass by retrying: validation error, unknown
    /// stream, malformed partner data.
    Permanent(String),
    /// This connector does not implement the operation.
    Unsupported(String),
}

impl Error {
    /// A [`Error::Config`] error.
    ///
    /// ```
    /// let error = weir_sdk::Error::config("base_url must start with https://");
    /// assert_eq!(error.message(), "base_url must start with https://");
    /// ```
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config(message.into())
    }

    /// An [`Error::Auth`] error.
    ///
    /// ```
    /// let error = weir_sdk::Error::auth("the api key was revoked");
    /// assert!(matches!(error, weir_sdk::Error::Auth(_)));
    /// ```
    pub fn auth(message: impl Into<String>) -> Self {
        Self::Auth(message.into())
    }

    /// An [`Error::RateLimited`] error: try again after `retry_after`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let error = weir_sdk::Error::rate_limited(Duration::from_secs(2), "429 from the partner");
    /// assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
    /// ```
    pub fn rate_limited(retry_after: Duration, message: impl Into<String>) -> Self {
        Self::RateLimited {
            retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
            message: message.into(),
        }
    }

    /// An [`Error::Transient`] error.
    ///
    /// ```
    /// let error = weir_sdk::Error::transient("the partner is under maintenance");
    /// assert!(error.is_retryable());
    /// ```
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient(message.into())
    }

    /// An [`Error::Permanent`] error.
    ///
    /// ```
    /// let error = weir_sdk::Error::permanent("email is not an address");
    /// assert!(!error.is_retryable());
    /// ```
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent(message.into())
    }

    /// An [`Error::Unsupported`] error.
    ///
    /// ```
    /// let error = weir_sdk::Error::unsupported("deleting companies is not supported");
    /// assert!(matches!(error, weir_sdk::Error::Unsupported(_)));
    /// ```
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::Unsupported(message.into())
    }

    /// The [`Error::Permanent`] error for a stream this connector does not
    /// have: ``unknown stream `name` ``.
    ///
    /// ```
    /// let error = weir_sdk::Error::unknown_stream("deals");
    /// assert_eq!(error.to_string(), "unknown stream `deals`");
    /// ```
    pub fn unknown_stream(name: &str) -> Self {
        Self::Permanent(format!("unknown stream `{name}`"))
    }

    /// The [`Error::Permanent`] for a stream this connector does not have,
    /// listing the streams it has: ``unknown stream `name`; this
    /// connector's streams are `a`, `b` ``. [`Streams::get`](crate::Streams::get)
    /// returns it.
    ///
    /// ```
    /// let error = weir_sdk::Error::unknown_stream_among("deals", ["contacts", "companies"]);
    /// assert_eq!(
    ///     error.to_string(),
    ///     "unknown stream `deals`; this connector's streams are `contacts`, `companies`"
    /// );
    /// ```
    pub fn unknown_stream_among<I>(name: &str, known: I) -> Self
    where
        I: IntoIterator,
        I::Item: fmt::Display,
    {
        let known: Vec<String> = known.into_iter().map(|s| format!("`{s}`")).collect();
        Self::Permanent(if known.is_empty() {
            format!("unknown stream `{name}`; this connector has no streams")
        } else {
            format!(
                "unknown stream `{name}`; this connector's streams are {}",
                known.join(", ")
            )
        })
    }

    /// The message, without the case.
    ///
    /// ```
    /// let error = weir_sdk::Error::transient("connection reset");
    /// assert_eq!(error.message(), "connection reset");
    /// ```
    pub fn message(&self) -> &str {
        match self {
            Self::Config(message)
            | Self::Auth(message)
            | Self::Denied(message)
            | Self::RateLimited { message, .. }
            | Self::Transient(message)
            | Self::Permanent(message)
            | Self::Unsupported(message) => message,
        }
    }

    /// How long to wait, for [`Error::RateLimited`].
    ///
    /// ```
    /// assert_eq!(weir_sdk::Error::transient("reset").retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after_ms, .. } => {
                Some(Duration::from_millis(*retry_after_ms))
            }
            _ => None,
        }
    }

    /// Whether the host retries after this error ([`Error::RateLimited`] and
    /// [`Error::Transient`]).
    ///
    /// ```
    /// assert!(weir_sdk::Error::rate_limited(std::time::Duration::ZERO, "slow down").is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient(_))
    }

    /// Puts `context` in front of the message, keeping the case:
    /// `"{context}: {message}"`.
    ///
    /// ```
    /// let error = weir_sdk::Error::permanent("missing field `id`").context("contacts page");
    /// assert_eq!(error.message(), "contacts page: missing field `id`");
    /// ```
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        let message = match &mut self {
            Self::Config(message)
            | Self::Auth(message)
            | Self::Denied(message)
            | Self::RateLimited { message, .. }
            | Self::Transient(message)
            | Self::Permanent(message)
            | Self::Unsupported(message) => message,
        };
        *message = format!("{context}: {message}");
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

/// JSON that does not parse is partner data the connector cannot use:
/// [`Error::Permanent`]. Add what was being parsed with
/// [`ResultExt::context`].
///
/// ```
/// use weir_sdk::{Error, ResultExt};
///
/// let parsed: weir_sdk::Result<u32> = serde_json::from_str::<u32>("\"x\"")
///     .context("contact score");
/// assert!(matches!(parsed, Err(Error::Permanent(message)) if message.starts_with("contact score: invalid type")));
/// ```
impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::Permanent(error.to_string())
    }
}

/// Adds context to the error of a [`Result`].
///
/// Implemented for every `Result` whose error converts into [`Error`], such
/// as `serde_json::Error`.
///
/// # Example
///
/// ```
/// use weir_sdk::ResultExt;
///
/// fn parse(text: &str) -> weir_sdk::Result<serde_json::Value> {
///     serde_json::from_str(text).with_context(|| format!("a {}-byte webhook body", text.len()))
/// }
/// assert!(parse("{").unwrap_err().message().starts_with("a 1-byte webhook body: "));
/// ```
pub trait ResultExt<T> {
    /// Converts the error into an [`Error`] and puts `context` in front of its
    /// message.
    fn context(self, context: impl fmt::Display) -> Result<T>;

    /// Like [`context`](ResultExt::context), computing the context only on
    /// error.
    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|error| error.into().context(context))
    }

    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|error| error.into().context(context()))
    }
}

/// Turns a `serde` error of the connection's config into
/// ``Error::Config("config: missing field `base_url`")``: the position in
/// a one-line config is noise for operators.
pub(crate) fn config_error(error: &serde_json::Error) -> Error {
    let text = error.to_string();
    let message = match text.rfind(" at line ") {
        Some(at) if error.line() > 0 => &text[..at],
        _ => &text,
    };
    Error::Config(format!("config: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[expect(dead_code, reason = "only parsed, never read")]
    struct Config {
        base_url: String,
    }

    #[test]
    fn config_errors_name_the_field_without_a_position() {
        let error = serde_json::from_str::<Config>("{}").unwrap_err();
        assert_eq!(
            config_error(&error),
            Error::Config("config: missing field `base_url`".into())
        );
    }

    #[test]
    fn context_keeps_the_case() {
        let error = Error::rate_limited(Duration::from_millis(1500), "429").context("GET /v1");
        assert_eq!(
            error,
            Error::RateLimited {
                retry_after_ms: 1500,
                message: "GET /v1: 429".into()
            }
        );
    }
}
