//! Rate budgets: pacing, partner backoff, daily quotas that survive a
//! restart, and the audit log of every request.

use std::time::{Duration, Instant};

use partner_sim::RateLimit;
use weir_tests::{acme_config, guests, output_text};

use crate::stored::Stored;
use crate::{simulator, workspace};

fn with_connection_settings(base_url: &str, settings: &str) -> String {
    acme_config(base_url).replacen(
        "secrets.api_key = { env = \"ACME_API_KEY\" }",
        &format!("secrets.api_key = {{ env = \"ACME_API_KEY\" }}\n{settings}"),
        1,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_below_the_partner_limit_never_draws_a_429() {
    let sim = simulator(2_000, 0).await;
    sim.set_rate_limit(Some(RateLimit {
        per_second: 12.0,
        burst: 12,
    }));
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&with_connection_settings(
            &sim.base_url(),
            "page_size = 100\nrate_limit = { requests_per_second = 10 }",
        ));
    let started = Instant::now();
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        sim.counters().status(429),
        0,
        "paced below the partner's limit"
    );
    assert_eq!(ws.records("acme", "contacts").len(), 2_000);
    assert!(
        started.elapsed() >= Duration::from_millis(1_800),
        "21 requests at 10/s are paced"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn partner_429s_are_waited_out_and_the_run_completes() {
    let sim = simulator(3_000, 0).await;
    sim.set_rate_limit(Some(RateLimit {
        per_second: 5.0,
        burst: 5,
    }));
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&with_connection_settings(
            &sim.base_url(),
            "page_size = 200",
        ));
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(sim.counters().status(429) > 0, "the partner pushed back");
    assert_eq!(ws.records("acme", "contacts").len(), 3_000);
    let audit = ws.port().audit(None, 100_000).expect("read the audit log");
    let retried = audit.iter().filter(|e| e.status == Some(429)).count();
    assert_eq!(
        retried as u64,
        sim.counters().status(429),
        "every 429 is in the audit log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_daily_quota_pauses_the_run_and_survives_a_restart() {
    let sim = simulator(5_000, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&with_connection_settings(
            &sim.base_url(),
            "rate_limit = { daily_quota = 3 }",
        ));
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert_eq!(
        out.status.code(),
        Some(75),
        "paused, not failed: {}",
        output_text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error[rate-limited]")
            && stderr.contains("daily quota of 3 requests is spent"),
        "{stderr}"
    );
    assert_eq!(
        ws.records("acme", "contacts").len(),
        3_000,
        "the pages before the quota are kept"
    );
    assert_eq!(ws.last_run(None).status.as_str(), "paused");

    sim.reset_counters();
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert_eq!(out.status.code(), Some(75), "{}", output_text(&out));
    assert_eq!(
        sim.counters().requests,
        0,
        "a restart does not renew the quota"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_records_every_request_without_query_strings() {
    let sim = simulator(1_500, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&with_connection_settings(
            &sim.base_url(),
            "rate_limit = { requests_per_second = 100, burst = 10, daily_quota = 1000 }",
        ));
    assert!(ws.weir_async(&["sync", "contacts"]).await.status.success());
    let out = ws.weir_async(&["audit", "acme", "--json"]).await;
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 2, "two pages");
    for entry in entries {
        assert_eq!(entry["connection"], "acme");
        assert_eq!(entry["method"], "GET");
        assert_eq!(entry["path"], "/v1/contacts");
        assert_eq!(entry["status"], 200);
        assert_eq!(entry["outcome"], "ok");
        assert!(entry["bytes_received"].as_u64().unwrap() > 1000);
    }
    assert_eq!(entries[0]["budget"]["today"], 998);
    let table = ws.weir_async(&["audit"]).await;
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("GET http://127.0.0.1"),
        "{}",
        output_text(&table)
    );
}
