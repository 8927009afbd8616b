//! One run of one tenant's flow, from opening its connections to the end.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Daemon;
use crate::diagnostic::Diagnostic;
use crate::flow::{Destination, Legs, Reshaper, RunOptions, RunSummary};
use crate::tenant::ResolvedFlow;

/// Runs a resolved flow; a problem before the first page (a connector that
/// is not loaded, a secret that cannot be read) is returned as a diagnostic.
pub async fn execute(
    daemon: &Daemon,
    resolved: &ResolvedFlow,
    cancel: CancellationToken,
    log_changes: bool,
) -> Result<RunSummary, Diagnostic> {
    let plugins = daemon.plugins();
    let open = |config| {
        resolved
            .open(&daemon.runtime, &plugins, config, &daemon.services)
            .map(Arc::new)
    };
    let source = open(&resolved.source)?;
    let destination = match (&resolved.flow.destination, &resolved.destination) {
        (crate::config::Destination::Connection { stream, .. }, Some(config)) => {
            Destination::Connection {
                connection: open(config)?,
                stream: stream.clone(),
            }
        }
        _ => Destination::Store,
    };
    let reshaper = Reshaper::new(
        &daemon.runtime,
        &plugins,
        resolved.flow.mapping.clone(),
        &resolved.flow.transforms,
    )?;
    let legs = Legs {
        source: &source,
        reshaper: &reshaper,
        destination: &destination,
    };
    let options = RunOptions {
        cancel: Some(cancel),
        log_changes,
        ..RunOptions::default()
    };
    daemon
        .runner
        .run(&resolved.flow, &legs, &options, &())
        .await
        .map_err(|e| match crate::diagnostic::find(&e) {
            Some(d) => Diagnostic {
                code: d.code,
                message: d.message.clone(),
                hint: d.hint.clone(),
            },
            None => Diagnostic::new(
                crate::diagnostic::ErrorCode::StoreUnavailable,
                format!("{e:#}"),
            ),
        })
}
