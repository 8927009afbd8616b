//! Reading: [`ReadRequest`] in, [`Page`] of [`Record`]s and a [`Checkpoint`]
//! out, and [`RecordFields`] to make records from a partner's JSON without
//! re-serializing it.

use std::borrow::Borrow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::value::RawValue;

use crate::{CheckpointError, Error, Result, ResultExt, State};

/// Whether a record is a new state of an object or its removal.
///
/// # Example
///
/// ```
/// use weir_sdk::{ChangeKind, Record};
///
/// assert_eq!(Record::delete("c_1").kind, ChangeKind::Delete);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChangeKind {
    /// The object exists with the given data (insert or update).
    #[default]
    Upsert,
    /// The object was deleted. The host keeps a tombstone so that an older
    /// update arriving late cannot bring it back.
    Delete,
}

/// One object of a stream.
///
/// `data` is JSON text that the host stores exactly as given: pass through
/// the partner's own text when you can (see [`RecordFields`]), it is the
/// fastest path.
///
/// # Example
///
/// ```
/// use weir_sdk::Record;
///
/// let record = Record::upsert("c_1", r#"{"id":"c_1","email":"ada@example.com"}"#).with_version(3);
/// assert_eq!(record.version, Some(3));
///
/// let built = Record::from_serialize("c_2", &serde_json::json!({ "id": "c_2" }))?;
/// assert_eq!(built.data, r#"{"id":"c_2"}"#);
/// # Ok::<(), weir_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The primary key, as text. Join composite keys in a stable way (e.g. as
    /// a JSON array).
    pub key: String,
    /// The partner's version of this object, when it has one: a number that
    /// grows with every change (a revision counter, or the last-modified
    /// time from [`time::rfc3339_micros`](crate::time::rfc3339_micros)).
    /// When two copies of an object meet, the higher version wins.
    pub version: Option<u64>,
    /// Upsert or delete.
    pub kind: ChangeKind,
    /// The object as a JSON object. For a delete, whatever the partner says
    /// about the deleted object (possibly `{}`).
    pub data: String,
}

impl Record {
    /// An upsert of `key` with `data`, JSON object text taken as is.
    ///
    /// ```
    /// let record = weir_sdk::Record::upsert("co_1", r#"{"id":"co_1"}"#);
    /// assert_eq!(record.kind, weir_sdk::ChangeKind::Upsert);
    /// ```
    pub fn upsert(key: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            version: None,
            kind: ChangeKind::Upsert,
            data: data.into(),
        }
    }

    /// An upsert of `key` with `data` serialized to JSON.
    ///
    /// # Errors
    ///
    /// [`Error::Permanent`] when `data` cannot be serialized.
    ///
    /// ```
    /// #[derive(serde::Serialize)]
    /// struct Deal { id: u64, amount: f64 }
    ///
    /// let record = weir_sdk::Record::from_serialize("7", &Deal { id: 7, amount: 9.5 })?;
    /// assert_eq!(record.data, r#"{"id":7,"amount":9.5}"#);
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn from_serialize(key: impl Into<String>, data: &impl Serialize) -> Result<Self> {
        let key = key.into();
        let data = serde_json::to_string(data).with_context(|| format!("record `{key}`"))?;
        Ok(Self::upsert(key, data))
    }

    /// The deletion of `key`, with data `{}`.
    ///
    /// ```
    /// let record = weir_sdk::Record::delete("c_1");
    /// assert_eq!(record.data, "{}");
    /// ```
    pub fn delete(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            version: None,
            kind: ChangeKind::Delete,
            data: "{}".into(),
        }
    }

    /// Sets the version.
    ///
    /// ```
    /// let record = weir_sdk::Record::delete("c_1").with_version(9);
    /// assert_eq!(record.version, Some(9));
    /// ```
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Sets the data, JSON object text taken as is.
    ///
    /// ```
    /// let record = weir_sdk::Record::delete("c_1").with_data(r#"{"id":"c_1","deleted":true}"#);
    /// assert!(record.data.contains("deleted"));
    /// ```
    pub fn with_data(mut self, data: impl Into<String>) -> Self {
        self.data = data.into();
        self
    }
}

