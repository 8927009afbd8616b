//! `contact-mapper`: an example Weir **transform** — Acme CRM contacts
//! reshaped into a CRM's `properties` shape, in Rust, inside the sandbox.
//!
//! A transform runs after a flow's declarative mapping, on every record of
//! every page (`transforms = [{ plugin = "contact-mapper", config = {...} }]`
//! in `weir.toml`). Write one when a mapping cannot say what you need; copy
//! this crate to start.
//!
//! Without `phone_country_code`, it writes exactly what this ten-rule
//! declarative mapping writes (the host's benchmark checks it on 100,000
//! records, and measures both):
//!
//! ```json
//! { "fields": [
//!     { "to": "/externalId", "from": "/id", "required": true },
//!     { "to": "/properties/email", "from": "/email", "required": true },
//!     { "to": "/properties/name", "concat": ["/first_name", "/last_name"], "separator": " " },
//!     { "to": "/properties/phone", "from": "/phone" },
//!     { "to": "/properties/jobtitle", "from": "/title" },
//!     { "to": "/properties/company", "from": "/company_id" },
//!     { "to": "/properties/stage", "from": "/lifecycle_stage",
//!       "values": { "lead": "New", "prospect": "Open", "customer": "Won", "churned": "Lost" } },
//!     { "to": "/properties/score", "from": "/score", "type": "string" },
//!     { "to": "/properties/created", "from": "/created_at", "type": "date", "timezone": "Europe/Paris" },
//!     { "to": "/source", "const": "acme" } ] }
//! ```
//!
//! With `phone_country_code`, it also does what no mapping can: phone
//! numbers written any way (`+1-555-010-0123`, `(555) 010 0123`,
//! `0033 6 12 34 56 78`) become E.164 (`+15550100123`), and a phone that is
//! not one fails its record (it goes to the dead letters with the reason).
//!
//! Configuration (every key optional):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `timezone` | `"Europe/Paris"` | IANA zone in which `created_at` gives the day written to `created` |
//! | `source` | `"acme"` | written to `/source` |
//! | `stages` | the four Acme stages above | `lifecycle_stage` values to the destination's; any other fails the record |
//! | `phone_country_code` | none: phones as they are | calling code (`"1"`, `"33"`) for numbers written without one; turns on E.164 |
//!
//! Build: `cargo build --release --target wasm32-wasip2`, then copy
//! `contact_mapper.wasm` into Weir's plugins directory; Weir names a
//! transform after its file, in kebab-case: `contact-mapper`.

use std::collections::BTreeMap;

use jiff::civil::DateTime;
use jiff::fmt::temporal::Pieces;
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use weir_sdk::{Error, Result, Transform};

/// The transform; its behaviour is all in [`Config`].
pub struct ContactMapper;

/// How `contact-mapper` reshapes, from the flow's `config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The zone in which a creation instant gives its calendar day.
    #[serde(default = "paris", deserialize_with = "time_zone")]
    timezone: TimeZone,
    /// Written to `/source`.
    #[serde(default = "acme")]
    source: String,
    /// Acme `lifecycle_stage` values to the destination's stages.
    #[serde(default = "acme_stages")]
    stages: BTreeMap<String, String>,
    /// Calling code for phones written without one; `None` keeps phones
    /// as they are.
    #[serde(default)]
    phone_country_code: Option<String>,
}

fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").expect("the bundled database knows Europe/Paris")
}

fn acme() -> String {
    "acme".into()
}

fn acme_stages() -> BTreeMap<String, String> {
    [
        ("lead", "New"),
        ("prospect", "Open"),
        ("customer", "Won"),
        ("churned", "Lost"),
    ]
    .into_iter()
    .map(|(from, to)| (from.into(), to.into()))
    .collect()
}

fn time_zone<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<TimeZone, D::Error> {
    let name = String::deserialize(deserializer)?;
    TimeZone::get(&name).map_err(|_| {
        serde::de::Error::custom(format!(
            "`{name}` is not a known time zone: use an IANA name such as `Europe/Paris`"
        ))
    })
}

