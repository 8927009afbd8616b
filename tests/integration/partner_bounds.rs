//! No partner holds a connection forever: `Retry-After` holds on every
//! connection and across runs, redirect loops are cut, stalled responses
//! end at the idle timeout, and oversized headers fail at once.

use std::time::Duration;

use partner_sim::Fault;
use weir_tests::{acme_config, guests, output_text};

use crate::{simulator, workspace};

/// `acme_config` with extra keys in the connection's table.
fn with_connection_settings(base_url: &str, settings: &str) -> String {
    acme_config(base_url).replacen(
        "secrets.api_key = { env = \"ACME_API_KEY\" }",
        &format!("secrets.api_key = {{ env = \"ACME_API_KEY\" }}\n{settings}"),
        1,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_holds_without_rate_limit_and_across_runs() {
    let sim = simulator(10, 0).await;
    sim.inject(
        Fault::new("GET", "/v1/contacts")
            .times(100)
            .reply(429, vec![("retry-after".into(), "86400".into())]),
    );
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert_eq!(out.status.code(), Some(75), "{}", output_text(&out));
    assert_eq!(
        sim.counters().requests,
        1,
        "nothing more is sent once the partner asked to wait"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no request goes to it for 15 min 0 s"),
        "the log says what happens: {stderr}"
    );
    assert!(!stderr.contains("trying again"), "{stderr}");
    assert!(stderr.contains("error[rate-limited]"), "{stderr}");

    sim.reset_counters();
    let again = ws.weir_async(&["sync", "contacts"]).await;
    assert_eq!(again.status.code(), Some(75), "{}", output_text(&again));
    assert_eq!(
        sim.counters().requests,
        0,
        "the next run waits too: `blocked_until` was kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_loop_is_cut_after_max_redirects() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    ws.install(guests::HTTP_ESCAPE, "http_escape.wasm")
        .write_config(&format!(
            r#"
[connections.escape]
connector = "http-escape"
config = {{ sim_url = "{url}", follow_loop = true }}
allowed_hosts = ["{url}"]
secrets.api_key = {{ env = "ACME_API_KEY" }}
max_redirects = 3

[flows.attempts]
source = "escape"
stream = "attempts"
"#,
            url = sim.base_url()
        ));
    let out = ws.weir_ok(&["sync", "attempts"]).await;
    let attempts = &ws.records("escape", "attempts")[0].1;
    assert_eq!(
        attempts["answered"], 4,
        "the first request and three redirects: {attempts}"
    );
    assert!(
        attempts["ended"]
            .as_str()
            .unwrap()
            .contains("more than 3 redirects followed in one call"),
        "{attempts}"
    );
    assert_eq!(
        sim.counters().by_route.get("GET /v1/redirect/loop"),
        Some(&4),
        "the first request and three redirects reached the partner"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[too-many-redirects]"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_that_stalls_midway_is_cut_at_the_idle_timeout() {
    let sim = simulator(10, 0).await;
    // The headers come at once, then each 64 bytes of the body take 5 s.
    sim.inject(
        Fault::new("GET", "/v1/contacts")
            .times(100)
            .trickle(64, Duration::from_secs(5)),
    );
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&with_connection_settings(
            &sim.base_url(),
            "idle_timeout = \"300ms\"\ncall_timeout = \"20s\"",
        ));
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert_eq!(out.status.code(), Some(75), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "the response stalled, no data for 300 ms (see `idle_timeout` of connection `acme`)"
        ),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn response_headers_over_either_cap_fail_at_once_naming_the_cap() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    // Over the HTTP parser's count of headers but small; then one header
    // over Weir's 64 KiB but within what the parser takes.
    let many: Vec<(String, String)> = (0..150)
        .map(|i| (format!("x-pad-{i}"), "v".into()))
        .collect();
    let big = vec![("x-pad".to_string(), "v".repeat(80 << 10))];
    for headers in [many, big] {
        sim.reset_counters();
        sim.inject(
            Fault::new("GET", "/v1/contacts")
                .times(100)
                .reply(200, headers),
        );
        let out = ws.weir_async(&["sync", "contacts"]).await;
        assert_eq!(
            out.status.code(),
            Some(1),
            "permanent: {}",
            output_text(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error[connector-permanent]"), "{stderr}");
        assert!(
            stderr.contains("are over the limit of 64 KiB (or 100 headers) of connection `acme` (`max_response_header_kb`)"),
            "{stderr}"
        );
        assert!(
            stderr.contains("hint: the partner's response is over a cap"),
            "{stderr}"
        );
        assert_eq!(sim.counters().requests, 1, "never retried");
        sim.clear_faults();
    }
}