/// A connector's resume state for one stream.
///
/// The host stores it verbatim with the page of records it belongs to and
/// hands it back on the next read (see [`ReadRequest::checkpoint`]). Reading
/// from the checkpoint of page *k* must yield page *k + 1*.
///
/// `format` is the version of `state`'s shape: declare the current one in
/// [`Spec::checkpoint_format`](crate::Spec::checkpoint_format) and convert
/// older ones in [`Connector::migrate_checkpoint`](crate::Connector::migrate_checkpoint).
/// A type implementing [`State`] carries its format, so that it is written
/// down once: [`encode`](Checkpoint::encode) and
/// [`ReadRequest::resume`] use it.
///
/// # Example
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use weir_sdk::{Checkpoint, State};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Position { cursor: Option<String> }
///
/// impl State for Position {
///     const FORMAT: u32 = 1;
/// }
///
/// let checkpoint = Checkpoint::encode(&Position { cursor: Some("abc".into()) })?;
/// assert_eq!(checkpoint, Checkpoint::from_json(1, r#"{"cursor":"abc"}"#));
/// assert_eq!(checkpoint.decode::<Position>("contacts")?, Position { cursor: Some("abc".into()) });
/// # Ok::<(), weir_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The format of `state`.
    pub format: u32,
    /// The resume state, as JSON text.
    pub state: String,
}

impl Checkpoint {
    /// A checkpoint of `format` holding `state` serialized to JSON.
    ///
    /// # Errors
    ///
    /// [`Error::Permanent`] when `state` cannot be serialized.
    ///
    /// ```
    /// let checkpoint = weir_sdk::Checkpoint::new(2, &serde_json::json!({ "page": 3 }))?;
    /// assert_eq!(checkpoint.format, 2);
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn new(format: u32, state: &impl Serialize) -> Result<Self> {
        let state = serde_json::to_string(state).context("checkpoint")?;
        Ok(Self { format, state })
    }

    /// A checkpoint holding `state`, of its [`State::FORMAT`]: the same as
    /// `Checkpoint::new(S::FORMAT, state)`.
    ///
    /// # Errors
    ///
    /// [`Error::Permanent`] when `state` cannot be serialized.
    ///
    /// ```
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Page { page: u32 }
    ///
    /// impl weir_sdk::State for Page {
    ///     const FORMAT: u32 = 2;
    /// }
    ///
    /// let checkpoint = weir_sdk::Checkpoint::encode(&Page { page: 3 })?;
    /// assert_eq!((checkpoint.format, checkpoint.state.as_str()), (2, r#"{"page":3}"#));
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn encode<S: State>(state: &S) -> Result<Self> {
        Self::new(S::FORMAT, state)
    }

    /// Reads the state of this checkpoint of `stream` as `S`, for instance
    /// in [`Connector::migrate_checkpoint`](crate::Connector::migrate_checkpoint)
    /// with the type of the older format.
    ///
    /// # Errors
    ///
    /// [`CheckpointError`] when the checkpoint is not of `S::FORMAT` or does
    /// not decode as `S`.
    ///
    /// ```
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Page { page: u32 }
    ///
    /// impl weir_sdk::State for Page {
    ///     const FORMAT: u32 = 1;
    /// }
    ///
    /// let checkpoint = weir_sdk::Checkpoint::from_json(1, r#"{"page":3}"#);
    /// assert_eq!(checkpoint.decode::<Page>("orders")?.page, 3);
    /// assert!(weir_sdk::Checkpoint::from_json(2, r#"{"page":3}"#).decode::<Page>("orders").is_err());
    /// # Ok::<(), weir_sdk::CheckpointError>(())
    /// ```
    pub fn decode<S: State>(&self, stream: &str) -> Result<S, CheckpointError> {
        self.decode_as(stream, S::FORMAT)
    }

