//! The server's shared state: the store, and caches of what every request needs in memory.
//!
//! The state holds nothing that is not also in the store: the key ring and the revocation list
//! are caches — the list kept exact by the store's push feed (see [`crate::revocations`]), the
//! ring reloaded every second — so any number of instances can serve one store. Argon2 work
//! waits in a bounded queue and runs on the blocking pool (`hashing`), so a burst of logins
//! can neither starve the async runtime nor queue without bound; the ring is loaded, opened
//! and sealed with the instance's KEK in `keys`.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tessera_core::access::AccessPolicy;
use tessera_core::access::cache::VerifiedCache;
use tessera_core::keys::KeyRing;
use tessera_core::keys::kek::{Kek, KekError};
use tessera_core::password::PasswordHasher;
use tessera_core::revocation::{Revocation, RevocationSubject};
use tessera_core::time::{Clock, UnixTime};
use tessera_store::attempts::MemoryAttempts;
use tessera_store::{AttemptCounter, Store, StoreError};
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::error::{ApiError, error_chain};
pub use crate::metrics::Metrics;
use crate::metrics::RequestIds;
use crate::revocations::{FeedState, RevocationView};

mod hashing;
mod keys;

pub use hashing::HashPriority;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The stored keys could not be used.
    #[error("signing keys: {0}")]
    Keys(#[from] tessera_core::jose::JoseError),
    /// A stored signing key does not open under the configured key-encryption key. Nothing
    /// was written: the server refuses to start rather than make a key over ones it cannot
    /// read.
    #[error(
        "{0}. Refusing to start: give this store's KEK (--kek-file, TESSERA_KEK or the data \
         directory's `kek` file); no key was changed"
    )]
    Kek(#[from] KekError),
}

/// How long `/readyz` waits for the store before answering `unavailable`. Load balancers and
/// orchestrators commonly give a probe one second; the store's own timeouts (PostgreSQL's
/// pool acquire, Redis's connection and response, 3 s) are sized for real requests, which
/// should rather wait out a blip than fail, so the probe is bounded on its own instead.
pub const READINESS_TIMEOUT: Duration = Duration::from_millis(800);

/// The upkeep task sweeps expired records once per this many reload ticks.
const SWEEP_EVERY_TICKS: u64 = 60;

/// Everything a request handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`]: reached through its methods, never its fields.
pub struct Inner {
    /// The store.
    pub(crate) store: Arc<dyn Store>,
    /// Settings.
    pub(crate) config: ServerConfig,
    /// The access-token rules derived from the settings, built once (not per request).
    pub(crate) access_policy: AccessPolicy,
    /// The time source.
    pub(crate) clock: Arc<dyn Clock>,
    /// Password hashing.
    pub(crate) hasher: PasswordHasher,
    /// Login throttling counters.
    pub(crate) attempts: Arc<dyn AttemptCounter>,
    /// The revocation list as this instance knows it.
    pub(crate) revocations: Arc<RevocationView>,
    /// Access tokens verified before, by the SHA-256 of their bytes; every use still checks
    /// time, key and revocations (`auth::verify_jwt`).
    pub(crate) access_cache: VerifiedCache,
    /// Counters.
    pub(crate) metrics: Metrics,
    /// Makes the id of each request that brings no acceptable one.
    pub(crate) request_ids: RequestIds,
    keys: RwLock<Arc<KeyRing>>,
    /// Seals and opens the signing keys in the store.
    kek: Kek,
    hashing: Semaphore,
    /// Hash jobs waiting or running, bounded by `config.hashing_queue`.
    hashing_queued: AtomicUsize,
    /// The same, per source address: one address may hold half the queue at most.
    hashing_by_source: Mutex<HashMap<String, usize>>,
    /// Set when the server shuts down: long-lived responses (the revocation stream) end, so
    /// a graceful shutdown is not held open by subscribers.
    closing: tokio::sync::watch::Sender<bool>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Loads keys (making the first signing key if the store has none) and revocations.
    ///
    /// # Errors
    /// If the store fails or holds keys that cannot be used.
    pub async fn new(
        store: Arc<dyn Store>,
        config: ServerConfig,
        clock: Arc<dyn Clock>,
        hasher: PasswordHasher,
    ) -> Result<Self, StartupError> {
        let attempts = Arc::new(MemoryAttempts::new(Arc::clone(&clock)));
        Self::with_attempts(store, attempts, config, clock, hasher).await
    }

