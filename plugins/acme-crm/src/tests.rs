//! The connector's logic, run natively against a mock host: which requests
//! it sends and what it makes of the answers.

use std::cell::RefCell;
use std::rc::Rc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use weir_sdk::http::{Method, Response};
use weir_sdk::testing::{Installed, MockHost};

use super::*;

fn config(json: &str) -> AcmeConfig {
    serde_json::from_str(json).unwrap()
}

fn sim() -> AcmeConfig {
    config(r#"{"base_url":"http://127.0.0.1:4010"}"#)
}

/// Answers requests in order with `responses`.
fn partner(responses: Vec<Response>) -> Installed {
    let responses = Rc::new(RefCell::new(responses.into_iter()));
    MockHost::new()
        .on_http(move |_| {
            Ok(responses
                .borrow_mut()
                .next()
                .expect("an unexpected request"))
        })
        .install()
}

const PAGE: &str = r#"{"data":[
    {"id":"c_000001","email":"ada@example.com","updated_at":"2024-01-01T00:00:00.000001Z","version":3},
    {"id":"c_000002","deleted":true,"updated_at":"2024-01-01T00:00:00.000002Z","version":5}
],"next_cursor":"MTcw","has_more":true}"#;

#[test]
fn a_first_read_starts_at_start_date_and_returns_the_partner_text() {
    let host = partner(vec![Response::new(200).with_body(PAGE)]);
    let config =
        config(r#"{"base_url":"http://127.0.0.1:4010/","start_date":"2024-01-01T00:00:00Z"}"#);

    let page = AcmeCrm::read(&config, ReadRequest::new("contacts", 500)).unwrap();

    let sent = &host.requests()[0];
    assert_eq!(
        sent.url(),
        "http://127.0.0.1:4010/v1/contacts?limit=500&include_deleted=true&updated_since=2024-01-01T00%3A00%3A00Z"
    );
    assert_eq!(sent.secret_headers()[0].name, "x-api-key");
    assert_eq!(sent.secret_headers()[0].secret, "api_key");
    assert_eq!(page.records.len(), 2);
    assert_eq!(page.records[0].key, "c_000001");
    assert_eq!(page.records[0].version, Some(3));
    assert_eq!(
        page.records[0].data,
        r#"{"id":"c_000001","email":"ada@example.com","updated_at":"2024-01-01T00:00:00.000001Z","version":3}"#
    );
    assert_eq!(page.records[1].kind, ChangeKind::Delete);
    assert_eq!(
        page.checkpoint,
        Checkpoint::from_json(1, r#"{"cursor":"MTcw"}"#)
    );
    assert!(page.has_more);
}

#[test]
fn a_later_read_resumes_from_the_cursor_and_keeps_it_when_nothing_changed() {
    let host =
        partner(vec![Response::new(200).with_body(
            r#"{"data":[],"next_cursor":null,"has_more":false}"#,
        )]);
    let request = ReadRequest::new("companies", 5000)
        .with_checkpoint(Checkpoint::from_json(1, r#"{"cursor":"MTcw"}"#));

    let page = AcmeCrm::read(&sim(), request).unwrap();

    assert_eq!(
        host.requests()[0].url(),
        "http://127.0.0.1:4010/v1/companies?limit=1000&cursor=MTcw"
    );
    assert!(page.records.is_empty());
    assert_eq!(page.checkpoint.state, r#"{"cursor":"MTcw"}"#);
    assert!(!page.has_more);
}

#[test]
fn a_checkpoint_that_does_not_decode_stops_the_read_without_a_request() {
    let host = partner(vec![]);
    let request = ReadRequest::new("contacts", 10)
        .with_checkpoint(Checkpoint::from_json(1, r#"{"cursor":42}"#));
    let error = AcmeCrm::read(&sim(), request).unwrap_err();
    assert!(matches!(&error, Error::Permanent(_)), "{error:?}");
    assert!(
        error
            .message()
            .starts_with("stream `contacts` has a checkpoint of format 1 that this connector cannot read (invalid type: integer `42`"),
        "{error}"
    );
    assert!(
        error.message().contains("`weir state reset <flow>`"),
        "{error}"
    );
    assert!(host.requests().is_empty());
}

#[test]
fn unknown_streams_are_refused_without_a_request() {
    let host = partner(vec![]);
    let error = AcmeCrm::read(&sim(), ReadRequest::new("deals", 10)).unwrap_err();
    assert_eq!(
        error,
        Error::permanent(
            "unknown stream `deals`; this connector's streams are `contacts`, `companies`"
        )
    );
    assert!(host.requests().is_empty());
}

#[test]
fn a_rate_limited_read_waits_as_the_partner_says() {
    let _host = partner(vec![
        Response::new(429)
            .with_header("retry-after", "2")
            .with_body(r#"{"error":{"code":"rate_limited","message":"slow down"}}"#),
    ]);
    let error = AcmeCrm::read(&sim(), ReadRequest::new("contacts", 10)).unwrap_err();
    assert_eq!(
        error,
        Error::RateLimited {
            retry_after_ms: 2000,
            message: "GET /v1/contacts returned 429 Too Many Requests: slow down".into()
        }
    );
}

#[test]
fn check_names_the_secret_when_the_key_is_refused() {
    let _host = partner(vec![Response::new(401).with_body(
        r#"{"error":{"code":"unauthorized","message":"missing `X-Api-Key` header"}}"#,
    )]);
    assert_eq!(
        AcmeCrm::check(&sim()),
        Err(Error::auth(
            "the partner refused api_key: check secret `api_key` of this connection"
        ))
    );
}

#[test]
fn writes_report_each_object_and_refused_ones_alone() {
    let host = partner(vec![
        Response::new(201).with_body(r#"{"id":"c_000101","email":"new@example.com","version":1}"#),
        Response::new(422).with_body(
            r#"{"error":{"code":"validation","message":"email must contain @","field":"email"}}"#,
        ),
        Response::new(404),
    ]);
    let requests = vec![
        WriteRequest::create(
            r#"{"email":"new@example.com","external_id":"mine"}"#,
            "run-1/a",
        ),
        WriteRequest::update("c_000007", r#"{"email":"nobody"}"#, "run-1/b"),
        WriteRequest::delete("c_000009", "run-1/c"),
    ];

    let results = AcmeCrm::write(&sim(), "contacts", requests).unwrap();

    assert_eq!(results[0], Ok(Written::new("c_000101").with_version(1)));
    assert_eq!(
        results[1],
        Err(Error::permanent(
            "PATCH /v1/contacts/c_000007 returned 422 Unprocessable Content: email must contain @"
        ))
    );
    assert_eq!(results[2], Ok(Written::new("c_000009")));

    let sent = host.requests();
    assert_eq!(
        (sent[0].method(), sent[0].url()),
        (Method::Post, "http://127.0.0.1:4010/v1/contacts")
    );
    assert_eq!(sent[0].get_idempotency_key(), Some("run-1/a"));
    let body: Value = serde_json::from_slice(sent[0].get_body().unwrap()).unwrap();
    assert_eq!(
        body["external_id"], "run-1/a",
        "the key is stored for lookups"
    );
    assert_eq!(sent[1].get_body(), Some(&br#"{"email":"nobody"}"#[..]));
    assert_eq!(sent[2].method(), Method::Delete);
}

#[test]
fn a_refused_key_fails_the_whole_batch() {
    let _host = partner(vec![Response::new(401)]);
    let requests = vec![
        WriteRequest::create(r#"{"email":"a@b"}"#, "k1"),
        WriteRequest::create("{}", "k2"),
    ];
    assert!(matches!(
        AcmeCrm::write(&sim(), "contacts", requests),
        Err(Error::Auth(_))
    ));
}

#[test]
fn companies_are_read_only() {
    let error = AcmeCrm::write(&sim(), "companies", vec![]).unwrap_err();
    assert_eq!(error, Error::permanent("stream `companies` is read-only"));
}

#[test]
fn lookup_finds_a_contact_by_the_idempotency_key() {
    let host = partner(vec![
        Response::new(200).with_body(
            r#"{"data":[{"id":"c_000101","version":2}],"next_cursor":null,"has_more":false}"#,
        ),
        Response::new(200).with_body(r#"{"data":[],"next_cursor":null,"has_more":false}"#),
    ]);
    assert_eq!(
        AcmeCrm::lookup(&sim(), "contacts", "run-1/a"),
        Ok(Some(Written::new("c_000101").with_version(2)))
    );
    assert_eq!(AcmeCrm::lookup(&sim(), "contacts", "run-1/z"), Ok(None));
    assert_eq!(
        host.requests()[0].url(),
        "http://127.0.0.1:4010/v1/contacts?external_id=run-1%2Fa&limit=1"
    );
}

#[test]
fn fetch_turns_missing_objects_into_deletes() {
    let _host = partner(vec![
        Response::new(200).with_body(r#"{"id":"c_000001","version":4}"#),
        Response::new(404).with_body(r#"{"error":{"code":"not_found","message":"no contact"}}"#),
    ]);
    let records = AcmeCrm::fetch(
        &sim(),
        "contacts",
        vec!["c_000001".into(), "c_000002".into()],
    )
    .unwrap();
    assert_eq!(
        records[0],
        Record::upsert("c_000001", r#"{"id":"c_000001","version":4}"#).with_version(4)
    );
    assert_eq!(records[1], Record::delete("c_000002"));
}

fn sign(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// A host whose secret `webhook_secret` is `secret`.
fn host_with_secret(secret: &'static [u8]) -> Installed {
    MockHost::new()
        .on_verify_hmac(move |name, message, signature| {
            assert_eq!(name, "webhook_secret");
            Ok(sign(secret, message) == signature)
        })
        .install()
}

const EVENT: &str = r#"{"type":"contact.deleted","timestamp":"2024-01-01T00:00:00.000002Z","data":{"id":"c_000002","deleted":true,"updated_at":"2024-01-01T00:00:00.000002Z","version":5}}"#;

fn delivery(secret: &[u8]) -> IncomingRequest {
    let signature = sign(secret, format!("msg_7.1700000000.{EVENT}").as_bytes());
    IncomingRequest::post(EVENT)
        .with_header("webhook-id", "msg_7")
        .with_header("webhook-timestamp", "1700000000")
        .with_header(
            "webhook-signature",
            format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(signature)
            ),
        )
        .received_at_ms(1_700_000_001_000)
}

#[test]
fn a_subscription_handshake_gets_its_decoded_token_back() {
    let handshake = IncomingRequest::post("").with_query("validationToken=Validation%3A+Testing");
    let verdict = AcmeCrm::verify_webhook(&sim(), &handshake).unwrap();
    assert_eq!(
        verdict,
        WebhookVerdict::Handshake(
            weir_sdk::Reply::new(200)
                .with_header("content-type", "text/plain")
                .with_body("Validation: Testing")
        )
    );
}

#[test]
fn an_empty_validation_token_is_no_handshake() {
    let _host = host_with_secret(b"whsec-test");
    let request = delivery(b"whsec-test").with_query("validationToken=");
    assert_eq!(
        AcmeCrm::verify_webhook(&sim(), &request),
        Ok(WebhookVerdict::accept("msg_7"))
    );
}

#[test]
fn signed_deliveries_are_accepted_by_their_webhook_id() {
    let _host = host_with_secret(b"whsec-test");
    assert_eq!(
        AcmeCrm::verify_webhook(&sim(), &delivery(b"whsec-test")),
        Ok(WebhookVerdict::accept("msg_7"))
    );
}

#[test]
fn forged_deliveries_are_rejected() {
    let _host = host_with_secret(b"whsec-test");
    let verdict = AcmeCrm::verify_webhook(&sim(), &delivery(b"guessed")).unwrap();
    assert!(matches!(
        verdict,
        WebhookVerdict::Reject {
            reason: weir_sdk::RejectionReason::BadSignature,
            ..
        }
    ));
}

#[test]
fn webhook_events_become_change_notices() {
    let notices = AcmeCrm::handle_webhook(&sim(), &IncomingRequest::post(EVENT)).unwrap();
    assert_eq!(
        notices,
        [ChangeNotice {
            stream: "contacts".into(),
            key: "c_000002".into(),
            kind: ChangeKind::Delete,
            version: Some(5),
            data: Some(r#"{"id":"c_000002","deleted":true,"updated_at":"2024-01-01T00:00:00.000002Z","version":5}"#.into()),
        }]
    );
    let company =
        r#"{"type":"company.updated","timestamp":"x","data":{"id":"co_00001","version":2}}"#;
    let _host = MockHost::new().install();
    assert_eq!(
        AcmeCrm::handle_webhook(&sim(), &IncomingRequest::post(company)),
        Ok(vec![])
    );
}

#[test]
fn the_spec_declares_what_the_connector_uses() {
    let spec = AcmeCrm::spec();
    assert_eq!(spec.name, "acme-crm");
    assert_eq!(spec.hosts, ["config:/base_url"]);
    let secrets: Vec<_> = spec.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(secrets, ["api_key", "webhook_secret"]);
    assert_eq!(spec.streams[0].idempotency, IdempotencyStyle::Key);
    assert_eq!(spec.streams[1].idempotency, IdempotencyStyle::NotWritable);
}

#[test]
fn discover_describes_the_streams_of_the_spec() {
    let declared: Vec<_> = AcmeCrm::spec()
        .streams
        .into_iter()
        .map(|s| s.name)
        .collect();
    let discovered = AcmeCrm::discover(&sim()).unwrap();
    let names: Vec<_> = discovered.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, declared);
    assert_eq!(names, ["contacts", "companies"]);
    for schema in &discovered {
        assert_eq!(schema.primary_key, ["/id"]);
        assert_eq!(schema.cursor_field.as_deref(), Some("/updated_at"));
    }
    assert!(discovered[0].json_schema.contains(r#""email""#));
    assert!(discovered[1].json_schema.contains(r#""domain""#));
}
