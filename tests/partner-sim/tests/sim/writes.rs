use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{get, request, send, sim};

#[tokio::test]
async fn create_assigns_id_version_and_timestamps() {
    let sim = sim(1_000, 10).await;
    let body = json!({"email": "new@acme.example", "first_name": "Nia", "id": "c_999999", "shoe_size": 44});
    let (status, created) = send(request(&sim, Method::POST, "/v1/contacts").json(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "c_001001");
    assert_eq!(created["version"], 1);
    assert_eq!(created["created_at"], created["updated_at"]);
    assert_eq!(created["updated_at"], sim.now());
    assert_eq!(created["external_id"], json!(null));
    assert!(created.get("shoe_size").is_none());
    assert_eq!(
        get(&sim, "/v1/contacts/c_001001").await,
        (StatusCode::OK, created)
    );
    assert_eq!(sim.counters().writes["contacts"].created, 1);
}

#[tokio::test]
async fn invalid_records_are_422_naming_the_field() {
    let sim = sim(10, 3).await;
    let cases = [
        (
            Method::POST,
            "/v1/contacts",
            json!({"email": "no-at-sign"}),
            "email",
            "email must contain @",
        ),
        (
            Method::POST,
            "/v1/companies",
            json!({"name": ""}),
            "name",
            "name must be a non-empty string",
        ),
        (
            Method::PATCH,
            "/v1/contacts/c_000001",
            json!({"score": 101}),
            "score",
            "score must be an integer from 0 to 100",
        ),
        (
            Method::PATCH,
            "/v1/contacts/c_000001",
            json!({"email": null}),
            "email",
            "email must contain @",
        ),
    ];
    for (method, path, body, field, message) in cases {
        let (status, answer) = send(request(&sim, method, path).json(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}");
        let expected = json!({"error": {"code": "validation", "message": message, "field": field}});
        assert_eq!(answer, expected);
    }
    assert_eq!(sim.records("contacts").len(), 10);
    assert_eq!(
        sim.record("contacts", "c_000001").unwrap()["version"],
        sim.records("contacts")[0]["version"]
    );

    let (status, answer) =
        send(request(&sim, Method::POST, "/v1/contacts").body("{not json")).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("bad_request"))
    );
}

#[tokio::test]
async fn patch_merges_fields_and_bumps_version_and_updated_at() {
    let sim = sim(10, 3).await;
    let before = sim.record("contacts", "c_000002").unwrap();
    let patch = json!({"title": "CTO", "version": 99, "updated_at": "1999-01-01T00:00:00Z"});
    let (status, after) =
        send(request(&sim, Method::PATCH, "/v1/contacts/c_000002").json(&patch)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after["title"], "CTO");
    assert_eq!(after["email"], before["email"]);
    assert_eq!(after["version"], before["version"].as_u64().unwrap() + 1);
    assert!(after["updated_at"].as_str() > before["updated_at"].as_str());
    assert_eq!(after["created_at"], before["created_at"]);

    let (status, body) =
        send(request(&sim, Method::PATCH, "/v1/contacts/c_000404").json(&patch)).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
}

#[tokio::test]
async fn delete_is_204_once_then_404() {
    let sim = sim(10, 3).await;
    let delete = || send(request(&sim, Method::DELETE, "/v1/companies/co_00002"));
    assert_eq!(delete().await, (StatusCode::NO_CONTENT, json!(null)));
    assert_eq!(delete().await.0, StatusCode::NOT_FOUND);
    assert!(sim.record("companies", "co_00002").is_none());
    assert_eq!(sim.counters().writes["companies"].deleted, 1);
}

#[tokio::test]
async fn idempotent_retry_replays_the_first_response_without_writing() {
    let sim = sim(10, 3).await;
    let create = |body: serde_json::Value| {
        request(&sim, Method::POST, "/v1/contacts")
            .header("idempotency-key", "retry-1")
            .json(&body)
            .send()
    };
    let body = json!({"email": "once@acme.example", "score": 10});
    let first = create(body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = first.text().await.unwrap();

    let again = create(json!({"score": 10, "email": "once@acme.example"}))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first);
    assert_eq!(sim.records("contacts").len(), 11);

    let conflict = create(json!({"email": "other@acme.example"}))
        .await
        .unwrap();
    assert_eq!(conflict.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let conflict: serde_json::Value = conflict.json().await.unwrap();
    assert_eq!(conflict["error"]["code"], "idempotency_conflict");

    let counters = sim.counters();
    assert_eq!(
        (
            counters.idempotent_replays,
            counters.writes["contacts"].created
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn idempotent_patch_is_applied_once() {
    let sim = sim(10, 3).await;
    let version = sim.record("contacts", "c_000001").unwrap()["version"]
        .as_u64()
        .unwrap();
    for _ in 0..3 {
        let patch = request(&sim, Method::PATCH, "/v1/contacts/c_000001")
            .header("idempotency-key", "patch-1")
            .json(&json!({"lifecycle_stage": "customer"}));
        let (status, record) = send(patch).await;
        assert_eq!(
            (status, record["version"].as_u64()),
            (StatusCode::OK, Some(version + 1))
        );
    }
    assert_eq!(
        sim.record("contacts", "c_000001").unwrap()["version"],
        version + 1
    );
}

#[tokio::test]
async fn library_writes_match_http_writes() {
    let sim = sim(5, 2).await;
    let created = sim
        .create("companies", json!({"name": "Weir Labs", "employees": 12}))
        .unwrap();
    assert_eq!(created["id"], "co_00003");
    assert_eq!(get(&sim, "/v1/companies/co_00003").await.1, created);
    let err = sim.create("companies", json!({"name": " "})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid company: name must be a non-empty string"
    );
    let err = sim.update("contacts", "c_000404", json!({})).unwrap_err();
    assert_eq!(err.to_string(), "no contact with id `c_000404`");
    assert!(sim.create("deals", json!({})).is_err());
    // Library writes are not HTTP traffic.
    assert_eq!(sim.counters().requests, 1);
}
