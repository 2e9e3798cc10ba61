//! An in-process store: every record in `HashMap`s, for tests, development and single-instance
//! demos. Nothing survives a restart.
//!
//! Design decision: all tables sit behind **one** `std::sync::Mutex`, so every trait method —
//! refresh rotation above all — is one critical section and therefore atomic. The lock is never
//! held across an `.await` (no method awaits while holding it), and a poisoned lock is recovered
//! rather than propagated: no method can panic half-way through an update, so the data behind a
//! poisoned lock is still consistent.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tessera_core::authorization::AuthorizationCode;
use tessera_core::client::{ClientId, ClientRecord};
use tessera_core::keys::{KeyRecord, KeyStatus};
use tessera_core::opaque::TokenHash;
use tessera_core::refresh::{RefreshFamily, Transition, keeps_sealed_successor, transition};
use tessera_core::revocation::Revocation;
use tessera_core::session::{Session, SessionPolicy};
use tessera_core::time::UnixTime;

mod audit;

use crate::{
    ClientStore, CodeStore, KeyStore, Redemption, RefreshStore, ReplayStore, RevocationStore,
    RotateOutcome, SessionStore, StoreError, Successor, User, UserStore,
};

/// Which kind of revocation an entry is; with the key, the identity of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RevocationKind {
    Token,
    Session,
    User,
    Key,
}

/// A stored revocation: `not_before` only for user cutoffs.
#[derive(Clone, Copy, Debug)]
struct RevocationEntry {
    not_before: Option<UnixTime>,
    expires_at: UnixTime,
}

#[derive(Default)]
struct Tables {
    users: HashMap<String, User>,
    user_ids_by_name: HashMap<String, String>,
    /// Session id → (insertion sequence, session); the sequence breaks ties in `created_at`.
    sessions: HashMap<String, (u64, Session)>,
    session_ids_by_token: HashMap<TokenHash, String>,
    next_sequence: u64,
    families: HashMap<String, RefreshFamily>,
    /// Token hash → (family id, generation).
    refresh_tokens: HashMap<TokenHash, (String, u32)>,
    revocations: HashMap<(RevocationKind, String), RevocationEntry>,
    /// In insertion order.
    keys: Vec<KeyRecord>,
    /// In insertion order.
    clients: Vec<ClientRecord>,
    /// Replay markers: key → expiry.
    replays: HashMap<String, UnixTime>,
    /// Code hash → (code, used).
    codes: HashMap<TokenHash, (AuthorizationCode, bool)>,
}

/// The most replay markers kept at once. Past it, expired markers are swept on the spot; if
/// every one is still live, the new one is refused as a store failure (so the caller fails
/// closed) rather than growing without bound.
pub const MAX_REPLAY_MARKERS: usize = 200_000;

