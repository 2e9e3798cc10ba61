//! Storage for Tessera: small async traits, one conformance suite, several backends.
//!
//! Each trait covers one kind of record (users, sessions, refresh families, revocations,
//! signing keys, OAuth clients, audit events) and has few methods. The operations that must be atomic when several server
//! instances race — refresh rotation above all — are single trait methods, so each backend
//! enforces atomicity with its own tools (a mutex, a transaction, `SELECT … FOR UPDATE`), never
//! the caller with an in-process lock. Stores see only hashes of opaque tokens.
//!
//! Every backend must pass `conformance::run_all` (feature `conformance`).
//!
//! Backends other than memory are cargo features: `sqlite` (the default), `postgres` and
//! `redis`. [`open::open`] picks the backends a deployment's URLs name.

#![forbid(unsafe_code)]

use std::sync::Arc;

use async_trait::async_trait;
use tessera_core::authorization::AuthorizationCode;
use tessera_core::client::{ClientId, ClientRecord};
use tessera_core::keys::{KeyRecord, KeyStatus};
use tessera_core::opaque::TokenHash;
use tessera_core::refresh::RefreshFamily;
use tessera_core::revocation::Revocation;
use tessera_core::session::Session;
use tessera_core::time::UnixTime;

pub mod attempts;
pub mod audit;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod memory;
pub mod open;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
#[cfg(feature = "redis")]
pub mod split;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use audit::{AuditEvent, AuditQuery, AuditRecord, AuditStore};

/// A boxed error from a backend, kept whole as the `source` of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule was broken (the name says which: `"username"`, `"kid"`, …).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The backend could not be reached; the caller may retry later.
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored record could not be decoded.
    #[error("corrupt record in {0}")]
    Corrupt(&'static str),
    /// Any other backend failure.
    #[error("store backend error")]
    Backend(#[source] BoxError),
}

/// A registered user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Stable identifier (the `sub` claim).
    pub id: String,
    /// Login name, unique, stored as the server normalised it.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// May use the admin API.
    pub is_admin: bool,
    /// Registration time.
    pub created_at: UnixTime,
    /// Raised by every action that ends all of the user's credentials (password change,
    /// sign out everywhere, user revoke): a login whose password check started under an older
    /// epoch lost a race with such an action and must not leave a session behind.
    pub credential_epoch: i64,
    /// Disabled by an administrator: every credential was ended when it was set (the
    /// credential epoch moved with it), and logins are refused while it stays set.
    pub disabled: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("is_admin", &self.is_admin)
            .field("credential_epoch", &self.credential_epoch)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// Users.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Inserts a user. [`StoreError::Conflict`]`("username")` if the name is taken.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    /// The user with this exact (normalised) name.
    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError>;
    /// The user with this id.
    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// Replaces a user's password hash; `false` if there is no such user.
    async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError>;
    /// Atomically raises the user's credential epoch by one; `false` if there is no such user.
    async fn bump_credential_epoch(&self, user_id: &str) -> Result<bool, StoreError>;
    /// Atomically marks the user disabled and raises their credential epoch by one (so a
    /// login whose password check began before cannot keep its session); `false` if there is
    /// no such user. Disabling a disabled user raises the epoch again and is otherwise a no-op.
    async fn disable_user(&self, user_id: &str) -> Result<bool, StoreError>;
    /// At most `limit` users whose name contains `fragment` (a plain substring: no wildcard
    /// characters), ordered by name. An empty fragment matches every user.
    async fn search_users(&self, fragment: &str, limit: u32) -> Result<Vec<User>, StoreError>;
}

