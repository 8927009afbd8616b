//! Field mappings: how one partner's record becomes another partner's
//! record, owned by each tenant for each flow.
//!
//! A mapping is a JSON document, saved through the admin API or CLI.
//! [`Mapping::parse`] checks it once and refuses any mistake with its path
//! (`fields[3].format: ...`); [`Mapping::apply`] then reshapes every record
//! of a run. A record that cannot be mapped gets a [`RecordError`] naming the
//! field and the value, goes to the dead letters, and the run goes on.
//!
//! # Example
//!
//! ```json
//! {
//!   "fields": [
//!     { "to": "/email", "from": "/email", "required": true },
//!     { "to": "/name", "concat": ["/first_name", "/last_name"], "separator": " " },
//!     { "to": "/first", "split": { "from": "/full_name", "separator": " ", "index": 0 } },
//!     { "to": "/stage", "from": "/lifecycle_stage",
//!       "values": { "lead": "New", "customer": "Won" }, "otherwise": "Other" },
//!     { "to": "/score", "from": "/score", "type": "string" },
//!     { "to": "/created", "from": "/created_at", "type": "date",
//!       "format": "%Y-%m-%d", "timezone": "Europe/Paris" },
//!     { "to": "/address/country", "from": "/country", "default": "US" },
//!     { "to": "/primary_email", "from": "/emails/0/address" },
//!     { "to": "/source", "const": "acme" }
//!   ],
//!   "unmapped": { "into": "/custom_fields" },
//!   "drop": ["/internal_notes"]
//! }
//! ```
//!
//! maps
//!
//! ```json
//! { "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
//!   "full_name": "Ada King Lovelace", "lifecycle_stage": "lead", "score": 42,
//!   "created_at": "2025-01-31T23:30:00Z", "emails": [{ "address": "ada@work.example" }],
//!   "shoe_size": 38, "internal_notes": "vip" }
//! ```
//!
//! to
//!
//! ```json
//! { "email": "ada@example.com", "name": "Ada Lovelace", "first": "Ada", "stage": "New",
//!   "score": "42", "created": "2025-02-01", "address": { "country": "US" },
//!   "primary_email": "ada@work.example", "source": "acme",
//!   "custom_fields": { "shoe_size": 38 } }
//! ```
//!
//! # Reference
//!
//! A mapping has three keys, all optional:
//!
//! | key | meaning |
//! |---|---|
//! | `fields` | the rules, in order (default: none) |
//! | `unmapped` | what becomes of source fields no rule reads: `"drop"` (default), `"keep"` (copied at the same pointer), or `{"into": "/pointer"}` (copied into that object, at their pointer relative to it) |
//! | `drop` | pointers that `keep` and `into` never copy (refused with `"drop"`, where it would do nothing) |
//!
//! Each rule has a `to` pointer and exactly one source:
//!
//! | source | writes |
//! |---|---|
//! | `"from": "/a/0/b"` | the value there: nested keys and array indexes read deep |
//! | `"concat": ["/a", "/b"]` | the parts joined by `separator` (default `""`); `skip_empty` (default `true`) leaves out missing, null and `""` parts, `false` joins them as `""`; numbers and booleans join as their text |
//! | `"split": {"from", "separator", "index", "limit"}` | part `index` (default 0; negative counts from the end) of the text cut at `separator`; `limit` caps the number of parts, the last holding the rest |
//! | `"const": value` | the value, on every record (a `const` rule takes no other key) |
//!
//! and then, in this order:
//!
//! 1. **Empty source.** A source that is missing (or a `concat` with no
//!    value, a `split` with too few parts) or null — or blank text, when the
//!    rule's `type` is not `string` — writes its `default` if there is one;
//!    fails the record if `"required": true`; otherwise a missing source
//!    writes nothing and a null one writes null.
//! 2. **`values`**: an object from source values to written values. Text
//!    matches keys exactly (`"ignore_case": true` relaxes that); numbers and
//!    booleans match their JSON text (`"1"`, `"true"`). A value matching no
//!    key writes `otherwise` if given, itself if `"keep_unmatched": true`,
//!    and otherwise fails the record, listing the allowed values.
//! 3. **`type`** converts the value written, refusing any loss:
//!    - `string`: numbers and booleans as their text;
//!    - `number`: numeric text (`"42"` gives `42`, `"4.5"` gives `4.5`);
//!    - `integer`: whole numbers only (`"4.5"` fails, `42.0` gives `42`);
//!    - `boolean`: `true/false`, `yes/no`, `y/n`, `1/0`, `on/off` (any case), and the numbers 1 and 0;
//!    - `date`: a calendar day, written `%Y-%m-%d` or as `format` says;
//!    - `datetime`: an instant, written RFC 3339 or as `format` says.
//!
//!    Date rules read RFC 3339 (`2025-01-31`, `2025-01-31T09:30:00Z`,
//!    `2025-01-31T09:30:00+01:00`), or `input_format`: a strftime pattern,
//!    `unix_seconds` or `unix_millis` (numbers or numeric text). Naive
//!    date-times are read in `input_timezone`, else `timezone`, else UTC.
//!    Instants are written in `timezone` if given, else with the offset they
//!    were read with; calendar days are never shifted. Time zones are IANA
//!    names (`Europe/Paris`).
//!
//! `values` outputs, `otherwise` and `default` are converted to the rule's
//! `type` when the mapping is parsed, so a value that cannot be converted is
//! refused then, not on every record.
//!
//! Targets create objects along the way but never arrays (a `to` step that
//! looks like an index is refused). Two rules may not write the same target,
//! nor one inside the other's. Rules win over copied unmapped fields; rules
//! may write inside the `into` object. Arrays are copied whole by `keep` and
//! `into`: a rule reading `/emails/0/address` counts as reading `/emails`.

