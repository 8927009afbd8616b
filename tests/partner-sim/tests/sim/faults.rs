use std::time::{Duration, Instant};

use partner_sim::Fault;
use reqwest::{Method, StatusCode};

use crate::{client, get, request, sim};

#[tokio::test]
async fn a_status_fault_skips_then_fires_the_given_number_of_times() {
    let sim = sim(10, 2).await;
    sim.inject(
        Fault::new("GET", "/v1/contacts")
            .skip(2)
            .times(2)
            .status(503),
    );
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = request(&sim, Method::GET, "/v1/contacts")
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 503, 503, 200]);
    // Other routes never matched.
    assert_eq!(get(&sim, "/v1/companies").await.0, StatusCode::OK);
    let counters = sim.counters();
    assert_eq!((counters.faults_injected, counters.status(503)), (2, 2));
    assert!(sim.pending_faults().is_empty());
}

#[tokio::test]
async fn a_close_fault_drops_the_connection_without_a_response() {
    let sim = sim(10, 2).await;
    sim.inject(Fault::new("GET", "/v1/contacts").close());
    let error = request(&sim, Method::GET, "/v1/contacts")
        .send()
        .await
        .unwrap_err();
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert_eq!(get(&sim, "/v1/contacts").await.0, StatusCode::OK);
    let counters = sim.counters();
    assert_eq!(
        counters.list_calls[0].status, 0,
        "no status for a closed connection"
    );
    assert_eq!(counters.by_status.values().sum::<u64>(), 1);
}

#[tokio::test]
async fn a_hang_fault_holds_the_request_until_the_client_gives_up() {
    let sim = sim(10, 2).await;
    sim.inject(Fault::new("*", "/v1/").hang());
    let started = Instant::now();
    let error = client()
        .get(sim.url("/v1/contacts"))
        .header("x-api-key", sim.api_key())
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(get(&sim, "/v1/contacts").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_trickle_fault_sends_a_valid_response_slowly() {
    let sim = sim(100, 2).await;
    let (_, normal) = get(&sim, "/v1/contacts?limit=100").await;
    sim.inject(Fault::new("GET", "/v1/contacts").trickle(8 * 1024, Duration::from_millis(25)));
    let started = Instant::now();
    let (status, slow) = get(&sim, "/v1/contacts?limit=100").await;
    let chunks = serde_json::to_vec(&normal)
        .unwrap()
        .len()
        .div_ceil(8 * 1024) as u32;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slow, normal);
    assert!(chunks >= 3);
    assert!(started.elapsed() >= Duration::from_millis(25) * chunks);
}

#[tokio::test]
async fn shutdown_ends_even_with_a_hung_request() {
    let sim = sim(10, 2).await;
    sim.inject(Fault::new("GET", "/v1/contacts").hang());
    let hung = tokio::spawn(request(&sim, Method::GET, "/v1/contacts").send());
    // The fault is consumed once the request has arrived.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sim.pending_faults().is_empty() {
        assert!(Instant::now() < deadline, "the request never arrived");
        tokio::task::yield_now().await;
    }
    tokio::time::timeout(Duration::from_secs(5), sim.shutdown())
        .await
        .expect("shutdown is bounded");
    let answer = hung.await.unwrap();
    assert!(answer.is_err() || answer.unwrap().status() == StatusCode::SERVICE_UNAVAILABLE);
}
