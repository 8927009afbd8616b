//! The records, the clock that stamps their changes, and the
//! `(updated_at, id)` index that pages are read from.
//!
//! Every record keeps its JSON pre-rendered; it is re-rendered only when the
//! record changes, so serving a page is a matter of concatenating bytes.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use fastrand::Rng;
use serde_json::{Map, Value};

use crate::data::{self, SeedRecord};
use crate::idempotency::IdempotencyBook;
use crate::schema::{self, COMPANIES, CONTACTS, Schema, ValidationError};
use crate::time::{CLOCK_START, LogicalClock, Micros, format_micros};

/// All of Acme CRM's state that requests read and write.
#[derive(Debug)]
pub(crate) struct Store {
    collections: Vec<Collection>,
    clock: LogicalClock,
    /// Picks and changes records for [`Store::touch_random`].
    rng: Rng,
    /// Stored responses by `Idempotency-Key`; kept here so that the check,
    /// the write and the remembering happen under one lock.
    pub(crate) idempotency: IdempotencyBook,
}

/// The records of one resource.
#[derive(Debug)]
pub(crate) struct Collection {
    pub(crate) schema: &'static Schema,
    /// Indexed by the numeric part of the id, minus one.
    pub(crate) records: Vec<StoredRecord>,
    /// Every record, tombstones included, in list order.
    pub(crate) order: BTreeSet<(Micros, u32)>,
    /// Live records by `external_id`, so reverse-ETL lookups stay O(log n).
    pub(crate) by_external_id: HashMap<String, BTreeSet<u32>>,
    external_id_position: Option<usize>,
}

/// One record (or tombstone) and its rendered JSON.
#[derive(Debug)]
pub(crate) struct StoredRecord {
    values: Vec<Value>,
    created_at: Micros,
    pub(crate) updated_at: Micros,
    version: u64,
    pub(crate) deleted: bool,
    pub(crate) json: Bytes,
}

/// What a change does to a record's `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bump {
    /// Adds one, as Acme CRM does on every change.
    Version,
    /// Leaves it.
    Nothing,
}

/// What a change did, for webhook events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

/// A committed change: the record's new JSON (a tombstone for deletes).
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) schema: &'static Schema,
    pub(crate) kind: ChangeKind,
    pub(crate) id: String,
    pub(crate) updated_at: Micros,
    pub(crate) json: Bytes,
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WriteError {
    /// No live record has that id.
    NotFound,
    /// The resulting record would be invalid.
    Invalid(ValidationError),
}

impl Store {
    /// Generates the seeded data set.
    pub(crate) fn seeded(seed: u64, contacts: usize, companies: usize) -> Self {
        let collections = vec![
            Collection::seeded(&CONTACTS, data::contacts(seed, contacts, companies)),
            Collection::seeded(&COMPANIES, data::companies(seed, companies)),
        ];
        debug_assert!(
            schema::ALL
                .iter()
                .all(|s| collections[s.slot].schema.name == s.name)
        );
        let last_seeded = collections
            .iter()
            .filter_map(|c| c.order.last().map(|&(at, _)| at))
            .max()
            .unwrap_or(CLOCK_START - 1);
        Self {
            collections,
            clock: LogicalClock::new(CLOCK_START, last_seeded),
            rng: Rng::with_seed(seed ^ 0x6d75_7461_7465),
            idempotency: IdempotencyBook::default(),
        }
    }

    /// The records of `schema`'s resource.
    pub(crate) fn collection(&self, schema: &Schema) -> &Collection {
        &self.collections[schema.slot]
    }

    /// Moves the logical clock forward.
    pub(crate) fn advance_clock(&mut self, by: Duration) {
        self.clock.advance(by);
    }

    /// The logical clock's reading.
    pub(crate) fn now(&self) -> Micros {
        self.clock.now()
    }

    /// Creates a record from `fields`.
    pub(crate) fn create(
        &mut self,
        schema: &'static Schema,
        fields: &Map<String, Value>,
    ) -> Result<Change, WriteError> {
        let mut values = vec![Value::Null; schema.fields.len()];
        schema.merge(&mut values, fields);
        schema.validate(&values).map_err(WriteError::Invalid)?;
        let at = self.clock.issue();
        let collection = &mut self.collections[schema.slot];
        let index = u32::try_from(collection.records.len()).expect("fewer than 4 billion records");
        collection.insert(SeedRecord {
            values,
            created_at: at,
            updated_at: at,
            version: 1,
        });
        Ok(collection.change(index, ChangeKind::Created))
    }