mod convert;
mod dates;
mod document;
mod error;
mod gaps;
mod names;
mod pointer;
mod rule;
mod schema;
mod unmapped;
mod value_map;
mod writes;

use serde_json::{Map, Value};

pub use error::{MappingError, RecordError};
pub use gaps::{Gap, GapReport};
pub use writes::RuleWrite;

use rule::Rule;
use unmapped::Unmapped;

/// A parsed, checked mapping, ready to reshape records.
///
/// Pointers are split into tokens, time zones looked up, date patterns
/// checked and value maps hashed once, in [`Mapping::parse`]; applying it
/// only walks records.
#[derive(Debug, Clone)]
pub struct Mapping {
    document: Value,
    rules: Vec<Rule>,
    unmapped: Unmapped,
    drop: Vec<pointer::Pointer>,
    /// Nothing to do: records pass through untouched, unparsed.
    identity: bool,
}

impl Mapping {
    /// Checks and compiles a mapping document, or says where it is wrong.
    pub fn parse(document: &Value) -> Result<Self, MappingError> {
        let compiled = document::compile(document)?;
        let identity = compiled.rules.is_empty()
            && compiled.drop.is_empty()
            && matches!(&compiled.unmapped, Unmapped::Keep { into, .. } if into.is_root());
        Ok(Self {
            document: document.clone(),
            rules: compiled.rules,
            unmapped: compiled.unmapped,
            drop: compiled.drop,
            identity,
        })
    }

    /// The mapping of flows that have none: every record as it is.
    pub fn identity() -> Self {
        Self {
            document: serde_json::json!({ "fields": [], "unmapped": "keep" }),
            rules: Vec::new(),
            unmapped: Unmapped::Keep {
                into: pointer::Pointer::root(),
                read: unmapped::ReadTree::default(),
            },
            drop: Vec::new(),
            identity: true,
        }
    }

    /// Whether records pass through unchanged.
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// The document as it was parsed (and saved).
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Reshapes one record, which must be a JSON object (unless the mapping
    /// is the identity, which takes anything).
    pub fn apply(&self, record: &Value) -> Result<Value, RecordError> {
        if self.identity {
            return Ok(record.clone());
        }
        let Value::Object(fields) = record else {
            return Err(RecordError::whole_record(format!(
                "is {}, not a JSON object",
                error::kind_of(record)
            )));
        };
        let mut out = match &self.unmapped {
            Unmapped::Drop => Map::new(),
            Unmapped::Keep { into, read } => {
                let mut kept = Map::new();
                read.copy_unread(fields, &mut kept);
                if into.is_root() {
                    kept
                } else {
                    let mut out = Map::new();
                    into.write(&mut out, Value::Object(kept));
                    out
                }
            }
        };
        for rule in &self.rules {
            rule.apply(record, &mut out)?;
        }
        Ok(Value::Object(out))
    }

    /// Reshapes one record given and returned as JSON text. The identity
    /// returns the text as it is, without reading it.
    pub fn apply_text(&self, data: &str) -> Result<String, RecordError> {
        if self.identity {
            return Ok(data.to_owned());
        }
        let record: Value = serde_json::from_str(data)
            .map_err(|error| RecordError::whole_record(format!("is not valid JSON: {error}")))?;
        let mapped = self.apply(&record)?;
        Ok(mapped.to_string())
    }

    /// What this mapping leaves undone between a source and a destination
    /// described by JSON Schemas: required fields nobody writes, source
    /// fields dropped, types and enums that do not fit. Each gap comes with
    /// a suggested rule.
    pub fn gap_report(&self, source_schema: &Value, destination_schema: &Value) -> GapReport {
        gaps::report(self, source_schema, destination_schema)
    }

    /// What each rule writes, as far as the rule and the source's JSON
    /// Schema tell: for destinations without a schema (the store).
    pub fn rule_writes(&self, source_schema: &Value) -> Vec<RuleWrite> {
        writes::of(&self.rules, source_schema)
    }
}

impl Default for Mapping {
    fn default() -> Self {
        Self::identity()
    }
}

#[cfg(test)]
mod tests;
