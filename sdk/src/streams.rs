//! Streams declared once: [`Stream`] and the table of them, [`Streams`],
//! from which come the spec's [`StreamCapabilities`], `discover`'s
//! [`StreamSchema`]s and the lookup of a stream by the name the host sends.

use serde_json::Value;

use crate::{
    ChangeFeed, DeleteFeed, Error, IdempotencyStyle, Result, StreamCapabilities, StreamSchema,
};

/// Everything about one stream, declared in one place: its name, what it
/// supports, its records' shape, and a payload of the connector's choice
/// (such as the partner's resource path) that the connector gets back when
/// it looks the stream up by name.
///
/// The builder methods are `const`, so that the connector's streams can be a
/// `const` table ([`Streams`]) built once at compile time. A new stream is
/// full-only, without deletes, read-only, unversioned, without webhooks, and
/// its records are any JSON object.
///
/// # Example
///
/// ```
/// use serde_json::{Value, json};
/// use weir_sdk::{ChangeFeed, DeleteFeed, IdempotencyStyle, Stream};
///
/// fn contact_schema() -> Value {
///     json!({ "type": "object", "required": ["id"] })
/// }
///
/// /// The payload: the stream's path in the partner's API.
/// const CONTACTS: Stream<&str> = Stream::new("contacts", "/v1/people")
///     .description("People in Acme CRM")
///     .json_schema(contact_schema)
///     .primary_key(&["/id"])
///     .cursor_field("/updated_at")
///     .change_feed(ChangeFeed::Cursor)
///     .deletes(DeleteFeed::Tombstones)
///     .idempotency(IdempotencyStyle::Key)
///     .versioned(true);
///
/// assert_eq!(CONTACTS.payload, "/v1/people");
/// assert!(CONTACTS.is_writable());
/// assert_eq!(CONTACTS.capabilities().change_feed, ChangeFeed::Cursor);
/// assert_eq!(CONTACTS.schema().cursor_field.as_deref(), Some("/updated_at"));
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Stream<P: 'static> {
    /// The stream's name, as used in reads and writes.
    pub name: &'static str,
    /// A sentence for operators and customers.
    pub description: &'static str,
    /// Builds the JSON Schema of a record's data. A function, so that the
    /// schema is built only when [`Connector::discover`](crate::Connector::discover)
    /// asks for it.
    pub json_schema: fn() -> Value,
    /// The fields forming the primary key, as JSON pointers (e.g. `/id`).
    pub primary_key: &'static [&'static str],
    /// The field that grows with every change, as a JSON pointer.
    pub cursor_field: Option<&'static str>,
    /// How changes are followed.
    pub change_feed: ChangeFeed,
    /// How deletes are reported.
    pub deletes: DeleteFeed,
    /// How writes are deduplicated; [`IdempotencyStyle::NotWritable`] for a
    /// read-only stream.
    pub idempotency: IdempotencyStyle,
    /// Whether record versions are set and grow with every change.
    pub versioned: bool,
    /// Whether webhooks report changes to this stream.
    pub webhooks: bool,
    /// The connector's own data about the stream.
    pub payload: P,
}

/// The schema of a stream that declares none: any JSON object.
fn any_object() -> Value {
    serde_json::json!({ "type": "object" })
}

impl<P> Stream<P> {
    /// A full-only, read-only stream named `name`, carrying `payload`.
    /// Pass `()` when the connector needs no payload.
    ///
    /// ```
    /// const TAGS: weir_sdk::Stream<()> = weir_sdk::Stream::new("tags", ());
    /// assert!(!TAGS.is_writable());
    /// assert_eq!(TAGS.schema().json_schema, r#"{"type":"object"}"#);
    /// ```
    pub const fn new(name: &'static str, payload: P) -> Self {
        Self {
            name,
            description: "",
            json_schema: any_object,
            primary_key: &[],
            cursor_field: None,
            change_feed: ChangeFeed::FullOnly,
            deletes: DeleteFeed::None,
            idempotency: IdempotencyStyle::NotWritable,
            versioned: false,
            webhooks: false,
            payload,
        }
    }