impl Transform for ContactMapper {
    type Config = Config;

    fn transform(config: &Config, record: Value) -> Result<Option<Value>> {
        let Value::Object(contact) = record else {
            return Err(Error::permanent(format!(
                "record: is {}, not a JSON object",
                kind_of(&record)
            )));
        };
        let get = |name: &str| contact.get(name);
        let mut out = Map::new();
        let mut properties = Map::new();

        // The rules in the mapping's order, so that a record breaking two
        // of them reports the same one.
        out.insert(
            "externalId".into(),
            required(get("id"), "/externalId", "/id")?,
        );
        properties.insert(
            "email".into(),
            required(get("email"), "/properties/email", "/email")?,
        );
        if let Some(name) = full_name(get("first_name"), get("last_name"))? {
            properties.insert("name".into(), name);
        }
        if let Some(phone) = get("phone") {
            let phone = match &config.phone_country_code {
                None => phone.clone(),
                Some(code) => e164(phone, code).map_err(|reason| {
                    Error::permanent(format!("/properties/phone (from /phone): {reason}"))
                })?,
            };
            properties.insert("phone".into(), phone);
        }
        copy(&mut properties, "jobtitle", get("title"));
        copy(&mut properties, "company", get("company_id"));
        if let Some(stage) = get("lifecycle_stage") {
            properties.insert("stage".into(), stage_of(stage, &config.stages)?);
        }
        if let Some(score) = get("score") {
            properties.insert("score".into(), score_text(score)?);
        }
        if let Some(created) = get("created_at") {
            let day = creation_day(created, &config.timezone).map_err(|reason| {
                Error::permanent(format!("/properties/created (from /created_at): {reason}"))
            })?;
            properties.insert("created".into(), day);
        }
        out.insert("properties".into(), Value::Object(properties));
        out.insert("source".into(), Value::String(config.source.clone()));
        Ok(Some(Value::Object(out)))
    }
}

weir_sdk::export_transform!(ContactMapper);

/// `"required": true`: missing or null fails the record.
fn required(value: Option<&Value>, target: &str, source: &str) -> Result<Value> {
    match value {
        None => Err(Error::permanent(format!(
            "{target} (from {source}): is required, but the record has no value"
        ))),
        Some(Value::Null) => Err(Error::permanent(format!(
            "{target} (from {source}): is required, but the record's value is empty"
        ))),
        Some(value) => Ok(value.clone()),
    }
}

/// A plain copy: missing writes nothing, anything else (null included) is
/// written as it is.
fn copy(out: &mut Map<String, Value>, to: &str, value: Option<&Value>) {
    if let Some(value) = value {
        out.insert(to.into(), value.clone());
    }
}

/// First and last name joined by a space, leaving out missing, null and
/// empty parts; nothing when neither has a value.
fn full_name(first: Option<&Value>, last: Option<&Value>) -> Result<Option<Value>> {
    let mut joined = String::new();
    let mut any_value = false;
    for (part, value) in [("/first_name", first), ("/last_name", last)] {
        let text = match value {
            None | Some(Value::Null) => continue,
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(other) => {
                return Err(Error::permanent(format!(
                    "/properties/name (from /first_name, /last_name): `{part}` is {}; `concat` joins text, numbers and booleans",
                    kind_of(other)
                )));
            }
        };
        any_value = true;
        if text.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(&text);
    }
    Ok(any_value.then_some(Value::String(joined)))
}

