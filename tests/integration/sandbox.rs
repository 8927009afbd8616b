//! Misbehaving connectors are contained: each fails alone with a message
//! that says what happened and what to do, while a healthy flow running at
//! the same time in the same process completes with correct data.

use std::process::Output;

use partner_sim::{Fault, PartnerSim};
use weir_tests::{Workspace, acme_config, guests, output_text};

use crate::stored::Stored;
use crate::{simulator, workspace};

/// Runs the healthy `contacts` flow and the `bad` flow together.
async fn run_beside_a_healthy_flow(
    ws: &Workspace,
    sim: &PartnerSim,
    guest: &str,
    connector: &str,
    connection_extra: &str,
) -> Output {
    let file = format!("{}.wasm", connector.replace('-', "_"));
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .install(guest, &file)
        .write_config(&format!(
            r#"{}
[connections.bad]
connector = "{connector}"
{connection_extra}

[flows.bad]
source = "bad"
stream = "{stream}"
"#,
            acme_config(&sim.base_url()),
            stream = stream_of(connector),
        ));
    let out = ws
        .weir_async(&["sync", "contacts", "bad", "--jobs", "2"])
        .await;
    let stored = ws.records("acme", "contacts").len();
    assert_eq!(
        stored,
        sim.records("contacts").len(),
        "the healthy flow completed: {}",
        output_text(&out)
    );
    assert_eq!(ws.last_run(Some("contacts")).status.as_str(), "succeeded");
    out
}

