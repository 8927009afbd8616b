//! What a connector declares up front: [`Spec`] with its
//! [`StreamCapabilities`], and per connection [`StreamSchema`]s.

use serde_json::Value;

/// Who the connector is and what it needs: the return value of
/// [`Connector::spec`](crate::Connector::spec).
///
/// The host calls `spec` once when the plugin loads, without network access
/// or configuration. `sdk_version` is filled in with this crate's version.
///
/// # Example
///
/// ```
/// use serde_json::json;
/// use weir_sdk::{ChangeFeed, DeleteFeed, IdempotencyStyle, Spec, StreamCapabilities};
///
/// let spec = Spec::new("acme-crm", "1.0.0")
///     .description("Contacts and companies of Acme CRM")
///     .config_schema(json!({
///         "type": "object",
///         "required": ["base_url"],
///         "properties": { "base_url": { "type": "string", "format": "uri" } }
///     }))
///     .host("config:/base_url")
///     .secret("api_key", "an API key, from Settings > API in Acme CRM")
///     .stream(
///         StreamCapabilities::new("contacts")
///             .change_feed(ChangeFeed::Cursor)
///             .deletes(DeleteFeed::Tombstones)
///             .idempotency(IdempotencyStyle::Key)
///             .versioned(true),
///     )
///     .checkpoint_format(1);
///
/// assert_eq!(spec.streams[0].name, "contacts");
/// assert_eq!(spec.sdk_version, env!("CARGO_PKG_VERSION"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Spec {
    /// A stable kebab-case name, e.g. `acme-crm`. Connections refer to the
    /// connector by this name.
    pub name: String,
    /// The connector's own semantic version; pass `env!("CARGO_PKG_VERSION")`.
    pub version: String,
    /// A sentence for operators.
    pub description: String,
    /// The JSON Schema of the connection's config, as JSON text. Defaults to
    /// `{"type":"object"}`.
    pub config_schema: String,
    /// The origins the connector needs to reach: `scheme://host[:port]`
    /// patterns (`*.` allowed as the first label), or `config:<json-pointer>`
    /// for an origin read from the connection's config.
    pub hosts: Vec<String>,
    /// The secrets the connector names in HTTP headers and signature checks.
    pub secrets: Vec<SecretSpec>,
    /// The streams and what each supports.
    pub streams: Vec<StreamCapabilities>,
    /// The current format of this connector's checkpoints. Defaults to 1.
    pub checkpoint_format: u32,
    /// The version of `weir-sdk` the connector was built with.
    pub sdk_version: String,
}

impl Spec {
    /// A spec with no hosts, secrets or streams yet.
    ///
    /// ```
    /// let spec = weir_sdk::Spec::new("acme-crm", env!("CARGO_PKG_VERSION"));
    /// assert_eq!(spec.checkpoint_format, 1);
    /// ```
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            config_schema: r#"{"type":"object"}"#.into(),
            hosts: Vec::new(),
            secrets: Vec::new(),
            streams: Vec::new(),
            checkpoint_format: 1,
            sdk_version: crate::SDK_VERSION.into(),
        }
    }

    /// Sets the description, a sentence for operators.
    ///
    /// ```
    /// let spec = weir_sdk::Spec::new("acme-crm", "1.0.0").description("Acme CRM contacts");
    /// assert_eq!(spec.description, "Acme CRM contacts");
    /// ```
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the JSON Schema of the connection's config.
    ///
    /// ```
    /// let spec = weir_sdk::Spec::new("acme-crm", "1.0.0")
    ///     .config_schema(serde_json::json!({ "type": "object", "required": ["base_url"] }));
    /// assert!(spec.config_schema.contains("base_url"));
    /// ```
    pub fn config_schema(mut self, schema: Value) -> Self {
        self.config_schema = schema.to_string();
        self
    }

    /// Adds an origin the connector needs to reach.
    ///
    /// ```
    /// let spec = weir_sdk::Spec::new("acme-crm", "1.0.0")
    ///     .host("https://*.acme.example")
    ///     .host("config:/base_url");
    /// assert_eq!(spec.hosts.len(), 2);
    /// ```
    pub fn host(mut self, origin: impl Into<String>) -> Self {
        self.hosts.push(origin.into());
        self
    }

    /// Declares a secret: its name, and what it is and where to find it.
    ///
    /// ```
    /// let spec = weir_sdk::Spec::new("acme-crm", "1.0.0")
    ///     .secret("api_key", "an API key, from Settings > API in Acme CRM");
    /// assert_eq!(spec.secrets[0].name, "api_key");
    /// ```
    pub fn secret(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.secrets.push(SecretSpec {
            name: name.into(),
            description: description.into(),
        });
        self
    }

    /// Adds a stream. To declare each stream once, for the spec, `discover`
    /// and the lookup of a stream by name, use [`streams`](Spec::streams).
    ///
    /// ```
    /// let spec = weir_sdk::Spec::new("acme-crm", "1.0.0")
    ///     .stream(weir_sdk::StreamCapabilities::new("companies"));
    /// assert_eq!(spec.streams[0].name, "companies");
    /// ```
    pub fn stream(mut self, stream: StreamCapabilities) -> Self {
        self.streams.push(stream);
        self
    }

    /// Adds every stream of a [`Streams`](crate::Streams) table, in order:
    /// the way to declare streams once.
    ///
    /// ```
    /// use weir_sdk::{Spec, Stream, Streams};
    ///
    /// const STREAMS: Streams<()> = Streams::new(&[Stream::new("contacts", ()), Stream::new("companies", ())]);
    /// let spec = Spec::new("acme-crm", "1.0.0").streams(&STREAMS);
    /// assert_eq!(spec.streams.len(), 2);
    /// ```
    pub fn streams<P>(mut self, streams: &crate::Streams<P>) -> Self {
        self.streams.extend(streams.capabilities());
        self
    }

    /// Sets the current checkpoint format (see [`Checkpoint`](crate::Checkpoint)).
    ///
    /// ```
    /// let spec = weir_sdk::Spec::new("acme-crm", "2.0.0").checkpoint_format(2);
    /// assert_eq!(spec.checkpoint_format, 2);
    /// ```
    pub fn checkpoint_format(mut self, format: u32) -> Self {
        self.checkpoint_format = format;
        self
    }
}

