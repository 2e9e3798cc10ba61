//! [`KeyStore`] on PostgreSQL. Secrets are stored as BYTEA as they are: protect the database
//! accordingly.
//!
//! A partial unique index admits at most one `current` key, so instances starting together
//! agree on one first key with a plain `INSERT … ON CONFLICT DO NOTHING`. The same index
//! refuses any write that would make a second key current: promote a key only after demoting
//! the current one (or in one transaction).

use async_trait::async_trait;
use tessera_core::keys::{KeyRecord, KeyStatus};

use super::{PostgresStore, map_err, on};
use crate::rows;
use crate::{KeyStore, StoreError};

const TABLE: &str = "signing_keys";
/// The partial unique index on `status = 'current'` (see the migration).
const ONE_CURRENT: &str = "signing_keys_one_current";
const INSERT: &str =
    "INSERT INTO signing_keys (kid, alg, status, created_at, secret) VALUES ($1, $2, $3, $4, $5)";

/// Maps errors of writes, telling a second current key from a duplicate kid.
fn on_write(e: sqlx::Error) -> StoreError {
    let second_current = matches!(
        &e,
        sqlx::Error::Database(db) if db.is_unique_violation() && db.constraint() == Some(ONE_CURRENT)
    );
    if second_current {
        StoreError::Conflict("current key")
    } else {
        map_err(e, TABLE, "kid")
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        sqlx::query(
            "SELECT kid, alg, status, created_at, secret FROM signing_keys ORDER BY created_at, seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(on(TABLE, "kid"))?
        .iter()
        .map(rows::key)
        .collect()
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        sqlx::query(INSERT)
            .bind(&key.kid)
            .bind(key.alg.as_str())
            .bind(key.status.as_str())
            .bind(key.created_at.0)
            .bind(key.secret.as_slice())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(on_write)
    }

    async fn insert_first_key(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        // The conflict target is the partial index only: losing the race to another current
        // key inserts nothing, while a duplicate kid still fails as a conflict.
        let sql = format!("{INSERT} ON CONFLICT (status) WHERE status = 'current' DO NOTHING");
        sqlx::query(&sql)
            .bind(&key.kid)
            .bind(key.alg.as_str())
            .bind(KeyStatus::Current.as_str())
            .bind(key.created_at.0)
            .bind(key.secret.as_slice())
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(on_write)
    }

    async fn set_key_status(&self, kid: &str, status: KeyStatus) -> Result<bool, StoreError> {
        sqlx::query("UPDATE signing_keys SET status = $1 WHERE kid = $2")
            .bind(status.as_str())
            .bind(kid)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(on_write)
    }
}
