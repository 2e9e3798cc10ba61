//! The server's shared state: the store, and caches of what every request needs in memory.
//!
//! The state holds nothing that is not also in the store: the key ring and the revocation list
//! are caches — the list kept exact by the store's push feed (see [`crate::revocations`]), the
//! ring reloaded every second — so any number of instances can serve one store. Argon2 work runs on the blocking pool behind a semaphore so a
//! burst of logins cannot starve the async runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tessera_core::access::AccessPolicy;
use tessera_core::access::cache::VerifiedCache;
use tessera_core::keys::kek::{self, Kek, KekError};
use tessera_core::keys::{KeyRecord, KeyRing, KeyStatus};
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

/// Who a password hash is for, which decides how much of the hashing queue it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashPriority {
    /// Registration, or a login from a browser or app the server does not know.
    Normal,
    /// A login presenting a genuine device cookie for its account: it may queue behind twice
    /// as much work, so a flood of strangers cannot push its owner out.
    KnownDevice,
}

/// A place in the hashing queue, and in its source's share of it, given back on drop.
struct QueueSlot<'a> {
    queued: &'a AtomicUsize,
    source: Option<(&'a Mutex<HashMap<String, usize>>, String)>,
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
        if let Some((by_source, source)) = self.source.take() {
            let mut by_source = by_source.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(held) = by_source.get_mut(&source) {
                *held -= 1;
                if *held == 0 {
                    by_source.remove(&source);
                }
            }
        }
    }
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

    /// Reloads signing keys from the store; creates the first EdDSA key if none is current.
    ///
    /// A rotation in progress (the old current key already demoted, the next not yet
    /// promoted) is waited out: while the key that signs here is still trusted in the store,
    /// the old ring is kept rather than a new key created.
    ///
    /// # Errors
    /// If the store fails or a stored key is unusable.
    pub async fn reload_keys(&self) -> Result<(), StartupError> {
        // Every stored key is opened first, revoked ones too: a key that does not open means
        // the KEK is wrong, and that must stop us before "no current key" could make a new
        // key over keys we cannot read.
        let mut records = self.open_keys().await?;
        if !records.iter().any(|k| k.status == KeyStatus::Current) {
            let ring = self.key_ring();
            let signing_still_trusted = ring.current().is_some_and(|cur| {
                records
                    .iter()
                    .any(|r| r.kid == cur.kid() && r.status.is_trusted())
            });
            if signing_still_trusted {
                tracing::debug!(
                    "no current key in the store: rotation in progress, keeping the ring"
                );
                return Ok(());
            }
            let first = KeyRing::generate_record(
                tessera_core::keys::lifecycle::DEFAULT_ALGORITHM,
                KeyStatus::Current,
                self.now(),
            )?;
            if self.store.insert_key_if_vacant(&self.seal(&first)?).await? {
                tracing::info!(kid = %first.kid, "generated the first signing key");
            }
            records = self.open_keys().await?;
        }
        let ring = Arc::new(KeyRing::from_records(&records)?);
        match self.keys.write() {
            Ok(mut g) => *g = ring,
            Err(p) => *p.into_inner() = ring,
        }
        Ok(())
    }

    /// Every stored key, its secret opened with this instance's KEK.
    async fn open_keys(&self) -> Result<Vec<KeyRecord>, StartupError> {
        let stored = self.store.keys().await?;
        Ok(stored
            .iter()
            .map(|r| self.open(r))
            .collect::<Result<_, _>>()?)
    }

    /// `record` as stored, its secret opened with this instance's KEK.
    ///
    /// # Errors
    /// [`KekError::Open`] if it does not open.
    pub(crate) fn open(&self, record: &KeyRecord) -> Result<KeyRecord, KekError> {
        self.kek.open_record(record)
    }

    /// `record` sealed under this instance's KEK, as it must be before it reaches the store.
    ///
    /// # Errors
    /// [`KekError::Seal`] if sealing fails.
    pub fn seal(&self, record: &KeyRecord) -> Result<KeyRecord, KekError> {
        self.kek.seal_record(record)
    }

    /// Seals every key still stored plain (written before keys were sealed at rest), one
    /// compare-and-set per key, so instances starting together cannot undo each other: the
    /// loser's write finds the plain bytes gone and changes nothing. Returns how many keys
    /// this call sealed.
    ///
    /// Every key already sealed is opened first, before any plain key is written: a KEK that
    /// does not open them is the wrong one, and sealing the plain keys under it would leave a
    /// store that no single KEK opens.
    ///
    /// # Errors
    /// If a sealed key does not open under this KEK (nothing is written then), the store
    /// fails or sealing fails.
    pub async fn seal_legacy_keys(&self) -> Result<usize, StartupError> {
        let stored = self.store.keys().await?;
        for record in &stored {
            self.kek.open_record(record)?;
        }
        let mut sealed = 0;
        for record in stored {
            if kek::is_sealed(&record.secret) {
                continue;
            }
            let new = self.kek.seal(&record.kid, &record.secret)?;
            if self
                .store
                .replace_key_secret(&record.kid, &record.secret, &new)
                .await?
            {
                tracing::info!(kid = %record.kid, "sealed a plain signing key under the KEK");
                sealed += 1;
            }
        }
        Ok(sealed)
    }

    /// Re-seals every stored key under `new` (one compare-and-set per key); returns how many
    /// keys were re-sealed. Keys are opened with this instance's KEK first, all of them
    /// before any is written, so a wrong current KEK changes nothing. Afterwards only `new`
    /// opens the store: instances must be restarted with it.
    ///
    /// # Errors
    /// If a key does not open, the store fails, or a key changed underneath (run it again).
    pub async fn rewrap_keys(&self, new: &Kek) -> Result<usize, StartupError> {
        let stored = self.store.keys().await?;
        let mut resealed = Vec::with_capacity(stored.len());
        for record in &stored {
            let opened = self.kek.open_record(record)?;
            resealed.push(new.seal(&record.kid, &opened.secret)?);
        }
        let mut count = 0;
        for (record, new_secret) in stored.iter().zip(&resealed) {
            if !self
                .store
                .replace_key_secret(&record.kid, &record.secret, new_secret)
                .await?
            {
                return Err(StartupError::Store(StoreError::Conflict(
                    "signing key changed during rewrap",
                )));
            }
            count += 1;
        }
        Ok(count)
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

    /// Takes a place in the hashing queue, or refuses at once when it is full: Argon2 work is
    /// the lever a flood of logins or registrations pulls, so the queue (and with it the
    /// latency of every login) is bounded. One source address (its throttle key) may hold half
    /// of it at most, so a flood from one client — even one logging in to its own accounts,
    /// which no throttle counts — leaves room for everyone else.
    fn enter_hashing_queue(
        &self,
        priority: HashPriority,
        source: Option<&str>,
    ) -> Result<QueueSlot<'_>, ApiError> {
        let refused = || {
            Metrics::inc(&self.metrics.hashing_refused);
            ApiError::Overloaded { retry_after: 1 }
        };
        let bound = match priority {
            HashPriority::Normal => self.config.hashing_queue,
            HashPriority::KnownDevice => self.config.hashing_queue.saturating_mul(2),
        };
        let mut slot = QueueSlot {
            queued: &self.hashing_queued,
            source: None,
        };
        if self.hashing_queued.fetch_add(1, Ordering::AcqRel) >= bound {
            return Err(refused());
        }
        if let Some(source) = source {
            let share = (self.config.hashing_queue / 2).max(1);
            let mut by_source = self
                .hashing_by_source
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let held = by_source.entry(source.to_owned()).or_default();
            if *held >= share {
                return Err(refused());
            }
            *held += 1;
            slot.source = Some((&self.hashing_by_source, source.to_owned()));
        }
        Ok(slot)
    }

    /// Runs Argon2 work on the blocking pool: a place in the bounded queue first, then one of
    /// the permits (one per core), so a burst can neither starve the async runtime nor queue
    /// without bound.
    async fn run_hashing<R: Send + 'static>(
        &self,
        priority: HashPriority,
        source: Option<&str>,
        work: impl FnOnce(&PasswordHasher) -> R + Send + 'static,
    ) -> Result<R, ApiError> {
        let _slot = self.enter_hashing_queue(priority, source)?;
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ApiError::Internal("hashing pool closed".into()))?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || work(&hasher))
            .await
            .map_err(|e| ApiError::Internal(e.to_string().into()))
    }

    /// Checks a new password against the policy and hashes it, both on the blocking pool: the
    /// guessability estimate costs CPU time too (milliseconds, see
    /// [`tessera_core::password::check_policy`]), so it waits its turn in the same bounded
    /// queue as the hash instead of stalling the async runtime.
    ///
    /// # Errors
    /// `WeakPassword` if the policy refuses it; `Overloaded` when the hashing queue is full;
    /// `Internal` if hashing fails.
    pub async fn hash_new_password(
        &self,
        username: String,
        password: String,
        source: Option<&str>,
    ) -> Result<String, ApiError> {
        self.run_hashing(HashPriority::Normal, source, move |h| {
            tessera_core::password::check_policy(&username, &password)
                .map_err(|e| ApiError::WeakPassword(e.to_string()))?;
            h.hash(&password)
                .map_err(|e| ApiError::Internal(e.to_string().into()))
        })
        .await?
    }

    /// Checks a password on the blocking pool; with no stored hash (unknown user), does the
    /// same work and fails. `source` is the caller's address as throttled, which may hold half
    /// of the hashing queue at most.
    ///
    /// # Errors
    /// `Overloaded` when the hashing queue is full; `Internal` if the blocking pool fails.
    pub async fn verify_password(
        &self,
        password: String,
        phc: Option<String>,
        priority: HashPriority,
        source: Option<&str>,
    ) -> Result<bool, ApiError> {
        let ok = self
            .run_hashing(priority, source, move |h| match phc {
                Some(phc) => h.verify(&password, &phc),
                None => {
                    h.verify_absent(&password);
                    false
                }
            })
            .await?;
        Metrics::inc(&self.metrics.password_checks);
        Ok(ok)
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
