//! `weir audit`: the outbound requests connectors made.

use std::path::Path;
use std::process::ExitCode;

use super::{app, output};
use crate::diagnostic::Diagnose;

/// Lists the latest outbound requests, newest first.
pub fn run(
    config_path: &Path,
    connection: Option<&str>,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let connection = connection
        .map(|c| config.connection(c).map(|c| c.id.clone()))
        .transpose()
        .map_err(app::diagnostic)?;
    let store = app::store(&config)?;
    let entries = store
        .audit(connection.as_ref(), limit)
        .map_err(|e| output::fail(e.diagnostic()))?;
    if json {
        output::print_json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("no outbound requests recorded yet");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table([
        "time",
        "connection",
        "request",
        "status",
        "bytes in",
        "ms",
        "try",
        "budget left",
    ]);
    for e in entries {
        let budget = match (e.budget.tokens, e.budget.today) {
            (None, None) => "unlimited".to_string(),
            (tokens, today) => [
                tokens.map(|t| format!("{t} now")),
                today.map(|t| format!("{} today", output::count(t))),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", "),
        };
        table.add_row([
            output::timestamp(e.at_ms),
            e.connection,
            format!("{} {}{}", e.method, e.origin, e.path),
            e.status
                .map_or_else(|| e.outcome.to_string(), |s| s.to_string()),
            output::count(e.bytes_received),
            e.duration_ms.to_string(),
            e.attempt.to_string(),
            budget,
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}
