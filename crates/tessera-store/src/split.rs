//! A store split between a durable backend and Redis: what `tessera serve --redis` runs on.
//!
//! Design decision: the split is by record kind. Users, signing keys, refresh families, OAuth
//! clients, the audit log and authorization codes live only in the durable store (they must
//! survive anything); sessions, attempt counters and DPoP replay markers live only in Redis
//! (hot, short-lived, shared by every instance; losing them logs people out, or at worst lets a
//! proof of the last minute be replayed once, and proofs only work with a token bound to the
//! same key). Revocations are the one exception, because losing one is
//! *not* safe: each is written to the durable store first — the commit point, and what every
//! reload and per-request check reads — and then to Redis, whose script keeps a copy with key
//! expiry and announces it on the pub/sub feed. A Redis that restarts empty therefore forgets
//! no revocation: followers reload from the durable store when their feed reconnects.

use std::sync::Arc;

use async_trait::async_trait;
use tessera_core::authorization::AuthorizationCode;
use tessera_core::client::{ClientId, ClientRecord};
use tessera_core::keys::{KeyRecord, KeyStatus};
use tessera_core::opaque::TokenHash;
use tessera_core::refresh::RefreshFamily;
use tessera_core::revocation::Revocation;
use tessera_core::session::{Session, SessionPolicy};
use tessera_core::time::UnixTime;

use crate::redis::RedisStore;
use crate::{
    AttemptCounter, AuditEvent, AuditQuery, AuditRecord, AuditStore, ClientStore, CodeStore,
    KeyStore, Redemption, RefreshStore, ReplayStore, RevocationFeed, RevocationStore,
    RotateOutcome, SessionStore, Store, StoreError, Successor, User, UserStore,
};

/// Users, keys, refresh families, clients, codes and the revocation record in `durable`; sessions, attempt
/// counters and the revocation feed (with a copy of the list) in Redis.
#[derive(Clone)]
pub struct SplitStore {
    durable: Arc<dyn Store>,
    redis: Arc<RedisStore>,
}

impl std::fmt::Debug for SplitStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitStore")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl SplitStore {
    /// Combines a durable store with a Redis store.
    #[must_use]
    pub fn new(durable: Arc<dyn Store>, redis: Arc<RedisStore>) -> Self {
        Self { durable, redis }
    }

    /// The Redis half.
    #[must_use]
    pub fn redis(&self) -> &Arc<RedisStore> {
        &self.redis
    }

    /// The durable half.
    #[must_use]
    pub fn durable(&self) -> &Arc<dyn Store> {
        &self.durable
    }
}

#[async_trait]
impl UserStore for SplitStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        self.durable.create_user(user).await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.durable.user_by_name(username).await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.durable.user_by_id(id).await
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        self.durable.set_password_hash(user_id, password_hash).await
    }

    async fn bump_credential_epoch(&self, user_id: &str) -> Result<bool, StoreError> {
        self.durable.bump_credential_epoch(user_id).await
    }

    async fn disable_user(&self, user_id: &str) -> Result<bool, StoreError> {
        self.durable.disable_user(user_id).await
    }

    async fn search_users(&self, fragment: &str, limit: u32) -> Result<Vec<User>, StoreError> {
        self.durable.search_users(fragment, limit).await
    }
}

/// The audit log stays with the users, in the durable store.
#[async_trait]
impl AuditStore for SplitStore {
    async fn append_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.durable.append_event(event).await
    }

    async fn events(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.durable.events(query).await
    }

    async fn prune_events(&self, cutoff: UnixTime) -> Result<u64, StoreError> {
        self.durable.prune_events(cutoff).await
    }
}

#[async_trait]
impl KeyStore for SplitStore {
    async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.durable.keys().await
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.durable.insert_key(key).await
    }

    async fn insert_key_if_vacant(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        self.durable.insert_key_if_vacant(key).await
    }

    async fn set_key_status(
        &self,
        kid: &str,
        from: KeyStatus,
        to: KeyStatus,
        at: UnixTime,
    ) -> Result<bool, StoreError> {
        self.durable.set_key_status(kid, from, to, at).await
    }

    async fn replace_key_secret(
        &self,
        kid: &str,
        expected: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        self.durable.replace_key_secret(kid, expected, new).await
    }
}

#[async_trait]
impl ClientStore for SplitStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.durable.insert_client(client).await
    }

    async fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        self.durable.client(id).await
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.durable.clients().await
    }

    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        self.durable.delete_client(id).await
    }
}

