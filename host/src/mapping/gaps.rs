//! The gap report: what a mapping leaves undone between a source and a
//! destination described by JSON Schemas, each gap with a rule that would
//! close it, for the admin UI and CLI to offer.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Mapping;
use super::convert::ScalarType;
use super::dates::Calendar;
use super::names::similarity;
use super::pointer::Pointer;
use super::rule::{Conversion, Rule, Source};
use super::schema::{self, Kind, SchemaField};
use super::unmapped::Unmapped;
use super::value_map::Lookup;

/// Names alike enough to suggest mapping one to the other.
const ALIKE: f64 = 0.7;

const KEEP_HINT: &str =
    r#"map it with a rule, or keep it with `"unmapped": {"into": "/custom_fields"}`"#;

/// What a mapping leaves undone. Serialized as is by the admin API.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GapReport {
    /// Fields the destination requires that nothing writes.
    pub unwritten_required: Vec<Gap>,
    /// Source fields no rule reads, which the mapping drops.
    pub dropped_sources: Vec<Gap>,
    /// Rules writing a type or values the destination does not take.
    pub mismatches: Vec<Gap>,
}

impl GapReport {
    /// Whether the mapping leaves nothing undone.
    pub fn is_empty(&self) -> bool {
        self.unwritten_required.is_empty()
            && self.dropped_sources.is_empty()
            && self.mismatches.is_empty()
    }
}

/// One gap, with a rule that would close it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    /// The destination pointer concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The source pointer concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The index in `fields` of the rule concerned, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    /// What is wrong.
    pub problem: String,
    /// What to do, in words.
    pub hint: String,
    /// A rule to add to `fields` — or, when `rule` is set, to replace
    /// `fields[rule]` with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Value>,
}

pub(crate) fn report(
    mapping: &Mapping,
    source_schema: &Value,
    destination_schema: &Value,
) -> GapReport {
    let context = Context {
        mapping,
        sources: schema::fields(source_schema),
        destinations: schema::fields(destination_schema),
    };
    GapReport {
        unwritten_required: context.unwritten_required(),
        dropped_sources: context.dropped_sources(),
        mismatches: context.mismatches(),
    }
}

struct Context<'m> {
    mapping: &'m Mapping,
    sources: Vec<SchemaField>,
    destinations: Vec<SchemaField>,
}