    /// Like [`AppState::new`], with login-throttling counters shared by several instances.
    ///
    /// # Errors
    /// If the store fails or holds keys that cannot be used.
    pub async fn with_attempts(
        store: Arc<dyn Store>,
        attempts: Arc<dyn AttemptCounter>,
        config: ServerConfig,
        clock: Arc<dyn Clock>,
        hasher: PasswordHasher,
    ) -> Result<Self, StartupError> {
        let permits = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let has_feed = store.feed().is_some();
        let access_policy = AccessPolicy {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway_secs: config.leeway_secs,
        };
        let mut config = config;
        let kek = match config.kek.clone() {
            Some(kek) => kek,
            None => Kek::generate()?,
        };
        // Kept in the settings too, so another instance on this (memory) store can be given
        // the same KEK.
        config.kek = Some(kek.clone());
        let access_cache = VerifiedCache::new(config.access_cache_capacity);
        let state = Self(Arc::new(Inner {
            kek,
            store,
            access_policy,
            config,
            clock,
            hasher,
            attempts,
            revocations: Arc::new(RevocationView::new(has_feed)),
            access_cache,
            metrics: Metrics::default(),
            request_ids: RequestIds::default(),
            keys: RwLock::new(Arc::new(KeyRing::from_records(&[])?)),
            hashing: Semaphore::new(permits),
            hashing_queued: AtomicUsize::new(0),
            hashing_by_source: Mutex::default(),
            closing: tokio::sync::watch::Sender::new(false),
        }));
        state.seal_legacy_keys().await?;
        state.reload_keys().await?;
        state
            .revocations
            .reload(state.store.as_ref(), state.now())
            .await?;
        Ok(state)
    }

    /// Ends every long-lived response (revocation streams): call when shutting down, so
    /// draining in-flight requests finishes.
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Watches for [`AppState::close_streams`].
    #[must_use]
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// The current time.
    #[must_use]
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The key ring as last loaded.
    #[must_use]
    pub fn key_ring(&self) -> Arc<KeyRing> {
        self.keys
            .read()
            .map_or_else(|p| Arc::clone(&p.into_inner()), |g| Arc::clone(&g))
    }

