use weir_tests::{acme_config, guests, output_text};

use crate::{simulator, workspace};

#[tokio::test(flavor = "multi_thread")]
async fn bad_plugin_files_are_reported_and_the_good_one_still_works() {
    let sim = simulator(200, 0).await;
    let ws = workspace();
    let acme = std::fs::read(guests::ACME_CRM).unwrap();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .install(guests::WRONG_WORLD, "greeter.wasm")
        .install_bytes("notes.wasm", b"these are not the bytes you are looking for")
        .install_bytes("half.wasm", &acme[..acme.len() / 2])
        .install_bytes("module.wasm", b"\0asm\x01\0\0\0")
        .install_bytes("README.txt", b"ignored: not a .wasm file")
        .write_config(&acme_config(&sim.base_url()));

    let out = ws.weir_async(&["plugins"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (file, code, words) in [
        (
            "notes.wasm",
            "plugin-not-component",
            "no WebAssembly header",
        ),
        ("module.wasm", "plugin-not-component", "core module"),
        ("half.wasm", "plugin-invalid", "damaged or truncated"),
        (
            "greeter.wasm",
            "plugin-wrong-world",
            "does not export Weir's interfaces",
        ),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("{file} is reported: {stderr}"));
        assert!(
            line.contains(&format!("[{code}]")) && line.contains(words),
            "{line}"
        );
    }
    assert!(stderr.contains("hint:"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("acme-crm") && stdout.contains("loaded"),
        "{stdout}"
    );
    assert!(!stdout.contains("README"), "non-wasm files are ignored");

    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(ws.records("acme", "contacts").len(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn precompiled_artifacts_are_never_loaded_from_the_plugins_directory() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    ws.install(guests::ACME_CRM, "acme_crm.wasm")
        .write_config(&acme_config(&sim.base_url()));
    assert!(ws.weir_async(&["plugins"]).await.status.success());
    let artifact = std::fs::read_dir(ws.path().join(".weir-cache"))
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .expect("the compile cache holds the artifact");
    ws.install(artifact.path().to_str().unwrap(), "sneaky.wasm");

    let out = ws.weir_async(&["plugins", "--json"]).await;
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed = &listing["failed"][0];
    assert!(failed["file"].as_str().unwrap().ends_with("sneaky.wasm"));
    assert_eq!(failed["code"], "plugin-not-component");
    assert!(failed["error"].as_str().unwrap().contains("precompiled"));
    assert_eq!(listing["loaded"][0]["name"], "acme-crm");
    assert_eq!(listing["loaded"][0]["wit_version"], "0.1.1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_naming_a_missing_connector_says_what_is_loaded() {
    let sim = simulator(10, 0).await;
    let ws = workspace();
    ws.write_config(&acme_config(&sim.base_url()));
    let out = ws.weir_async(&["sync", "contacts"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error[connector-not-loaded]")
            && stderr.contains("loaded connectors: none"),
        "{stderr}"
    );
}

/// Every guest the build makes is there for a test: each is named by an
/// integration test (`guests::NAME`) or installed by a golden case.
#[test]
fn every_built_guest_is_used_by_a_test() {
    use std::collections::BTreeSet;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
    let mut sources = String::new();
    for entry in std::fs::read_dir(root.join("integration"))
        .unwrap()
        .flatten()
    {
        if entry.path() != root.join("integration/plugins.rs") {
            sources += &std::fs::read_to_string(entry.path()).unwrap();
        }
    }
    // This file's own tests, before this one.
    let own = std::fs::read_to_string(root.join("integration/plugins.rs")).unwrap();
    sources += own
        .split("fn every_built_guest_is_used_by_a_test")
        .next()
        .unwrap();
    // A golden case's `guests` and `setup` lines name guests by crate.
    let mut installed = BTreeSet::new();
    for case in std::fs::read_dir(root.join("golden")).unwrap().flatten() {
        for file in ["guests", "setup"] {
            let text = std::fs::read_to_string(case.path().join(file)).unwrap_or_default();
            for line in text.lines() {
                let guest = line.trim().trim_start_matches("install ");
                installed.insert(guest.split(" as ").next().unwrap().trim().to_string());
            }
        }
    }
    let mut unused = Vec::new();
    macro_rules! check {
        ($guest:ident) => {
            let name = stringify!($guest);
            let crate_name = name.to_lowercase().replace('_', "-");
            if !sources.contains(&format!("guests::{name}")) && !installed.contains(&crate_name) {
                unused.push(name);
            }
        };
    }
    weir_tests::foreach_guest!(check);
    assert!(
        unused.is_empty(),
        "guests no test uses (test them, or stop building them): {unused:?}"
    );
}
