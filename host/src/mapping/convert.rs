//! `"type": "string" | "number" | "integer" | "boolean"`: conversions that
//! never lose information. Anything that would (`"4.5"` to an integer,
//! `"abc"` to a number, an object to a string) is refused with a reason.

use std::borrow::Cow;

use serde_json::{Number, Value};

use super::error::{kind_of, quote};

/// The JSON scalar a rule writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarType {
    String,
    Number,
    Integer,
    Boolean,
}

/// Integers above this lose digits as JSON doubles, so a float is only taken
/// as an integer below it.
const EXACT_FLOAT_INTEGER: f64 = 9_007_199_254_740_992.0;

const TRUE_WORDS: &[&str] = &["true", "yes", "y", "1", "on"];
const FALSE_WORDS: &[&str] = &["false", "no", "n", "0", "off"];

impl ScalarType {
    /// Converts `value`, which is never null: null never reaches a
    /// conversion (rules write it as is, or their `default`).
    pub(crate) fn convert(self, value: Cow<'_, Value>) -> Result<Value, String> {
        match (self, &*value) {
            (_, Value::Null)
            | (Self::String, Value::String(_))
            | (Self::Number, Value::Number(_))
            | (Self::Boolean, Value::Bool(_)) => Ok(value.into_owned()),
            (Self::String, Value::Number(n)) => Ok(Value::String(n.to_string())),
            (Self::String, Value::Bool(b)) => Ok(Value::String(b.to_string())),
            (Self::Number, Value::String(text)) => parse_number(text.trim())
                .map(Value::Number)
                .ok_or_else(|| format!("{} is not a number", quote(&value))),
            (Self::Integer, Value::Number(n)) => integer(n, &value),
            (Self::Integer, Value::String(text)) => match parse_number(text.trim()) {
                Some(n) => integer(&n, &value),
                None => Err(format!("{} is not an integer", quote(&value))),
            },
            (Self::Boolean, Value::String(text)) => {
                let word = text.trim();
                if TRUE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
                    Ok(Value::Bool(true))
                } else if FALSE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
                    Ok(Value::Bool(false))
                } else {
                    Err(format!(
                        "{} is not a boolean (expected true/false, yes/no, y/n, 1/0 or on/off)",
                        quote(&value)
                    ))
                }
            }
            (Self::Boolean, Value::Number(n)) => match n.as_f64() {
                Some(1.0) => Ok(Value::Bool(true)),
                Some(0.0) => Ok(Value::Bool(false)),
                _ => Err(format!(
                    "{} is not a boolean (only 1 and 0 are)",
                    quote(&value)
                )),
            },
            (target, other) => Err(format!(
                "{} is {}, which does not convert to {}",
                quote(other),
                kind_of(other),
                target.with_article()
            )),
        }
    }

    fn with_article(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Number => "a number",
            Self::Integer => "an integer",
            Self::Boolean => "a boolean",
        }
    }
}

/// Integers stay integers (`"42"` gives `42`, not `42.0`); `inf` and `NaN`
/// are not JSON numbers.
fn parse_number(text: &str) -> Option<Number> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(n.into());
    }
    if let Ok(n) = text.parse::<u64>() {
        return Some(n.into());
    }
    let float: f64 = text.parse().ok()?;
    // Rust also reads `inf`, `nan` and `infinity`; JSON has none of them.
    if !float.is_finite()
        || text
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
    {
        return None;
    }
    Number::from_f64(float)
}

