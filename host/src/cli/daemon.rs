//! `weir run`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::app::{self, Plugins};
use crate::admin::{AdminState, router};
use crate::capability::Secrets;
use crate::daemon::{Daemon, Scheduler};

/// Runs until SIGINT or SIGTERM, then shuts down gracefully and exits 0.
pub async fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let plugins = Plugins::load(&config).await?;
    let store = app::store(&config)?;
    let admin_config = config.admin.clone();
    let daemon = Daemon::new(config, plugins.runtime, plugins.registry, store);
    let (scheduler, handle) = Scheduler::new(daemon.clone());
    let _watcher = watch_plugins(&daemon);
    let shutdown = CancellationToken::new();
    spawn_signal_listener(shutdown.clone());

    let token = admin_config
        .token
        .as_ref()
        .map(|source| Secrets::resolve([("admin", std::slice::from_ref(source))]));
    let server = match token {
        Some(Ok(secrets)) => {
            let token = secrets.current("admin").expect("resolved above").clone();
            let listener = tokio::net::TcpListener::bind(admin_config.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {} for the admin API (`[admin] listen` in weir.toml): {e}", admin_config.listen))?;
            let address = listener.local_addr()?;
            println!("weir: admin API on http://{address}");
            let app = router(Arc::new(AdminState {
                daemon: daemon.clone(),
                scheduler: handle.clone(),
                token,
            }));
            let stop = shutdown.clone();
            Some(tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
            }))
        }
        Some(Err((_, why))) => {
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
        }
        None => None,
    };
    println!("weir: scheduling; stop with Ctrl-C or SIGTERM");
    let _ = std::io::stdout().flush();
    scheduler.run(shutdown.clone()).await;
    shutdown.cancel();
    if let Some(server) = server {
        let _ = server.await;
    }
    daemon.services.flush().await;
    println!("weir: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Hot reload of the plugins directory; without it (an unsupported file
/// system), plugins load at start only.
fn watch_plugins(daemon: &Arc<Daemon>) -> Option<crate::plugin::PluginWatcher> {
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let (current, install) = (daemon.clone(), daemon.clone());
    let watcher = crate::plugin::PluginWatcher::start(
        &daemon.config.plugins_dir,
        daemon.runtime.clone(),
        move || current.plugins(),
        move |registry, _| install.replace_plugins(registry),
        events,
    );
    let recorder = daemon.clone();
    tokio::spawn(async move {
        while let Some(event) = received.recv().await {
            recorder.record_reload(event);
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

fn spawn_signal_listener(shutdown: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM can be handled");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: runs finish their page, then weir exits");
        eprintln!("weir: shutting down");
        shutdown.cancel();
    });
}