    /// Merges `patch` into the live record `id`.
    pub(crate) fn update(
        &mut self,
        schema: &'static Schema,
        id: &str,
        patch: &Map<String, Value>,
    ) -> Result<Change, WriteError> {
        self.edit(schema, id, patch, Bump::Version)
    }

    /// Like [`Store::update`], leaving `version` as it was, as partners
    /// whose version misses edits do.
    pub(crate) fn update_keeping_version(
        &mut self,
        schema: &'static Schema,
        id: &str,
        patch: &Map<String, Value>,
    ) -> Result<Change, WriteError> {
        self.edit(schema, id, patch, Bump::Nothing)
    }

    fn edit(
        &mut self,
        schema: &'static Schema,
        id: &str,
        patch: &Map<String, Value>,
        bump: Bump,
    ) -> Result<Change, WriteError> {
        let index = self.collections[schema.slot]
            .live_index(id)
            .ok_or(WriteError::NotFound)?;
        let mut values = self.collections[schema.slot].records[index as usize]
            .values
            .clone();
        schema.merge(&mut values, patch);
        schema.validate(&values).map_err(WriteError::Invalid)?;
        let at = self.clock.issue();
        let collection = &mut self.collections[schema.slot];
        collection.replace(index, values, false, at, bump);
        Ok(collection.change(index, ChangeKind::Updated))
    }

    /// Turns the live record `id` into a tombstone.
    pub(crate) fn delete(
        &mut self,
        schema: &'static Schema,
        id: &str,
    ) -> Result<Change, WriteError> {
        let collection = &mut self.collections[schema.slot];
        let index = collection.live_index(id).ok_or(WriteError::NotFound)?;
        let values = collection.records[index as usize].values.clone();
        let at = self.clock.issue();
        collection.replace(index, values, true, at, Bump::Version);
        Ok(collection.change(index, ChangeKind::Deleted))
    }

    /// Updates `count` distinct live records picked by the seeded RNG (all of
    /// them if there are fewer), the way a busy CRM would between two syncs.
    pub(crate) fn touch_random(&mut self, schema: &'static Schema, count: usize) -> Vec<Change> {
        let collection = &self.collections[schema.slot];
        let mut live: Vec<u32> = (0..collection.records.len() as u32)
            .filter(|&i| !collection.records[i as usize].deleted)
            .collect();
        let count = count.min(live.len());
        // A partial Fisher-Yates shuffle: the first `count` entries are the pick.
        for i in 0..count {
            let j = self.rng.usize(i..live.len());
            live.swap(i, j);
        }
        live.truncate(count);

        let mut changes = Vec::with_capacity(count);
        for index in live {
            let mut values = self.collections[schema.slot].records[index as usize]
                .values
                .clone();
            data::vary(schema, &mut self.rng, &mut values);
            let at = self.clock.issue();
            let collection = &mut self.collections[schema.slot];
            collection.replace(index, values, false, at, Bump::Version);
            changes.push(collection.change(index, ChangeKind::Updated));
        }
        changes
    }
}

impl Collection {
    fn seeded(schema: &'static Schema, records: Vec<SeedRecord>) -> Self {
        let mut collection = Self {
            schema,
            records: Vec::with_capacity(records.len()),
            order: BTreeSet::new(),
            by_external_id: HashMap::new(),
            external_id_position: schema.position("external_id"),
        };
        for record in records {
            collection.insert(record);
        }
        collection
    }

    /// The index of the live record called `id`.
    pub(crate) fn live_index(&self, id: &str) -> Option<u32> {
        let index = self.schema.parse_id(id)?;
        let record = self.records.get(index as usize)?;
        (!record.deleted).then_some(index)
    }

    /// The live record called `id`.
    pub(crate) fn live(&self, id: &str) -> Option<&StoredRecord> {
        self.live_index(id).map(|i| &self.records[i as usize])
    }

