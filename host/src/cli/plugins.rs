//! `weir plugins` and `weir plugins inspect <file>`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::app::{self, Plugins};
use super::output;
use crate::config::Config;
use crate::daemon::{DaemonLock, LockError};
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::plugin::{Decision, LoadFailure, Plugin, PluginKind, decide, load_plugin};
use crate::runtime::{Runtime, RuntimeOptions};
use crate::store::PluginLedger;

/// What `weir plugins` does besides listing.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Let the version of a connector that waits for approval (it declares
    /// hosts no approved version does) serve new runs; when none waits,
    /// end a rollback, so that the plugin file's version serves again.
    ///
    /// The store keeps the decision, so every command and every restart
    /// honours it. With a `weir run` on the store, it is asked through its
    /// admin API, since it serves the change at once; without one, the
    /// command decides in the store itself.
    Approve {
        /// The connector's name, e.g. `acme-crm`.
        name: String,
        #[command(flatten)]
        daemon: RunningDaemon,
    },
    /// Serve the approved version before the serving one (the store keeps
    /// the last four approved versions of each connector), until the
    /// plugin file changes or `weir plugins approve` ends the rollback.
    ///
    /// Asks a `weir run` on the store through its admin API, or decides in
    /// the store itself when none runs, as `approve` does.
    Rollback {
        /// The connector's name, e.g. `acme-crm`.
        name: String,
        #[command(flatten)]
        daemon: RunningDaemon,
    },
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

/// Where the running `weir run` serves its admin API.
#[derive(Debug, Args)]
pub struct RunningDaemon {
    /// Ask the `weir run` whose admin API is here, e.g.
    /// `http://127.0.0.1:7070`, whether or not one holds this store
    /// (default: `[admin] listen` of weir.toml, when a `weir run` holds the
    /// store); the token is `[admin] token`'s.
    #[arg(long, env = "WEIR_ADMIN_URL", value_name = "URL")]
    admin: Option<String>,
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
        Some(PluginsCommand::Approve { name, daemon }) => {
            swap(config_path, &name, Decision::Approve, daemon, json).await
        }
        Some(PluginsCommand::Rollback { name, daemon }) => {
            swap(config_path, &name, Decision::Rollback, daemon, json).await
        }
    }
}

/// Approves or rolls back a connector: through the daemon that holds the
/// store, since its registry is in memory, or in the store itself when no
/// daemon runs (holding the daemon's lock meanwhile, so that none starts
/// halfway).
async fn swap(
    config_path: &Path,
    name: &str,
    decision: Decision,
    daemon: RunningDaemon,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let asked = daemon.admin.is_some();
    if !asked {
        match DaemonLock::acquire("store", config.store.local_file()) {
            Ok(_lock) => return decide_here(&config, name, decision, json).await,
            Err(LockError::Held { .. }) => {}
            Err(error) => return Err(app::diagnostic(error.diagnostic())),
        }
    }
    let action = decision.as_str();
    let base = daemon
        .admin
        .unwrap_or_else(|| format!("http://{}", config.admin.listen));
    let base = base.trim_end_matches('/');
    let token = admin_token(&config)?;
    let sent = reqwest::Client::new()
        .post(format!("{base}/plugins/{name}/{action}"))
        .bearer_auth(String::from_utf8_lossy(token.expose()))
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) if error.is_connect() => {
            let diagnostic = if asked {
                Diagnostic::new(
                    ErrorCode::DaemonNotRunning,
                    format!("no `weir run` answers at {base} to {action} `{name}`"),
                )
                .with_hint("check the URL; without `--admin`, the command decides in the store itself when no `weir run` holds it")
            } else {
                Diagnostic::new(
                    ErrorCode::DaemonNotRunning,
                    format!(
                        "a `weir run` holds the store `{}`, but nothing answers its admin API at {base} to {action} `{name}`",
                        config.store.local_file().display()
                    ),
                )
                .with_hint("pass `--admin <url>` of that daemon's admin API (its `[admin] listen`), or stop it and run this again")
            };
            return Err(app::diagnostic(diagnostic));
        }
        Err(error) => {
            return Err(app::diagnostic(
                Diagnostic::new(
                    ErrorCode::DaemonNotRunning,
                    format!("the admin API at {base} did not answer: {error}"),
                )
                .with_hint(
                    "check that `weir run` is up (`GET /health`) and `--admin <url>` points at it",
                ),
            ));
        }
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        print_decided(name, action, body["serving"].as_str(), json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let error = &body["error"];
    let text = |key: &str| error[key].as_str().map(str::to_string);
    let diagnostic = if status == reqwest::StatusCode::UNAUTHORIZED {
        Diagnostic::new(
            ErrorCode::SecretMissing,
            format!("the admin API at {base} refused the token"),
        )
        .with_hint(
            "give the token `weir run` uses (`[admin] token`, by default `WEIR_ADMIN_TOKEN`)",
        )
    } else {
        let code = text("code")
            .and_then(|c| ErrorCode::parse(&c))
            .unwrap_or(ErrorCode::ConnectorNotLoaded);
        let diagnostic = Diagnostic::new(
            code,
            text("message").unwrap_or_else(|| format!("the admin API answered {status}")),
        );
        match text("hint") {
            Some(hint) => diagnostic.with_hint(hint),
            None => diagnostic,
        }
    };
    Err(app::diagnostic(diagnostic))
}

