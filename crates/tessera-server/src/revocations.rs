//! This instance's view of the revocation list, and how far it can be trusted.
//!
//! The list lives in memory so verifying a JWT costs no store lookup. With a push feed (Redis
//! pub/sub, PostgreSQL `LISTEN/NOTIFY`) it is exact: every revocation any instance records is
//! announced by the store in the same step that writes it. While the feed is down, this
//! instance cannot know what it missed, so it stops trusting memory alone and asks the store
//! per credential — and if the store is unreachable too, the answer is 503, never a stale 200.
//! When the feed reconnects, the list is reloaded from the store and *merged* (revocations are
//! never undone, so a merge cannot lose an event that raced the reload). The merge is built on
//! a copy, off the lock, and swapped in if no revocation arrived meanwhile (else built again),
//! so a reload of a large list holds up no request: readers only ever wait for the swap.
//!
//! Without a feed (memory, SQLite: one instance owns the store) memory is authoritative.
//!
//! Every revocation that changes the list — from this instance, the feed, or a reload — is
//! also numbered in a bounded journal and broadcast, for resource servers following
//! `/v1/revocations/stream`. A cursor (`<instance epoch>-<number>`) names a point in this
//! instance's journal; one this instance cannot continue from (another instance's, a
//! restarted instance's, or one older than the journal) is answered with the whole live list,
//! which is always correct for a subscriber because revocations only accumulate.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tessera_core::jose::decode_unverified_dangerously;
use tessera_core::keys::KeyStatus;
use tessera_core::revocation::{Revocation, RevocationList, RevocationSubject};
use tessera_core::time::UnixTime;
use tessera_store::{FeedEvent, RevocationFeed, Store, StoreError};

/// How many numbered revocations the journal keeps for subscribers resuming from a cursor.
const JOURNAL_LEN: usize = 10_000;

/// How many times a reload builds its merge off the lock before merging under it (when
/// revocations keep arriving while it builds).
const RELOAD_ATTEMPTS: usize = 3;

/// How many revocations a live subscriber may fall behind before it is disconnected (it then
/// resumes from its cursor).
const SUBSCRIBER_BUFFER: usize = 1_024;

/// The revocation list as this instance knows it.
#[derive(Debug)]
pub struct RevocationView {
    list: RwLock<RevocationList>,
    /// Bumped under the write lock by every change of `list`: a reload built on a copy swaps
    /// it in only if this has not moved since the copy was taken.
    generation: AtomicU64,
    has_feed: bool,
    feed_live: AtomicBool,
    /// When the feed last went down (Unix seconds; set when following starts).
    feed_down_since: AtomicI64,
    /// When the feed last delivered anything: a revocation or a (re)connection (0: never).
    feed_last_event: AtomicI64,
    journal: Mutex<Journal>,
    events: tokio::sync::broadcast::Sender<Numbered>,
    /// Woken when a key revocation arrives, so the key ring is reloaded without waiting.
    pub keys_changed: tokio::sync::Notify,
}

/// A revocation and its number in this instance's journal.
pub type Numbered = (u64, Revocation);

/// The numbered revocations this instance has learned, newest last.
#[derive(Debug)]
struct Journal {
    /// Random per process: cursors of another instance or an earlier run never match.
    epoch: String,
    /// The number of the last entry (0 before the first).
    last: u64,
    entries: VecDeque<Numbered>,
}

impl Journal {
    fn cursor(&self, n: u64) -> String {
        format!("{}-{n}", self.epoch)
    }

    /// The entries after `cursor`, or `None` if this journal cannot continue from it.
    fn after(&self, cursor: &str) -> Option<Vec<Numbered>> {
        let (epoch, n) = cursor.rsplit_once('-')?;
        let n: u64 = n.parse().ok()?;
        let oldest = self
            .entries
            .front()
            .map_or(self.last, |(first, _)| first - 1);
        if epoch != self.epoch || n < oldest || n > self.last {
            return None;
        }
        Some(
            self.entries
                .iter()
                .filter(|(m, _)| *m > n)
                .cloned()
                .collect(),
        )
    }
}