impl Context<'_> {
    fn unwritten_required(&self) -> Vec<Gap> {
        let mut needed: Vec<&Pointer> = Vec::new();
        let mut reported: Vec<&Pointer> = Vec::new();
        let mut gaps: Vec<Gap> = Vec::new();
        for field in &self.destinations {
            let Some(parent) = field.pointer.parent() else {
                continue;
            };
            // `/address/country` is needed when `/address` is: when it is
            // required itself, or when a rule writes something inside it.
            let parent_present = parent.is_root()
                || needed.contains(&&parent)
                || self.rules().any(|rule| parent.contains(&rule.target));
            if !field.required || field.read_only || !parent_present {
                continue;
            }
            needed.push(&field.pointer);
            let inside_reported = reported.iter().any(|done| done.contains(&field.pointer));
            if inside_reported || self.written(&field.pointer) {
                continue;
            }
            reported.push(&field.pointer);
            gaps.push(self.unwritten(field));
        }
        gaps
    }

    fn unwritten(&self, field: &SchemaField) -> Gap {
        let target = field.pointer.as_str();
        let problem = "the destination requires it, but no rule writes it".to_owned();
        let candidate = self
            .sources
            .iter()
            .filter(|source| (field.kind == Some(Kind::Object)) == source.has_properties)
            .map(|source| {
                let mut score = similarity(field.pointer.last_key(), source.pointer.last_key());
                // Prefer fields nothing reads yet, then fields of a fitting type.
                if self.is_read(&source.pointer) {
                    score -= 0.1;
                }
                if matches!((source.kind, field.kind), (Some(a), Some(b)) if a.fits(b)) {
                    score += 0.05;
                }
                (score, source)
            })
            .filter(|(score, _)| *score >= ALIKE)
            .max_by(|(a, _), (b, _)| a.total_cmp(b));
        if let Some((_, source)) = candidate {
            let mut rule = json!({ "to": target, "from": source.pointer.as_str() });
            add_conversion(&mut rule, source.kind, field.kind);
            if let Some(allowed) = &field.allowed {
                let values = value_entries(source.allowed.as_deref(), allowed, |value| {
                    Some(value.clone())
                });
                if let Some(values) = values {
                    rule["values"] = Value::Object(values);
                }
            }
            return Gap {
                target: Some(target.to_owned()),
                source: Some(source.pointer.to_string()),
                rule: None,
                problem,
                hint: format!("map `{}`, which looks alike", source.pointer),
                suggestion: Some(rule),
            };
        }
        let constant = field
            .default
            .clone()
            .or_else(|| {
                field
                    .allowed
                    .as_ref()
                    .and_then(|values| values.first().cloned())
            })
            .unwrap_or_else(|| placeholder(field.kind));
        Gap {
            target: Some(target.to_owned()),
            source: None,
            rule: None,
            problem,
            hint: "no source field looks alike: write a `const`, or map a field with a `default`"
                .into(),
            suggestion: Some(json!({ "to": target, "const": constant })),
        }
    }

    fn dropped_sources(&self) -> Vec<Gap> {
        let mut gaps: Vec<Gap> = Vec::new();
        let mut reported: Vec<&Pointer> = Vec::new();
        for field in &self.sources {
            let pointer = &field.pointer;
            if reported.iter().any(|done| done.contains(pointer))
                || self
                    .reads()
                    .any(|read| pointer.contains(read) || read.contains(pointer))
            {
                continue;
            }
            let problem = match &self.mapping.unmapped {
                Unmapped::Drop => "no rule reads it, and `unmapped` is `drop`",
                Unmapped::Keep { .. }
                    if self.mapping.drop.iter().any(|drop| drop.contains(pointer)) =>
                {
                    "it is listed in `drop`"
                }
                Unmapped::Keep { .. } => continue,
            };
            reported.push(pointer);
            let alike = self
                .destinations
                .iter()
                .filter(|destination| {
                    destination.has_properties == field.has_properties
                        && !destination.read_only
                        && !self.written(&destination.pointer)
                })
                .map(|destination| {
                    (
                        similarity(pointer.last_key(), destination.pointer.last_key()),
                        destination,
                    )
                })
                .filter(|(score, _)| *score >= ALIKE)
                .max_by(|(a, _), (b, _)| a.total_cmp(b));
            let (hint, suggestion) = match alike {
                Some((_, destination)) => {
                    let to = &destination.pointer;
                    let mut rule = json!({ "to": to.as_str(), "from": pointer.as_str() });
                    add_conversion(&mut rule, field.kind, destination.kind);
                    let hint =
                        format!("the destination has `{to}`, which looks alike: map it there");
                    (hint, Some(rule))
                }
                None => (KEEP_HINT.to_owned(), None),
            };
            gaps.push(Gap {
                target: None,
                source: Some(pointer.to_string()),
                rule: None,
                problem: problem.to_owned(),
                hint,
                suggestion,
            });
        }
        gaps
    }

    fn mismatches(&self) -> Vec<Gap> {
        let mut gaps = Vec::new();
        for (index, rule) in self.mapping.rules.iter().enumerate() {
            let Some(destination) = self.destination(&rule.target) else {
                continue;
            };
            let document = &self.mapping.document["fields"][index];
            let written = self.written_kind(rule);
            if let (Some(written), Some(wanted)) = (written, destination.kind)
                && !written.fits(wanted)
            {
                gaps.push(type_mismatch(index, rule, document, written, wanted));
            }
            if let Some(allowed) = destination
                .allowed
                .as_ref()
                .filter(|values| !values.is_empty())
            {
                gaps.extend(self.enum_mismatch(index, rule, document, allowed));
            }
        }
        gaps
    }

    /// The values a rule may write that `allowed` does not take, and a rule
    /// whose `values` map them onto allowed ones.
    fn enum_mismatch(
        &self,
        index: usize,
        rule: &Rule,
        document: &Value,
        allowed: &[Value],
    ) -> Option<Gap> {
        let listed = list(allowed);
        let source_values = match &rule.source {
            Source::Field(from) => self.source(from).and_then(|field| field.allowed.as_deref()),
            _ => None,
        };
        let converted = |value: &Value| match &rule.conversion {
            Some(conversion) => conversion.convert(Cow::Borrowed(value)).ok(),
            None => Some(value.clone()),
        };
        let mut suggestion = document.clone();
        let (problem, hint) = match (&rule.source, &rule.values) {
            (Source::Const(value), _) => {
                if value.is_null() || allowed.contains(value) {
                    return None;
                }
                suggestion["const"] =
                    closest_allowed(value, allowed).unwrap_or_else(|| allowed[0].clone());
                (
                    format!(
                        "writes {}, which the destination does not allow ({listed})",
                        super::error::quote(value)
                    ),
                    "write one of the allowed values".to_owned(),
                )
            }
            (_, Some(map)) => {
                let mut bad: Vec<Value> = map
                    .outputs()
                    .filter(|v| !v.is_null() && !allowed.contains(v))
                    .cloned()
                    .collect();
                // Source values passing through unmapped must be allowed too.
                let passing: Vec<&Value> = source_values
                    .unwrap_or_default()
                    .iter()
                    .filter(|value| matches!(map.lookup(value), Ok(Lookup::Keep)))
                    .collect();
                bad.extend(
                    passing
                        .iter()
                        .filter_map(|value| converted(value))
                        .filter(|v| !allowed.contains(v)),
                );
                let unmatched: Vec<&Value> = source_values
                    .unwrap_or_default()
                    .iter()
                    .filter(|value| map.lookup(value).is_err())
                    .collect();
                if bad.is_empty() && unmatched.is_empty() {
                    return None;
                }
                let entries = suggestion["values"].as_object_mut()?;
                for (_, output) in entries.iter_mut() {
                    if bad.contains(output) {
                        *output = closest_allowed(output, allowed).unwrap_or(Value::Null);
                    }
                }
                for value in unmatched.iter().chain(&passing) {
                    entries.insert(
                        key_text(value),
                        closest_allowed(value, allowed).unwrap_or(Value::Null),
                    );
                }
                let problem = if unmatched.is_empty() {
                    format!(
                        "writes {}, which the destination does not allow ({listed})",
                        list(&bad)
                    )
                } else {
                    let unmatched: Vec<Value> = unmatched.into_iter().cloned().collect();
                    format!(
                        "source values {} match no key of `values`",
                        list(&unmatched)
                    )
                };
                let hint = "map every source value onto an allowed one; \
                    check the suggested entries (null: no close match)";
                (problem, hint.to_owned())
            }
            (_, None) => {
                let entries = value_entries(source_values, allowed, converted)?;
                suggestion["values"] = Value::Object(entries);
                let problem = match source_values {
                    Some(_) => {
                        format!("some source values are not allowed by the destination ({listed})")
                    }
                    None => format!(
                        "the destination allows only {listed}, but any source value is copied"
                    ),
                };
                let hint = "translate them with `values` \
                    (an unmatched value then fails the record, or writes `otherwise`)";
                (problem, hint.to_owned())
            }
        };
        Some(Gap {
            target: Some(rule.target.to_string()),
            source: rule.reads().first().map(ToString::to_string),
            rule: Some(index),
            problem,
            hint,
            suggestion: Some(suggestion),
        })
    }

    /// The kind of value a rule writes, when it can be known.
    fn written_kind(&self, rule: &Rule) -> Option<Kind> {
        match &rule.conversion {
            Some(Conversion::Scalar(scalar)) => Some(match scalar {
                ScalarType::String => Kind::String,
                ScalarType::Number => Kind::Number,
                ScalarType::Integer => Kind::Integer,
                ScalarType::Boolean => Kind::Boolean,
            }),
            Some(Conversion::Date(date)) => {
                Some(match (date.calendar(), date.has_custom_format()) {
                    (_, true) => Kind::String,
                    (Calendar::Date, false) => Kind::Date,
                    (Calendar::DateTime, false) => Kind::DateTime,
                })
            }
            None => match (&rule.values, &rule.source) {
                (Some(map), _) => {
                    let mut kinds = map.outputs().filter_map(Kind::of_value);
                    let first = kinds.next()?;
                    kinds.all(|kind| kind == first).then_some(first)
                }
                (None, Source::Field(from)) => self.source(from)?.kind,
                (None, Source::Concat(_) | Source::Split(_)) => Some(Kind::String),
                (None, Source::Const(value)) => Kind::of_value(value),
            },
        }
    }

    /// Whether something writes `pointer`: a rule writing it or a field
    /// around it, or `keep`/`into` copying an unread source field there.
    fn written(&self, pointer: &Pointer) -> bool {
        if self.rules().any(|rule| rule.target.contains(pointer)) {
            return true;
        }
        let Unmapped::Keep { into, .. } = &self.mapping.unmapped else {
            return false;
        };
        if !into.contains(pointer) {
            return false;
        }
        let relative = pointer.tokens()[into.tokens().len()..]
            .iter()
            .fold(Pointer::root(), |at, token| at.child(token.key()));
        self.source(&relative).is_some()
            && !self.is_read(&relative)
            && !self
                .mapping
                .drop
                .iter()
                .any(|drop| drop.contains(&relative))
    }

    fn is_read(&self, pointer: &Pointer) -> bool {
        self.reads().any(|read| read.contains(pointer))
    }

    fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.mapping.rules.iter()
    }

    fn reads(&self) -> impl Iterator<Item = &Pointer> {
        self.rules().flat_map(Rule::reads)
    }

    fn source(&self, pointer: &Pointer) -> Option<&SchemaField> {
        self.sources.iter().find(|field| field.pointer == *pointer)
    }

    fn destination(&self, pointer: &Pointer) -> Option<&SchemaField> {
        self.destinations
            .iter()
            .find(|field| field.pointer == *pointer)
    }
}

