//! WIT versions: connectors built for an earlier `weir:connector@0.1.z` keep
//! loading and syncing; other release lines are refused with what to do; and
//! `weir plugins inspect` describes a plugin file without running it.

use sha2::{Digest, Sha256};
use weir_tests::{acme_config, guests, output_text};

use crate::{simulator, workspace};

/// A connection `legacy` through the connector built for 0.1.0, beside the
/// usual `acme` connection.
fn legacy_config(base_url: &str) -> String {
    format!(
        r#"{acme}
[connections.legacy]
connector = "sdk-0-1-0"
config = {{ base_url = "{base_url}" }}
allowed_hosts = ["{base_url}"]
secrets.api_key = {{ env = "ACME_API_KEY" }}
page_size = 100

[flows.legacy-contacts]
source = "legacy"
stream = "contacts"
"#,
        acme = acme_config(base_url)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connector_built_for_0_1_0_loads_and_syncs_on_a_0_1_1_host() {
    let sim = simulator(250, 0).await;
    let ws = workspace();
    ws.install(guests::SDK_0_1_0, "legacy.wasm")
        .install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&legacy_config(&sim.base_url()));

    let out = ws.weir_async(&["plugins"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = stdout
        .lines()
        .find(|l| l.contains("sdk-0-1-0"))
        .unwrap_or_else(|| panic!("the 0.1.0 connector is listed: {stdout}"));
    assert!(row.contains("0.1.0") && row.contains("loaded"), "{row}");

    let out = ws.weir_async(&["plugins", "--json"]).await;
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let wit_version = |name: &str| {
        listing["loaded"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["wit_version"].clone())
    };
    // Each plugin reports the version it was built for, not the host's.
    assert_eq!(wit_version("sdk-0-1-0"), Some("0.1.0".into()));
    assert_eq!(wit_version("acme-crm"), Some("0.1.1".into()));

    let out = ws.weir_async(&["sync", "legacy-contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let records = ws.records("legacy", "contacts");
    assert_eq!(records.len(), 250);
    assert_eq!(records[0].1["id"], records[0].0);

    // Incremental from its checkpoint: only what changed comes again.
    let changed = sim.mutate("contacts", 7);
    sim.reset_counters();
    let out = ws.weir_async(&["sync", "legacy-contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(sim.counters().requests, 1, "one page of changes");
    let records = ws.records("legacy", "contacts");
    for id in &changed {
        let (_, data) = records.iter().find(|(key, _)| key == id).unwrap();
        assert_eq!(data, &sim.record("contacts", id).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connector_built_for_0_2_0_is_refused_naming_both_versions_and_the_fix() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    ws.install(guests::FUTURE_VERSION, "future.wasm")
        .install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));

    let out = ws.weir_async(&["plugins"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = stderr.lines().skip_while(|l| !l.contains("future.wasm"));
    let error = lines.next().unwrap_or_else(|| panic!("reported: {stderr}"));
    assert!(
        error.starts_with("error[plugin-unsupported-version]")
            && error.contains("was built for `weir:connector@0.2.0`")
            && error.contains("this host supports `weir:connector@0.1.0` to `@0.1.1`"),
        "{error}"
    );
    assert_eq!(
        lines.next(),
        Some(
            "hint: upgrade Weir to a release that supports `weir:connector@0.2.0`, or rebuild the connector with weir-sdk 0.1.x"
        ),
        "{stderr}"
    );

    // The refused file never keeps the others from working.
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(ws.records("acme", "contacts").len(), 10);

    let out = ws.weir_async(&["plugins", "--json"]).await;
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed = &listing["failed"][0];
    assert_eq!(failed["code"], "plugin-unsupported-version");
    assert!(failed["hint"].as_str().unwrap().contains("upgrade Weir"));

    let out = ws
        .weir_async(&["plugins", "inspect", "plugins/future.wasm"])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error[plugin-unsupported-version]"),
        "{}",
        output_text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_describes_a_plugin_file_without_calling_the_partner() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    // A weir.toml whose partner would see any request; the file inspected
    // is outside its plugins directory.
    ws.write_config(&acme_config(&sim.base_url()));
    let wasm = std::fs::read(guests::ACME_CRM).unwrap();
    let hash = hex::encode(Sha256::digest(&wasm));

    let out = ws
        .weir_async(&["plugins", "inspect", guests::ACME_CRM])
        .await;
    assert!(out.status.success(), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field = |label: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(label).map(str::trim))
            .unwrap_or_else(|| panic!("no `{label}` in {stdout}"))
    };
    assert_eq!(field("name"), "acme-crm");
    assert_eq!(field("version"), "0.1.0");
    assert_eq!(field("wit version"), "weir:connector@0.1.1");
    assert_eq!(field("sdk version"), "0.1.1");
    assert_eq!(field("hosts"), "config:/base_url");
    assert_eq!(field("sha-256"), hash);
    assert!(field("size").ends_with(" bytes"));
    for words in [
        "api_key",
        "webhook_secret",
        "contacts",
        "companies",
        "tombstones",
        "config schema:",
        "\"base_url\"",
    ] {
        assert!(stdout.contains(words), "{words} in {stdout}");
    }

    let out = ws
        .weir_async(&["plugins", "inspect", guests::ACME_CRM, "--json"])
        .await;
    assert!(out.status.success(), "{}", output_text(&out));
    let plugin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plugin["name"], "acme-crm");
    assert_eq!(plugin["kind"], "connector");
    assert_eq!(plugin["wit_version"], "0.1.1");
    assert_eq!(plugin["size"], wasm.len());
    assert_eq!(plugin["content_hash"], hash);
    let spec = &plugin["spec"];
    assert_eq!(spec["sdk_version"], "0.1.1");
    assert_eq!(spec["hosts"], serde_json::json!(["config:/base_url"]));
    assert_eq!(spec["secrets"][0]["name"], "api_key");
    assert_eq!(spec["streams"][0]["name"], "contacts");
    assert_eq!(spec["streams"][0]["change_feed"], "cursor");
    assert!(spec["config_schema"]["properties"]["base_url"].is_object());

    assert_eq!(sim.counters().requests, 0, "inspecting never calls out");
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_needs_no_weir_toml_and_reports_bad_files_like_the_plugins_directory() {
    let ws = workspace();
    let out = ws
        .weir_async(&["plugins", "inspect", guests::SDK_0_1_0, "--json"])
        .await;
    assert!(out.status.success(), "{}", output_text(&out));
    let plugin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plugin["name"], "sdk-0-1-0");
    assert_eq!(plugin["wit_version"], "0.1.0");
    assert_eq!(plugin["spec"]["sdk_version"], "wit-bindgen 0.61.1");

    ws.install_bytes("notes.wasm", b"not a component");
    for (file, code) in [
        ("plugins/notes.wasm", "plugin-not-component"),
        ("plugins/missing.wasm", "plugin-unreadable"),
        (guests::WRONG_WORLD, "plugin-wrong-world"),
    ] {
        let out = ws.weir_async(&["plugins", "inspect", file]).await;
        assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("error[{code}]")))
                && stderr.contains("hint:"),
            "{file}: {stderr}"
        );
    }
}
