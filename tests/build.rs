//! Builds every wasm guest the tests use: the example connectors of
//! `plugins/` and the misbehaving test guests of `tests/guests/`, each a
//! wasm32-wasip2 component. Generates `guests.rs` with one constant per
//! guest (its path) and a `foreach_guest!` macro, so every guest has a test.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    // A target dir of their own: the outer build holds the lock on ours.
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm");

    for dir in ["sdk", "wit", "plugins", "tests/guests"] {
        rerun_if_changed(&root.join(dir));
    }
    ensure_target();

    // Each workspace builds into its own directory: the same crates built
    // with two workspaces' profiles must not share one `deps` folder.
    let mut guests = Vec::new();
    for (workspace, dir) in [("plugins", "plugins"), ("tests/guests", "guests")] {
        let target = target_dir.join(dir);
        build_workspace(&root.join(workspace), &target);
        let artifacts = target.join(TARGET).join("release");
        guests.extend(
            members(&root.join(workspace))
                .into_iter()
                .map(|name| (name, artifacts.clone())),
        );
    }

    let mut code = String::new();
    for (name, artifacts) in &guests {
        let path = artifacts.join(format!("{}.wasm", name.replace('-', "_")));
        assert!(path.exists(), "guest `{name}` built no {}", path.display());
        writeln!(
            code,
            "/// The built `{name}` component.\npub const {}: &str = {:?};",
            name.replace('-', "_").to_uppercase(),
            path.display().to_string()
        )
        .unwrap();
    }
    writeln!(
        code,
        "/// Calls `$mac!(CONST_NAME)` for every guest.\n#[macro_export]\nmacro_rules! foreach_guest {{ ($mac:ident) => {{ {} }} }}",
        guests
            .iter()
            .map(|(g, _)| format!("$mac!({});", g.replace('-', "_").to_uppercase()))
            .collect::<String>()
    )
    .unwrap();
    writeln!(
        code,
        "/// Compiled components shared between the tests' workspaces.\npub const COMPILE_CACHE: &str = {:?};",
        target_dir.join("test-compile-cache").display().to_string()
    )
    .unwrap();
    std::fs::write(
        PathBuf::from(env::var("OUT_DIR").unwrap()).join("guests.rs"),
        code,
    )
    .unwrap();
}

fn rerun_if_changed(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rerun_if_changed(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// Installs the wasm target when missing (`rustup target add` is idempotent
/// and quick when it is already there).
fn ensure_target() {
    let sysroot = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
    {
        return;
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "the `{TARGET}` target is missing and `rustup target add {TARGET}` failed: install it, then build again"
    );
}

fn build_workspace(dir: &Path, target_dir: &Path) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args(["build", "--release", "--workspace", "--target", TARGET])
        .env("CARGO_TARGET_DIR", target_dir);
    // Settings meant for the outer (native) build must not leak into this one.
    for (key, _) in env::vars() {
        if key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_BUILD_")
            || key == "CARGO_ENCODED_RUSTFLAGS"
            || key == "RUSTFLAGS"
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key == "CARGO_MANIFEST_DIR"
            || key == "CARGO_MANIFEST_PATH"
        {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().expect("cargo runs");
    assert!(
        status.success(),
        "building the wasm guests of `{}` failed",
        dir.display()
    );
}

/// Member crates of a guest workspace: its subdirectories with a Cargo.toml.
fn members(workspace: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