fn stream_of(connector: &str) -> &'static str {
    match connector {
        "spin-forever" => "spin",
        "alloc-hog" => "hog",
        "panic" => "boom",
        "huge-output" => "flood",
        "http-escape" => "attempts",
        _ => "contacts",
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_is_stopped_at_the_deadline() {
    let sim = simulator(3_000, 0).await;
    let ws = workspace();
    let out = run_beside_a_healthy_flow(
        &ws,
        &sim,
        guests::SPIN_FOREVER,
        "spin-forever",
        "call_timeout = \"1s\"",
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = stderr(&out);
    assert!(
        stderr.contains("error[connector-timeout]: connector `spin-forever 0.1.0` (connection `bad`) did not finish `read` within its deadline of 1.0 s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: if the partner is legitimately slow, raise `call_timeout`"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_hog_hits_its_cap_and_fails_alone() {
    let sim = simulator(3_000, 0).await;
    let ws = workspace();
    let out = run_beside_a_healthy_flow(
        &ws,
        &sim,
        guests::ALLOC_HOG,
        "alloc-hog",
        "memory_limit_mb = 32",
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = stderr(&out);
    assert!(stderr.contains("error[connector-trap]: connector `alloc-hog 0.1.0` (connection `bad`) crashed in `read`"), "{stderr}");
    assert!(stderr.contains("memory allocation"), "{stderr}");
    assert!(
        stderr.contains("hint: the connector ran out of memory: raise `memory_limit_mb`"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_is_reported_with_the_plugin_and_its_message() {
    let sim = simulator(3_000, 0).await;
    let ws = workspace();
    let out = run_beside_a_healthy_flow(&ws, &sim, guests::PANIC, "panic", "").await;
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = stderr(&out);
    assert!(
        stderr.contains(
            "error[connector-trap]: connector `panic 0.1.0` (connection `bad`) crashed in `read`"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("the partner sent a shape this connector never expected"),
        "{stderr}"
    );
    assert_eq!(
        ws.last_run(Some("bad")).error_code.as_deref(),
        Some("connector-trap")
    );

    // The next run gets a fresh instance and fails the same clean way.
    let again = ws.weir_async(&["sync", "bad"]).await;
    assert_eq!(again.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn floods_of_output_are_capped_and_an_oversized_page_is_refused() {
    let sim = simulator(3_000, 0).await;
    let ws = workspace();
    let out = run_beside_a_healthy_flow(
        &ws,
        &sim,
        guests::HUGE_OUTPUT,
        "huge-output",
        "max_page_mb = 1",
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = stderr(&out);
    assert!(stderr.contains("error[connector-contract]: connector `huge-output 0.1.0` (connection `bad`) broke the contract in `read`"), "{stderr}");
    assert!(
        stderr.contains("over the connection's limit of 1048576 (`max_page_mb`)"),
        "{stderr}"
    );
    assert_eq!(
        ws.count_records("bad", "flood"),
        0,
        "nothing of the refused page was stored"
    );

    // With logs on, the guest's output is kept only up to its caps.
    let verbose = ws.weir_async(&["sync", "bad", "-v"]).await;
    let log = stderr_len(&verbose);
    assert!(log < 4 << 20, "the log stays small: {log} bytes");
    assert!(
        String::from_utf8_lossy(&verbose.stderr).contains("output over the limits was dropped")
    );
}

fn stderr_len(out: &Output) -> usize {
    out.stderr.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_out_of_the_egress_grant_is_refused() {
    let sim = simulator(3_000, 0).await;
    let ws = workspace();
    let sim_url = sim.base_url();
    // The connection allows the simulator exactly, and the other origins
    // only through wildcards: declared and allowed, but not explicitly.
    let extra = format!(
        r#"config = {{ sim_url = "{sim_url}" }}
allowed_hosts = ["{sim_url}", "http://169.254.169.254:*", "http://localhost:*"]
secrets.api_key = {{ env = "ACME_API_KEY" }}"#
    );
    let out =
        run_beside_a_healthy_flow(&ws, &sim, guests::HTTP_ESCAPE, "http-escape", &extra).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let attempts = &ws.records("bad", "attempts")[0].1;
    let text = |k: &str| attempts[k].as_str().unwrap().to_string();
    assert!(
        text("disallowed").contains("`http://evil.example` is not allowed for this connection"),
        "{attempts}"
    );
    assert_eq!(
        attempts["redirect_status"], 302,
        "the redirect is handed to the connector, not followed"
    );
    assert!(
        text("redirect_followed").contains("`http://evil.example` is not allowed"),
        "{attempts}"
    );
    assert!(
        text("private_ip").contains("is a cloud metadata service"),
        "{attempts}"
    );
    assert!(
        text("loopback_name").contains("is the loopback interface"),
        "{attempts}"
    );
    let stderr = stderr(&out);
    assert_eq!(
        stderr.matches("error[egress-denied]").count(),
        1,
        "the connector went on: the first refusal is reported, once: {stderr}"
    );

    let audit = ws.weir_async(&["audit", "bad", "--json"]).await;
    let entries: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let denied = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .count();
    assert_eq!(
        denied, 4,
        "every refused attempt is in the audit log: {entries}"
    );
    let reached_sim_by_name = sim
        .counters()
        .list_calls
        .iter()
        .filter(|c| c.resource == "contacts")
        .count();
    assert_eq!(
        reached_sim_by_name, 3,
        "only the healthy flow's pages reached the simulator"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_that_never_answers_is_given_up_on_within_call_timeout() {
    let sim = simulator(3_000, 0).await;
    let slow = simulator(100, 0).await;
    slow.inject(Fault::new("GET", "/v1/contacts").times(1_000).hang());
    let ws = workspace();
    let slow_url = slow.base_url();
    let extra = format!(
        r#"config = {{ base_url = "{slow_url}" }}
allowed_hosts = ["{slow_url}"]
secrets.api_key = {{ env = "ACME_API_KEY" }}
call_timeout = "2s"
first_byte_timeout = "500ms""#
    );
    let out = run_beside_a_healthy_flow(&ws, &sim, guests::ACME_CRM, "acme-crm", &extra).await;
    assert_eq!(out.status.code(), Some(75), "{}", output_text(&out));
    let stderr = stderr(&out);
    assert!(
        stderr.contains("flow `bad`: error[connector-transient]")
            && stderr.contains("no response within "),
        "{stderr}"
    );
    assert_eq!(ws.runs_of(Some("bad")).len(), 1);
    // Retries of the call share its `call_timeout`: at most one call's
    // worth of attempts (4), where 4 calls of 4 attempts each went before.
    let requests = slow.counters().requests;
    assert!(
        (1..=4).contains(&requests),
        "the retries fit in one call_timeout: {requests} requests"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_variables_of_the_environment_are_ignored() {
    let sim = simulator(500, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    let out = tokio::process::Command::from({
        let mut cmd = ws.command(&["sync", "contacts"]);
        cmd.env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("http_proxy", "http://127.0.0.1:9")
            .env("ALL_PROXY", "http://127.0.0.1:9");
        cmd
    })
    .output()
    .await
    .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(ws.records("acme", "contacts").len(), 500);
}
