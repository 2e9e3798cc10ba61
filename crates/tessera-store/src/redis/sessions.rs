//! [`SessionStore`] on Redis.
//!
//! Design decision: a session is stored twice, as the **record** `ns:{u:<U>}:s:S` in its
//! user's slot (with the user's index: listing, sweeping) and as the **copy** `ns:sc:<token
//! hash>` (lookup by token: one `HGETALL`, one round trip, on one node or a cluster). The two
//! live in different slots, so no script can change both; instead every step is ordered so
//! that the copy — what authenticates a request — is never more alive than the record:
//!
//! - `create` claims the id pointer (`SET NX`), writes the record, and only then claims the
//!   copy; a crash in between leaves a record no token can find (fail closed);
//! - `delete` drops the copy **first**, then the record, then the id pointer: once the copy is
//!   gone no lookup by token can return the session, whatever happens after;
//! - `touch` updates the record, then the copy, each with a script that never creates the hash,
//!   so a touch racing a delete cannot bring the session back;
//! - the sweep drops a dead session's copy only if its `last_seen` is the one the sweep judged
//!   (a session used since is kept), then deletes the record.
//!
//! Lookup by id (`si:` pointer, then the record) stays two round trips; it is not on the
//! per-request path.

use std::collections::HashMap;

use async_trait::async_trait;
use redis::AsyncCommands;
use tessera_core::opaque::TokenHash;
use tessera_core::session::{Session, SessionPolicy};
use tessera_core::time::UnixTime;

use super::keys::hex;
use super::session_record::{
    ADD_MEMBER, CLAIM_COPY, CREATE, DELETE, DROP_COPY, TOUCH, fields, from_fields,
};
use super::{RedisStore, map_err, ttl_secs};
use crate::{SessionStore, StoreError};

/// How many users one `SSCAN` step of the sweep returns.
const SWEEP_BATCH: usize = 100;

/// The session id in an index member `<seq hex>:<sid>`.
fn sid_of_member(member: &str) -> Option<&str> {
    member.split_once(':').map(|(_, sid)| sid)
}

impl RedisStore {
    /// The record of `sid` owned by the user `user_hex`, if present.
    async fn record(&self, user_hex: &str, sid: &str) -> Result<Option<Session>, StoreError> {
        let map: HashMap<String, String> = self
            .conn()
            .hgetall(self.keys.session_hex(user_hex, sid))
            .await
            .map_err(map_err)?;
        from_fields(map)
    }

    /// Deletes a session: its copy first (if `expect_last_seen` is given, only if the copy's
    /// `last_seen` still is that — otherwise nothing is deleted), then its record and index
    /// entry, then its id pointer. Returns the deleted session.
    async fn delete_record(
        &self,
        user_hex: &str,
        sid: &str,
        expect_last_seen: Option<UnixTime>,
    ) -> Result<Option<Session>, StoreError> {
        let mut conn = self.conn();
        let record = self.keys.session_hex(user_hex, sid);
        let expect = expect_last_seen.map_or_else(String::new, |t| t.0.to_string());
        let token: Option<String> = conn.hget(&record, "token").await.map_err(map_err)?;
        let record_expect = match &token {
            Some(token_hex) => {
                let dropped: i64 = DROP_COPY
                    .key(self.keys.token(token_hex))
                    .arg(&expect)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(map_err)?;
                if dropped == 0 {
                    return Ok(None);
                }
                // No token finds the session any more: the record goes too, whatever a
                // touch did to it meanwhile, so that it is not listed as alive.
                String::new()
            }
            None => expect,
        };
        let map: HashMap<String, String> = DELETE
            .key(&record)
            .key(self.keys.user_index_hex(user_hex))
            .arg(record_expect)
            .invoke_async(&mut conn)
            .await
            .map_err(map_err)?;
        let deleted = from_fields(map)?;
        if deleted.is_some() {
            let () = conn
                .del(self.keys.session_owner(sid))
                .await
                .map_err(map_err)?;
        }
        Ok(deleted)
    }

