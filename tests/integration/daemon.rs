//! `weir run`: one integration, many tenants, each on its own schedule and
//! settings, changed at runtime through the admin API.

use std::collections::HashMap;
use std::time::Duration;

use partner_sim::Fault;
use serde_json::{Value, json};
use weir_tests::{
    ConfigEdit, RunningWeir, Workspace, acme_connection, connected_tenant, guests, output_text,
    wait_until,
};

use crate::stored::Stored;
use crate::{simulator, workspace};

fn daemon_config(base_url: &str, extra_connection: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[daemon]
max_concurrent_runs = 8
max_runs_per_connection = 1
failures_before_unhealthy = 3

{connection}{extra_connection}

[flows.contacts]
source = "acme"
stream = "contacts"
schedule = "every 2s"

[flows.companies]
source = "acme"
stream = "companies"
schedule = "every 2s"
"#,
        connection = acme_connection("acme", base_url)
    )
}

/// Succeeded runs per flow, read from the store while the daemon runs.
fn succeeded_runs(ws: &Workspace) -> HashMap<String, i64> {
    let Ok(store) = rusqlite::Connection::open(ws.store_path()) else {
        return HashMap::new();
    };
    let Ok(mut stmt) =
        store.prepare("SELECT flow, count(*) FROM runs WHERE status = 'succeeded' GROUP BY flow")
    else {
        return HashMap::new();
    };
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

/// The latest start of a run of `flow`, ms since the epoch.
fn last_start(ws: &Workspace, flow: &str) -> i64 {
    ws.query_one(&format!(
        "SELECT coalesce(max(started_at), 0) FROM runs WHERE flow = '{flow}'"
    ))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Creates `count` tenants, each connected to `acme` with its own key
/// unless `customize` gives its connections.
async fn add_tenants(
    weir: &RunningWeir,
    count: usize,
    customize: impl Fn(usize) -> serde_json::Value,
) {
    for i in 0..count {
        let mut tenant = customize(i);
        if tenant.get("connections").is_none() {
            tenant["connections"] = connected_tenant("-", &["acme"])["connections"].take();
        }
        let (status, body) = weir.admin("POST", "/tenants", Some(tenant)).await;
        assert_eq!(status, 201, "tenant {i}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_tenants_run_on_their_schedules_and_changes_apply_without_restart() {
    let sim = simulator(100, 20).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&daemon_config(&sim.base_url(), ""));
    let weir = ws.start_daemon().await;
    add_tenants(&weir, 50, |i| {
        if i == 7 {
            json!({ "id": "t7", "flows": { "companies": { "enabled": false } } })
        } else {
            json!({ "id": format!("t{i}") })
        }
    })
    .await;

    // Every enabled (tenant, flow) runs, and runs again on its schedule.
    let enabled: Vec<String> = (0..50)
        .flat_map(|i| ["contacts", "companies"].map(|f| format!("t{i}.{f}")))
        .filter(|f| f != "t7.companies")
        .collect();
    let all_ran_twice = wait_until(Duration::from_secs(120), || {
        let runs = succeeded_runs(&ws);
        enabled
            .iter()
            .all(|f| runs.get(f).copied().unwrap_or(0) >= 2)
    })
    .await;
    assert!(
        all_ran_twice,
        "every enabled flow ran twice: {:?}",
        succeeded_runs(&ws).len()
    );
    assert_eq!(
        last_start(&ws, "t7.companies"),
        0,
        "a disabled flow never runs"
    );
    let per_tenant: Vec<(String, i64)> = {
        let store = ws.store();
        let mut stmt = store
            .prepare(
                "SELECT s.connection, count(*) FROM records r JOIN streams s ON s.id = r.stream_id
                 WHERE s.name = 'contacts' GROUP BY s.connection",
            )
            .unwrap();
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .flatten()
            .collect()
    };
    assert_eq!(per_tenant.len(), 50, "each tenant has its own copy");
    assert!(per_tenant.iter().all(|(_, n)| *n == 100), "{per_tenant:?}");

    // Turning a flow off stops further runs within one tick.
    let (status, body) = weir
        .admin("POST", "/tenants/t5/flows/contacts/disable", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let disabled_at = now_ms();
    // A schedule change applies without a restart.
    let (status, body) = weir
        .admin(
            "PUT",
            "/tenants/t6/flows/contacts/schedule",
            Some(json!({ "schedule": "every 1h" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let rescheduled_at = now_ms();
    let t4_runs = succeeded_runs(&ws)["t4.contacts"];
    assert!(
        wait_until(
            Duration::from_secs(30),
            || succeeded_runs(&ws)["t4.contacts"] >= t4_runs + 2
        )
        .await,
        "other flows keep running"
    );
    assert!(
        last_start(&ws, "t5.contacts") <= disabled_at + 400,
        "no run of a disabled flow starts after one tick"
    );
    assert!(
        last_start(&ws, "t6.contacts") <= rescheduled_at + 400,
        "the new schedule applies at once"
    );

    let (status, statuses) = weir.admin("GET", "/status", None).await;
    assert_eq!(status, 200);
    let t5 = statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["flow"] == "t5.contacts")
        .unwrap();
    assert_eq!(t5["enabled"], false);
    let t6 = statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["flow"] == "t6.contacts")
        .unwrap();
    assert_eq!(t6["schedule"], "every 1h");
    assert!(
        weir.terminate().await.success(),
        "a SIGTERM ends weir with exit code 0"
    );

    let out = ws.weir_async(&["status"]).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("every 1h"),
        "{}",
        output_text(&out)
    );

    // A tenant's instance of a flow has its own runs and checkpoints.
    let out = ws.weir_async(&["runs", "t3.contacts", "--json"]).await;
    let runs: Value = serde_json::from_slice(&out.stdout).expect("runs as JSON");
    let runs = runs.as_array().unwrap();
    assert!(runs.len() >= 2, "{}", output_text(&out));
    assert!(runs.iter().all(|r| r["flow"] == "t3.contacts"));
    let out = ws.weir_async(&["state", "show", "t3.contacts"]).await;
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("contacts"),
        "{}",
        output_text(&out)
    );
    let out = ws.weir_async(&["runs", "nobody.contacts"]).await;
    assert!(
        !out.status.success() && output_text(&out).contains("nobody"),
        "{}",
        output_text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_with_bad_credentials_fails_alone() {
    let sim = simulator(150, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&daemon_config(&sim.base_url(), ""));
    let weir = ws.start_daemon_with(&[("WRONG_KEY", "not-the-key")]).await;
    add_tenants(&weir, 50, |i| {
        let mut tenant =
            json!({ "id": format!("t{i}"), "flows": { "companies": { "enabled": false } } });
        if i == 13 {
            tenant["connections"] =
                json!({ "acme": { "secrets": { "api_key": { "env": "WRONG_KEY" } } } });
        }
        tenant
    })
    .await;
    let healthy_done = wait_until(Duration::from_secs(120), || {
        let runs = succeeded_runs(&ws);
        (0..50)
            .filter(|i| *i != 13)
            .all(|i| runs.contains_key(&format!("t{i}.contacts")))
    })
    .await;
    assert!(healthy_done, "the 49 others complete");
    let marked = wait_until(Duration::from_secs(60), || {
        ws.store()
            .query_row(
                "SELECT healthy FROM flow_states WHERE flow = 't13.contacts'",
                [],
                |r| r.get::<_, bool>(0),
            )
            .is_ok_and(|healthy| !healthy)
    })
    .await;
    assert!(marked, "the failing flow is marked unhealthy");
    let error = ws.flow_state("t13.contacts").last_error.unwrap_or_default();
    assert!(error.contains("[connector-auth]"), "{error}");
    assert_eq!(succeeded_runs(&ws).get("t13.contacts"), None);
    let stored =
        ws.count_records("t12.acme", "contacts") + ws.count_records("t12.acme", "companies");
    assert_eq!(stored, 150, "the others have correct data");
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_run_ends_it_at_its_last_committed_page_and_the_restart_resumes_there() {
    let sim = simulator(6_000, 0).await;
    let ws = workspace();
    // 60 pages at 15 requests a second: a run long enough to interrupt.
    ws.install(guests::ACME_CRM, "acme_crm.wasm").write_config(
        &daemon_config(
            &sim.base_url(),
            "page_size = 100\nrate_limit = { requests_per_second = 15 }",
        )
        .edit("schedule = \"every 2s\"", "schedule = \"every 1h\""),
    );
    let weir = ws.start_daemon().await;
    add_tenants(
        &weir,
        1,
        |_| json!({ "id": "solo", "flows": { "companies": { "enabled": false } } }),
    )
    .await;
    let queued = wait_until(Duration::from_secs(60), || {
        let handle = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            handle.block_on(weir.admin("POST", "/tenants/solo/flows/contacts/run", None))
        })
        .1["outcome"]
            == "queued"
    })
    .await;
    assert!(queued, "a run on demand is queued");
    let started = wait_until(Duration::from_secs(30), || {
        rusqlite::Connection::open(ws.store_path())
            .and_then(|c| {
                c.query_row("SELECT coalesce(max(pages), 0) FROM runs", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .is_ok_and(|pages| pages >= 5)
    })
    .await;
    assert!(started, "the first run is under way");
    let (status, body) = weir
        .admin("POST", "/tenants/solo/flows/contacts/run", None)
        .await;
    assert_eq!(
        (status, &body["outcome"]),
        (202, &json!("coalesced")),
        "a trigger during a run is folded in"
    );

    assert!(
        weir.terminate().await.success(),
        "graceful shutdown exits 0"
    );
    let first = ws.first_run(None);
    let (status, pages) = (first.status.as_str(), first.pages as i64);
    assert_eq!(status, "interrupted");
    assert!(pages < 60, "stopped mid-way");
    let stored = ws.records("solo.acme", "contacts").len() as i64;
    assert_eq!(
        stored,
        pages * 100,
        "every committed page is stored, nothing more"
    );
    // The page in flight at the signal, if its request was out, was
    // abandoned: it is the only one read and not committed.
    let first_run = sim
        .counters()
        .list_calls
        .iter()
        .filter(|c| c.status == 200)
        .count() as i64;
    let abandoned = first_run - pages;
    assert!(
        abandoned == 0 || abandoned == 1,
        "{first_run} pages read, {pages} committed"
    );

    let weir = ws.start_daemon().await;
    let done = wait_until(Duration::from_secs(90), || {
        rusqlite::Connection::open(ws.store_path())
            .and_then(|c| {
                c.query_row(
                    "SELECT count(*) FROM runs WHERE status = 'succeeded'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .is_ok_and(|n| n >= 1)
    })
    .await;
    assert!(done, "the restarted daemon finishes the sync");
    assert!(weir.terminate().await.success());
    let served = sim.counters().served("contacts");
    assert_eq!(
        served,
        6_000 + 100 * abandoned as u64,
        "no page was read twice but the abandoned one"
    );
    assert_eq!(ws.records("solo.acme", "contacts").len(), 6_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_sigterm_ends_a_daemon_whose_run_waits_on_a_partner_that_never_answers() {
    let sim = simulator(300, 0).await;
    // The first page is answered, the second never is.
    sim.inject(
        Fault::new("GET", "/v1/contacts")
            .skip(1)
            .times(1_000)
            .hang(),
    );
    let ws = workspace();
    // Timeouts and a shutdown grace far beyond the test: only ending the
    // run at the signal lets the daemon exit in time.
    ws.install(guests::ACME_CRM, "acme_crm.wasm").write_config(
        &daemon_config(
            &sim.base_url(),
            "page_size = 100\ncall_timeout = \"1h\"\nrequest_timeout = \"1h\"\nfirst_byte_timeout = \"1h\"",
        )
        .edit("schedule = \"every 2s\"", "schedule = \"every 1h\"")
        .edit("failures_before_unhealthy = 3", "failures_before_unhealthy = 3\nshutdown_grace = \"1h\""),
    );
    let weir = ws.start_daemon().await;
    add_tenants(
        &weir,
        1,
        |_| json!({ "id": "solo", "flows": { "companies": { "enabled": false } } }),
    )
    .await;
    let (status, body) = weir
        .admin("POST", "/tenants/solo/flows/contacts/run", None)
        .await;
    assert_eq!(status, 202, "{body}");
    assert!(
        wait_until(Duration::from_secs(60), || sim.counters().list_calls.len()
            == 2)
        .await,
        "the second list call is waiting for an answer"
    );
    let before = sim.counters().requests;
    assert!(
        weir.terminate().await.success(),
        "one SIGTERM, a graceful exit"
    );
    assert_eq!(
        sim.counters().requests,
        before,
        "no request after the signal"
    );
    let runs = ws.runs_of(None);
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].status.as_str(), runs[0].pages),
        ("interrupted", 1),
        "the run ended at its last committed page, resumable"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_daemon_on_one_store_exits_2_naming_the_first_ones_pid() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&daemon_config(&sim.base_url(), ""));
    let first = ws.start_daemon().await;
    let pid = first.pid();
    let out = ws.weir_async(&["run"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error[daemon-running]: another `weir run` (pid {pid}) already serves store `"
        )) && stderr.contains(&format!("hint: stop it first (`kill {pid}`)")),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("scheduling"),
        "it never scheduled: {}",
        output_text(&out)
    );
    // Beside the daemon, the other commands work.
    ws.weir_ok(&["status"]).await;
    ws.weir_ok(&["sync", "contacts"]).await;
    assert_eq!(ws.records("acme", "contacts").len(), 10);

    // The lock goes with its process, however it ends.
    first.kill().await;
    let second = ws.start_daemon().await;
    assert!(second.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_refuses_bad_changes_and_missing_tokens() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&daemon_config(&sim.base_url(), ""));
    let weir = ws.start_daemon().await;
    let unauthenticated = reqwest::get(format!("{}/tenants", weir.admin_url))
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let health = reqwest::get(format!("{}/health", weir.admin_url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "liveness needs no token");

    add_tenants(&weir, 1, |_| json!({ "id": "acme-eu" })).await;
    let (status, body) = weir
        .admin(
            "PUT",
            "/tenants/acme-eu/flows/contacts/mapping",
            Some(json!({ "mapping": { "fields": [{ "to": "/when", "from": "/created_at", "type": "date", "format": "%Q" }] } })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "tenant-invalid");
    assert!(
        body["error"]["path"]
            .as_str()
            .unwrap()
            .starts_with("flows.contacts.mapping.fields[0]"),
        "{body}"
    );
    let (status, body) = weir
        .admin(
            "PUT",
            "/tenants/acme-eu/flows/contacts/schedule",
            Some(json!({ "schedule": "whenever" })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["path"], "flows.contacts.schedule");
    let (status, _) = weir
        .admin("POST", "/tenants/nobody/flows/contacts/enable", None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = weir
        .admin("POST", "/tenants", Some(json!({ "id": "acme-eu" })))
        .await;
    assert_eq!(status, 409, "creating twice is a conflict");
    let (status, tenant) = weir.admin("GET", "/tenants/acme-eu", None).await;
    assert_eq!(status, 200);
    assert!(
        tenant["flows"]["contacts"].get("mapping").is_none(),
        "nothing of the refused changes was saved"
    );
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenants_api_key_given_as_a_value_is_kept_sealed_and_used() {
    let sim = simulator(300, 0).await;
    let ws = workspace();
    // The integration's default key is unset: only the tenant's own works.
    let config = daemon_config(&sim.base_url(), "")
        .edit("{ env = \"ACME_API_KEY\" }", "{ env = \"NO_DEFAULT_KEY\" }")
        + "\n[secrets]\nkey = { env = \"WEIR_SECRETS_KEY\" }\n";
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&config);
    let sealing_key = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";
    let weir = ws
        .start_daemon_with(&[("WEIR_SECRETS_KEY", sealing_key)])
        .await;
    let api_key = weir_tests::API_KEY;
    let (status, saved) = weir
        .admin(
            "POST",
            "/tenants",
            Some(json!({
                "id": "t1",
                "connections": { "acme": { "secrets": { "api_key": { "value": api_key } } } },
                "flows": { "companies": { "enabled": false } }
            })),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    assert!(!saved.to_string().contains(api_key), "{saved}");
    assert!(saved["connections"]["acme"]["secrets"]["api_key"]["sealed"].is_string());

    let (status, _) = weir
        .admin("POST", "/tenants/t1/flows/contacts/run", None)
        .await;
    assert_eq!(status, 202);
    assert!(
        wait_until(Duration::from_secs(30), || {
            ws.records("t1.acme", "contacts").len() == 300
        })
        .await,
        "the sealed key opened and the partner accepted it"
    );
    let (_, shown) = weir.admin("GET", "/tenants/t1", None).await;
    assert!(!shown.to_string().contains(api_key));
    for file in ["weir.db", "weir.db-wal"] {
        let bytes = std::fs::read(ws.path().join(file)).unwrap_or_default();
        assert!(
            !bytes
                .windows(api_key.len())
                .any(|w| w == api_key.as_bytes()),
            "{file} holds the key in clear"
        );
    }

    let (status, refused) = weir
        .admin(
            "POST",
            "/tenants",
            Some(json!({
                "id": "t2",
                "connections": { "acme": { "secrets": { "api_key": { "value": "" } } } }
            })),
        )
        .await;
    assert!(status >= 400, "{refused}");
    assert!(refused.to_string().contains("non-empty"), "{refused}");
    assert!(weir.terminate().await.success());

    // Key rotation: a new key first, the old one after; reseal; the old
    // one goes, and the tenant's key still opens.
    let new_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    ws.write_config(&config.edit(
        "key = { env = \"WEIR_SECRETS_KEY\" }",
        "key = [{ env = \"NEW_SECRETS_KEY\" }, { env = \"WEIR_SECRETS_KEY\" }]",
    ));
    let out = ws
        .command(&["tenants", "reseal"])
        .env("NEW_SECRETS_KEY", new_key)
        .env("WEIR_SECRETS_KEY", sealing_key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 secret values of 1 tenants"),
        "{}",
        output_text(&out)
    );
    ws.write_config(&config.edit("WEIR_SECRETS_KEY", "NEW_SECRETS_KEY"));
    let out = ws
        .command(&["sync", "contacts", "--tenant", "t1", "--full-refresh"])
        .env("NEW_SECRETS_KEY", new_key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));

    // Another key does not open it, and says what to do.
    let out = ws
        .command(&["sync", "contacts", "--tenant", "t1"])
        .env("NEW_SECRETS_KEY", sealing_key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("secret-missing") && stderr.contains("list that key in weir.toml"),
        "{}",
        output_text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_daemons_run_shows_interrupted_in_status_with_its_end_at_its_last_commit() {
    let sim = simulator(3_000, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm").write_config(
        &daemon_config(
            &sim.base_url(),
            "call_timeout = \"10m\"\nfirst_byte_timeout = \"10m\"",
        )
        .edit("schedule = \"every 2s\"", "schedule = \"every 1h\""),
    );
    // Page 2 never answers: the run is in flight when the daemon dies.
    sim.inject(
        partner_sim::Fault::new("GET", "/v1/contacts")
            .skip(1)
            .times(1_000)
            .hang(),
    );
    let weir = ws.start_daemon().await;
    add_tenants(
        &weir,
        1,
        |_| json!({ "id": "solo", "flows": { "companies": { "enabled": false } } }),
    )
    .await;
    let (status, body) = weir
        .admin("POST", "/tenants/solo/flows/contacts/run", None)
        .await;
    assert_eq!(status, 202, "{body}");
    let committed = || -> Option<i64> {
        rusqlite::Connection::open(ws.store_path())
            .and_then(|c| {
                c.query_row(
                    "SELECT committed_at FROM runs WHERE flow = 'solo.contacts' AND pages = 1",
                    [],
                    |r| r.get(0),
                )
            })
            .ok()
    };
    let scheduled = || {
        rusqlite::Connection::open(ws.store_path())
            .and_then(|c| {
                c.query_row(
                    "SELECT count(*) FROM flow_states WHERE flow = 'solo.contacts'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .is_ok_and(|n| n == 1)
    };
    assert!(
        wait_until(Duration::from_secs(60), || committed().is_some()
            && sim.counters().list_calls.len() == 2
            && scheduled())
        .await,
        "page 1 is committed, page 2 asked for, and the flow's state saved"
    );
    let last_commit = committed().unwrap();
    weir.kill().await;

    let out = ws.weir_async(&["status", "--json"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let flow = status["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["flow"] == "solo.contacts")
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(flow["last_run"]["status"], "interrupted", "{flow}");
    assert_eq!(flow["last_run"]["finished_at_ms"], last_commit, "{flow}");
    let text = ws.weir_async(&["status"]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("interrupted") && !text.contains("running"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_without_its_own_connection_never_reaches_the_partner_and_shows_not_connected() {
    // weir.toml's account is on `default`; tenant `own` connects its own
    // account on `theirs`. `bare` gives nothing: none of its flows may
    // run on weir.toml's account.
    let (default, theirs) = (simulator(40, 5).await, simulator(30, 0).await);
    let ws = workspace();
    let config = daemon_config(&default.base_url(), "").edit(
        &format!("allowed_hosts = [\"{}\"]", default.base_url()),
        &format!(
            "allowed_hosts = [\"{}\", \"{}\"]",
            default.base_url(),
            theirs.base_url()
        ),
    );
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&config);
    let weir = ws.start_daemon().await;
    let (status, body) = weir
        .admin("POST", "/tenants", Some(json!({ "id": "bare" })))
        .await;
    assert_eq!(status, 201, "{body}");
    let mut own = connected_tenant("own", &["acme"]);
    own["connections"]["acme"]["config"] = json!({ "base_url": theirs.base_url() });
    own["flows"] = json!({ "companies": { "enabled": false } });
    let (status, body) = weir.admin("POST", "/tenants", Some(own)).await;
    assert_eq!(status, 201, "{body}");

    // `own` runs twice on its schedule of 2 s: the scheduler went past the
    // time `bare` was due (its jitter is under 200 ms) more than once.
    let scheduled = wait_until(Duration::from_secs(120), || {
        succeeded_runs(&ws)
            .get("own.contacts")
            .copied()
            .unwrap_or(0)
            >= 2
    })
    .await;
    assert!(
        scheduled,
        "the connected tenant runs: {:?}",
        succeeded_runs(&ws)
    );
    assert_eq!(
        default.counters().requests,
        0,
        "nothing reached weir.toml's account"
    );
    assert!(theirs.counters().route("GET /v1/contacts") >= 2);
    assert_eq!(last_start(&ws, "bare.contacts"), 0, "bare never ran");

    let out = ws.weir_async(&["status", "--json"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let flow = |name: &str| {
        status["flows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["flow"] == name)
            .unwrap_or_else(|| panic!("no {name} in {status}"))
            .clone()
    };
    for name in ["bare.contacts", "bare.companies"] {
        let bare = flow(name);
        assert_eq!(bare["connection"], "not-connected", "{bare}");
        assert_eq!(bare["not_connected"][0]["connection"], "acme", "{bare}");
        assert_eq!(bare["not_connected"][0]["missing"], json!(["api_key"]));
        assert_eq!(bare["next_run_at_ms"], Value::Null, "{bare}");
    }
    assert_eq!(flow("own.contacts")["connection"], "connected");
    let out = ws.weir_async(&["status"]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.contains("bare") && l.contains("not-connected")),
        "{table}"
    );
    let (_, api_status) = weir.admin("GET", "/status", None).await;
    let bare = api_status
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["flow"] == "bare.contacts")
        .unwrap();
    assert_eq!(bare["connection"], "not-connected", "{api_status}");

    // Asked to run, on the admin API or the CLI, it refuses and says how
    // to connect.
    let (status, body) = weir
        .admin("POST", "/tenants/bare/flows/contacts/run", None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "not-connected", "{body}");
    assert!(
        body["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("PUT /tenants/bare/connections/acme"),
        "{body}"
    );
    let out = ws
        .weir_async(&["sync", "contacts", "--tenant", "bare"])
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(
        stderr.contains("error[not-connected]")
            && stderr.contains("hint:")
            && stderr.contains("weir tenants connect bare acme"),
        "{stderr}"
    );
    assert_eq!(default.counters().requests, 0, "still nothing reached it");

    // Once it connects its own account, it runs at once.
    let (status, body) = weir
        .admin(
            "PUT",
            "/tenants/bare/connections/acme",
            Some(json!({ "secrets": { "api_key": { "env": "ACME_API_KEY" } } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ran = wait_until(Duration::from_secs(60), || {
        succeeded_runs(&ws).contains_key("bare.contacts")
    })
    .await;
    assert!(ran, "a connected tenant runs");
    assert!(default.counters().route("GET /v1/contacts") >= 1);
    assert_eq!(ws.records("bare.acme", "contacts").len(), 40);
    assert!(weir.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_pinned_from_the_cli_runs_only_that_connector_version_with_or_without_the_daemon()
{
    let sim = simulator(40, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&daemon_config(&sim.base_url(), ""));
    let mut t1 = connected_tenant("t1", &["acme"]);
    t1["flows"] = json!({ "companies": { "enabled": false } });
    let file = ws.path().join("t1.json");
    std::fs::write(&file, t1.to_string()).unwrap();
    ws.weir_ok(&["tenants", "set", "t1", file.to_str().unwrap()])
        .await;

    // Without a daemon: the pin is saved in the store and honoured.
    ws.weir_ok(&["tenants", "pin", "t1", "acme-crm", "9.9.9"])
        .await;
    let shown: Value =
        serde_json::from_slice(&ws.weir_ok(&["tenants", "show", "t1"]).await.stdout).unwrap();
    assert_eq!(shown["pins"], json!({ "acme-crm": "9.9.9" }));
    let out = ws.weir_async(&["sync", "contacts", "--tenant", "t1"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
    assert!(
        stderr.contains("pinned to acme-crm 9.9.9")
            && stderr.contains("weir tenants unpin t1 acme-crm"),
        "{stderr}"
    );
    assert_eq!(sim.counters().requests, 0, "no other version ran instead");
    ws.weir_ok(&["tenants", "pin", "t1", "acme-crm", "0.1.0"])
        .await;
    ws.weir_ok(&["sync", "contacts", "--tenant", "t1"]).await;
    assert_eq!(ws.records("t1.acme", "contacts").len(), 40);

    // With the daemon running: the CLI's pin and unpin apply at its next runs.
    let weir = ws.start_daemon().await;
    ws.weir_ok(&["tenants", "pin", "t1", "acme-crm", "9.9.9"])
        .await;
    let last_error = || {
        ws.store()
            .query_row(
                "SELECT last_error FROM flow_states WHERE flow = 't1.contacts'",
                [],
                |r| r.get::<_, Option<String>>(0),
            )
            .ok()
            .flatten()
    };
    let refused = wait_until(Duration::from_secs(60), || {
        last_error().is_some_and(|e| e.contains("pinned to acme-crm 9.9.9"))
    })
    .await;
    assert!(refused, "the daemon honours the pin: {:?}", last_error());
    ws.weir_ok(&["tenants", "unpin", "t1", "acme-crm"]).await;
    let unpinned = now_ms();
    let resumed = wait_until(Duration::from_secs(60), || {
        last_error().is_none() && last_start(&ws, "t1.contacts") > unpinned
    })
    .await;
    assert!(resumed, "unpinned, it follows the serving version");
    assert!(weir.terminate().await.success());
}
