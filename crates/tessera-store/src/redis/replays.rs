//! [`ReplayStore`] on Redis: one key per marker (`ns:rp:K`), set with `SET NX PX`, so the
//! first writer wins atomically across every instance and Redis forgets the marker itself
//! when it expires.

use async_trait::async_trait;
use tessera_core::time::UnixTime;

use super::{RedisStore, map_err, ttl_secs};
use crate::{ReplayStore, StoreError};

#[async_trait]
impl ReplayStore for RedisStore {
    async fn remember_once(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        // Milliseconds, never below one second: a marker must outlive the proof it names.
        let ttl_ms = ttl_secs(expires_at.since(now)).saturating_mul(1000);
        let set: Option<String> = redis::cmd("SET")
            .arg(self.keys.replay(key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut self.conn())
            .await
            .map_err(map_err)?;
        Ok(set.is_some())
    }

    async fn forget_expired(&self, _now: UnixTime) -> Result<u64, StoreError> {
        Ok(0)
    }
}
