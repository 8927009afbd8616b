//! Project commands, runnable on a machine with nothing but rustup's Rust
//! toolchain: they install what they need themselves.
//!
//! - `cargo xtask demo`: Weir's main job end to end on the embedded defaults
//!   (partner simulator on 127.0.0.1, example connector, SQLite file);
//! - `cargo xtask test`: everything CI runs;
//! - `cargo xtask bench`: the benchmarks, with their ratios.

mod demo;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, bail};

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo::run(&args[1..]),
        Some("test") => test(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <demo|test|bench>\n\n  demo   sync a simulated partner into a local SQLite store, end to end\n  test   run everything CI runs (format check, lints, all tests)\n  bench  run the benchmarks, or the ones named (sync, sandbox, mapping, scheduler, reload, inbox, webhooks)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs a command in the repository root, failing on a non-zero exit.
pub fn run_cmd(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("$ {}", shown.replace('"', ""));
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// `rustup target add` is idempotent: a no-op when the target is there.
pub fn ensure_wasm_target() -> anyhow::Result<()> {
    run_cmd(Command::new("rustup").args(["target", "add", WASM_TARGET]))
        .context("cannot install the wasm32-wasip2 target with rustup")
}

/// The workspaces of wasm guests, beside the host's, with the target
/// directory each is checked in.
const GUEST_WORKSPACES: [(&str, &str); 2] = [
    ("plugins/Cargo.toml", "target/wasm/lint-plugins"),
    ("tests/guests/Cargo.toml", "target/wasm/lint-guests"),
];

fn test() -> anyhow::Result<()> {
    ensure_wasm_target()?;
    run_cmd(cargo().args(["fmt", "--all", "--check"]))?;
    for (manifest, _) in GUEST_WORKSPACES {
        run_cmd(cargo().args(["fmt", "--all", "--check", "--manifest-path", manifest]))?;
    }
    run_cmd(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    for (manifest, target_dir) in GUEST_WORKSPACES {
        run_cmd(
            cargo()
                .args([
                    "clippy",
                    "--workspace",
                    "--target",
                    WASM_TARGET,
                    "--manifest-path",
                    manifest,
                ])
                .args(["--", "-D", "warnings"])
                .env("CARGO_TARGET_DIR", root().join(target_dir)),
        )?;
    }
    // The connectors' own unit tests, natively: without the `export`
    // feature, whose component entry points link only for wasm.
    run_cmd(
        cargo()
            .args(["test", "--workspace", "--no-default-features"])
            .args(["--manifest-path", "plugins/Cargo.toml"])
            .env("CARGO_TARGET_DIR", root().join("target/plugins-native")),
    )?;
    run_cmd(cargo().args(["test", "--workspace", "--no-fail-fast"]))
}

/// Every benchmark, in the order README's Performance section lists them.
const BENCHES: &[&str] = &[
    "sync",
    "sandbox",
    "mapping",
    "scheduler",
    "reload",
    "inbox",
    "webhooks",
];

/// `cargo xtask bench [name...]`: the named benchmarks, or all of them.
fn bench(args: &[String]) -> anyhow::Result<()> {
    ensure_wasm_target()?;
    let chosen: Vec<&str> = if args.is_empty() {
        BENCHES.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    if let Some(unknown) = chosen.iter().find(|name| !BENCHES.contains(name)) {
        anyhow::bail!(
            "there is no benchmark `{unknown}`; choose from: {}",
            BENCHES.join(", ")
        );
    }
    let mut command = cargo();
    command.args(["bench", "-p", "weir-host"]);
    for name in chosen {
        command.args(["--bench", name]);
    }
    run_cmd(&mut command)
}
