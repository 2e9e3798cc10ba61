//! [`RevocationStore`] on Redis, with the pub/sub feed announced from the write itself.
//!
//! Design decision: the whole list sits in one hash slot (`{ns:rev}`): a hash indexed by
//! `kind:key` (the exact lookups of `revocations_for`) and a sorted set of the same names
//! scored by `expires_at` (listing and pruning by time). `add_revocation` is one Lua script that
//! upserts both — keeping the widest reach, as every backend does — extends the keys' TTL and
//! `PUBLISH`es the revocation: no revocation is stored without being announced, and none is
//! announced without being stored.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};
use tessera_core::revocation::Revocation;
use tessera_core::time::UnixTime;

use super::{MAX_TTL_SECS, RedisStore, map_err};
use crate::{RevocationFeed, RevocationStore, StoreError};

/// What [`StoreError::Corrupt`] names for an undecodable revocation entry.
const TABLE: &str = "redis revocations";

/// How long past its latest `expires_at` (by Redis' clock) the list is kept: a margin for
/// clock skew between Redis and the instances, which compare with their own clocks.
const TTL_MARGIN_SECS: i64 = 24 * 3600;

/// Upserts one entry (keeping the later `expires_at` and `not_before`), extends both keys'
/// TTL to cover it, and publishes the revocation. KEYS: list (zset), index (hash). ARGV: name,
/// expires_at, not_before (empty for kinds without one), message, channel, TTL margin, TTL cap.
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local exp, nb = ARGV[2], ARGV[3]
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur then
  local cexp, cnb = string.match(cur, '^([^:]+):?(.*)$')
  if cexp and tonumber(cexp) > tonumber(exp) then exp = cexp end
  if nb ~= '' and cnb ~= '' and tonumber(cnb) > tonumber(nb) then nb = cnb end
end
local value = exp
if nb ~= '' then value = exp .. ':' .. nb end
redis.call('HSET', KEYS[2], ARGV[1], value)
redis.call('ZADD', KEYS[1], exp, ARGV[1])
local ttl = tonumber(exp) - tonumber(redis.call('TIME')[1])
if ttl < 0 then ttl = 0 end
ttl = math.min(ttl + tonumber(ARGV[6]), tonumber(ARGV[7]))
for i = 1, 2 do
  if redis.call('TTL', KEYS[i]) < ttl then redis.call('EXPIRE', KEYS[i], ttl) end
end
redis.call('PUBLISH', ARGV[5], ARGV[4])
return 1
",
    )
});

/// Deletes up to ARGV[2] entries with `expires_at <= ARGV[1]` from both keys; returns how
/// many. KEYS: list, index.
static PRUNE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local names = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #names > 0 then
  redis.call('HDEL', KEYS[2], unpack(names))
  redis.call('ZREM', KEYS[1], unpack(names))
end
return #names
",
    )
});

/// How many entries one Redis call reads or prunes at most. Redis runs one command at a time
/// for every client of every instance, so no call may take long: the whole list of 10⁶ entries
/// read in one script (as this backend did) held Redis for about 2 s and outlasted the store's
/// own reply timeout; a page of this size takes about 1.5 ms (`SLOWLOG`). The `scale_out`
/// bench's `redis_revocations` part measures a paged read and what other clients wait.
const PAGE: usize = 1_000;

/// The stored name of an entry and its `not_before` (user cutoffs only).
fn name_of(r: &Revocation) -> (String, Option<UnixTime>) {
    match r {
        Revocation::Token { jti, .. } => (format!("jti:{jti}"), None),
        Revocation::Session { sid, .. } => (format!("sid:{sid}"), None),
        Revocation::User {
            user_id,
            not_before,
            ..
        } => (format!("user:{user_id}"), Some(*not_before)),
        Revocation::Key { kid, .. } => (format!("kid:{kid}"), None),
    }
}

/// An entry from its stored name and value (`expires_at[:not_before]`).
fn parse(name: &str, value: &str) -> Result<Revocation, StoreError> {
    let corrupt = || StoreError::Corrupt(TABLE);
    let time = |s: &str| s.parse::<i64>().map(UnixTime).map_err(|_| corrupt());
    let (exp, not_before) = match value.split_once(':') {
        Some((e, nb)) => (time(e)?, Some(time(nb)?)),
        None => (time(value)?, None),
    };
    let (kind, key) = name.split_once(':').ok_or_else(corrupt)?;
    let key = key.to_owned();
    match (kind, not_before) {
        ("jti", None) => Ok(Revocation::Token {
            jti: key,
            expires_at: exp,
        }),
        ("sid", None) => Ok(Revocation::Session {
            sid: key,
            expires_at: exp,
        }),
        ("user", Some(not_before)) => Ok(Revocation::User {
            user_id: key,
            not_before,
            expires_at: exp,
        }),
        ("kid", None) => Ok(Revocation::Key {
            kid: key,
            expires_at: exp,
        }),
        _ => Err(corrupt()),
    }
}

