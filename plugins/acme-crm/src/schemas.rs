//! The JSON Schemas of the streams' records, for `discover`.

use serde_json::{Value, json};

/// A contact. Acme CRM refuses a contact without `email`, so a mapping into
/// this stream must write one; fields Acme sets itself are `readOnly`.
/// Tombstones of deleted contacts carry only `id`, `deleted`, `updated_at`
/// and `version` (Weir never maps or writes their data).
pub fn contact() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["id", "email", "updated_at", "version"],
        "properties": {
            "id": { "type": "string", "readOnly": true, "examples": ["c_000001"] },
            "first_name": { "type": ["string", "null"] },
            "last_name": { "type": ["string", "null"] },
            "email": { "type": "string", "format": "email" },
            "phone": { "type": ["string", "null"] },
            "title": { "type": ["string", "null"] },
            "company_id": { "type": ["string", "null"], "examples": ["co_00001"] },
            "lifecycle_stage": { "enum": ["lead", "prospect", "customer", "churned", null] },
            "score": { "type": ["integer", "null"], "minimum": 0, "maximum": 100 },
            "external_id": { "type": ["string", "null"] },
            "created_at": { "type": "string", "format": "date-time", "readOnly": true },
            "updated_at": { "type": "string", "format": "date-time", "readOnly": true },
            "version": { "type": "integer", "minimum": 1, "readOnly": true },
            "deleted": { "type": "boolean", "readOnly": true }
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
            "id": { "type": "string", "readOnly": true, "examples": ["co_00001"] },
            "name": { "type": ["string", "null"] },
            "domain": { "type": ["string", "null"] },
            "industry": { "type": ["string", "null"] },
            "employees": { "type": ["integer", "null"], "minimum": 0 },
            "country": { "type": ["string", "null"] },
            "annual_revenue": { "type": ["number", "null"], "minimum": 0 },
            "external_id": { "type": ["string", "null"] },
            "created_at": { "type": "string", "format": "date-time", "readOnly": true },
            "updated_at": { "type": "string", "format": "date-time", "readOnly": true },
            "version": { "type": "integer", "minimum": 1, "readOnly": true },
            "deleted": { "type": "boolean", "readOnly": true }
        }
    })
}
