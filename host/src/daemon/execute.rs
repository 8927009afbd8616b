//! One run of one tenant's flow, from opening its connections to the end.

use tokio_util::sync::CancellationToken;

use super::Daemon;
use crate::diagnostic::{Diagnose, Diagnostic};
use crate::flow::{Feed, Opener, Plan, RunOptions, RunSummary};
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
    let opener = Opener {
        runtime: &daemon.runtime,
        plugins: &plugins,
        services: &daemon.services,
    };
    let source = opener.source(resolved)?;
    let plan = Plan::open(resolved, &opener)?;
    let feed = Feed::Partner {
        source,
        full_refresh: false,
        log_changes,
    };
    let options = RunOptions {
        cancel: Some(cancel),
        ..RunOptions::default()
    };
    daemon
        .runner
        .run(&plan, feed, &options, &())
        .await
        .map_err(|e| e.diagnostic())
}