fn stage_of(stage: &Value, stages: &BTreeMap<String, String>) -> Result<Value> {
    let key = match stage {
        Value::Null => return Ok(Value::Null),
        Value::String(text) => Some(text.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match key.and_then(|key| stages.get(&key)) {
        Some(mapped) => Ok(Value::String(mapped.clone())),
        None => {
            let allowed: Vec<String> = stages.keys().map(|k| format!("`{k}`")).collect();
            Err(Error::permanent(format!(
                "/properties/stage (from /lifecycle_stage): {} is not one of the mapped values ({})",
                quote(stage),
                allowed.join(", ")
            )))
        }
    }
}

/// `"type": "string"`: numbers and booleans as their text.
fn score_text(score: &Value) -> Result<Value> {
    match score {
        Value::Null | Value::String(_) => Ok(score.clone()),
        Value::Number(n) => Ok(Value::String(n.to_string())),
        Value::Bool(b) => Ok(Value::String(b.to_string())),
        other => Err(Error::permanent(format!(
            "/properties/score (from /score): {} is {}, which does not convert to a string",
            quote(other),
            kind_of(other)
        ))),
    }
}

/// The calendar day of an RFC 3339 date or date-time in `zone`: instants
/// are moved into the zone, dates are never shifted, date-times without
/// an offset are read in the zone. Blank text and null write null.
fn creation_day(value: &Value, zone: &TimeZone) -> std::result::Result<Value, String> {
    let text = match value {
        Value::Null => return Ok(Value::Null),
        Value::String(text) if text.trim().is_empty() => return Ok(Value::Null),
        Value::String(text) => text.trim(),
        other => {
            return Err(format!(
                "{} is {}, not a date written as text",
                quote(other),
                kind_of(other)
            ));
        }
    };
    let not_a_date = || format!("{} is not a date (expected RFC 3339)", quote(value));
    let pieces = Pieces::parse(text).map_err(|_| not_a_date())?;
    let Some(time) = pieces.time() else {
        return Ok(Value::String(pieces.date().to_string()));
    };
    let datetime = pieces.date().to_datetime(time);
    let at = match (pieces.to_numeric_offset(), pieces.to_time_zone()) {
        (Some(offset), _) => offset.to_timestamp(datetime).ok(),
        (None, Ok(Some(named))) => instant_in(&named, datetime),
        (None, Ok(None)) => instant_in(zone, datetime),
        (None, Err(_)) => None,
    }
    .ok_or_else(not_a_date)?;
    Ok(Value::String(zone.to_datetime(at).date().to_string()))
}

fn instant_in(zone: &TimeZone, datetime: DateTime) -> Option<jiff::Timestamp> {
    // In a daylight saving gap or overlap, the time before the change.
    Some(
        zone.to_ambiguous_zoned(datetime)
            .compatible()
            .ok()?
            .timestamp(),
    )
}

/// E.164: `+`, the calling code, the number; at most 15 digits. Spaces,
/// dashes, dots, slashes and parentheses are separators; `00` is an
/// international prefix; one leading `0` of a national number is a trunk
/// prefix, dropped. Null and blank text write null.
fn e164(phone: &Value, country_code: &str) -> std::result::Result<Value, String> {
    let text = match phone {
        Value::Null => return Ok(Value::Null),
        Value::String(text) if text.trim().is_empty() => return Ok(Value::Null),
        Value::String(text) => text.trim(),
        other => {
            return Err(format!(
                "{} is {}, not a phone number",
                quote(other),
                kind_of(other)
            ));
        }
    };
    let (international, rest) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut digits = String::with_capacity(16);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '/' | '(' | ')' => {}
            _ => {
                return Err(format!(
                    "{} is not a phone number (`{c}` is neither a digit nor a separator)",
                    quote(phone)
                ));
            }
        }
    }
    let number = if international {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else {
        format!(
            "{country_code}{}",
            digits.strip_prefix('0').unwrap_or(&digits)
        )
    };
    if !(8..=15).contains(&number.len()) {
        return Err(format!(
            "{} is not a phone number (E.164 numbers have 8 to 15 digits, this has {})",
            quote(phone),
            number.len()
        ));
    }
    Ok(Value::String(format!("+{number}")))
}

/// A value as quoted in a message, cut short like the host's mapping does.
fn quote(value: &Value) -> String {
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

fn kind_of(value: &Value) -> &'static str {
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
mod tests;
