//! [`KeyStore`] on SQLite. Secrets are stored as BLOBs as they are: protect the file (it is
//! created mode 0600).

use async_trait::async_trait;
use tessera_core::keys::{KeyRecord, KeyStatus};

use super::{SqliteStore, on};
use crate::rows;
use crate::{KeyStore, StoreError};

const TABLE: &str = "signing_keys";
const INSERT: &str =
    "INSERT INTO signing_keys (kid, alg, status, created_at, secret) VALUES (?, ?, ?, ?, ?)";

#[async_trait]
impl KeyStore for SqliteStore {
    async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        sqlx::query("SELECT kid, alg, status, created_at, secret FROM signing_keys ORDER BY created_at, rowid")
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
            .map_err(on(TABLE, "kid"))
    }

    async fn insert_first_key(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        let err = on(TABLE, "kid");
        // IMMEDIATE: the check and the insert happen under the write lock, so instances
        // starting together cannot both see "no current key".
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(&err)?;
        let current = sqlx::query("SELECT 1 FROM signing_keys WHERE status = ? LIMIT 1")
            .bind(KeyStatus::Current.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(&err)?;
        if current.is_some() {
            tx.rollback().await.map_err(&err)?;
            return Ok(false);
        }
        sqlx::query(INSERT)
            .bind(&key.kid)
            .bind(key.alg.as_str())
            .bind(KeyStatus::Current.as_str())
            .bind(key.created_at.0)
            .bind(key.secret.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok(true)
    }

    async fn set_key_status(&self, kid: &str, status: KeyStatus) -> Result<bool, StoreError> {
        sqlx::query("UPDATE signing_keys SET status = ? WHERE kid = ?")
            .bind(status.as_str())
            .bind(kid)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(on(TABLE, "kid"))
    }
}
