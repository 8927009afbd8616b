//! The JSON Schemas of the streams' records, for `discover`.

use serde_json::{Value, json};

/// A contact, or its tombstone (`id`, `deleted`, `updated_at`, `version`).
pub fn contact() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["id", "updated_at", "version"],
        "properties": {
            "id": { "type": "string", "examples": ["c_000001"] },
            "first_name": { "type": ["string", "null"] },
            "last_name": { "type": ["string", "null"] },
            "email": { "type": "string", "format": "email" },
            "phone": { "type": ["string", "null"] },
            "title": { "type": ["string", "null"] },
            "company_id": { "type": ["string", "null"], "examples": ["co_00001"] },
            "lifecycle_stage": { "enum": ["lead", "prospect", "customer", "churned", null] },
            "score": { "type": ["integer", "null"], "minimum": 0, "maximum": 100 },
            "external_id": { "type": ["string", "null"] },
            "created_at": { "type": "string", "format": "date-time" },
            "updated_at": { "type": "string", "format": "date-time" },
            "version": { "type": "integer", "minimum": 1 },
            "deleted": { "type": "boolean" }
        }
    })
}

/// A company, or its tombstone.
pub fn company() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["id", "updated_at", "version"],
        "properties": {
            "id": { "type": "string", "examples": ["co_00001"] },
            "name": { "type": ["string", "null"] },
            "domain": { "type": ["string", "null"] },
            "industry": { "type": ["string", "null"] },
            "employees": { "type": ["integer", "null"], "minimum": 0 },
            "country": { "type": ["string", "null"] },
            "annual_revenue": { "type": ["number", "null"], "minimum": 0 },
            "external_id": { "type": ["string", "null"] },
            "created_at": { "type": "string", "format": "date-time" },
            "updated_at": { "type": "string", "format": "date-time" },
            "version": { "type": "integer", "minimum": 1 },
            "deleted": { "type": "boolean" }
        }
    })
}