#[async_trait]
impl RevocationStore for RedisStore {
    async fn add_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        let (name, not_before) = name_of(revocation);
        let message =
            serde_json::to_string(revocation).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let _: i64 = ADD
            .key(self.keys.revocation_list())
            .key(self.keys.revocation_index())
            .arg(name)
            .arg(revocation.expires_at().0)
            .arg(not_before.map_or_else(String::new, |t| t.0.to_string()))
            .arg(message)
            .arg(self.keys.channel())
            .arg(TTL_MARGIN_SECS)
            .arg(MAX_TTL_SECS)
            .invoke_async(&mut self.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// The index hash read with `HSCAN`, a page per call, so a long list never holds Redis
    /// for long; each page is parsed as it arrives, so neither does this task hold its
    /// runtime's worker. An entry added meanwhile may be missed — the feed announces it — and
    /// one may come twice (the hash rehashing under the cursor): entries are keyed by name.
    async fn revocations(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        let index = self.keys.revocation_index();
        let mut conn = self.conn();
        let mut entries: HashMap<String, Revocation> = HashMap::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, flat): (u64, Vec<String>) = redis::cmd("HSCAN")
                .arg(&index)
                .arg(cursor)
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut conn)
                .await
                .map_err(map_err)?;
            let mut pairs = flat.into_iter();
            while let (Some(name), Some(value)) = (pairs.next(), pairs.next()) {
                let r = parse(&name, &value)?;
                if r.expires_at() > now {
                    entries.insert(name, r);
                }
            }
            if next == 0 {
                return Ok(entries.into_values().collect());
            }
            cursor = next;
        }
    }

    async fn prune_revocations(&self, now: UnixTime) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let mut pruned = 0;
        loop {
            let n: u64 = PRUNE
                .key(self.keys.revocation_list())
                .key(self.keys.revocation_index())
                .arg(now.0)
                .arg(PAGE)
                .invoke_async(&mut conn)
                .await
                .map_err(map_err)?;
            pruned += n;
            if n < PAGE as u64 {
                return Ok(pruned);
            }
        }
    }

    async fn revocations_for(
        &self,
        jti: &str,
        sid: Option<&str>,
        user_id: &str,
        client_id: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<Revocation>, StoreError> {
        let mut names = vec![format!("jti:{jti}"), format!("user:{user_id}")];
        if let Some(sid) = sid {
            names.push(format!("sid:{sid}"));
        }
        if let Some(client) = client_id.filter(|client| *client != user_id) {
            names.push(format!("user:{client}"));
        }
        let values: Vec<Option<String>> = self
            .conn()
            .hmget(self.keys.revocation_index(), &names)
            .await
            .map_err(map_err)?;
        let mut found = Vec::new();
        for (name, value) in names.iter().zip(values) {
            if let Some(value) = value {
                let r = parse(name, &value)?;
                if r.expires_at() > now {
                    found.push(r);
                }
            }
        }
        Ok(found)
    }

    fn feed(&self) -> Option<std::sync::Arc<dyn RevocationFeed>> {
        Some(self.dyn_feed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_entries_parse_back() {
        let all = [
            Revocation::Token {
                jti: "a:b".into(),
                expires_at: UnixTime(5),
            },
            Revocation::Session {
                sid: "s".into(),
                expires_at: UnixTime(-5),
            },
            Revocation::User {
                user_id: "u".into(),
                not_before: UnixTime(3),
                expires_at: UnixTime(9),
            },
            Revocation::Key {
                kid: "k".into(),
                expires_at: UnixTime(7),
            },
        ];
        for r in all {
            let (name, nb) = name_of(&r);
            let value = match nb {
                Some(nb) => format!("{}:{}", r.expires_at().0, nb.0),
                None => r.expires_at().0.to_string(),
            };
            assert_eq!(parse(&name, &value).ok(), Some(r));
        }
        assert!(parse("jti:x", "1:2").is_err());
        assert!(parse("user:x", "1").is_err());
        assert!(parse("nope", "1").is_err());
    }
}