    /// Sets the description.
    ///
    /// ```
    /// const TAGS: weir_sdk::Stream<()> = weir_sdk::Stream::new("tags", ()).description("Labels");
    /// assert_eq!(TAGS.schema().description, "Labels");
    /// ```
    pub const fn description(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    /// Sets the function that builds the JSON Schema of a record's data.
    ///
    /// ```
    /// fn tag() -> serde_json::Value {
    ///     serde_json::json!({ "type": "object", "required": ["name"] })
    /// }
    /// const TAGS: weir_sdk::Stream<()> = weir_sdk::Stream::new("tags", ()).json_schema(tag);
    /// assert!(TAGS.schema().json_schema.contains("required"));
    /// ```
    pub const fn json_schema(mut self, json_schema: fn() -> Value) -> Self {
        self.json_schema = json_schema;
        self
    }

    /// Sets the primary key, as JSON pointers.
    ///
    /// ```
    /// const LINES: weir_sdk::Stream<()> =
    ///     weir_sdk::Stream::new("line_items", ()).primary_key(&["/order_id", "/line"]);
    /// assert_eq!(LINES.schema().primary_key, ["/order_id", "/line"]);
    /// ```
    pub const fn primary_key(mut self, pointers: &'static [&'static str]) -> Self {
        self.primary_key = pointers;
        self
    }

    /// Sets the cursor field, as a JSON pointer.
    ///
    /// ```
    /// const TAGS: weir_sdk::Stream<()> = weir_sdk::Stream::new("tags", ()).cursor_field("/updated_at");
    /// assert_eq!(TAGS.cursor_field, Some("/updated_at"));
    /// ```
    pub const fn cursor_field(mut self, pointer: &'static str) -> Self {
        self.cursor_field = Some(pointer);
        self
    }

    /// Sets how changes are followed.
    ///
    /// ```
    /// use weir_sdk::{ChangeFeed, Stream};
    /// const EVENTS: Stream<()> = Stream::new("events", ()).change_feed(ChangeFeed::ChangeLog);
    /// assert_eq!(EVENTS.capabilities().change_feed, ChangeFeed::ChangeLog);
    /// ```
    pub const fn change_feed(mut self, change_feed: ChangeFeed) -> Self {
        self.change_feed = change_feed;
        self
    }

    /// Sets how deletes are reported.
    ///
    /// ```
    /// use weir_sdk::{DeleteFeed, Stream};
    /// const TAGS: Stream<()> = Stream::new("tags", ()).deletes(DeleteFeed::Webhooks);
    /// assert_eq!(TAGS.capabilities().deletes, DeleteFeed::Webhooks);
    /// ```
    pub const fn deletes(mut self, deletes: DeleteFeed) -> Self {
        self.deletes = deletes;
        self
    }

    /// Sets how writes are deduplicated, and so makes the stream writable.
    ///
    /// ```
    /// use weir_sdk::{IdempotencyStyle, Stream};
    /// const TAGS: Stream<()> = Stream::new("tags", ()).idempotency(IdempotencyStyle::Natural);
    /// assert!(TAGS.is_writable());
    /// ```
    pub const fn idempotency(mut self, idempotency: IdempotencyStyle) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// Sets whether record versions are set and grow with every change.
    ///
    /// ```
    /// const TAGS: weir_sdk::Stream<()> = weir_sdk::Stream::new("tags", ()).versioned(true);
    /// assert!(TAGS.capabilities().versioned);
    /// ```
    pub const fn versioned(mut self, versioned: bool) -> Self {
        self.versioned = versioned;
        self
    }

    /// Sets whether webhooks report changes to this stream.
    ///
    /// ```
    /// const TAGS: weir_sdk::Stream<()> = weir_sdk::Stream::new("tags", ()).webhooks(true);
    /// assert!(TAGS.capabilities().webhooks);
    /// ```
    pub const fn webhooks(mut self, webhooks: bool) -> Self {
        self.webhooks = webhooks;
        self
    }

    /// Whether the stream can be written: its idempotency style is not
    /// [`IdempotencyStyle::NotWritable`].
    ///
    /// ```
    /// assert!(!weir_sdk::Stream::new("tags", ()).is_writable());
    /// ```
    pub fn is_writable(&self) -> bool {
        self.idempotency != IdempotencyStyle::NotWritable
    }

    /// What the stream supports, for [`Spec`](crate::Spec).
    ///
    /// ```
    /// let capabilities = weir_sdk::Stream::new("tags", ()).capabilities();
    /// assert_eq!(capabilities.name, "tags");
    /// ```
    pub fn capabilities(&self) -> StreamCapabilities {
        StreamCapabilities::new(self.name)
            .change_feed(self.change_feed)
            .deletes(self.deletes)
            .idempotency(self.idempotency)
            .versioned(self.versioned)
            .webhooks(self.webhooks)
    }

