//! SQLite's errors told as [`StoreError`]s, and stored values that do not
//! decode made errors rather than defaults.

use std::error::Error;
use std::path::Path;

use rusqlite::ErrorCode;
use rusqlite::types::Type;
use serde::de::DeserializeOwned;

use crate::store::{StoreError, StoreErrorKind};

/// A stored value that does not decode, and what it was to be.
#[derive(Debug, thiserror::Error)]
#[error("{what} does not decode: {source}")]
struct Undecodable {
    what: String,
    #[source]
    source: Box<dyn Error + Send + Sync>,
}

/// The error of an operation on the database at `path`.
pub(super) fn store_error(path: &Path, error: rusqlite::Error) -> StoreError {
    let kind = match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreErrorKind::Busy,
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreErrorKind::Corrupt,
            _ => StoreErrorKind::Unavailable,
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreErrorKind::Corrupt,
        _ => StoreErrorKind::Unavailable,
    };
    let source = match error {
        // Its own message says what did not decode better than SQLite's
        // wrapper, which only gives the column's index.
        rusqlite::Error::FromSqlConversionFailure(_, _, inner) if inner.is::<Undecodable>() => {
            inner
        }
        other => Box::new(other),
    };
    StoreError {
        store: path.display().to_string(),
        kind,
        source,
    }
}

/// The error of a file beside the database at `path`.
pub(super) fn io_error(path: &Path, error: std::io::Error) -> StoreError {
    StoreError {
        store: path.display().to_string(),
        kind: StoreErrorKind::Unavailable,
        source: Box::new(error),
    }
}

/// Column `column`'s text as the JSON of a `T`, described as `what` when it
/// does not decode.
pub(super) fn json<T: DeserializeOwned>(
    column: usize,
    what: impl FnOnce() -> String,
    text: &str,
) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| undecodable(column, what(), e))
}

/// Column `column` does not hold a `what`.
pub(super) fn undecodable(
    column: usize,
    what: String,
    source: impl Into<Box<dyn Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        Type::Text,
        Box::new(Undecodable {
            what,
            source: source.into(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_does_not_decode_is_corrupt_and_says_what_it_was() {
        let error = json::<Vec<String>>(3, || "the hosts of `acme-crm`".into(), "{")
            .map(drop)
            .unwrap_err();
        let error = store_error(Path::new("weir.db"), error);
        assert_eq!(error.kind, StoreErrorKind::Corrupt);
        assert!(
            error.to_string().starts_with(
                "the store `weir.db` failed: the hosts of `acme-crm` does not decode: "
            ),
            "{error}"
        );
    }

    #[test]
    fn a_lock_held_elsewhere_is_busy() {
        let failure = |code| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error {
                    code,
                    extended_code: 0,
                },
                Some("database is locked".into()),
            )
        };
        let kind = |code| store_error(Path::new("weir.db"), failure(code)).kind;
        assert_eq!(kind(ErrorCode::DatabaseBusy), StoreErrorKind::Busy);
        assert_eq!(kind(ErrorCode::DiskFull), StoreErrorKind::Unavailable);
        assert_eq!(kind(ErrorCode::NotADatabase), StoreErrorKind::Corrupt);
    }
}
