use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use weir_tests::{acme_config, guests, output_text};

use crate::{simulator, workspace};

#[tokio::test(flavor = "multi_thread")]
async fn a_host_outside_allowed_hosts_is_denied_with_a_hint() {
    let allowed = simulator(10, 0).await;
    let elsewhere = simulator(10, 0).await;
    let ws = workspace();
    // The connection points the connector at one partner but allows another.
    let config = acme_config(&allowed.base_url()).replacen(
        &format!("base_url = \"{}\"", allowed.base_url()),
        &format!("base_url = \"{}\"", elsewhere.base_url()),
        1,
    );
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&config);

    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let origin = elsewhere.base_url();
    assert!(
        stderr.contains(&format!(
            "error[egress-denied]: connector `acme-crm 0.1.0` tried to reach `{origin}` which connection `acme` does not allow"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("hint: add \"{origin}\" to `allowed_hosts` of connection `acme` in weir.toml, if you trust it")),
        "{stderr}"
    );
    assert_eq!(
        elsewhere.counters().requests,
        0,
        "nothing reached the disallowed host"
    );
    let error: String = ws.query_one("SELECT error_code FROM runs");
    assert_eq!(error, "egress-denied");
}

/// A loopback server that answers every request with the request's own
/// head, and echoes its `x-api-key` in a response header, as a careless
/// partner might.
fn echo_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16).flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let key = head
                .lines()
                .find_map(|l| l.strip_prefix("x-api-key: "))
                .unwrap_or_default()
                .to_string();
            log.lock().unwrap().push(head.clone());
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nx-echo: {key}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{head}",
                head.len()
            );
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_values_never_reach_the_guest_nor_the_logs() {
    const SECRET: &str = "s3cr3t-value-only-the-host-knows";
    let (echo_url, seen) = echo_server();
    let ws = workspace();
    ws.install(guests::SECRET_SNOOP, "secret_snoop.wasm")
        .write_config(&format!(
            r#"
[connections.echo]
connector = "secret-snoop"
config = {{ echo_url = "{echo_url}/echo" }}
allowed_hosts = ["{echo_url}"]
secrets.api_key = {{ env = "ECHO_SECRET" }}

[flows.seen]
source = "echo"
stream = "seen"
"#
        ));

    let out = tokio::process::Command::from({
        let mut cmd = ws.command(&["sync", "seen", "-vvv"]);
        cmd.env("ECHO_SECRET", SECRET);
        cmd
    })
    .output()
    .await
    .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));

    let requests = seen.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|head| head.contains(&format!("x-api-key: {SECRET}"))),
        "the host injected the secret into the request: {requests:?}"
    );
    let records = ws.records("echo", "seen");
    assert_eq!(records.len(), 1);
    let seen_by_guest = records[0].1.to_string();
    assert!(
        seen_by_guest.contains("[redacted]"),
        "the echoed secret was redacted: {seen_by_guest}"
    );
    assert!(
        !seen_by_guest.contains(SECRET),
        "the guest saw the secret: {seen_by_guest}"
    );
    assert!(
        !output_text(&out).contains(SECRET),
        "the secret reached the logs"
    );
    let env = &records[0].1["env"];
    assert_eq!(env, &serde_json::json!([]), "the guest sees no environment");
}
