//! `tessera serve`: run the HTTP API until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tessera_server::ServerConfig;

use crate::backends::{open_state, runtime};
use crate::cli::ServeArgs;

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let issuer = args.issuer.clone().unwrap_or_else(|| format!("http://{}", args.listen));
        let mut config = ServerConfig::new(issuer);
        config.refresh_grace_secs = args.refresh_grace;
        config.key_rotation_secs = args.schedule.key_rotation;
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
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        tracing::info!(addr = %listener.local_addr()?, issuer = %state.config().issuer, "tessera listening");
        // Shutting down ends the revocation streams too, or their subscribers would hold
        // the graceful shutdown open forever.
        let closer = state.clone();
        axum::serve(listener, tessera_server::app(state).into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                shutdown().await;
                closer.close_streams();
            })
            .await
            .context("serving")?;
        maintenance.abort();
        Ok(())
    })
}

async fn shutdown() {
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
    tracing::info!("shutting down");
}