    /// The stream's schema, for [`Connector::discover`](crate::Connector::discover):
    /// builds the JSON Schema.
    ///
    /// ```
    /// let schema = weir_sdk::Stream::new("tags", ()).primary_key(&["/name"]).schema();
    /// assert_eq!(schema.primary_key, ["/name"]);
    /// ```
    pub fn schema(&self) -> StreamSchema {
        let schema = StreamSchema::new(self.name, (self.json_schema)())
            .description(self.description)
            .primary_key(self.primary_key.iter().copied());
        match self.cursor_field {
            Some(pointer) => schema.cursor_field(pointer),
            None => schema,
        }
    }
}

/// A connector's streams, declared once as a `const`: the spec
/// ([`Spec::streams`](crate::Spec::streams)), `discover`
/// ([`schemas`](Streams::schemas)) and the lookup of the stream a call names
/// ([`get`](Streams::get), [`writable`](Streams::writable)) all come from it.
///
/// # Example
///
/// ```
/// use weir_sdk::{ChangeFeed, Error, IdempotencyStyle, Spec, Stream, Streams};
///
/// /// Each stream's payload is its path in the partner's API.
/// const STREAMS: Streams<&str> = Streams::new(&[
///     Stream::new("contacts", "people")
///         .primary_key(&["/id"])
///         .change_feed(ChangeFeed::Cursor)
///         .idempotency(IdempotencyStyle::Key),
///     Stream::new("companies", "organisations").primary_key(&["/id"]),
/// ]);
///
/// let spec = Spec::new("acme-crm", "1.0.0").streams(&STREAMS);
/// assert_eq!(spec.streams[1].name, "companies");
///
/// assert_eq!(STREAMS.get("contacts")?.payload, "people");
/// assert_eq!(
///     STREAMS.get("deals").unwrap_err(),
///     Error::permanent("unknown stream `deals`; this connector's streams are `contacts`, `companies`")
/// );
/// assert_eq!(
///     STREAMS.writable("companies").unwrap_err(),
///     Error::permanent("stream `companies` is read-only")
/// );
/// # Ok::<(), weir_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Streams<P: 'static> {
    streams: &'static [Stream<P>],
}

impl<P> Streams<P> {
    /// The table of `streams`, in the order the spec lists them. Names must
    /// be unique: the host refuses a spec with a duplicate stream.
    ///
    /// ```
    /// const STREAMS: weir_sdk::Streams<()> = weir_sdk::Streams::new(&[weir_sdk::Stream::new("tags", ())]);
    /// assert_eq!(STREAMS.iter().count(), 1);
    /// ```
    pub const fn new(streams: &'static [Stream<P>]) -> Self {
        Self { streams }
    }

    /// The streams, in order.
    ///
    /// ```
    /// use weir_sdk::{Stream, Streams};
    /// const STREAMS: Streams<()> = Streams::new(&[Stream::new("a", ()), Stream::new("b", ())]);
    /// let names: Vec<_> = STREAMS.iter().map(|stream| stream.name).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// ```
    pub fn iter(&self) -> std::slice::Iter<'static, Stream<P>> {
        self.streams.iter()
    }

    /// The stream named `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Permanent`] naming the unknown stream and listing the known
    /// ones ([`Error::unknown_stream_among`]).
    ///
    /// ```
    /// const STREAMS: weir_sdk::Streams<u8> = weir_sdk::Streams::new(&[weir_sdk::Stream::new("tags", 7)]);
    /// assert_eq!(STREAMS.get("tags")?.payload, 7);
    /// assert!(STREAMS.get("tag").is_err());
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn get(&self, name: &str) -> Result<&'static Stream<P>> {
        self.streams
            .iter()
            .find(|stream| stream.name == name)
            .ok_or_else(|| Error::unknown_stream_among(name, self.iter().map(|s| s.name)))
    }

    /// The stream named `name`, when it can be written: for
    /// [`Connector::write`](crate::Connector::write) and
    /// [`Connector::lookup`](crate::Connector::lookup).
    ///
    /// # Errors
    ///
    /// As [`get`](Streams::get) for an unknown stream; [`Error::Permanent`]
    /// ``stream `name` is read-only`` for a stream that is not writable.
    ///
    /// ```
    /// use weir_sdk::{IdempotencyStyle, Stream, Streams};
    /// const STREAMS: Streams<()> = Streams::new(&[
    ///     Stream::new("tags", ()).idempotency(IdempotencyStyle::Natural),
    ///     Stream::new("audit", ()),
    /// ]);
    /// assert!(STREAMS.writable("tags").is_ok());
    /// assert!(STREAMS.writable("audit").is_err());
    /// ```
    pub fn writable(&self, name: &str) -> Result<&'static Stream<P>> {
        let stream = self.get(name)?;
        if !stream.is_writable() {
            return Err(Error::permanent(format!(
                "stream `{}` is read-only",
                stream.name
            )));
        }
        Ok(stream)
    }

    /// Every stream's schema, in order: what
    /// [`Connector::discover`](crate::Connector::discover) returns when the
    /// schemas do not depend on the account.
    ///
    /// ```
    /// const STREAMS: weir_sdk::Streams<()> = weir_sdk::Streams::new(&[weir_sdk::Stream::new("tags", ())]);
    /// assert_eq!(STREAMS.schemas()[0].name, "tags");
    /// ```
    pub fn schemas(&self) -> Vec<StreamSchema> {
        self.iter().map(Stream::schema).collect()
    }

    /// Every stream's capabilities, in order (see
    /// [`Spec::streams`](crate::Spec::streams)).
    ///
    /// ```
    /// const STREAMS: weir_sdk::Streams<()> = weir_sdk::Streams::new(&[weir_sdk::Stream::new("tags", ())]);
    /// assert_eq!(STREAMS.capabilities()[0].name, "tags");
    /// ```
    pub fn capabilities(&self) -> Vec<StreamCapabilities> {
        self.iter().map(Stream::capabilities).collect()
    }
}