/// Decides in the store, no daemon running: judged on the plugins
/// directory and the store's decisions, as any command loads them.
async fn decide_here(
    config: &Config,
    name: &str,
    decision: Decision,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = app::store(config)?;
    let plugins = Plugins::load_quietly(config, &store).await?;
    let ledger: Arc<dyn PluginLedger> = store;
    let next = decide(&plugins.registry, decision, name, &ledger)
        .await
        .map_err(|refused| app::diagnostic(refused.into_diagnostic()))?;
    plugins.runtime.shutdown();
    let serving = next.get(name).map(|p| p.version.clone());
    print_decided(name, decision.as_str(), serving.as_deref(), json)?;
    Ok(ExitCode::SUCCESS)
}

fn print_decided(
    name: &str,
    action: &str,
    serving: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        output::print_json(&json!({ "name": name, "serving": serving }))?;
    } else {
        println!(
            "plugin `{name}`: {action} done, {} now serves new runs",
            serving.unwrap_or("?")
        );
    }
    Ok(())
}

/// The admin API's token, from `[admin] token`.
fn admin_token(config: &Config) -> anyhow::Result<crate::capability::SecretValue> {
    let missing = |why: String| {
        app::diagnostic(
            Diagnostic::new(ErrorCode::SecretMissing, format!("the admin token {why}"))
                .with_hint("set WEIR_ADMIN_TOKEN (or `[admin] token` in weir.toml) to the token `weir run` uses"),
        )
    };
    match app::admin_token(&config.admin).map_err(missing)? {
        Some(token) => Ok(token),
        None if config.admin.token.is_none() => {
            Err(missing("is not configured (`[admin] token`)".into()))
        }
        None => Err(missing("is empty".into())),
    }
}

/// Lists loaded plugins and files that failed, with why.
async fn list(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let store = app::store(&config)?;
    let plugins = Plugins::load_quietly(&config, &store).await?;
    let registry = &plugins.registry;
    if json {
        let loaded: Vec<_> = registry
            .plugins()
            .map(|p| {
                let mut described = describe(p);
                described["rolled_back"] = json!(registry.is_rolled_back(&p.name));
                described["kept"] = registry
                    .kept(&p.name)
                    .iter()
                    .map(|k| json!({ "version": k.version, "content_hash": k.content_hash }))
                    .collect();
                described
            })
            .collect();
        let pending: Vec<_> = registry
            .pending()
            .map(|p| {
                let mut described = describe(&p.plugin);
                described["new_hosts"] = json!(p.new_hosts);
                described
            })
            .collect();
        let failed: Vec<_> = registry
            .failures()
            .iter()
            .map(|f| {
                let d = f.diagnostic();
                json!({ "file": f.file, "code": d.code.as_str(), "error": d.message, "hint": d.hint })
            })
            .collect();
        output::print_json(&json!({ "loaded": loaded, "pending": pending, "failed": failed }))?;
    } else {
        let mut table = output::table(["name", "version", "kind", "wit", "file", "status"]);
        let mut add = |p: &Plugin, status: &str| {
            table.add_row([
                p.name.clone(),
                p.version.clone(),
                p.kind_name().to_string(),
                p.wit_version.clone(),
                p.file.display().to_string(),
                status.to_string(),
            ]);
        };
        for p in registry.plugins() {
            let rolled_back = registry.is_rolled_back(&p.name);
            add(
                p,
                if rolled_back {
                    "loaded (rolled back)"
                } else {
                    "loaded"
                },
            );
        }
        for p in registry.pending() {
            add(&p.plugin, "waiting for approval");
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
        for p in registry.pending() {
            output::print_problem("warning", &app::waiting(p, registry));
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
