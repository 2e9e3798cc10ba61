//! A store that fails on command: the memory store behind a switchboard of failing (or hanging)
//! methods, for tests of what a flow does when its store gives way half-way.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tessera_core::authorization::AuthorizationCode;
use tessera_core::client::{ClientId, ClientRecord};
use tessera_core::keys::{KeyRecord, KeyStatus};
use tessera_core::opaque::TokenHash;
use tessera_core::refresh::RefreshFamily;
use tessera_core::revocation::Revocation;
use tessera_core::session::{Session, SessionPolicy};
use tessera_core::time::UnixTime;
use tessera_store::memory::MemoryStore;
use tessera_store::{
    AuditEvent, AuditQuery, AuditRecord, AuditStore, BoxError, ClientStore, CodeStore, FeedEvent,
    KeyStore, Redemption, RefreshStore, ReplayStore, RevocationFeed, RevocationStore,
    RotateOutcome, SessionStore, StoreError, Successor, User, UserStore,
};

tokio::task_local! {
    /// Which of a test's racing logins the current task runs, so the store can tell what
    /// each one read ([`FaultyStore::epoch_read_by`]).
    pub static LOGIN: usize;
}

/// The memory store, with methods that fail (as `Unavailable`) while named in `failing`, and
/// never answer while named in `hanging`.
#[derive(Default)]
pub struct FaultyStore {
    inner: MemoryStore,
    failing: Mutex<HashSet<&'static str>>,
    hanging: Mutex<HashSet<&'static str>>,
    dead_feed: bool,
    reset_before_next_session: std::sync::atomic::AtomicBool,
    /// `(trigger, method)`: once `trigger` has been called, `method` fails too.
    armed: Mutex<Vec<(&'static str, &'static str)>>,
    /// The credential epoch `user_by_name` found for each [`LOGIN`] that looked its user up.
    epochs_read: Mutex<HashMap<usize, i64>>,
}

/// A revocation feed that never connects: the server stays in degraded mode and checks every
/// credential against the store.
struct DeadFeed;

impl RevocationFeed for DeadFeed {
    fn follow(&self) -> tokio::sync::mpsc::Receiver<FeedEvent> {
        tokio::sync::mpsc::channel(1).1
    }
}

impl FaultyStore {
    /// A shareable handle.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A store whose revocation feed is down, as a shared store's is while its server is.
    pub fn with_dead_feed() -> Arc<Self> {
        Arc::new(Self {
            dead_feed: true,
            ..Self::default()
        })
    }

    /// Makes `method` fail until [`FaultyStore::heal`].
    pub fn fail(&self, method: &'static str) {
        self.failing.lock().unwrap().insert(method);
    }

