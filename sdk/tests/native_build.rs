//! A plugin crate built for the build machine instead of wasm32-wasip2
//! stops at compile time with the command that builds it, rather than at
//! link time with a linker error about `cabi_post_*` symbols.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CONNECTOR: &str = r#"
use weir_sdk::{Checkpoint, Connector, Page, ReadRequest, Result, Spec};

pub struct Empty;

impl Connector for Empty {
    type Config = serde_json::Value;

    fn spec() -> Spec {
        Spec::new("empty", "0.1.0")
    }

    fn read(_: &serde_json::Value, _: ReadRequest) -> Result<Page> {
        Ok(Page::new(Vec::new(), Checkpoint::from_json(1, "{}")))
    }
}

weir_sdk::export_connector!(Empty);
"#;

/// A connector crate depending on this SDK, in a fresh directory, locked
/// to the versions the workspace already has (the check runs offline).
fn connector_crate(dir: &Path) {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = format!(
        r#"[package]
name = "native-connector"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
serde_json = "1"
weir-sdk = {{ path = "{sdk}" }}

[features]
testing = ["weir-sdk/testing"]

[workspace]
"#,
        sdk = sdk.display()
    );
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/lib.rs"), CONNECTOR).unwrap();
    std::fs::copy(sdk.join("../Cargo.lock"), dir.join("Cargo.lock")).unwrap();
}

/// `cargo check` of the crate for the build machine, bounded in time.
fn check_natively(dir: &Path, features: &[&str]) -> Output {
    // Kept between runs, so that only the first one checks the dependencies.
    let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("native-build");
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["check", "--offline", "--lib", "--quiet"])
        .args(features.iter().flat_map(|f| ["--features", f]))
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo starts");
    let deadline = Instant::now() + Duration::from_secs(600);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`cargo check` of the native connector took more than 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_native_build_of_a_connector_names_the_wasm_build_command() {
    let dir = tempfile::tempdir().unwrap();
    connector_crate(dir.path());

    let native = check_natively(dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&native.stderr);
    assert!(!native.status.success(), "a native build passed:\n{stderr}");
    assert!(
        stderr.contains("error: a Weir plugin is a WebAssembly component: build it with `cargo build --release --target wasm32-wasip2`"),
        "{stderr}"
    );
    assert!(!stderr.contains("cabi_post"), "{stderr}");

    // The same crate compiles natively with the `testing` feature: the
    // error above comes from the target check, nothing else.
    let testing = check_natively(dir.path(), &["testing"]);
    assert!(
        testing.status.success(),
        "{}",
        String::from_utf8_lossy(&testing.stderr)
    );
}
