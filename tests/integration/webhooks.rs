//! Webhooks with a polling fallback: nothing acknowledged before it is
//! durable, forgeries refused, duplicates stored once, tenants isolated,
//! changes merged by version, and coverage measured.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use partner_sim::{
    Fault, PartnerSim, WebhookSigning, WebhookTarget, ed25519_public_key, sign_standard_webhook,
    sign_standard_webhook_ed25519,
};
use serde_json::{Value, json};
use weir_tests::{ConfigEdit, RunningWeir, Workspace, acme_connection, guests, wait_until};

use crate::{simulator, workspace};

const SECRET: &str = "whsec-test-signing-secret";

fn config(base_url: &str, ingress_extra: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[ingress]
listen = "127.0.0.1:0"
coverage_grace = "1s"
{ingress_extra}

{connection}secrets.webhook_secret = {{ env = "ACME_WEBHOOK_SECRET" }}
# Webhook mechanics, not tenancy, are tested here: every tenant uses the
# integration's account.
shared_credentials = true

[flows.contacts]
source = "acme"
stream = "contacts"
"#,
        connection = acme_connection("acme", base_url)
    )
}

async fn start(
    ws: &Workspace,
    sim: &PartnerSim,
    ingress_extra: &str,
    tenants: &[&str],
) -> RunningWeir {
    start_with(ws, &config(&sim.base_url(), ingress_extra), tenants).await
}

