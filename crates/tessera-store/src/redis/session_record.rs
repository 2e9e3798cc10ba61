//! The session record's Redis form and the Lua scripts that change it, each touching one hash
//! slot (see [`super::keys`]).
//!
//! A session lives in two hashes with the same fields: the **record** in its user's slot
//! (with its index, for listing and sweeping) and the **copy** keyed by its token hash (for the
//! one-round-trip lookup by token). The copy is written with the record's claim, changed only
//! by scripts that refuse to create it, and deleted before the record.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::Script;
use tessera_core::opaque::TokenHash;
use tessera_core::session::{Session, SessionKind};
use tessera_core::time::UnixTime;

use crate::StoreError;

/// What [`StoreError::Corrupt`] names for an undecodable session record.
const TABLE: &str = "redis sessions";

/// Writes a new record and its index entry unless the record exists; extends the index's and
/// counter's TTL to cover it. KEYS: record, index, counter. ARGV: ttl, created_at, sid, then
/// the record's field/value pairs. Returns 1 if written, 0 if the record existed.
pub(super) static CREATE: LazyLock<Script> = LazyLock::new(|| {
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
pub(super) static DELETE: LazyLock<Script> = LazyLock::new(|| {
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

/// Sets `last_seen` of an existing record or copy — never creating one (a plain `HSET` would
/// create a stub, and a touch that lost a race with a delete would bring a copy back). KEYS:
/// the hash. ARGV: last_seen. Returns nil if absent, else its `token` field (or '').
pub(super) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
return redis.call('HGET', KEYS[1], 'token') or ''
",
    )
});

/// Adds a member to a set and extends the set's TTL to at least ARGV[2]. KEYS: set.
pub(super) static ADD_MEMBER: LazyLock<Script> = LazyLock::new(|| {
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
pub(super) fn fields(s: &Session) -> Vec<(&'static str, String)> {
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
pub(super) fn from_fields(mut f: HashMap<String, String>) -> Result<Option<Session>, StoreError> {
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

/// Claims a token's copy: writes the session's fields there unless the key exists. KEYS: the
/// copy. ARGV: ttl, then field/value pairs. Returns 1 if written, 0 if the key existed.
pub(super) static CLAIM_COPY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
",
    )
});

/// Deletes a token's copy; with a non-empty ARGV[1], only if its `last_seen` (when it has one)
/// still equals it. KEYS: the copy. Returns 1 if the copy is gone, 0 if it was kept.
pub(super) static DROP_COPY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[1] ~= '' then
  local seen = redis.call('HGET', KEYS[1], 'last_seen')
  if seen and seen ~= ARGV[1] then return 0 end
end
redis.call('DEL', KEYS[1])
return 1
",
    )
});
