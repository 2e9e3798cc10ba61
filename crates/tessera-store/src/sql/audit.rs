//! [`crate::AuditStore`] in SQL: one row per event, `seq` assigned by the database.

pub(crate) const TABLE: &str = "audit_events";
/// Nothing in the table is unique but the database-assigned `seq`.
pub(crate) const CONFLICT: &str = "audit event";

pub(crate) const INSERT: &str =
    "INSERT INTO audit_events (at, kind, username, ip, detail) VALUES ($1, $2, $3, $4, $5)";
/// `$1` username or NULL, `$2` kind or NULL, `$3` earliest `at`, `$4` `seq` bound (exclusive),
/// `$5` limit.
pub(crate) const QUERY: &str = "SELECT seq, at, kind, username, ip, detail FROM audit_events
     WHERE ($1 IS NULL OR username = $1) AND ($2 IS NULL OR kind = $2)
       AND at >= $3 AND seq < $4
     ORDER BY seq DESC LIMIT $5";
pub(crate) const PRUNE: &str = "DELETE FROM audit_events WHERE at < $1";

/// Implements [`crate::AuditStore`] for a [`super::Dialect`] store type.
macro_rules! impl_audit_store {
    ($store:ty) => {
        #[::async_trait::async_trait]
        impl $crate::AuditStore for $store {
            async fn append_event(
                &self,
                event: &$crate::AuditEvent,
            ) -> Result<(), $crate::StoreError> {
                use $crate::sql::audit as q;
                ::sqlx::query(q::INSERT)
                    .bind(event.at.0)
                    .bind(event.kind.as_str())
                    .bind(event.user.as_deref())
                    .bind(event.ip.as_deref())
                    .bind(&event.detail)
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }

            async fn events(
                &self,
                query: &$crate::AuditQuery,
            ) -> Result<Vec<$crate::AuditRecord>, $crate::StoreError> {
                use $crate::sql::audit as q;
                ::sqlx::query(q::QUERY)
                    .bind(query.user.as_deref())
                    .bind(query.kind.map(|k| k.as_str()))
                    .bind(query.since.map_or(i64::MIN, |t| t.0))
                    .bind(query.before.unwrap_or(i64::MAX))
                    .bind(i64::from(query.page_size()))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))?
                    .iter()
                    .map($crate::rows::audit_record)
                    .collect()
            }

            async fn prune_events(
                &self,
                cutoff: ::tessera_core::time::UnixTime,
            ) -> Result<u64, $crate::StoreError> {
                use $crate::sql::audit as q;
                ::sqlx::query(q::PRUNE)
                    .bind(cutoff.0)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }
        }
    };
}
pub(crate) use impl_audit_store;