    fn decode_as<T: DeserializeOwned>(
        &self,
        stream: &str,
        format: u32,
    ) -> Result<T, CheckpointError> {
        if self.format != format {
            return Err(CheckpointError::WrongFormat {
                stream: stream.to_owned(),
                found: self.format,
                expected: format,
            });
        }
        serde_json::from_str(&self.state).map_err(|error| CheckpointError::Undecodable {
            stream: stream.to_owned(),
            format: self.format,
            reason: error.to_string(),
        })
    }

    /// A checkpoint of `format` holding JSON text as is.
    ///
    /// ```
    /// let checkpoint = weir_sdk::Checkpoint::from_json(1, r#"{"cursor":null}"#);
    /// assert_eq!(checkpoint.state, r#"{"cursor":null}"#);
    /// ```
    pub fn from_json(format: u32, state: impl Into<String>) -> Self {
        Self {
            format,
            state: state.into(),
        }
    }

    /// Parses the state.
    ///
    /// # Errors
    ///
    /// [`Error::Permanent`] when it does not parse as `T`.
    ///
    /// ```
    /// let checkpoint = weir_sdk::Checkpoint::from_json(1, r#"{"page":3}"#);
    /// let state: serde_json::Value = checkpoint.state()?;
    /// assert_eq!(state["page"], 3);
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn state<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.state)
            .with_context(|| format!("checkpoint of format {}", self.format))
    }
}

/// What to read: the argument of [`Connector::read`](crate::Connector::read).
///
/// # Example
///
/// ```
/// use weir_sdk::{Checkpoint, ReadRequest};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Position { cursor: String }
///
/// impl weir_sdk::State for Position {
///     const FORMAT: u32 = 1;
/// }
///
/// let request = ReadRequest::new("contacts", 500)
///     .with_checkpoint(Checkpoint::from_json(1, r#"{"cursor":"abc"}"#));
/// let position: Option<Position> = request.resume()?;
/// assert_eq!(position.unwrap().cursor, "abc");
/// # Ok::<(), weir_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadRequest {
    /// The stream's name.
    pub stream: String,
    /// Where to start; `None` for the beginning (a full sync).
    pub checkpoint: Option<Checkpoint>,
    /// The most records the host accepts in this page. Ask the partner for
    /// at most this many.
    pub max_records: u32,
}

impl ReadRequest {
    /// A read of `stream` from the beginning (for tests: the host builds
    /// these).
    ///
    /// ```
    /// let request = weir_sdk::ReadRequest::new("contacts", 100);
    /// assert!(request.checkpoint.is_none());
    /// ```
    pub fn new(stream: impl Into<String>, max_records: u32) -> Self {
        Self {
            stream: stream.into(),
            checkpoint: None,
            max_records,
        }
    }

