//! [`crate::RevocationStore`] in SQL: one row per `(kind, key)`, upserted so that repeating a
//! revocation can only widen it (the later cutoff, the later expiry), never narrow it.
//!
//! Each write returns the entry as it now stands and hands it to the dialect's
//! [`super::Dialect::announce`] in the write's own transaction, so a backend with a push feed
//! announces exactly the revocations that were stored.

pub(crate) const TABLE: &str = "revocations";

/// The upsert. The maximum is spelled with `CASE`, the one form both dialects share (SQLite
/// has no `GREATEST`, PostgreSQL no two-argument `max`); a comparison with NULL is not true, so
/// a NULL `not_before` (token, session and key entries, NULL on both sides) stays NULL.
pub(crate) const UPSERT: &str = "INSERT INTO revocations (kind, key, not_before, expires_at)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (kind, key) DO UPDATE SET
       not_before = CASE WHEN excluded.not_before > revocations.not_before
                         THEN excluded.not_before ELSE revocations.not_before END,
       expires_at = CASE WHEN excluded.expires_at > revocations.expires_at
                         THEN excluded.expires_at ELSE revocations.expires_at END
     RETURNING kind, key, not_before, expires_at";
pub(crate) const IN_FORCE: &str = "SELECT kind, key, not_before, expires_at FROM revocations
     WHERE expires_at > $1 ORDER BY kind, key";
pub(crate) const PRUNE: &str = "DELETE FROM revocations WHERE expires_at <= $1";
/// Three probes of the primary key `(kind, key)`; a NULL sid matches nothing.
pub(crate) const FOR_CREDENTIAL: &str = "SELECT kind, key, not_before, expires_at FROM revocations
     WHERE ((kind = 'token' AND key = $1)
         OR (kind = 'session' AND key = $2)
         OR (kind = 'user' AND key = $3)
         OR (kind = 'user' AND key = $4))
       AND expires_at > $5
     ORDER BY kind, key";

/// Implements [`crate::RevocationStore`] for a [`super::Dialect`] store type.
macro_rules! impl_revocation_store {
    ($store:ty) => {
        impl $store {
            /// The revocations `query` (a listing statement of this module) returns.
            async fn fetch_revocations<'q>(
                &self,
                query: $crate::sql::Query<'q, Self>,
            ) -> Result<Vec<::tessera_core::revocation::Revocation>, $crate::StoreError> {
                use $crate::sql::revocations as q;
                query
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::TABLE))?
                    .iter()
                    .map($crate::rows::revocation)
                    .collect()
            }
        }

        #[::async_trait::async_trait]
        impl $crate::RevocationStore for $store {
            async fn add_revocation(
                &self,
                revocation: &::tessera_core::revocation::Revocation,
            ) -> Result<(), $crate::StoreError> {
                use $crate::sql::Dialect as _;
                use $crate::sql::revocations as q;
                let err = $crate::sql::on::<Self>(q::TABLE, q::TABLE);
                let (kind, key, not_before, expires_at) =
                    $crate::rows::revocation_columns(revocation);
                let mut tx = self.pool.begin().await.map_err(&err)?;
                let row = ::sqlx::query(q::UPSERT)
                    .bind(kind)
                    .bind(key)
                    .bind(not_before)
                    .bind(expires_at)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(&err)?;
                // The entry as stored (possibly wider than the one given), which is what a
                // follower reloading the list would see.
                let stored = $crate::rows::revocation(&row)?;
                self.announce(&mut tx, &stored).await?;
                tx.commit().await.map_err(&err)
            }

            async fn revocations(
                &self,
                now: ::tessera_core::time::UnixTime,
            ) -> Result<Vec<::tessera_core::revocation::Revocation>, $crate::StoreError> {
                let query = ::sqlx::query($crate::sql::revocations::IN_FORCE).bind(now.0);
                self.fetch_revocations(query).await
            }

            async fn prune_revocations(
                &self,
                now: ::tessera_core::time::UnixTime,
            ) -> Result<u64, $crate::StoreError> {
                use $crate::sql::revocations as q;
                ::sqlx::query(q::PRUNE)
                    .bind(now.0)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::TABLE))
            }

            async fn revocations_for(
                &self,
                jti: &str,
                sid: Option<&str>,
                user_id: &str,
                client_id: Option<&str>,
                now: ::tessera_core::time::UnixTime,
            ) -> Result<Vec<::tessera_core::revocation::Revocation>, $crate::StoreError> {
                let query = ::sqlx::query($crate::sql::revocations::FOR_CREDENTIAL)
                    .bind(jti)
                    .bind(sid)
                    .bind(user_id)
                    .bind(client_id)
                    .bind(now.0);
                self.fetch_revocations(query).await
            }

            fn feed(&self) -> Option<::std::sync::Arc<dyn $crate::RevocationFeed>> {
                $crate::sql::Dialect::revocation_feed(self)
            }
        }
    };
}
pub(crate) use impl_revocation_store;
