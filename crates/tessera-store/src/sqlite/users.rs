//! [`UserStore`] on SQLite: plain rows, the username's uniqueness enforced by the schema.

use async_trait::async_trait;

use super::{SqliteStore, on};
use crate::{StoreError, User, UserStore, rows};

const TABLE: &str = "users";
const COLUMNS: &str = "id, username, password_hash, is_admin, created_at";

impl SqliteStore {
    async fn user_where(&self, column: &str, value: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE {column} = ?");
        sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(on(TABLE, "username"))?
            .as_ref()
            .map(rows::user)
            .transpose()
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        // Both the id and the name are unique; only the name can collide in practice (ids are
        // random), so a violation is reported as the name's.
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, is_admin, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(user.is_admin)
        .bind(user.created_at.0)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(on(TABLE, "username"))
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.user_where("username", username).await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.user_where("id", id).await
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(on(TABLE, "username"))
    }
}
