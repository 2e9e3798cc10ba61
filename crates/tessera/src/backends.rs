//! Opening the store the flags name, for `serve` and for the admin commands.

use std::sync::Arc;

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

use crate::cli::StoreArgs;

/// The store and login counters named by the flags: `--store` (or the embedded SQLite file
/// under `--data-dir`) for durable records, with `--redis` taking over sessions,
/// revocations and counters when given.
pub async fn open_backends(
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

pub async fn open_durable(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
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

/// A multi-threaded runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Server state over the flags' store, for admin commands that reuse the server's rules
/// (registration, revocation) without serving.
pub async fn admin_state(args: &StoreArgs) -> anyhow::Result<AppState> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (store, attempts) = open_backends(args, Arc::clone(&clock)).await?;
    let hasher = PasswordHasher::owasp().context("password hasher")?;
    AppState::with_attempts(
        store,
        attempts,
        ServerConfig::new("http://localhost"),
        clock,
        hasher,
    )
    .await
    .context("opening the store")
}