/// A secret the connector uses, declared in [`Spec::secret`].
///
/// # Example
///
/// ```
/// let spec = weir_sdk::Spec::new("acme-crm", "1.0.0").secret("api_key", "an API key");
/// let secret: &weir_sdk::SecretSpec = &spec.secrets[0];
/// assert_eq!(secret.description, "an API key");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretSpec {
    /// The name the connector refers to it by, e.g. `api_key`.
    pub name: String,
    /// What it is and where to find it in the partner's product.
    pub description: String,
}

/// How a stream's changes can be followed.
///
/// # Example
///
/// ```
/// let stream = weir_sdk::StreamCapabilities::new("contacts").change_feed(weir_sdk::ChangeFeed::Cursor);
/// assert_eq!(stream.change_feed, weir_sdk::ChangeFeed::Cursor);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChangeFeed {
    /// Every read returns the whole stream; deletes are found by their
    /// absence.
    #[default]
    FullOnly,
    /// Incremental by a cursor field that grows with every change (such as
    /// `updated_at`).
    Cursor,
    /// An ordered log of changes (events API, change tokens), deletes
    /// included.
    ChangeLog,
}

/// Whether and how a stream reports deletions.
///
/// # Example
///
/// ```
/// let stream = weir_sdk::StreamCapabilities::new("contacts").deletes(weir_sdk::DeleteFeed::Tombstones);
/// assert_eq!(stream.deletes, weir_sdk::DeleteFeed::Tombstones);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeleteFeed {
    /// Deletes are not reported; a full refresh finds them.
    #[default]
    None,
    /// `read` returns deleted objects as records of kind
    /// [`Delete`](crate::ChangeKind::Delete).
    Tombstones,
    /// Deletes arrive only as webhooks.
    Webhooks,
}

/// How writes to a stream are made safe to retry.
///
/// # Example
///
/// ```
/// let stream = weir_sdk::StreamCapabilities::new("contacts")
///     .idempotency(weir_sdk::IdempotencyStyle::Key);
/// assert_eq!(stream.idempotency, weir_sdk::IdempotencyStyle::Key);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdempotencyStyle {
    /// The stream cannot be written.
    #[default]
    NotWritable,
    /// The partner deduplicates requests by an idempotency key; retrying with
    /// the same key never creates a second object.
    Key,
    /// The partner does not deduplicate, but the connector can find an
    /// earlier write by its idempotency key
    /// ([`Connector::lookup`](crate::Connector::lookup)), e.g. because the key
    /// is stored in an external-id field.
    Lookup,
    /// Writes are idempotent by nature (PUT of a full object by a key).
    Natural,
}

/// What a stream supports, declared in [`Spec::stream`] so the host can plan
/// runs and check flows before any call to the partner.
///
/// A new stream is full-only, without deletes, read-only, unversioned and
/// without webhooks.
///
/// # Example
///
/// ```
/// use weir_sdk::{ChangeFeed, DeleteFeed, IdempotencyStyle, StreamCapabilities};
///
/// let contacts = StreamCapabilities::new("contacts")
///     .change_feed(ChangeFeed::Cursor)
///     .deletes(DeleteFeed::Tombstones)
///     .idempotency(IdempotencyStyle::Key)
///     .versioned(true)
///     .webhooks(true);
/// assert!(contacts.webhooks);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamCapabilities {
    /// The stream's name, as used in reads and writes.
    pub name: String,
    /// How changes are followed.
    pub change_feed: ChangeFeed,
    /// How deletes are reported.
    pub deletes: DeleteFeed,
    /// How writes are deduplicated.
    pub idempotency: IdempotencyStyle,
    /// Whether record versions are set and grow with every change.
    pub versioned: bool,
    /// Whether webhooks report changes to this stream.
    pub webhooks: bool,
}