/// A value no other process (or earlier run) uses: random, or — should the generator fail —
/// this process's id and start time, still unique per run.
fn journal_epoch() -> String {
    tessera_core::opaque::random_id().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("p{}t{nanos}", std::process::id())
    })
}

/// What a subscriber gets to catch up, and the cursor to resume from afterwards.
#[derive(Debug)]
pub struct CatchUp {
    /// Where the subscriber stands after the backlog.
    pub cursor: String,
    /// What it has not seen.
    pub backlog: Backlog,
}

/// The revocations a subscriber has not seen.
#[derive(Debug)]
pub enum Backlog {
    /// The journal's entries after the subscriber's cursor, each with its own number: a
    /// subscriber cut off part-way resumes from the last one it received.
    After(Vec<Numbered>),
    /// The whole live list, for a subscriber whose cursor could not be continued from (or
    /// that gave none): only complete once all of it has arrived, so only its end is a point
    /// to resume from.
    Whole(Vec<Revocation>),
}

impl Backlog {
    /// The revocations, in order.
    #[must_use]
    pub fn into_revocations(self) -> Vec<Revocation> {
        match self {
            Self::After(entries) => entries.into_iter().map(|(_, r)| r).collect(),
            Self::Whole(all) => all,
        }
    }
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
            generation: AtomicU64::new(0),
            has_feed,
            feed_live: AtomicBool::new(false),
            feed_down_since: AtomicI64::new(0),
            feed_last_event: AtomicI64::new(0),
            journal: Mutex::new(Journal {
                epoch: journal_epoch(),
                last: 0,
                entries: VecDeque::new(),
            }),
            events: tokio::sync::broadcast::channel(SUBSCRIBER_BUFFER).0,
            keys_changed: tokio::sync::Notify::new(),
        }
    }

    fn journal<R>(&self, f: impl FnOnce(&mut Journal) -> R) -> R {
        match self.journal.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Numbers `changes` in the journal and sends them to live subscribers, under the
    /// journal's lock, so a subscriber's catch-up and its live events neither overlap nor
    /// leave a gap.
    fn publish(&self, changes: Vec<Revocation>) {
        if changes.is_empty() {
            return;
        }
        self.journal(|j| {
            for r in changes {
                j.last += 1;
                let entry = (j.last, r);
                // No receivers is not an error: nobody follows the stream right now.
                let _ = self.events.send(entry.clone());
                if j.entries.len() == JOURNAL_LEN {
                    j.entries.pop_front();
                }
                j.entries.push_back(entry);
            }
        });
    }

    /// The revocations a subscriber at `since` has not seen, for `GET /v1/revocations`.
    #[must_use]
    pub fn catch_up(&self, since: Option<&str>) -> CatchUp {
        self.journal(|j| self.catch_up_locked(j, since))
    }

    fn catch_up_locked(&self, j: &Journal, since: Option<&str>) -> CatchUp {
        let backlog = match since.and_then(|c| j.after(c)) {
            Some(entries) => Backlog::After(entries),
            None => Backlog::Whole(self.read(RevocationList::entries)),
        };
        CatchUp {
            cursor: j.cursor(j.last),
            backlog,
        }
    }

    /// Subscribes to revocations as they arrive, for the stream: from `since` (what came
    /// after it, or the whole live list if it cannot be continued from), or from the present
    /// without a cursor. The receiver reports `Lagged` once the subscriber has fallen
    /// 1,024 revocations behind.
    #[must_use]
    pub fn subscribe(
        &self,
        since: Option<&str>,
    ) -> (CatchUp, tokio::sync::broadcast::Receiver<Numbered>) {
        self.journal(|j| {
            let receiver = self.events.subscribe();
            let catch_up = match since {
                Some(c) => self.catch_up_locked(j, Some(c)),
                None => CatchUp {
                    cursor: j.cursor(j.last),
                    backlog: Backlog::After(Vec::new()),
                },
            };
            (catch_up, receiver)
        })
    }

    /// The cursor naming entry `n` of this instance's journal.
    #[must_use]
    pub fn cursor(&self, n: u64) -> String {
        self.journal(|j| j.cursor(n))
    }

    fn read<R>(&self, f: impl FnOnce(&RevocationList) -> R) -> R {
        match self.list.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }

    fn write<R>(&self, f: impl FnOnce(&mut RevocationList) -> R) -> R {
        let mut g = self.list.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::Relaxed);
        f(&mut g)
    }

    /// A copy of the list and the generation it is of.
    fn snapshot(&self) -> (RevocationList, u64) {
        let g = self.list.read().unwrap_or_else(PoisonError::into_inner);
        (g.clone(), self.generation.load(Ordering::Relaxed))
    }

    /// Exchanges the list and `next` if the list is still at generation `seen` (the old list
    /// is then in `next`, to be dropped after the lock is released); whether it did.
    fn swap_if_unchanged(&self, seen: u64, next: &mut RevocationList) -> bool {
        let mut g = self.list.write().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Relaxed) != seen {
            return false;
        }
        self.generation.fetch_add(1, Ordering::Relaxed);
        std::mem::swap(&mut *g, next);
        true
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

    /// How long, in seconds, memory alone may have missed revocations (`/metrics`' feed
    /// lag): 0 without a feed (memory is authoritative) or with a live one (every revocation
    /// is announced as it is written); while the feed is down, the time since it went down
    /// (or since following started, if it never came up). Meanwhile credentials are checked
    /// against the store, so this is how stale memory is, not how stale answers are.
    #[must_use]
    pub fn feed_lag_secs(&self, now: UnixTime) -> i64 {
        let since = self.feed_down_since.load(Ordering::Acquire);
        // 0: not following yet (the server starts following before it serves).
        if self.feed_state() == FeedState::Down && since != 0 {
            now.0.saturating_sub(since).max(0)
        } else {
            0
        }
    }

    /// When the feed last delivered a revocation or a (re)connection, if it ever did.
    #[must_use]
    pub fn feed_last_event(&self) -> Option<UnixTime> {
        let at = self.feed_last_event.load(Ordering::Acquire);
        (at != 0).then_some(UnixTime(at))
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

    /// Applies one revocation in memory (and publishes it to subscribers if it is news).
    pub fn insert(&self, r: &Revocation) {
        if self.write(|l| l.insert(r)) {
            self.publish(vec![r.clone()]);
        }
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
        for _ in 0..RELOAD_ATTEMPTS {
            let (mut next, seen) = self.snapshot();
            let news: Vec<Revocation> = all.iter().filter(|r| next.insert(r)).cloned().collect();
            next.prune(now);
            if self.swap_if_unchanged(seen, &mut next) {
                drop(next);
                self.publish(news);
                return Ok(());
            }
        }
        // Revocations keep arriving: merge under the lock, which cannot miss them.
        let news = self.write(|l| {
            let news: Vec<Revocation> = all.into_iter().filter(|r| l.insert(r)).collect();
            l.prune(now);
            news
        });
        self.publish(news);
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
        let found = store
            .revocations_for(s.jti, s.sid, s.sub, s.client_id, now)
            .await?;
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
        let found = store
            .revocations_for("", Some(sid), user_id, None, now)
            .await?;
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
        self.feed_down_since.store(clock.now().0, Ordering::Release);
        while let Some(event) = events.recv().await {
            if !matches!(event, FeedEvent::Disconnected) {
                self.feed_last_event.store(clock.now().0, Ordering::Release);
            }
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
                        self.feed_down_since.store(clock.now().0, Ordering::Release);
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
