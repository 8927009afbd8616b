use std::collections::BTreeMap;
use std::time::Duration;

use partner_sim::Fault;
use weir_host::contract::ChangeKind;
use weir_tests::{ConfigEdit, acme_config, guests, output_text, wait_until};

use crate::stored::Stored;
use crate::{simulator, workspace};

/// The partner's records by id, to compare with the store.
fn by_id(records: Vec<serde_json::Value>) -> BTreeMap<String, serde_json::Value> {
    records
        .into_iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect()
}

fn assert_store_equals_partner(
    ws: &weir_tests::Workspace,
    sim: &partner_sim::PartnerSim,
    stream: &str,
) {
    let stored: BTreeMap<_, _> = ws.records("acme", stream).into_iter().collect();
    let partner = by_id(sim.records(stream));
    assert_eq!(stored.len(), partner.len(), "{stream}: row count");
    assert!(
        stored == partner,
        "{stream}: stored records differ from the partner's"
    );
    assert_eq!(
        ws.all_records("acme", stream).len(),
        partner.len(),
        "{stream}: no duplicate rows"
    );
}

/// Cursors of the list calls the simulator answered with 200, in order.
fn served_cursors(sim: &partner_sim::PartnerSim, resource: &str) -> Vec<Option<String>> {
    sim.counters()
        .list_calls
        .iter()
        .filter(|c| c.resource == resource && c.status == 200)
        .map(|c| c.cursor.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn full_sync_stores_every_record_of_both_streams() {
    let sim = simulator(8_000, 2_000).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));

    let out = ws.weir_async(&["sync", "contacts", "companies"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert_store_equals_partner(&ws, &sim, "contacts");
    assert_store_equals_partner(&ws, &sim, "companies");
    assert_eq!(sim.counters().served("contacts"), 8_000);

    for (flow, stream) in [("contacts", "contacts"), ("companies", "companies")] {
        assert!(
            ws.checkpoint_of(flow, stream).is_some(),
            "{flow} kept its place"
        );
    }
    assert_eq!(ws.last_run(Some("contacts")).status.as_str(), "succeeded");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("8,000") && stdout.contains("2,000"),
        "summary table: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_sync_fetches_only_the_changed_records() {
    let sim = simulator(3_000, 10).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));

    sim.reset_counters();
    let changed = sim.mutate("contacts", 100);
    assert_eq!(changed.len(), 100);
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));

    let counters = sim.counters();
    assert_eq!(
        counters.served("contacts"),
        100,
        "only the changed records were fetched"
    );
    assert_eq!(served_cursors(&sim, "contacts").len(), 1, "one page");
    assert_store_equals_partner(&ws, &sim, "contacts");
    assert_eq!(ws.last_run(None).records_written, 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_brief_partner_fault_is_retried_within_the_run() {
    let sim = simulator(5_000, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    sim.inject(
        Fault::new("GET", "/v1/contacts")
            .skip(2)
            .times(1)
            .status(503),
    );

    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert_store_equals_partner(&ws, &sim, "contacts");
    let calls = sim.counters().list_calls;
    assert_eq!(calls[2].status, 503);
    assert_eq!(
        calls[3].cursor, calls[2].cursor,
        "the failed page is asked again"
    );
    assert_eq!(served_cursors(&sim, "contacts").len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_by_a_partner_outage_resumes_from_its_last_checkpoint() {
    let sim = simulator(10_000, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    // Page 5 fails on every retry: the run gives up after pages 1-4.
    sim.inject(
        Fault::new("GET", "/v1/contacts")
            .skip(4)
            .times(1_000)
            .status(500),
    );

    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert_eq!(
        out.status.code(),
        Some(75),
        "temporary failure exit code: {}",
        output_text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[connector-transient]"),
        "{}",
        output_text(&out)
    );
    assert_eq!(
        ws.records("acme", "contacts").len(),
        4_000,
        "pages 1-4 are durable"
    );
    let first_run = served_cursors(&sim, "contacts");
    assert_eq!(first_run.len(), 4);
    let failed_cursor = sim.counters().list_calls.last().unwrap().cursor.clone();

    sim.clear_faults();
    sim.reset_counters();
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let second_run = served_cursors(&sim, "contacts");
    assert_eq!(
        second_run[0], failed_cursor,
        "resumes at the page in flight"
    );
    assert_eq!(second_run.len(), 6, "pages 5-10, nothing before");
    assert!(
        second_run.iter().all(|c| !first_run.contains(c)),
        "no committed page is read again"
    );
    assert_eq!(sim.counters().served("contacts"), 6_000);
    assert_store_equals_partner(&ws, &sim, "contacts");
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_weir_mid_sync_loses_nothing_and_duplicates_nothing() {
    let sim = simulator(10_000, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    // Page 7 never answers: the process is killed while waiting for it.
    sim.inject(Fault::new("GET", "/v1/contacts").skip(6).times(1).hang());

    let mut child = ws
        .command(&["sync", "contacts"])
        .spawn()
        .expect("weir starts");
    let committed_six = wait_until(Duration::from_secs(60), || {
        ws.store_path().exists()
            && rusqlite::Connection::open(ws.store_path())
                .and_then(|c| {
                    c.query_row("SELECT coalesce(max(pages), 0) FROM runs", [], |r| {
                        r.get::<_, i64>(0)
                    })
                })
                .is_ok_and(|pages| pages == 6)
    })
    .await;
    assert!(committed_six, "six pages commit before the hang");
    let hung_cursor = wait_until(Duration::from_secs(60), || {
        sim.counters().list_calls.len() == 7
    })
    .await
    .then(|| sim.counters().list_calls[6].cursor.clone())
    .expect("the seventh page was requested");
    child.kill().expect("SIGKILL weir");
    child.wait().expect("reap weir");
    let first_run = served_cursors(&sim, "contacts");

    sim.clear_faults();
    sim.reset_counters();
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let second_run = served_cursors(&sim, "contacts");
    assert_eq!(second_run[0], hung_cursor, "resumes at the page in flight");
    assert_eq!(second_run.len(), 4, "pages 7-10 only");
    assert!(second_run.iter().all(|c| !first_run.contains(c)));
    assert_store_equals_partner(&ws, &sim, "contacts");
    assert_eq!(ws.first_run(None).status.as_str(), "interrupted");
}

#[tokio::test(flavor = "multi_thread")]
async fn state_reset_makes_the_next_run_read_everything_again() {
    let sim = simulator(1_500, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    assert!(ws.weir_async(&["sync", "contacts"]).await.status.success());

    let out = ws
        .weir_async(&["state", "show", "contacts", "--json"])
        .await;
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(shown[0]["stream"], "contacts");
    assert!(
        shown[0]["checkpoint"]["state"]
            .as_str()
            .unwrap()
            .contains("cursor")
    );

    assert!(
        ws.weir_async(&["state", "reset", "contacts"])
            .await
            .status
            .success()
    );
    sim.reset_counters();
    assert!(ws.weir_async(&["sync", "contacts"]).await.status.success());
    assert_eq!(sim.counters().served("contacts"), 1_500);
    assert_eq!(
        ws.all_records("acme", "contacts").len(),
        1_500,
        "re-reading upserts, never duplicates"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_refresh_deletes_companies_the_partner_deleted_without_telling() {
    let sim = simulator(0, 2_500).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    ws.weir_ok(&["sync", "companies"]).await;
    let mut gone: Vec<String> = sim
        .records("companies")
        .iter()
        .step_by(900)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    gone.sort();
    for id in &gone {
        sim.delete("companies", id).unwrap();
    }
    let live = || {
        by_id(
            ws.records("acme", "companies")
                .into_iter()
                .map(|(_, r)| r)
                .collect(),
        )
    };

    // Acme CRM reports no company deletes: an incremental sync keeps them.
    ws.weir_ok(&["sync", "companies"]).await;
    assert_eq!(live().len(), 2_500);

    // A full refresh over three pages finds them by their absence.
    sim.reset_counters();
    ws.weir_ok(&["sync", "companies", "--full-refresh"]).await;
    assert_eq!(
        sim.counters().served("companies"),
        2_500 - gone.len() as u64
    );
    assert!(
        live() == by_id(sim.records("companies")),
        "the store equals the partner"
    );
    let deleted: Vec<String> = ws
        .all_records("acme", "companies")
        .into_iter()
        .filter(|r| r.kind == ChangeKind::Delete)
        .map(|r| r.key)
        .collect();
    assert_eq!(deleted, gone);
    let refresh = ws.runs_of(None).into_iter().find(|r| r.full_refresh);
    assert_eq!(
        refresh.expect("a full refresh").records_written,
        gone.len() as u64,
        "the run reports the deletes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_a_sync_at_its_last_committed_page_and_the_next_resumes() {
    let sim = simulator(6_000, 0).await;
    let ws = workspace();
    // 60 pages at 15 requests a second: a run long enough to interrupt.
    let config = acme_config(&sim.base_url()).edit(
        "secrets.api_key = { env = \"ACME_API_KEY\" }\n",
        "secrets.api_key = { env = \"ACME_API_KEY\" }\npage_size = 100\nrate_limit = { requests_per_second = 15 }\n",
    );
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&config);
    let child = tokio::process::Command::from(ws.command(&[
        "sync",
        "contacts",
        "companies",
        "--jobs",
        "1",
    ]))
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("weir starts");
    let pages = || -> i64 {
        rusqlite::Connection::open(ws.store_path())
            .and_then(|c| c.query_row("SELECT coalesce(max(pages), 0) FROM runs", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(30), || pages() >= 5).await,
        "under way"
    );
    std::process::Command::new("kill")
        .args(["-INT", &child.id().unwrap().to_string()])
        .status()
        .expect("kill runs");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("weir stops within its page")
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopping"));
    let runs = ws.runs_of(None);
    assert_eq!(runs.len(), 1, "`companies`, next in line, never started");
    let committed = runs[0].pages as i64;
    assert_eq!(runs[0].status.as_str(), "interrupted");
    assert!(committed < 60, "stopped mid-way");
    // The page in flight at the signal, if its request was out, was
    // abandoned: it is the only one read and not committed.
    let abandoned = served_cursors(&sim, "contacts").len() as i64 - committed;
    assert!(
        abandoned == 0 || abandoned == 1,
        "every page read but the one in flight was committed before exit"
    );

    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        sim.counters().served("contacts"),
        6_000 + 100 * abandoned as u64,
        "no page read twice but the abandoned one"
    );
    assert_store_equals_partner(&ws, &sim, "contacts");
}

/// `weir` started in `ws`, killed if the test ends first.
fn spawn(ws: &weir_tests::Workspace, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::from(ws.command(args))
        .kill_on_drop(true)
        .spawn()
        .expect("weir starts")
}

/// `weir runs --json`, newest first.
async fn runs_json(ws: &weir_tests::Workspace) -> Vec<serde_json::Value> {
    let out = ws.weir_ok(&["runs", "--json"]).await;
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_bringing_new_content_under_the_same_version_is_stored_counted_and_logged_once() {
    let sim = simulator(300, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    ws.weir_ok(&["sync", "contacts"]).await;
    for id in ["c_000001", "c_000002"] {
        sim.update_keeping_version("contacts", id, serde_json::json!({ "title": "Edited" }))
            .unwrap();
    }

    let out = ws.weir_ok(&["sync", "contacts"]).await;
    assert_store_equals_partner(&ws, &sim, "contacts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .matches("came with the version already stored but other content")
            .count(),
        1,
        "logged once per run: {stderr}"
    );
    assert!(
        stderr.contains("2 record(s) of stream `contacts`")
            && stderr.contains("hint: the partner's `version` does not change on every edit"),
        "{stderr}"
    );
    let runs = runs_json(&ws).await;
    assert_eq!(
        (&runs[0]["conflicts"], &runs[0]["records_written"]),
        (&serde_json::json!(2), &serde_json::json!(2)),
        "{}",
        runs[0]
    );
    let table = ws.weir_ok(&["runs"]).await;
    assert!(String::from_utf8_lossy(&table.stdout).contains("conflicts"));
    let kept: i64 = ws.query_one("SELECT count(*) FROM merge_conflicts");
    assert_eq!(kept, 2, "both copies kept for operators");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_refresh_killed_at_any_list_call_still_deletes_what_the_partner_deleted() {
    // Three pages of 100: a kill at each list call, in a fresh store each.
    for kill_at in 1..=3u32 {
        let sim = simulator(0, 250).await;
        let ws = workspace();
        let config = acme_config(&sim.base_url()).edit(
            "secrets.api_key = { env = \"ACME_API_KEY\" }\n",
            "secrets.api_key = { env = \"ACME_API_KEY\" }\npage_size = 100\n",
        );
        ws.install(guests::ACME_CRM, "acme_crm.wasm")
            .write_config(&config);
        ws.weir_ok(&["sync", "companies"]).await;
        let gone: Vec<String> = sim
            .records("companies")
            .iter()
            .step_by(60)
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        for id in &gone {
            sim.delete("companies", id).unwrap();
        }

        sim.reset_counters();
        sim.inject(
            Fault::new("GET", "/v1/companies")
                .skip(kill_at - 1)
                .times(1)
                .hang(),
        );
        let mut child = spawn(&ws, &["sync", "companies", "--full-refresh"]);
        let reached = wait_until(Duration::from_secs(60), || {
            sim.counters().list_calls.len() == kill_at as usize
        })
        .await;
        child.kill().await.expect("SIGKILL weir");
        assert!(reached, "list call {kill_at} was made");

        sim.clear_faults();
        ws.weir_ok(&["sync", "companies"]).await;
        let live: Vec<String> = ws
            .records("acme", "companies")
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        let partner: Vec<String> = by_id(sim.records("companies")).into_keys().collect();
        assert_eq!(
            live, partner,
            "killed at list call {kill_at}: the next sync completes the sweep"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_syncs_run_is_interrupted_at_its_last_commit_and_a_live_ones_stays_running() {
    let sim = simulator(3_000, 0).await;
    let ws = workspace();
    // Waits on the partner outlast the test.
    let config = acme_config(&sim.base_url()).edit(
        "secrets.api_key = { env = \"ACME_API_KEY\" }\n",
        "secrets.api_key = { env = \"ACME_API_KEY\" }\ncall_timeout = \"10m\"\nfirst_byte_timeout = \"10m\"\n",
    );
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&config);
    // Page 2 never answers, for either process.
    sim.inject(
        Fault::new("GET", "/v1/contacts")
            .skip(1)
            .times(1_000)
            .hang(),
    );
    let committed = |run: i64| -> Option<(i64, i64)> {
        rusqlite::Connection::open(ws.store_path())
            .and_then(|c| {
                c.query_row(
                    "SELECT pages, coalesce(committed_at, 0) FROM runs WHERE id = ?1",
                    [run],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .ok()
    };
    let mut first = spawn(&ws, &["sync", "contacts"]);
    assert!(
        wait_until(Duration::from_secs(60), || {
            committed(1).is_some_and(|(pages, _)| pages == 1)
                && sim.counters().list_calls.len() == 2
        })
        .await,
        "the first run committed page 1 and waits for page 2"
    );
    let (_, first_commit) = committed(1).unwrap();
    // A second sync of the same flow beside it, killed while it waits.
    let mut second = spawn(&ws, &["sync", "contacts"]);
    assert!(
        wait_until(Duration::from_secs(60), || committed(2).is_some()
            && sim.counters().list_calls.len() >= 3)
        .await,
        "the second run waits for page 2 too"
    );
    second.kill().await.expect("SIGKILL weir");

    let runs = runs_json(&ws).await;
    let run = |id: i64| runs.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(run(1)["status"], "running", "its process lives: {}", run(1));
    assert_eq!(run(2)["status"], "interrupted", "{}", run(2));
    assert_eq!(
        run(2)["finished_at_ms"],
        run(2)["started_at_ms"],
        "no commit: it ended where it started"
    );

    first.kill().await.expect("SIGKILL weir");
    let runs = runs_json(&ws).await;
    let run = |id: i64| runs.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(run(1)["status"], "interrupted", "{}", run(1));
    assert_eq!(
        run(1)["finished_at_ms"],
        first_commit,
        "its end is its last commit"
    );
    let table = ws.weir_ok(&["runs"]).await;
    assert!(
        !String::from_utf8_lossy(&table.stdout).contains("running"),
        "{}",
        output_text(&table)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_at_any_list_call_reads_at_most_two_pages_again() {
    for kill_at in 1..=5u32 {
        let sim = simulator(500, 0).await;
        let ws = workspace();
        let config = acme_config(&sim.base_url()).edit(
            "secrets.api_key = { env = \"ACME_API_KEY\" }\n",
            "secrets.api_key = { env = \"ACME_API_KEY\" }\npage_size = 100\n",
        );
        ws.install(guests::ACME_CRM, "acme_crm.wasm")
            .write_config(&config);
        sim.inject(
            Fault::new("GET", "/v1/contacts")
                .skip(kill_at - 1)
                .times(1)
                .hang(),
        );
        let mut child = spawn(&ws, &["sync", "contacts"]);
        let reached = wait_until(Duration::from_secs(60), || {
            sim.counters().list_calls.len() == kill_at as usize
        })
        .await;
        child.kill().await.expect("SIGKILL weir");
        assert!(reached, "list call {kill_at} was made");
        let asked: Vec<Option<String>> = sim
            .counters()
            .list_calls
            .into_iter()
            .map(|c| c.cursor)
            .collect();

        sim.reset_counters();
        ws.weir_ok(&["sync", "contacts"]).await;
        let again = served_cursors(&sim, "contacts")
            .iter()
            .filter(|c| asked.contains(c))
            .count();
        assert!(
            (1..=2).contains(&again),
            "killed at list call {kill_at}: {again} page(s) read again"
        );
        assert_store_equals_partner(&ws, &sim, "contacts");
    }
}
