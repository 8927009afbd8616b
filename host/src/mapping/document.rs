//! Parsing a mapping document into compiled rules. Every mistake is refused
//! with the path of the offending value (`fields[3].format`) and a reason,
//! since the document is written by people through the admin API and CLI.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::convert::ScalarType;
use super::dates::{Calendar, DateConversion, DateSettings};
use super::error::{MappingError, kind_of, quote};
use super::names::closest;
use super::pointer::Pointer;
use super::rule::{Concat, Conversion, Rule, Source, Split, WhenEmpty};
use super::unmapped::{ReadTree, Unmapped};
use super::value_map::{Unmatched, ValueMap};

/// A parsed document.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) rules: Vec<Rule>,
    pub(crate) unmapped: Unmapped,
    pub(crate) drop: Vec<Pointer>,
}

const SOURCES: &[&str] = &["from", "concat", "split", "const"];
const COMMON_KEYS: &[&str] = &[
    "to",
    "required",
    "default",
    "values",
    "otherwise",
    "keep_unmatched",
    "ignore_case",
    "type",
    "format",
    "input_format",
    "timezone",
    "input_timezone",
];
const CONCAT_KEYS: &[&str] = &["concat", "separator", "skip_empty"];
const SPLIT_KEYS: &[&str] = &["from", "separator", "index", "limit"];
const DATE_KEYS: &[&str] = &["format", "input_format", "timezone", "input_timezone"];
const TYPES: &str = "`string`, `number`, `integer`, `boolean`, `date` or `datetime`";

