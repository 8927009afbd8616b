//! Whole mappings on whole records: the documented example, the `unmapped`
//! modes, odd inputs, and a throughput check to run by hand.

use serde_json::{Value, json};

use super::*;

fn mapping(document: Value) -> Mapping {
    Mapping::parse(&document).unwrap()
}

#[test]
fn the_documented_example_maps_as_documented() {
    let mapping = mapping(json!({
      "fields": [
        { "to": "/email", "from": "/email", "required": true },
        { "to": "/name", "concat": ["/first_name", "/last_name"], "separator": " " },
        { "to": "/first", "split": { "from": "/full_name", "separator": " ", "index": 0 } },
        { "to": "/stage", "from": "/lifecycle_stage",
          "values": { "lead": "New", "customer": "Won" }, "otherwise": "Other" },
        { "to": "/score", "from": "/score", "type": "string" },
        { "to": "/created", "from": "/created_at", "type": "date",
          "format": "%Y-%m-%d", "timezone": "Europe/Paris" },
        { "to": "/address/country", "from": "/country", "default": "US" },
        { "to": "/primary_email", "from": "/emails/0/address" },
        { "to": "/source", "const": "acme" }
      ],
      "unmapped": { "into": "/custom_fields" },
      "drop": ["/internal_notes"]
    }));
    let record = json!({ "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
      "full_name": "Ada King Lovelace", "lifecycle_stage": "lead", "score": 42,
      "created_at": "2025-01-31T23:30:00Z", "emails": [{ "address": "ada@work.example" }],
      "shoe_size": 38, "internal_notes": "vip" });
    assert_eq!(
        mapping.apply(&record),
        Ok(
            json!({ "email": "ada@example.com", "name": "Ada Lovelace", "first": "Ada", "stage": "New",
          "score": "42", "created": "2025-02-01", "address": { "country": "US" },
          "primary_email": "ada@work.example", "source": "acme",
          "custom_fields": { "shoe_size": 38 } })
        )
    );
}

#[test]
fn the_identity_returns_records_untouched() {
    let identity = Mapping::identity();
    assert!(identity.is_identity());
    assert_eq!(identity.apply(&json!([1, 2])), Ok(json!([1, 2])));
    // Not even read: the text comes back byte for byte, valid or not.
    for text in [r#"{ "b":1,  "a":2 }"#, "not json {"] {
        assert_eq!(identity.apply_text(text).as_deref(), Ok(text));
    }
    assert!(mapping(json!({ "unmapped": "keep" })).is_identity());
    assert!(mapping(json!({ "fields": [], "unmapped": { "into": "" } })).is_identity());
    assert!(!mapping(json!({ "unmapped": "keep", "drop": ["/a"] })).is_identity());
    assert!(!mapping(json!({})).is_identity());
    assert_eq!(
        Mapping::default().document(),
        Mapping::identity().document()
    );
}

#[test]
fn unmapped_drop_keeps_only_what_rules_write() {
    let mapping = mapping(json!({ "fields": [{ "to": "/mail", "from": "/email" }] }));
    assert_eq!(
        mapping.apply(&json!({ "email": "a@b", "phone": "1" })),
        Ok(json!({ "mail": "a@b" }))
    );
}

#[test]
fn unmapped_keep_copies_unread_fields_in_place_and_rules_win() {
    let mapping = mapping(json!({
        "fields": [
            { "to": "/mail", "from": "/email" },
            { "to": "/phone", "from": "/mobile" },
            { "to": "/address/country", "from": "/country" },
        ],
        "unmapped": "keep",
        "drop": ["/secret", "/address/notes"],
    }));
    let record = json!({
        "email": "a@b", "mobile": "2", "phone": "1", "country": "FR", "secret": "x",
        "address": { "city": "Paris", "notes": "gate code", "country": "ignored" },
    });
    assert_eq!(
        mapping.apply(&record),
        Ok(json!({ "mail": "a@b", "phone": "2", "address": { "city": "Paris", "country": "FR" } }))
    );
}