    /// Makes the next `create_session` first raise its user's credential epoch: a credential
    /// reset (password change, sign out everywhere) landing exactly between a login's
    /// password check and its session.
    pub fn reset_credentials_before_next_session(&self) {
        self.reset_before_next_session
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes `method` never answer until [`FaultyStore::heal`]: a server that accepted the
    /// connection and went silent, or a pool waiting for a connection that never comes.
    pub fn hang(&self, method: &'static str) {
        self.hanging.lock().unwrap().insert(method);
    }

    /// Makes every method work again.
    pub fn heal(&self) {
        self.failing.lock().unwrap().clear();
        self.hanging.lock().unwrap().clear();
    }

    /// Makes `method` fail from the moment `trigger` has been called: a store that gives way
    /// between two steps of a flow.
    pub fn fail_after(&self, trigger: &'static str, method: &'static str) {
        self.armed.lock().unwrap().push((trigger, method));
    }

    /// The credential epoch login number `login` (see [`LOGIN`]) read before checking the
    /// password — which side of a credential reset it verified on. `None` if it found no
    /// user, or ran outside a [`LOGIN`] scope.
    pub fn epoch_read_by(&self, login: usize) -> Option<i64> {
        self.epochs_read.lock().unwrap().get(&login).copied()
    }

    async fn check(&self, method: &'static str) -> Result<(), StoreError> {
        let fired: Vec<&'static str> = {
            let mut armed = self.armed.lock().unwrap();
            let fired = armed
                .iter()
                .filter(|(t, _)| *t == method)
                .map(|(_, m)| *m)
                .collect();
            armed.retain(|(t, _)| *t != method);
            fired
        };
        self.failing.lock().unwrap().extend(fired);
        let hangs = self.hanging.lock().unwrap().contains(method);
        if hangs {
            std::future::pending::<()>().await;
        }
        if self.failing.lock().unwrap().contains(method) {
            Err(StoreError::Unavailable(BoxError::from(format!(
                "{method}: injected fault"
            ))))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl UserStore for FaultyStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        self.check("create_user").await?;
        self.inner.create_user(user).await
    }
    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.check("user_by_name").await?;
        let user = self.inner.user_by_name(username).await?;
        if let (Ok(login), Some(u)) = (LOGIN.try_with(|l| *l), &user) {
            self.epochs_read
                .lock()
                .unwrap()
                .insert(login, u.credential_epoch);
        }
        Ok(user)
    }
    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.check("user_by_id").await?;
        self.inner.user_by_id(id).await
    }
    async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<bool, StoreError> {
        self.check("set_password_hash").await?;
        self.inner.set_password_hash(user_id, hash).await
    }
    async fn bump_credential_epoch(&self, user_id: &str) -> Result<bool, StoreError> {
        self.check("bump_credential_epoch").await?;
        self.inner.bump_credential_epoch(user_id).await
    }
    async fn disable_user(&self, user_id: &str) -> Result<bool, StoreError> {
        self.check("disable_user").await?;
        self.inner.disable_user(user_id).await
    }
    async fn search_users(&self, fragment: &str, limit: u32) -> Result<Vec<User>, StoreError> {
        self.check("search_users").await?;
        self.inner.search_users(fragment, limit).await
    }
}

#[async_trait]
impl AuditStore for FaultyStore {
    async fn append_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.check("append_event").await?;
        self.inner.append_event(event).await
    }
    async fn events(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.check("events").await?;
        self.inner.events(query).await
    }
    async fn prune_events(&self, cutoff: UnixTime) -> Result<u64, StoreError> {
        self.check("prune_events").await?;
        self.inner.prune_events(cutoff).await
    }
}

#[async_trait]
impl SessionStore for FaultyStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.check("create_session").await?;
        if self
            .reset_before_next_session
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.inner.bump_credential_epoch(&session.user_id).await?;
        }
        self.inner.create_session(session).await
    }
    async fn session_by_token(&self, token: &TokenHash) -> Result<Option<Session>, StoreError> {
        self.check("session_by_token").await?;
        self.inner.session_by_token(token).await
    }
    async fn session_by_id(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.check("session_by_id").await?;
        self.inner.session_by_id(id).await
    }
    async fn touch_session(&self, id: &str, last_seen: UnixTime) -> Result<(), StoreError> {
        self.check("touch_session").await?;
        self.inner.touch_session(id, last_seen).await
    }
    async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        self.check("sessions_of_user").await?;
        self.inner.sessions_of_user(user_id).await
    }
    async fn delete_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.check("delete_session").await?;
        self.inner.delete_session(id).await
    }
    async fn delete_dead_sessions(
        &self,
        now: UnixTime,
        policy: &SessionPolicy,
    ) -> Result<u64, StoreError> {
        self.check("delete_dead_sessions").await?;
        self.inner.delete_dead_sessions(now, policy).await
    }
    async fn count_sessions(&self) -> Result<u64, StoreError> {
        self.check("count_sessions").await?;
        self.inner.count_sessions().await
    }
}

