//! Writing: [`WriteRequest`] in, [`Written`] out.

use serde::Deserialize;

use crate::{ChangeKind, Result, ResultExt};

/// One object to write to a partner, an element of the batch given to
/// [`Connector::write`](crate::Connector::write).
///
/// # Example
///
/// ```
/// use weir_sdk::WriteRequest;
///
/// let request = WriteRequest::create(r#"{"email":"ada@example.com"}"#, "run-7/rec-1");
/// #[derive(serde::Deserialize)]
/// struct Contact { email: String }
/// assert_eq!(request.data::<Contact>()?.email, "ada@example.com");
/// # Ok::<(), weir_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteRequest {
    /// The object, in the partner's shape, as a JSON object.
    pub data: String,
    /// The partner's id of the object when it exists there already (an
    /// update or delete); `None` to create it.
    pub external_id: Option<String>,
    /// Upsert or delete.
    pub kind: ChangeKind,
    /// Unique to this logical write and the same on every retry of it. Pass
    /// it to the partner ([`http::Request::idempotency_key`](crate::http::Request::idempotency_key),
    /// an external-id field) so that a retry never writes twice.
    pub idempotency_key: String,
}

impl WriteRequest {
    /// A request to create an object (for tests: the host builds these).
    ///
    /// ```
    /// let request = weir_sdk::WriteRequest::create("{}", "key-1");
    /// assert!(request.external_id.is_none());
    /// ```
    pub fn create(data: impl Into<String>, idempotency_key: impl Into<String>) -> Self {
        Self {
            data: data.into(),
            external_id: None,
            kind: ChangeKind::Upsert,
            idempotency_key: idempotency_key.into(),
        }
    }

    /// A request to update the object the partner knows as `external_id`.
    ///
    /// ```
    /// let request = weir_sdk::WriteRequest::update("c_1", r#"{"score":3}"#, "key-2");
    /// assert_eq!(request.external_id.as_deref(), Some("c_1"));
    /// ```
    pub fn update(
        external_id: impl Into<String>,
        data: impl Into<String>,
        idempotency_key: impl Into<String>,
    ) -> Self {
        Self {
            external_id: Some(external_id.into()),
            ..Self::create(data, idempotency_key)
        }
    }

    /// A request to delete the object the partner knows as `external_id`.
    ///
    /// ```
    /// let request = weir_sdk::WriteRequest::delete("c_1", "key-3");
    /// assert_eq!(request.kind, weir_sdk::ChangeKind::Delete);
    /// ```
    pub fn delete(external_id: impl Into<String>, idempotency_key: impl Into<String>) -> Self {
        Self {
            kind: ChangeKind::Delete,
            ..Self::update(external_id, "{}", idempotency_key)
        }
    }

    /// Parses the data.
    ///
    /// # Errors
    ///
    /// [`Error::Permanent`](crate::Error::Permanent) when it does not parse as
    /// `T`: this one object goes to the dead letters.
    ///
    /// ```
    /// let request = weir_sdk::WriteRequest::create(r#"{"score":"high"}"#, "key-4");
    /// #[derive(serde::Deserialize)]
    /// #[allow(dead_code)]
    /// struct Contact { score: u32 }
    /// assert!(request.data::<Contact>().is_err());
    /// ```
    pub fn data<'a, T: Deserialize<'a>>(&'a self) -> Result<T> {
        serde_json::from_str(&self.data).context("the object to write")
    }
}

/// The partner's state of an object after a write.
///
/// # Example
///
/// ```
/// let written = weir_sdk::Written::new("c_000042").with_version(1);
/// assert_eq!(written.external_id, "c_000042");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The partner's id of the object.
    pub external_id: String,
    /// The object's version after the write, when the partner has one.
    pub version: Option<u64>,
}

impl Written {
    /// The object `external_id`, without a version.
    ///
    /// ```
    /// assert_eq!(weir_sdk::Written::new("c_1").version, None);
    /// ```
    pub fn new(external_id: impl Into<String>) -> Self {
        Self {
            external_id: external_id.into(),
            version: None,
        }
    }

    /// Sets the version.
    ///
    /// ```
    /// assert_eq!(weir_sdk::Written::new("c_1").with_version(2).version, Some(2));
    /// ```
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }
}
