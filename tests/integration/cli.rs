use weir_tests::{ConfigEdit, acme_config, guests, output_text};

use crate::{simulator, workspace};

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_key_in_weir_toml_is_named_with_file_line_and_the_keys_allowed() {
    let ws = workspace();
    ws.write_config(&acme_config("http://127.0.0.1:9").edit("allowed_hosts", "allowed_host"));
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[config-unknown-key]:"), "{stderr}");
    assert!(
        stderr.contains("weir.toml:5:") && stderr.contains("unknown key `allowed_host`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: did you mean `allowed_hosts`? keys allowed here:"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_flow_suggests_the_one_it_misspells_and_lists_the_defined_ones() {
    let ws = workspace();
    ws.write_config(&acme_config("http://127.0.0.1:9"));
    let out = ws.weir_async(&["sync", "contcts"]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error[unknown-flow]: no flow `contcts`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: did you mean `contacts`? defined flows: companies, contacts"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_variable_fails_before_any_request() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()).edit("ACME_API_KEY", "WEIR_TEST_UNSET_KEY"));
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error[secret-missing]") && stderr.contains("WEIR_TEST_UNSET_KEY"),
        "{stderr}"
    );
    assert_eq!(sim.counters().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_and_discover_talk_to_the_partner() {
    let sim = simulator(10, 10).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    let out = ws.weir_async(&["check", "acme"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("connection `acme` is ready"));

    let out = ws.weir_async(&["discover", "acme", "--json"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let streams: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = streams
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["contacts", "companies"]);
    assert_eq!(streams[0]["stream"]["primary_key"][0], "/id");
    assert_eq!(streams[0]["json_schema"]["type"], "object");

    // Bad credentials: check says so in plain words.
    let out = tokio::process::Command::from({
        let mut cmd = ws.command(&["check", "acme"]);
        cmd.env("ACME_API_KEY", "wrong");
        cmd
    })
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error[connector-auth]"),
        "{}",
        output_text(&out)
    );
}

#[test]
fn explain_describes_every_code() {
    let out = workspace().weir(&["explain", "--json"]);
    let codes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(codes.as_array().unwrap().len() >= 20);
    let out = workspace().weir(&["explain", "egress-denied"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("allowed_hosts"));
    let out = workspace().weir(&["explain", "no-such-code"]);
    assert!(!out.status.success());
}

#[test]
fn every_error_code_weir_runs_can_show_is_explained() {
    // `weir runs` shows a run stopped by a signal as `[shutdown]`.
    let out = workspace().weir(&["explain", "shutdown"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing is lost"));
}

/// Every command of the tree, as the words that name it (`["tenants",
/// "connect"]`), so that a new subcommand is covered without a new line.
fn every_command_path() -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, path: &[String], out: &mut Vec<Vec<String>>) {
        for sub in command.get_subcommands() {
            let mut path = path.to_vec();
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut out = vec![Vec::new()];
    walk(
        &<weir_host::cli::Cli as clap::CommandFactory>::command(),
        &[],
        &mut out,
    );
    out
}

#[test]
fn every_subcommand_prints_its_help() {
    let ws = workspace();
    let paths = every_command_path();
    assert!(paths.len() > 30, "the walk found {} commands", paths.len());
    for path in paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = ws.weir(&args);
        assert!(out.status.success(), "weir {args:?}: {}", output_text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: weir"),
            "weir {args:?}: {}",
            output_text(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_connect_saves_the_connection_config_and_secrets_of_a_tenant() {
    let ws = workspace();
    ws.write_config(&acme_config("http://127.0.0.1:9"));
    ws.weir_ok(&["tenants", "add", "t1"]).await;
    let out = ws
        .weir_ok(&[
            "tenants",
            "connect",
            "t1",
            "acme",
            "--connection-config",
            r#"{"base_url": "http://127.0.0.1:9/t1"}"#,
            "--secrets",
            r#"{"api_key": {"env": "T1_API_KEY"}}"#,
            "--json",
        ])
        .await;
    let saved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        saved["connections"]["acme"]["config"]["base_url"], "http://127.0.0.1:9/t1",
        "{saved}"
    );
    assert_eq!(
        saved["connections"]["acme"]["secrets"]["api_key"]["env"], "T1_API_KEY",
        "{saved}"
    );
    let out = ws.weir_ok(&["tenants", "show", "t1"]).await;
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["connections"], saved["connections"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_locked_by_another_process_fails_the_run_with_store_unavailable_and_exit_4() {
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config("http://127.0.0.1:9"));
    ws.weir_ok(&["runs"]).await;
    // Another process holds the write lock for as long as weir tries.
    let holder = ws.store();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = ws.weir_async(&["sync", "contacts"]).await;
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error[store-unavailable]") && stderr.contains("database is locked"),
        "{stderr}"
    );
    assert!(stderr.contains("\nhint: "), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_json_of_a_failed_run_gives_the_errors_code_message_and_hint() {
    let sim = simulator(10, 0).await;
    sim.inject(
        partner_sim::Fault::new("GET", "/v1/contacts")
            .times(1000)
            .status(401),
    );
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    let out = ws.weir_async(&["sync", "contacts", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &runs[0];
    assert_eq!(run["status"], "failed", "{runs}");
    assert_eq!(run["error"]["code"], "connector-auth", "{runs}");
    assert!(
        run["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{runs}"
    );
    assert!(
        run["error"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("weir check")),
        "{runs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_piped_sync_prints_plain_progress_lines_while_it_runs() {
    let sim = simulator(30, 0).await;
    // The second page takes seconds to arrive: progress lines come meanwhile.
    sim.inject(
        partner_sim::Fault::new("GET", "/v1/contacts")
            .skip(1)
            .trickle(128, std::time::Duration::from_millis(100)),
    );
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm").write_config(
        &acme_config(&sim.base_url()).edit("secrets.api_key", "page_size = 10\nsecrets.api_key"),
    );
    let out = ws
        .weir_async(&["sync", "contacts", "--progress-every", "200ms"])
        .await;
    assert!(out.status.success(), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("weir: flow `contacts`: "))
        .collect();
    assert!(!progress.is_empty(), "{stderr}");
    assert!(
        progress
            .iter()
            .all(|l| l.contains(" records (") && l.contains("/s), ")),
        "{stderr}"
    );
    // Plain text: no spinner, no box drawing, no decimals in the rate.
    let drawing =
        |c: char| ('\u{2500}'..='\u{257f}').contains(&c) || ('\u{2800}'..='\u{28ff}').contains(&c);
    assert!(!stderr.chars().any(drawing), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).chars().any(drawing));
    for line in &progress {
        let rate = line
            .split_once("records (")
            .and_then(|(_, rest)| rest.split_once("/s)"))
            .map(|(rate, _)| rate.replace(',', ""))
            .unwrap_or_default();
        assert!(rate.parse::<u64>().is_ok(), "rate `{rate}` in {line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_denied_an_address_from_its_own_checkpoint_points_at_state_reset() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    ws.install(guests::FOLLOW_NEXT_URL, "follow_next_url.wasm")
        .write_config(&format!(
            r#"
[connections.links]
connector = "follow-next-url"
config = {{ base_url = "{url}" }}
allowed_hosts = ["{url}"]
secrets.api_key = {{ env = "ACME_API_KEY" }}

[flows.contacts]
source = "links"
stream = "contacts"
"#,
            url = sim.base_url()
        ));
    ws.weir_ok(&["sync", "contacts"]).await;
    // The partner's next-page link, kept in the checkpoint, now points at
    // an address the connection does not allow.
    ws.store()
        .execute(
            r#"UPDATE checkpoints SET state = '{"next": "http://127.0.0.1:9/v1/contacts?page=2"}' WHERE flow = 'contacts'"#,
            [],
        )
        .unwrap();
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[egress-denied]"), "{stderr}");
    let hint = stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_default();
    assert!(
        hint.contains("`weir state show contacts`") && hint.contains("`weir state reset contacts`"),
        "{stderr}"
    );
    assert_eq!(
        sim.counters().requests,
        1,
        "only the first run reached the partner"
    );
}
