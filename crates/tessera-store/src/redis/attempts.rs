//! [`AttemptCounter`] on Redis: one key per counter (`ns:ac:K`), its TTL the open window.
//!
//! Design decision: count and window are one key changed by one script (`INCR`, then `EXPIRE`
//! only if the key has no TTL yet; a refund's `DECR` only on a key that has one), so every
//! instance shares the window and a crash can never leave a counter without expiry. Windows
//! run on Redis' clock.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::{RedisStore, map_err, ttl_secs};
use crate::{AttemptCounter, StoreError};

/// Counts one attempt, opening a window of ARGV[1] seconds if none is open; returns the count
/// and the seconds left. KEYS: the counter.
static HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
",
    )
});

/// Takes back one attempt: decrements the counter only if it is above zero and has an expiry,
/// so a refund can neither go below zero nor create a key (DECR on a missing key would make
/// one, at -1 and without a TTL). DECR keeps the key's TTL. Returns the new count. KEYS: the
/// counter.
static REFUND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('PTTL', KEYS[1]) <= 0 then return 0 end
local n = tonumber(redis.call('GET', KEYS[1]))
if not n or n <= 0 then return 0 end
return redis.call('DECR', KEYS[1])
",
    )
});

/// The count and the seconds left, or `(0, 0)`. KEYS: the counter.
static PEEK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('GET', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if not n or ttl < 0 then return {0, 0} end
return {tonumber(n), ttl}
",
    )
});

/// A count as the trait reports it (saturating: counts past `u32::MAX` are all "too many").
fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

#[async_trait]
impl AttemptCounter for RedisStore {
    async fn hit(&self, key: &str, window_secs: i64) -> Result<(u32, i64), StoreError> {
        let (n, left): (i64, i64) = HIT
            .key(self.keys.attempts(key))
            .arg(ttl_secs(window_secs))
            .invoke_async(&mut self.conn())
            .await
            .map_err(map_err)?;
        Ok((count(n), left))
    }

    async fn refund(&self, key: &str) -> Result<(), StoreError> {
        let _count: i64 = REFUND
            .key(self.keys.attempts(key))
            .invoke_async(&mut self.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn peek(&self, key: &str) -> Result<(u32, i64), StoreError> {
        let (n, left): (i64, i64) = PEEK
            .key(self.keys.attempts(key))
            .invoke_async(&mut self.conn())
            .await
            .map_err(map_err)?;
        Ok((count(n), left))
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.conn()
            .del(self.keys.attempts(key))
            .await
            .map_err(map_err)
    }
}
