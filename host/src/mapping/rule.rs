//! One compiled rule of `fields`: where its value comes from, what happens
//! when there is none, and how it is translated and converted on the way to
//! its target.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::convert::ScalarType;
use super::dates::DateConversion;
use super::error::{RecordError, kind_of, quote};
use super::pointer::Pointer;
use super::value_map::{Lookup, ValueMap};

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) target: Pointer,
    pub(crate) source: Source,
    pub(crate) when_empty: WhenEmpty,
    pub(crate) values: Option<ValueMap>,
    pub(crate) conversion: Option<Conversion>,
}

/// Where a rule's value comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Field(Pointer),
    Concat(Concat),
    Split(Split),
    Const(Value),
}

#[derive(Debug, Clone)]
pub(crate) struct Concat {
    pub(crate) parts: Vec<Pointer>,
    pub(crate) separator: String,
    /// Missing, null and empty parts are left out (with their separator).
    pub(crate) skip_empty: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Split {
    pub(crate) from: Pointer,
    pub(crate) separator: String,
    /// From the end when negative: `-1` is the last part.
    pub(crate) index: i64,
    /// At most this many parts, the last one holding the rest.
    pub(crate) limit: Option<usize>,
}

/// What a rule does when its source is missing or null (or, for rules with
/// a non-string `type`, blank text).
#[derive(Debug, Clone)]
pub(crate) enum WhenEmpty {
    /// A missing source writes nothing; a null one writes null.
    Pass,
    /// This value is written.
    Default(Value),
    /// The record fails.
    Required,
}

#[derive(Debug, Clone)]
pub(crate) enum Conversion {
    Scalar(ScalarType),
    Date(DateConversion),
}

impl Conversion {
    pub(crate) fn convert(&self, value: Cow<'_, Value>) -> Result<Value, String> {
        match self {
            Self::Scalar(scalar) => scalar.convert(value),
            Self::Date(_) if value.is_null() => Ok(Value::Null),
            Self::Date(date) => date.convert(&value),
        }
    }
}

impl Rule {
    /// Reads this rule's value from `record` and writes it into `out`.
    pub(crate) fn apply(
        &self,
        record: &Value,
        out: &mut Map<String, Value>,
    ) -> Result<(), RecordError> {
        let value = match &self.source {
            Source::Const(value) => {
                self.target.write(out, value.clone());
                return Ok(());
            }
            Source::Field(from) => from.read(record).map(Cow::Borrowed),
            Source::Concat(concat) => concat
                .read(record)
                .map_err(|reason| self.error(reason))?
                .map(Cow::Owned),
            Source::Split(split) => split
                .read(record)
                .map_err(|reason| self.error(reason))?
                .map(Cow::Owned),
        };
        let value = match value {
            Some(value) if !self.is_empty(&value) => value,
            absent => {
                let written = match (&self.when_empty, absent) {
                    (WhenEmpty::Default(default), _) => default.clone(),
                    (WhenEmpty::Required, None) => {
                        return Err(self.error("is required, but the record has no value".into()));
                    }
                    (WhenEmpty::Required, Some(_)) => {
                        return Err(
                            self.error("is required, but the record's value is empty".into())
                        );
                    }
                    (WhenEmpty::Pass, None) => return Ok(()),
                    (WhenEmpty::Pass, Some(_)) => Value::Null,
                };
                self.target.write(out, written);
                return Ok(());
            }
        };
        let written = match &self.values {
            Some(map) => match map.lookup(&value).map_err(|reason| self.error(reason))? {
                Lookup::Mapped(mapped) => mapped.clone(),
                Lookup::Keep => self.convert(value)?,
            },
            None => self.convert(value)?,
        };
        self.target.write(out, written);
        Ok(())
    }

    /// Null; or blank text when a typed rule reads it: partners often send
    /// `""` for "no number" or "no date".
    fn is_empty(&self, value: &Value) -> bool {
        match value {
            Value::Null => true,
            Value::String(text) => {
                !matches!(
                    self.conversion,
                    None | Some(Conversion::Scalar(ScalarType::String))
                ) && text.trim().is_empty()
            }
            _ => false,
        }
    }