    /// Every live record, in id order.
    pub(crate) fn live_records(&self) -> impl Iterator<Item = (u32, &StoredRecord)> {
        self.records
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.deleted)
            .map(|(i, r)| (i as u32, r))
    }

    fn insert(&mut self, seed: SeedRecord) {
        let index = self.records.len() as u32;
        let mut record = StoredRecord {
            values: seed.values,
            created_at: seed.created_at,
            updated_at: seed.updated_at,
            version: seed.version,
            deleted: false,
            json: Bytes::new(),
        };
        record.json = record.render(self.schema, index);
        self.order.insert((record.updated_at, index));
        self.index_external_id(index, &record.values, true);
        self.records.push(record);
    }

    fn replace(&mut self, index: u32, values: Vec<Value>, deleted: bool, at: Micros, bump: Bump) {
        let old = &self.records[index as usize];
        self.order.remove(&(old.updated_at, index));
        let old_values = old.values.clone();
        self.index_external_id(index, &old_values, false);

        let schema = self.schema;
        let record = &mut self.records[index as usize];
        record.values = values;
        record.deleted = deleted;
        record.updated_at = at;
        if bump == Bump::Version {
            record.version += 1;
        }
        record.json = record.render(schema, index);
        self.order.insert((at, index));
        if !deleted {
            let values = self.records[index as usize].values.clone();
            self.index_external_id(index, &values, true);
        }
    }

    fn index_external_id(&mut self, index: u32, values: &[Value], add: bool) {
        let Some(Value::String(external_id)) = self.external_id_position.map(|p| &values[p]) else {
            return;
        };
        if add {
            self.by_external_id
                .entry(external_id.clone())
                .or_default()
                .insert(index);
        } else if let Some(set) = self.by_external_id.get_mut(external_id) {
            set.remove(&index);
            if set.is_empty() {
                self.by_external_id.remove(external_id);
            }
        }
    }

    fn change(&self, index: u32, kind: ChangeKind) -> Change {
        let record = &self.records[index as usize];
        Change {
            schema: self.schema,
            kind,
            id: self.schema.format_id(index),
            updated_at: record.updated_at,
            json: record.json.clone(),
        }
    }
}

impl StoredRecord {
    /// The record as a JSON value, for assertions in tests.
    pub(crate) fn to_value(&self, schema: &Schema, index: u32) -> Value {
        let mut map = Map::new();
        map.insert("id".into(), Value::String(schema.format_id(index)));
        if self.deleted {
            map.insert("deleted".into(), Value::Bool(true));
        } else {
            for (field, value) in schema.fields.iter().zip(&self.values) {
                map.insert(field.name.into(), value.clone());
            }
            map.insert("created_at".into(), format_micros(self.created_at).into());
        }
        map.insert("updated_at".into(), format_micros(self.updated_at).into());
        map.insert("version".into(), self.version.into());
        Value::Object(map)
    }