/// A `values` map onto `allowed`: each source value onto itself when
/// allowed, else onto the allowed value most like it (null when none is);
/// for a source without known values, each allowed value onto itself.
/// `None` when every source value is already allowed.
fn value_entries(
    source_values: Option<&[Value]>,
    allowed: &[Value],
    converted: impl Fn(&Value) -> Option<Value>,
) -> Option<Map<String, Value>> {
    let Some(values) = source_values else {
        return Some(
            allowed
                .iter()
                .map(|value| (key_text(value), value.clone()))
                .collect(),
        );
    };
    let fits = |value: &Value| converted(value).is_some_and(|v| allowed.contains(&v));
    if values.iter().all(fits) {
        return None;
    }
    let entries = values
        .iter()
        .map(|value| {
            let target = match converted(value) {
                Some(written) if allowed.contains(&written) => written,
                _ => closest_allowed(value, allowed).unwrap_or(Value::Null),
            };
            (key_text(value), target)
        })
        .collect();
    Some(entries)
}

fn type_mismatch(index: usize, rule: &Rule, document: &Value, written: Kind, wanted: Kind) -> Gap {
    let problem = format!(
        "writes {}, but the destination wants {}",
        written.describe(),
        wanted.describe()
    );
    let mut suggestion = document.clone();
    let (hint, suggestion) = if add_conversion(&mut suggestion, Some(written), Some(wanted)) {
        let hint = match suggestion.get("input_format") {
            Some(_) => "convert it; the source looks like a Unix time (use `unix_millis` if it counts milliseconds)".to_owned(),
            None => format!("convert it with `\"type\": \"{}\"`", wanted.rule_type().unwrap_or_default()),
        };
        (hint, Some(suggestion))
    } else {
        (
            format!(
                "no `type` converts to {}: map a source field of that shape",
                wanted.describe()
            ),
            None,
        )
    };
    Gap {
        target: Some(rule.target.to_string()),
        source: rule.reads().first().map(ToString::to_string),
        rule: Some(index),
        problem,
        hint,
        suggestion,
    }
}

