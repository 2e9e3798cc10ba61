//! [`SessionStore`] on Redis.
//!
//! Design decision: the record `ns:{u:<U>}:s:S` (a hash) is the single source of truth and the
//! only thing a change commits through; the pointer keys (`st:` by token, `si:` by id) live in
//! other slots and are followed, then re-checked against the record. So `create` claims the
//! pointers first (`SET NX`, which also detects conflicts) and writes the record last, and
//! `delete` removes the record first (atomically with its index entry, in one script) and the
//! pointers after. A crash between the steps leaves pointers to nothing, which read as "no
//! session" and expire with their TTL.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};
use tessera_core::opaque::TokenHash;
use tessera_core::session::{Session, SessionKind, SessionPolicy};
use tessera_core::time::UnixTime;

use super::keys::hex;
use super::{RedisStore, map_err, ttl_secs};
use crate::{SessionStore, StoreError};

/// What [`StoreError::Corrupt`] names for an undecodable session record.
const TABLE: &str = "redis sessions";

/// How many users one `SSCAN` step of the sweep returns.
const SWEEP_BATCH: usize = 100;

/// Writes a new record and its index entry unless the record exists; extends the index's and
/// counter's TTL to cover it. KEYS: record, index, counter. ARGV: ttl, created_at, sid, then
/// the record's field/value pairs. Returns 1 if written, 0 if the record existed.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ttl = tonumber(ARGV[1])
local member = string.format('%016x', redis.call('INCR', KEYS[3])) .. ':' .. ARGV[3]
redis.call('HSET', KEYS[1], 'm', member, unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], ARGV[2], member)
for i = 2, 3 do
  if redis.call('TTL', KEYS[i]) < ttl then redis.call('EXPIRE', KEYS[i], ttl) end
end
return 1
",
    )
});

/// Deletes a record and its index entry, returning the record's fields (empty if there was
/// none). With a non-empty ARGV[1], deletes only if `last_seen` still equals it, so a sweep
/// never deletes a session that was used after the sweep read it. KEYS: record, index.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return fields end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'last_seen') ~= ARGV[1] then return {} end
local member = redis.call('HGET', KEYS[1], 'm')
redis.call('DEL', KEYS[1])
if member then redis.call('ZREM', KEYS[2], member) end
return fields
",
    )
});

/// Sets `last_seen` of an existing record (a plain `HSET` would create a stub). KEYS: record.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
return 1
",
    )
});

/// Adds a member to a set and extends the set's TTL to at least ARGV[2]. KEYS: set.
static ADD_MEMBER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('TTL', KEYS[1]) < ttl then redis.call('EXPIRE', KEYS[1], ttl) end
return 1
",
    )
});

/// The record fields of a session (without the index member `m`, which the script adds).
fn fields(s: &Session) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("id", s.id.clone()),
        ("user", s.user_id.clone()),
        ("kind", s.kind.as_str().to_owned()),
        ("created_at", s.created_at.0.to_string()),
        ("last_seen", s.last_seen.0.to_string()),
        ("expires_at", s.expires_at.0.to_string()),
    ];
    if let Some(h) = s.token_hash {
        f.push(("token", h.to_hex()));
    }
    if let Some(ua) = &s.user_agent {
        f.push(("user_agent", ua.clone()));
    }
    if let Some(ip) = &s.ip {
        f.push(("ip", ip.clone()));
    }
    if let Some(client) = &s.client_id {
        f.push(("client", client.clone()));
    }
    f
}

