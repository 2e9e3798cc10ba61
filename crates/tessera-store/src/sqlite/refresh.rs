//! [`RefreshStore`] on SQLite.
//!
//! Rotation reads the family, applies [`transition`] and writes the result inside one
//! `BEGIN IMMEDIATE` transaction: the write lock is taken before the read, so of any number of
//! racing callers — in this pool, another pool or another process — exactly one sees the
//! current generation and rotates; the others then read the rotated family.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use tessera_core::opaque::TokenHash;
use tessera_core::refresh::{RefreshFamily, Transition, transition};
use tessera_core::time::UnixTime;

use super::{SqliteStore, on};
use crate::rows;
use crate::{RefreshStore, RotateOutcome, StoreError, Successor};

const TABLE: &str = "refresh_families";
const CONFLICT: &str = "refresh token";

/// The family columns, qualified for the join with `refresh_tokens` (`t`).
const SELECT_BY_TOKEN: &str =
    "SELECT f.id, f.user_id, f.sid, f.client_id, f.scope, f.created_at, f.expires_at,
                                      f.generation, f.rotated_at, f.sealed_successor, f.revoked_at,
                                      t.generation AS token_generation
                               FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
                               WHERE t.hash = ?";

/// A family joined with the presented token's generation.
fn family_and_generation(row: &SqliteRow) -> Result<(RefreshFamily, u32), StoreError> {
    Ok((
        rows::family(row)?,
        rows::generation(row, "token_generation")?,
    ))
}

#[async_trait]
impl RefreshStore for SqliteStore {
    async fn create_family(
        &self,
        f: &RefreshFamily,
        first_token: &TokenHash,
    ) -> Result<(), StoreError> {
        let err = on(TABLE, "refresh family");
        let mut tx = self.pool.begin().await.map_err(&err)?;
        sqlx::query(
            "INSERT INTO refresh_families
               (id, user_id, sid, client_id, scope, created_at, expires_at, generation,
                rotated_at, sealed_successor, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&f.id)
        .bind(&f.user_id)
        .bind(&f.sid)
        .bind(&f.client_id)
        .bind(&f.scope)
        .bind(f.created_at.0)
        .bind(f.expires_at.0)
        .bind(i64::from(f.generation))
        .bind(f.rotated_at.map(|t| t.0))
        .bind(&f.sealed_successor)
        .bind(f.revoked_at.map(|t| t.0))
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        sqlx::query("INSERT INTO refresh_tokens (hash, family_id, generation) VALUES (?, ?, ?)")
            .bind(first_token.0.to_vec())
            .bind(&f.id)
            .bind(i64::from(f.generation))
            .execute(&mut *tx)
            .await
            .map_err(on(TABLE, CONFLICT))?;
        tx.commit().await.map_err(&err)
    }

    async fn rotate(
        &self,
        presented: &TokenHash,
        now: UnixTime,
        grace_secs: i64,
        successor: &Successor,
    ) -> Result<RotateOutcome, StoreError> {
        let err = on(TABLE, CONFLICT);
        // IMMEDIATE: take the write lock before reading (see the module docs). Dropping `tx`
        // on an early return rolls it back.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(&err)?;
        let row = sqlx::query(SELECT_BY_TOKEN)
            .bind(presented.0.to_vec())
            .fetch_optional(&mut *tx)
            .await
            .map_err(&err)?;
        let Some((family, presented_generation)) =
            row.as_ref().map(family_and_generation).transpose()?
        else {
            tx.rollback().await.map_err(&err)?;
            return Ok(RotateOutcome::Refused);
        };
        let outcome = match transition(
            family,
            presented_generation,
            now,
            grace_secs,
            &successor.sealed,
        ) {
            Transition::Rotate(rotated) => {
                sqlx::query(
                    "INSERT INTO refresh_tokens (hash, family_id, generation) VALUES (?, ?, ?)",
                )
                .bind(successor.hash.0.to_vec())
                .bind(&rotated.id)
                .bind(i64::from(rotated.generation))
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
                sqlx::query("UPDATE refresh_families SET generation = ?, rotated_at = ?, sealed_successor = ? WHERE id = ?")
                    .bind(i64::from(rotated.generation))
                    .bind(now.0)
                    .bind(&successor.sealed)
                    .bind(&rotated.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
                RotateOutcome::Rotated(rotated)
            }
            Transition::Replay { family, sealed } => RotateOutcome::GraceRetry { family, sealed },
            Transition::Revoke(revoked) => {
                sqlx::query("UPDATE refresh_families SET revoked_at = ? WHERE id = ?")
                    .bind(now.0)
                    .bind(&revoked.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
                RotateOutcome::Reused(revoked)
            }
            Transition::Refuse => RotateOutcome::Refused,
        };
        tx.commit().await.map_err(&err)?;
        Ok(outcome)
    }

    async fn family_by_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(RefreshFamily, u32)>, StoreError> {
        sqlx::query(SELECT_BY_TOKEN)
            .bind(token.0.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(on(TABLE, CONFLICT))?
            .as_ref()
            .map(family_and_generation)
            .transpose()
    }

    async fn revoke_family(&self, family_id: &str, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now.0)
        .bind(family_id)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(on(TABLE, CONFLICT))
    }

    async fn revoke_families_of_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = ? WHERE sid = ? AND revoked_at IS NULL",
        )
        .bind(now.0)
        .bind(sid)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(on(TABLE, CONFLICT))
    }

    async fn delete_expired_families(&self, now: UnixTime) -> Result<u64, StoreError> {
        // Token hashes go with their family (ON DELETE CASCADE; foreign keys are on).
        sqlx::query("DELETE FROM refresh_families WHERE expires_at <= ?")
            .bind(now.0)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(on(TABLE, CONFLICT))
    }
}
