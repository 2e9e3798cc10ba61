//! [`crate::RefreshStore`] in SQL.
//!
//! Rotation reads the family through the presented token, applies
//! [`tessera_core::refresh::transition`] and writes the family it returns, all in one
//! transaction (the macro's `rotate_in`). How that transaction is run and keeps racing
//! rotations of one family apart is the dialect's ([`super::Dialect::run_rotation`],
//! [`super::Dialect::LOCK_FAMILY`]): of any number of racing callers — in one pool, another
//! pool or another process — exactly one sees the current generation and rotates; the others
//! then read the rotated family.

pub(crate) const TABLE: &str = "refresh_families";
pub(crate) const CONFLICT: &str = "refresh token";

pub(crate) const INSERT_FAMILY: &str = "INSERT INTO refresh_families
       (id, user_id, sid, client_id, scope, created_at, expires_at, generation,
        rotated_at, sealed_successor, revoked_at, jkt)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
pub(crate) const INSERT_TOKEN: &str =
    "INSERT INTO refresh_tokens (hash, family_id, generation) VALUES ($1, $2, $3)";
/// A family joined with the presented token's generation (`token_generation`), by the
/// token's hash. A macro, so that [`FAMILY_BY_TOKEN_FOR_UPDATE`] can extend the literal.
macro_rules! family_by_token {
    () => {
        "SELECT f.id, f.user_id, f.sid, f.client_id, f.scope, f.created_at, f.expires_at,
                f.generation, f.rotated_at, f.sealed_successor, f.revoked_at,
                f.jkt, t.generation AS token_generation
         FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
         WHERE t.hash = $1"
    };
}
pub(crate) const FAMILY_BY_TOKEN: &str = family_by_token!();
/// [`FAMILY_BY_TOKEN`], locking the family row until the transaction ends, for dialects with
/// row locks.
#[cfg(feature = "postgres")]
pub(crate) const FAMILY_BY_TOKEN_FOR_UPDATE: &str = concat!(family_by_token!(), " FOR UPDATE OF f");
/// Writes the state a transition changes: generation, rotation time, sealed successor and
/// revocation.
pub(crate) const SAVE_STATE: &str = "UPDATE refresh_families
     SET generation = $1, rotated_at = $2, sealed_successor = $3, revoked_at = $4
     WHERE id = $5";
pub(crate) const REVOKE: &str =
    "UPDATE refresh_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
pub(crate) const REVOKE_SESSION: &str =
    "UPDATE refresh_families SET revoked_at = $1 WHERE sid = $2 AND revoked_at IS NULL";
/// [`tessera_core::refresh::keeps_sealed_successor`] negated: `$1` is the cutoff, the latest
/// rotation time whose grace window has passed (`i64::MAX` when there is no grace window).
pub(crate) const CLEAR_STALE_SUCCESSORS: &str =
    "UPDATE refresh_families SET sealed_successor = NULL
     WHERE sealed_successor IS NOT NULL
       AND (revoked_at IS NOT NULL OR rotated_at IS NULL OR rotated_at <= $1)";
/// Token hashes go with their family (`ON DELETE CASCADE`; SQLite's foreign keys are on).
pub(crate) const DELETE_EXPIRED: &str = "DELETE FROM refresh_families WHERE expires_at <= $1";

/// A [`FAMILY_BY_TOKEN`] row: the family and the presented token's generation.
pub(crate) fn family_and_generation(
    row: &impl crate::rows::SqlRow,
) -> Result<(tessera_core::refresh::RefreshFamily, u32), crate::StoreError> {
    Ok((
        crate::rows::family(row)?,
        crate::rows::generation(row, "token_generation")?,
    ))
}

/// One rotation asked of a store: the presented token, the time, the grace window and the
/// successor to record. Owned, so a dialect may hand it to another task to run.
#[derive(Debug)]
pub(crate) struct Rotation {
    pub(crate) presented: tessera_core::opaque::TokenHash,
    pub(crate) now: tessera_core::time::UnixTime,
    pub(crate) grace_secs: i64,
    pub(crate) successor: crate::Successor,
}