/// Adds the `type` (and `input_format` for numeric times) that writes
/// `wanted` from `read`; false when no conversion can.
fn add_conversion(rule: &mut Value, read: Option<Kind>, wanted: Option<Kind>) -> bool {
    let (Some(read), Some(wanted)) = (read, wanted) else {
        return true;
    };
    if read.fits(wanted) {
        return true;
    }
    let Some(rule_type) = wanted.rule_type() else {
        return false;
    };
    if matches!(read, Kind::Object | Kind::Array) {
        return false;
    }
    rule["type"] = json!(rule_type);
    if matches!(wanted, Kind::Date | Kind::DateTime) && matches!(read, Kind::Integer | Kind::Number)
    {
        rule["input_format"] = json!("unix_seconds");
    }
    true
}

fn placeholder(kind: Option<Kind>) -> Value {
    match kind {
        Some(Kind::Number | Kind::Integer) => json!(0),
        Some(Kind::Boolean) => json!(false),
        Some(Kind::Date) => json!("1970-01-01"),
        Some(Kind::DateTime) => json!("1970-01-01T00:00:00Z"),
        Some(Kind::Object) => json!({}),
        Some(Kind::Array) => json!([]),
        Some(Kind::String) | None => json!(""),
    }
}

/// The allowed value whose text is most like `value`'s, if one is alike.
fn closest_allowed(value: &Value, allowed: &[Value]) -> Option<Value> {
    let text = key_text(value);
    allowed
        .iter()
        .map(|candidate| (similarity(&text, &key_text(candidate)), candidate))
        .filter(|(score, _)| *score >= ALIKE)
        .max_by(|(a, _), (b, _)| a.total_cmp(b))
        .map(|(_, candidate)| candidate.clone())
}

