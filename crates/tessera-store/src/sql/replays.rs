//! [`crate::ReplayStore`] in SQL: one row per remembered key, its primary key the atomic
//! "first one wins" (an insert that conflicts with a live row changes nothing), swept by
//! expiry.

pub(crate) const TABLE: &str = "replay_markers";

/// Inserts the key, or takes over a row that expired by `$3`; affects no row while a live
/// record holds the key.
pub(crate) const REMEMBER: &str = "INSERT INTO replay_markers (key, expires_at) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
     WHERE replay_markers.expires_at <= $3";
pub(crate) const FORGET_EXPIRED: &str = "DELETE FROM replay_markers WHERE expires_at <= $1";

/// Implements [`crate::ReplayStore`] for a [`super::Dialect`] store type.
macro_rules! impl_replay_store {
    ($store:ty) => {
        #[::async_trait::async_trait]
        impl $crate::ReplayStore for $store {
            async fn remember_once(
                &self,
                key: &str,
                expires_at: ::tessera_core::time::UnixTime,
                now: ::tessera_core::time::UnixTime,
            ) -> Result<bool, $crate::StoreError> {
                use $crate::sql::replays as q;
                ::sqlx::query(q::REMEMBER)
                    .bind(key)
                    .bind(expires_at.0)
                    .bind(now.0)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected() == 1)
                    .map_err($crate::sql::on::<Self>(q::TABLE, "replay marker"))
            }

            async fn forget_expired(
                &self,
                now: ::tessera_core::time::UnixTime,
            ) -> Result<u64, $crate::StoreError> {
                use $crate::sql::replays as q;
                ::sqlx::query(q::FORGET_EXPIRED)
                    .bind(now.0)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err($crate::sql::on::<Self>(q::TABLE, "replay marker"))
            }
        }
    };
}
pub(crate) use impl_replay_store;