    /// Whether the store answers two cheap indexed reads within [`READINESS_TIMEOUT`] (for
    /// `/readyz`): one of revocations, from the durable store, and one of sessions, from the
    /// session store — Redis, with `--redis`, without which no session or login can be
    /// checked. Both run at once, under the one bound; failures and timeouts are logged.
    pub async fn store_answers(&self) -> bool {
        let probe = futures_util::future::try_join(
            self.store.revocations_for("", None, "", None, self.now()),
            self.store.session_by_id(""),
        );
        match tokio::time::timeout(READINESS_TIMEOUT, probe).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %error_chain(&e), "readiness check failed");
                false
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = READINESS_TIMEOUT.as_millis(),
                    "readiness check timed out"
                );
                false
            }
        }
    }

    /// The store, for the CLI's administrative reads; request handlers go through
    /// [`crate::service`].
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The cache of verified access tokens (its size, for tests and diagnostics).
    #[must_use]
    pub fn access_cache(&self) -> &VerifiedCache {
        &self.access_cache
    }

    /// This instance's view of the revocation list.
    #[must_use]
    pub fn revocations(&self) -> &RevocationView {
        &self.revocations
    }

    /// The counters exported at `/metrics`.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether the verified access token `token`, with these claims, is revoked. (Its key was
    /// already checked against the in-memory list by the verifier.)
    ///
    /// # Errors
    /// `Unavailable` if the feed is down and the store cannot be asked.
    pub async fn is_revoked(
        &self,
        subject: RevocationSubject<'_>,
        token: &str,
    ) -> Result<bool, ApiError> {
        Ok(self
            .revocations
            .is_token_revoked(self.store.as_ref(), subject, token, self.now())
            .await?)
    }

    /// Whether a login session is revoked.
    ///
    /// # Errors
    /// `Unavailable` if the feed is down and the store cannot be asked.
    pub async fn is_session_revoked(&self, sid: &str, user_id: &str) -> Result<bool, ApiError> {
        Ok(self
            .revocations
            .is_session_revoked(self.store.as_ref(), sid, user_id, self.now())
            .await?)
    }

    /// Records a revocation durably, then applies it in memory. The durable write is the
    /// commit point: once it succeeds the credential is dead everywhere (followers learn it
    /// from the feed, or from the store while their feed is down); if it fails, nothing
    /// changed anywhere and the caller gets 503 to retry.
    ///
    /// # Errors
    /// If the store fails.
    pub async fn record_revocation(&self, r: Revocation) -> Result<(), ApiError> {
        self.store.add_revocation(&r).await?;
        self.revocations.insert(&r);
        Metrics::inc(&self.metrics.revocations_recorded);
        Ok(())
    }

    /// Starts the background upkeep, ticking every `every`: following the store's revocation
    /// feed, if it has one; reloading keys every tick (and at once when a key revocation
    /// arrives) and running the key rotation schedule ([`crate::keys::run_schedule`]); reloading revocations every tick without a live feed, as a safety net every
    /// `SWEEP_EVERY_TICKS` with one; and on that slower beat pruning expired revocations,
    /// dead sessions and families, and audit events past their retention.
    pub fn spawn_maintenance(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        if let Some(feed) = self.store.feed() {
            let view = Arc::clone(&self.revocations);
            tokio::spawn(view.follow(feed, Arc::clone(&self.store), Arc::clone(&self.clock)));
        }
        let state = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut ticks: u64 = 0;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        // With a live feed the list is exact; a full re-read is only a safety net.
                        let full = ticks % SWEEP_EVERY_TICKS == 0;
                        state.reload(full || state.revocations.feed_state() != FeedState::Live).await;
                        if full {
                            state.sweep().await;
                        }
                        ticks = ticks.wrapping_add(1);
                    }
                    () = state.revocations.keys_changed.notified() => {
                        if let Err(e) = state.reload_keys().await {
                            tracing::warn!(error = %error_chain(&e), "reloading keys after a key revocation failed");
                        }
                    }
                }
            }
        })
    }

    /// Re-reads the keys (a small table, so every tick), runs their schedule and, when
    /// asked, re-reads the revocations.
    async fn reload(&self, revocations: bool) {
        match self.reload_keys().await {
            Ok(()) => self.run_key_schedule().await,
            // The keys were re-wrapped under another KEK while this instance ran: it keeps
            // signing with the ring it has, and must not run the schedule, which would publish
            // a key sealed under a KEK the store no longer uses.
            Err(StartupError::Kek(e)) => tracing::error!(
                error = %e,
                "this instance's KEK no longer opens the stored signing keys (re-wrapped under \
                 another KEK?): it keeps signing with the keys it loaded and changes none; \
                 restart it with the store's KEK"
            ),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "reloading keys failed");
                self.run_key_schedule().await;
            }
        }
        if !revocations {
            return;
        }
        if let Err(e) = self
            .revocations
            .reload(self.store.as_ref(), self.now())
            .await
        {
            tracing::warn!(error = %error_chain(&e), "reloading revocations failed");
        }
    }

    /// Runs the key rotation schedule once, logging a failure.
    async fn run_key_schedule(&self) {
        match crate::keys::run_schedule(self).await {
            Ok(_) => {}
            Err(e @ crate::keys::ApplyError::ForeignKek(_)) => {
                tracing::error!(error = %e, "running the key rotation schedule refused");
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "running the key rotation schedule failed");
            }
        }
    }

    /// Deletes what has expired: rarer, as it writes. Then counts the sessions left, for
    /// `/metrics` (a count over the whole store, so only on this slow beat).
    async fn sweep(&self) {
        let now = self.now();
        let swept = async {
            self.store.prune_revocations(now).await?;
            self.store.forget_expired(now).await?;
            self.store
                .delete_dead_sessions(now, &self.config.sessions)
                .await?;
            self.store
                .clear_stale_successors(now, self.config.refresh_grace_secs)
                .await?;
            self.store.delete_expired_families(now).await
        };
        if let Err(e) = swept.await {
            tracing::warn!(error = %error_chain(&e), "sweeping expired records failed");
        }
        if let Err(e) = crate::service::prune_audit(self, now).await {
            tracing::warn!(error = %error_chain(&e), "pruning the audit log failed");
        }
        match self.store.count_sessions().await {
            Ok(count) => self.metrics.sessions_counted(count, self.now()),
            Err(e) => tracing::warn!(error = %error_chain(&e), "counting sessions failed"),
        }
    }
}
