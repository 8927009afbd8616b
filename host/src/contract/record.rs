/// Whether a record is a new state of an object or its removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Insert or update.
    Upsert,
    /// Removal, kept as a tombstone.
    Delete,
}

impl ChangeKind {
    /// `upsert` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upsert => "upsert",
            Self::Delete => "delete",
        }
    }
}

/// One object of a stream, its data kept as the connector's JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Primary key.
    pub key: String,
    /// The partner's version, growing with every change.
    pub version: Option<u64>,
    /// Upsert or delete.
    pub kind: ChangeKind,
    /// The object as JSON text.
    pub data: String,
}

/// A connector's resume state for one stream, opaque to the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The connector's format version of `state`.
    pub format: u32,
    /// JSON text.
    pub state: String,
}

/// Records read from a stream, and where the next read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The records.
    pub records: Vec<Record>,
    /// The checkpoint after this page.
    pub checkpoint: Checkpoint,
    /// Whether more records are ready now.
    pub has_more: bool,
}

/// One object to write to a partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRequest {
    /// The object as JSON text, in the partner's shape.
    pub data: String,
    /// The partner's id when the object exists there.
    pub external_id: Option<String>,
    /// Upsert or delete.
    pub kind: ChangeKind,
    /// The same on every retry of this write.
    pub idempotency_key: String,
}

/// The partner's state of an object after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The partner's id.
    pub external_id: String,
    /// The version after the write.
    pub version: Option<u64>,
}