/// A store that keeps everything in process memory.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    /// The audit log, apart: no operation needs it atomically with the other tables.
    audit: Mutex<audit::Log>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // See the module docs: no method panics mid-update, so a poisoned lock guards
        // consistent data.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.user_ids_by_name.contains_key(&user.username) {
            return Err(StoreError::Conflict("username"));
        }
        if t.users.contains_key(&user.id) {
            return Err(StoreError::Conflict("user id"));
        }
        t.user_ids_by_name
            .insert(user.username.clone(), user.id.clone());
        t.users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let t = self.lock();
        Ok(t.user_ids_by_name
            .get(username)
            .and_then(|id| t.users.get(id))
            .cloned())
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.get(id).cloned())
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut t = self.lock();
        Ok(t.users.get_mut(user_id).is_some_and(|u| {
            password_hash.clone_into(&mut u.password_hash);
            true
        }))
    }

    async fn bump_credential_epoch(&self, user_id: &str) -> Result<bool, StoreError> {
        let mut t = self.lock();
        Ok(t.users.get_mut(user_id).is_some_and(|u| {
            u.credential_epoch = u.credential_epoch.saturating_add(1);
            true
        }))
    }

    async fn disable_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let mut t = self.lock();
        Ok(t.users.get_mut(user_id).is_some_and(|u| {
            u.disabled = true;
            u.credential_epoch = u.credential_epoch.saturating_add(1);
            true
        }))
    }

    async fn search_users(&self, fragment: &str, limit: u32) -> Result<Vec<User>, StoreError> {
        let t = self.lock();
        let mut found: Vec<User> = t
            .users
            .values()
            .filter(|u| u.username.contains(fragment))
            .cloned()
            .collect();
        found.sort_by(|a, b| a.username.cmp(&b.username));
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(found)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.sessions.contains_key(&session.id)
            || session
                .token_hash
                .is_some_and(|h| t.session_ids_by_token.contains_key(&h))
        {
            return Err(StoreError::Conflict("session"));
        }
        if let Some(h) = session.token_hash {
            t.session_ids_by_token.insert(h, session.id.clone());
        }
        let seq = t.next_sequence;
        t.next_sequence = seq.saturating_add(1);
        t.sessions
            .insert(session.id.clone(), (seq, session.clone()));
        Ok(())
    }

    async fn session_by_token(&self, token: &TokenHash) -> Result<Option<Session>, StoreError> {
        let t = self.lock();
        Ok(t.session_ids_by_token
            .get(token)
            .and_then(|id| t.sessions.get(id))
            .map(|(_, s)| s.clone()))
    }

    async fn session_by_id(&self, id: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.lock().sessions.get(id).map(|(_, s)| s.clone()))
    }

    async fn touch_session(&self, id: &str, last_seen: UnixTime) -> Result<(), StoreError> {
        if let Some((_, s)) = self.lock().sessions.get_mut(id) {
            s.last_seen = last_seen;
        }
        Ok(())
    }

    async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        let t = self.lock();
        let mut found: Vec<&(u64, Session)> = t
            .sessions
            .values()
            .filter(|(_, s)| s.user_id == user_id)
            .collect();
        found.sort_by_key(|(seq, s)| (s.created_at, *seq));
        Ok(found.into_iter().map(|(_, s)| s.clone()).collect())
    }

    async fn delete_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let mut t = self.lock();
        let removed = t.sessions.remove(id).map(|(_, s)| s);
        if let Some(h) = removed.as_ref().and_then(|s| s.token_hash) {
            t.session_ids_by_token.remove(&h);
        }
        Ok(removed)
    }

    async fn delete_dead_sessions(
        &self,
        now: UnixTime,
        policy: &SessionPolicy,
    ) -> Result<u64, StoreError> {
        let mut t = self.lock();
        let dead: Vec<String> = t
            .sessions
            .values()
            .filter(|(_, s)| s.dead_at(policy) <= now)
            .map(|(_, s)| s.id.clone())
            .collect();
        for id in &dead {
            if let Some(h) = t.sessions.remove(id).and_then(|(_, s)| s.token_hash) {
                t.session_ids_by_token.remove(&h);
            }
        }
        Ok(u64::try_from(dead.len()).unwrap_or(u64::MAX))
    }

    async fn count_sessions(&self) -> Result<u64, StoreError> {
        Ok(u64::try_from(self.lock().sessions.len()).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl RefreshStore for MemoryStore {
    async fn create_family(
        &self,
        family: &RefreshFamily,
        first_token: &TokenHash,
    ) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.families.contains_key(&family.id) {
            return Err(StoreError::Conflict("refresh family"));
        }
        if t.refresh_tokens.contains_key(first_token) {
            return Err(StoreError::Conflict("refresh token"));
        }
        t.refresh_tokens
            .insert(*first_token, (family.id.clone(), family.generation));
        t.families.insert(family.id.clone(), family.clone());
        Ok(())
    }

    async fn rotate(
        &self,
        presented: &TokenHash,
        now: UnixTime,
        grace_secs: i64,
        successor: &Successor,
    ) -> Result<RotateOutcome, StoreError> {
        let mut t = self.lock();
        let Some((family_id, generation)) = t.refresh_tokens.get(presented).cloned() else {
            return Ok(RotateOutcome::Refused);
        };
        let Some(family) = t.families.get(&family_id).cloned() else {
            return Ok(RotateOutcome::Refused);
        };
        match transition(family, generation, now, grace_secs, &successor.sealed) {
            Transition::Rotate(rotated) => {
                if t.refresh_tokens.contains_key(&successor.hash) {
                    return Err(StoreError::Conflict("refresh token"));
                }
                t.refresh_tokens
                    .insert(successor.hash, (rotated.id.clone(), rotated.generation));
                t.families.insert(rotated.id.clone(), rotated.clone());
                Ok(RotateOutcome::Rotated(rotated))
            }
            Transition::Replay { family, sealed } => {
                t.families.insert(family.id.clone(), family.clone());
                Ok(RotateOutcome::GraceRetry { family, sealed })
            }
            Transition::Revoke(revoked) => {
                t.families.insert(revoked.id.clone(), revoked.clone());
                Ok(RotateOutcome::Reused(revoked))
            }
            Transition::Refuse => Ok(RotateOutcome::Refused),
        }
    }

    async fn family_by_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(RefreshFamily, u32)>, StoreError> {
        let t = self.lock();
        Ok(t.refresh_tokens
            .get(token)
            .and_then(|(id, generation)| t.families.get(id).map(|f| (f.clone(), *generation))))
    }

    async fn revoke_family(&self, family_id: &str, now: UnixTime) -> Result<(), StoreError> {
        if let Some(f) = self.lock().families.get_mut(family_id) {
            f.revoked_at.get_or_insert(now);
        }
        Ok(())
    }

    async fn revoke_families_of_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError> {
        for f in self.lock().families.values_mut().filter(|f| f.sid == sid) {
            f.revoked_at.get_or_insert(now);
        }
        Ok(())
    }

    async fn delete_expired_families(&self, now: UnixTime) -> Result<u64, StoreError> {
        let mut t = self.lock();
        let before = t.families.len();
        t.families.retain(|_, f| f.expires_at > now);
        let deleted = before.saturating_sub(t.families.len());
        let Tables {
            families,
            refresh_tokens,
            ..
        } = &mut *t;
        refresh_tokens.retain(|_, (id, _)| families.contains_key(id));
        Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
    }

    async fn clear_stale_successors(
        &self,
        now: UnixTime,
        grace_secs: i64,
    ) -> Result<u64, StoreError> {
        let mut cleared = 0u64;
        for f in self.lock().families.values_mut() {
            if f.sealed_successor.is_some() && !keeps_sealed_successor(f, now, grace_secs) {
                f.sealed_successor = None;
                cleared = cleared.saturating_add(1);
            }
        }
        Ok(cleared)
    }
}

fn revocation_parts(r: &Revocation) -> ((RevocationKind, String), RevocationEntry) {
    match r {
        Revocation::Token { jti, expires_at } => (
            (RevocationKind::Token, jti.clone()),
            RevocationEntry {
                not_before: None,
                expires_at: *expires_at,
            },
        ),
        Revocation::Session { sid, expires_at } => (
            (RevocationKind::Session, sid.clone()),
            RevocationEntry {
                not_before: None,
                expires_at: *expires_at,
            },
        ),
        Revocation::User {
            user_id,
            not_before,
            expires_at,
        } => (
            (RevocationKind::User, user_id.clone()),
            RevocationEntry {
                not_before: Some(*not_before),
                expires_at: *expires_at,
            },
        ),
        Revocation::Key { kid, expires_at } => (
            (RevocationKind::Key, kid.clone()),
            RevocationEntry {
                not_before: None,
                expires_at: *expires_at,
            },
        ),
    }
}

fn revocation_from_parts(kind: RevocationKind, key: &str, e: RevocationEntry) -> Revocation {
    match kind {
        RevocationKind::Token => Revocation::Token {
            jti: key.to_owned(),
            expires_at: e.expires_at,
        },
        RevocationKind::Session => Revocation::Session {
            sid: key.to_owned(),
            expires_at: e.expires_at,
        },
        RevocationKind::User => Revocation::User {
            user_id: key.to_owned(),
            not_before: e.not_before.unwrap_or(UnixTime(i64::MIN)),
            expires_at: e.expires_at,
        },
        RevocationKind::Key => Revocation::Key {
            kid: key.to_owned(),
            expires_at: e.expires_at,
        },
    }
}

#[async_trait]
impl RevocationStore for MemoryStore {
    async fn add_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        let (key, entry) = revocation_parts(revocation);
        let mut t = self.lock();
        let slot = t.revocations.entry(key).or_insert(entry);
        slot.not_before = slot.not_before.max(entry.not_before);
        slot.expires_at = slot.expires_at.max(entry.expires_at);
        Ok(())
    }

    async fn revocations(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        Ok(self
            .lock()
            .revocations
            .iter()
            .filter(|(_, e)| e.expires_at > now)
            .map(|((kind, key), e)| revocation_from_parts(*kind, key, *e))
            .collect())
    }

    async fn prune_revocations(&self, now: UnixTime) -> Result<u64, StoreError> {
        let mut t = self.lock();
        let before = t.revocations.len();
        t.revocations.retain(|_, e| e.expires_at > now);
        Ok(u64::try_from(before.saturating_sub(t.revocations.len())).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(self.lock().keys.clone())
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.keys.iter().any(|k| k.kid == key.kid) {
            return Err(StoreError::Conflict("kid"));
        }
        t.keys.push(key.clone());
        Ok(())
    }

    async fn insert_key_if_vacant(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        let mut t = self.lock();
        if t.keys.iter().any(|k| k.status == key.status) {
            return Ok(false);
        }
        if t.keys.iter().any(|k| k.kid == key.kid) {
            return Err(StoreError::Conflict("kid"));
        }
        t.keys.push(key.clone());
        Ok(true)
    }

    async fn set_key_status(
        &self,
        kid: &str,
        from: KeyStatus,
        to: KeyStatus,
        at: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut t = self.lock();
        Ok(t.keys
            .iter_mut()
            .find(|k| k.kid == kid && k.status == from)
            .is_some_and(|k| {
                k.status = to;
                k.status_since = at;
                true
            }))
    }

    async fn replace_key_secret(
        &self,
        kid: &str,
        expected: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let mut t = self.lock();
        Ok(t.keys
            .iter_mut()
            .find(|k| k.kid == kid && k.secret.as_slice() == expected)
            .is_some_and(|k| {
                k.secret = zeroize::Zeroizing::new(new.to_vec());
                true
            }))
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.clients.iter().any(|c| c.id == client.id) {
            return Err(StoreError::Conflict("client_id"));
        }
        t.clients.push(client.clone());
        Ok(())
    }

    async fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        Ok(self.lock().clients.iter().find(|c| c.id == *id).cloned())
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let mut all = self.lock().clients.clone();
        // Stable: clients of one second stay in insertion order.
        all.sort_by_key(|c| c.created_at);
        Ok(all)
    }

    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        let mut t = self.lock();
        let before = t.clients.len();
        t.clients.retain(|c| c.id != *id);
        Ok(t.clients.len() < before)
    }
}

