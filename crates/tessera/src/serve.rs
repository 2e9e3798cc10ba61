//! `tessera serve`: run the HTTP API until SIGINT or SIGTERM, then drain.
//!
//! Shutdown, in order: the signal arrives; the listener is closed (new connections are
//! refused); the revocation streams end (they would otherwise hold the drain open forever);
//! idle keep-alive connections are closed and every request in flight runs to its normal
//! response; then the process exits 0. Requests still running after `--drain-timeout`
//! seconds (a client sending its body very slowly, a store that stopped answering) are cut
//! and the process exits 0 anyway, with a warning: an orchestrator's own kill deadline
//! (Kubernetes: 30 s) should be longer than the drain timeout (default 20 s). A second
//! signal ends the drain at once.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tessera_server::ServerConfig;

use crate::backends::{open_state, runtime};
use crate::cli::ServeArgs;

/// How long the runtime may take to wind down its tasks after serving ended.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);

/// Runs the server until SIGINT or SIGTERM, then drains in-flight requests.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    let served = rt.block_on(serve(args));
    // Connections cut by the drain timeout are dropped with the runtime; blocking work
    // (a password hash) gets a moment to finish.
    rt.shutdown_timeout(RUNTIME_SHUTDOWN);
    served
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen));
    let mut config = ServerConfig::new(issuer);
    config.refresh_grace_secs = args.refresh_grace;
    config.key_rotation_secs = args.schedule.key_rotation;
    config.audit_retention_secs = args.audit_retention;
    config.exchange_audiences = args.audiences;
    config.cors_origins = args.cors_origins;
    if let Some(everyone) = args.trusted_proxies.iter().find(|n| n.prefix_len() == 0) {
        // Legal (a server reachable only through its proxies), but then any peer can name
        // any client address, so say so.
        tracing::warn!(network = %everyone, "--trusted-proxy trusts every peer's forwarding headers");
    }
    config.trusted_proxies = args.trusted_proxies;
    let (state, _) = open_state(&args.store, config).await?;
    let maintenance = state.spawn_maintenance(Duration::from_secs(1));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, issuer = %state.config().issuer, "tessera listening");
    let drain = Duration::from_secs(args.drain_timeout);
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let closer = state.clone();
    let app = tessera_server::app(state).into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        signal().await;
        tracing::info!(
            drain_timeout_secs = drain.as_secs(),
            "shutting down: no new connections; draining requests in flight"
        );
        // Ending the revocation streams, or their subscribers would hold the drain open.
        closer.close_streams();
        stopping.send_replace(true);
    });
    // The drain ends at the timeout, or at once on a second signal (an operator's second
    // Ctrl-C).
    let deadline = async move {
        if stopped.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::select! {
            () = tokio::time::sleep(drain) => "the drain timeout passed",
            () = signal() => "a second signal came",
        }
    };
    tokio::select! {
        served = server.into_future() => {
            served.context("serving")?;
            tracing::info!("drained: every request in flight was answered");
        }
        why = deadline => tracing::warn!(
            drain_timeout_secs = drain.as_secs(),
            "requests still in flight when {why}: exiting without them"
        ),
    }
    maintenance.abort();
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
}
