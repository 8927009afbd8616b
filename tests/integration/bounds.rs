//! No run holds a connection forever: a cursor pointing to itself fails at
//! once, a run that never runs out of pages ends at its `max_run_time`, and
//! one Ctrl-C ends a run waiting on a partner that never answers, without
//! another request. Each ends at its last committed page.

use std::process::{Output, Stdio};
use std::time::Duration;

use partner_sim::Fault;
use weir_tests::{ConfigEdit, Workspace, acme_config, guests, output_text, wait_until};

use crate::stored::Stored;
use crate::{simulator, workspace};

/// How long a bounded run may take here before the test gives up on it:
/// far more than any run below needs, far less than no bound at all.
const GIVE_UP: Duration = Duration::from_secs(180);

/// Runs `weir sync` and waits for it, killing it if it outlives `GIVE_UP`.
async fn sync_bounded(ws: &Workspace, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::from(ws.command(args));
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("weir starts");
    tokio::time::timeout(GIVE_UP, child.wait_with_output())
        .await
        .expect("the run ends on its own")
        .expect("weir runs")
}

/// A workspace with one guest connector as connection `bad` and flow `bad`.
fn with_guest(guest: &str, connector: &str, stream: &str, flow_extra: &str) -> Workspace {
    let ws = workspace();
    ws.install(guest, &format!("{}.wasm", connector.replace('-', "_")))
        .write_config(&format!(
            r#"
[connections.bad]
connector = "{connector}"

[flows.bad]
source = "bad"
stream = "{stream}"
{flow_extra}
"#
        ));
    ws
}

/// `(status, pages, error_code)` of the flow's only run.
fn the_run(ws: &Workspace, flow: &str) -> (String, i64, Option<String>) {
    ws.store()
        .query_row(
            "SELECT status, pages, error_code FROM runs WHERE flow = ?1",
            [flow],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("one run")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_that_points_to_itself_fails_the_run_with_connector_contract_naming_the_stream() {
    let ws = with_guest(guests::CURSOR_LOOP, "cursor-loop", "loop", "");
    let out = sync_bounded(&ws, &["sync", "bad"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "flow `bad`: error[connector-contract]: connector `cursor-loop 0.1.0` (connection `bad`) broke the contract in `read`: returned a page of stream `loop` whose checkpoint is the one it started from"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
    let (status, pages, code) = the_run(&ws, "bad");
    assert_eq!(
        (status.as_str(), pages, code.as_deref()),
        ("failed", 1, Some("connector-contract")),
        "the first page (from no checkpoint) committed, its repeat never did"
    );
    assert_eq!(
        ws.only_checkpoint("bad").state,
        r#"{"cursor":"page-2"}"#,
        "it stopped at its last checkpoint"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_never_runs_out_of_pages_fails_at_max_run_time_at_its_last_checkpoint() {
    let ws = with_guest(
        guests::ENDLESS_PAGES,
        "endless-pages",
        "endless",
        "max_run_time = \"2s\"",
    );
    let out = sync_bounded(&ws, &["sync", "bad"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "flow `bad`: error[run-deadline]: flow `bad` was still reading stream `endless` after 2s, its `max_run_time`; the run stopped at its last committed page"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: the next run resumes from there; if a read legitimately takes longer, raise `max_run_time`"),
        "{stderr}"
    );
    let (status, pages, code) = the_run(&ws, "bad");
    assert_eq!(
        (status.as_str(), code.as_deref()),
        ("failed", Some("run-deadline"))
    );
    assert!(pages >= 1, "pages were committed before the deadline");
    // Page n holds record `r{n}` and checkpoint `{"page": n}`: the stored
    // checkpoint is that of the last committed page, and nothing beyond.
    assert_eq!(
        ws.only_checkpoint("bad").state,
        format!(r#"{{"page":{pages}}}"#)
    );
    assert_eq!(ws.records("bad", "endless").len() as i64, pages);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_ctrl_c_ends_a_sync_waiting_on_a_partner_that_never_answers_and_no_request_follows() {
    let sim = simulator(300, 0).await;
    // The first page is answered, the second never is.
    sim.inject(
        Fault::new("GET", "/v1/contacts")
            .skip(1)
            .times(1_000)
            .hang(),
    );
    let ws = workspace();
    // Timeouts far beyond the test: only the signal can end the wait.
    let config = acme_config(&sim.base_url()).edit(
        "secrets.api_key = { env = \"ACME_API_KEY\" }\n",
        "secrets.api_key = { env = \"ACME_API_KEY\" }\npage_size = 100\ncall_timeout = \"1h\"\nrequest_timeout = \"1h\"\nfirst_byte_timeout = \"1h\"\n",
    );
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&config);
    let child = tokio::process::Command::from(ws.command(&["sync", "contacts"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("weir starts");
    assert!(
        wait_until(Duration::from_secs(60), || sim.counters().list_calls.len()
            == 2)
        .await,
        "the second list call is waiting for an answer"
    );
    let before = sim.counters().requests;
    std::process::Command::new("kill")
        .args(["-INT", &child.id().unwrap().to_string()])
        .status()
        .expect("kill runs");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("one Ctrl-C ends the run although its request is never answered")
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", output_text(&out));
    assert_eq!(
        sim.counters().requests,
        before,
        "no request after the signal: {}",
        output_text(&out)
    );
    let (status, pages, _) = the_run(&ws, "contacts");
    assert_eq!((status.as_str(), pages), ("interrupted", 1));
    assert_eq!(ws.records("acme", "contacts").len(), 100);

    // The run ended resumable: the next one reads on from the first page.
    sim.clear_faults();
    let out = sync_bounded(&ws, &["sync", "contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(ws.records("acme", "contacts").len(), 300);
    let cursors: Vec<(Option<String>, Option<String>)> = sim
        .counters()
        .list_calls
        .iter()
        .map(|c| (c.cursor.clone(), c.updated_since.clone()))
        .collect();
    assert_eq!(
        cursors[2], cursors[1],
        "the abandoned page is the first one read again"
    );
}
