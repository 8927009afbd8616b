//! `weir plugins` and `weir plugins inspect <file>`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Value, json};

use super::app::{self, Plugins};
use super::output;
use crate::config::Config;
use crate::plugin::{LoadFailure, Plugin, PluginKind, load_plugin};
use crate::runtime::{Runtime, RuntimeOptions};

/// What `weir plugins` does besides listing.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Describe one plugin file, without running it against a partner.
    ///
    /// Prints its name and version, the WIT version it was built for, its
    /// SDK version, size and SHA-256, the hosts and secrets it declares, its
    /// streams with their capabilities, and its config schema. Weir only
    /// compiles the file and calls `spec()`, with no network; the file may
    /// be anywhere.
    Inspect {
        /// The `.wasm` file.
        file: PathBuf,
    },
}

/// `weir plugins [inspect <file>]`.
pub async fn run(
    config_path: &Path,
    command: Option<PluginsCommand>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match command {
        None => list(config_path, json).await,
        Some(PluginsCommand::Inspect { file }) => inspect(config_path, &file, json).await,
    }
}

/// Lists loaded plugins and files that failed, with why.
async fn list(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let plugins = Plugins::load_quietly(&config).await?;
    let registry = &plugins.registry;
    if json {
        let loaded: Vec<_> = registry.plugins().map(|p| describe(p)).collect();
        let failed: Vec<_> = registry
            .failures()
            .iter()
            .map(|f| {
                let d = f.diagnostic();
                json!({ "file": f.file, "code": d.code.as_str(), "error": d.message, "hint": d.hint })
            })
            .collect();
        output::print_json(&json!({ "loaded": loaded, "failed": failed }))?;
    } else {
        let mut table = output::table(["name", "version", "kind", "wit", "file", "status"]);
        for p in registry.plugins() {
            table.add_row([
                p.name.clone(),
                p.version.clone(),
                p.kind_name().to_string(),
                p.wit_version.clone(),
                p.file.display().to_string(),
                "loaded".to_string(),
            ]);
        }
        for f in registry.failures() {
            table.add_row([
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                f.file.display().to_string(),
                format!("failed [{}]", f.diagnostic().code),
            ]);
        }
        println!("{table}");
        for f in registry.failures() {
            output::print_problem("error", &f.diagnostic());
        }
    }
    Ok(if registry.failures().is_empty() {
        ExitCode::SUCCESS
    } else {
        output::exit_code(crate::diagnostic::ErrorCode::PluginInvalid)
    })
}

/// Loads one file exactly as the plugins directory would (same checks, same
/// errors), then describes it.
async fn inspect(config_path: &Path, file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    // Inspecting needs no configuration. With a usable weir.toml, its compile
    // cache is reused (and warmed); otherwise a private throwaway one is used,
    // never a shared directory: cached artifacts are loaded unchecked.
    let scratch;
    let cache_dir = match Config::load(config_path) {
        Ok(config) => config.cache_dir,
        Err(_) => {
            scratch = tempfile::tempdir()?;
            scratch.path().to_path_buf()
        }
    };
    let runtime = Runtime::new(RuntimeOptions::new(cache_dir))?;
    let plugin = load_plugin(&runtime, file).await.map_err(|error| {
        app::diagnostic(
            LoadFailure {
                file: file.to_path_buf(),
                error,
            }
            .diagnostic(),
        )
    })?;
    runtime.shutdown();
    if json {
        output::print_json(&describe(&plugin))?;
    } else {
        print_plugin(&plugin);
    }
    Ok(ExitCode::SUCCESS)
}

/// A plugin as JSON, for `--json` listings.
fn describe(p: &Plugin) -> Value {
    json!({
        "name": p.name, "version": p.version, "kind": p.kind_name(),
        "wit_version": p.wit_version, "file": p.file, "size": p.size,
        "content_hash": p.content_hash,
        "spec": p.spec().map(|s| json!({
            "description": s.description, "hosts": s.hosts, "secrets": s.secrets,
            "streams": s.streams, "checkpoint_format": s.checkpoint_format,
            "sdk_version": s.sdk_version,
            "config_schema": serde_json::from_str::<Value>(&s.config_schema).unwrap_or_default(),
        })),
    })
}

fn print_plugin(p: &Plugin) {
    let field = |label: &str, value: &str| println!("{label:<15}{value}");
    field("name", &p.name);
    field("version", &p.version);
    field("kind", p.kind_name());
    field("wit version", &format!("weir:connector@{}", p.wit_version));
    field("file", &p.file.display().to_string());
    field("size", &format!("{} bytes", output::count(p.size)));
    field("sha-256", &p.content_hash);
    let PluginKind::Connector { spec, .. } = &p.kind else {
        return;
    };
    field("sdk version", &spec.sdk_version);
    field("description", &spec.description);
    field("checkpoints", &format!("format {}", spec.checkpoint_format));
    field(
        "hosts",
        &if spec.hosts.is_empty() {
            "none".to_string()
        } else {
            spec.hosts.join(", ")
        },
    );
    if spec.secrets.is_empty() {
        field("secrets", "none");
    } else {
        println!();
        let mut table = output::table(["secret", "description"]);
        for secret in &spec.secrets {
            table.add_row([secret.name.clone(), secret.description.clone()]);
        }
        println!("{table}");
    }
    println!();
    let mut table = output::table([
        "stream",
        "changes",
        "deletes",
        "writes",
        "versioned",
        "webhooks",
    ]);
    for stream in &spec.streams {
        table.add_row([
            stream.name.clone(),
            kebab(stream.change_feed),
            kebab(stream.deletes),
            kebab(stream.idempotency),
            yes_no(stream.versioned),
            yes_no(stream.webhooks),
        ]);
    }
    println!("{table}");
    println!("\nconfig schema:");
    match serde_json::from_str::<Value>(&spec.config_schema) {
        Ok(schema) => println!(
            "{}",
            serde_json::to_string_pretty(&schema).unwrap_or_default()
        ),
        Err(_) => println!("{}", spec.config_schema),
    }
}

/// The serialized (kebab-case) name of a capability, as in `--json`.
fn kebab(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => "?".into(),
    }
}

fn yes_no(flag: bool) -> String {
    if flag { "yes" } else { "no" }.into()
}
