//! `vigil serve`: the HTTP server, until SIGINT or SIGTERM, then a bounded drain.

use std::time::Duration;

use anyhow::Context;
use vigil_api::AppState;

use crate::config::Settings;
use crate::setup;

/// How long in-flight requests may run after a shutdown signal before they are cut off.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub(crate) async fn run(settings: Settings) -> anyhow::Result<()> {
    let services = setup::services(&settings).await?;
    if let Some(path) = setup::ensure_admin_key(&services, &settings.data_dir).await? {
        tracing::warn!(component = "setup", path = %path.display(), "created the initial platform-admin API key; read it from this file");
    }
    let backend = services.store().backend();
    let state = AppState::new(services, settings.http);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listen on {} (VIGIL_LISTEN)", settings.listen))?;
    let address = listener.local_addr().context("read the bound address")?;
    tracing::info!(component = "http", %address, store = backend, "listening");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vigil_api::serve(listener, state, async {
        let _ = stopped.await;
    }));
    shutdown_signal().await;
    tracing::info!(
        component = "http",
        grace_seconds = SHUTDOWN_GRACE.as_secs(),
        "shutting down; draining requests"
    );
    let _ = stop.send(());
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

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
