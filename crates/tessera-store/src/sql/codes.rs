//! [`crate::CodeStore`] in SQL: one row per authorization code under the SHA-256 of its `tac_`
//! token. Single use is one conditional `UPDATE … WHERE used_at IS NULL`: the database lets
//! exactly one of any number of concurrent redemptions match it.

pub(crate) const TABLE: &str = "authorization_codes";
/// What a uniqueness violation means: only the hash is unique.
pub(crate) const CONFLICT: &str = "code";

pub(crate) const INSERT: &str = "INSERT INTO authorization_codes
     (code_hash, client_id, redirect_uri, user_id, credential_epoch, sid, scope, code_challenge,
      created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
/// The first use: sets `used_at` only if unset, and returns the code if it did.
pub(crate) const USE_ONCE: &str = "UPDATE authorization_codes SET used_at = $2
     WHERE code_hash = $1 AND used_at IS NULL
     RETURNING client_id, redirect_uri, user_id, credential_epoch, sid, scope, code_challenge, created_at, expires_at";
pub(crate) const BY_HASH: &str =
    "SELECT client_id, redirect_uri, user_id, credential_epoch, sid, scope, code_challenge, created_at, expires_at
     FROM authorization_codes WHERE code_hash = $1";
pub(crate) const SWEEP: &str = "DELETE FROM authorization_codes WHERE expires_at < $1";

/// Implements [`crate::CodeStore`] for a [`super::Dialect`] store type.
macro_rules! impl_code_store {
    ($store:ty) => {
        #[::async_trait::async_trait]
        impl $crate::CodeStore for $store {
            async fn insert_code(
                &self,
                hash: &::tessera_core::opaque::TokenHash,
                code: &::tessera_core::authorization::AuthorizationCode,
            ) -> Result<(), $crate::StoreError> {
                use $crate::sql::codes as q;
                ::sqlx::query(q::INSERT)
                    .bind(hash.0.as_slice())
                    .bind(code.client_id.as_str())
                    .bind(&code.redirect_uri)
                    .bind(&code.user_id)
                    .bind(code.credential_epoch)
                    .bind(&code.sid)
                    .bind(code.scope.to_string())
                    .bind(code.challenge.as_str())
                    .bind(code.created_at.0)
                    .bind(code.expires_at.0)
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }

            async fn redeem_code(
                &self,
                hash: &::tessera_core::opaque::TokenHash,
                now: ::tessera_core::time::UnixTime,
            ) -> Result<Option<$crate::Redemption>, $crate::StoreError> {
                use $crate::sql::codes as q;
                let err = $crate::sql::on::<Self>(q::TABLE, q::CONFLICT);
                if let Some(row) = ::sqlx::query(q::USE_ONCE)
                    .bind(hash.0.as_slice())
                    .bind(now.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(&err)?
                {
                    return $crate::rows::code(&row).map(|c| Some($crate::Redemption::First(c)));
                }
                ::sqlx::query(q::BY_HASH)
                    .bind(hash.0.as_slice())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(&err)?
                    .as_ref()
                    .map(|row| $crate::rows::code(row).map($crate::Redemption::Again))
                    .transpose()
            }

            async fn delete_expired_codes(
                &self,
                before: ::tessera_core::time::UnixTime,
            ) -> Result<u64, $crate::StoreError> {
                use $crate::sql::codes as q;
                ::sqlx::query(q::SWEEP)
                    .bind(before.0)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }
        }
    };
}
pub(crate) use impl_code_store;