/// A value as a `values` key: text as is, anything else as JSON.
fn key_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(|value| format!("`{}`", key_text(value)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact_source() -> Value {
        json!({
            "type": "object",
            "properties": {
                "id": { "type": "string" },
                "email_address": { "type": "string" },
                "first_name": { "type": "string" },
                "last_name": { "type": "string" },
                "score": { "type": "integer" },
                "lifecycle_stage": { "type": "string", "enum": ["lead", "prospect", "customer", "churned"] },
                "created_at": { "type": "integer" },
                "tags": { "type": "array", "items": { "type": "string" } },
                "address": {
                    "type": "object",
                    "properties": { "city": { "type": "string" }, "zip": { "type": "string" } }
                }
            }
        })
    }

    fn report(mapping: Value, source: Value, destination: Value) -> GapReport {
        Mapping::parse(&mapping)
            .unwrap()
            .gap_report(&source, &destination)
    }

    #[test]
    fn required_fields_nobody_writes_get_a_look_alike_source_or_a_constant() {
        let destination = json!({
            "required": ["email", "name", "source", "stage"],
            "properties": {
                "email": { "type": "string" },
                "name": { "type": "string" },
                "source": { "type": "string", "default": "weir" },
                "stage": { "enum": ["New", "Won"] },
                "optional": { "type": "string" }
            }
        });
        let mapping =
            json!({ "fields": [{ "to": "/name", "concat": ["/first_name", "/last_name"] }] });
        let gaps = report(mapping, contact_source(), destination).unwrap_written_required_targets();
        assert_eq!(
            gaps,
            [
                (
                    "/email".to_owned(),
                    json!({ "to": "/email", "from": "/email_address" })
                ),
                (
                    "/source".to_owned(),
                    json!({ "to": "/source", "const": "weir" })
                ),
                (
                    "/stage".to_owned(),
                    json!({ "to": "/stage", "from": "/lifecycle_stage",
                            "values": { "lead": null, "prospect": null, "customer": null, "churned": null } })
                ),
            ]
        );
        let no_alike = json!({ "required": ["status"], "properties": { "status": { "enum": ["New", "Won"] } } });
        let gaps = report(json!({}), json!({}), no_alike).unwrap_written_required_targets();
        assert_eq!(
            gaps,
            [(
                "/status".to_owned(),
                json!({ "to": "/status", "const": "New" })
            )]
        );
    }

    #[test]
    fn fields_the_destination_sets_itself_are_never_asked_for() {
        let destination = json!({
            "required": ["id", "email", "version"],
            "properties": {
                "id": { "type": "string", "readOnly": true },
                "email": { "type": "string" },
                "version": { "type": "integer", "readOnly": true }
            }
        });
        let report = report(json!({}), contact_source(), destination);
        let targets: Vec<_> = report
            .unwritten_required
            .iter()
            .map(|gap| gap.target.clone().unwrap())
            .collect();
        assert_eq!(targets, ["/email"]);
        let id = report
            .dropped_sources
            .iter()
            .find(|gap| gap.source.as_deref() == Some("/id"))
            .unwrap();
        assert_eq!(
            id.suggestion, None,
            "never suggested into a read-only `/id`"
        );
    }

    #[test]
    fn nested_required_fields_count_only_when_their_parent_is_written() {
        let destination = json!({
            "required": ["contact"],
            "properties": {
                "contact": { "required": ["email"], "properties": { "email": { "type": "string" } } },
                "address": { "required": ["country"], "properties": { "country": { "type": "string" }, "city": { "type": "string" } } },
                "billing": { "required": ["zip"], "properties": { "zip": { "type": "string" } } }
            }
        });
        let mapping = json!({ "fields": [{ "to": "/address/city", "from": "/address/city" }] });
        let report = report(mapping, contact_source(), destination);
        let targets: Vec<_> = report
            .unwritten_required
            .iter()
            .map(|gap| gap.target.clone().unwrap())
            .collect();
        // `/contact/email` is inside the reported `/contact`; `/billing` is optional and unwritten.
        assert_eq!(targets, ["/address/country", "/contact"]);
        let address = &report.unwritten_required[0];
        assert_eq!(
            address.suggestion,
            Some(json!({ "to": "/address/country", "const": "" }))
        );
    }

    #[test]
    fn keep_and_rules_writing_a_parent_cover_required_fields() {
        let destination = json!({
            "required": ["id", "address"],
            "properties": {
                "id": { "type": "string" },
                "address": { "required": ["city"], "properties": { "city": { "type": "string" } } }
            }
        });
        let keep = json!({ "fields": [], "unmapped": "keep" });
        assert!(
            report(keep, contact_source(), destination.clone())
                .unwritten_required
                .is_empty()
        );
        let whole = json!({ "fields": [{ "to": "/address", "from": "/address" }, { "to": "/id", "from": "/id" }] });
        assert!(
            report(whole, contact_source(), destination.clone())
                .unwritten_required
                .is_empty()
        );
        let dropped = json!({ "fields": [], "unmapped": "keep", "drop": ["/id"] });
        let targets: Vec<_> = report(dropped, contact_source(), destination)
            .unwritten_required
            .into_iter()
            .map(|gap| gap.target.unwrap())
            .collect();
        assert_eq!(targets, ["/id"]);
    }

    #[test]
    fn dropped_source_fields_are_listed_once_with_a_destination_to_map_them_to() {
        let destination = json!({ "properties": { "postal_code": { "type": "string" }, "labels": { "type": "array" } } });
        let mapping = json!({ "fields": [
            { "to": "/id", "from": "/id" },
            { "to": "/email", "from": "/email_address" },
            { "to": "/name", "concat": ["/first_name", "/last_name"] },
            { "to": "/city", "from": "/address/city" },
            { "to": "/stage", "from": "/lifecycle_stage" }
        ] });
        let report = report(mapping, contact_source(), destination);
        let dropped: Vec<(String, Option<Value>)> = report
            .dropped_sources
            .iter()
            .map(|gap| (gap.source.clone().unwrap(), gap.suggestion.clone()))
            .collect();
        assert_eq!(
            dropped,
            [
                (
                    "/address/zip".to_owned(),
                    Some(json!({ "to": "/postal_code", "from": "/address/zip" }))
                ),
                ("/created_at".to_owned(), None),
                ("/score".to_owned(), None),
                ("/tags".to_owned(), None),
            ]
        );
        assert_eq!(
            report.dropped_sources[0].problem,
            "no rule reads it, and `unmapped` is `drop`"
        );
    }

    #[test]
    fn an_unread_object_is_listed_whole_and_kept_fields_are_not_dropped() {
        let drop_all = report(json!({}), contact_source(), json!({}));
        let sources: Vec<_> = drop_all
            .dropped_sources
            .iter()
            .map(|gap| gap.source.clone().unwrap())
            .collect();
        assert_eq!(sources.len(), 9);
        assert!(
            sources.contains(&"/address".to_owned())
                && !sources.contains(&"/address/city".to_owned())
        );
        let keep = report(
            json!({ "unmapped": "keep", "drop": ["/address"] }),
            contact_source(),
            json!({}),
        );
        let sources: Vec<_> = keep
            .dropped_sources
            .iter()
            .map(|gap| (gap.source.clone().unwrap(), gap.problem.clone()))
            .collect();
        assert_eq!(
            sources,
            [("/address".to_owned(), "it is listed in `drop`".to_owned())]
        );
    }

    #[test]
    fn copies_between_types_suggest_a_conversion() {
        let destination = json!({ "properties": {
            "score": { "type": "string" },
            "created": { "type": "string", "format": "date-time" },
            "name": { "type": "integer" },
            "address": { "type": "string" },
            "converted": { "type": "string" },
            "count": { "type": "number" }
        } });
        let mapping = json!({ "fields": [
            { "to": "/score", "from": "/score" },
            { "to": "/created", "from": "/created_at" },
            { "to": "/name", "concat": ["/first_name", "/last_name"] },
            { "to": "/address", "from": "/address" },
            { "to": "/converted", "from": "/id", "type": "string" },
            { "to": "/count", "from": "/score" }
        ] });
        let report = report(mapping, contact_source(), destination);
        let mismatches: Vec<(usize, String, Option<Value>)> = report
            .mismatches
            .iter()
            .map(|gap| {
                (
                    gap.rule.unwrap(),
                    gap.problem.clone(),
                    gap.suggestion.clone(),
                )
            })
            .collect();
        assert_eq!(
            mismatches,
            [
                (
                    0,
                    "writes integer, but the destination wants string".to_owned(),
                    Some(json!({ "to": "/score", "from": "/score", "type": "string" }))
                ),
                (
                    1,
                    "writes integer, but the destination wants string (date-time)".to_owned(),
                    Some(
                        json!({ "to": "/created", "from": "/created_at", "type": "datetime", "input_format": "unix_seconds" })
                    )
                ),
                (
                    2,
                    "writes string, but the destination wants integer".to_owned(),
                    Some(
                        json!({ "to": "/name", "concat": ["/first_name", "/last_name"], "type": "integer" })
                    )
                ),
                (
                    3,
                    "writes object, but the destination wants string".to_owned(),
                    None
                ),
            ]
        );
        assert_eq!(
            report.mismatches[0].hint,
            "convert it with `\"type\": \"string\"`"
        );
    }

    #[test]
    fn enum_destinations_want_every_source_value_mapped() {
        let destination = json!({ "properties": { "stage": { "type": "string", "enum": ["New", "Open", "Won", "Lost"] } } });
        let unmapped_copy = json!({ "fields": [{ "to": "/stage", "from": "/lifecycle_stage" }] });
        let gap = &report(unmapped_copy, contact_source(), destination.clone()).mismatches[0];
        assert_eq!(
            gap.problem,
            "some source values are not allowed by the destination (`New`, `Open`, `Won`, `Lost`)"
        );
        assert_eq!(
            gap.suggestion,
            Some(json!({ "to": "/stage", "from": "/lifecycle_stage",
                         "values": { "lead": null, "prospect": null, "customer": null, "churned": null } }))
        );

        let partial = json!({ "fields": [{ "to": "/stage", "from": "/lifecycle_stage",
                                           "values": { "lead": "New", "customer": "Wonn" } }] });
        let gap = &report(partial, contact_source(), destination.clone()).mismatches[0];
        assert_eq!(
            gap.problem,
            "source values `prospect`, `churned` match no key of `values`"
        );
        assert_eq!(
            gap.suggestion,
            Some(json!({ "to": "/stage", "from": "/lifecycle_stage",
                         "values": { "lead": "New", "customer": "Won", "prospect": null, "churned": null } }))
        );

        let complete = json!({ "fields": [{ "to": "/stage", "from": "/lifecycle_stage",
            "values": { "lead": "New", "prospect": "Open", "customer": "Won", "churned": "Lost" } }] });
        assert!(report(complete, contact_source(), destination.clone()).is_empty_but_drops());

        let free = json!({ "fields": [{ "to": "/stage", "from": "/first_name" }] });
        let gap = &report(free, contact_source(), destination.clone()).mismatches[0];
        assert_eq!(
            gap.problem,
            "the destination allows only `New`, `Open`, `Won`, `Lost`, but any source value is copied"
        );
        assert_eq!(
            gap.suggestion.as_ref().unwrap()["values"],
            json!({ "New": "New", "Open": "Open", "Won": "Won", "Lost": "Lost" })
        );

        let constant = json!({ "fields": [{ "to": "/stage", "const": "won" }] });
        let gap = &report(constant, contact_source(), destination).mismatches[0];
        assert_eq!(
            gap.suggestion,
            Some(json!({ "to": "/stage", "const": "Won" }))
        );
    }

    #[test]
    fn the_report_serializes_without_empty_fields() {
        let destination =
            json!({ "required": ["email"], "properties": { "email": { "type": "string" } } });
        let report = report(json!({}), json!({}), destination);
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            json!({
                "unwritten_required": [{
                    "target": "/email",
                    "problem": "the destination requires it, but no rule writes it",
                    "hint": "no source field looks alike: write a `const`, or map a field with a `default`",
                    "suggestion": { "to": "/email", "const": "" }
                }],
                "dropped_sources": [],
                "mismatches": []
            })
        );
    }

    #[test]
    fn odd_schemas_give_an_empty_report() {
        let mapping = Mapping::parse(&json!({ "fields": [{ "to": "/a", "from": "/a" }] })).unwrap();
        for schema in [
            json!(null),
            json!(true),
            json!([]),
            json!({ "properties": [] }),
            json!({ "properties": { "a": 5 } }),
        ] {
            let report = mapping.gap_report(&schema, &schema);
            assert!(
                report.unwritten_required.is_empty() && report.mismatches.is_empty(),
                "{schema}"
            );
        }
        assert!(
            Mapping::identity()
                .gap_report(&contact_source(), &contact_source())
                .is_empty()
        );
    }

    impl GapReport {
        fn unwrap_written_required_targets(&self) -> Vec<(String, Value)> {
            self.unwritten_required
                .iter()
                .map(|gap| (gap.target.clone().unwrap(), gap.suggestion.clone().unwrap()))
                .collect()
        }

        fn is_empty_but_drops(&self) -> bool {
            self.unwritten_required.is_empty() && self.mismatches.is_empty()
        }
    }
}
