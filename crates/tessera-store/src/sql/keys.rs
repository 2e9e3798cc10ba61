//! [`crate::KeyStore`] in SQL. Secrets are stored as BLOB / BYTEA as the server hands them
//! over — sealed under its key-encryption key, which never reaches the database. The first-key insert is the dialect's
//! ([`super::Dialect::insert_first_key`]).

use crate::StoreError;

use super::Dialect;

pub(crate) const TABLE: &str = "signing_keys";
/// PostgreSQL's partial unique index on `status = 'current'` (see its migration), which
/// refuses a second current key.
pub(crate) const ONE_CURRENT: &str = "signing_keys_one_current";

pub(crate) const INSERT: &str =
    "INSERT INTO signing_keys (kid, alg, status, created_at, secret) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const SET_STATUS: &str = "UPDATE signing_keys SET status = $1 WHERE kid = $2";
/// Compare-and-set of a secret: only a row still holding the expected bytes changes.
pub(crate) const REPLACE_SECRET: &str =
    "UPDATE signing_keys SET secret = $1 WHERE kid = $2 AND secret = $3";

/// Every key, oldest first; keys of one second in insertion order, by `order`, the dialect's
/// [`Dialect::INSERTION_ORDER`] column.
pub(crate) fn all(order: &str) -> String {
    format!(
        "SELECT kid, alg, status, created_at, secret FROM signing_keys ORDER BY created_at, {order}"
    )
}

/// Maps errors of key writes, telling a second current key from a duplicate kid.
pub(crate) fn on_write<D: Dialect>(e: sqlx::Error) -> StoreError {
    let second_current = matches!(
        &e,
        sqlx::Error::Database(db) if db.is_unique_violation() && db.constraint() == Some(ONE_CURRENT)
    );
    if second_current {
        StoreError::Conflict("current key")
    } else {
        super::map_err::<D>(e, TABLE, "kid")
    }
}

/// Implements [`crate::KeyStore`] for a [`super::Dialect`] store type.
macro_rules! impl_key_store {
    ($store:ty) => {
        #[::async_trait::async_trait]
        impl $crate::KeyStore for $store {
            async fn keys(
                &self,
            ) -> Result<Vec<::tessera_core::keys::KeyRecord>, $crate::StoreError> {
                use $crate::sql::keys as q;
                ::sqlx::query(&q::all(<Self as $crate::sql::Dialect>::INSERTION_ORDER))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::on::<Self>(q::TABLE, "kid"))?
                    .iter()
                    .map($crate::rows::key)
                    .collect()
            }

            async fn insert_key(
                &self,
                key: &::tessera_core::keys::KeyRecord,
            ) -> Result<(), $crate::StoreError> {
                use $crate::sql::keys as q;
                ::sqlx::query(q::INSERT)
                    .bind(&key.kid)
                    .bind(key.alg.as_str())
                    .bind(key.status.as_str())
                    .bind(key.created_at.0)
                    .bind(key.secret.as_slice())
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err(q::on_write::<Self>)
            }

            async fn insert_first_key(
                &self,
                key: &::tessera_core::keys::KeyRecord,
            ) -> Result<bool, $crate::StoreError> {
                <Self as $crate::sql::Dialect>::insert_first_key(self, key).await
            }

            async fn set_key_status(
                &self,
                kid: &str,
                status: ::tessera_core::keys::KeyStatus,
            ) -> Result<bool, $crate::StoreError> {
                use $crate::sql::keys as q;
                ::sqlx::query(q::SET_STATUS)
                    .bind(status.as_str())
                    .bind(kid)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected() > 0)
                    .map_err(q::on_write::<Self>)
            }

            async fn replace_key_secret(
                &self,
                kid: &str,
                expected: &[u8],
                new: &[u8],
            ) -> Result<bool, $crate::StoreError> {
                use $crate::sql::keys as q;
                ::sqlx::query(q::REPLACE_SECRET)
                    .bind(new)
                    .bind(kid)
                    .bind(expected)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected() > 0)
                    .map_err(q::on_write::<Self>)
            }
        }
    };
}
pub(crate) use impl_key_store;
