//! The fields a JSON Schema describes, flattened to pointers, for the gap
//! report. Only the common subset is read — `type`, `format`,
//! `properties`, `required`, `enum`, `const`, `default`, `readOnly` — and
//! anything else is ignored rather than refused: schemas come from partners.

use serde_json::Value;

use super::pointer::Pointer;

/// Deeper schemas are cut: the report is advice, not a validator.
const MAX_DEPTH: usize = 16;

/// What a field holds, as far as the report cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Number,
    Integer,
    Boolean,
    Date,
    DateTime,
    Object,
    Array,
}

impl Kind {
    /// The rule `type` that writes this kind, if one does.
    pub(crate) fn rule_type(self) -> Option<&'static str> {
        match self {
            Self::String => Some("string"),
            Self::Number => Some("number"),
            Self::Integer => Some("integer"),
            Self::Boolean => Some("boolean"),
            Self::Date => Some("date"),
            Self::DateTime => Some("datetime"),
            Self::Object | Self::Array => None,
        }
    }

    /// As the schema would say it: `integer`, `string (date-time)`.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Date => "string (date)",
            Self::DateTime => "string (date-time)",
            Self::Object => "object",
            Self::Array => "array",
        }
    }

    /// Whether a value of kind `self` can be written where `wanted` is.
    pub(crate) fn fits(self, wanted: Kind) -> bool {
        self == wanted
            || matches!(
                (self, wanted),
                (Self::Integer, Self::Number) | (Self::Date | Self::DateTime, Self::String)
            )
    }

    pub(crate) fn of_value(value: &Value) -> Option<Kind> {
        match value {
            Value::Null => None,
            Value::Bool(_) => Some(Self::Boolean),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(Self::Integer),
            Value::Number(_) => Some(Self::Number),
            Value::String(_) => Some(Self::String),
            Value::Array(_) => Some(Self::Array),
            Value::Object(_) => Some(Self::Object),
        }
    }
}

/// One property of a schema, at any depth.
#[derive(Debug, Clone)]
pub(crate) struct SchemaField {
    pub(crate) pointer: Pointer,
    pub(crate) kind: Option<Kind>,
    /// The allowed values, when the schema lists them.
    pub(crate) allowed: Option<Vec<Value>>,
    /// Listed in its parent's `required`.
    pub(crate) required: bool,
    pub(crate) default: Option<Value>,
    pub(crate) has_properties: bool,
    /// `"readOnly": true`: the partner sets it (an id, a version), so no
    /// mapping has to write it even when it is required.
    pub(crate) read_only: bool,
}

/// The properties of `schema`, parents before their children.
pub(crate) fn fields(schema: &Value) -> Vec<SchemaField> {
    let mut fields = Vec::new();
    collect(schema, &Pointer::root(), 0, &mut fields);
    fields
}

fn collect(schema: &Value, at: &Pointer, depth: usize, fields: &mut Vec<SchemaField>) {
    if depth >= MAX_DEPTH {
        return;
    }
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return;
    };
    let required: Vec<&str> = match schema.get("required") {
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    for (name, property) in properties {
        let pointer = at.child(name);
        fields.push(SchemaField {
            kind: kind(property),
            allowed: allowed(property),
            required: required.contains(&name.as_str()),
            default: property.get("default").cloned(),
            has_properties: property.get("properties").is_some_and(Value::is_object),
            read_only: property.get("readOnly") == Some(&Value::Bool(true)),
            pointer: pointer.clone(),
        });
        collect(property, &pointer, depth + 1, fields);
    }
}

