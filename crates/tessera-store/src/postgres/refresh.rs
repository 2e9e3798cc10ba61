//! [`RefreshStore`] on PostgreSQL.
//!
//! Rotation runs in one transaction: find the family through the presented token's hash, lock
//! the family row (`SELECT … FOR UPDATE`), apply [`transition`] and write the result. A racing
//! caller — in this pool or another instance's — blocks on the row lock and, once the winner
//! commits, reads the rotated family (READ COMMITTED re-reads a locked row's newest version), so
//! exactly one of them rotates and the others get the grace retry or the reuse verdict.

use async_trait::async_trait;
use sqlx::Row;
use tessera_core::opaque::TokenHash;
use tessera_core::refresh::{RefreshFamily, Transition, transition};
use tessera_core::time::UnixTime;

use super::{PostgresStore, on};
use crate::rows;
use crate::{RefreshStore, RotateOutcome, StoreError, Successor};

const TABLE: &str = "refresh_families";
const CONFLICT: &str = "refresh token";

/// The family columns, qualified for the join with `refresh_tokens` (`t`).
const FAMILY_COLUMNS: &str = "f.id, f.user_id, f.sid, f.client_id, f.scope, f.created_at,
     f.expires_at, f.generation, f.rotated_at, f.sealed_successor, f.revoked_at";

#[async_trait]
impl RefreshStore for PostgresStore {
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        sqlx::query("INSERT INTO refresh_tokens (hash, family_id, generation) VALUES ($1, $2, $3)")
            .bind(first_token.0.as_slice())
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
        // Dropping `tx` on an early return rolls it back.
        let mut tx = self.pool.begin().await.map_err(&err)?;
        // A token's family and generation never change once written: no lock needed here.
        let token = sqlx::query("SELECT family_id, generation FROM refresh_tokens WHERE hash = $1")
            .bind(presented.0.as_slice())
            .fetch_optional(&mut *tx)
            .await
            .map_err(&err)?;
        let Some(token) = token else {
            tx.rollback().await.map_err(&err)?;
            return Ok(RotateOutcome::Refused);
        };
        let family_id: String = token.try_get("family_id").map_err(&err)?;
        let presented_generation = rows::generation(&token, "generation")?;
        // The lock every racer on this family queues behind (see the module docs). The family
        // may have been deleted since (expired): then the token is unknown.
        let row = sqlx::query(&format!(
            "SELECT {FAMILY_COLUMNS} FROM refresh_families f WHERE f.id = $1 FOR UPDATE"
        ))
        .bind(&family_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(&err)?;
        let Some(family) = row.as_ref().map(rows::family).transpose()? else {
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
                    "INSERT INTO refresh_tokens (hash, family_id, generation)
                     VALUES ($1, $2, $3)",
                )
                .bind(successor.hash.0.as_slice())
                .bind(&rotated.id)
                .bind(i64::from(rotated.generation))
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
                sqlx::query(
                    "UPDATE refresh_families
                     SET generation = $1, rotated_at = $2, sealed_successor = $3
                     WHERE id = $4",
                )
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
                sqlx::query("UPDATE refresh_families SET revoked_at = $1 WHERE id = $2")
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
        let sql = format!(
            "SELECT {FAMILY_COLUMNS}, t.generation AS token_generation
             FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
             WHERE t.hash = $1"
        );
        sqlx::query(&sql)
            .bind(token.0.as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(on(TABLE, CONFLICT))?
            .as_ref()
            .map(|row| {
                Ok((
                    rows::family(row)?,
                    rows::generation(row, "token_generation")?,
                ))
            })
            .transpose()
    }

    async fn revoke_family(&self, family_id: &str, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE refresh_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
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
            "UPDATE refresh_families SET revoked_at = $1 WHERE sid = $2 AND revoked_at IS NULL",
        )
        .bind(now.0)
        .bind(sid)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(on(TABLE, CONFLICT))
    }

    async fn delete_expired_families(&self, now: UnixTime) -> Result<u64, StoreError> {
        // Token hashes go with their family (ON DELETE CASCADE).
        sqlx::query("DELETE FROM refresh_families WHERE expires_at <= $1")
            .bind(now.0)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(on(TABLE, CONFLICT))
    }
}