    fn render(&self, schema: &Schema, index: u32) -> Bytes {
        let mut out = Vec::with_capacity(96 + 32 * self.values.len());
        // Ids, field names and timestamps never need JSON escaping.
        out.extend_from_slice(br#"{"id":""#);
        out.extend_from_slice(schema.format_id(index).as_bytes());
        if self.deleted {
            out.extend_from_slice(br#"","deleted":true"#);
        } else {
            out.push(b'"');
            for (field, value) in schema.fields.iter().zip(&self.values) {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(field.name.as_bytes());
                out.extend_from_slice(b"\":");
                write_value(&mut out, value);
            }
            out.extend_from_slice(br#","created_at":""#);
            out.extend_from_slice(format_micros(self.created_at).as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(br#","updated_at":""#);
        out.extend_from_slice(format_micros(self.updated_at).as_bytes());
        out.extend_from_slice(br#"","version":"#);
        out.extend_from_slice(self.version.to_string().as_bytes());
        out.push(b'}');
        Bytes::from(out)
    }
}

/// Appends `value` as JSON. Plain strings and numbers, nearly every field
/// value, skip serde's serializer: seeding 100,000 records spends most of its
/// time here.
fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::String(s) if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') => {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        other => serde_json::to_writer(out, other).expect("a JSON value always serializes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> Store {
        Store::seeded(42, 200, 20)
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn rendered_json_matches_the_record() {
        let store = store();
        let contacts = store.collection(&CONTACTS);
        for (index, record) in contacts.live_records() {
            let parsed: Value = serde_json::from_slice(&record.json).unwrap();
            assert_eq!(parsed, record.to_value(&CONTACTS, index));
        }
    }

    #[test]
    fn values_needing_escapes_render_as_valid_json() {
        let mut store = store();
        let tricky = "quote \" backslash \\ newline \n tab \t é";
        let patch = object(json!({"title": tricky, "phone": null}));
        let change = store.update(&CONTACTS, "c_000001", &patch).unwrap();
        let parsed: Value = serde_json::from_slice(&change.json).unwrap();
        assert_eq!(parsed["title"], json!(tricky));
        assert_eq!(parsed["phone"], json!(null));
    }

    #[test]
    fn changes_bump_version_and_get_increasing_timestamps() {
        let mut store = store();
        let before = store
            .collection(&CONTACTS)
            .live("c_000001")
            .unwrap()
            .version;
        let a = store
            .update(&CONTACTS, "c_000001", &object(json!({"title": "CTO"})))
            .unwrap();
        let b = store
            .update(&CONTACTS, "c_000001", &object(json!({"score": 3})))
            .unwrap();
        assert!(a.updated_at < b.updated_at);
        let record = store.collection(&CONTACTS).live("c_000001").unwrap();
        assert_eq!(record.version, before + 2);
        let value: Value = serde_json::from_slice(&record.json).unwrap();
        assert_eq!(
            (value["title"].clone(), value["score"].clone()),
            (json!("CTO"), json!(3))
        );
    }

    #[test]
    fn an_update_keeping_the_version_changes_content_and_time_only() {
        let mut store = store();
        let before = store.collection(&CONTACTS).live("c_000001").unwrap();
        let (version, updated_at) = (before.version, before.updated_at);
        store
            .update_keeping_version(&CONTACTS, "c_000001", &object(json!({"title": "CFO"})))
            .unwrap();
        let record = store.collection(&CONTACTS).live("c_000001").unwrap();
        assert_eq!(record.version, version);
        assert!(record.updated_at > updated_at);
        let value: Value = serde_json::from_slice(&record.json).unwrap();
        assert_eq!(value["title"], "CFO");
    }

    #[test]
    fn deleted_records_become_tombstones_and_are_not_found() {
        let mut store = store();
        let change = store.delete(&COMPANIES, "co_00003").unwrap();
        let tombstone: Value = serde_json::from_slice(&change.json).unwrap();
        assert_eq!(tombstone["deleted"], json!(true));
        assert!(store.collection(&COMPANIES).live("co_00003").is_none());
        assert_eq!(
            store.delete(&COMPANIES, "co_00003").unwrap_err(),
            WriteError::NotFound
        );
        assert_eq!(store.collection(&COMPANIES).order.len(), 20);
    }

    #[test]
    fn external_ids_are_indexed_and_unindexed() {
        let mut store = store();
        let patch = object(json!({"external_id": "crm-1"}));
        store.update(&CONTACTS, "c_000005", &patch).unwrap();
        let created = store
            .create(
                &CONTACTS,
                &object(json!({"email": "x@y", "external_id": "crm-1"})),
            )
            .unwrap();
        assert_eq!(created.id, "c_000201");
        assert_eq!(store.collection(&CONTACTS).by_external_id["crm-1"].len(), 2);
        store.delete(&CONTACTS, "c_000005").unwrap();
        assert_eq!(store.collection(&CONTACTS).by_external_id["crm-1"].len(), 1);
    }

    #[test]
    fn touch_random_is_deterministic_and_distinct() {
        let pick = |store: &mut Store| -> Vec<String> {
            store
                .touch_random(&CONTACTS, 50)
                .into_iter()
                .map(|c| c.id)
                .collect()
        };
        let (mut a, mut b) = (store(), store());
        let ids = pick(&mut a);
        assert_eq!(ids, pick(&mut b));
        let distinct: BTreeSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 50);
        assert_eq!(a.touch_random(&CONTACTS, 10_000).len(), 200);
    }
}