    /// Sets the checkpoint to resume from.
    ///
    /// ```
    /// let request = weir_sdk::ReadRequest::new("contacts", 100)
    ///     .with_checkpoint(weir_sdk::Checkpoint::from_json(1, "{}"));
    /// assert!(request.checkpoint.is_some());
    /// ```
    pub fn with_checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }

    /// The state to resume from, `None` on a full sync.
    ///
    /// # Errors
    ///
    /// [`CheckpointError`] when the checkpoint is not of `S::FORMAT` or does
    /// not decode as `S`; `?` turns it into an [`Error::Permanent`] that
    /// tells the operator how to start over.
    ///
    /// ```
    /// #[derive(Default, serde::Serialize, serde::Deserialize)]
    /// struct Position { cursor: Option<String> }
    ///
    /// impl weir_sdk::State for Position {
    ///     const FORMAT: u32 = 1;
    /// }
    ///
    /// let request = weir_sdk::ReadRequest::new("contacts", 100);
    /// let position: Position = request.resume()?.unwrap_or_default();
    /// assert_eq!(position.cursor, None);
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn resume<S: State>(&self) -> Result<Option<S>, CheckpointError> {
        self.checkpoint_as(S::FORMAT)
    }

    /// The checkpoint's state, `None` on a full sync. [`resume`](ReadRequest::resume)
    /// does the same with the format declared once, by a [`State`].
    ///
    /// # Errors
    ///
    /// [`Error::Permanent`] when the checkpoint is not of `format` (the host
    /// migrates older formats before reading, so this means a bug) or does
    /// not parse as `T` (see [`CheckpointError`]).
    ///
    /// ```
    /// let request = weir_sdk::ReadRequest::new("contacts", 100)
    ///     .with_checkpoint(weir_sdk::Checkpoint::from_json(2, "{}"));
    /// assert!(request.state::<serde_json::Value>(1).is_err());
    /// ```
    pub fn state<T: DeserializeOwned>(&self, format: u32) -> Result<Option<T>> {
        Ok(self.checkpoint_as(format)?)
    }

    fn checkpoint_as<T: DeserializeOwned>(
        &self,
        format: u32,
    ) -> Result<Option<T>, CheckpointError> {
        self.checkpoint
            .as_ref()
            .map(|checkpoint| checkpoint.decode_as(&self.stream, format))
            .transpose()
    }
}

/// A batch of records read from a stream, with the checkpoint that follows
/// it: what [`Connector::read`](crate::Connector::read) returns.
///
/// # Example
///
/// ```
/// use weir_sdk::{Checkpoint, Page, Record};
///
/// let page = Page::new(vec![Record::upsert("1", "{}")], Checkpoint::from_json(1, r#"{"page":2}"#))
///     .with_more(true);
/// assert!(page.has_more);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The records, in the order the partner gave them.
    pub records: Vec<Record>,
    /// Where the next read starts. Stored atomically with `records`.
    pub checkpoint: Checkpoint,
    /// True when more records are ready now: the host reads again from
    /// `checkpoint`. False ends the run; the next run starts from
    /// `checkpoint` and fetches only what changed since.
    pub has_more: bool,
}

impl Page {
    /// The last page of a run (`has_more` false).
    ///
    /// ```
    /// let page = weir_sdk::Page::new(vec![], weir_sdk::Checkpoint::from_json(1, "{}"));
    /// assert!(!page.has_more);
    /// ```
    pub fn new(records: Vec<Record>, checkpoint: Checkpoint) -> Self {
        Self {
            records,
            checkpoint,
            has_more: false,
        }
    }

    /// Sets whether more records are ready now.
    ///
    /// ```
    /// let page = weir_sdk::Page::new(vec![], weir_sdk::Checkpoint::from_json(1, "{}")).with_more(true);
    /// assert!(page.has_more);
    /// ```
    pub fn with_more(mut self, has_more: bool) -> Self {
        self.has_more = has_more;
        self
    }
}

