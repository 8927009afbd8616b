//! The sim over real HTTP on 127.0.0.1: one test binary, one module per concern.

mod binary;
mod faults;
mod gate;
mod pagination;
mod webhooks;
mod writes;

use std::time::Duration;

use partner_sim::{PartnerSim, SimConfig};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A sim with `contacts` contacts and `companies` companies, seed 42.
async fn sim(contacts: usize, companies: usize) -> PartnerSim {
    PartnerSim::start(SimConfig {
        contacts,
        companies,
        ..SimConfig::default()
    })
    .await
    .expect("the sim starts")
}

/// A client that talks to 127.0.0.1 directly, whatever the proxy settings.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client")
}

/// A request to `path` carrying the sim's API key.
fn request(sim: &PartnerSim, method: Method, path: &str) -> reqwest::RequestBuilder {
    client()
        .request(method, sim.url(path))
        .header("x-api-key", sim.api_key())
}

/// Sends `request` and returns the status and JSON body (`Null` if empty).
async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the sim answers");
    let status = response.status();
    let body = response.bytes().await.expect("a complete body");
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).expect("a JSON body")
    };
    (status, json)
}

/// `GET path` with the API key.
async fn get(sim: &PartnerSim, path: &str) -> (StatusCode, Value) {
    send(request(sim, Method::GET, path)).await
}

/// Everything a client following `next_cursor` from `start` gets, and the
/// cursor it ends with.
async fn sync(
    sim: &PartnerSim,
    resource: &str,
    limit: usize,
    start: Option<String>,
) -> (Vec<Value>, Option<String>) {
    let mut records = Vec::new();
    let mut cursor = start;
    // A bound so a pagination bug fails the test instead of looping forever.
    for _ in 0..10_000 {
        let mut path = format!("/v1/{resource}?limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = get(sim, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let data = page["data"].as_array().expect("a data array");
        assert!(data.len() <= limit);
        records.extend(data.iter().cloned());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if page["has_more"] != true {
            return (records, cursor);
        }
        assert_eq!(data.len(), limit, "a page with more behind it is full");
    }
    panic!("pagination did not end within 10,000 pages");
}

fn ids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["id"].as_str().expect("an id").to_owned())
        .collect()
}