pub(crate) fn compile(document: &Value) -> Result<Compiled, MappingError> {
    let Value::Object(top) = document else {
        return Err(MappingError::new(
            "",
            format!("a mapping is a JSON object, not {}", kind_of(document)),
        )
        .with_hint(r#"start from `{"fields": [], "unmapped": "keep"}`"#));
    };
    let top = Object {
        map: top,
        path: String::new(),
    };
    top.only(
        &["fields", "unmapped", "drop"],
        |_| None,
        "a mapping has `fields`, `unmapped` and `drop`",
    )?;

    let rules = match top.get("fields") {
        None => Vec::new(),
        Some(Value::Array(fields)) => fields
            .iter()
            .enumerate()
            .map(|(index, rule)| compile_rule(rule, &format!("fields[{index}]")))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(MappingError::new(
                "fields",
                format!("must be an array of rules, not {}", kind_of(other)),
            ));
        }
    };
    check_targets(&rules)?;

    let drop = match top.get("drop") {
        None => Vec::new(),
        Some(Value::Array(pointers)) => pointers
            .iter()
            .enumerate()
            .map(|(index, pointer)| parse_pointer(pointer, &format!("drop[{index}]")))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(MappingError::new(
                "drop",
                format!("must be an array of JSON pointers, not {}", kind_of(other)),
            ));
        }
    };

    let into = match top.get("unmapped") {
        None => None,
        Some(Value::String(mode)) if mode == "drop" => None,
        Some(Value::String(mode)) if mode == "keep" => Some(Pointer::root()),
        Some(Value::Object(map)) => {
            let unmapped = Object {
                map,
                path: "unmapped".into(),
            };
            unmapped.only(&["into"], |_| None, r#"write `{"into": "/custom_fields"}`"#)?;
            let into = unmapped
                .pointer("into")?
                .ok_or_else(|| MappingError::new("unmapped.into", "is missing"))?;
            check_into(&into, &rules)?;
            Some(into)
        }
        Some(other) => {
            return Err(MappingError::new(
                "unmapped",
                format!(
                    r#"must be `"drop"`, `"keep"` or `{{"into": "/pointer"}}`, not {}"#,
                    quote(other)
                ),
            ));
        }
    };

    let unmapped = match into {
        None => {
            if !drop.is_empty() {
                return Err(
                    MappingError::new("drop", "does nothing while `unmapped` is `drop`").with_hint(
                        r#"set `"unmapped"` to `"keep"` or `{"into": ...}`, or remove `drop`"#,
                    ),
                );
            }
            Unmapped::Drop
        }
        Some(into) => {
            let mut read = ReadTree::default();
            for pointer in rules.iter().flat_map(Rule::reads).chain(&drop) {
                read.insert(pointer);
            }
            Unmapped::Keep { into, read }
        }
    };
    Ok(Compiled {
        rules,
        unmapped,
        drop,
    })
}

fn compile_rule(value: &Value, path: &str) -> Result<Rule, MappingError> {
    let Value::Object(map) = value else {
        return Err(MappingError::new(
            path,
            format!("a rule is a JSON object, not {}", kind_of(value)),
        ));
    };
    let rule = Object {
        map,
        path: path.into(),
    };
    let present: Vec<(&str, &Value)> = SOURCES
        .iter()
        .filter_map(|key| Some((*key, rule.get(key)?)))
        .collect();
    let (kind, source_value) = match present[..] {
        [] => {
            return Err(MappingError::new(
                path,
                "has no source: give it one of `from`, `concat`, `split` or `const`",
            ));
        }
        [only] => only,
        [(first, _), (second, _), ..] => {
            return Err(MappingError::new(
                rule.path(second),
                format!("excludes `{first}`: a rule has one source"),
            ));
        }
    };
    let mut allowed: Vec<&str> = match kind {
        "const" => vec!["to", "const"],
        _ => COMMON_KEYS.to_vec(),
    };
    match kind {
        "concat" => allowed.extend(CONCAT_KEYS),
        "const" => {}
        other => allowed.push(other),
    }
    let misplaced = |key: &str| {
        if kind == "split" && SPLIT_KEYS.contains(&key) {
            return Some("belongs inside `split`".to_owned());
        }
        let known =
            COMMON_KEYS.contains(&key) || CONCAT_KEYS.contains(&key) || SOURCES.contains(&key);
        known.then(|| format!("does not apply to a `{kind}` rule"))
    };
    rule.only(
        &allowed,
        misplaced,
        "see the rule settings in the mapping reference",
    )?;

    let target = rule.pointer("to")?.ok_or_else(|| {
        MappingError::new(
            rule.path("to"),
            "is missing: a rule writes one destination pointer",
        )
    })?;
    check_target(&target, &rule.path("to"))?;

    let source = match kind {
        "const" => {
            let value = source_value.clone();
            return Ok(Rule {
                target,
                source: Source::Const(value),
                when_empty: WhenEmpty::Pass,
                values: None,
                conversion: None,
            });
        }
        "from" => Source::Field(parse_pointer(source_value, &rule.path("from"))?),
        "concat" => Source::Concat(compile_concat(&rule, source_value)?),
        _ => Source::Split(compile_split(&rule, source_value)?),
    };

    let conversion = compile_conversion(&rule)?;
    let values = compile_values(&rule, conversion.as_ref())?;
    let when_empty = compile_when_empty(&rule, conversion.as_ref())?;
    Ok(Rule {
        target,
        source,
        when_empty,
        values,
        conversion,
    })
}

/// `values`, with `otherwise`, `keep_unmatched` and `ignore_case`.
fn compile_values(
    rule: &Object<'_>,
    conversion: Option<&Conversion>,
) -> Result<Option<ValueMap>, MappingError> {
    let entries = match rule.get("values") {
        None => {
            for key in ["otherwise", "keep_unmatched", "ignore_case"] {
                if rule.get(key).is_some() {
                    return Err(MappingError::new(rule.path(key), "needs `values`"));
                }
            }
            return Ok(None);
        }
        Some(Value::Object(entries)) => entries,
        Some(other) => {
            return Err(MappingError::new(
                rule.path("values"),
                format!(
                    "must be an object from source values to written values, not {}",
                    kind_of(other)
                ),
            ));
        }
    };
    let entries_path = rule.path("values");
    let entries = entries
        .iter()
        .map(|(key, value)| {
            let at = key_path(&entries_path, key);
            Ok((key.clone(), written_value(conversion, value, at)?))
        })
        .collect::<Result<Vec<_>, MappingError>>()?;
    let keep = rule.bool("keep_unmatched")?.unwrap_or(false);
    let unmatched = match (rule.get("otherwise"), keep) {
        (Some(_), true) => {
            return Err(MappingError::new(
                rule.path("keep_unmatched"),
                "excludes `otherwise`: unmatched values are either replaced or kept",
            ));
        }
        (Some(otherwise), false) => Unmatched::Otherwise(written_value(
            conversion,
            otherwise,
            rule.path("otherwise"),
        )?),
        (None, true) => Unmatched::Keep,
        (None, false) => Unmatched::Refuse,
    };
    let ignore_case = rule.bool("ignore_case")?.unwrap_or(false);
    let map = ValueMap::new(entries, unmatched, ignore_case).map_err(|error| match error.key {
        Some(key) => MappingError::new(key_path(&entries_path, &key), error.reason),
        None => MappingError::new(entries_path.clone(), error.reason),
    })?;
    Ok(Some(map))
}

/// `required` and `default`.
fn compile_when_empty(
    rule: &Object<'_>,
    conversion: Option<&Conversion>,
) -> Result<WhenEmpty, MappingError> {
    let required = rule.bool("required")?.unwrap_or(false);
    match (required, rule.get("default")) {
        (true, Some(_)) => {
            let reason = "cannot go with `required`: a required field has no default";
            let hint = "remove `required` to write the default when the source is empty, \
                or `default` to fail the record";
            Err(MappingError::new(rule.path("default"), reason).with_hint(hint))
        }
        (true, None) => Ok(WhenEmpty::Required),
        (false, Some(default)) => Ok(WhenEmpty::Default(written_value(
            conversion,
            default,
            rule.path("default"),
        )?)),
        (false, None) => Ok(WhenEmpty::Pass),
    }
}

/// A value the rule writes as given (a `values` output, `otherwise`,
/// `default`), converted to the rule's `type` now rather than per record.
fn written_value(
    conversion: Option<&Conversion>,
    value: &Value,
    at: String,
) -> Result<Value, MappingError> {
    match conversion {
        None => Ok(value.clone()),
        Some(conversion) => conversion.convert(Cow::Borrowed(value)).map_err(|reason| {
            MappingError::new(at, format!("{reason}, but the rule's `type` needs it"))
        }),
    }
}

fn compile_concat(rule: &Object<'_>, parts: &Value) -> Result<Concat, MappingError> {
    let path = rule.path("concat");
    let parts = match parts {
        Value::Array(parts) if !parts.is_empty() => parts
            .iter()
            .enumerate()
            .map(|(index, part)| parse_pointer(part, &format!("{path}[{index}]")))
            .collect::<Result<_, _>>()?,
        Value::Array(_) => {
            return Err(MappingError::new(
                path,
                "is empty: list the pointers to join",
            ));
        }
        other => {
            return Err(MappingError::new(
                path,
                format!("must be an array of JSON pointers, not {}", kind_of(other)),
            ));
        }
    };
    Ok(Concat {
        parts,
        separator: rule.str("separator")?.unwrap_or_default().to_owned(),
        skip_empty: rule.bool("skip_empty")?.unwrap_or(true),
    })
}

fn compile_split(rule: &Object<'_>, value: &Value) -> Result<Split, MappingError> {
    let Value::Object(map) = value else {
        return Err(MappingError::new(
            rule.path("split"),
            format!(
                r#"must be an object like `{{"from": "/full_name", "separator": " ", "index": 0}}`, not {}"#,
                kind_of(value)
            ),
        ));
    };
    let split = Object {
        map,
        path: rule.path("split"),
    };
    split.only(
        SPLIT_KEYS,
        |_| None,
        "`split` takes `from`, `separator`, `index` and `limit`",
    )?;
    let from = split
        .pointer("from")?
        .ok_or_else(|| MappingError::new(split.path("from"), "is missing"))?;
    let separator = match split.str("separator")? {
        None => return Err(MappingError::new(split.path("separator"), "is missing")),
        Some("") => {
            return Err(MappingError::new(
                split.path("separator"),
                "is empty: give the text between parts",
            ));
        }
        Some(separator) => separator.to_owned(),
    };
    let index = match split.get("index") {
        None => 0,
        Some(value) => value.as_i64().ok_or_else(|| {
            MappingError::new(
                split.path("index"),
                format!(
                    "must be an integer (negative counts from the end), not {}",
                    quote(value)
                ),
            )
        })?,
    };
    let limit = match split.get("limit") {
        None => None,
        Some(value) => Some(
            value
                .as_u64()
                .filter(|n| *n >= 1)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    MappingError::new(
                        split.path("limit"),
                        format!("must be a positive integer, not {}", quote(value)),
                    )
                })?,
        ),
    };
    if let Some(limit) = limit {
        let reachable = if index >= 0 {
            index.unsigned_abs() < limit as u64
        } else {
            index.unsigned_abs() <= limit as u64
        };
        if !reachable {
            return Err(MappingError::new(
                split.path("index"),
                format!("`{index}` is out of reach with a `limit` of {limit} parts"),
            ));
        }
    }
    Ok(Split {
        from,
        separator,
        index,
        limit,
    })
}

