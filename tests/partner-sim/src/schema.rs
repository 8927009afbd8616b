//! What Acme CRM's resources look like: their ids, fields and validation.
//!
//! Records keep their fields positionally, in the order given here, which is
//! also the order they are serialized in.

use serde_json::{Map, Value};

/// One resource the API serves, e.g. `contacts`.
#[derive(Debug)]
pub(crate) struct Schema {
    /// Plural name used in paths: `/v1/{name}`.
    pub(crate) name: &'static str,
    /// Singular name used in webhook event types: `{singular}.created`.
    pub(crate) singular: &'static str,
    /// Position of this resource's collection in the store.
    pub(crate) slot: usize,
    id_prefix: &'static str,
    /// Zero-padding of the numeric part, so string order matches creation order.
    id_width: usize,
    /// The writable fields, in serialization order.
    pub(crate) fields: &'static [Field],
    /// Whether lists can include tombstones (`include_deleted=true`); if
    /// not, a deleted record just stops being listed, as with partners
    /// that delete some objects outright.
    pub(crate) lists_deleted: bool,
}

/// A writable field of a resource.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    kind: Kind,
}

/// What a field accepts. Every field but the required ones may be `null`.
#[derive(Debug)]
enum Kind {
    Text,
    /// A required string containing `@`.
    Email,
    /// A required non-empty string.
    Name,
    OneOf(&'static [&'static str]),
    Integer {
        min: i64,
        max: i64,
    },
    Number {
        min: f64,
    },
}

/// Why a record was refused; rendered as a 422 `validation` error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValidationError {
    pub(crate) field: &'static str,
    pub(crate) message: String,
}

/// The lifecycle stages a contact moves through.
pub(crate) const LIFECYCLE_STAGES: &[&str] = &["lead", "prospect", "customer", "churned"];

pub(crate) static CONTACTS: Schema = Schema {
    name: "contacts",
    singular: "contact",
    slot: 0,
    id_prefix: "c_",
    id_width: 6,
    lists_deleted: true,
    fields: &[
        Field {
            name: "first_name",
            kind: Kind::Text,
        },
        Field {
            name: "last_name",
            kind: Kind::Text,
        },
        Field {
            name: "email",
            kind: Kind::Email,
        },
        Field {
            name: "phone",
            kind: Kind::Text,
        },
        Field {
            name: "title",
            kind: Kind::Text,
        },
        Field {
            name: "company_id",
            kind: Kind::Text,
        },
        Field {
            name: "lifecycle_stage",
            kind: Kind::OneOf(LIFECYCLE_STAGES),
        },
        Field {
            name: "score",
            kind: Kind::Integer { min: 0, max: 100 },
        },
        Field {
            name: "external_id",
            kind: Kind::Text,
        },
    ],
};

pub(crate) static COMPANIES: Schema = Schema {
    name: "companies",
    singular: "company",
    slot: 1,
    id_prefix: "co_",
    id_width: 5,
    lists_deleted: false,
    fields: &[
        Field {
            name: "name",
            kind: Kind::Name,
        },
        Field {
            name: "domain",
            kind: Kind::Text,
        },
        Field {
            name: "industry",
            kind: Kind::Text,
        },
        Field {
            name: "employees",
            kind: Kind::Integer {
                min: 0,
                max: i64::MAX,
            },
        },
        Field {
            name: "country",
            kind: Kind::Text,
        },
        Field {
            name: "annual_revenue",
            kind: Kind::Number { min: 0.0 },
        },
        Field {
            name: "external_id",
            kind: Kind::Text,
        },
    ],
};

/// Every resource, in store slot order.
pub(crate) static ALL: [&Schema; 2] = [&CONTACTS, &COMPANIES];

/// Fields a client may send but the sim assigns itself.
const ASSIGNED: &[&str] = &["id", "version", "created_at", "updated_at", "deleted"];

/// Finds a resource by its plural name.
pub(crate) fn lookup(name: &str) -> Option<&'static Schema> {
    ALL.iter().copied().find(|s| s.name == name)
}