/// Login sessions.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a session.
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;
    /// The session whose bearer token has this hash.
    async fn session_by_token(&self, token: &TokenHash) -> Result<Option<Session>, StoreError>;
    /// The session with this public id.
    async fn session_by_id(&self, id: &str) -> Result<Option<Session>, StoreError>;
    /// Records use of a session.
    async fn touch_session(&self, id: &str, last_seen: UnixTime) -> Result<(), StoreError>;
    /// Every stored session of a user, oldest first.
    async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError>;
    /// Deletes a session; returns it if it existed.
    async fn delete_session(&self, id: &str) -> Result<Option<Session>, StoreError>;
    /// Deletes sessions that are dead at `now` (past `dead_at`); returns how many.
    async fn delete_dead_sessions(
        &self,
        now: UnixTime,
        policy: &tessera_core::session::SessionPolicy,
    ) -> Result<u64, StoreError>;
    /// How many sessions are stored, dead ones not yet deleted included (the server counts
    /// right after [`SessionStore::delete_dead_sessions`], for its `/metrics` gauge). A full
    /// count: call it rarely.
    async fn count_sessions(&self) -> Result<u64, StoreError>;
}

/// What presenting a refresh token did (see [`tessera_core::refresh::transition`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The current token was rotated: the successor offered by the caller is now current.
    Rotated(RefreshFamily),
    /// The one retry of the previous token the grace window allows: `sealed` is the successor
    /// handed out the first time, for the caller to open with the presented token. The store
    /// no longer holds it, so any further presentation of that token is reuse.
    GraceRetry {
        /// The family after the retry (its sealed successor cleared).
        family: RefreshFamily,
        /// The sealed successor.
        sealed: Vec<u8>,
    },
    /// Reuse of a retired token: the family is now revoked.
    Reused(RefreshFamily),
    /// Unknown token, or a revoked or expired family. Nothing changed.
    Refused,
}

/// The successor a caller offers when presenting a refresh token.
#[derive(Clone, Debug)]
pub struct Successor {
    /// Hash of the new token.
    pub hash: TokenHash,
    /// The new token sealed under the presented one ([`tessera_core::refresh::seal_successor`]).
    pub sealed: Vec<u8>,
}

/// Refresh-token families.
#[async_trait]
pub trait RefreshStore: Send + Sync + 'static {
    /// Inserts a family with its generation-0 token.
    async fn create_family(
        &self,
        family: &RefreshFamily,
        first_token: &TokenHash,
    ) -> Result<(), StoreError>;
    /// Atomically applies [`tessera_core::refresh::transition`] to the presented token and
    /// records the result. Under any number of concurrent callers on one token, at most one gets
    /// [`RotateOutcome::Rotated`].
    async fn rotate(
        &self,
        presented: &TokenHash,
        now: UnixTime,
        grace_secs: i64,
        successor: &Successor,
    ) -> Result<RotateOutcome, StoreError>;
    /// The family a token belongs to and the token's generation, whatever the family's state.
    async fn family_by_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(RefreshFamily, u32)>, StoreError>;
    /// Marks a family revoked (idempotent).
    async fn revoke_family(&self, family_id: &str, now: UnixTime) -> Result<(), StoreError>;
    /// Marks every family of a login session revoked.
    async fn revoke_families_of_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError>;
    /// Deletes families (and their token hashes) past their absolute end; returns how many.
    async fn delete_expired_families(&self, now: UnixTime) -> Result<u64, StoreError>;
    /// Clears the sealed successor of every family that no longer needs it at `now`
    /// ([`tessera_core::refresh::keeps_sealed_successor`]: revoked, or the grace window of
    /// `grace_secs` passed), so a database dump plus a leaked previous-generation token cannot
    /// yield a current token. Returns how many were cleared. For the periodic sweep.
    async fn clear_stale_successors(
        &self,
        now: UnixTime,
        grace_secs: i64,
    ) -> Result<u64, StoreError>;
}

