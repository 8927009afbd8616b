//! Messages for the operator's logs, tagged by the host with plugin and
//! connection.
//!
//! Never log secrets or whole records: logs are read by people who may not
//! see the data.
//!
//! # Example
//!
//! ```
//! weir_sdk::log::info(format!("read {} contacts", 1000));
//! weir_sdk::log::warn("the partner returned no `next_cursor`; starting over");
//! ```

use std::fmt;

/// How important a message is.
///
/// # Example
///
/// ```
/// weir_sdk::log::log(weir_sdk::log::Level::Debug, "cursor is c_000100");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Step-by-step detail.
    Trace,
    /// Detail for debugging a connection.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that the connector worked around.
    Warn,
    /// Something failed.
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        })
    }
}

/// Records `message` at `level`.
///
/// Outside a Weir host (native tests) messages go to a
/// [`testing::MockHost`](crate::testing::MockHost) when one is installed, and
/// to stderr otherwise.
///
/// # Example
///
/// ```
/// weir_sdk::log::log(weir_sdk::log::Level::Info, "hello");
/// ```
pub fn log(level: Level, message: impl AsRef<str>) {
    crate::host::log(level, message.as_ref());
}

/// Records `message` at [`Level::Trace`].
///
/// ```
/// weir_sdk::log::trace("request 1 of 3");
/// ```
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message);
}

/// Records `message` at [`Level::Debug`].
///
/// ```
/// weir_sdk::log::debug("cursor is c_000100");
/// ```
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message);
}

/// Records `message` at [`Level::Info`].
///
/// ```
/// weir_sdk::log::info("read 1000 contacts");
/// ```
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message);
}

/// Records `message` at [`Level::Warn`].
///
/// ```
/// weir_sdk::log::warn("skipped a contact without email");
/// ```
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message);
}

/// Records `message` at [`Level::Error`].
///
/// ```
/// weir_sdk::log::error("the partner returned a page without `data`");
/// ```
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message);
}
