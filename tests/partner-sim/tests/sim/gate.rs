use partner_sim::{Counters, RateLimit};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{client, get, request, send, sim};

#[tokio::test]
async fn requests_without_the_right_api_key_are_401() {
    let sim = sim(10, 2).await;
    let anonymous = client().get(sim.url("/v1/contacts")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = send(
        client()
            .get(sim.url("/v1/nowhere"))
            .header("x-api-key", "guess"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(sim.counters().status(401), 2);
    assert_eq!(get(&sim, "/v1/contacts").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_tight_rate_limit_answers_429_with_retry_after() {
    let sim = sim(10, 2).await;
    sim.set_rate_limit(Some(RateLimit {
        per_second: 0.5,
        burst: 3,
    }));
    for remaining in ["2", "1", "0"] {
        let response = request(&sim, Method::GET, "/v1/contacts")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-ratelimit-limit"], "3");
        assert_eq!(response.headers()["x-ratelimit-remaining"], remaining);
    }
    let limited = request(&sim, Method::GET, "/v1/contacts")
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let header = |name: &str| {
        limited.headers()[name]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(
        (1..=2).contains(&header("retry-after")),
        "at 0.5/s a token takes up to 2s"
    );
    assert_eq!(header("x-ratelimit-remaining"), 0);
    assert!(header("x-ratelimit-reset") >= header("retry-after"));
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    sim.set_rate_limit(None);
    assert_eq!(get(&sim, "/v1/contacts").await.0, StatusCode::OK);
    let counters = sim.counters();
    assert_eq!((counters.status(200), counters.status(429)), (4, 1));
    assert_eq!(counters.list_calls[3].status, 429);
}

#[tokio::test]
async fn redirect_points_where_asked() {
    let sim = sim(1, 1).await;
    let response = request(
        &sim,
        Method::GET,
        "/v1/redirect?to=http://127.0.0.1:9/elsewhere",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        response.headers()["location"],
        "http://127.0.0.1:9/elsewhere"
    );
}

#[tokio::test]
async fn counters_see_routes_list_calls_and_records_served() {
    let sim = sim(30, 3).await;
    let (_, first) = get(&sim, "/v1/contacts?limit=20").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    get(&sim, &format!("/v1/contacts?limit=20&cursor={cursor}")).await;
    get(&sim, "/v1/contacts/c_000001").await;
    get(&sim, "/v1/contacts/c_000002").await;
    get(&sim, "/v1/deals").await;

    let counters = sim.counters();
    assert_eq!(counters.requests, 5);
    assert_eq!(counters.route("GET /v1/contacts"), 2);
    assert_eq!(counters.route("GET /v1/contacts/{id}"), 2);
    assert_eq!(counters.route("GET (unmatched)"), 1);
    assert_eq!(counters.status(404), 1);
    assert_eq!(counters.served("contacts"), 20 + 10 + 2);
    let calls: Vec<_> = counters
        .list_calls
        .iter()
        .map(|c| (c.cursor.clone(), c.limit, c.returned, c.status))
        .collect();
    assert_eq!(
        calls,
        [(None, Some(20), 20, 200), (Some(cursor), Some(20), 10, 200)]
    );

    sim.reset_counters();
    assert_eq!(sim.counters(), Counters::default());
}

#[tokio::test]
async fn admin_endpoints_mutate_and_report_without_being_counted() {
    let sim = sim(40, 4).await;
    let admin = client();
    let mutated: serde_json::Value = admin
        .post(sim.url("/_sim/mutate"))
        .json(&json!({"resource": "contacts", "count": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids = mutated["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 5);
    let newest: Vec<_> = {
        let mut records = sim.records("contacts");
        records.sort_by_key(|r| r["updated_at"].as_str().unwrap().to_owned());
        records[35..].iter().map(|r| r["id"].clone()).collect()
    };
    assert_eq!(&newest, ids);

    get(&sim, "/v1/contacts").await;
    let url = sim.url("/_sim/counters");
    let counters: Counters = admin.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(counters.requests, 1);
    assert_eq!(counters, sim.counters());
    let reset = admin
        .post(sim.url("/_sim/counters/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.counters().requests, 0);

    let bad = admin
        .post(sim.url("/_sim/mutate"))
        .json(&json!({"resource": "deals", "count": 1}));
    assert_eq!(send(bad).await.0, StatusCode::BAD_REQUEST);
}