#[async_trait]
impl RefreshStore for FaultyStore {
    async fn create_family(&self, f: &RefreshFamily, first: &TokenHash) -> Result<(), StoreError> {
        self.check("create_family").await?;
        self.inner.create_family(f, first).await
    }
    async fn rotate(
        &self,
        presented: &TokenHash,
        now: UnixTime,
        grace_secs: i64,
        successor: &Successor,
    ) -> Result<RotateOutcome, StoreError> {
        self.check("rotate").await?;
        self.inner
            .rotate(presented, now, grace_secs, successor)
            .await
    }
    async fn family_by_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(RefreshFamily, u32)>, StoreError> {
        self.check("family_by_token").await?;
        self.inner.family_by_token(token).await
    }
    async fn revoke_family(&self, family_id: &str, now: UnixTime) -> Result<(), StoreError> {
        self.check("revoke_family").await?;
        self.inner.revoke_family(family_id, now).await
    }
    async fn revoke_families_of_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError> {
        self.check("revoke_families_of_session").await?;
        self.inner.revoke_families_of_session(sid, now).await
    }
    async fn clear_stale_successors(&self, now: UnixTime, grace: i64) -> Result<u64, StoreError> {
        self.check("clear_stale_successors").await?;
        self.inner.clear_stale_successors(now, grace).await
    }
    async fn delete_expired_families(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.check("delete_expired_families").await?;
        self.inner.delete_expired_families(now).await
    }
}

#[async_trait]
impl RevocationStore for FaultyStore {
    async fn add_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        self.check("add_revocation").await?;
        self.inner.add_revocation(revocation).await
    }
    async fn revocations(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        self.check("revocations").await?;
        self.inner.revocations(now).await
    }
    async fn prune_revocations(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.check("prune_revocations").await?;
        self.inner.prune_revocations(now).await
    }
    fn feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        self.dead_feed
            .then(|| Arc::new(DeadFeed) as Arc<dyn RevocationFeed>)
    }
}

#[async_trait]
impl ClientStore for FaultyStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.check("insert_client").await?;
        self.inner.insert_client(client).await
    }
    async fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        self.check("client").await?;
        self.inner.client(id).await
    }
    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.check("clients").await?;
        self.inner.clients().await
    }
    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        self.check("delete_client").await?;
        self.inner.delete_client(id).await
    }
}

#[async_trait]
impl CodeStore for FaultyStore {
    async fn insert_code(
        &self,
        hash: &TokenHash,
        code: &AuthorizationCode,
    ) -> Result<(), StoreError> {
        self.check("insert_code").await?;
        self.inner.insert_code(hash, code).await
    }
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: UnixTime,
    ) -> Result<Option<Redemption>, StoreError> {
        self.check("redeem_code").await?;
        self.inner.redeem_code(hash, now).await
    }
    async fn delete_expired_codes(&self, before: UnixTime) -> Result<u64, StoreError> {
        self.check("delete_expired_codes").await?;
        self.inner.delete_expired_codes(before).await
    }
}

#[async_trait]
impl KeyStore for FaultyStore {
    async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.check("keys").await?;
        self.inner.keys().await
    }
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.check("insert_key").await?;
        self.inner.insert_key(key).await
    }
    async fn insert_key_if_vacant(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        self.check("insert_key_if_vacant").await?;
        self.inner.insert_key_if_vacant(key).await
    }
    async fn set_key_status(
        &self,
        kid: &str,
        from: KeyStatus,
        to: KeyStatus,
        at: UnixTime,
    ) -> Result<bool, StoreError> {
        self.check("set_key_status").await?;
        self.inner.set_key_status(kid, from, to, at).await
    }
    async fn replace_key_secret(
        &self,
        kid: &str,
        expected: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        self.check("replace_key_secret").await?;
        self.inner.replace_key_secret(kid, expected, new).await
    }
}

#[async_trait]
impl ReplayStore for FaultyStore {
    async fn remember_once(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.check("remember_once").await?;
        self.inner.remember_once(key, expires_at, now).await
    }
    async fn forget_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.check("forget_expired").await?;
        self.inner.forget_expired(now).await
    }
}
