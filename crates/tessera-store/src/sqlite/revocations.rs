//! [`RevocationStore`] on SQLite: one row per `(kind, key)`, upserted so that repeating a
//! revocation can only widen it (the later cutoff, the later expiry), never narrow it.

use async_trait::async_trait;
use tessera_core::revocation::Revocation;
use tessera_core::time::UnixTime;

use super::{SqliteStore, on};
use crate::rows;
use crate::{RevocationStore, StoreError};

const TABLE: &str = "revocations";

#[async_trait]
impl RevocationStore for SqliteStore {
    async fn add_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        let (kind, key, not_before, expires_at) = rows::revocation_columns(revocation);
        // SQLite's two-argument max() is NULL if either side is; `not_before` is NULL on both
        // sides for token and session entries, set on both for user entries.
        sqlx::query(
            "INSERT INTO revocations (kind, key, not_before, expires_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (kind, key) DO UPDATE SET
               not_before = max(not_before, excluded.not_before),
               expires_at = max(expires_at, excluded.expires_at)",
        )
        .bind(kind)
        .bind(key)
        .bind(not_before)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(on(TABLE, TABLE))
    }

    async fn revocations(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        sqlx::query("SELECT kind, key, not_before, expires_at FROM revocations WHERE expires_at > ? ORDER BY kind, key")
            .bind(now.0)
            .fetch_all(&self.pool)
            .await
            .map_err(on(TABLE, TABLE))?
            .iter()
            .map(rows::revocation)
            .collect()
    }

    async fn prune_revocations(&self, now: UnixTime) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM revocations WHERE expires_at <= ?")
            .bind(now.0)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(on(TABLE, TABLE))
    }
}