impl StreamCapabilities {
    /// A full-only, read-only stream named `name`.
    ///
    /// ```
    /// let stream = weir_sdk::StreamCapabilities::new("companies");
    /// assert_eq!(stream.idempotency, weir_sdk::IdempotencyStyle::NotWritable);
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            change_feed: ChangeFeed::FullOnly,
            deletes: DeleteFeed::None,
            idempotency: IdempotencyStyle::NotWritable,
            versioned: false,
            webhooks: false,
        }
    }

    /// Sets how changes are followed.
    ///
    /// ```
    /// let stream = weir_sdk::StreamCapabilities::new("events").change_feed(weir_sdk::ChangeFeed::ChangeLog);
    /// assert_eq!(stream.change_feed, weir_sdk::ChangeFeed::ChangeLog);
    /// ```
    pub fn change_feed(mut self, change_feed: ChangeFeed) -> Self {
        self.change_feed = change_feed;
        self
    }

    /// Sets how deletes are reported.
    ///
    /// ```
    /// let stream = weir_sdk::StreamCapabilities::new("contacts").deletes(weir_sdk::DeleteFeed::Webhooks);
    /// assert_eq!(stream.deletes, weir_sdk::DeleteFeed::Webhooks);
    /// ```
    pub fn deletes(mut self, deletes: DeleteFeed) -> Self {
        self.deletes = deletes;
        self
    }

    /// Sets how writes are deduplicated (and so makes the stream writable).
    ///
    /// ```
    /// let stream = weir_sdk::StreamCapabilities::new("contacts")
    ///     .idempotency(weir_sdk::IdempotencyStyle::Lookup);
    /// assert_eq!(stream.idempotency, weir_sdk::IdempotencyStyle::Lookup);
    /// ```
    pub fn idempotency(mut self, idempotency: IdempotencyStyle) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// Sets whether record versions are set and grow with every change.
    ///
    /// ```
    /// assert!(weir_sdk::StreamCapabilities::new("contacts").versioned(true).versioned);
    /// ```
    pub fn versioned(mut self, versioned: bool) -> Self {
        self.versioned = versioned;
        self
    }

    /// Sets whether webhooks report changes to this stream.
    ///
    /// ```
    /// assert!(weir_sdk::StreamCapabilities::new("contacts").webhooks(true).webhooks);
    /// ```
    pub fn webhooks(mut self, webhooks: bool) -> Self {
        self.webhooks = webhooks;
        self
    }
}

/// A stream as it is for one connection, returned by
/// [`Connector::discover`](crate::Connector::discover).
///
/// # Example
///
/// ```
/// use serde_json::json;
///
/// let schema = weir_sdk::StreamSchema::new("contacts", json!({
///         "type": "object",
///         "properties": { "id": { "type": "string" }, "updated_at": { "type": "string" } }
///     }))
///     .description("People in Acme CRM")
///     .primary_key(["/id"])
///     .cursor_field("/updated_at");
/// assert_eq!(schema.primary_key, ["/id"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamSchema {
    /// The stream's name.
    pub name: String,
    /// A sentence for operators and customers.
    pub description: String,
    /// The fields forming the primary key, as JSON pointers (e.g. `/id`).
    pub primary_key: Vec<String>,
    /// The field that grows with every change, as a JSON pointer, when the
    /// stream is incremental (e.g. `/updated_at`).
    pub cursor_field: Option<String>,
    /// The JSON Schema of a record's data, as JSON text.
    pub json_schema: String,
}

impl StreamSchema {
    /// A stream `name` whose records follow `json_schema`, without primary
    /// key or cursor yet.
    ///
    /// ```
    /// let schema = weir_sdk::StreamSchema::new("companies", serde_json::json!({ "type": "object" }));
    /// assert_eq!(schema.json_schema, r#"{"type":"object"}"#);
    /// ```
    pub fn new(name: impl Into<String>, json_schema: Value) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            primary_key: Vec::new(),
            cursor_field: None,
            json_schema: json_schema.to_string(),
        }
    }

    /// Sets the description.
    ///
    /// ```
    /// let schema = weir_sdk::StreamSchema::new("companies", serde_json::json!({}))
    ///     .description("Organisations in Acme CRM");
    /// assert_eq!(schema.description, "Organisations in Acme CRM");
    /// ```
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the primary key, as JSON pointers.
    ///
    /// ```
    /// let schema = weir_sdk::StreamSchema::new("line_items", serde_json::json!({}))
    ///     .primary_key(["/order_id", "/line"]);
    /// assert_eq!(schema.primary_key.len(), 2);
    /// ```
    pub fn primary_key<I>(mut self, pointers: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.primary_key = pointers.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the cursor field, as a JSON pointer.
    ///
    /// ```
    /// let schema = weir_sdk::StreamSchema::new("companies", serde_json::json!({}))
    ///     .cursor_field("/updated_at");
    /// assert_eq!(schema.cursor_field.as_deref(), Some("/updated_at"));
    /// ```
    pub fn cursor_field(mut self, pointer: impl Into<String>) -> Self {
        self.cursor_field = Some(pointer.into());
        self
    }
}
