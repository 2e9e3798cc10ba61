//! [`crate::ClientStore`] in SQL: one row per client, the id's uniqueness enforced by the
//! schema. A confidential client's secret is there only as its SHA-256 (BLOB / BYTEA); the
//! scope and the redirect URIs are space-separated text ([`crate::rows::client_columns`]).

pub(crate) const TABLE: &str = "clients";
/// What a uniqueness violation means: only the id is unique.
pub(crate) const CONFLICT: &str = "client_id";

pub(crate) const INSERT: &str = "INSERT INTO clients
     (id, name, scope, redirect_uris, is_public, first_party, dpop, secret_hash, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub(crate) const BY_ID: &str = "SELECT id, name, scope, redirect_uris, is_public, first_party, dpop, secret_hash, created_at FROM clients WHERE id = $1";
pub(crate) const DELETE: &str = "DELETE FROM clients WHERE id = $1";

/// Every client, oldest first; clients of one second in insertion order, by `order`, the
/// dialect's [`super::Dialect::INSERTION_ORDER`] column.
pub(crate) fn all(order: &str) -> String {
    format!(
        "SELECT id, name, scope, redirect_uris, is_public, first_party, dpop, secret_hash, \
         created_at FROM clients ORDER BY created_at, {order}"
    )
}

/// Implements [`crate::ClientStore`] for a [`super::Dialect`] store type.
macro_rules! impl_client_store {
    ($store:ty) => {
        #[::async_trait::async_trait]
        impl $crate::ClientStore for $store {
            async fn insert_client(
                &self,
                client: &::tessera_core::client::ClientRecord,
            ) -> Result<(), $crate::StoreError> {
                use $crate::sql::clients as q;
                let c = $crate::rows::client_columns(client)?;
                ::sqlx::query(q::INSERT)
                    .bind(client.id.as_str())
                    .bind(&client.name)
                    .bind(c.scope)
                    .bind(c.redirect_uris)
                    .bind(client.public)
                    .bind(client.first_party)
                    .bind(client.dpop)
                    .bind(client.secret_hash.as_ref().map(|h| h.0.as_slice()))
                    .bind(client.created_at.0)
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }

            async fn client(
                &self,
                id: &::tessera_core::client::ClientId,
            ) -> Result<Option<::tessera_core::client::ClientRecord>, $crate::StoreError> {
                use $crate::sql::clients as q;
                ::sqlx::query(q::BY_ID)
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))?
                    .as_ref()
                    .map($crate::rows::client)
                    .transpose()
            }

            async fn clients(
                &self,
            ) -> Result<Vec<::tessera_core::client::ClientRecord>, $crate::StoreError> {
                use $crate::sql::clients as q;
                ::sqlx::query(&q::all(<Self as $crate::sql::Dialect>::INSERTION_ORDER))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))?
                    .iter()
                    .map($crate::rows::client)
                    .collect()
            }

            async fn delete_client(
                &self,
                id: &::tessera_core::client::ClientId,
            ) -> Result<bool, $crate::StoreError> {
                use $crate::sql::clients as q;
                ::sqlx::query(q::DELETE)
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected() > 0)
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }
        }
    };
}
pub(crate) use impl_client_store;