#[async_trait]
impl ReplayStore for MemoryStore {
    async fn remember_once(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut t = self.lock();
        if t.replays.get(key).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        if t.replays.len() >= MAX_REPLAY_MARKERS {
            t.replays.retain(|_, until| *until > now);
            if t.replays.len() >= MAX_REPLAY_MARKERS {
                return Err(StoreError::Unavailable("replay markers full".into()));
            }
        }
        t.replays.insert(key.to_owned(), expires_at);
        Ok(true)
    }

    async fn forget_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        let mut t = self.lock();
        let before = t.replays.len();
        t.replays.retain(|_, until| *until > now);
        Ok((before - t.replays.len()) as u64)
    }
}

#[async_trait]
impl CodeStore for MemoryStore {
    async fn insert_code(
        &self,
        hash: &TokenHash,
        code: &AuthorizationCode,
    ) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.codes.contains_key(hash) {
            return Err(StoreError::Conflict("code"));
        }
        t.codes.insert(*hash, (code.clone(), false));
        Ok(())
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        _now: UnixTime,
    ) -> Result<Option<Redemption>, StoreError> {
        Ok(self.lock().codes.get_mut(hash).map(|(code, used)| {
            if std::mem::replace(used, true) {
                Redemption::Again(code.clone())
            } else {
                Redemption::First(code.clone())
            }
        }))
    }

    async fn delete_expired_codes(&self, before: UnixTime) -> Result<u64, StoreError> {
        let mut t = self.lock();
        let n = t.codes.len();
        t.codes.retain(|_, (code, _)| code.expires_at >= before);
        Ok((n - t.codes.len()) as u64)
    }
}
