//! The transform on its own, natively: `cargo test -p contact-mapper`.

use serde_json::{Value, json};
use weir_sdk::Transform;

use super::{Config, ContactMapper};

fn config(json: Value) -> Config {
    serde_json::from_value(json).unwrap()
}

fn contact() -> Value {
    json!({
        "id": "c_000001", "first_name": "Ada", "last_name": "Lovelace",
        "email": "ada.lovelace1@example.com", "phone": "+1-555-010-0123", "title": "CTO",
        "company_id": "co_00001", "lifecycle_stage": "prospect", "score": 42, "external_id": null,
        "created_at": "2025-01-31T23:30:00Z", "updated_at": "2025-02-01T08:00:00Z", "version": 3
    })
}

fn map(config: &Config, record: Value) -> Result<Value, String> {
    ContactMapper::transform(config, record)
        .map(|out| out.expect("never drops"))
        .map_err(|error| error.message().to_owned())
}

#[test]
fn a_contact_is_reshaped_like_the_ten_rule_mapping() {
    assert_eq!(
        map(&config(json!({})), contact()),
        Ok(json!({
            "externalId": "c_000001",
            "properties": {
                "email": "ada.lovelace1@example.com", "name": "Ada Lovelace",
                "phone": "+1-555-010-0123", "jobtitle": "CTO", "company": "co_00001",
                "stage": "Open", "score": "42", "created": "2025-02-01"
            },
            "source": "acme"
        }))
    );
}

#[test]
fn missing_fields_write_nothing_and_nulls_write_null() {
    let record = json!({ "id": "c_1", "email": "a@b", "first_name": null, "last_name": "",
        "lifecycle_stage": null, "score": null, "created_at": "" });
    assert_eq!(
        map(&config(json!({ "source": "crm" })), record),
        Ok(json!({
            "externalId": "c_1",
            "properties": { "email": "a@b", "name": "", "stage": null, "score": null, "created": null },
            "source": "crm"
        }))
    );
}

#[test]
fn records_that_break_a_rule_fail_with_the_mapping_s_reason() {
    let config = config(json!({}));
    let mut no_email = contact();
    no_email.as_object_mut().unwrap().remove("email");
    assert_eq!(
        map(&config, no_email),
        Err("/properties/email (from /email): is required, but the record has no value".into())
    );
    let mut stage = contact();
    stage["lifecycle_stage"] = json!("partner");
    assert_eq!(
        map(&config, stage),
        Err("/properties/stage (from /lifecycle_stage): `partner` is not one of the mapped values (`churned`, `customer`, `lead`, `prospect`)".into())
    );
    let mut date = contact();
    date["created_at"] = json!("31/01/2025");
    assert_eq!(
        map(&config, date),
        Err("/properties/created (from /created_at): `31/01/2025` is not a date (expected RFC 3339)".into())
    );
    assert_eq!(
        map(&config, json!([1])),
        Err("record: is an array, not a JSON object".into())
    );
}

#[test]
fn dates_are_days_in_the_configured_zone() {
    let day = |zone: &str, created: &str| {
        let mut record = contact();
        record["created_at"] = json!(created);
        map(&config(json!({ "timezone": zone })), record)
            .map(|out| out["properties"]["created"].clone())
    };
    assert_eq!(
        day("Europe/Paris", "2025-07-31T22:30:00Z"),
        Ok(json!("2025-08-01"))
    );
    assert_eq!(
        day("America/New_York", "2025-01-31T03:00:00Z"),
        Ok(json!("2025-01-30"))
    );
    assert_eq!(
        day("America/New_York", "2025-01-31"),
        Ok(json!("2025-01-31")),
        "days never shift"
    );
    assert_eq!(
        day("Asia/Tokyo", "2025-01-31T23:30:00"),
        Ok(json!("2025-01-31")),
        "naive: read in the zone"
    );
    let error =
        serde_json::from_value::<Config>(json!({ "timezone": "Mars/Olympus" })).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`Mars/Olympus` is not a known time zone"),
        "{error}"
    );
}

#[test]
fn phones_become_e164_when_a_country_code_is_configured() {
    let config = config(json!({ "phone_country_code": "33" }));
    let phone = |text: &str| {
        let mut record = contact();
        record["phone"] = json!(text);
        map(&config, record).map(|out| out["properties"]["phone"].clone())
    };
    assert_eq!(phone("+1-555-010-0123"), Ok(json!("+15550100123")));
    assert_eq!(phone("(+1) 555.010.0123"), Err("/properties/phone (from /phone): `(+1) 555.010.0123` is not a phone number (`+` is neither a digit nor a separator)".into()));
    assert_eq!(phone("06 12 34 56 78"), Ok(json!("+33612345678")));
    assert_eq!(phone("0044 20 7946 0958"), Ok(json!("+442079460958")));
    assert_eq!(phone(" "), Ok(Value::Null));
    assert_eq!(
        phone("555-0100 ext 12"),
        Err("/properties/phone (from /phone): `555-0100 ext 12` is not a phone number (`e` is neither a digit nor a separator)".into())
    );
    assert_eq!(
        phone("12"),
        Err("/properties/phone (from /phone): `12` is not a phone number (E.164 numbers have 8 to 15 digits, this has 4)".into())
    );
}

#[test]
fn unknown_config_keys_are_refused() {
    let error = serde_json::from_value::<Config>(json!({ "time_zone": "UTC" })).unwrap_err();
    assert!(
        error.to_string().contains("unknown field `time_zone`"),
        "{error}"
    );
}
