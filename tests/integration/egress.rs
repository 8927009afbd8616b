use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use partner_sim::Fault;
use weir_tests::{acme_config, guests, output_text};

use crate::stored::Stored;
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
        stderr.matches("error[egress-denied]").count(),
        1,
        "printed once: {stderr}"
    );
    assert!(!stderr.contains("hint=Some"), "{stderr}");
    assert_eq!(
        elsewhere.counters().requests,
        0,
        "nothing reached the disallowed host"
    );
    assert_eq!(
        ws.last_run(None).error_code.as_deref(),
        Some("egress-denied")
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn a_wildcard_port_never_exempts_a_loopback_origin() {
    let sim = simulator(10, 0).await;
    let other = simulator(10, 0).await;
    let port = |url: String| url.rsplit(':').next().unwrap().to_string();
    // The simulator by name, allowed exactly; another local service on the
    // same name, declared and allowed only through the wildcard port.
    let sim_url = format!("http://localhost:{}", port(sim.base_url()));
    let other_url = format!("http://localhost:{}", port(other.base_url()));
    let ws = workspace();
    ws.install(guests::HTTP_ESCAPE, "http_escape.wasm")
        .write_config(&format!(
            r#"
[connections.escape]
connector = "http-escape"
config = {{ sim_url = "{sim_url}", other_url = "{other_url}" }}
allowed_hosts = ["{sim_url}", "http://localhost:*"]
secrets.api_key = {{ env = "ACME_API_KEY" }}

[flows.attempts]
source = "escape"
stream = "attempts"
"#
        ));
    ws.weir_ok(&["sync", "attempts"]).await;
    let attempts = &ws.records("escape", "attempts")[0].1;
    assert!(
        attempts["other_port"]
            .as_str()
            .unwrap()
            .contains("is the loopback interface"),
        "{attempts}"
    );
    assert_eq!(
        other.counters().requests,
        0,
        "the other local service never saw a request"
    );
    assert_eq!(
        attempts["redirect_status"], 302,
        "the exact origin still reaches the simulator by name"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_never_show_a_query_string_or_user_info() {
    let sim = simulator(10, 0).await;
    sim.inject(Fault::new("GET", "/v1/contacts").times(100).close());
    let base = sim.base_url();
    let with_user = base.replacen("http://", "http://someone:pa55word@", 1);
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&base).replacen(
            &format!("base_url = \"{base}\""),
            &format!("base_url = \"{with_user}\""),
            1,
        ));
    let out = ws.weir_async(&["sync", "contacts", "-v"]).await;
    assert_eq!(out.status.code(), Some(75), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stored = ws.last_run(None).error.expect("the run's error");
    for text in [stderr.as_ref(), stored.as_str()] {
        assert!(text.contains("/v1/contacts"), "{text}");
        assert!(!text.contains("limit="), "no query: {text}");
        assert!(!text.contains("pa55word"), "no user info: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_request_is_reported_once_with_its_code_and_hint() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    // The connector swallows its refused requests and succeeds: the
    // operator still hears of the first, once.
    ws.install(guests::HTTP_ESCAPE, "http_escape.wasm")
        .write_config(&format!(
            r#"
[connections.escape]
connector = "http-escape"
config = {{ sim_url = "{}" }}
allowed_hosts = ["{}"]
secrets.api_key = {{ env = "ACME_API_KEY" }}

[flows.attempts]
source = "escape"
stream = "attempts"
"#,
            sim.base_url(),
            sim.base_url()
        ));
    let out = ws.weir_async(&["sync", "attempts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("error[egress-denied]").count(),
        1,
        "once: {stderr}"
    );
    assert!(
        stderr.contains(
            "hint: add \"http://evil.example\" to `allowed_hosts` of connection `escape`"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("Some("), "no Rust debug text: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undefined_secret_is_reported_once_with_its_code_and_hint() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm").write_config(
        &acme_config(&sim.base_url()).replacen(
            "secrets.api_key = { env = \"ACME_API_KEY\" }",
            "",
            1,
        ),
    );
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert!(!out.status.success(), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("secret `api_key`").count(),
        1,
        "once: {stderr}"
    );
    assert!(stderr.contains("error[secret-missing]"), "{stderr}");
    assert!(stderr.contains("hint: add `secrets.api_key"), "{stderr}");
    assert!(!stderr.contains("Some("), "{stderr}");
    assert_eq!(sim.counters().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_4xx_behind_a_permanent_failure_points_at_debug_http() {
    let sim = simulator(10, 0).await;
    sim.inject(
        Fault::new("GET", "/v1/contacts")
            .times(10)
            .reply(422, vec![]),
    );
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let host = sim.base_url().replacen("http://", "", 1);
    assert!(stderr.contains("error[connector-permanent]"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "hint: the partner answered 422 to `GET {host}/v1/contacts`: run the command again with `--debug-http`"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("limit="),
        "no query without --debug-http: {stderr}"
    );

    let debug = ws.weir_async(&["sync", "contacts", "--debug-http"]).await;
    let stderr = String::from_utf8_lossy(&debug.stderr);
    assert!(
        stderr.contains(&format!(
            "connection `acme`: GET {}/v1/contacts?limit=1000",
            sim.base_url()
        )) && stderr.contains("-> 422"),
        "the whole request: {stderr}"
    );
    assert!(
        stderr.contains("partner-sim injected a 422 response"),
        "the start of the answer: {stderr}"
    );
    assert!(!stderr.contains(weir_tests::API_KEY), "{stderr}");
}