fn compile_conversion(rule: &Object<'_>) -> Result<Option<Conversion>, MappingError> {
    let calendar = match rule.str("type")? {
        None => None,
        Some("string") => return no_date_keys(rule, Conversion::Scalar(ScalarType::String)),
        Some("number") => return no_date_keys(rule, Conversion::Scalar(ScalarType::Number)),
        Some("integer") => return no_date_keys(rule, Conversion::Scalar(ScalarType::Integer)),
        Some("boolean") => return no_date_keys(rule, Conversion::Scalar(ScalarType::Boolean)),
        Some("date") => Some(Calendar::Date),
        Some("datetime") => Some(Calendar::DateTime),
        Some(other) => {
            let hint = match closest(
                other,
                ["string", "number", "integer", "boolean", "date", "datetime"],
            ) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("use {TYPES}"),
            };
            return Err(MappingError::new(
                rule.path("type"),
                format!("`{other}` is not a type: use {TYPES}"),
            )
            .with_hint(hint));
        }
    };
    let Some(calendar) = calendar else {
        for key in DATE_KEYS {
            if rule.get(key).is_some() {
                return Err(MappingError::new(
                    rule.path(key),
                    r#"needs `"type": "date"` or `"type": "datetime"`"#,
                ));
            }
        }
        return Ok(None);
    };
    let settings = DateSettings {
        input_format: rule.str("input_format")?,
        format: rule.str("format")?,
        timezone: rule.str("timezone")?,
        input_timezone: rule.str("input_timezone")?,
    };
    DateConversion::new(calendar, &settings, &rule.path).map(|date| Some(Conversion::Date(date)))
}

