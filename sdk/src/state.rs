//! [`State`]: a checkpoint's state as a serde type whose format is declared
//! once, and [`CheckpointError`] for a stored checkpoint that does not
//! decode.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// The resume state of a connector's streams, as a serde type, with its
/// checkpoint format.
///
/// Write it with [`Checkpoint::encode`](crate::Checkpoint::encode), read it
/// back with [`ReadRequest::resume`](crate::ReadRequest::resume), and
/// declare the format in the spec with
/// `.checkpoint_format(YourState::FORMAT)`. The state is stored as its JSON
/// text: a checkpoint written by [`Checkpoint::new`](crate::Checkpoint::new)
/// with the same format and value is the same checkpoint.
///
/// Change the shape only together with `FORMAT`, and convert checkpoints of
/// the older format in
/// [`Connector::migrate_checkpoint`](crate::Connector::migrate_checkpoint):
/// stored checkpoints outlive the connector version that wrote them.
///
/// # Example
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use weir_sdk::{Checkpoint, ReadRequest, Spec, State};
///
/// /// Where the next read starts.
/// #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
/// struct Position {
///     cursor: Option<String>,
/// }
///
/// impl State for Position {
///     const FORMAT: u32 = 1;
/// }
///
/// let spec = Spec::new("acme-crm", "1.0.0").checkpoint_format(Position::FORMAT);
///
/// let checkpoint = Checkpoint::encode(&Position { cursor: Some("abc".into()) })?;
/// assert_eq!((checkpoint.format, checkpoint.state.as_str()), (1, r#"{"cursor":"abc"}"#));
///
/// let request = ReadRequest::new("contacts", 100).with_checkpoint(checkpoint);
/// let position: Position = request.resume()?.unwrap_or_default();
/// assert_eq!(position.cursor.as_deref(), Some("abc"));
/// # Ok::<(), weir_sdk::Error>(())
/// ```
pub trait State: Serialize + DeserializeOwned {
    /// The checkpoint format of this shape: put it in
    /// [`Spec::checkpoint_format`](crate::Spec::checkpoint_format).
    const FORMAT: u32;
}