async fn start_with(ws: &Workspace, config: &str, tenants: &[&str]) -> RunningWeir {
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(config);
    let weir = ws
        .start_daemon_with(&[("ACME_WEBHOOK_SECRET", SECRET)])
        .await;
    for tenant in tenants {
        let (status, body) = weir
            .admin("POST", "/tenants", Some(json!({ "id": tenant })))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    weir
}

/// A daemon with one tenant, `t1`, over a simulator of `contacts`; and
/// t1's webhook endpoint.
async fn one_tenant(contacts: usize) -> (PartnerSim, Workspace, RunningWeir, String) {
    let sim = simulator(contacts, 0).await;
    let ws = workspace();
    let weir = start(&ws, &sim, "", &["t1"]).await;
    let url = weir.webhook_url("t1", "acme").await;
    (sim, ws, weir, url)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A delivery with Standard Webhooks headers carrying `signature`, whatever
/// it is.
fn delivery(
    url: &str,
    id: &str,
    timestamp: i64,
    signature: String,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(url)
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
}

/// A delivery signed the way the partner signs, at `timestamp`.
fn signed(url: &str, id: &str, timestamp: i64, body: &str) -> reqwest::RequestBuilder {
    let signature = sign_standard_webhook(SECRET.as_bytes(), id, timestamp, body.as_bytes());
    delivery(url, id, timestamp, signature, body.to_string())
        .header("content-type", "application/json")
}

fn event(record: &Value) -> String {
    json!({ "type": "contact.updated", "timestamp": record["updated_at"], "data": record })
        .to_string()
}

/// The inbox database, for assertions.
fn inbox(ws: &Workspace) -> rusqlite::Connection {
    rusqlite::Connection::open(ws.path().join("weir.inbox.db")).expect("open the inbox")
}

/// Rows of the inbox database (none before the first delivery).
fn inbox_rows(ws: &Workspace) -> i64 {
    inbox(ws)
        .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
        .unwrap_or(0)
}

/// Rows of the inbox database holding delivery `key`.
fn rows_with_key(ws: &Workspace, key: &str) -> i64 {
    inbox(ws)
        .query_row(
            "SELECT count(*) FROM deliveries WHERE delivery_key = ?1",
            [key],
            |r| r.get(0),
        )
        .unwrap()
}

fn stored_versions(ws: &Workspace, connection: &str) -> BTreeMap<String, i64> {
    ws.records(connection, "contacts")
        .into_iter()
        .map(|(k, v)| (k, v["version"].as_i64().unwrap_or(0)))
        .collect()
}

fn partner_versions(sim: &PartnerSim) -> BTreeMap<String, i64> {
    sim.records("contacts")
        .into_iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["version"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Polls now and waits until that poll finished. When a poll is already
/// running (the one after start-up), the requested one follows it: wait
/// for both, so that no poll runs after this returns.
async fn sync_now(weir: &RunningWeir, ws: &Workspace, tenant: &str) {
    let before = finished_runs(ws);
    let (status, body) = weir
        .admin(
            "POST",
            &format!("/tenants/{tenant}/flows/contacts/run"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let polls = if body["outcome"] == "coalesced" { 2 } else { 1 };
    assert!(
        wait_until(Duration::from_secs(30), || finished_runs(ws)
            >= before + polls)
        .await,
        "the poll ran"
    );
}

/// Points the simulator's webhooks at t1's endpoint, signed with
/// `signing`, changes `count` contacts, and waits until the store holds
/// every change.
async fn webhooks_bring(
    sim: &PartnerSim,
    ws: &Workspace,
    weir: &RunningWeir,
    signing: WebhookSigning,
    count: usize,
) -> bool {
    sim.set_webhook(Some(WebhookTarget {
        url: weir.webhook_url("t1", "acme").await,
        signing,
        drop_rate: 0.0,
    }));
    sim.reset_counters();
    assert_eq!(sim.mutate("contacts", count).len(), count);
    wait_until(Duration::from_secs(30), || {
        stored_versions(ws, "t1.acme") == partner_versions(sim)
    })
    .await
}

/// How long the daemon waited between the end of each poll and the start
/// of the next, oldest first.
fn waits_between_polls(ws: &Workspace) -> Vec<Duration> {
    let store = ws.store();
    let mut stmt = store
        .prepare(
            "SELECT started_at, finished_at FROM runs \
             WHERE status = 'succeeded' AND plugin != 'webhook' ORDER BY id",
        )
        .unwrap();
    let runs: Vec<(i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    runs.windows(2)
        .map(|pair| Duration::from_millis((pair[1].0 - pair[0].1).max(0) as u64))
        .collect()
}

fn finished_runs(ws: &Workspace) -> i64 {
    rusqlite::Connection::open(ws.store_path())
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM runs WHERE status = 'succeeded' AND plugin != 'webhook'",
                [],
                |r| r.get(0),
            )
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_webhooks_update_the_store_without_a_poll() {
    let sim = simulator(200, 0).await;
    let ws = workspace();
    let weir = start(&ws, &sim, "", &["t1"]).await;
    sync_now(&weir, &ws, "t1").await;
    let url = weir.webhook_url("t1", "acme").await;
    sim.set_webhook(Some(WebhookTarget {
        url,
        signing: WebhookSigning::Secret(SECRET.as_bytes().to_vec()),
        drop_rate: 0.0,
    }));
    sim.reset_counters();
    let changed = sim.mutate("contacts", 20);
    assert_eq!(changed.len(), 20);
    let merged = wait_until(Duration::from_secs(30), || {
        stored_versions(&ws, "t1.acme") == partner_versions(&sim)
    })
    .await;
    assert!(merged, "every change arrived by webhook");
    assert!(sim.counters().list_calls.is_empty(), "no poll was needed");
    assert_eq!(
        sim.counters().webhooks.delivered,
        20,
        "every delivery was acknowledged"
    );
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_stale_and_altered_deliveries_are_refused_and_never_stored() {
    let (sim, ws, weir, url) = one_tenant(10).await;
    let record = sim.records("contacts")[0].clone();
    let body = event(&record);
    let now = now_secs();

    let good = signed(&url, "msg_good", now, &body).send().await.unwrap();
    assert_eq!(good.status(), 200);
    let cases = [
        (
            "unsigned",
            reqwest::Client::new().post(&url).body(body.clone()),
        ),
        ("wrong secret", {
            let sig = sign_standard_webhook(b"another-secret", "msg_1", now, body.as_bytes());
            delivery(&url, "msg_1", now, sig, body.clone())
        }),
        // The tolerance is 300 s, in whole seconds: 30 s beyond it, so
        // that a second ticking over mid-test changes nothing.
        ("330 s in the past", signed(&url, "msg_2", now - 330, &body)),
        (
            "330 s in the future",
            signed(&url, "msg_3", now + 330, &body),
        ),
        ("re-serialized body", {
            let reserialized =
                serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).unwrap())
                    .unwrap();
            signed(&url, "msg_4", now, &body).body(reserialized)
        }),
        ("body replayed under a new delivery id", {
            let sig = sign_standard_webhook(SECRET.as_bytes(), "msg_good", now, body.as_bytes());
            delivery(&url, "msg_forged", now, sig, body.clone())
        }),
    ];
    for (what, request) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{what} is refused");
    }
    let unknown = reqwest::Client::new()
        .post(url.replace("/hooks/", "/hooks/0000"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.status(),
        404,
        "an unknown endpoint is 404, never 410"
    );
    assert_eq!(inbox_rows(&ws), 1, "only the authentic delivery is stored");

    let (_, report) = weir.admin("GET", "/webhooks", None).await;
    let health = &report["endpoints"][0];
    assert_eq!(health["rejected"]["missing_signature"], 1);
    assert_eq!(health["rejected"]["bad_signature"], 3);
    assert_eq!(health["rejected"]["stale_timestamp"], 2);
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_identical_deliveries_are_stored_once_and_all_acknowledged() {
    let (sim, ws, weir, url) = one_tenant(10).await;
    let body = event(&sim.records("contacts")[3]);
    let now = now_secs();
    let sends = (0..50).map(|_| signed(&url, "msg_same", now, &body).send());
    let responses = futures_util::future::join_all(sends).await;
    assert!(
        responses
            .iter()
            .all(|r| r.as_ref().unwrap().status() == 200),
        "all acknowledged"
    );
    assert_eq!(inbox_rows(&ws), 1, "stored once");
    let (_, report) = weir.admin("GET", "/webhooks", None).await;
    assert_eq!(report["endpoints"][0]["duplicates"], 49);
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flooding_tenant_is_throttled_while_another_is_served() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    let weir = start(
        &ws,
        &sim,
        "per_tenant_rate = 20\nper_tenant_burst = 20",
        &["noisy", "quiet"],
    )
    .await;
    let (noisy, quiet) = (
        weir.webhook_url("noisy", "acme").await,
        weir.webhook_url("quiet", "acme").await,
    );
    let body = event(&sim.records("contacts")[0]);
    let now = now_secs();
    let flood = (0..200).map(|i| signed(&noisy, &format!("msg_n{i}"), now, &body).send());
    let calm = (0..20).map(|i| {
        let request = signed(&quiet, &format!("msg_q{i}"), now, &body);
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let (flooded, served) = tokio::join!(
        futures_util::future::join_all(flood),
        futures_util::future::join_all(calm)
    );
    let throttled: Vec<_> = flooded
        .iter()
        .filter(|r| r.as_ref().unwrap().status() == 429)
        .collect();
    assert!(
        throttled.len() >= 150,
        "the flood is throttled: {}",
        throttled.len()
    );
    assert!(
        throttled
            .iter()
            .all(|r| r.as_ref().unwrap().headers().contains_key("retry-after")),
        "429s say when to come back"
    );
    // Each stored before its answer, within the inbox's commit deadline:
    // a 200 says both that it was not throttled and not kept waiting.
    assert!(
        served.iter().all(|status| *status == 200),
        "the other tenant is served: {served:?}"
    );
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_ten_percent_of_webhooks_dropped_polls_fill_the_gap_and_coverage_reads_ninety_percent()
{
    let sim = simulator(2_000, 0).await;
    let ws = workspace();
    // The simulator sends as fast as it can and never retries: no throttling here.
    let weir = start(
        &ws,
        &sim,
        "per_tenant_rate = 100000\nper_tenant_burst = 100000",
        &["t1"],
    )
    .await;
    sync_now(&weir, &ws, "t1").await;
    sim.set_webhook(Some(WebhookTarget {
        url: weir.webhook_url("t1", "acme").await,
        signing: WebhookSigning::Secret(SECRET.as_bytes().to_vec()),
        drop_rate: 0.1,
    }));
    sim.mutate("contacts", 1_000);
    sim.wait_for_webhooks(Duration::from_secs(60))
        .await
        .unwrap();
    let webhooks = sim.counters().webhooks;
    assert_eq!(webhooks.failed, 0, "every sent delivery was acknowledged");
    let dropped = webhooks.dropped as i64;
    // Let the workers apply what was received, then poll once.
    let received_applied = wait_until(Duration::from_secs(60), || {
        let store = partner_versions(&sim);
        let local = stored_versions(&ws, "t1.acme");
        store
            .iter()
            .filter(|(k, v)| local.get(*k) != Some(v))
            .count() as i64
            == dropped
    })
    .await;
    assert!(received_applied, "every delivered webhook was applied");
    sync_now(&weir, &ws, "t1").await;
    assert_eq!(
        stored_versions(&ws, "t1.acme"),
        partner_versions(&sim),
        "after one poll the store equals the partner"
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await; // the 1 s grace, for the coverage count
    let (_, report) = weir.admin("GET", "/webhooks", None).await;
    let coverage = report["endpoints"][0]["coverage"]["coverage"]
        .as_f64()
        .unwrap();
    let expected = 1.0 - dropped as f64 / 1_000.0;
    assert!(
        (coverage - expected).abs() < 0.005,
        "coverage {coverage} vs {expected}"
    );
    assert!(
        (coverage - 0.9).abs() <= 0.02,
        "coverage {coverage} reads 90% ± 2 points"
    );
    assert!(weir.terminate().await.success());

    // `weir status` reads the same from the store, with the daemon stopped.
    let status = status_json(&ws).await;
    let endpoint = &status["webhooks"]["endpoints"][0];
    assert_eq!(endpoint["tenant"], "t1");
    assert_eq!(endpoint["coverage"]["coverage"].as_f64(), Some(coverage));
    assert_eq!(endpoint["coverage"]["poll_only"], dropped);
    assert_eq!(status["webhooks"]["inbox"]["waiting"], 0, "{status}");
    let text = ws.weir_async(&["status"]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("{:.0}%", coverage * 100.0)) && text.contains("inbox: 0 waiting"),
        "{text}"
    );
}

/// `weir status --json`.
async fn status_json(ws: &Workspace) -> Value {
    let out = ws.weir_async(&["status", "--json"]).await;
    assert!(out.status.success(), "{}", weir_tests::output_text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_webhooks_raise_an_alert() {
    let sim = simulator(300, 0).await;
    let ws = workspace();
    let weir = start(&ws, &sim, "silence_after = \"2s\"", &["t1"]).await;
    sync_now(&weir, &ws, "t1").await;
    sim.mutate("contacts", 10);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    sync_now(&weir, &ws, "t1").await;
    let (_, report) = weir.admin("GET", "/webhooks", None).await;
    assert_eq!(report["endpoints"][0]["silent"], true, "{report}");
    let text = ws.weir_async(&["status"]).await;
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("silent: polls find changes"),
        "{}",
        weir_tests::output_text(&text)
    );
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_delivery_survives_a_crash() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    let weir = start(
        &ws,
        &sim,
        "per_tenant_rate = 100000\nper_tenant_burst = 100000",
        &["t1"],
    )
    .await;
    let url = weir.webhook_url("t1", "acme").await;
    let body = event(&sim.records("contacts")[0]);
    let now = now_secs();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let senders = (0..16).map(|s| {
        let (url, body, acked) = (url.clone(), body.clone(), acked.clone());
        tokio::spawn(async move {
            for i in 0..200 {
                let id = format!("msg_{s}_{i}");
                match signed(&url, &id, now, &body).send().await {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().push(id),
                    Ok(_) => {}
                    Err(_) => break, // the process is gone
                }
            }
        })
    });
    let senders: Vec<_> = senders.collect();
    assert!(
        wait_until(Duration::from_secs(30), || acked.lock().unwrap().len()
            >= 300)
        .await,
        "deliveries flow"
    );
    weir.kill().await;
    for sender in senders {
        let _ = sender.await;
    }
    let acked = acked.lock().unwrap().clone();
    let stored: std::collections::HashSet<String> = inbox(&ws)
        .prepare("SELECT delivery_key FROM deliveries")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .flatten()
        .collect();
    let lost: Vec<_> = acked.iter().filter(|k| !stored.contains(*k)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged deliveries were not stored: {lost:?}",
        lost.len()
    );

    // After the restart, the partner's retry of a stored delivery is
    // acknowledged as a duplicate and stored once.
    let weir = ws
        .start_daemon_with(&[("ACME_WEBHOOK_SECRET", SECRET)])
        .await;
    let url = weir.webhook_url("t1", "acme").await;
    let again = signed(&url, &acked[0], now, &body).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(rows_with_key(&ws, &acked[0]), 1);
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_a_killed_daemon_left_processing_are_taken_back_by_the_next_before_their_lease_ends()
 {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    let weir = start(&ws, &sim, "", &["t1"]).await;
    sync_now(&weir, &ws, "t1").await;
    let url = weir.webhook_url("t1", "acme").await;
    // A thin event: the worker fetches the contact, and the partner never
    // answers that fetch.
    sim.inject(Fault::new("GET", "/v1/contacts/").hang());
    let id = sim.records("contacts")[3]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let thin = json!({ "type": "contact.updated", "timestamp": sim.now(), "data": { "id": id } })
        .to_string();
    let sent = signed(&url, "msg_thin", now_secs(), &thin)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    assert!(
        wait_until(Duration::from_secs(30), || sim.counters().faults_injected
            == 1)
        .await,
        "the worker is waiting on the fetch"
    );
    let (state, lease_until_ms): (String, i64) = inbox(&ws)
        .query_row("SELECT state, lease_until_ms FROM deliveries", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(state, "processing");
    weir.kill().await;

    // The partner answers again, and the contact changed meanwhile.
    let updated = sim
        .update("contacts", &id, json!({ "first_name": "Taken back" }))
        .unwrap();
    let weir = ws
        .start_daemon_with(&[("ACME_WEBHOOK_SECRET", SECRET)])
        .await;
    let done = || -> Option<(i64, i64)> {
        inbox(&ws)
            .query_row(
                "SELECT finished_at_ms, attempts FROM deliveries WHERE state = 'done'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok()
    };
    assert!(
        wait_until(Duration::from_secs(120), || done().is_some()).await,
        "the delivery is processed after the restart"
    );
    let (finished_at_ms, attempts) = done().unwrap();
    assert!(
        finished_at_ms < lease_until_ms,
        "taken back at once, not when the dead daemon's lease ran out ({} ms later)",
        finished_at_ms - lease_until_ms
    );
    assert_eq!(attempts, 2, "the dead daemon's claim counts as an attempt");
    let merged = ws
        .records("t1.acme", "contacts")
        .into_iter()
        .find(|(key, _)| *key == id)
        .map(|(_, data)| data["version"].clone());
    assert_eq!(merged, Some(updated["version"].clone()));
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_hold_at_their_edges_and_rotated_secrets_both_work() {
    const OLD: &str = "whsec-old-secret";
    let sim = simulator(10, 0).await;
    let ws = workspace();
    // During a rotation the connection holds the new secret and the old one.
    ws.install(guests::ACME_CRM, "acme_crm.wasm").write_config(
        &config(&sim.base_url(), "").edit(
            "secrets.webhook_secret = { env = \"ACME_WEBHOOK_SECRET\" }",
            "secrets.webhook_secret = [{ env = \"ACME_WEBHOOK_SECRET\" }, { env = \"OLD_WEBHOOK_SECRET\" }]",
        ),
    );
    let weir = ws
        .start_daemon_with(&[("ACME_WEBHOOK_SECRET", SECRET), ("OLD_WEBHOOK_SECRET", OLD)])
        .await;
    let (status, _) = weir
        .admin("POST", "/tenants", Some(json!({ "id": "t1" })))
        .await;
    assert_eq!(status, 201);
    let url = weir.webhook_url("t1", "acme").await;
    let body = event(&sim.records("contacts")[0]);
    let now = now_secs();
    let send = |id: &str, signature: String, body: Vec<u8>| {
        delivery(&url, id, now, signature, body).send()
    };
    let sign = |secret: &str, id: &str, body: &[u8]| {
        sign_standard_webhook(secret.as_bytes(), id, now, body)
    };
    let good = sign(SECRET, "msg_a", body.as_bytes());
    let (_, encoded) = good.split_once(',').unwrap();

    for (what, id, signature, sent) in [
        (
            "an empty `v1,`",
            "msg_a",
            "v1,".to_string(),
            body.clone().into_bytes(),
        ),
        (
            "a truncated signature",
            "msg_a",
            format!("v1,{}", &encoded[..encoded.len() - 4]),
            body.clone().into_bytes(),
        ),
        (
            "an over-long signature",
            "msg_a",
            format!("{good}AAAA"),
            body.clone().into_bytes(),
        ),
        (
            "altered line endings",
            "msg_b",
            sign(SECRET, "msg_b", b"{\n\"a\":1\n}"),
            b"{\r\n\"a\":1\r\n}".to_vec(),
        ),
        (
            "an unknown secret",
            "msg_c",
            sign("someone-else", "msg_c", body.as_bytes()),
            body.clone().into_bytes(),
        ),
    ] {
        let response = send(id, signature, sent).await.unwrap();
        assert_eq!(response.status(), 401, "{what} is refused");
    }
    let non_utf8 = [b"\xff\xfe".as_slice(), body.as_bytes()].concat();
    for (what, id, signature, sent) in [
        (
            "the new secret",
            "msg_d",
            sign(SECRET, "msg_d", body.as_bytes()),
            body.clone().into_bytes(),
        ),
        (
            "the old secret",
            "msg_e",
            sign(OLD, "msg_e", body.as_bytes()),
            body.clone().into_bytes(),
        ),
        (
            "one valid signature among several",
            "msg_f",
            format!("v1,{} {}", encoded, sign(SECRET, "msg_f", body.as_bytes())),
            body.clone().into_bytes(),
        ),
        (
            "a body that is not UTF-8",
            "msg_g",
            sign(SECRET, "msg_g", &non_utf8),
            non_utf8.clone(),
        ),
    ] {
        let response = send(id, signature, sent).await.unwrap();
        assert_eq!(response.status(), 200, "{what} is accepted");
    }
    assert_eq!(inbox_rows(&ws), 4);

    // A subscription handshake is answered and never stored as data.
    let handshake = reqwest::Client::new()
        .post(format!("{url}?validationToken=hello%20acme"))
        .send()
        .await
        .unwrap();
    assert_eq!(handshake.status(), 200);
    assert_eq!(handshake.text().await.unwrap(), "hello acme");
    assert_eq!(inbox_rows(&ws), 4, "a handshake is not a delivery");
    let (_, report) = weir.admin("GET", "/webhooks", None).await;
    assert_eq!(report["endpoints"][0]["handshakes"], 1);
    assert!(report["endpoints"][0]["last_handshake_at_ms"].is_i64());
    assert_eq!(
        ws.query_one::<String>(
            "SELECT tenant || ' ' || connection || ' ' || method FROM webhook_handshakes"
        ),
        "t1 acme POST",
        "kept as an audit row"
    );
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn standard_webhooks_secrets_in_their_whsec_form_verify() {
    // The Standard Webhooks convention: `whsec_<base64>` means the decoded
    // bytes are the key. The simulator signs with those bytes.
    const SECRET_TEXT: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let key = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&SECRET_TEXT[6..])
            .unwrap()
    };
    let sim = simulator(50, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&config(&sim.base_url(), ""));
    let weir = ws
        .start_daemon_with(&[("ACME_WEBHOOK_SECRET", SECRET_TEXT)])
        .await;
    let (status, _) = weir
        .admin("POST", "/tenants", Some(json!({ "id": "t1" })))
        .await;
    assert_eq!(status, 201);
    sync_now(&weir, &ws, "t1").await;
    sim.set_webhook(Some(WebhookTarget {
        url: weir.webhook_url("t1", "acme").await,
        signing: WebhookSigning::Secret(key),
        drop_rate: 0.0,
    }));
    sim.mutate("contacts", 5);
    sim.wait_for_webhooks(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(sim.counters().webhooks.delivered, 5);
    assert!(
        wait_until(Duration::from_secs(30), || stored_versions(&ws, "t1.acme")
            == partner_versions(&sim))
        .await
    );
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_inbox_answers_503_with_retry_after_and_never_a_2xx() {
    let (sim, ws, weir, url) = one_tenant(10).await;
    let body = event(&sim.records("contacts")[0]);
    let now = now_secs();
    assert_eq!(
        signed(&url, "msg_warm", now, &body)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Another process holds the inbox database: nothing can be committed.
    let blocker = inbox(&ws);
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let refused = signed(&url, "msg_busy", now, &body).send().await.unwrap();
    assert_eq!(refused.status(), 503, "not stored, so not acknowledged");
    assert!(refused.headers().contains_key("retry-after"));
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);

    // The partner's retry goes through (as new, or as the duplicate of a
    // commit that finished after the answer).
    let retried = signed(&url, "msg_busy", now, &body).send().await.unwrap();
    assert_eq!(retried.status(), 200);
    assert_eq!(rows_with_key(&ws, "msg_busy"), 1);
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_that_keeps_failing_is_kept_and_processed_again_once_retried() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    let weir = start(
        &ws,
        &sim,
        "delivery_attempts = 2\nretry_delay = \"100ms\"",
        &["t1"],
    )
    .await;
    sync_now(&weir, &ws, "t1").await;
    let url = weir.webhook_url("t1", "acme").await;
    sim.reset_counters();

    // A thin event: the worker must fetch the contact, and the partner
    // fails every fetch.
    sim.inject(Fault::new("GET", "/v1/contacts/").times(10_000).status(500));
    let id = sim.records("contacts")[2]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let thin = json!({ "type": "contact.updated", "timestamp": sim.now(), "data": { "id": id } })
        .to_string();
    let sent = signed(&url, "msg_thin", now_secs(), &thin)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200, "stored, then acknowledged");

    let failed = |ws: &Workspace| -> Vec<Value> {
        let out = ws.weir(&["webhooks", "failed", "--json"]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert!(
        wait_until(Duration::from_secs(60), || failed(&ws).len() == 1).await,
        "given up after two attempts"
    );
    let kept = &failed(&ws)[0];
    assert_eq!(
        (&kept["tenant"], &kept["key"], &kept["attempts"]),
        (&json!("t1"), &json!("msg_thin"), &json!(2))
    );
    assert!(
        kept["error"].as_str().unwrap().contains("500"),
        "the reason is kept: {kept}"
    );
    let status = ws.weir(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("1 given up"),
        "{status:?}"
    );

    // The partner recovers, and the contact changed meanwhile.
    sim.clear_faults();
    let updated = sim
        .update("contacts", &id, json!({ "first_name": "Retried" }))
        .unwrap();
    let out = ws.weir(&["webhooks", "retry", "--tenant", "t1"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 webhook deliveries are pending again"),
        "{out:?}"
    );
    let current = || {
        ws.records("t1.acme", "contacts")
            .into_iter()
            .find(|(key, _)| *key == id)
            .is_some_and(|(_, data)| data["version"] == updated["version"])
    };
    assert!(
        wait_until(Duration::from_secs(30), current).await,
        "the retried delivery fetched and merged the current contact"
    );
    let state = || -> String {
        inbox(&ws)
            .query_row("SELECT state FROM deliveries", [], |r| r.get(0))
            .unwrap()
    };
    assert!(
        wait_until(Duration::from_secs(60), || state() == "done").await,
        "processed on its third claim"
    );
    assert!(failed(&ws).is_empty());
    let again = ws.weir(&["webhooks", "retry"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("no failed webhook deliveries"));
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_only_flow_polls_once_after_start_then_only_takes_webhooks() {
    let sim = simulator(50, 0).await;
    let ws = workspace();
    let config = config(&sim.base_url(), "").replace(
        "stream = \"contacts\"\n",
        "stream = \"contacts\"\nschedule = \"every 1s\"\ntrigger = \"webhook\"\n",
    );
    let weir = start_with(&ws, &config, &["t1"]).await;
    assert!(
        wait_until(Duration::from_secs(30), || finished_runs(&ws) == 1).await,
        "the poll after start-up covers the time Weir was down"
    );
    assert_eq!(stored_versions(&ws, "t1.acme"), partner_versions(&sim));

    let signing = WebhookSigning::Secret(SECRET.as_bytes().to_vec());
    assert!(
        webhooks_bring(&sim, &ws, &weir, signing, 10).await,
        "webhooks brought the changes"
    );
    // Three schedule intervals: a `webhook` flow never polls on schedule.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(sim.counters().list_calls.is_empty(), "no scheduled poll");
    assert_eq!(finished_runs(&ws), 1);
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_signing_with_ed25519_is_verified_under_its_public_key() {
    let sim = simulator(100, 0).await;
    let ws = workspace();
    let partner_key = [42; 32];
    let base_url = sim.base_url();
    let config = config(&base_url, "").replace(
        &format!("base_url = \"{base_url}\" }}"),
        &format!(
            "base_url = \"{base_url}\", webhook_public_key = \"{}\" }}",
            ed25519_public_key(&partner_key)
        ),
    );
    let weir = start_with(&ws, &config, &["t1"]).await;
    sync_now(&weir, &ws, "t1").await;
    assert!(
        webhooks_bring(&sim, &ws, &weir, WebhookSigning::Ed25519(partner_key), 10).await,
        "every change arrived by a v1a-signed webhook"
    );
    let url = weir.webhook_url("t1", "acme").await;
    assert!(sim.counters().list_calls.is_empty(), "no poll was needed");

    let body = event(&sim.records("contacts")[0]);
    let now = now_secs();
    let signed_with =
        |id: &str, signature: String| delivery(&url, id, now, signature, body.clone());
    let refused = [
        (
            "another key",
            signed_with(
                "msg_x1",
                sign_standard_webhook_ed25519(&[7; 32], "msg_x1", now, body.as_bytes()),
            ),
        ),
        (
            "an HMAC signature",
            signed_with(
                "msg_x2",
                sign_standard_webhook(SECRET.as_bytes(), "msg_x2", now, body.as_bytes()),
            ),
        ),
        (
            "a signature of another delivery id",
            signed_with(
                "msg_x3",
                sign_standard_webhook_ed25519(&partner_key, "msg_x4", now, body.as_bytes()),
            ),
        ),
    ];
    for (what, request) in refused {
        assert_eq!(request.send().await.unwrap().status(), 401, "{what}");
    }
    let good = signed_with(
        "msg_x5",
        sign_standard_webhook_ed25519(&partner_key, "msg_x5", now, body.as_bytes()),
    );
    assert_eq!(good.send().await.unwrap().status(), 200);
    let (_, report) = weir.admin("GET", "/webhooks", None).await;
    assert_eq!(report["endpoints"][0]["rejected"]["bad_signature"], 3);
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn polls_come_four_times_as_often_while_webhooks_miss_changes() {
    let sim = simulator(200, 0).await;
    let ws = workspace();
    let config = config(&sim.base_url(), "").replace(
        "stream = \"contacts\"\n",
        "stream = \"contacts\"\nschedule = \"every 8s\"\n",
    );
    let weir = start_with(&ws, &config, &["t1"]).await;
    sync_now(&weir, &ws, "t1").await;
    // No webhook comes: the next poll finds every change alone.
    sim.mutate("contacts", 5);
    sync_now(&weir, &ws, "t1").await;
    let after = finished_runs(&ws);
    // What the scheduler chose is the wait between one poll's end and the
    // next one's start (8 s on schedule, 2 s tightened), however long the
    // polls themselves take on this machine.
    assert!(
        wait_until(Duration::from_secs(120), || finished_runs(&ws) >= after + 3).await,
        "three more polls"
    );
    let waits = waits_between_polls(&ws);
    assert!(
        waits[waits.len() - 2..]
            .iter()
            .all(|wait| *wait < Duration::from_secs(5)),
        "polls tightened after webhooks missed changes: {waits:?}"
    );

    // Webhooks come back and bring the next changes: polls relax.
    assert!(
        webhooks_bring(
            &sim,
            &ws,
            &weir,
            WebhookSigning::Secret(SECRET.as_bytes().to_vec()),
            40
        )
        .await
    );
    let relaxed = finished_runs(&ws);
    assert!(
        wait_until(Duration::from_secs(120), || finished_runs(&ws)
            >= relaxed + 3)
        .await,
        "polls go on"
    );
    let waits = waits_between_polls(&ws);
    assert!(
        *waits.last().unwrap() >= Duration::from_secs(7),
        "polls back on their 8 s schedule: {waits:?}"
    );
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn new_content_under_the_same_version_is_stored_from_webhooks_and_polls_and_shown_in_status()
{
    let (sim, ws, weir, url) = one_tenant(50).await;
    sync_now(&weir, &ws, "t1").await;
    let title = |key: &str| {
        ws.records("t1.acme", "contacts")
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, record)| record["title"].clone())
    };

    // A webhook whose record kept its version.
    let record = sim
        .update_keeping_version("contacts", "c_000001", json!({ "title": "By webhook" }))
        .unwrap();
    let sent = signed(&url, "msg_same_version", now_secs(), &event(&record))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    assert!(
        wait_until(Duration::from_secs(30), || title("c_000001")
            == Some(json!("By webhook")))
        .await,
        "the copy the webhook brought is stored"
    );
    // A poll finding another such edit.
    sim.update_keeping_version("contacts", "c_000002", json!({ "title": "By poll" }))
        .unwrap();
    sync_now(&weir, &ws, "t1").await;
    assert_eq!(title("c_000002"), Some(json!("By poll")));
    assert!(weir.terminate().await.success());

    let status = status_json(&ws).await;
    let flow = status["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["flow"] == "t1.contacts")
        .unwrap();
    assert_eq!(flow["last_run"]["conflicts"], 1, "the poll's: {flow}");
    assert_eq!(
        status["webhooks"]["endpoints"][0]["coverage"]["conflicts"], 2,
        "both paths': {status}"
    );
    let text = ws.weir_async(&["status"]).await;
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("1 merge conflict(s) in the last run"),
        "{}",
        weir_tests::output_text(&text)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_to_a_tenant_without_its_own_connection_is_refused_and_never_stored() {
    let sim = simulator(5, 0).await;
    let ws = workspace();
    // Without `shared_credentials`, tenant `bare` has no webhook secret
    // (nor API key) of its own.
    let config = config(&sim.base_url(), "").replace("shared_credentials = true", "");
    let weir = start_with(&ws, &config, &["bare"]).await;
    let url = weir.webhook_url("bare", "acme").await;
    // Signed with weir.toml's secret: before tenants stopped inheriting it,
    // this was accepted into `bare`'s data.
    let body = event(&sim.records("contacts")[0]);
    let response = signed(&url, "msg_bare_1", now_secs(), &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(inbox_rows(&ws), 0, "nothing was stored");
    assert!(ws.records("bare.acme", "contacts").is_empty());
    assert_eq!(sim.counters().requests, 0, "nothing reached the partner");
    assert!(weir.terminate().await.success());
}