/// Which top-level fields of a partner's JSON objects carry the key, the
/// version and the deletion flag: makes [`Record`]s whose `data` is the
/// partner's exact text, reading only those fields.
///
/// This is the fast path for reads. Deserialize the list response with its
/// array as `Vec<&RawValue>` (borrowed: nothing is copied or re-serialized),
/// then hand the elements to [`records`](RecordFields::records).
///
/// - The key may be a string or a number (then its decimal text).
/// - The version may be a non-negative integer, or an RFC 3339 timestamp
///   (converted with [`time::rfc3339_micros`](crate::time::rfc3339_micros));
///   missing or `null` means no version.
/// - With a deletion flag, objects whose flag is `true` are deletes.
///
/// # Example
///
/// ```
/// use serde::Deserialize;
/// use serde_json::value::RawValue;
/// use weir_sdk::{ChangeKind, RecordFields};
///
/// const CONTACT: RecordFields = RecordFields::key("id").version("version").deleted_flag("deleted");
///
/// #[derive(Deserialize)]
/// struct List<'a> {
///     #[serde(borrow)]
///     data: Vec<&'a RawValue>,
/// }
///
/// let body = r#"{"data":[
///     {"id":"c_1","email":"ada@example.com","version":3},
///     {"id":"c_2","deleted":true,"version":8}
/// ]}"#;
/// let list: List = serde_json::from_str(body)?;
/// let records = CONTACT.records(&list.data)?;
///
/// assert_eq!(records[0].key, "c_1");
/// assert_eq!(records[0].version, Some(3));
/// assert_eq!(records[0].data, r#"{"id":"c_1","email":"ada@example.com","version":3}"#);
/// assert_eq!(records[1].kind, ChangeKind::Delete);
/// # Ok::<(), weir_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFields<'a> {
    key: &'a str,
    version: Option<&'a str>,
    deleted: Option<&'a str>,
}

impl<'a> RecordFields<'a> {
    /// Objects keyed by field `name`.
    ///
    /// ```
    /// const COMPANY: weir_sdk::RecordFields = weir_sdk::RecordFields::key("id");
    /// ```
    pub const fn key(name: &'a str) -> Self {
        Self {
            key: name,
            version: None,
            deleted: None,
        }
    }

    /// Takes versions from field `name`: an integer, or an RFC 3339
    /// timestamp.
    ///
    /// ```
    /// let fields = weir_sdk::RecordFields::key("id").version("updated_at");
    /// let record = fields.record(serde_json::from_str(r#"{"id":1,"updated_at":"1970-01-01T00:00:01Z"}"#)?)?;
    /// assert_eq!((record.key.as_str(), record.version), ("1", Some(1_000_000)));
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub const fn version(mut self, name: &'a str) -> Self {
        self.version = Some(name);
        self
    }

    /// Makes objects whose field `name` is `true` deletes.
    ///
    /// ```
    /// let fields = weir_sdk::RecordFields::key("id").deleted_flag("archived");
    /// let record = fields.record(serde_json::from_str(r#"{"id":"a","archived":true}"#)?)?;
    /// assert_eq!(record.kind, weir_sdk::ChangeKind::Delete);
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub const fn deleted_flag(mut self, name: &'a str) -> Self {
        self.deleted = Some(name);
        self
    }

    /// Makes one record from one object.
    ///
    /// # Errors
    ///
    /// [`Error::Permanent`] when `object` is not an object, lacks the key,
    /// or has a version that is neither an integer nor a timestamp.
    ///
    /// ```
    /// let fields = weir_sdk::RecordFields::key("id");
    /// assert!(fields.record(serde_json::from_str(r#"{"name":"x"}"#)?).is_err());
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn record(&self, object: &RawValue) -> Result<Record> {
        let text = object.get();
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let found = deserializer.deserialize_map(FieldsVisitor(self))?;
        let key = found
            .key
            .ok_or_else(|| Error::permanent(format!("object has no `{}` field", self.key)))?;
        let version = match found.version {
            None => None,
            Some(Scalar::Integer(version)) => Some(version),
            Some(Scalar::Text(text)) => Some(
                crate::time::rfc3339_micros(&text)
                    .with_context(|| format!("field `{}`", self.version.unwrap_or_default()))?,
            ),
        };
        Ok(Record {
            key,
            version,
            kind: if found.deleted {
                ChangeKind::Delete
            } else {
                ChangeKind::Upsert
            },
            data: text.to_owned(),
        })
    }