#[test]
fn unmapped_into_gathers_unread_fields_into_one_object() {
    let mapping = mapping(json!({
        "fields": [
            { "to": "/properties/email", "from": "/email" },
            { "to": "/id", "from": "/id" },
        ],
        "unmapped": { "into": "/properties" },
    }));
    assert_eq!(
        mapping.apply(&json!({ "id": 7, "email": "a@b", "shoe_size": 38, "pets": { "cats": 2 } })),
        Ok(
            json!({ "id": 7, "properties": { "email": "a@b", "shoe_size": 38, "pets": { "cats": 2 } } })
        )
    );
    let custom = self::mapping(
        json!({ "fields": [{ "to": "/id", "from": "/id" }], "unmapped": { "into": "/custom" } }),
    );
    assert_eq!(
        custom.apply(&json!({ "id": 7 })),
        Ok(json!({ "id": 7, "custom": {} }))
    );
}

#[test]
fn records_that_are_not_objects_are_refused_whole() {
    let mapping = mapping(json!({ "fields": [{ "to": "/a", "from": "/0" }] }));
    let error = mapping.apply(&json!(["x"])).unwrap_err();
    assert_eq!(
        (error.target.as_str(), error.source, error.reason.as_str()),
        ("", None, "is an array, not a JSON object")
    );
    let error = mapping.apply_text("{\"a\": ").unwrap_err();
    assert!(
        error.reason.starts_with("is not valid JSON: "),
        "{}",
        error.reason
    );
    assert_eq!(
        mapping.apply_text(r#"{"0": "x"}"#).as_deref(),
        Ok(r#"{"a":"x"}"#)
    );
}

#[test]
fn mappings_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Mapping>();
}

#[test]
fn the_document_is_kept_as_saved() {
    let document = json!({ "fields": [{ "to": "/a", "from": "/b" }], "unmapped": "drop" });
    assert_eq!(mapping(document.clone()).document(), &document);
}

#[test]
fn errors_serialize_for_the_admin_api_and_dead_letters() {
    let error = Mapping::parse(&json!({ "fields": [{ "to": "/a", "from": "/a", "type": "int" }] }))
        .unwrap_err();
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({
            "path": "fields[0].type",
            "reason": "`int` is not a type: use `string`, `number`, `integer`, `boolean`, `date` or `datetime`",
            "hint": "did you mean `integer`?",
        })
    );
    let mapping = mapping(json!({ "fields": [{ "to": "/n", "from": "/n", "type": "number" }] }));
    let error = mapping.apply(&json!({ "n": "x" })).unwrap_err();
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({ "target": "/n", "source": "/n", "reason": "`x` is not a number" })
    );
}