/// A session from its record's fields; `None` for an empty (absent) record.
fn from_fields(mut f: HashMap<String, String>) -> Result<Option<Session>, StoreError> {
    if f.is_empty() {
        return Ok(None);
    }
    let mut take = |name: &str| f.remove(name).ok_or(StoreError::Corrupt(TABLE));
    let time = |v: String| {
        v.parse::<i64>()
            .map(UnixTime)
            .map_err(|_| StoreError::Corrupt(TABLE))
    };
    let id = take("id")?;
    let user_id = take("user")?;
    let kind = SessionKind::parse(&take("kind")?).ok_or(StoreError::Corrupt(TABLE))?;
    let created_at = time(take("created_at")?)?;
    let last_seen = time(take("last_seen")?)?;
    let expires_at = time(take("expires_at")?)?;
    let token_hash = f
        .remove("token")
        .map(|h| TokenHash::from_hex(&h).ok_or(StoreError::Corrupt(TABLE)))
        .transpose()?;
    Ok(Some(Session {
        id,
        token_hash,
        user_id,
        kind,
        created_at,
        last_seen,
        expires_at,
        user_agent: f.remove("user_agent"),
        ip: f.remove("ip"),
        client_id: f.remove("client"),
    }))
}

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

    /// Deletes a record and its index entry (if `last_seen` still is `expect_last_seen`, when
    /// given), then its pointers; returns the deleted session.
    async fn delete_record(
        &self,
        user_hex: &str,
        sid: &str,
        expect_last_seen: Option<UnixTime>,
    ) -> Result<Option<Session>, StoreError> {
        let map: HashMap<String, String> = DELETE
            .key(self.keys.session_hex(user_hex, sid))
            .key(self.keys.user_index_hex(user_hex))
            .arg(expect_last_seen.map_or_else(String::new, |t| t.0.to_string()))
            .invoke_async(&mut self.conn())
            .await
            .map_err(map_err)?;
        let deleted = from_fields(map)?;
        if let Some(s) = &deleted {
            self.delete_pointers(s.token_hash.as_ref(), sid).await?;
        }
        Ok(deleted)
    }

    /// Deletes the pointer keys of a session whose record is gone.
    async fn delete_pointers(
        &self,
        token: Option<&TokenHash>,
        sid: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        if let Some(h) = token {
            let () = conn
                .del(self.keys.token(&h.to_hex()))
                .await
                .map_err(map_err)?;
        }
        conn.del(self.keys.session_owner(sid))
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
            .set_options(&owner, &user_hex, set_nx.clone())
            .await
            .map_err(map_err)?;
        if claimed.is_none() {
            return Err(StoreError::Conflict("session"));
        }
        let token_key = s.token_hash.map(|h| self.keys.token(&h.to_hex()));
        if let Some(token_key) = &token_key {
            let claimed: Option<String> = conn
                .set_options(token_key, format!("{user_hex}:{}", s.id), set_nx)
                .await
                .map_err(map_err)?;
            if claimed.is_none() {
                let () = conn.del(&owner).await.map_err(map_err)?;
                return Err(StoreError::Conflict("session"));
            }
        }

        let mut create = CREATE.prepare_invoke();
        create
            .key(self.keys.session_hex(&user_hex, &s.id))
            .key(self.keys.user_index_hex(&user_hex))
            .key(self.keys.user_seq_hex(&user_hex))
            .arg(ttl)
            .arg(s.created_at.0)
            .arg(&s.id);
        for (name, value) in fields(s) {
            create.arg(name).arg(value);
        }
        let written: i64 = create.invoke_async(&mut conn).await.map_err(map_err)?;
        if written == 0 {
            if let Some(token_key) = &token_key {
                let () = conn.del(token_key).await.map_err(map_err)?;
            }
            let () = conn.del(&owner).await.map_err(map_err)?;
            return Err(StoreError::Conflict("session"));
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
        let pointer: Option<String> = self
            .conn()
            .get(self.keys.token(&token.to_hex()))
            .await
            .map_err(map_err)?;
        let Some((user_hex, sid)) = pointer.as_deref().and_then(|p| p.split_once(':')) else {
            return Ok(None);
        };
        // The record decides: a pointer left behind by an interrupted delete finds nothing.
        Ok(self
            .record(user_hex, sid)
            .await?
            .filter(|s| s.token_hash.as_ref() == Some(token)))
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
        if let Some(u) = user_hex {
            let _: i64 = TOUCH
                .key(self.keys.session_hex(&u, id))
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
        let mut conn = self.conn();
        let user_hex: Option<String> = conn
            .get(self.keys.session_owner(id))
            .await
            .map_err(map_err)?;
        let Some(user_hex) = user_hex else {
            return Ok(None);
        };
        let deleted = self.delete_record(&user_hex, id, None).await?;
        if deleted.is_none() {
            // A pointer to nothing (an interrupted create or delete): tidy it.
            self.delete_pointers(None, id).await?;
        }
        Ok(deleted)
    }

    async fn delete_dead_sessions(
        &self,
        now: UnixTime,
        policy: &SessionPolicy,
    ) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let users_key = self.keys.session_users();
        let mut cursor = 0u64;
        let mut deleted = 0u64;
        loop {
            let (next, users): (u64, Vec<String>) = redis::cmd("SSCAN")
                .arg(&users_key)
                .arg(cursor)
                .arg("COUNT")
                .arg(SWEEP_BATCH)
                .query_async(&mut conn)
                .await
                .map_err(map_err)?;
            for user_hex in &users {
                deleted = deleted.saturating_add(self.sweep_user(user_hex, now, policy).await?);
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}