/// Implements [`crate::RefreshStore`] for a [`super::Dialect`] store type.
macro_rules! impl_refresh_store {
    ($store:ty) => {
        #[::async_trait::async_trait]
        impl $crate::RefreshStore for $store {
            async fn create_family(
                &self,
                f: &::tessera_core::refresh::RefreshFamily,
                first_token: &::tessera_core::opaque::TokenHash,
            ) -> Result<(), $crate::StoreError> {
                use $crate::sql::refresh as q;
                let err = $crate::sql::on::<Self>(q::TABLE, "refresh family");
                let mut tx = self.pool.begin().await.map_err(&err)?;
                ::sqlx::query(q::INSERT_FAMILY)
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
                    .bind(&f.jkt)
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
                ::sqlx::query(q::INSERT_TOKEN)
                    .bind(first_token.0.as_slice())
                    .bind(&f.id)
                    .bind(i64::from(f.generation))
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))?;
                tx.commit().await.map_err(&err)
            }

            async fn rotate(
                &self,
                presented: &::tessera_core::opaque::TokenHash,
                now: ::tessera_core::time::UnixTime,
                grace_secs: i64,
                successor: &$crate::Successor,
            ) -> Result<$crate::RotateOutcome, $crate::StoreError> {
                use $crate::sql::Dialect as _;
                self.run_rotation($crate::sql::refresh::Rotation {
                    presented: *presented,
                    now,
                    grace_secs,
                    successor: successor.clone(),
                })
                .await
            }

            async fn family_by_token(
                &self,
                token: &::tessera_core::opaque::TokenHash,
            ) -> Result<Option<(::tessera_core::refresh::RefreshFamily, u32)>, $crate::StoreError>
            {
                use $crate::sql::refresh as q;
                ::sqlx::query(q::FAMILY_BY_TOKEN)
                    .bind(token.0.as_slice())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))?
                    .as_ref()
                    .map(q::family_and_generation)
                    .transpose()
            }

            async fn revoke_family(
                &self,
                family_id: &str,
                now: ::tessera_core::time::UnixTime,
            ) -> Result<(), $crate::StoreError> {
                let query = ::sqlx::query($crate::sql::refresh::REVOKE)
                    .bind(now.0)
                    .bind(family_id);
                self.refresh_update(query).await.map(drop)
            }

            async fn revoke_families_of_session(
                &self,
                sid: &str,
                now: ::tessera_core::time::UnixTime,
            ) -> Result<(), $crate::StoreError> {
                let query = ::sqlx::query($crate::sql::refresh::REVOKE_SESSION)
                    .bind(now.0)
                    .bind(sid);
                self.refresh_update(query).await.map(drop)
            }

            async fn clear_stale_successors(
                &self,
                now: ::tessera_core::time::UnixTime,
                grace_secs: i64,
            ) -> Result<u64, $crate::StoreError> {
                let cutoff = if grace_secs > 0 {
                    now.0.saturating_sub(grace_secs)
                } else {
                    i64::MAX
                };
                let query =
                    ::sqlx::query($crate::sql::refresh::CLEAR_STALE_SUCCESSORS).bind(cutoff);
                self.refresh_update(query).await
            }

            async fn delete_expired_families(
                &self,
                now: ::tessera_core::time::UnixTime,
            ) -> Result<u64, $crate::StoreError> {
                let query = ::sqlx::query($crate::sql::refresh::DELETE_EXPIRED).bind(now.0);
                self.refresh_update(query).await
            }
        }

        impl $store {
            /// One rotation's read, transition and writes, on `conn` — inside a transaction
            /// the dialect opened and will commit ([`super::Dialect::run_rotation`]).
            /// Nothing is written for a refused token.
            pub(crate) async fn rotate_in(
                conn: &mut <<Self as $crate::sql::Dialect>::Db as ::sqlx::Database>::Connection,
                r: &$crate::sql::refresh::Rotation,
            ) -> Result<$crate::RotateOutcome, $crate::StoreError> {
                use ::tessera_core::refresh::{Transition, transition};
                use $crate::RotateOutcome;
                use $crate::sql::refresh as q;
                let err = $crate::sql::on::<Self>(q::TABLE, q::CONFLICT);
                let locked = ::sqlx::query(<Self as $crate::sql::Dialect>::LOCK_FAMILY)
                    .bind(r.presented.0.as_slice())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(&err)?;
                let Some((family, presented_generation)) =
                    locked.as_ref().map(q::family_and_generation).transpose()?
                else {
                    return Ok(RotateOutcome::Refused);
                };
                let (outcome, save) = match transition(
                    family,
                    presented_generation,
                    r.now,
                    r.grace_secs,
                    &r.successor.sealed,
                ) {
                    Transition::Rotate(rotated) => {
                        ::sqlx::query(q::INSERT_TOKEN)
                            .bind(r.successor.hash.0.as_slice())
                            .bind(&rotated.id)
                            .bind(i64::from(rotated.generation))
                            .execute(&mut *conn)
                            .await
                            .map_err(&err)?;
                        (RotateOutcome::Rotated(rotated.clone()), Some(rotated))
                    }
                    Transition::Replay { family, sealed } => {
                        // Saving clears the sealed successor: one replay per rotation.
                        (
                            RotateOutcome::GraceRetry {
                                family: family.clone(),
                                sealed,
                            },
                            Some(family),
                        )
                    }
                    Transition::Revoke(revoked) => {
                        (RotateOutcome::Reused(revoked.clone()), Some(revoked))
                    }
                    Transition::Refuse => (RotateOutcome::Refused, None),
                };
                if let Some(f) = save {
                    ::sqlx::query(q::SAVE_STATE)
                        .bind(i64::from(f.generation))
                        .bind(f.rotated_at.map(|t| t.0))
                        .bind(&f.sealed_successor)
                        .bind(f.revoked_at.map(|t| t.0))
                        .bind(&f.id)
                        .execute(&mut *conn)
                        .await
                        .map_err(&err)?;
                }
                Ok(outcome)
            }

            /// Runs `query`, an update or delete of this module; returns how many rows it
            /// changed.
            async fn refresh_update<'q>(
                &self,
                query: $crate::sql::Query<'q, Self>,
            ) -> Result<u64, $crate::StoreError> {
                use $crate::sql::refresh as q;
                query
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }
        }
    };
}
pub(crate) use impl_refresh_store;