fn no_date_keys(
    rule: &Object<'_>,
    conversion: Conversion,
) -> Result<Option<Conversion>, MappingError> {
    for key in DATE_KEYS {
        if rule.get(key).is_some() {
            return Err(MappingError::new(
                rule.path(key),
                r#"needs `"type": "date"` or `"type": "datetime"`"#,
            ));
        }
    }
    Ok(Some(conversion))
}

/// `to` creates objects only; an index-looking step would silently become
/// an object key where the author meant an array.
fn check_target(target: &Pointer, path: &str) -> Result<(), MappingError> {
    if target.is_root() {
        return Err(MappingError::new(
            path,
            "cannot be the whole record (`\"\"`): a rule writes one field",
        ));
    }
    if let Some(index) = target.tokens().iter().find(|token| token.is_index()) {
        return Err(MappingError::new(
            path,
            format!("`{target}` would write into an array (`{}` is an index): targets create objects only", index.key()),
        )
        .with_hint(r#"map the whole array with one rule, like `{"to": "/emails", "from": "/emails"}`"#));
    }
    Ok(())
}

/// Each target is written by one rule, and no rule writes inside another's.
fn check_targets(rules: &[Rule]) -> Result<(), MappingError> {
    for (j, rule) in rules.iter().enumerate() {
        for (i, earlier) in rules[..j].iter().enumerate() {
            let (target, other) = (&rule.target, &earlier.target);
            let reason = if target == other {
                format!("`{target}` is already written by fields[{i}]")
            } else if other.contains(target) {
                format!("`{target}` is inside `{other}`, which fields[{i}] writes")
            } else if target.contains(other) {
                format!("`{target}` contains `{other}`, which fields[{i}] writes")
            } else {
                continue;
            };
            return Err(MappingError::new(format!("fields[{j}].to"), reason)
                .with_hint("each destination field is written by one rule; `concat` combines several sources"));
        }
    }
    Ok(())
}

/// Rules may write inside the `into` object (a partner's properties object
/// holds standard and custom fields alike), but not over it.
fn check_into(into: &Pointer, rules: &[Rule]) -> Result<(), MappingError> {
    // `{"into": ""}` is `"keep"`.
    if !into.is_root() {
        check_target(into, "unmapped.into")?;
    }
    for (i, rule) in rules.iter().enumerate() {
        if rule.target == *into {
            return Err(MappingError::new(
                "unmapped.into",
                format!("`{into}` is written by fields[{i}]"),
            ));
        }
        if rule.target.contains(into) {
            return Err(MappingError::new(
                "unmapped.into",
                format!(
                    "`{into}` is inside `{}`, which fields[{i}] writes",
                    rule.target
                ),
            ));
        }
    }
    Ok(())
}

fn parse_pointer(value: &Value, path: &str) -> Result<Pointer, MappingError> {
    match value {
        Value::String(text) => {
            Pointer::parse(text).map_err(|reason| MappingError::new(path, reason))
        }
        other => Err(MappingError::new(
            path,
            format!(
                "must be a JSON pointer like `/email`, not {}",
                kind_of(other)
            ),
        )),
    }
}

/// `values.lead`, or `values["two words"]` when the key is not a plain name.
fn key_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", Value::String(key.to_owned()))
    }
}