/// The names of all resources, for error messages.
pub(crate) fn names() -> String {
    ALL.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

impl Schema {
    /// The id of the record at `index` (0-based): index 0 of contacts is `c_000001`.
    pub(crate) fn format_id(&self, index: u32) -> String {
        format!(
            "{}{:0width$}",
            self.id_prefix,
            u64::from(index) + 1,
            width = self.id_width
        )
    }

    /// The index of the record called `id`, if `id` is one of this resource's ids.
    pub(crate) fn parse_id(&self, id: &str) -> Option<u32> {
        let digits = id.strip_prefix(self.id_prefix)?;
        if digits.len() < self.id_width || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u32>().ok()?.checked_sub(1)
    }

    /// Where `name` sits in a record's values.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// Sets the known fields of `patch` on `values`; unknown and sim-assigned
    /// fields are ignored, as the API promises.
    pub(crate) fn merge(&self, values: &mut [Value], patch: &Map<String, Value>) {
        for (name, value) in patch {
            if ASSIGNED.contains(&name.as_str()) {
                continue;
            }
            if let Some(i) = self.position(name) {
                values[i] = value.clone();
            }
        }
    }

    /// Checks a whole record, reporting the first offending field.
    pub(crate) fn validate(&self, values: &[Value]) -> Result<(), ValidationError> {
        for (field, value) in self.fields.iter().zip(values) {
            field.check(value)?;
        }
        Ok(())
    }
}

impl Field {
    fn check(&self, value: &Value) -> Result<(), ValidationError> {
        let fail = |message: String| {
            Err(ValidationError {
                field: self.name,
                message,
            })
        };
        let name = self.name;
        match (&self.kind, value) {
            (Kind::Email, Value::String(s)) if s.contains('@') => Ok(()),
            (Kind::Email, _) => fail(format!("{name} must contain @")),
            (Kind::Name, Value::String(s)) if !s.trim().is_empty() => Ok(()),
            (Kind::Name, _) => fail(format!("{name} must be a non-empty string")),
            (_, Value::Null) => Ok(()),
            (Kind::Text, Value::String(_)) => Ok(()),
            (Kind::Text, _) => fail(format!("{name} must be a string or null")),
            (Kind::OneOf(options), Value::String(s)) if options.contains(&s.as_str()) => Ok(()),
            (Kind::OneOf(options), _) => {
                fail(format!("{name} must be one of {}", options.join(", ")))
            }
            (Kind::Integer { min, max }, Value::Number(n))
                if n.as_i64().is_some_and(|n| (*min..=*max).contains(&n)) =>
            {
                Ok(())
            }
            (Kind::Integer { min, max: i64::MAX }, _) => {
                fail(format!("{name} must be an integer of at least {min}"))
            }
            (Kind::Integer { min, max }, _) => {
                fail(format!("{name} must be an integer from {min} to {max}"))
            }
            (Kind::Number { min }, Value::Number(n)) if n.as_f64().is_some_and(|n| n >= *min) => {
                Ok(())
            }
            (Kind::Number { min }, _) => fail(format!("{name} must be a number of at least {min}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_zero_padded_and_round_trip() {
        assert_eq!(CONTACTS.format_id(0), "c_000001");
        assert_eq!(COMPANIES.format_id(41), "co_00042");
        assert_eq!(CONTACTS.parse_id("c_000042"), Some(41));
        assert_eq!(CONTACTS.parse_id("co_00042"), None);
        assert_eq!(CONTACTS.parse_id("c_42"), None);
        assert_eq!(CONTACTS.parse_id("c_000000"), None);
        assert!(CONTACTS.format_id(0) < CONTACTS.format_id(9));
    }

    fn contact(patch: Value) -> Vec<Value> {
        let mut values = vec![Value::Null; CONTACTS.fields.len()];
        CONTACTS.merge(&mut values, patch.as_object().unwrap());
        values
    }

    #[test]
    fn contacts_need_an_email_with_an_at_sign() {
        let err = CONTACTS
            .validate(&contact(json!({"email": "nobody"})))
            .unwrap_err();
        assert_eq!(err.field, "email");
        assert_eq!(err.message, "email must contain @");
        assert!(CONTACTS.validate(&contact(json!({}))).is_err());
        assert!(
            CONTACTS
                .validate(&contact(json!({"email": "a@b.example"})))
                .is_ok()
        );
    }

    #[test]
    fn typed_fields_are_checked() {
        let bad_score = contact(json!({"email": "a@b", "score": 101}));
        assert_eq!(CONTACTS.validate(&bad_score).unwrap_err().field, "score");
        let bad_stage = contact(json!({"email": "a@b", "lifecycle_stage": "vip"}));
        assert_eq!(
            CONTACTS.validate(&bad_stage).unwrap_err().field,
            "lifecycle_stage"
        );
        let bad_title = contact(json!({"email": "a@b", "title": 7}));
        assert_eq!(CONTACTS.validate(&bad_title).unwrap_err().field, "title");
    }

    #[test]
    fn assigned_and_unknown_fields_are_ignored() {
        let values =
            contact(json!({"email": "a@b", "id": "c_999999", "version": 9, "shoe_size": 44}));
        assert_eq!(values[CONTACTS.position("email").unwrap()], json!("a@b"));
        assert!(values.iter().filter(|v| !v.is_null()).count() == 1);
    }
}
