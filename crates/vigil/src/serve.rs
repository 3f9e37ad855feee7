//! `vigil serve`: the HTTP server, until SIGINT or SIGTERM, then a bounded drain.

use std::time::Duration;

use anyhow::Context;
use vigil_api::AppState;

use crate::config::Settings;
use crate::setup;

/// How long in-flight requests may run after a shutdown signal before they are cut off.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub(crate) async fn run(settings: Settings) -> anyhow::Result<()> {
    // Installed first: until then SIGTERM kills the process outright, so a supervisor that
    // stops it right after it reports listening would skip the drain and exit unclean.
    let shutdown = shutdown_signal()?;
    let wired = setup::services(&settings).await?;
    let services = wired.services;
    setup::apply_file_connectors(&services, &settings.connectors).await?;
    initial_admin_key(&services, &settings).await?;
    let backend = services.backend();
    let mut state = AppState::new(services.clone(), settings.http);
    state.metrics_token = settings.metrics_token.map(std::sync::Arc::new);
    let (stop_sync, sync_stop) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(vigil_sync::run_engine(
        wired.engine_services,
        wired.sync_status,
        wired.sync,
        sync_stop,
    ));
    let runner = tokio::spawn(wired.runner.run(stop_sync.subscribe()));
    if let Some(address) = settings.metrics_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listen on {address} (VIGIL_METRICS_LISTEN)"))?;
        tracing::info!(component = "http", %address, "serving /metrics");
        let metrics_state = state.clone();
        tokio::spawn(async move {
            if let Err(err) = vigil_api::serve_metrics(listener, metrics_state).await {
                tracing::error!(component = "http", error = %err, "the metrics listener stopped");
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listen on {} (VIGIL_LISTEN)", settings.listen))?;
    let address = listener.local_addr().context("read the bound address")?;
    tracing::info!(component = "http", %address, store = backend, "listening");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vigil_api::serve(listener, state, async {
        let _ = stopped.await;
    }));
    shutdown.await;
    tracing::info!(
        component = "http",
        grace_seconds = SHUTDOWN_GRACE.as_secs(),
        "shutting down; draining requests"
    );
    let _ = stop.send(());
    // A cycle in flight is abandoned; its cursor covers only committed pages.
    let _ = stop_sync.send(true);
    // Runs still executing end as interrupted (each writes its own end).
    if tokio::time::timeout(SHUTDOWN_GRACE, runner).await.is_err() {
        tracing::warn!(
            component = "runner",
            "runs were still ending after the grace period; the next start marks them interrupted"
        );
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, engine).await.is_err() {
        tracing::warn!(
            component = "sync",
            "the sync engine did not stop within the grace period"
        );
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(joined) => joined.context("server task")?.context("serve HTTP")?,
        Err(_) => tracing::warn!(
            component = "http",
            "requests still running after the grace period; stopping anyway"
        ),
    }
    tracing::info!(component = "http", "stopped");
    Ok(())
}

/// Creates the first platform-admin key when the platform never had one, and removes its
/// file as soon as the key stops working: at start, then every
/// `INITIAL_ADMIN_KEY_CHECK_INTERVAL` while serving.
async fn initial_admin_key(
    services: &vigil_service::Services,
    settings: &Settings,
) -> anyhow::Result<()> {
    let dir = settings.data_dir.clone();
    setup::retire_admin_key_file(services, &dir).await?;
    let ttl = settings.initial_admin_key_ttl_seconds;
    if let Some(path) = setup::ensure_admin_key(services, &dir, ttl).await? {
        tracing::warn!(component = "setup", path = %path.display(), expires_in_s = ttl, "created the initial platform-admin API key; read it from this file");
    }
    let services = services.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(setup::INITIAL_ADMIN_KEY_CHECK_INTERVAL).await;
            if let Err(err) = setup::retire_admin_key_file(&services, &dir).await {
                tracing::error!(component = "setup", error = %err, "checking the initial admin key failed");
            }
        }
    });
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives in between is not lost.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("listen for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        let mut interrupt = tokio::signal::windows::ctrl_c().context("listen for Ctrl-C")?;
        Ok(async move {
            interrupt.recv().await;
        })
    }
}