fn integer(n: &Number, original: &Value) -> Result<Value, String> {
    if n.is_i64() || n.is_u64() {
        return Ok(Value::Number(n.clone()));
    }
    let float = n.as_f64().unwrap_or(f64::NAN);
    if float.fract() != 0.0 {
        Err(format!("{} is not a whole number", quote(original)))
    } else if float.abs() >= EXACT_FLOAT_INTEGER {
        Err(format!(
            "{} is too large to be an exact integer",
            quote(original)
        ))
    } else {
        // Exact: whole and below 2^53.
        Ok(Value::Number((float as i64).into()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn convert(to: ScalarType, value: Value) -> Result<Value, String> {
        to.convert(Cow::Owned(value))
    }

    #[test]
    fn to_string_writes_numbers_and_booleans_as_text() {
        assert_eq!(convert(ScalarType::String, json!(42)), Ok(json!("42")));
        assert_eq!(convert(ScalarType::String, json!(4.5)), Ok(json!("4.5")));
        assert_eq!(convert(ScalarType::String, json!(true)), Ok(json!("true")));
        assert_eq!(convert(ScalarType::String, json!("x")), Ok(json!("x")));
        assert_eq!(
            convert(ScalarType::String, json!({"a": 1})),
            Err("`{\"a\":1}` is an object, which does not convert to a string".into())
        );
        assert_eq!(
            convert(ScalarType::String, json!([1])),
            Err("`[1]` is an array, which does not convert to a string".into())
        );
    }

    #[test]
    fn to_number_reads_numeric_text_exactly() {
        assert_eq!(convert(ScalarType::Number, json!("42")), Ok(json!(42)));
        assert_eq!(convert(ScalarType::Number, json!(" -7 ")), Ok(json!(-7)));
        assert_eq!(convert(ScalarType::Number, json!("4.5")), Ok(json!(4.5)));
        assert_eq!(convert(ScalarType::Number, json!("1e3")), Ok(json!(1000.0)));
        assert_eq!(
            convert(ScalarType::Number, json!("18446744073709551615")),
            Ok(json!(u64::MAX))
        );
        assert_eq!(convert(ScalarType::Number, json!(4.5)), Ok(json!(4.5)));
        for bad in ["abc", "4,5", "NaN", "inf", "infinity", "0x10", "1e999", ""] {
            assert_eq!(
                convert(ScalarType::Number, json!(bad)),
                Err(format!("`{bad}` is not a number")),
                "{bad}"
            );
        }
        assert_eq!(
            convert(ScalarType::Number, json!(true)),
            Err("`true` is a boolean, which does not convert to a number".into())
        );
    }

    #[test]
    fn to_integer_refuses_fractions_and_inexact_values() {
        assert_eq!(convert(ScalarType::Integer, json!("42")), Ok(json!(42)));
        assert_eq!(convert(ScalarType::Integer, json!("42.0")), Ok(json!(42)));
        assert_eq!(convert(ScalarType::Integer, json!(42.0)), Ok(json!(42)));
        assert_eq!(convert(ScalarType::Integer, json!(-3)), Ok(json!(-3)));
        assert_eq!(
            convert(ScalarType::Integer, json!("4.5")),
            Err("`4.5` is not a whole number".into())
        );
        assert_eq!(
            convert(ScalarType::Integer, json!(4.5)),
            Err("`4.5` is not a whole number".into())
        );
        assert_eq!(
            convert(ScalarType::Integer, json!(1e20)),
            Err("`1e+20` is too large to be an exact integer".into())
        );
        assert_eq!(
            convert(ScalarType::Integer, json!("abc")),
            Err("`abc` is not an integer".into())
        );
        assert_eq!(
            convert(ScalarType::Integer, json!(false)),
            Err("`false` is a boolean, which does not convert to an integer".into())
        );
    }

    #[test]
    fn to_boolean_reads_common_words_and_one_or_zero() {
        for yes in ["true", "TRUE", "yes", "Y", "1", "on", " yes "] {
            assert_eq!(
                convert(ScalarType::Boolean, json!(yes)),
                Ok(json!(true)),
                "{yes}"
            );
        }
        for no in ["false", "No", "n", "0", "OFF"] {
            assert_eq!(
                convert(ScalarType::Boolean, json!(no)),
                Ok(json!(false)),
                "{no}"
            );
        }
        assert_eq!(convert(ScalarType::Boolean, json!(1)), Ok(json!(true)));
        assert_eq!(convert(ScalarType::Boolean, json!(0.0)), Ok(json!(false)));
        assert_eq!(
            convert(ScalarType::Boolean, json!(2)),
            Err("`2` is not a boolean (only 1 and 0 are)".into())
        );
        assert_eq!(
            convert(ScalarType::Boolean, json!("maybe")),
            Err(
                "`maybe` is not a boolean (expected true/false, yes/no, y/n, 1/0 or on/off)".into()
            )
        );
        assert_eq!(
            convert(ScalarType::Boolean, json!([])),
            Err("`[]` is an array, which does not convert to a boolean".into())
        );
    }

    #[test]
    fn null_passes_through_every_conversion() {
        for to in [
            ScalarType::String,
            ScalarType::Number,
            ScalarType::Integer,
            ScalarType::Boolean,
        ] {
            assert_eq!(convert(to, Value::Null), Ok(Value::Null));
        }
    }
}
