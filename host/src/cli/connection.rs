//! `weir check` and `weir discover`.

use std::path::Path;
use std::process::ExitCode;

use super::app::{self, Plugins};
use super::output;
use crate::call::CallError;
use crate::connection::ConnectionServices;
use crate::diagnostic::{Diagnose, ErrorCode};

/// The failure of a command that makes one call, not a run: nothing
/// resumes from a checkpoint, so a failure that may pass says to run the
/// command again.
fn one_call(error: &CallError, command: &str) -> anyhow::Error {
    let mut diagnostic = error.diagnostic();
    let again = match diagnostic.code {
        ErrorCode::ConnectorTransient => "the partner or the network failed in a way that may pass",
        ErrorCode::RateLimited => "the partner asked to slow down",
        _ => return output::fail(diagnostic),
    };
    diagnostic.hint = Some(format!("{again}: run `weir {command}` again later"));
    output::fail(diagnostic)
}

/// `weir check <connection>`.
pub async fn check(config_path: &Path, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let store = app::store(&config)?;
    let plugins = Plugins::load(&config, &store).await?;
    let services = ConnectionServices::new(store);
    let connection = plugins.connection(&config, name, &services)?;
    let missing = connection.missing_secrets();
    let checked = connection.check().await;
    services.flush().await;
    checked.map_err(|e| one_call(&e, &format!("check {name}")))?;
    if json {
        output::print_json(&serde_json::json!({
            "connection": name,
            "connector": connection.plugin().label(),
            "ok": true,
            "undefined_secrets": missing,
        }))?;
    } else {
        println!(
            "connection `{name}` is ready ({})",
            connection.plugin().label()
        );
        for secret in missing {
            println!(
                "note: the connector also uses secret `{secret}`, which this connection does not define; features that need it will be refused"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `weir discover <connection>`.
pub async fn discover(config_path: &Path, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let store = app::store(&config)?;
    let plugins = Plugins::load(&config, &store).await?;
    let services = ConnectionServices::new(store);
    let connection = plugins.connection(&config, name, &services)?;
    let discovered = connection.discover().await;
    services.flush().await;
    let streams = discovered.map_err(|e| one_call(&e, &format!("discover {name}")))?;
    let spec = connection.spec();
    if json {
        let list: Vec<_> = streams
            .iter()
            .map(|s| {
                serde_json::json!({
                    "stream": s,
                    "json_schema": serde_json::from_str::<serde_json::Value>(&s.json_schema).unwrap_or_default(),
                    "capabilities": spec.stream(&s.name),
                })
            })
            .collect();
        output::print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table([
        "stream",
        "primary key",
        "cursor",
        "changes",
        "deletes",
        "writes",
        "description",
    ]);
    for stream in &streams {
        let capabilities = spec.stream(&stream.name);
        let feed = |f: &dyn Fn(&crate::contract::StreamCapabilities) -> String| {
            capabilities.map(f).unwrap_or_else(|| "?".into())
        };
        table.add_row([
            stream.name.clone(),
            stream.primary_key.join(", "),
            stream.cursor_field.clone().unwrap_or_else(|| "-".into()),
            feed(&|c| format!("{:?}", c.change_feed).to_lowercase()),
            feed(&|c| format!("{:?}", c.deletes).to_lowercase()),
            feed(&|c| {
                if c.writable() {
                    format!("{:?}", c.idempotency).to_lowercase()
                } else {
                    "no".into()
                }
            }),
            stream.description.clone(),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}
