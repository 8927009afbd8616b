//! `weir validate`: every problem of the configuration at once, found
//! without calling a connector or reaching a partner.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use super::app::Plugins;
use super::output;
use crate::config::Config;
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::validate::{self, Severity};

/// One problem, as `--json` shows it.
#[derive(Serialize)]
struct Problem<'a> {
    severity: Severity,
    code: &'a str,
    message: &'a str,
    hint: Option<&'a str>,
}

/// `weir validate`.
pub async fn run(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let mut found: Vec<(Severity, Diagnostic)> = Vec::new();
    let mut counts = None;
    let (config, problems) = Config::load_partly(config_path);
    found.extend(problems.iter().map(|p| (Severity::Error, p.diagnostic())));
    if let Some(config) = config {
        let store = super::app::store(&config)?;
        let plugins = Plugins::load_quietly(&config, &store).await?;
        found.extend(
            plugins
                .registry
                .failures()
                .iter()
                .map(|failure| (Severity::Error, failure.diagnostic())),
        );
        found.extend(
            validate::check_all(&config, &plugins.runtime, &plugins.registry)
                .into_iter()
                .map(|finding| (finding.severity, finding.diagnostic)),
        );
        counts = Some((config.connections.len(), config.flows.len()));
    }
    let errors = found
        .iter()
        .filter(|(severity, _)| *severity == Severity::Error)
        .count();
    if json {
        let problems: Vec<Problem<'_>> = found
            .iter()
            .map(|(severity, d)| Problem {
                severity: *severity,
                code: d.code.as_str(),
                message: &d.message,
                hint: d.hint.as_deref(),
            })
            .collect();
        output::print_json(&serde_json::json!({
            "config": config_path,
            "valid": errors == 0,
            "problems": problems,
        }))?;
    } else {
        for (severity, diagnostic) in &found {
            let prefix = match severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            output::print_problem(prefix, diagnostic);
        }
        let warnings = found.len() - errors;
        match counts {
            Some((connections, flows)) if errors == 0 => println!(
                "`{}` is valid: {connections} connection(s), {flows} flow(s), {warnings} warning(s)",
                config_path.display()
            ),
            _ => eprintln!(
                "`{}`: {errors} error(s), {warnings} warning(s)",
                config_path.display()
            ),
        }
    }
    Ok(if errors > 0 {
        output::exit_code(ErrorCode::ConfigInvalid)
    } else {
        ExitCode::SUCCESS
    })
}
