//! Opening the store the flags name, for `serve` and for the admin commands.

use std::sync::Arc;

use anyhow::Context;
use tessera_core::password::PasswordHasher;
use tessera_core::time::{Clock, SystemClock};
use tessera_server::{AppState, ServerConfig};
use tessera_store::open::{self, Backends, OpenOptions};
use tessera_store::{AttemptCounter, Store};

use crate::cli::StoreArgs;

/// The store and login counters named by the flags: `--store` (or the embedded SQLite file
/// under `--data-dir`) for durable records, with `--redis` taking over sessions,
/// revocations and counters when given. See [`tessera_store::open`].
pub async fn open_backends(
    args: &StoreArgs,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn AttemptCounter>)> {
    let options = OpenOptions {
        store_url: args.store.clone(),
        data_dir: args.data_dir.clone(),
        redis: args.redis.clone(),
        namespace: args.namespace.clone(),
    };
    let Backends {
        store, attempts, ..
    } = open::open(&options, clock).await?;
    Ok((store, attempts))
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
