//! The server's shared state: the store, and caches of what every request needs in memory.
//!
//! The state holds nothing that is not also in the store: the key ring and the revocation list
//! are caches, reloaded periodically (and, in later versions, pushed), so any number of
//! instances can serve one store. Argon2 work runs on the blocking pool behind a semaphore so a
//! burst of logins cannot starve the async runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tessera_core::jose::Algorithm;
use tessera_core::keys::{KeyRing, KeyStatus};
use tessera_core::password::PasswordHasher;
use tessera_core::revocation::{Revocation, RevocationList, RevocationSubject};
use tessera_core::time::{Clock, UnixTime};
use tessera_store::{Store, StoreError};
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::error::{ApiError, error_chain};
use crate::limiter::RateLimiter;

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
}

/// Counters exported at `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Successful logins (cookie or password grant).
    pub logins_ok: AtomicU64,
    /// Failed logins.
    pub logins_failed: AtomicU64,
    /// Logins refused by the rate limiter.
    pub logins_throttled: AtomicU64,
    /// Access tokens issued.
    pub access_tokens_issued: AtomicU64,
    /// Refresh rotations.
    pub refresh_rotations: AtomicU64,
    /// Refresh-token reuse detections.
    pub refresh_reuse_detected: AtomicU64,
    /// Revocations recorded by this instance.
    pub revocations_recorded: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything a request handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Settings.
    pub config: ServerConfig,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Password hashing.
    pub hasher: PasswordHasher,
    /// Login throttling.
    pub limiter: RateLimiter,
    /// Counters.
    pub metrics: Metrics,
    keys: RwLock<Arc<KeyRing>>,
    revocations: RwLock<RevocationList>,
    hashing: Semaphore,
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
        let permits = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let state = Self(Arc::new(Inner {
            store,
            config,
            clock,
            hasher,
            limiter: RateLimiter::default(),
            metrics: Metrics::default(),
            keys: RwLock::new(Arc::new(KeyRing::from_records(&[])?)),
            revocations: RwLock::new(RevocationList::new()),
            hashing: Semaphore::new(permits),
        }));
        state.reload_keys().await?;
        state.reload_revocations().await?;
        Ok(state)
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

    /// Reloads signing keys from the store; creates the first EdDSA key if none is current.
    ///
    /// # Errors
    /// If the store fails or a stored key is unusable.
    pub async fn reload_keys(&self) -> Result<(), StartupError> {
        let mut records = self.store.keys().await?;
        if !records.iter().any(|k| k.status == KeyStatus::Current) {
            let first = KeyRing::generate_record(Algorithm::EdDSA, KeyStatus::Current, self.now())?;
            if self.store.insert_first_key(&first).await? {
                tracing::info!(kid = %first.kid, "generated the first signing key");
            }
            records = self.store.keys().await?;
        }
        let ring = Arc::new(KeyRing::from_records(&records)?);
        match self.keys.write() {
            Ok(mut g) => *g = ring,
            Err(p) => *p.into_inner() = ring,
        }
        Ok(())
    }

    /// Replaces the in-memory revocation list with the store's.
    ///
    /// # Errors
    /// If the store fails.
    pub async fn reload_revocations(&self) -> Result<(), StoreError> {
        let now = self.now();
        let mut list = RevocationList::new();
        for r in self.store.revocations(now).await? {
            list.insert(&r);
        }
        match self.revocations.write() {
            Ok(mut g) => *g = list,
            Err(p) => *p.into_inner() = list,
        }
        Ok(())
    }

    fn with_revocations<R>(&self, f: impl FnOnce(&RevocationList) -> R) -> R {
        match self.revocations.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }

    /// Whether an access token with these claims is revoked (memory only).
    #[must_use]
    pub fn is_revoked(&self, subject: RevocationSubject<'_>) -> bool {
        self.with_revocations(|l| l.is_revoked(subject))
    }

    /// Whether a login session is revoked (memory only).
    #[must_use]
    pub fn is_session_revoked(&self, sid: &str) -> bool {
        self.with_revocations(|l| l.is_session_revoked(sid))
    }

    /// Number of revocations held in memory.
    #[must_use]
    pub fn revocation_count(&self) -> usize {
        self.with_revocations(RevocationList::len)
    }

    /// Records a revocation durably, then applies it in memory. The durable write is the
    /// commit point: once it succeeds the credential is dead, whatever happens next.
    ///
    /// # Errors
    /// If the store fails (nothing changed in memory).
    pub async fn record_revocation(&self, r: Revocation) -> Result<(), ApiError> {
        self.store.add_revocation(&r).await?;
        match self.revocations.write() {
            Ok(mut g) => g.insert(&r),
            Err(p) => p.into_inner().insert(&r),
        }
        Metrics::inc(&self.metrics.revocations_recorded);
        Ok(())
    }

    /// Hashes a password on the blocking pool.
    ///
    /// # Errors
    /// If hashing fails.
    pub async fn hash_password(&self, password: String) -> Result<String, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ApiError::Internal("hashing pool closed".into()))?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || hasher.hash(&password))
            .await
            .map_err(|e| ApiError::Internal(e.to_string().into()))?
            .map_err(|e| ApiError::Internal(e.to_string().into()))
    }

    /// Checks a password on the blocking pool; with no stored hash (unknown user), does the
    /// same work and fails.
    ///
    /// # Errors
    /// If the blocking pool fails.
    pub async fn verify_password(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<bool, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ApiError::Internal("hashing pool closed".into()))?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || match phc {
            Some(phc) => hasher.verify(&password, &phc),
            None => {
                hasher.verify_absent(&password);
                false
            }
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string().into()))
    }

    /// Starts the background upkeep: reloading keys and revocations (so instances sharing a
    /// store converge), pruning expired revocations, dead sessions and families, and old
    /// rate-limit windows.
    pub fn spawn_maintenance(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                state.maintain().await;
            }
        })
    }

    async fn maintain(&self) {
        let now = self.now();
        if let Err(e) = self.reload_keys().await {
            tracing::warn!(error = %error_chain(&e), "reloading keys failed");
        }
        if let Err(e) = self.reload_revocations().await {
            tracing::warn!(error = %error_chain(&e), "reloading revocations failed");
        }
        let swept = async {
            self.store.prune_revocations(now).await?;
            self.store
                .delete_dead_sessions(now, &self.config.sessions)
                .await?;
            self.store.delete_expired_families(now).await
        };
        if let Err(e) = swept.await {
            tracing::warn!(error = %error_chain(&e), "sweeping expired records failed");
        }
        self.limiter.prune(self.config.login_window_secs, now);
    }
}