/// The durable revocation list.
#[async_trait]
pub trait RevocationStore: Send + Sync + 'static {
    /// Records a revocation (idempotent).
    async fn add_revocation(&self, revocation: &Revocation) -> Result<(), StoreError>;
    /// Every revocation still in force at `now`.
    async fn revocations(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError>;
    /// Deletes revocations that expired before `now`; returns how many.
    async fn prune_revocations(&self, now: UnixTime) -> Result<u64, StoreError>;

    /// The revocations in force at `now` that name this `jti`, `sid`, user, or the client
    /// the credential was issued to (a principal cutoff names either: see
    /// [`Revocation::User`]): how one credential is checked against the store directly while
    /// the push feed is down. Backends should override this default (a full scan) with an
    /// indexed lookup.
    async fn revocations_for(
        &self,
        jti: &str,
        sid: Option<&str>,
        user_id: &str,
        client_id: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<Revocation>, StoreError> {
        let all = self.revocations(now).await?;
        Ok(all
            .into_iter()
            .filter(|r| match r {
                Revocation::Token { jti: j, .. } => j == jti,
                Revocation::Session { sid: s, .. } => Some(s.as_str()) == sid,
                Revocation::User { user_id: u, .. } => {
                    u == user_id || Some(u.as_str()) == client_id
                }
                // Key revocations also mark the key revoked in the key store, which every
                // instance reloads; they are not looked up per credential.
                Revocation::Key { .. } => false,
            })
            .collect())
    }

    /// The push feed of revocations recorded by any instance, if this backend has one. Backends
    /// with a feed publish from [`RevocationStore::add_revocation`] itself (in the same
    /// transaction or script as the write), so no revocation is stored without being announced.
    fn feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        None
    }
}

/// What a revocation feed reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedEvent {
    /// The subscription is (re)established. Anything may have been missed before it: the
    /// follower reloads the list from the store and merges it.
    Connected,
    /// A revocation recorded by some instance.
    Revoked(Revocation),
    /// The subscription broke; the feed keeps reconnecting by itself. Until the next
    /// `Connected`, the follower must not trust its in-memory list alone.
    Disconnected,
}

/// A push feed of revocations (Redis pub/sub, PostgreSQL `LISTEN/NOTIFY`): an optional
/// capability of a revocation store.
pub trait RevocationFeed: Send + Sync + 'static {
    /// Starts following the feed on a background task, which reconnects with backoff after
    /// failures and reports them as events. Following stops when the receiver is dropped.
    fn follow(&self) -> tokio::sync::mpsc::Receiver<FeedEvent>;
}

/// Signing keys. Their private parts are stored as the server hands them over: sealed under
/// a key-encryption key the store never sees (see [`tessera_core::keys::kek`]).
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Every key, any status.
    async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Inserts a key. [`StoreError::Conflict`]`("kid")` if the kid exists.
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    /// Inserts `key` only if no stored key has its status, which must be `current` or `next`
    /// (the statuses one key holds at a time); returns whether it was inserted. Lets instances
    /// starting together agree on one first key, and instances publishing a successor agree
    /// on one `next` key.
    async fn insert_key_if_vacant(&self, key: &KeyRecord) -> Result<bool, StoreError>;
    /// Moves key `kid` from status `from` to `to`, stamping `status_since` with `at`, only if
    /// it is still in `from`; returns whether it moved (`false`: no such key, or another
    /// writer moved it first). The compare-and-set that lets instances following one schedule
    /// agree on a single winner for each change.
    async fn set_key_status(
        &self,
        kid: &str,
        from: KeyStatus,
        to: KeyStatus,
        at: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Replaces key `kid`'s stored secret with `new` only if it is still exactly `expected`;
    /// returns whether it was replaced. A compare-and-set, so instances sealing legacy keys
    /// or an operator re-wrapping them never overwrite each other's work.
    async fn replace_key_secret(
        &self,
        kid: &str,
        expected: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError>;
}

/// The registry of OAuth clients. A store keeps records as validated by
/// [`ClientRecord::validate`], and of a confidential client's secret only its hash.
#[async_trait]
pub trait ClientStore: Send + Sync + 'static {
    /// Inserts a client. [`StoreError::Conflict`]`("client_id")` if the id exists.
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;
    /// The client with this id.
    async fn client(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError>;
    /// Every client, oldest first; clients registered in the same second in insertion order.
    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError>;
    /// Deletes a client's registration; `false` if there was none.
    ///
    /// Only the registration goes: refresh families and access tokens already issued to the
    /// client are not revoked by this method. Ending them, so that every instance refuses
    /// them, is the server's `service::delete_client` flow, which records the revocation
    /// before it calls this.
    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError>;
}

/// One-time markers that expire: the replay cache of DPoP proofs, shared by every instance
/// that shares the backend. Keys are short digests made by the caller (never a credential).
#[async_trait]
pub trait ReplayStore: Send + Sync + 'static {
    /// Records `key` until `expires_at`. `true` if it was not recorded yet (or its record had
    /// expired by `now`): the caller is the first to present it. `false` while it is
    /// remembered. Atomic: of any number of concurrent callers with one key, exactly one gets
    /// `true`. A record is never forgotten before `expires_at`.
    async fn remember_once(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Deletes the records expired at `now`; returns how many. Backends whose records expire
    /// by themselves (Redis key expiry) return 0. For the periodic sweep.
    async fn forget_expired(&self, now: UnixTime) -> Result<u64, StoreError>;
}

/// What a redemption of an authorization code found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redemption {
    /// This call used the code: it is the only one that ever will.
    First(AuthorizationCode),
    /// The code had been used before: whatever the first use issued must end.
    Again(AuthorizationCode),
}

