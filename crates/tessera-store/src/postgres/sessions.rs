//! [`SessionStore`] on PostgreSQL. Token hashes are 32-byte BYTEA (unique, NULL for app
//! sessions); `seq` orders sessions created in the same second by insertion.

use async_trait::async_trait;
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use tessera_core::opaque::TokenHash;
use tessera_core::session::{Session, SessionPolicy};
use tessera_core::time::UnixTime;

use super::{PostgresStore, on};
use crate::rows;
use crate::{SessionStore, StoreError};

const TABLE: &str = "sessions";
const COLUMNS: &str =
    "id, token_hash, user_id, kind, created_at, last_seen, expires_at, user_agent, ip";

impl PostgresStore {
    async fn one_session<'q>(
        &self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Result<Option<Session>, StoreError> {
        query
            .fetch_optional(&self.pool)
            .await
            .map_err(on(TABLE, "session"))?
            .as_ref()
            .map(rows::session)
            .transpose()
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions
               (id, token_hash, user_id, kind, created_at, last_seen, expires_at, user_agent, ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&s.id)
        .bind(s.token_hash.map(|h| h.0.to_vec()))
        .bind(&s.user_id)
        .bind(s.kind.as_str())
        .bind(s.created_at.0)
        .bind(s.last_seen.0)
        .bind(s.expires_at.0)
        .bind(&s.user_agent)
        .bind(&s.ip)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(on(TABLE, "session"))
    }

    async fn session_by_token(&self, token: &TokenHash) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE token_hash = $1");
        self.one_session(sqlx::query(&sql).bind(token.0.as_slice()))
            .await
    }

    async fn session_by_id(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id = $1");
        self.one_session(sqlx::query(&sql).bind(id)).await
    }

    async fn touch_session(&self, id: &str, last_seen: UnixTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id = $2")
            .bind(last_seen.0)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(on(TABLE, "session"))
    }

    async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 ORDER BY created_at, seq"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(on(TABLE, "session"))?
        .iter()
        .map(rows::session)
        .collect()
    }

    async fn delete_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let sql = format!("DELETE FROM sessions WHERE id = $1 RETURNING {COLUMNS}");
        self.one_session(sqlx::query(&sql).bind(id)).await
    }

    async fn delete_dead_sessions(
        &self,
        now: UnixTime,
        policy: &SessionPolicy,
    ) -> Result<u64, StoreError> {
        // `Session::dead_at` in SQL: the earlier of the absolute end and the idle end, where an
        // app session's idle limit is its absolute lifetime. The conformance suite checks this
        // against `dead_at` itself. Subtracting on the Rust side keeps the SQL free of overflow.
        sqlx::query(
            "DELETE FROM sessions
             WHERE expires_at <= $1
                OR (kind = 'browser' AND last_seen <= $2)
                OR (kind = 'app' AND last_seen <= $3)",
        )
        .bind(now.0)
        .bind(now.0.saturating_sub(policy.browser_idle_secs))
        .bind(now.0.saturating_sub(policy.app_absolute_secs))
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
        .map_err(on(TABLE, "session"))
    }
}