    fn convert(&self, value: Cow<'_, Value>) -> Result<Value, RecordError> {
        match &self.conversion {
            Some(conversion) => conversion
                .convert(value)
                .map_err(|reason| self.error(reason)),
            None => Ok(value.into_owned()),
        }
    }

    fn error(&self, reason: String) -> RecordError {
        let source = match &self.source {
            Source::Field(from) => Some(from.to_string()),
            Source::Split(split) => Some(split.from.to_string()),
            Source::Concat(concat) => Some(
                concat
                    .parts
                    .iter()
                    .map(Pointer::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            Source::Const(_) => None,
        };
        RecordError {
            target: self.target.to_string(),
            source,
            reason,
        }
    }

    /// Every source pointer this rule reads.
    pub(crate) fn reads(&self) -> Vec<&Pointer> {
        match &self.source {
            Source::Field(from) => vec![from],
            Source::Split(split) => vec![&split.from],
            Source::Concat(concat) => concat.parts.iter().collect(),
            Source::Const(_) => Vec::new(),
        }
    }
}

impl Concat {
    /// The joined text, or `None` when no part has a value.
    fn read(&self, record: &Value) -> Result<Option<Value>, String> {
        let mut joined = String::new();
        let mut any_value = false;
        let mut first = true;
        for part in &self.parts {
            let text: Cow<'_, str> = match part.read(record) {
                None | Some(Value::Null) => Cow::Borrowed(""),
                Some(Value::String(text)) => {
                    any_value = true;
                    Cow::Borrowed(text)
                }
                Some(Value::Number(n)) => {
                    any_value = true;
                    Cow::Owned(n.to_string())
                }
                Some(Value::Bool(b)) => {
                    any_value = true;
                    Cow::Borrowed(if *b { "true" } else { "false" })
                }
                Some(other) => {
                    return Err(format!(
                        "`{part}` is {}; `concat` joins text, numbers and booleans",
                        kind_of(other)
                    ));
                }
            };
            if self.skip_empty && text.is_empty() {
                continue;
            }
            if !first {
                joined.push_str(&self.separator);
            }
            first = false;
            joined.push_str(&text);
        }
        Ok(any_value.then_some(Value::String(joined)))
    }
}

impl Split {
    /// The chosen part, or `None` when the source is missing or null or has
    /// too few parts.
    fn read(&self, record: &Value) -> Result<Option<Value>, String> {
        let text = match self.from.read(record) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(text)) => text,
            Some(other) => {
                return Err(format!(
                    "{} is {}; `split` cuts text",
                    quote(other),
                    kind_of(other)
                ));
            }
        };
        let limit = self.limit.unwrap_or(usize::MAX);
        let part = if let Ok(index) = usize::try_from(self.index) {
            text.splitn(limit, &*self.separator).nth(index)
        } else {
            let from_end = usize::try_from(self.index.unsigned_abs() - 1).unwrap_or(usize::MAX);
            match self.limit {
                None => text.rsplit(&*self.separator).nth(from_end),
                Some(_) => {
                    let parts: Vec<&str> = text.splitn(limit, &*self.separator).collect();
                    let position = parts.len().checked_sub(from_end.saturating_add(1));
                    position.and_then(|i| parts.get(i).copied())
                }
            }
        };
        Ok(part.map(|part| Value::String(part.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{Mapping, RecordError};
    use super::*;

    /// Maps `record` with a mapping made of `rules` alone.
    fn map(rules: Value, record: Value) -> Result<Value, RecordError> {
        let mapping = Mapping::parse(&json!({ "fields": rules })).unwrap();
        mapping.apply(&record)
    }

    fn failure(rules: Value, record: Value) -> (String, Option<String>, String) {
        let error = map(rules, record).unwrap_err();
        (error.target, error.source, error.reason)
    }

    fn error(target: &str, source: Option<&str>, reason: &str) -> (String, Option<String>, String) {
        (target.into(), source.map(Into::into), reason.into())
    }

    #[test]
    fn from_copies_and_renames_at_any_depth() {
        let rules = json!([
            { "to": "/contact/email", "from": "/email" },
            { "to": "/city", "from": "/address/city" },
            { "to": "/primary", "from": "/emails/1/address" },
            { "to": "/whole", "from": "/address" },
        ]);
        let record = json!({
            "email": "a@b.example",
            "address": { "city": "Paris" },
            "emails": [{ "address": "x" }, { "address": "y" }],
        });
        assert_eq!(
            map(rules, record),
            Ok(json!({
                "contact": { "email": "a@b.example" },
                "city": "Paris",
                "primary": "y",
                "whole": { "city": "Paris" },
            }))
        );
    }

    #[test]
    fn a_missing_source_writes_nothing_and_null_writes_null() {
        let rules = json!([{ "to": "/a", "from": "/a" }, { "to": "/b", "from": "/b" }, { "to": "/c", "from": "/c/0" }]);
        assert_eq!(
            map(rules, json!({ "b": null, "c": [] })),
            Ok(json!({ "b": null }))
        );
    }

    #[test]
    fn const_writes_its_value_on_every_record() {
        let rules = json!([{ "to": "/source", "const": "acme" }, { "to": "/meta/tags", "const": ["a", 1] }]);
        assert_eq!(
            map(rules, json!({})),
            Ok(json!({ "source": "acme", "meta": { "tags": ["a", 1] } }))
        );
    }

    #[test]
    fn default_replaces_missing_and_null_sources() {
        let rules = json!([{ "to": "/country", "from": "/country", "default": "US" }]);
        assert_eq!(
            map(rules.clone(), json!({})),
            Ok(json!({ "country": "US" }))
        );
        assert_eq!(
            map(rules.clone(), json!({ "country": null })),
            Ok(json!({ "country": "US" }))
        );
        assert_eq!(
            map(rules, json!({ "country": "FR" })),
            Ok(json!({ "country": "FR" }))
        );
        let explicit_null = json!([{ "to": "/country", "from": "/country", "default": null }]);
        assert_eq!(
            map(explicit_null, json!({})),
            Ok(json!({ "country": null }))
        );
    }

    #[test]
    fn default_is_converted_to_the_rule_type() {
        let rules =
            json!([{ "to": "/score", "from": "/score", "type": "integer", "default": "0" }]);
        assert_eq!(map(rules, json!({})), Ok(json!({ "score": 0 })));
    }

    #[test]
    fn required_fails_on_missing_or_null_sources() {
        let rules = json!([{ "to": "/email", "from": "/mail", "required": true }]);
        assert_eq!(
            failure(rules.clone(), json!({})),
            error(
                "/email",
                Some("/mail"),
                "is required, but the record has no value"
            )
        );
        assert_eq!(
            failure(rules.clone(), json!({ "mail": null })),
            error(
                "/email",
                Some("/mail"),
                "is required, but the record's value is empty"
            )
        );
        assert_eq!(
            map(rules, json!({ "mail": "a@b" })),
            Ok(json!({ "email": "a@b" }))
        );
    }

    #[test]
    fn blank_text_counts_as_empty_for_typed_rules_only() {
        let rules = json!([
            { "to": "/score", "from": "/score", "type": "number", "default": 0 },
            { "to": "/born", "from": "/born", "type": "date" },
            { "to": "/note", "from": "/note" },
            { "to": "/text", "from": "/text", "type": "string", "default": "none" },
        ]);
        let record = json!({ "score": " ", "born": "", "note": "", "text": "" });
        assert_eq!(
            map(rules, record),
            Ok(json!({ "score": 0, "born": null, "note": "", "text": "" }))
        );
        let required =
            json!([{ "to": "/born", "from": "/born", "type": "date", "required": true }]);
        assert_eq!(
            failure(required, json!({ "born": "" })),
            error(
                "/born",
                Some("/born"),
                "is required, but the record's value is empty"
            )
        );
    }

    #[test]
    fn type_converts_and_refuses_losses_naming_the_field() {
        let rules = json!([
            { "to": "/score", "from": "/score", "type": "string" },
            { "to": "/count", "from": "/count", "type": "integer" },
            { "to": "/active", "from": "/active", "type": "boolean" },
            { "to": "/ratio", "from": "/ratio", "type": "number" },
        ]);
        let record = json!({ "score": 42, "count": "42", "active": "yes", "ratio": "0.25" });
        assert_eq!(
            map(rules.clone(), record),
            Ok(json!({ "score": "42", "count": 42, "active": true, "ratio": 0.25 }))
        );
        assert_eq!(
            failure(rules.clone(), json!({ "count": "4.5" })),
            error("/count", Some("/count"), "`4.5` is not a whole number")
        );
        assert_eq!(
            failure(rules.clone(), json!({ "ratio": "abc" })),
            error("/ratio", Some("/ratio"), "`abc` is not a number")
        );
        assert_eq!(
            failure(rules, json!({ "score": { "a": 1 } })),
            error(
                "/score",
                Some("/score"),
                "`{\"a\":1}` is an object, which does not convert to a string"
            )
        );
    }

    #[test]
    fn dates_are_converted_and_invalid_ones_name_the_field_and_value() {
        let rules = json!([
            { "to": "/created", "from": "/created_at", "type": "date", "format": "%Y-%m-%d", "timezone": "Europe/Paris" },
            { "to": "/updated", "from": "/updated_at", "type": "datetime", "input_format": "unix_millis" },
        ]);
        let record =
            json!({ "created_at": "2025-01-31T23:30:00Z", "updated_at": 1738315800000_i64 });
        assert_eq!(
            map(rules.clone(), record),
            Ok(json!({ "created": "2025-02-01", "updated": "2025-01-31T09:30:00Z" }))
        );
        assert_eq!(
            failure(rules.clone(), json!({ "created_at": "2025-13-01" })),
            error(
                "/created",
                Some("/created_at"),
                "`2025-13-01` is not a date (expected RFC 3339)"
            )
        );
        assert_eq!(
            failure(rules, json!({ "updated_at": "later" })),
            error(
                "/updated",
                Some("/updated_at"),
                "`later` is not a Unix time in milliseconds"
            )
        );
    }

    #[test]
    fn values_translate_codes() {
        let rules = json!([{
            "to": "/stage", "from": "/lifecycle_stage",
            "values": { "lead": "New", "customer": "Won" }, "otherwise": "Other"
        }]);
        assert_eq!(
            map(rules.clone(), json!({ "lifecycle_stage": "lead" })),
            Ok(json!({ "stage": "New" }))
        );
        assert_eq!(
            map(rules.clone(), json!({ "lifecycle_stage": "churned" })),
            Ok(json!({ "stage": "Other" }))
        );
        // Null is no value to translate: it passes, as in any rule.
        assert_eq!(
            map(rules, json!({ "lifecycle_stage": null })),
            Ok(json!({ "stage": null }))
        );
    }

    #[test]
    fn unmatched_values_without_otherwise_fail_listing_the_allowed_ones() {
        let rules = json!([{ "to": "/stage", "from": "/stage", "values": { "lead": "New", "customer": "Won" } }]);
        assert_eq!(
            failure(rules, json!({ "stage": "prospect" })),
            error(
                "/stage",
                Some("/stage"),
                "`prospect` is not one of the mapped values (`customer`, `lead`)"
            )
        );
    }

    #[test]
    fn values_outputs_and_kept_values_take_the_rule_type() {
        let rules = json!([{
            "to": "/priority", "from": "/priority",
            "values": { "high": "3", "low": 1 }, "keep_unmatched": true, "type": "integer", "ignore_case": true
        }]);
        assert_eq!(
            map(rules.clone(), json!({ "priority": "HIGH" })),
            Ok(json!({ "priority": 3 }))
        );
        assert_eq!(
            map(rules.clone(), json!({ "priority": "2" })),
            Ok(json!({ "priority": 2 }))
        );
        assert_eq!(
            failure(rules, json!({ "priority": "urgent" })),
            error("/priority", Some("/priority"), "`urgent` is not an integer")
        );
        let numeric_keys =
            json!([{ "to": "/active", "from": "/active", "values": { "1": true, "0": false } }]);
        assert_eq!(
            map(numeric_keys, json!({ "active": 1 })),
            Ok(json!({ "active": true }))
        );
    }

    #[test]
    fn concat_joins_parts_and_skips_empty_ones() {
        let rules = json!([{ "to": "/name", "concat": ["/first_name", "/middle", "/last_name"], "separator": " " }]);
        assert_eq!(
            map(
                rules.clone(),
                json!({ "first_name": "Ada", "middle": null, "last_name": "Lovelace" })
            ),
            Ok(json!({ "name": "Ada Lovelace" }))
        );
        assert_eq!(
            map(
                rules.clone(),
                json!({ "first_name": "Ada", "middle": "", "last_name": 7 })
            ),
            Ok(json!({ "name": "Ada 7" }))
        );
        assert_eq!(map(rules.clone(), json!({})), Ok(json!({})));
        assert_eq!(
            failure(rules, json!({ "first_name": ["Ada"] })),
            error(
                "/name",
                Some("/first_name, /middle, /last_name"),
                "`/first_name` is an array; `concat` joins text, numbers and booleans"
            )
        );
    }

    #[test]
    fn concat_can_keep_empty_parts_in_place() {
        let rules = json!([{ "to": "/line", "concat": ["/a", "/b", "/c"], "separator": ";", "skip_empty": false }]);
        assert_eq!(
            map(rules.clone(), json!({ "a": "x", "c": true })),
            Ok(json!({ "line": "x;;true" }))
        );
        let with_default =
            json!([{ "to": "/line", "concat": ["/a", "/b"], "skip_empty": false, "default": "-" }]);
        assert_eq!(
            map(with_default, json!({ "a": null })),
            Ok(json!({ "line": "-" }))
        );
    }

    #[test]
    fn split_picks_a_part_from_either_end() {
        let record = json!({ "full_name": "Ada King Lovelace" });
        let part = |index: i64, limit: Option<u64>| {
            let mut split = json!({ "from": "/full_name", "separator": " ", "index": index });
            if let Some(limit) = limit {
                split["limit"] = json!(limit);
            }
            map(json!([{ "to": "/part", "split": split }]), record.clone())
                .map(|out| out["part"].clone())
        };
        assert_eq!(part(0, None), Ok(json!("Ada")));
        assert_eq!(part(2, None), Ok(json!("Lovelace")));
        assert_eq!(part(-1, None), Ok(json!("Lovelace")));
        assert_eq!(part(-3, None), Ok(json!("Ada")));
        assert_eq!(part(1, Some(2)), Ok(json!("King Lovelace")));
        assert_eq!(part(-1, Some(2)), Ok(json!("King Lovelace")));
        assert_eq!(part(-2, Some(2)), Ok(json!("Ada")));
        // Too few parts: no value.
        assert_eq!(part(3, None), Ok(Value::Null));
        assert_eq!(part(-4, None), Ok(Value::Null));
    }

    #[test]
    fn split_of_too_few_parts_uses_the_default_and_refuses_non_text() {
        let rules = json!([{ "to": "/last", "split": { "from": "/name", "separator": " ", "index": 1 }, "default": "" }]);
        assert_eq!(
            map(rules.clone(), json!({ "name": "Cher" })),
            Ok(json!({ "last": "" }))
        );
        assert_eq!(
            map(rules.clone(), json!({ "name": null })),
            Ok(json!({ "last": "" }))
        );
        assert_eq!(
            failure(rules, json!({ "name": 42 })),
            error(
                "/last",
                Some("/name"),
                "`42` is a number; `split` cuts text"
            )
        );
    }
}
