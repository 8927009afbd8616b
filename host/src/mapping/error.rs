//! What goes wrong: a mapping refused when saved, a record refused when
//! mapped.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// A mapping document refused when parsed: where in the document, and why.
///
/// Displayed as `fields[3].format: ...`, the path written the way a person
/// would point at the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct MappingError {
    /// Where, e.g. `fields[3].format` or `unmapped.into`; empty for the
    /// document as a whole.
    pub path: String,
    /// What is wrong, in one line.
    pub reason: String,
    /// What to do about it, when the reason does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl MappingError {
    pub(crate) fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// A record the mapping could not reshape. The run goes on; the record goes
/// to the dead letters with this error.
///
/// Displayed as `/created (from /created_at): ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordError {
    /// The destination pointer being written; empty when the record as a
    /// whole is refused (not an object, not JSON).
    pub target: String,
    /// The source pointer(s) read, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What is wrong with the value, in one line.
    pub reason: String,
}

impl RecordError {
    /// An error about the record as a whole.
    pub(crate) fn whole_record(reason: impl Into<String>) -> Self {
        Self {
            target: String::new(),
            source: None,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.target[..], &self.source) {
            ("", _) => write!(f, "record: {}", self.reason),
            (target, Some(source)) => write!(f, "{target} (from {source}): {}", self.reason),
            (target, None) => write!(f, "{target}: {}", self.reason),
        }
    }
}

// Not `thiserror`: it would take the field named `source` for the error's
// cause.
impl std::error::Error for RecordError {}

/// A value as quoted in a message: strings as their text, anything else as
/// JSON, cut short so that a huge value cannot flood a dead-letter table.
pub(crate) fn quote(value: &Value) -> String {
    const LIMIT: usize = 60;
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("`{}…`", &text[..cut]),
        None => format!("`{text}`"),
    }
}

/// `a string`, `an object`, ... for messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn mapping_error_displays_path_then_reason() {
        let error = MappingError::new("fields[3].format", "is empty");
        assert_eq!(error.to_string(), "fields[3].format: is empty");
        assert_eq!(
            MappingError::new("", "a mapping is a JSON object").to_string(),
            "a mapping is a JSON object"
        );
    }

    #[test]
    fn record_error_displays_target_and_source() {
        let error = RecordError {
            target: "/created".into(),
            source: Some("/created_at".into()),
            reason: "`x` is not a date".into(),
        };
        assert_eq!(
            error.to_string(),
            "/created (from /created_at): `x` is not a date"
        );
        let constant = RecordError {
            source: None,
            ..error
        };
        assert_eq!(constant.to_string(), "/created: `x` is not a date");
        assert_eq!(
            RecordError::whole_record("is not JSON").to_string(),
            "record: is not JSON"
        );
    }

    #[test]
    fn quoted_values_are_cut_short_on_a_char_boundary() {
        assert_eq!(quote(&json!("abc")), "`abc`");
        assert_eq!(quote(&json!(4.5)), "`4.5`");
        assert_eq!(quote(&json!({"a": 1})), "`{\"a\":1}`");
        let long = "é".repeat(100);
        assert_eq!(quote(&json!(long)), format!("`{}…`", "é".repeat(60)));
    }
}
