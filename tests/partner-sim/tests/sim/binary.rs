use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::client;

const BIN: &str = env!("CARGO_BIN_EXE_partner-sim");
const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn binary_prints_its_url_first_and_stops_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["--contacts", "25", "--companies", "5", "--api-key", "k-1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("the first line comes in time")
        .unwrap()
        .expect("a first line");
    let url = first
        .strip_prefix("partner-sim listening on http://127.0.0.1:")
        .map(|port| format!("http://127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("unexpected first line: {first}"));

    let page: Value = client()
        .get(format!("{url}/v1/contacts?limit=1000"))
        .header("x-api-key", "k-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 25);

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("the sim exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn binary_refuses_a_non_loopback_host_with_a_hint() {
    let output = Command::new(BIN)
        .args(["--host", "0.0.0.0"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("error: `--host 0.0.0.0` is not a loopback address"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: use `--host 127.0.0.1`"), "{stderr}");
}

#[tokio::test]
async fn binary_rate_limit_flag_limits_requests() {
    let mut child = Command::new(BIN)
        .args(["--contacts", "5", "--rate-limit", "1"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = first
        .trim_start_matches("partner-sim listening on ")
        .to_owned();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let response = client()
            .get(format!("{url}/v1/companies"))
            .header("x-api-key", "test-key")
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    assert_eq!(statuses, [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);
    child.kill().await.unwrap();
}