/// Authorization codes (OAuth 2.1 §4.1), stored under the hash of their `tac_` token and used
/// at most once, whatever the concurrency.
#[async_trait]
pub trait CodeStore: Send + Sync + 'static {
    /// Stores a fresh code. [`StoreError::Conflict`]`("code")` if the hash exists.
    async fn insert_code(
        &self,
        hash: &TokenHash,
        code: &AuthorizationCode,
    ) -> Result<(), StoreError>;
    /// Marks the code used at `now`, atomically: of any number of concurrent calls exactly one
    /// gets [`Redemption::First`]. `None` for an unknown (or swept) code. Lifetime and PKCE are
    /// the caller's checks ([`AuthorizationCode::redeem`]).
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: UnixTime,
    ) -> Result<Option<Redemption>, StoreError>;
    /// Deletes codes that expired before `before`; returns how many.
    async fn delete_expired_codes(&self, before: UnixTime) -> Result<u64, StoreError>;
}

/// Everything a Tessera server needs from storage.
pub trait Store:
    UserStore
    + SessionStore
    + RefreshStore
    + RevocationStore
    + KeyStore
    + ClientStore
    + AuditStore
    + ReplayStore
    + CodeStore
{
}

impl<
    T: UserStore
        + SessionStore
        + RefreshStore
        + RevocationStore
        + KeyStore
        + ClientStore
        + AuditStore
        + ReplayStore
        + CodeStore,
> Store for T
{
}

/// Fixed-window attempt counters for login throttling, shared by every instance that uses the
/// same backend. Windows are kept by the backend's own clock (Redis key expiry, or the
/// process clock for the in-memory counter).
///
/// Callers reserve before they verify: [`AttemptCounter::hit`] counts an attempt *before* the
/// password is checked — so concurrent guesses cannot all pass a check of the count made
/// before any of them was counted — and [`AttemptCounter::refund`] takes it back when the
/// password was right.
#[async_trait]
pub trait AttemptCounter: Send + Sync + 'static {
    /// Counts one attempt against `key`, opening a window of `window_secs` if none is open;
    /// returns the count in the window and the seconds left in it. Atomic: concurrent hits on
    /// one key get distinct counts.
    async fn hit(&self, key: &str, window_secs: i64) -> Result<(u32, i64), StoreError>;
    /// Takes back one attempt counted in `key`'s open window: the count drops by one, never
    /// below zero. Without an open window it does nothing (and opens none).
    async fn refund(&self, key: &str) -> Result<(), StoreError>;
    /// The count in `key`'s open window and the seconds left in it (`(0, 0)` if none).
    async fn peek(&self, key: &str) -> Result<(u32, i64), StoreError>;
    /// Closes `key`'s window.
    async fn reset(&self, key: &str) -> Result<(), StoreError>;
}