    /// Makes one record per object, in order.
    ///
    /// # Errors
    ///
    /// As [`record`](RecordFields::record), naming the object's position.
    ///
    /// ```
    /// let objects: Vec<Box<serde_json::value::RawValue>> =
    ///     serde_json::from_str(r#"[{"id":"a"},{"id":"b"}]"#)?;
    /// let records = weir_sdk::RecordFields::key("id").records(&objects)?;
    /// assert_eq!(records.len(), 2);
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn records<R: Borrow<RawValue>>(&self, objects: &[R]) -> Result<Vec<Record>> {
        objects
            .iter()
            .enumerate()
            .map(|(index, object)| {
                self.record(object.borrow())
                    .with_context(|| format!("object {index} of {}", objects.len()))
            })
            .collect()
    }

    /// Makes one record per object of a JSON array.
    ///
    /// [`records`](RecordFields::records) over a `Vec<&RawValue>` field is
    /// faster: it splits the array while parsing the response.
    ///
    /// # Errors
    ///
    /// As [`records`](RecordFields::records), and when `array` is not an
    /// array.
    ///
    /// ```
    /// let array: &serde_json::value::RawValue = serde_json::from_str(r#"[{"id":1},{"id":2}]"#)?;
    /// let records = weir_sdk::RecordFields::key("id").records_in_array(array)?;
    /// assert_eq!(records[1].key, "2");
    /// # Ok::<(), weir_sdk::Error>(())
    /// ```
    pub fn records_in_array(&self, array: &RawValue) -> Result<Vec<Record>> {
        let objects: Vec<&RawValue> = serde_json::from_str(array.get())?;
        self.records(&objects)
    }
}

/// What [`FieldsVisitor`] found in an object.
#[derive(Default)]
struct Found {
    key: Option<String>,
    version: Option<Scalar>,
    deleted: bool,
}

enum Scalar {
    Integer(u64),
    Text(String),
}

/// Walks an object's top-level keys once, deserializing only the three
/// fields of interest and skipping the rest without allocating.
struct FieldsVisitor<'f, 'a>(&'f RecordFields<'a>);

#[derive(Clone, Copy)]
enum Field {
    Key,
    Version,
    Deleted,
    Other,
}