    /// One `SSCAN` step over the users with sessions: the next cursor (0: done) and a batch.
    async fn session_users_from(&self, cursor: u64) -> Result<(u64, Vec<String>), StoreError> {
        redis::cmd("SSCAN")
            .arg(self.keys.session_users())
            .arg(cursor)
            .arg("COUNT")
            .arg(SWEEP_BATCH)
            .query_async(&mut self.conn())
            .await
            .map_err(map_err)
    }

    /// Sweeps one user's sessions: drops index members whose records are gone and deletes the
    /// sessions dead at `now`; returns how many sessions it deleted.
    async fn sweep_user(
        &self,
        user_hex: &str,
        now: UnixTime,
        policy: &SessionPolicy,
    ) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let index = self.keys.user_index_hex(user_hex);
        let members: Vec<String> = conn.zrange(&index, 0, -1).await.map_err(map_err)?;
        let mut pipe = redis::pipe();
        for member in &members {
            let sid = sid_of_member(member).unwrap_or_default();
            pipe.hgetall(self.keys.session_hex(user_hex, sid));
        }
        let records: Vec<HashMap<String, String>> = if members.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn).await.map_err(map_err)?
        };
        let mut deleted = 0u64;
        for (member, record) in members.iter().zip(records) {
            let sid = sid_of_member(member).unwrap_or_default();
            match from_fields(record) {
                // Expired by TTL (or never completed): only the index entry is left.
                Ok(None) => {
                    let () = conn.zrem(&index, member).await.map_err(map_err)?;
                }
                Ok(Some(s)) if s.dead_at(policy) <= now => {
                    if self
                        .delete_record(user_hex, sid, Some(s.last_seen))
                        .await?
                        .is_some()
                    {
                        deleted = deleted.saturating_add(1);
                    }
                }
                Ok(Some(_)) => {}
                Err(e) => {
                    tracing::error!(error = %e, "undecodable session record left in place");
                }
            }
        }
        // Forget the user once they have no sessions. A concurrent create writes its record
        // before adding the user, so re-checking after the removal cannot lose it.
        if !conn.exists::<_, bool>(&index).await.map_err(map_err)? {
            let users = self.keys.session_users();
            let () = conn.srem(&users, user_hex).await.map_err(map_err)?;
            if conn.exists::<_, bool>(&index).await.map_err(map_err)? {
                let () = conn.sadd(&users, user_hex).await.map_err(map_err)?;
            }
        }
        Ok(deleted)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let ttl = ttl_secs(s.expires_at.since(s.created_at));
        let ttl_u = u64::try_from(ttl).unwrap_or(1);
        let user_hex = hex(&s.user_id);
        let owner = self.keys.session_owner(&s.id);
        let set_nx = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::EX(ttl_u));

        let claimed: Option<String> = conn
            .set_options(&owner, &user_hex, set_nx)
            .await
            .map_err(map_err)?;
        if claimed.is_none() {
            return Err(StoreError::Conflict("session"));
        }
        let record = fields(s);
        let mut create = CREATE.prepare_invoke();
        create
            .key(self.keys.session_hex(&user_hex, &s.id))
            .key(self.keys.user_index_hex(&user_hex))
            .key(self.keys.user_seq_hex(&user_hex))
            .arg(ttl)
            .arg(s.created_at.0)
            .arg(&s.id);
        for (name, value) in &record {
            create.arg(*name).arg(value);
        }
        let written: i64 = create.invoke_async(&mut conn).await.map_err(map_err)?;
        if written == 0 {
            let () = conn.del(&owner).await.map_err(map_err)?;
            return Err(StoreError::Conflict("session"));
        }

        if let Some(h) = s.token_hash {
            let mut claim = CLAIM_COPY.prepare_invoke();
            claim.key(self.keys.token(&h.to_hex())).arg(ttl);
            for (name, value) in &record {
                claim.arg(*name).arg(value);
            }
            let claimed: i64 = claim.invoke_async(&mut conn).await.map_err(map_err)?;
            if claimed == 0 {
                // Another session holds this token hash: take this one back.
                let _: HashMap<String, String> = DELETE
                    .key(self.keys.session_hex(&user_hex, &s.id))
                    .key(self.keys.user_index_hex(&user_hex))
                    .arg("")
                    .invoke_async(&mut conn)
                    .await
                    .map_err(map_err)?;
                let () = conn.del(&owner).await.map_err(map_err)?;
                return Err(StoreError::Conflict("session"));
            }
        }

        let _: i64 = ADD_MEMBER
            .key(self.keys.session_users())
            .arg(&user_hex)
            .arg(ttl)
            .invoke_async(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn session_by_token(&self, token: &TokenHash) -> Result<Option<Session>, StoreError> {
        let copy: HashMap<String, String> = self
            .conn()
            .hgetall(self.keys.token(&token.to_hex()))
            .await
            .map_err(map_err)?;
        Ok(from_fields(copy)?.filter(|s| s.token_hash.as_ref() == Some(token)))
    }

    async fn session_by_id(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let user_hex: Option<String> = self
            .conn()
            .get(self.keys.session_owner(id))
            .await
            .map_err(map_err)?;
        match user_hex {
            Some(u) => self.record(&u, id).await,
            None => Ok(None),
        }
    }

    async fn touch_session(&self, id: &str, last_seen: UnixTime) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let user_hex: Option<String> = conn
            .get(self.keys.session_owner(id))
            .await
            .map_err(map_err)?;
        let Some(u) = user_hex else {
            return Ok(());
        };
        let token: Option<String> = TOUCH
            .key(self.keys.session_hex(&u, id))
            .arg(last_seen.0)
            .invoke_async(&mut conn)
            .await
            .map_err(map_err)?;
        if let Some(token_hex) = token.filter(|t| !t.is_empty()) {
            let _: Option<String> = TOUCH
                .key(self.keys.token(&token_hex))
                .arg(last_seen.0)
                .invoke_async(&mut conn)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        let mut conn = self.conn();
        let user_hex = hex(user_id);
        // Score `created_at`, ties by the zero-padded insertion counter in the member.
        let members: Vec<String> = conn
            .zrange(self.keys.user_index_hex(&user_hex), 0, -1)
            .await
            .map_err(map_err)?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for member in &members {
            pipe.hgetall(
                self.keys
                    .session_hex(&user_hex, sid_of_member(member).unwrap_or_default()),
            );
        }
        let records: Vec<HashMap<String, String>> =
            pipe.query_async(&mut conn).await.map_err(map_err)?;
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            // Records deleted or expired since the index was read are skipped.
            if let Some(s) = from_fields(record)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    async fn delete_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let owner = self.keys.session_owner(id);
        let user_hex: Option<String> = self.conn().get(&owner).await.map_err(map_err)?;
        let Some(user_hex) = user_hex else {
            return Ok(None);
        };
        let deleted = self.delete_record(&user_hex, id, None).await?;
        if deleted.is_none() {
            // A pointer to nothing (an interrupted create or delete): tidy it.
            let () = self.conn().del(&owner).await.map_err(map_err)?;
        }
        Ok(deleted)
    }

    async fn delete_dead_sessions(
        &self,
        now: UnixTime,
        policy: &SessionPolicy,
    ) -> Result<u64, StoreError> {
        let mut cursor = 0u64;
        let mut deleted = 0u64;
        loop {
            let (next, users) = self.session_users_from(cursor).await?;
            for user_hex in &users {
                deleted = deleted.saturating_add(self.sweep_user(user_hex, now, policy).await?);
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    /// The sizes of every user's session index (one `ZCARD` per user with sessions): members
    /// whose record expired by TTL count until a sweep drops them.
    async fn count_sessions(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let mut cursor = 0u64;
        let mut count = 0u64;
        // SSCAN may return a member twice; each user is counted once.
        let mut seen = std::collections::HashSet::new();
        loop {
            let (next, users) = self.session_users_from(cursor).await?;
            for user_hex in users {
                if seen.insert(user_hex.clone()) {
                    let n: u64 = conn
                        .zcard(self.keys.user_index_hex(&user_hex))
                        .await
                        .map_err(map_err)?;
                    count = count.saturating_add(n);
                }
            }
            if next == 0 {
                return Ok(count);
            }
            cursor = next;
        }
    }
}