/// Every operation, on records that are odd in every way we could think
/// of: the mapping may refuse them, but never panic.
#[test]
fn odd_records_never_panic() {
    let mut mappings: Vec<Mapping> = [
        json!({ "fields": [{ "to": "/a", "from": "/a" }, { "to": "/b/c", "from": "/b/0/c" }], "unmapped": "keep", "drop": ["/d"] }),
        json!({ "fields": [{ "to": "/a", "from": "/a", "required": true }], "unmapped": { "into": "/x" } }),
        json!({ "fields": [{ "to": "/a", "from": "", "default": 1 }] }),
        json!({ "fields": [{ "to": "/a", "concat": ["/a", "/b", "/a/0"], "separator": "-" }] }),
        json!({ "fields": [{ "to": "/a", "concat": ["/a", "/b"], "skip_empty": false }] }),
        json!({ "fields": [{ "to": "/a", "split": { "from": "/a", "separator": ",", "index": -1, "limit": 3 } }] }),
        json!({ "fields": [{ "to": "/a", "split": { "from": "/a", "separator": ",", "index": 9_007_199_254_740_993_i64 } }] }),
        json!({ "fields": [{ "to": "/a", "split": { "from": "/a", "separator": ",", "index": i64::MIN } }] }),
        json!({ "fields": [{ "to": "/a", "from": "/a", "values": { "1": 2 }, "keep_unmatched": true, "type": "integer" }] }),
        json!({ "fields": [{ "to": "/a", "from": "/a", "values": { "x": "y" }, "ignore_case": true }] }),
        json!({ "fields": [{ "to": "/a", "from": "/a", "type": "date", "timezone": "Asia/Kolkata" }] }),
        json!({ "fields": [{ "to": "/a", "from": "/a", "type": "datetime", "format": "%A %Q %s", "timezone": "America/New_York" }] }),
        json!({ "fields": [{ "to": "/a", "from": "/a", "type": "datetime", "input_format": "%d/%m/%Y %H:%M %z" }] }),
        json!({ "fields": [{ "to": "/a", "from": "/a", "type": "date", "input_format": "unix_seconds" }] }),
        json!({ "fields": [{ "to": "/a", "from": "/a", "type": "datetime", "input_format": "unix_millis" }] }),
        json!({ "fields": [{ "to": "/a", "const": { "deep": [null] } }] }),
    ]
    .into_iter()
    .map(mapping)
    .collect();
    for scalar in ["string", "number", "integer", "boolean"] {
        mappings.push(mapping(
            json!({ "fields": [{ "to": "/a", "from": "/a", "type": scalar }] }),
        ));
    }
    let values = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.7976931348623157e308),
        json!(-4.9e-324),
        json!(""),
        json!(" "),
        json!("9999-12-31T23:59:59.999999999-25:59"),
        json!("-009999-01-01"),
        json!("2024-02-29T24:00:00Z"),
        json!("1e400"),
        json!("é🦀\u{0}\u{202e}"),
        json!("a,b,,c"),
        json!([]),
        json!([[[[null]]]]),
        json!({}),
        json!({ "0": { "c": [1] } }),
        json!("x".repeat(10_000)),
    ];
    let mut records: Vec<Value> = values
        .iter()
        .map(|value| json!({ "a": value, "b": value, "d": value }))
        .collect();
    records.extend(values.iter().cloned());
    records.push(json!({ "b": [{ "c": { "d": [] } }] }));
    for mapping in &mappings {
        for record in &records {
            let _ = mapping.apply(record);
            let _ = mapping.apply_text(&record.to_string());
        }
        for text in [
            "",
            "{",
            "[",
            "nul",
            "{\"a\": 1e999}",
            "{\"a\": \"\\ud800\"}",
        ] {
            let _ = mapping.apply_text(text);
        }
    }
}

/// The partner simulator's contact shape, through a typical ten-rule
/// mapping (`tests/support/contact-mapping.json`), as text in and text out
/// (what a flow does). `plugins/contact-mapper` writes out the same mapping
/// by hand, and `tests/benches/mapping.rs` compares the two in a flow's
/// mapping stage. Run by hand:
/// `cargo test -p weir-host --release --lib mapping::tests::throughput -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, run by hand in release mode"]
fn throughput() {
    let mapping = mapping(
        serde_json::from_str(include_str!("../../../tests/support/contact-mapping.json")).unwrap(),
    );
    let stages = ["lead", "prospect", "customer", "churned"];
    let records: Vec<String> = (0..100_000)
        .map(|i| {
            json!({
                "id": format!("c_{i:06}"),
                "first_name": "Ada",
                "last_name": format!("Lovelace{i}"),
                "email": format!("ada.lovelace{i}@example.com"),
                "phone": "+1 555 0100",
                "title": "Engineer",
                "company_id": format!("co_{:05}", i % 2000),
                "lifecycle_stage": stages[i % 4],
                "score": i % 101,
                "external_id": null,
                "created_at": "2025-01-31T23:30:00Z",
                "updated_at": "2025-02-01T08:00:00Z",
                "version": i,
            })
            .to_string()
        })
        .collect();
    // What any JSON-to-JSON step pays, mapping or not: the floor.
    let started = std::time::Instant::now();
    for record in &records {
        let parsed: Value = serde_json::from_str(record).unwrap();
        std::hint::black_box(parsed.to_string());
    }
    let elapsed = started.elapsed();
    println!(
        "parse + serialize alone: {:.0} records/s",
        records.len() as f64 / elapsed.as_secs_f64()
    );
    for (label, mapping) in [
        ("10-rule mapping", &mapping),
        ("identity", &Mapping::identity()),
    ] {
        let started = std::time::Instant::now();
        let mut bytes = 0;
        for record in &records {
            bytes += mapping.apply_text(record).unwrap().len();
        }
        let elapsed = started.elapsed();
        println!(
            "{label}: {} records in {elapsed:?}: {:.0} records/s ({bytes} bytes out)",
            records.len(),
            records.len() as f64 / elapsed.as_secs_f64()
        );
    }
}
