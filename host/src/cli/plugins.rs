//! `weir plugins`.

use std::path::Path;
use std::process::ExitCode;

use super::app::{self, Plugins};
use super::output;

/// Lists loaded plugins and files that failed, with why.
pub async fn run(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let plugins = Plugins::load_quietly(&config).await?;
    let registry = &plugins.registry;
    if json {
        let loaded: Vec<_> = registry
            .plugins()
            .map(|p| {
                serde_json::json!({
                    "name": p.name, "version": p.version, "kind": p.kind_name(),
                    "wit_version": p.wit_version, "file": p.file, "size": p.size,
                    "content_hash": p.content_hash,
                    "spec": p.spec().map(|s| serde_json::json!({
                        "description": s.description, "hosts": s.hosts, "secrets": s.secrets,
                        "streams": s.streams, "checkpoint_format": s.checkpoint_format,
                        "sdk_version": s.sdk_version,
                        "config_schema": serde_json::from_str::<serde_json::Value>(&s.config_schema).unwrap_or_default(),
                    })),
                })
            })
            .collect();
        let failed: Vec<_> = registry
            .failures()
            .iter()
            .map(|f| {
                let d = f.diagnostic();
                serde_json::json!({ "file": f.file, "code": d.code.as_str(), "error": d.message, "hint": d.hint })
            })
            .collect();
        output::print_json(&serde_json::json!({ "loaded": loaded, "failed": failed }))?;
    } else {
        let mut table = output::table(["name", "version", "kind", "wit", "file", "status"]);
        for p in registry.plugins() {
            table.add_row([
                p.name.clone(),
                p.version.clone(),
                p.kind_name().to_string(),
                p.wit_version.to_string(),
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
