//! `weir run`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::app::{self, Plugins};
use crate::admin::{AdminState, router};
use crate::clock::Clock;
use crate::daemon::{Daemon, DaemonLock, Scheduler};
use crate::diagnostic::Diagnose;
use crate::inbox::{Inbox, InboxOptions};
use crate::ingress::Ingress;

/// Runs until SIGINT or SIGTERM, then shuts down gracefully and exits 0.
pub async fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    // One clock for everything the daemon records.
    let clock = Clock::system();
    let store = app::store_with_clock(&config, clock.clone())?;
    // Before anything acts as the daemon: a second one stops here.
    let lock = |what, path| {
        DaemonLock::acquire(what, path).map_err(|e| super::output::fail(e.diagnostic()))
    };
    let _store_lock = lock("store", config.store.local_file())?;
    let _inbox_lock = match config.ingress.listen {
        Some(_) => Some(lock("webhook inbox", &config.ingress.inbox_path)?),
        None => None,
    };
    let plugins = Plugins::load(&config, &store).await?;
    let admin_config = config.admin.clone();
    let daemon = Daemon::new(config, plugins.runtime, plugins.registry, store);
    let (scheduler, handle) = Scheduler::new(daemon.clone());
    let _watcher = watch_plugins(&daemon);
    let shutdown = CancellationToken::new();
    super::app::stop_on_signal(
        shutdown.clone(),
        "shutting down: runs end at their last committed page, then weir exits",
    );

    // The admin API's address comes first on stdout: scripts wait for it.
    let admin_listener = match admin_token(&admin_config) {
        Some(token) => {
            let listener = tokio::net::TcpListener::bind(admin_config.listen).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {} for the admin API (`[admin] listen` in weir.toml): {e}",
                    admin_config.listen
                )
            })?;
            println!("weir: admin API on http://{}", listener.local_addr()?);
            Some((listener, token))
        }
        None => None,
    };
    let ingress = start_ingress(&daemon, clock, &shutdown).await?;
    let mut servers = Vec::new();
    if let Some((listener, token)) = admin_listener {
        let app = router(Arc::new(AdminState {
            daemon: daemon.clone(),
            scheduler: handle.clone(),
            token,
            ingress: ingress.as_ref().map(|(ingress, _)| ingress.clone()),
        }));
        let stop = shutdown.clone();
        servers.push(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        }));
    }
    println!("weir: scheduling; stop with Ctrl-C or SIGTERM");
    let _ = std::io::stdout().flush();
    scheduler.run(shutdown.clone()).await;
    shutdown.cancel();
    for server in servers {
        let _ = server.await;
    }
    if let Some((ingress, workers)) = ingress {
        // Workers finish the delivery in hand, then the inbox closes.
        for worker in workers {
            let _ = tokio::time::timeout(daemon.config.daemon.shutdown_grace, worker).await;
        }
        ingress.inbox().close().await;
    }
    daemon.services.flush().await;
    println!("weir: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The admin token, or none (with a warning) when it cannot be read.
fn admin_token(config: &crate::config::AdminConfig) -> Option<crate::capability::SecretValue> {
    app::admin_token(config).unwrap_or_else(|why| {
        super::output::print_problem(
            "warning",
            &crate::diagnostic::Diagnostic::new(
                crate::diagnostic::ErrorCode::SecretMissing,
                format!("the admin API is off: its token {why}"),
            )
            .with_hint(
                "set WEIR_ADMIN_TOKEN (or `[admin] token` in weir.toml) to serve the admin API",
            ),
        );
        None
    })
}

/// Webhook ingress and its workers, when `[ingress] listen` is set.
async fn start_ingress(
    daemon: &Arc<Daemon>,
    clock: Clock,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<(Arc<Ingress>, Vec<tokio::task::JoinHandle<()>>)>> {
    let Some(listen) = daemon.config.ingress.listen else {
        return Ok(None);
    };
    let options = InboxOptions {
        max_attempts: daemon.config.ingress.delivery_attempts,
        clock,
        ..InboxOptions::default()
    };
    let inbox_path = &daemon.config.ingress.inbox_path;
    let inbox =
        Inbox::open(inbox_path, options).map_err(|e| super::output::fail(e.diagnostic()))?;
    // With the inbox's lock (taken in `run`), no other worker is alive:
    // what is processing was left by a daemon that died, and is taken back
    // now rather than when its lease runs out.
    let taken_back = inbox
        .take_back_leases()
        .await
        .map_err(|e| super::output::fail(e.diagnostic()))?;
    if taken_back > 0 {
        tracing::info!(
            "took back {taken_back} webhook delivery(ies) left processing by a daemon that stopped"
        );
    }
    let ingress = Ingress::new(daemon.clone(), Arc::new(inbox));
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {listen} for webhooks (`[ingress] listen` in weir.toml): {e}"
        )
    })?;
    println!("weir: webhooks on http://{}", listener.local_addr()?);
    let app = crate::ingress::router(ingress.clone());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    let mut workers: Vec<_> = (0..WEBHOOK_WORKERS)
        .map(|_| {
            tokio::spawn(crate::ingress::process_deliveries(
                ingress.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    workers.push(tokio::spawn(crate::ingress::keep_inbox_tidy(
        ingress.clone(),
        shutdown.clone(),
    )));
    Ok(Some((ingress, workers)))
}

/// Workers turning stored deliveries into changes.
const WEBHOOK_WORKERS: usize = 2;

/// Hot reload of the plugins directory; without it (an unsupported file
/// system), plugins load at start only.
fn watch_plugins(daemon: &Arc<Daemon>) -> Option<crate::plugin::PluginWatcher> {
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let (current, install) = (daemon.clone(), daemon.clone());
    let watcher = crate::plugin::PluginWatcher::start(
        &daemon.config.plugins_dir,
        daemon.runtime.clone(),
        daemon.store.clone(),
        move || current.plugins(),
        move |registry, _| install.live.replace(registry),
        events,
    );
    let recorder = daemon.clone();
    tokio::spawn(async move {
        while let Some(event) = received.recv().await {
            recorder.live.record_reload(event);
        }
    });
    match watcher {
        Ok(watcher) => Some(watcher),
        Err(err) => {
            tracing::warn!(
                "cannot watch the plugins directory ({err}); plugins load at start only, restart weir to pick up changes"
            );
            None
        }
    }
}
