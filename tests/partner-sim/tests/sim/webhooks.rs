use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use partner_sim::{
    DeliveryOutcome, PartnerSim, SimConfig, WebhookSigning, WebhookTarget, sign_standard_webhook,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{request, send, sim};

const SECRET: &[u8] = b"whsec-test-secret";
const WAIT: Duration = Duration::from_secs(60);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A webhook receiver on 127.0.0.1 answering every event with `status`.
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(status: StatusCode) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let app = axum::Router::new().route(
            "/hooks",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push(Received {
                        headers,
                        body: body.to_vec(),
                    });
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, received }
    }

    fn target(&self, drop_rate: f64) -> WebhookTarget {
        WebhookTarget {
            url: format!("http://{}/hooks", self.addr),
            signing: WebhookSigning::Secret(SECRET.to_vec()),
            drop_rate,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn header<'a>(received: &'a Received, name: &str) -> &'a str {
    received.headers[name].to_str().unwrap()
}

#[tokio::test]
async fn events_are_signed_the_standard_webhooks_way() {
    let receiver = Receiver::start(StatusCode::NO_CONTENT).await;
    let sim = sim(10, 2).await;
    sim.set_webhook(Some(receiver.target(0.0)));
    let patch =
        request(&sim, Method::PATCH, "/v1/contacts/c_000004").json(&json!({"title": "CTO"}));
    let (_, record) = send(patch).await;
    sim.wait_for_webhooks(WAIT).await.unwrap();

    let [event] = receiver.received().try_into().expect("exactly one event");
    assert_eq!(header(&event, "content-type"), "application/json");
    assert_eq!(header(&event, "webhook-id"), "msg_1");
    let timestamp: i64 = header(&event, "webhook-timestamp").parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - timestamp).abs() < 60);
    let expected = sign_standard_webhook(SECRET, "msg_1", timestamp, &event.body);
    assert_eq!(header(&event, "webhook-signature"), expected);

    let body: Value = serde_json::from_slice(&event.body).unwrap();
    assert_eq!(body["type"], "contact.updated");
    assert_eq!(body["timestamp"], record["updated_at"]);
    assert_eq!(body["data"], record);

    let counters = sim.counters().webhooks;
    assert_eq!(
        (counters.sent, counters.delivered, counters.statuses[&204]),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn creates_updates_and_deletes_emit_typed_events_in_order() {
    let receiver = Receiver::start(StatusCode::OK).await;
    let sim = sim(3, 2).await;
    sim.set_webhook(Some(receiver.target(0.0)));
    let created = sim
        .create("companies", json!({"name": "Hookworks"}))
        .unwrap();
    let id = created["id"].as_str().unwrap();
    sim.update("companies", id, json!({"employees": 7}))
        .unwrap();
    let (status, _) = send(request(
        &sim,
        Method::DELETE,
        &format!("/v1/companies/{id}"),
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    sim.wait_for_webhooks(WAIT).await.unwrap();

    let events: Vec<Value> = receiver
        .received()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let types: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["company.created", "company.updated", "company.deleted"]
    );
    assert_eq!(events[0]["data"], created);
    assert_eq!(events[2]["data"]["deleted"], true);
    assert_eq!(events[2]["data"]["version"], 3);
}

#[tokio::test]
async fn drop_rate_is_honoured_and_reproducible() {
    const EVENTS: usize = 1_000;
    let receiver = Receiver::start(StatusCode::OK).await;
    let mut dropped_runs = Vec::new();
    for _ in 0..2 {
        let sim = PartnerSim::start(SimConfig {
            contacts: EVENTS,
            webhook: Some(receiver.target(0.2)),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        assert_eq!(sim.mutate("contacts", EVENTS).len(), EVENTS);
        sim.wait_for_webhooks(WAIT).await.unwrap();

        let deliveries = sim.webhook_deliveries();
        let dropped: Vec<_> = deliveries
            .iter()
            .filter(|d| d.outcome == DeliveryOutcome::Dropped)
            .map(|d| d.id.clone())
            .collect();
        // 20% of 1,000: the binomial's standard deviation is ~13, so ±50 is
        // ~4 sigma; the seed makes the count fixed anyway.
        assert!(
            (150..=250).contains(&dropped.len()),
            "dropped {}",
            dropped.len()
        );
        let counters = sim.counters().webhooks;
        assert_eq!(counters.dropped as usize, dropped.len());
        assert_eq!((counters.sent + counters.dropped) as usize, EVENTS);
        assert_eq!(counters.delivered, counters.sent);
        dropped_runs.push(dropped);
    }
    assert_eq!(dropped_runs[0], dropped_runs[1], "same seed, same drops");
    assert_eq!(
        receiver.received().len(),
        2 * EVENTS - 2 * dropped_runs[0].len()
    );
}

#[tokio::test]
async fn failed_deliveries_are_counted_with_their_status() {
    let receiver = Receiver::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let sim = sim(10, 2).await;
    sim.set_webhook(Some(receiver.target(0.0)));
    sim.mutate("contacts", 2);
    sim.set_webhook(Some(WebhookTarget {
        url: "http://127.0.0.1:9/unreachable".into(),
        signing: WebhookSigning::Secret(SECRET.to_vec()),
        drop_rate: 0.0,
    }));
    sim.mutate("contacts", 1);
    sim.wait_for_webhooks(WAIT).await.unwrap();

    let counters = sim.counters().webhooks;
    assert_eq!(
        (counters.sent, counters.delivered, counters.failed),
        (3, 0, 3)
    );
    assert_eq!(counters.statuses, [(500, 2)].into());
    let outcomes: Vec<_> = sim
        .webhook_deliveries()
        .into_iter()
        .map(|d| d.outcome)
        .collect();
    assert!(matches!(
        outcomes[0],
        DeliveryOutcome::Failed {
            status: Some(500),
            ..
        }
    ));
    assert!(matches!(
        outcomes[2],
        DeliveryOutcome::Failed {
            status: None,
            error: Some(_)
        }
    ));
}