/// A JSON object of the document, with the path to report its keys at.
struct Object<'d> {
    map: &'d Map<String, Value>,
    path: String,
}

impl<'d> Object<'d> {
    fn get(&self, key: &str) -> Option<&'d Value> {
        self.map.get(key)
    }

    fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            key_path(&self.path, key)
        }
    }

    /// Refuses keys outside `allowed`: those `misplaced` knows get its
    /// reason; others are unknown, with a "did you mean" when one is close.
    fn only(
        &self,
        allowed: &[&str],
        misplaced: impl Fn(&str) -> Option<String>,
        hint: &str,
    ) -> Result<(), MappingError> {
        let Some(key) = self.map.keys().find(|key| !allowed.contains(&key.as_str())) else {
            return Ok(());
        };
        if let Some(reason) = misplaced(key) {
            return Err(MappingError::new(self.path(key), reason));
        }
        let hint = match closest(key, allowed.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => hint.to_owned(),
        };
        Err(MappingError::new(self.path(key), "is not a known setting").with_hint(hint))
    }

    fn str(&self, key: &str) -> Result<Option<&'d str>, MappingError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(MappingError::new(
                self.path(key),
                format!("must be a string, not {}", kind_of(other)),
            )),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, MappingError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(other) => Err(MappingError::new(
                self.path(key),
                format!("must be true or false, not {}", quote(other)),
            )),
        }
    }

    fn pointer(&self, key: &str) -> Result<Option<Pointer>, MappingError> {
        self.get(key)
            .map(|value| parse_pointer(value, &self.path(key)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The path and reason a document is refused with.
    fn refusal(document: Value) -> (String, String) {
        let error = compile(&document).unwrap_err();
        (error.path, error.reason)
    }

    fn rule_refusal(rule: Value) -> (String, String) {
        refusal(json!({ "fields": [{ "to": "/ok", "from": "/ok" }, rule] }))
    }

    fn at(path: &str, reason: &str) -> (String, String) {
        (path.into(), reason.into())
    }

    #[test]
    fn the_document_must_be_an_object_of_known_settings() {
        assert_eq!(
            refusal(json!([])),
            at("", "a mapping is a JSON object, not an array")
        );
        let error = compile(&json!({ "feilds": [] })).unwrap_err();
        assert_eq!(
            (error.path.as_str(), error.reason.as_str()),
            ("feilds", "is not a known setting")
        );
        assert_eq!(error.hint.as_deref(), Some("did you mean `fields`?"));
        assert_eq!(
            refusal(json!({ "fields": {} })),
            at("fields", "must be an array of rules, not an object")
        );
        assert_eq!(
            refusal(json!({ "fields": ["/a"] })),
            at("fields[0]", "a rule is a JSON object, not a string")
        );
    }

    #[test]
    fn an_empty_document_is_valid() {
        let compiled = compile(&json!({})).unwrap();
        assert!(compiled.rules.is_empty());
        assert!(matches!(compiled.unmapped, Unmapped::Drop));
    }

    #[test]
    fn a_rule_needs_exactly_one_source() {
        assert_eq!(
            rule_refusal(json!({ "to": "/a" })),
            at(
                "fields[1]",
                "has no source: give it one of `from`, `concat`, `split` or `const`"
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "from": "/a", "const": 1 })),
            at("fields[1].const", "excludes `from`: a rule has one source")
        );
    }

    #[test]
    fn targets_are_object_pointers() {
        assert_eq!(
            rule_refusal(json!({ "from": "/a" })),
            at(
                "fields[1].to",
                "is missing: a rule writes one destination pointer"
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": "", "from": "/a" })),
            at(
                "fields[1].to",
                "cannot be the whole record (`\"\"`): a rule writes one field"
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/emails/0/address", "from": "/a" })),
            at(
                "fields[1].to",
                "`/emails/0/address` would write into an array (`0` is an index): targets create objects only"
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": "email", "from": "/a" })),
            at(
                "fields[1].to",
                "`email` is not a JSON pointer: it must start with `/`, as in `/email`"
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": 3, "from": "/a" })),
            at(
                "fields[1].to",
                "must be a JSON pointer like `/email`, not a number"
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "from": "a~" })),
            at(
                "fields[1].from",
                "`a~` is not a JSON pointer: it must start with `/`, as in `/a~`"
            )
        );
    }

    #[test]
    fn unknown_and_misplaced_keys_are_refused() {
        let error =
            compile(&json!({ "fields": [{ "to": "/a", "concat": ["/a"], "sepparator": " " }] }))
                .unwrap_err();
        assert_eq!(
            (error.path.as_str(), error.reason.as_str()),
            ("fields[0].sepparator", "is not a known setting")
        );
        assert_eq!(error.hint.as_deref(), Some("did you mean `separator`?"));
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "from": "/a", "separator": " " })),
            at("fields[1].separator", "does not apply to a `from` rule")
        );
        assert_eq!(
            rule_refusal(
                json!({ "to": "/a", "split": { "from": "/a", "separator": " " }, "index": 1 })
            ),
            at("fields[1].index", "belongs inside `split`")
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "const": "x", "type": "string" })),
            at("fields[1].type", "does not apply to a `const` rule")
        );
    }

    #[test]
    fn types_and_date_settings_are_checked() {
        let error = compile(&json!({ "fields": [{ "to": "/a", "from": "/a", "type": "int" }] }))
            .unwrap_err();
        assert_eq!(error.path, "fields[0].type");
        assert_eq!(
            error.reason,
            "`int` is not a type: use `string`, `number`, `integer`, `boolean`, `date` or `datetime`"
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "from": "/a", "format": "%Y" })),
            at(
                "fields[1].format",
                r#"needs `"type": "date"` or `"type": "datetime"`"#
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "from": "/a", "type": "string", "timezone": "UTC" })),
            at(
                "fields[1].timezone",
                r#"needs `"type": "date"` or `"type": "datetime"`"#
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "from": "/a", "type": 5 })),
            at("fields[1].type", "must be a string, not a number")
        );
        assert_eq!(
            rule_refusal(
                json!({ "to": "/a", "from": "/a", "type": "date", "timezone": "Europe/Pariss" })
            ),
            at(
                "fields[1].timezone",
                "`Europe/Pariss` is not a known time zone"
            )
        );
    }

    #[test]
    fn value_maps_are_checked_and_converted_when_parsed() {
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "from": "/a", "otherwise": "x" })),
            at("fields[1].otherwise", "needs `values`")
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "from": "/a", "values": ["x"] })),
            at(
                "fields[1].values",
                "must be an object from source values to written values, not an array"
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "from": "/a", "values": {} })),
            at("fields[1].values", "is empty: map at least one value")
        );
        assert_eq!(
            rule_refusal(
                json!({ "to": "/a", "from": "/a", "values": { "x": 1 }, "otherwise": 0, "keep_unmatched": true })
            ),
            at(
                "fields[1].keep_unmatched",
                "excludes `otherwise`: unmatched values are either replaced or kept"
            )
        );
        assert_eq!(
            rule_refusal(
                json!({ "to": "/a", "from": "/a", "values": { "x": 1 }, "ignore_case": "yes" })
            ),
            at("fields[1].ignore_case", "must be true or false, not `yes`")
        );
        assert_eq!(
            rule_refusal(
                json!({ "to": "/a", "from": "/a", "type": "integer", "values": { "two words": "x" } })
            ),
            at(
                "fields[1].values[\"two words\"]",
                "`x` is not an integer, but the rule's `type` needs it"
            )
        );
        assert_eq!(
            rule_refusal(
                json!({ "to": "/a", "from": "/a", "type": "boolean", "values": { "x": true }, "otherwise": "maybe" })
            ),
            at(
                "fields[1].otherwise",
                "`maybe` is not a boolean (expected true/false, yes/no, y/n, 1/0 or on/off), but the rule's `type` needs it"
            )
        );
        assert_eq!(
            rule_refusal(
                json!({ "to": "/a", "from": "/a", "values": { "Lead": 1, "lead": 2 }, "ignore_case": true })
            ),
            at(
                "fields[1].values.lead",
                "`lead` is the same as another key when case is ignored"
            )
        );
    }

    #[test]
    fn required_and_default_are_checked() {
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "from": "/a", "required": true, "default": 1 })),
            at(
                "fields[1].default",
                "cannot go with `required`: a required field has no default"
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "from": "/a", "required": "yes" })),
            at("fields[1].required", "must be true or false, not `yes`")
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "from": "/a", "type": "date", "default": "soon" })),
            at(
                "fields[1].default",
                "`soon` is not a date (expected RFC 3339), but the rule's `type` needs it"
            )
        );
    }

    #[test]
    fn concat_settings_are_checked() {
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "concat": [] })),
            at("fields[1].concat", "is empty: list the pointers to join")
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "concat": "/a" })),
            at(
                "fields[1].concat",
                "must be an array of JSON pointers, not a string"
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "concat": ["/a", 3] })),
            at(
                "fields[1].concat[1]",
                "must be a JSON pointer like `/email`, not a number"
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "concat": ["/a"], "separator": 1 })),
            at("fields[1].separator", "must be a string, not a number")
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "concat": ["/a"], "skip_empty": null })),
            at("fields[1].skip_empty", "must be true or false, not `null`")
        );
    }

    #[test]
    fn split_settings_are_checked() {
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "split": "/name" })),
            at(
                "fields[1].split",
                r#"must be an object like `{"from": "/full_name", "separator": " ", "index": 0}`, not a string"#
            )
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "split": { "separator": " " } })),
            at("fields[1].split.from", "is missing")
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "split": { "from": "/n" } })),
            at("fields[1].split.separator", "is missing")
        );
        assert_eq!(
            rule_refusal(json!({ "to": "/a", "split": { "from": "/n", "separator": "" } })),
            at(
                "fields[1].split.separator",
                "is empty: give the text between parts"
            )
        );
        assert_eq!(
            rule_refusal(
                json!({ "to": "/a", "split": { "from": "/n", "separator": " ", "index": 0.5 } })
            ),
            at(
                "fields[1].split.index",
                "must be an integer (negative counts from the end), not `0.5`"
            )
        );
        assert_eq!(
            rule_refusal(
                json!({ "to": "/a", "split": { "from": "/n", "separator": " ", "limit": 0 } })
            ),
            at(
                "fields[1].split.limit",
                "must be a positive integer, not `0`"
            )
        );
        assert_eq!(
            rule_refusal(
                json!({ "to": "/a", "split": { "from": "/n", "separator": " ", "index": 2, "limit": 2 } })
            ),
            at(
                "fields[1].split.index",
                "`2` is out of reach with a `limit` of 2 parts"
            )
        );
        assert_eq!(
            rule_refusal(
                json!({ "to": "/a", "split": { "from": "/n", "separator": " ", "count": 2 } })
            ),
            at("fields[1].split.count", "is not a known setting")
        );
    }

    #[test]
    fn two_rules_cannot_write_the_same_target_or_inside_each_other() {
        let rules = |a: &str, b: &str| json!({ "fields": [{ "to": a, "from": "/x" }, { "to": "/other", "const": 1 }, { "to": b, "from": "/y" }] });
        assert_eq!(
            refusal(rules("/name", "/name")),
            at("fields[2].to", "`/name` is already written by fields[0]")
        );
        assert_eq!(
            refusal(rules("/address", "/address/country")),
            at(
                "fields[2].to",
                "`/address/country` is inside `/address`, which fields[0] writes"
            )
        );
        assert_eq!(
            refusal(rules("/address/country", "/address")),
            at(
                "fields[2].to",
                "`/address` contains `/address/country`, which fields[0] writes"
            )
        );
        assert!(compile(&rules("/address/country", "/address/city")).is_ok());
        assert!(compile(&rules("/a", "/ab")).is_ok());
    }

    #[test]
    fn unmapped_and_drop_are_checked() {
        assert_eq!(
            refusal(json!({ "unmapped": "copy" })),
            at(
                "unmapped",
                r#"must be `"drop"`, `"keep"` or `{"into": "/pointer"}`, not `copy`"#
            )
        );
        assert_eq!(
            refusal(json!({ "unmapped": {} })),
            at("unmapped.into", "is missing")
        );
        assert_eq!(
            refusal(json!({ "unmapped": { "into": "/x", "as": "y" } })),
            at("unmapped.as", "is not a known setting")
        );
        assert_eq!(
            refusal(json!({ "unmapped": { "into": "/custom/0" } })),
            at(
                "unmapped.into",
                "`/custom/0` would write into an array (`0` is an index): targets create objects only"
            )
        );
        let into = |to: &str| json!({ "fields": [{ "to": to, "from": "/a" }], "unmapped": { "into": "/custom/fields" } });
        assert_eq!(
            refusal(into("/custom/fields")),
            at("unmapped.into", "`/custom/fields` is written by fields[0]")
        );
        assert_eq!(
            refusal(into("/custom")),
            at(
                "unmapped.into",
                "`/custom/fields` is inside `/custom`, which fields[0] writes"
            )
        );
        assert!(compile(&into("/custom/fields/a")).is_ok());
        assert_eq!(
            refusal(json!({ "drop": ["/notes"] })),
            at("drop", "does nothing while `unmapped` is `drop`")
        );
        assert_eq!(
            refusal(json!({ "unmapped": "keep", "drop": "/notes" })),
            at("drop", "must be an array of JSON pointers, not a string")
        );
        assert_eq!(
            refusal(json!({ "unmapped": "keep", "drop": ["/a", "notes"] })),
            at(
                "drop[1]",
                "`notes` is not a JSON pointer: it must start with `/`, as in `/notes`"
            )
        );
    }
}
