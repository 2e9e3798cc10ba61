//! [`crate::KeyStore`] in SQL. Secrets are stored as BLOB / BYTEA as the server hands them
//! over — sealed under its key-encryption key, which never reaches the database. The
//! conditional insert is the dialect's ([`super::Dialect::insert_key_if_vacant`]).

use crate::StoreError;

use super::Dialect;

pub(crate) const TABLE: &str = "signing_keys";
/// PostgreSQL's partial unique index on `status IN ('current', 'next')` (see its
/// migrations), which refuses a second current or next key.
pub(crate) const ONE_PER_STATUS: &str = "signing_keys_one_per_status";

pub(crate) const INSERT: &str = "INSERT INTO signing_keys (kid, alg, status, created_at, \
     status_since, secret) VALUES ($1, $2, $3, $4, $5, $6)";
/// Compare-and-set of a status: only a row still in the expected status changes.
pub(crate) const SET_STATUS: &str =
    "UPDATE signing_keys SET status = $1, status_since = $2 WHERE kid = $3 AND status = $4";
/// Compare-and-set of a secret: only a row still holding the expected bytes changes.
pub(crate) const REPLACE_SECRET: &str =
    "UPDATE signing_keys SET secret = $1 WHERE kid = $2 AND secret = $3";

/// Every key, oldest first; keys of one second in insertion order, by `order`, the dialect's
/// [`Dialect::INSERTION_ORDER`] column.
pub(crate) fn all(order: &str) -> String {
    format!(
        "SELECT kid, alg, status, created_at, status_since, secret FROM signing_keys \
         ORDER BY created_at, {order}"
    )
}

/// Binds `key`'s columns to [`INSERT`], in its order.
pub(crate) fn bind_insert<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    key: &'q tessera_core::keys::KeyRecord,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(key.kid.as_str())
        .bind(key.alg.as_str())
        .bind(key.status.as_str())
        .bind(key.created_at.0)
        .bind(key.status_since.0)
        .bind(key.secret.as_slice())
}

/// Maps errors of key writes, telling a second current (or next) key from a duplicate kid.
pub(crate) fn on_write<D: Dialect>(e: sqlx::Error) -> StoreError {
    let second_of_status = matches!(
        &e,
        sqlx::Error::Database(db) if db.is_unique_violation() && db.constraint() == Some(ONE_PER_STATUS)
    );
    if second_of_status {
        StoreError::Conflict("key status")
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
                q::bind_insert(::sqlx::query(q::INSERT), key)
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err(q::on_write::<Self>)
            }

            async fn insert_key_if_vacant(
                &self,
                key: &::tessera_core::keys::KeyRecord,
            ) -> Result<bool, $crate::StoreError> {
                <Self as $crate::sql::Dialect>::insert_key_if_vacant(self, key).await
            }

            async fn set_key_status(
                &self,
                kid: &str,
                from: ::tessera_core::keys::KeyStatus,
                to: ::tessera_core::keys::KeyStatus,
                at: ::tessera_core::time::UnixTime,
            ) -> Result<bool, $crate::StoreError> {
                use $crate::sql::keys as q;
                ::sqlx::query(q::SET_STATUS)
                    .bind(to.as_str())
                    .bind(at.0)
                    .bind(kid)
                    .bind(from.as_str())
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
                let replaced = ::sqlx::query(q::REPLACE_SECRET)
                    .bind(new)
                    .bind(kid)
                    .bind(expected)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected() > 0)
                    .map_err(q::on_write::<Self>)?;
                if replaced {
                    $crate::sql::Dialect::forget_replaced_secret(self).await?;
                }
                Ok(replaced)
            }
        }
    };
}
pub(crate) use impl_key_store;