impl<'de> Visitor<'de> for FieldsVisitor<'_, '_> {
    type Value = Found;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Found, A::Error> {
        let mut found = Found::default();
        while let Some(field) = map.next_key_seed(FieldSeed(self.0))? {
            match field {
                Field::Key => {
                    found.key = Some(match map.next_value::<KeyScalar>()? {
                        KeyScalar(Scalar::Text(text)) => text,
                        KeyScalar(Scalar::Integer(number)) => number.to_string(),
                    })
                }
                Field::Version => {
                    found.version = map.next_value::<Option<VersionScalar>>()?.map(|v| v.0)
                }
                Field::Deleted => {
                    found.deleted = map.next_value::<Option<bool>>()?.unwrap_or(false)
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

struct FieldSeed<'f, 'a>(&'f RecordFields<'a>);

impl<'de> DeserializeSeed<'de> for FieldSeed<'_, '_> {
    type Value = Field;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Field, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_, '_> {
    type Value = Field;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> std::result::Result<Field, E> {
        let fields = self.0;
        Ok(if name == fields.key {
            Field::Key
        } else if fields.version == Some(name) {
            Field::Version
        } else if fields.deleted == Some(name) {
            Field::Deleted
        } else {
            Field::Other
        })
    }
}

/// A key: a string, or a non-negative integer.
struct KeyScalar(Scalar);

impl<'de> serde::Deserialize<'de> for KeyScalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer
            .deserialize_any(ScalarVisitor("a string or integer key"))
            .map(KeyScalar)
    }
}

/// A version: a non-negative integer, or a timestamp string.
struct VersionScalar(Scalar);

impl<'de> serde::Deserialize<'de> for VersionScalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer
            .deserialize_any(ScalarVisitor(
                "a non-negative integer or an RFC 3339 timestamp",
            ))
            .map(VersionScalar)
    }
}

struct ScalarVisitor(&'static str);

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.0)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Integer(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> std::result::Result<Scalar, E> {
        u64::try_from(value)
            .map(Scalar::Integer)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Text(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> &RawValue {
        serde_json::from_str(text).unwrap()
    }

    const CONTACT: RecordFields = RecordFields::key("id")
        .version("version")
        .deleted_flag("deleted");

    #[test]
    fn data_is_the_exact_partner_text() {
        let text =
            r#"{ "id" : "c_1", "name":"Zoë \"Z\"", "nested": {"id": "other"}, "version": 4 }"#;
        let record = CONTACT.record(raw(text)).unwrap();
        assert_eq!(record.data, text);
        assert_eq!(record.key, "c_1");
        assert_eq!(record.version, Some(4));
        assert_eq!(record.kind, ChangeKind::Upsert);
    }

    #[test]
    fn escaped_keys_and_numbers_are_read() {
        let record = CONTACT
            .record(raw(r#"{"i\u0064":42,"version":null}"#))
            .unwrap();
        assert_eq!(record.key, "42");
        assert_eq!(record.version, None);
    }

    #[test]
    fn tombstones_become_deletes() {
        let record = CONTACT
            .record(raw(
                r#"{"id":"c_9","deleted":true,"updated_at":"2024-01-01T00:00:00Z","version":7}"#,
            ))
            .unwrap();
        assert_eq!(record.kind, ChangeKind::Delete);
        assert_eq!(record.version, Some(7));
        let kept = CONTACT
            .record(raw(r#"{"id":"c_9","deleted":false}"#))
            .unwrap();
        assert_eq!(kept.kind, ChangeKind::Upsert);
    }

    #[test]
    fn timestamp_versions_are_microseconds() {
        let fields = RecordFields::key("id").version("updated_at");
        let record = fields
            .record(raw(
                r#"{"id":"x","updated_at":"2024-02-29T12:34:56.789012Z"}"#,
            ))
            .unwrap();
        assert_eq!(record.version, Some(1_709_210_096_789_012));
    }

    #[test]
    fn bad_objects_are_permanent_errors_naming_the_position() {
        let objects = [raw(r#"{"id":"a"}"#), raw(r#"{"name":"b"}"#)];
        assert_eq!(
            CONTACT.records(&objects),
            Err(Error::permanent("object 1 of 2: object has no `id` field"))
        );
        assert!(matches!(
            CONTACT.record(raw("[1]")),
            Err(Error::Permanent(_))
        ));
        assert!(matches!(
            CONTACT.record(raw(r#"{"id":"a","version":-1}"#)),
            Err(Error::Permanent(_))
        ));
        assert!(matches!(
            CONTACT.record(raw(r#"{"id":"a","version":"soon"}"#)),
            Err(Error::Permanent(_))
        ));
        assert!(matches!(
            CONTACT.record(raw(r#"{"id":{"a":1}}"#)),
            Err(Error::Permanent(_))
        ));
    }

    #[test]
    fn arrays_split_into_records() {
        let records = CONTACT
            .records_in_array(raw(r#"[{"id":"a"}, {"id":"b","version":2}]"#))
            .unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].data, r#"{"id":"b","version":2}"#);
        assert!(CONTACT.records_in_array(raw(r#"{"id":"a"}"#)).is_err());
    }

    #[test]
    fn read_request_state_checks_the_format() {
        let request =
            ReadRequest::new("contacts", 10).with_checkpoint(Checkpoint::from_json(2, "{}"));
        assert_eq!(
            request.state::<serde_json::Value>(1),
            Err(Error::permanent(
                "stream `contacts` has a checkpoint of format 2, expected 1: a connector bug, its spec's `checkpoint_format` must be the format its state is read in"
            ))
        );
        assert_eq!(
            ReadRequest::new("contacts", 10).state::<serde_json::Value>(1),
            Ok(None)
        );
    }
}
