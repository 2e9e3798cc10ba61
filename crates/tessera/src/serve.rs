//! `tessera serve` and the commands that work on the store directly.

use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tessera_core::password::PasswordHasher;
use tessera_core::time::{Clock, SystemClock};
use tessera_server::{AppState, ServerConfig};
use tessera_store::attempts::MemoryAttempts;
use tessera_store::memory::MemoryStore;
use tessera_store::postgres::PostgresStore;
use tessera_store::redis::RedisStore;
use tessera_store::split::SplitStore;
use tessera_store::sqlite::SqliteStore;
use tessera_store::{AttemptCounter, Store};

use crate::cli::{CreateUserArgs, ServeArgs, StoreArgs};

/// The store and login counters named by the flags: `--store` (or the embedded SQLite file
/// under `--data-dir`) for durable records, with `--redis` taking over sessions,
/// revocations and counters when given.
async fn open_backends(
    args: &StoreArgs,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn AttemptCounter>)> {
    let durable = open_durable(args).await?;
    if args.redis.is_empty() {
        return Ok((durable, Arc::new(MemoryAttempts::new(clock))));
    }
    let redis = Arc::new(
        RedisStore::connect(&args.redis, &args.namespace)
            .await
            .with_context(|| format!("connecting to Redis at {}", args.redis.join(",")))?,
    );
    Ok((
        Arc::new(SplitStore::new(durable, Arc::clone(&redis))),
        redis,
    ))
}

async fn open_durable(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    match args.store.as_deref() {
        Some("memory:") => Ok(Arc::new(MemoryStore::default())),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(
                PostgresStore::connect(url, &args.namespace)
                    .await
                    .context("connecting to PostgreSQL")?,
            ))
        }
        Some(url) if url.starts_with("sqlite:") => Ok(Arc::new(
            SqliteStore::open_url(url)
                .await
                .with_context(|| format!("opening {url}"))?,
        )),
        Some(other) => anyhow::bail!(
            "unsupported --store {other:?}: use sqlite://PATH, postgres://… or memory:"
        ),
        None => {
            create_private_dir(&args.data_dir)?;
            let path = args.data_dir.join("tessera.db");
            Ok(Arc::new(
                SqliteStore::open(&path)
                    .await
                    .with_context(|| format!("opening {}", path.display()))?,
            ))
        }
    }
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (store, attempts) = open_backends(&args.store, Arc::clone(&clock)).await?;
        let issuer = args.issuer.clone().unwrap_or_else(|| format!("http://{}", args.listen));
        let mut config = ServerConfig::new(issuer);
        config.refresh_grace_secs = args.refresh_grace;
        let hasher = PasswordHasher::owasp().context("password hasher")?;
        let state = AppState::with_attempts(store, attempts, config, clock, hasher).await.context("starting")?;
        let maintenance = state.spawn_maintenance(Duration::from_secs(5));
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        tracing::info!(addr = %listener.local_addr()?, issuer = %state.config.issuer, "tessera listening");
        axum::serve(listener, tessera_server::app(state).into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown())
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

/// `tessera users create`: the password comes from the first line of standard input, so it
/// never appears in the process list or shell history.
pub fn create_user(args: CreateUserArgs) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("reading the password from stdin")?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    runtime()?.block_on(async move {
        let store = open_durable(&args.store).await?;
        let hasher = PasswordHasher::owasp().context("password hasher")?;
        let state = AppState::new(
            store,
            ServerConfig::new("http://localhost"),
            Arc::new(SystemClock),
            hasher,
        )
        .await?;
        let user = tessera_server::service::register(&state, &args.username, password, args.admin)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "{}",
            serde_json::json!({ "id": user.id, "username": user.username, "admin": user.is_admin })
        );
        Ok(())
    })
}