impl<P> IntoIterator for &Streams<P> {
    type Item = &'static Stream<P>;
    type IntoIter = std::slice::Iter<'static, Stream<P>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Spec;

    fn contact() -> Value {
        json!({ "type": "object", "required": ["id", "email"] })
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Resource {
        People,
        Organisations,
    }

    const STREAMS: Streams<Resource> = Streams::new(&[
        Stream::new("contacts", Resource::People)
            .description("People")
            .json_schema(contact)
            .primary_key(&["/id"])
            .cursor_field("/updated_at")
            .change_feed(ChangeFeed::Cursor)
            .deletes(DeleteFeed::Tombstones)
            .idempotency(IdempotencyStyle::Key)
            .versioned(true)
            .webhooks(true),
        Stream::new("companies", Resource::Organisations).description("Organisations"),
    ]);

    #[test]
    fn the_spec_lists_every_declared_stream_with_its_capabilities() {
        let spec = Spec::new("acme-crm", "1.0.0").streams(&STREAMS);
        assert_eq!(
            spec.streams,
            [
                StreamCapabilities::new("contacts")
                    .change_feed(ChangeFeed::Cursor)
                    .deletes(DeleteFeed::Tombstones)
                    .idempotency(IdempotencyStyle::Key)
                    .versioned(true)
                    .webhooks(true),
                StreamCapabilities::new("companies"),
            ]
        );
    }

    #[test]
    fn discover_schemas_carry_key_cursor_description_and_json_schema() {
        assert_eq!(
            STREAMS.schemas(),
            [
                StreamSchema::new("contacts", contact())
                    .description("People")
                    .primary_key(["/id"])
                    .cursor_field("/updated_at"),
                StreamSchema::new("companies", json!({ "type": "object" }))
                    .description("Organisations"),
            ]
        );
    }

    #[test]
    fn a_stream_is_found_by_name_with_its_payload() {
        assert_eq!(
            STREAMS.get("companies").unwrap().payload,
            Resource::Organisations
        );
        assert_eq!(
            STREAMS.writable("contacts").unwrap().payload,
            Resource::People
        );
    }

    #[test]
    fn an_unknown_stream_is_refused_listing_the_known_ones() {
        assert_eq!(
            STREAMS.get("Contacts").unwrap_err(),
            Error::permanent(
                "unknown stream `Contacts`; this connector's streams are `contacts`, `companies`"
            )
        );
        assert_eq!(
            STREAMS.writable("deals").unwrap_err(),
            Error::permanent(
                "unknown stream `deals`; this connector's streams are `contacts`, `companies`"
            )
        );
    }

    #[test]
    fn a_read_only_stream_is_not_writable() {
        assert_eq!(
            STREAMS.writable("companies").unwrap_err(),
            Error::permanent("stream `companies` is read-only")
        );
    }

    #[test]
    fn a_connector_without_streams_says_so() {
        const NONE: Streams<()> = Streams::new(&[]);
        assert_eq!(
            NONE.get("contacts").unwrap_err(),
            Error::permanent("unknown stream `contacts`; this connector has no streams")
        );
    }
}