#[async_trait]
impl RefreshStore for SplitStore {
    async fn create_family(
        &self,
        family: &RefreshFamily,
        first_token: &TokenHash,
    ) -> Result<(), StoreError> {
        self.durable.create_family(family, first_token).await
    }

    async fn rotate(
        &self,
        presented: &TokenHash,
        now: UnixTime,
        grace_secs: i64,
        successor: &Successor,
    ) -> Result<RotateOutcome, StoreError> {
        self.durable
            .rotate(presented, now, grace_secs, successor)
            .await
    }

    async fn family_by_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(RefreshFamily, u32)>, StoreError> {
        self.durable.family_by_token(token).await
    }

    async fn revoke_family(&self, family_id: &str, now: UnixTime) -> Result<(), StoreError> {
        self.durable.revoke_family(family_id, now).await
    }

    async fn revoke_families_of_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError> {
        self.durable.revoke_families_of_session(sid, now).await
    }

    async fn delete_expired_families(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.durable.delete_expired_families(now).await
    }

    async fn clear_stale_successors(
        &self,
        now: UnixTime,
        grace_secs: i64,
    ) -> Result<u64, StoreError> {
        self.durable.clear_stale_successors(now, grace_secs).await
    }
}

#[async_trait]
impl SessionStore for SplitStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.redis.create_session(session).await
    }

    async fn session_by_token(&self, token: &TokenHash) -> Result<Option<Session>, StoreError> {
        self.redis.session_by_token(token).await
    }

    async fn session_by_id(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.redis.session_by_id(id).await
    }

    async fn touch_session(&self, id: &str, last_seen: UnixTime) -> Result<(), StoreError> {
        self.redis.touch_session(id, last_seen).await
    }

    async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        self.redis.sessions_of_user(user_id).await
    }

    async fn delete_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.redis.delete_session(id).await
    }

    async fn delete_dead_sessions(
        &self,
        now: UnixTime,
        policy: &SessionPolicy,
    ) -> Result<u64, StoreError> {
        self.redis.delete_dead_sessions(now, policy).await
    }

    async fn count_sessions(&self) -> Result<u64, StoreError> {
        self.redis.count_sessions().await
    }
}

#[async_trait]
impl RevocationStore for SplitStore {
    async fn add_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        // The durable write is the commit point. If the Redis copy and announcement then fail,
        // Redis is in trouble: followers whose feed broke check the durable store per request
        // and reload from it when the feed returns, so the revocation holds. (A Redis that
        // fails this one write while its pub/sub stays up delays followers until their next
        // full reload, at most a minute.)
        self.durable.add_revocation(revocation).await?;
        if let Err(e) = self.redis.add_revocation(revocation).await {
            tracing::warn!(error = %e, "revocation is durable but was not announced on Redis");
        }
        Ok(())
    }

    async fn revocations(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        self.durable.revocations(now).await
    }

    async fn prune_revocations(&self, now: UnixTime) -> Result<u64, StoreError> {
        let pruned = self.durable.prune_revocations(now).await?;
        self.redis.prune_revocations(now).await?;
        Ok(pruned)
    }

    async fn revocations_for(
        &self,
        jti: &str,
        sid: Option<&str>,
        user_id: &str,
        client_id: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<Revocation>, StoreError> {
        self.durable
            .revocations_for(jti, sid, user_id, client_id, now)
            .await
    }

    fn feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        self.redis.feed()
    }
}

#[async_trait]
impl AttemptCounter for SplitStore {
    async fn hit(&self, key: &str, window_secs: i64) -> Result<(u32, i64), StoreError> {
        self.redis.hit(key, window_secs).await
    }

    async fn refund(&self, key: &str) -> Result<(), StoreError> {
        self.redis.refund(key).await
    }

    async fn peek(&self, key: &str) -> Result<(u32, i64), StoreError> {
        self.redis.peek(key).await
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.redis.reset(key).await
    }
}

/// Replay markers live in Redis, where every instance sees them and they expire by themselves.
#[async_trait]
impl ReplayStore for SplitStore {
    async fn remember_once(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.redis.remember_once(key, expires_at, now).await
    }

    async fn forget_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.redis.forget_expired(now).await
    }
}

#[async_trait]
impl CodeStore for SplitStore {
    async fn insert_code(
        &self,
        hash: &TokenHash,
        code: &AuthorizationCode,
    ) -> Result<(), StoreError> {
        self.durable.insert_code(hash, code).await
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: UnixTime,
    ) -> Result<Option<Redemption>, StoreError> {
        self.durable.redeem_code(hash, now).await
    }

    async fn delete_expired_codes(&self, before: UnixTime) -> Result<u64, StoreError> {
        self.durable.delete_expired_codes(before).await
    }
}