/// A stored checkpoint that cannot be read as the connector's [`State`].
///
/// Converts into [`Error::Permanent`] with `?`: the host stops the flow
/// rather than guess where to resume, and the message tells the operator
/// what to do.
///
/// # Example
///
/// ```
/// use weir_sdk::{Checkpoint, CheckpointError, ReadRequest};
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// struct Position { cursor: String }
///
/// impl weir_sdk::State for Position {
///     const FORMAT: u32 = 1;
/// }
///
/// let request = ReadRequest::new("contacts", 100)
///     .with_checkpoint(Checkpoint::from_json(1, r#"{"page":3}"#));
/// let error = request.resume::<Position>().unwrap_err();
/// assert!(matches!(&error, CheckpointError::Undecodable { stream, .. } if stream == "contacts"));
/// assert!(error.to_string().contains("`weir state reset <flow>`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The checkpoint is of another format than the one the connector
    /// reads. The host converts older formats to the spec's
    /// `checkpoint_format` before a read, so the connector's spec and its
    /// state disagree: a connector bug.
    WrongFormat {
        /// The stream whose checkpoint it is.
        stream: String,
        /// The checkpoint's format.
        found: u32,
        /// The format the connector reads.
        expected: u32,
    },
    /// The state does not decode: it was edited, or written by a version of
    /// the connector with another shape under the same format.
    Undecodable {
        /// The stream whose checkpoint it is.
        stream: String,
        /// The checkpoint's format.
        format: u32,
        /// Why it does not decode, as `serde_json` says it.
        reason: String,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongFormat {
                stream,
                found,
                expected,
            } => write!(
                f,
                "stream `{stream}` has a checkpoint of format {found}, expected {expected}: \
                 a connector bug, its spec's `checkpoint_format` must be the format its state is read in"
            ),
            Self::Undecodable {
                stream,
                format,
                reason,
            } => write!(
                f,
                "stream `{stream}` has a checkpoint of format {format} that this connector cannot read \
                 ({reason}): it was edited, or written by a connector version that stored another \
                 shape under the same format; see it with `weir state show <flow>`, and run \
                 `weir state reset <flow>` to read the stream in full again"
            ),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// A checkpoint that cannot be read will not become readable by retrying.
///
/// ```
/// let error = weir_sdk::CheckpointError::WrongFormat { stream: "contacts".into(), found: 2, expected: 1 };
/// assert!(matches!(weir_sdk::Error::from(error), weir_sdk::Error::Permanent(_)));
/// ```
impl From<CheckpointError> for Error {
    fn from(error: CheckpointError) -> Self {
        Error::Permanent(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::{Checkpoint, ReadRequest};

    /// A format 1 as connectors wrote it with `Checkpoint::new(1, ...)`.
    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Position {
        cursor: Option<String>,
    }

    impl State for Position {
        const FORMAT: u32 = 1;
    }

    fn resume(checkpoint: Checkpoint) -> Result<Option<Position>, CheckpointError> {
        ReadRequest::new("contacts", 10)
            .with_checkpoint(checkpoint)
            .resume()
    }

    #[test]
    fn encoded_states_are_the_checkpoints_written_by_hand() {
        let position = Position {
            cursor: Some("MTcw".into()),
        };
        let encoded = Checkpoint::encode(&position).unwrap();
        assert_eq!(encoded, Checkpoint::new(1, &position).unwrap());
        assert_eq!(encoded, Checkpoint::from_json(1, r#"{"cursor":"MTcw"}"#));
        assert_eq!(
            Checkpoint::encode(&Position::default()).unwrap().state,
            r#"{"cursor":null}"#
        );
    }

    #[test]
    fn stored_checkpoints_resume_where_they_stopped() {
        let stored = Checkpoint::from_json(1, r#"{"cursor":"MTcw"}"#);
        assert_eq!(
            resume(stored),
            Ok(Some(Position {
                cursor: Some("MTcw".into())
            }))
        );
        assert_eq!(
            ReadRequest::new("contacts", 10).resume::<Position>(),
            Ok(None)
        );
    }

    #[test]
    fn a_checkpoint_of_another_format_is_a_connector_bug() {
        let error = resume(Checkpoint::from_json(2, r#"{"cursor":"MTcw"}"#)).unwrap_err();
        assert_eq!(
            error,
            CheckpointError::WrongFormat {
                stream: "contacts".into(),
                found: 2,
                expected: 1
            }
        );
        assert!(error.to_string().contains("a connector bug"), "{error}");
    }

    #[test]
    fn an_undecodable_checkpoint_says_why_and_how_to_start_over() {
        let error = resume(Checkpoint::from_json(1, r#"{"cursor":7}"#)).unwrap_err();
        let CheckpointError::Undecodable {
            stream,
            format,
            reason,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!((stream.as_str(), *format), ("contacts", 1));
        assert!(reason.starts_with("invalid type: integer `7`"), "{reason}");
        assert_eq!(
            Error::from(error.clone()),
            Error::permanent(format!(
                "stream `contacts` has a checkpoint of format 1 that this connector cannot read ({reason}): it was edited, or written by a connector version that stored another shape under the same format; see it with `weir state show <flow>`, and run `weir state reset <flow>` to read the stream in full again"
            ))
        );
    }

    #[test]
    fn an_older_format_decodes_with_its_own_type() {
        #[derive(Serialize, Deserialize)]
        struct Offset {
            offset: u64,
        }
        impl State for Offset {
            const FORMAT: u32 = 0;
        }
        let old = Checkpoint::from_json(0, r#"{"offset":40}"#);
        assert_eq!(old.decode::<Offset>("contacts").unwrap().offset, 40);
        assert!(matches!(
            old.decode::<Position>("contacts"),
            Err(CheckpointError::WrongFormat { found: 0, .. })
        ));
    }
}
