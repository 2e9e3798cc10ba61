//! [`crate::SessionStore`] in SQL. Token hashes are 32-byte BLOB / BYTEA columns (unique, NULL
//! for app sessions).

pub(crate) const TABLE: &str = "sessions";
pub(crate) const CONFLICT: &str = "session";

pub(crate) const INSERT: &str = "INSERT INTO sessions
       (id, token_hash, user_id, kind, created_at, last_seen, expires_at, user_agent, ip,
        client_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
pub(crate) const BY_TOKEN: &str = "SELECT id, token_hash, user_id, kind, created_at, last_seen,
       expires_at, user_agent, ip, client_id
     FROM sessions WHERE token_hash = $1";
pub(crate) const BY_ID: &str = "SELECT id, token_hash, user_id, kind, created_at, last_seen,
       expires_at, user_agent, ip, client_id
     FROM sessions WHERE id = $1";
pub(crate) const TOUCH: &str = "UPDATE sessions SET last_seen = $1 WHERE id = $2";
pub(crate) const DELETE: &str = "DELETE FROM sessions WHERE id = $1
     RETURNING id, token_hash, user_id, kind, created_at, last_seen, expires_at, user_agent, ip,
       client_id";
/// `Session::dead_at` in SQL: the earlier of the absolute end (`$1` is now) and the idle end
/// (`$2`, `$3`: now less the idle limits), where an app session's idle limit is its absolute
/// lifetime. The conformance suite checks this against `dead_at` itself. The caller subtracts,
/// which keeps the SQL free of overflow.
pub(crate) const DELETE_DEAD: &str = "DELETE FROM sessions
     WHERE expires_at <= $1
        OR (kind = 'browser' AND last_seen <= $2)
        OR (kind = 'app' AND last_seen <= $3)";
pub(crate) const COUNT: &str = "SELECT COUNT(*) FROM sessions";

/// Every session of a user (`$1`), oldest first; sessions of one second come in insertion
/// order, by `order`, the dialect's [`super::Dialect::INSERTION_ORDER`] column.
pub(crate) fn of_user(order: &str) -> String {
    format!(
        "SELECT id, token_hash, user_id, kind, created_at, last_seen, expires_at, user_agent, ip,
                client_id
         FROM sessions WHERE user_id = $1 ORDER BY created_at, {order}"
    )
}

/// Implements [`crate::SessionStore`] for a [`super::Dialect`] store type.
macro_rules! impl_session_store {
    ($store:ty) => {
        impl $store {
            /// The one session `query` returns, if any.
            async fn one_session<'q>(
                &self,
                query: $crate::sql::Query<'q, Self>,
            ) -> Result<Option<::tessera_core::session::Session>, $crate::StoreError> {
                use $crate::sql::sessions as q;
                query
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))?
                    .as_ref()
                    .map($crate::rows::session)
                    .transpose()
            }
        }

        #[::async_trait::async_trait]
        impl $crate::SessionStore for $store {
            async fn create_session(
                &self,
                s: &::tessera_core::session::Session,
            ) -> Result<(), $crate::StoreError> {
                use $crate::sql::sessions as q;
                ::sqlx::query(q::INSERT)
                    .bind(&s.id)
                    .bind(s.token_hash.as_ref().map(|h| h.0.as_slice()))
                    .bind(&s.user_id)
                    .bind(s.kind.as_str())
                    .bind(s.created_at.0)
                    .bind(s.last_seen.0)
                    .bind(s.expires_at.0)
                    .bind(&s.user_agent)
                    .bind(&s.ip)
                    .bind(&s.client_id)
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }

            async fn session_by_token(
                &self,
                token: &::tessera_core::opaque::TokenHash,
            ) -> Result<Option<::tessera_core::session::Session>, $crate::StoreError> {
                let query = ::sqlx::query($crate::sql::sessions::BY_TOKEN).bind(token.0.as_slice());
                self.one_session(query).await
            }

            async fn session_by_id(
                &self,
                id: &str,
            ) -> Result<Option<::tessera_core::session::Session>, $crate::StoreError> {
                self.one_session(::sqlx::query($crate::sql::sessions::BY_ID).bind(id))
                    .await
            }

            async fn touch_session(
                &self,
                id: &str,
                last_seen: ::tessera_core::time::UnixTime,
            ) -> Result<(), $crate::StoreError> {
                use $crate::sql::sessions as q;
                ::sqlx::query(q::TOUCH)
                    .bind(last_seen.0)
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }

            async fn sessions_of_user(
                &self,
                user_id: &str,
            ) -> Result<Vec<::tessera_core::session::Session>, $crate::StoreError> {
                use $crate::sql::sessions as q;
                let sql = q::of_user(<Self as $crate::sql::Dialect>::INSERTION_ORDER);
                ::sqlx::query(&sql)
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))?
                    .iter()
                    .map($crate::rows::session)
                    .collect()
            }

            async fn delete_session(
                &self,
                id: &str,
            ) -> Result<Option<::tessera_core::session::Session>, $crate::StoreError> {
                self.one_session(::sqlx::query($crate::sql::sessions::DELETE).bind(id))
                    .await
            }

            async fn delete_dead_sessions(
                &self,
                now: ::tessera_core::time::UnixTime,
                policy: &::tessera_core::session::SessionPolicy,
            ) -> Result<u64, $crate::StoreError> {
                use $crate::sql::sessions as q;
                ::sqlx::query(q::DELETE_DEAD)
                    .bind(now.0)
                    .bind(now.0.saturating_sub(policy.browser_idle_secs))
                    .bind(now.0.saturating_sub(policy.app_absolute_secs))
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }

            async fn count_sessions(&self) -> Result<u64, $crate::StoreError> {
                use $crate::sql::sessions as q;
                let count: i64 = ::sqlx::query_scalar(q::COUNT)
                    .fetch_one(&self.pool)
                    .await
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))?;
                Ok(u64::try_from(count).unwrap_or(0))
            }
        }
    };
}
pub(crate) use impl_session_store;
