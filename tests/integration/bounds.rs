//! No run holds a connection forever: a cursor pointing to itself fails at
//! once, at its last committed page.

use std::process::{Output, Stdio};
use std::time::Duration;

use weir_tests::{Workspace, guests, output_text};

use crate::workspace;

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
    let state: String = ws.query_one("SELECT state FROM checkpoints WHERE flow = 'bad'");
    assert_eq!(
        state, r#"{"cursor":"page-2"}"#,
        "it stopped at its last checkpoint"
    );
}
