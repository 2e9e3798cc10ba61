//! [`RevocationStore`] on PostgreSQL: one row per `(kind, key)`, upserted so that repeating a
//! revocation can only widen it (the later cutoff, the later expiry), never narrow it.
//!
//! Each write announces the entry as it now stands on the schema's `LISTEN/NOTIFY` channel, in
//! the write's own transaction: PostgreSQL delivers the notification at commit, so followers
//! ([`super::PgRevocationFeed`]) hear of exactly the revocations that were stored.

use std::sync::Arc;

use async_trait::async_trait;
use tessera_core::revocation::Revocation;
use tessera_core::time::UnixTime;

use super::{PostgresStore, on};
use crate::rows;
use crate::{RevocationFeed, RevocationStore, StoreError};

const TABLE: &str = "revocations";
const COLUMNS: &str = "kind, key, not_before, expires_at";

#[async_trait]
impl RevocationStore for PostgresStore {
    async fn add_revocation(&self, revocation: &Revocation) -> Result<(), StoreError> {
        let err = on(TABLE, TABLE);
        let (kind, key, not_before, expires_at) = rows::revocation_columns(revocation);
        let mut tx = self.pool.begin().await.map_err(&err)?;
        // GREATEST ignores NULLs; `not_before` is NULL on both sides for token and session
        // entries, set on both for user entries.
        let row = sqlx::query(&format!(
            "INSERT INTO revocations ({COLUMNS}) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kind, key) DO UPDATE SET
               not_before = GREATEST(revocations.not_before, EXCLUDED.not_before),
               expires_at = GREATEST(revocations.expires_at, EXCLUDED.expires_at)
             RETURNING {COLUMNS}"
        ))
        .bind(kind)
        .bind(key)
        .bind(not_before)
        .bind(expires_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(&err)?;
        // Announce the entry as stored (possibly wider than the one given), which is what a
        // follower reloading the list would see.
        let stored = rows::revocation(&row)?;
        let payload =
            serde_json::to_string(&stored).map_err(|e| StoreError::Backend(Box::new(e)))?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(self.schema.channel())
            .bind(payload)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        tx.commit().await.map_err(&err)
    }

    async fn revocations(&self, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM revocations WHERE expires_at > $1 ORDER BY kind, key"
        ))
        .bind(now.0)
        .fetch_all(&self.pool)
        .await
        .map_err(on(TABLE, TABLE))?
        .iter()
        .map(rows::revocation)
        .collect()
    }

    async fn prune_revocations(&self, now: UnixTime) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM revocations WHERE expires_at <= $1")
            .bind(now.0)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(on(TABLE, TABLE))
    }

    async fn revocations_for(
        &self,
        jti: &str,
        sid: Option<&str>,
        user_id: &str,
        now: UnixTime,
    ) -> Result<Vec<Revocation>, StoreError> {
        // Three probes of the primary key (kind, key); a NULL sid matches nothing.
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM revocations
             WHERE ((kind = 'token' AND key = $1)
                 OR (kind = 'session' AND key = $2)
                 OR (kind = 'user' AND key = $3))
               AND expires_at > $4
             ORDER BY kind, key"
        ))
        .bind(jti)
        .bind(sid)
        .bind(user_id)
        .bind(now.0)
        .fetch_all(&self.pool)
        .await
        .map_err(on(TABLE, TABLE))?
        .iter()
        .map(rows::revocation)
        .collect()
    }

    fn feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        Some(Arc::clone(&self.feed) as Arc<dyn RevocationFeed>)
    }
}
