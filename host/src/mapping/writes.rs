//! What each rule of a mapping writes, as far as the rule and the source's
//! schema tell: what `weir map check` shows for a destination without a
//! schema (the store).

use serde::Serialize;
use serde_json::Value;

use super::convert::ScalarType;
use super::dates::Calendar;
use super::rule::{Conversion, Rule, Source};
use super::schema;

/// What one rule writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleWrite {
    /// Its index in `fields`.
    pub rule: usize,
    /// The field it writes.
    pub to: String,
    /// What it reads: a field, `concat …`, `split …`, `const …`.
    pub from: String,
    /// What it writes: its `type`, the values it maps to, or the source
    /// field's type.
    pub writes: String,
}

pub(super) fn of(rules: &[Rule], source_schema: &Value) -> Vec<RuleWrite> {
    rules
        .iter()
        .enumerate()
        .map(|(index, rule)| RuleWrite {
            rule: index,
            to: rule.target.to_string(),
            from: reads(&rule.source),
            writes: writes(rule, source_schema),
        })
        .collect()
}

fn reads(source: &Source) -> String {
    match source {
        Source::Field(from) => from.to_string(),
        Source::Concat(concat) => format!(
            "concat {}",
            concat
                .parts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Source::Split(split) => format!("split {}", split.from),
        Source::Const(value) => format!("const {value}"),
    }
}

fn writes(rule: &Rule, source_schema: &Value) -> String {
    match (&rule.conversion, &rule.values, &rule.source) {
        (Some(Conversion::Date(date)), _, _) => {
            let kind = match date.calendar() {
                Calendar::Date => "date",
                Calendar::DateTime => "datetime",
            };
            match date.format() {
                Some(format) => format!("{kind} as `{format}`"),
                None => kind.to_owned(),
            }
        }
        (Some(Conversion::Scalar(scalar)), _, _) => scalar_name(*scalar).to_owned(),
        (None, Some(values), _) => {
            let mut outputs: Vec<String> = values
                .outputs()
                .map(|value| {
                    format!(
                        "`{}`",
                        value.as_str().map_or(value.to_string(), str::to_owned)
                    )
                })
                .collect();
            outputs.sort();
            outputs.dedup();
            format!("one of {}", outputs.join(", "))
        }
        (None, None, Source::Concat(_) | Source::Split(_)) => "string".to_owned(),
        (None, None, Source::Const(value)) => json_kind(value).to_owned(),
        (None, None, Source::Field(from)) => schema::describe_at(source_schema, from)
            .map(|kind| format!("{kind}, as the source has it"))
            .unwrap_or_else(|| "as read (the source schema does not say)".to_owned()),
    }
}

fn scalar_name(scalar: ScalarType) -> &'static str {
    match scalar {
        ScalarType::String => "string",
        ScalarType::Number => "number",
        ScalarType::Integer => "integer",
        ScalarType::Boolean => "boolean",
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::mapping::Mapping;

    fn writes(rules: serde_json::Value, schema: serde_json::Value) -> Vec<(String, String)> {
        Mapping::parse(&json!({ "fields": rules }))
            .unwrap()
            .rule_writes(&schema)
            .into_iter()
            .map(|w| (w.from, w.writes))
            .collect()
    }

    #[test]
    fn each_rule_says_what_it_reads_and_writes() {
        let schema = json!({ "properties": {
            "email": { "type": "string", "format": "email" },
            "age": { "type": ["null", "integer"] },
            "stage": { "enum": ["lead", null, "won"] },
            "a/b": { "type": "boolean" },
        }});
        let found = writes(
            json!([
                { "to": "/mail", "from": "/email" },
                { "to": "/age", "from": "/age" },
                { "to": "/stage", "from": "/stage" },
                { "to": "/flag", "from": "/a~1b" },
                { "to": "/unknown", "from": "/nowhere" },
                { "to": "/n", "from": "/age", "type": "number" },
                { "to": "/d", "from": "/when", "type": "date", "format": "%d.%m.%Y" },
                { "to": "/t", "from": "/when", "type": "datetime" },
                { "to": "/s", "from": "/stage", "values": { "lead": "New", "won": 1 }, "otherwise": "New" },
                { "to": "/name", "concat": ["/first", "/last"] },
                { "to": "/first", "split": { "from": "/name", "separator": " ", "index": 0 } },
                { "to": "/k", "const": 1.5 },
            ]),
            schema,
        );
        let expected = [
            ("/email", "string (email), as the source has it"),
            ("/age", "integer, as the source has it"),
            ("/stage", "one of \"lead\", \"won\", as the source has it"),
            ("/a~1b", "boolean, as the source has it"),
            ("/nowhere", "as read (the source schema does not say)"),
            ("/age", "number"),
            ("/when", "date as `%d.%m.%Y`"),
            ("/when", "datetime"),
            ("/stage", "one of `1`, `New`"),
            ("concat /first, /last", "string"),
            ("split /name", "string"),
            ("const 1.5", "number"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(from, writes)| (from.to_string(), writes.to_string()))
            .collect();
        assert_eq!(found, expected);
    }
}
