//! `weir validate` and checks at load: configuration problems found before
//! any connector call, every one at once.

use weir_tests::{ConfigEdit, acme_config, acme_connection, guests, output_text};

use crate::stored::Stored;
use crate::{simulator, workspace};

/// A file with one problem of every kind `weir validate` finds: in the
/// file itself, and against the connector it names.
fn config_with_several_problems(base_url: &str) -> String {
    format!(
        r#"{acme}secrets.api_kye = {{ env = "ACME_API_KEY" }}

[connections.crm]
connector = "acme-crn"

[flows.contacts]
source = "acme"
stream = "contcts"

[flows.companies]
source = "acme"
stream = "companies"

[flows.orphans]
source = "acmee"
stream = "contacts"

[daemon]
max_concurrent_runs = 0
"#,
        acme = acme_connection("acme", base_url),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_reports_every_problem_at_once_without_a_request() {
    let sim = simulator(10, 10).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&config_with_several_problems(&sim.base_url()));

    let out = ws.weir_async(&["validate"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        // In the file.
        "error[config-invalid]: ",
        "`flows.orphans.source` = \"acmee\" names no connection; did you mean `acme`?",
        "`daemon.max_concurrent_runs` = 0 must be at least 1",
        // Against the connector.
        "error[config-invalid]: `connections.acme.secrets.api_kye` is a secret connector `acme-crm 0.1.0` never uses",
        "hint: did you mean `api_key`? it declares: api_key, webhook_secret",
        "error[connector-not-loaded]: connection `crm` uses connector `acme-crn`",
        "hint: did you mean `acme-crm`? loaded connectors: acme-crm",
        "error[unknown-stream]: `flows.contacts.stream` = \"contcts\": connector `acme-crm 0.1.0` of connection `acme` has no such stream",
        "hint: did you mean `contacts`? its streams: contacts, companies",
        // A declared secret the connection does not define: what needs it
        // is refused when used.
        "warning[secret-missing]: connector `acme-crm 0.1.0` declares secret `webhook_secret`",
        "5 error(s), 1 warning(s)",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
    }
    assert_eq!(
        stderr.matches("error[").count(),
        5,
        "each problem once:\n{stderr}"
    );

    let out = ws.weir_async(&["validate", "--json"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let codes: Vec<(&str, &str)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["severity"].as_str().unwrap(), p["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("error", "config-invalid"),
            ("error", "config-invalid"),
            ("error", "config-invalid"),
            ("warning", "secret-missing"),
            ("error", "connector-not-loaded"),
            ("error", "unknown-stream"),
        ]
    );

    // Every other command reports every problem of the file too.
    let out = ws.weir_async(&["sync", "companies"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("flows.orphans.source") && stderr.contains("daemon.max_concurrent_runs"),
        "{stderr}"
    );

    assert_eq!(sim.counters().requests, 0, "validating reaches no partner");
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_refuses_a_misspelt_secret_and_an_unknown_stream_before_any_request() {
    let sim = simulator(10, 10).await;
    let ws = workspace();
    let config = acme_config(&sim.base_url())
        .edit("secrets.api_key", "secrets.api_kye")
        .edit("stream = \"companies\"", "stream = \"compnies\"");
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&config);

    let out = ws.weir_async(&["sync", "--all"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`connections.acme.secrets.api_kye`")
            && stderr.contains("did you mean `api_key`?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`flows.companies.stream` = \"compnies\"")
            && stderr.contains("did you mean `companies`?"),
        "{stderr}"
    );
    assert_eq!(sim.counters().requests, 0, "{stderr}");
    // The store is opened (it says which connector versions are approved),
    // but no run starts.
    assert!(ws.runs_of(None).is_empty(), "no run started");

    // Fixed, the same file validates and syncs.
    ws.write_config(&acme_config(&sim.base_url()));
    let out = ws.weir_async(&["validate"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("is valid: 1 connection(s), 2 flow(s), 1 warning(s)"),
        "{}",
        output_text(&out)
    );
    ws.weir_ok(&["sync", "--all"]).await;
    assert!(sim.counters().requests > 0);
}
