use std::time::Duration;

/// A failure a connector reported, by kind (see `error` in `wit/types.wit`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The connection's configuration is wrong.
    #[error("configuration refused: {0}")]
    Config(String),
    /// The partner refused the credentials.
    #[error("credentials refused: {0}")]
    Auth(String),
    /// The host's policy refused a request.
    #[error("denied: {0}")]
    Denied(String),
    /// Slow down; try again after the given time.
    #[error("rate limited for {}: {message}", crate::unix_time::humanize_duration(*retry_after))]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
        /// What was limited.
        message: String,
    },
    /// A failure that may pass.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// A failure that will not pass by retrying.
    #[error("{0}")]
    Permanent(String),
    /// The connector does not implement the operation.
    #[error("not supported: {0}")]
    Unsupported(String),
}

impl ConnectorError {
    /// The same error with every URL in its message cut to
    /// `scheme://host[:port]/path`: connectors write messages, and a query
    /// may carry credentials or personal data into logs and `runs.error`.
    pub fn scrub_urls(self) -> Self {
        let scrub = |m: String| crate::capability::printed_url::scrub(&m).into_owned();
        match self {
            Self::Config(m) => Self::Config(scrub(m)),
            Self::Auth(m) => Self::Auth(scrub(m)),
            Self::Denied(m) => Self::Denied(scrub(m)),
            Self::RateLimited {
                retry_after,
                message,
            } => Self::RateLimited {
                retry_after,
                message: scrub(message),
            },
            Self::Transient(m) => Self::Transient(scrub(m)),
            Self::Permanent(m) => Self::Permanent(scrub(m)),
            Self::Unsupported(m) => Self::Unsupported(scrub(m)),
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::RateLimited { .. })
    }
}
