//! This instance's view of the revocation list, and how far it can be trusted.
//!
//! The list lives in memory so verifying a JWT costs no store lookup. With a push feed (Redis
//! pub/sub, PostgreSQL `LISTEN/NOTIFY`) it is exact: every revocation any instance records is
//! announced by the store in the same step that writes it. While the feed is down, this
//! instance cannot know what it missed, so it stops trusting memory alone and asks the store
//! per credential — and if the store is unreachable too, the answer is 503, never a stale 200.
//! When the feed reconnects, the list is reloaded from the store and *merged* (revocations are
//! never undone, so a merge cannot lose an event that raced the reload).
//!
//! Without a feed (memory, SQLite: one instance owns the store) memory is authoritative.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tessera_core::jose::decode_unverified_dangerously;
use tessera_core::keys::KeyStatus;
use tessera_core::revocation::{Revocation, RevocationList, RevocationSubject};
use tessera_core::time::UnixTime;
use tessera_store::{FeedEvent, RevocationFeed, Store, StoreError};

/// The revocation list as this instance knows it.
#[derive(Debug)]
pub struct RevocationView {
    list: RwLock<RevocationList>,
    has_feed: bool,
    feed_live: AtomicBool,
    /// Woken when a key revocation arrives, so the key ring is reloaded without waiting.
    pub keys_changed: tokio::sync::Notify,
}

/// The state of the revocation feed, as `/readyz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedState {
    /// The store has no feed; this instance's memory is authoritative.
    None,
    /// The feed is connected and the list exact.
    Live,
    /// The feed is down: credentials are checked against the store per request.
    Down,
}

impl FeedState {
    /// The name `/readyz` uses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Live => "live",
            Self::Down => "down",
        }
    }
}

impl RevocationView {
    /// An empty view; `has_feed` says whether a feed will keep it exact.
    #[must_use]
    pub fn new(has_feed: bool) -> Self {
        Self {
            list: RwLock::new(RevocationList::new()),
            has_feed,
            feed_live: AtomicBool::new(false),
            keys_changed: tokio::sync::Notify::new(),
        }
    }

    fn read<R>(&self, f: impl FnOnce(&RevocationList) -> R) -> R {
        match self.list.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }

    fn write<R>(&self, f: impl FnOnce(&mut RevocationList) -> R) -> R {
        match self.list.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// The feed's state.
    #[must_use]
    pub fn feed_state(&self) -> FeedState {
        match (self.has_feed, self.feed_live.load(Ordering::Acquire)) {
            (false, _) => FeedState::None,
            (true, true) => FeedState::Live,
            (true, false) => FeedState::Down,
        }
    }

    /// Whether memory alone decides (no feed, or a live one).
    #[must_use]
    pub fn memory_is_exact(&self) -> bool {
        self.feed_state() != FeedState::Down
    }

    /// Number of entries in memory.
    #[must_use]
    pub fn len(&self) -> usize {
        self.read(RevocationList::len)
    }

    /// Whether memory holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether tokens signed by `kid` are refused (an emergency key revocation heard of,
    /// possibly before the key ring has been reloaded).
    #[must_use]
    pub fn is_key_revoked(&self, kid: &str) -> bool {
        self.read(|l| l.is_key_revoked(kid))
    }

    /// Applies one revocation in memory.
    pub fn insert(&self, r: &Revocation) {
        self.write(|l| l.insert(r));
        if matches!(r, Revocation::Key { .. }) {
            self.keys_changed.notify_one();
        }
    }

    /// Merges the store's list into memory and drops expired entries.
    ///
    /// # Errors
    /// If the store fails (memory unchanged).
    pub async fn reload(&self, store: &dyn Store, now: UnixTime) -> Result<(), StoreError> {
        let all = store.revocations(now).await?;
        self.write(|l| {
            for r in &all {
                l.insert(r);
            }
            l.prune(now);
        });
        Ok(())
    }

    /// Whether a verified access token is revoked: memory when exact (its key was checked
    /// there by the verifier), else memory and the store — the token's own entries, and its
    /// key's status (a key revoked while the feed is down must not keep verifying until the
    /// next key-ring reload). The key id is read from `token` on that slow path only, so the
    /// hot path allocates nothing for it.
    ///
    /// # Errors
    /// If the store must be asked and cannot answer.
    pub async fn is_token_revoked(
        &self,
        store: &dyn Store,
        s: RevocationSubject<'_>,
        token: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        if self.read(|l| l.is_revoked(s)) {
            return Ok(true);
        }
        if self.memory_is_exact() {
            return Ok(false);
        }
        let found = store.revocations_for(s.jti, s.sid, s.sub, now).await?;
        // The token verified, so its header decodes and names a kid; failing that, refuse.
        let Some(kid) = decode_unverified_dangerously(token)
            .ok()
            .and_then(|(header, _)| header.get("kid")?.as_str().map(str::to_owned))
        else {
            return Ok(true);
        };
        let key_revoked = store
            .keys()
            .await?
            .iter()
            .any(|k| k.kid == kid && k.status == KeyStatus::Revoked);
        let mut list = RevocationList::new();
        for r in &found {
            list.insert(r);
            self.insert(r);
        }
        Ok(key_revoked || list.is_revoked(s))
    }

    /// Whether a login session is revoked: memory when exact, else memory and the store.
    ///
    /// # Errors
    /// If the store must be asked and cannot answer.
    pub async fn is_session_revoked(
        &self,
        store: &dyn Store,
        sid: &str,
        user_id: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        if self.read(|l| l.is_session_revoked(sid)) {
            return Ok(true);
        }
        if self.memory_is_exact() {
            return Ok(false);
        }
        let found = store.revocations_for("", Some(sid), user_id, now).await?;
        let mut list = RevocationList::new();
        for r in &found {
            list.insert(r);
            self.insert(r);
        }
        Ok(list.is_session_revoked(sid))
    }

    /// Follows the store's feed until the process ends: marks the view live once a
    /// (re)connection has been followed by a successful reload, down on every disconnection.
    pub async fn follow(
        self: Arc<Self>,
        feed: Arc<dyn RevocationFeed>,
        store: Arc<dyn Store>,
        clock: Arc<dyn tessera_core::time::Clock>,
    ) {
        let mut events = feed.follow();
        while let Some(event) = events.recv().await {
            match event {
                FeedEvent::Connected => {
                    // Live only after the reload: until then something may be missing.
                    let mut delay = std::time::Duration::from_millis(100);
                    loop {
                        match self.reload(store.as_ref(), clock.now()).await {
                            Ok(()) => break,
                            Err(e) => {
                                tracing::warn!(error = %crate::error::error_chain(&e), "reload after feed reconnect failed");
                                tokio::time::sleep(delay).await;
                                delay = (delay * 2).min(std::time::Duration::from_secs(2));
                            }
                        }
                    }
                    self.feed_live.store(true, Ordering::Release);
                    tracing::info!("revocation feed live");
                }
                FeedEvent::Revoked(r) => self.insert(&r),
                FeedEvent::Disconnected => {
                    if self.feed_live.swap(false, Ordering::AcqRel) {
                        tracing::warn!(
                            "revocation feed down: checking credentials against the store"
                        );
                    }
                }
            }
        }
        self.feed_live.store(false, Ordering::Release);
    }
}
