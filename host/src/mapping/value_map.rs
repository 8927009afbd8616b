//! `"values": {...}`: one partner's codes translated into the other's
//! (`"lead"` to `"New"`), with `otherwise` or `keep_unmatched` for the rest.

use std::collections::HashMap;

use serde_json::Value;

use super::error::quote;

/// A compiled value map. Its outputs are already converted to the rule's
/// `type` when the mapping is parsed.
#[derive(Debug, Clone)]
pub(crate) struct ValueMap {
    entries: HashMap<Box<str>, Value>,
    unmatched: Unmatched,
    ignore_case: bool,
    /// The keys, listed once for error messages.
    allowed: Box<str>,
}

/// What a value no key matches becomes.
#[derive(Debug, Clone)]
pub(crate) enum Unmatched {
    /// The record fails, naming the allowed values.
    Refuse,
    /// This value is written.
    Otherwise(Value),
    /// The source value is written (converted to the rule's `type`).
    Keep,
}

/// The result of looking a value up.
pub(crate) enum Lookup<'m> {
    Mapped(&'m Value),
    Keep,
}

/// Why a value map was refused; `key` is `None` for the map as a whole.
#[derive(Debug)]
pub(crate) struct ValueMapError {
    pub(crate) key: Option<String>,
    pub(crate) reason: String,
}

impl ValueMap {
    /// Builds the map from its (already converted) entries.
    pub(crate) fn new(
        entries: Vec<(String, Value)>,
        unmatched: Unmatched,
        ignore_case: bool,
    ) -> Result<Self, ValueMapError> {
        if entries.is_empty() {
            return Err(ValueMapError {
                key: None,
                reason: "is empty: map at least one value".into(),
            });
        }
        let mut keys: Vec<&str> = entries.iter().map(|(key, _)| key.as_str()).collect();
        keys.sort_unstable();
        let allowed = list(&keys);
        let mut map = HashMap::with_capacity(entries.len());
        for (key, value) in entries {
            let folded = if ignore_case {
                key.to_lowercase()
            } else {
                key.clone()
            };
            if map.insert(folded.into_boxed_str(), value).is_some() {
                return Err(ValueMapError {
                    reason: format!("`{key}` is the same as another key when case is ignored"),
                    key: Some(key),
                });
            }
        }
        Ok(Self {
            entries: map,
            unmatched,
            ignore_case,
            allowed: allowed.into(),
        })
    }

    /// Looks a non-null value up: strings by their text, numbers and
    /// booleans by their JSON text (`1`, `true`); objects and arrays match
    /// no key.
    pub(crate) fn lookup(&self, value: &Value) -> Result<Lookup<'_>, String> {
        let found = match value {
            Value::String(text) => self.get(text),
            Value::Number(n) => self.get(&n.to_string()),
            Value::Bool(b) => self.get(if *b { "true" } else { "false" }),
            _ => None,
        };
        match (found, &self.unmatched) {
            (Some(mapped), _) => Ok(Lookup::Mapped(mapped)),
            (None, Unmatched::Otherwise(otherwise)) => Ok(Lookup::Mapped(otherwise)),
            (None, Unmatched::Keep) => Ok(Lookup::Keep),
            (None, Unmatched::Refuse) => Err(format!(
                "{} is not one of the mapped values ({})",
                quote(value),
                self.allowed
            )),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        if self.ignore_case {
            self.entries.get(key.to_lowercase().as_str())
        } else {
            self.entries.get(key)
        }
    }

    /// Every value the map may write.
    pub(crate) fn outputs(&self) -> impl Iterator<Item = &Value> {
        let otherwise = match &self.unmatched {
            Unmatched::Otherwise(value) => Some(value),
            _ => None,
        };
        self.entries.values().chain(otherwise)
    }
}

/// `` `a`, `b`, `c` `` — at most ten, then how many more.
fn list(keys: &[&str]) -> String {
    const SHOWN: usize = 10;
    let mut text = keys
        .iter()
        .take(SHOWN)
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        text += &format!(" and {} more", keys.len() - SHOWN);
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stages(unmatched: Unmatched, ignore_case: bool) -> ValueMap {
        let entries = vec![
            ("lead".to_string(), json!("New")),
            ("customer".to_string(), json!("Won")),
            ("1".to_string(), json!("One")),
            ("true".to_string(), json!("Yes")),
        ];
        ValueMap::new(entries, unmatched, ignore_case).unwrap()
    }

    fn mapped(lookup: Result<Lookup<'_>, String>) -> Option<Value> {
        match lookup {
            Ok(Lookup::Mapped(value)) => Some(value.clone()),
            _ => None,
        }
    }

    #[test]
    fn strings_numbers_and_booleans_are_looked_up_by_their_text() {
        let map = stages(Unmatched::Refuse, false);
        assert_eq!(mapped(map.lookup(&json!("lead"))), Some(json!("New")));
        assert_eq!(mapped(map.lookup(&json!(1))), Some(json!("One")));
        assert_eq!(mapped(map.lookup(&json!(true))), Some(json!("Yes")));
        assert_eq!(mapped(map.lookup(&json!("Lead"))), None);
    }

    #[test]
    fn unmatched_values_fail_listing_the_allowed_ones() {
        let map = stages(Unmatched::Refuse, false);
        assert_eq!(
            map.lookup(&json!("prospect")).err(),
            Some(
                "`prospect` is not one of the mapped values (`1`, `customer`, `lead`, `true`)"
                    .into()
            )
        );
        assert_eq!(
            map.lookup(&json!({"a": 1})).err(),
            Some(
                "`{\"a\":1}` is not one of the mapped values (`1`, `customer`, `lead`, `true`)"
                    .into()
            )
        );
    }

    #[test]
    fn otherwise_and_keep_catch_unmatched_values() {
        let map = stages(Unmatched::Otherwise(json!("Other")), false);
        assert_eq!(mapped(map.lookup(&json!("prospect"))), Some(json!("Other")));
        assert_eq!(mapped(map.lookup(&json!([1]))), Some(json!("Other")));
        let map = stages(Unmatched::Keep, false);
        assert!(matches!(map.lookup(&json!("prospect")), Ok(Lookup::Keep)));
    }

    #[test]
    fn ignore_case_folds_keys_and_values() {
        let map = stages(Unmatched::Refuse, true);
        assert_eq!(mapped(map.lookup(&json!("LEAD"))), Some(json!("New")));
        let twins = vec![
            ("Lead".to_string(), json!(1)),
            ("lead".to_string(), json!(2)),
        ];
        let error = ValueMap::new(twins, Unmatched::Refuse, true).unwrap_err();
        assert_eq!(error.key.as_deref(), Some("lead"));
        assert_eq!(
            error.reason,
            "`lead` is the same as another key when case is ignored"
        );
    }

    #[test]
    fn an_empty_map_is_refused() {
        let error = ValueMap::new(Vec::new(), Unmatched::Refuse, false).unwrap_err();
        assert_eq!(error.key, None);
        assert_eq!(error.reason, "is empty: map at least one value");
    }

    #[test]
    fn long_key_lists_are_shortened() {
        let keys: Vec<String> = (0..12).map(|i| format!("k{i:02}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        assert_eq!(
            list(&refs),
            "`k00`, `k01`, `k02`, `k03`, `k04`, `k05`, `k06`, `k07`, `k08`, `k09` and 2 more"
        );
    }
}