fn kind(property: &Value) -> Option<Kind> {
    let named = match property.get("type") {
        Some(Value::String(name)) => Some(name.as_str()),
        // `["string", "null"]`: nullable; the report cares about the other.
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .find(|name| *name != "null"),
        _ => None,
    };
    let kind = match named {
        Some("string") => match property.get("format").and_then(Value::as_str) {
            Some("date-time") => Kind::DateTime,
            Some("date") => Kind::Date,
            _ => Kind::String,
        },
        Some("number") => Kind::Number,
        Some("integer") => Kind::Integer,
        Some("boolean") => Kind::Boolean,
        Some("object") => Kind::Object,
        Some("array") => Kind::Array,
        Some(_) => return None,
        None if property.get("properties").is_some() => Kind::Object,
        None if property.get("items").is_some() => Kind::Array,
        None => {
            let values = allowed(property)?;
            let mut kinds = values.iter().filter_map(Kind::of_value);
            let first = kinds.next()?;
            return kinds.all(|kind| kind == first).then_some(first);
        }
    };
    Some(kind)
}

fn allowed(property: &Value) -> Option<Vec<Value>> {
    match (property.get("enum"), property.get("const")) {
        (Some(Value::Array(values)), _) => {
            Some(values.iter().filter(|v| !v.is_null()).cloned().collect())
        }
        (_, Some(value)) => Some(vec![value.clone()]),
        _ => None,
    }
}

/// `string`, `integer`, `string (date-time)`, `one of "a", "b"`: what the
/// schema says of the property at `pointer` (through `properties`).
pub(crate) fn describe_at(schema: &Value, pointer: &Pointer) -> Option<String> {
    let mut at = schema;
    for token in pointer.tokens() {
        at = at.get("properties")?.get(token.key())?;
    }
    let named = match at.get("type") {
        Some(Value::String(name)) => Some(name.clone()),
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .find(|name| *name != "null")
            .map(str::to_owned),
        _ => None,
    };
    match (
        named,
        at.get("format").and_then(Value::as_str),
        at.get("enum"),
    ) {
        (Some(name), Some(format), _) => Some(format!("{name} ({format})")),
        (Some(name), None, _) => Some(name),
        (None, _, Some(Value::Array(values))) => Some(format!(
            "one of {}",
            values
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn properties_are_flattened_with_their_kinds() {
        let schema = json!({
            "type": "object",
            "required": ["email", "address"],
            "properties": {
                "email": {"type": "string"},
                "score": {"type": ["integer", "null"]},
                "created": {"type": "string", "format": "date-time"},
                "birthday": {"type": "string", "format": "date"},
                "stage": {"enum": ["New", "Won", null]},
                "tags": {"items": {"type": "string"}},
                "odd": {"type": 42, "$ref": "#/x"},
                "address": {
                    "required": ["country"],
                    "properties": {"country": {"type": "string", "default": "US"}}
                }
            }
        });
        let fields = fields(&schema);
        let summary: Vec<(&str, Option<Kind>, bool)> = fields
            .iter()
            .map(|field| (field.pointer.as_str(), field.kind, field.required))
            .collect();
        assert_eq!(
            summary,
            [
                ("/address", Some(Kind::Object), true),
                ("/address/country", Some(Kind::String), true),
                ("/birthday", Some(Kind::Date), false),
                ("/created", Some(Kind::DateTime), false),
                ("/email", Some(Kind::String), true),
                ("/odd", None, false),
                ("/score", Some(Kind::Integer), false),
                ("/stage", Some(Kind::String), false),
                ("/tags", Some(Kind::Array), false),
            ]
        );
        let stage = fields
            .iter()
            .find(|f| f.pointer.as_str() == "/stage")
            .unwrap();
        assert_eq!(stage.allowed, Some(vec![json!("New"), json!("Won")]));
        let country = fields
            .iter()
            .find(|f| f.pointer.as_str() == "/address/country")
            .unwrap();
        assert_eq!(country.default, Some(json!("US")));
    }

    #[test]
    fn what_is_not_understood_is_ignored() {
        for schema in [
            json!(null),
            json!([1, 2]),
            json!({"properties": 3}),
            json!({"required": "x"}),
            json!(true),
        ] {
            assert!(fields(&schema).is_empty());
        }
        let mut deep = json!({"type": "string"});
        for _ in 0..100 {
            deep = json!({"properties": {"a": deep}});
        }
        assert_eq!(fields(&deep).len(), MAX_DEPTH);
    }
}
