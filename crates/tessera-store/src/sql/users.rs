//! [`crate::UserStore`] in SQL: plain rows, the username's uniqueness enforced by the schema.

pub(crate) const TABLE: &str = "users";
/// What a uniqueness violation means. Both the id and the name are unique, but only the name
/// can collide in practice (ids are random), so a violation is reported as the name's.
pub(crate) const CONFLICT: &str = "username";

pub(crate) const INSERT: &str =
    "INSERT INTO users (id, username, password_hash, is_admin, created_at)
     VALUES ($1, $2, $3, $4, $5)";
pub(crate) const BY_NAME: &str = "SELECT id, username, password_hash, is_admin, created_at, credential_epoch, disabled FROM users WHERE username = $1";
pub(crate) const BY_ID: &str = "SELECT id, username, password_hash, is_admin, created_at, credential_epoch, disabled FROM users WHERE id = $1";
/// `$1` a `LIKE` pattern escaped with a backslash ([`like_containing`]), `$2` the limit;
/// ordered by the bytes of the name (`collation`: the dialect's
/// [`super::Dialect::BYTE_ORDER`]), so every backend lists names in the same order.
pub(crate) fn search(collation: &str) -> String {
    format!(
        "SELECT id, username, password_hash, is_admin, created_at, credential_epoch, disabled \
         FROM users WHERE username LIKE $1 ESCAPE '\\' ORDER BY username {collation} LIMIT $2"
    )
}
pub(crate) const DISABLE: &str =
    "UPDATE users SET disabled = TRUE, credential_epoch = credential_epoch + 1 WHERE id = $1";

/// A `LIKE` pattern matching names that contain `fragment` literally: its `%`, `_` and `\`
/// are escaped (usernames may hold `_`, which `LIKE` would take for "any character").
pub(crate) fn like_containing(fragment: &str) -> String {
    let mut pattern = String::with_capacity(fragment.len() + 2);
    pattern.push('%');
    for c in fragment.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
pub(crate) const SET_PASSWORD_HASH: &str = "UPDATE users SET password_hash = $1 WHERE id = $2";
pub(crate) const BUMP_EPOCH: &str =
    "UPDATE users SET credential_epoch = credential_epoch + 1 WHERE id = $1";

/// Implements [`crate::UserStore`] for a [`super::Dialect`] store type.
macro_rules! impl_user_store {
    ($store:ty) => {
        impl $store {
            /// The user `sql` (a lookup statement of this module) finds by `value`.
            async fn user_where(
                &self,
                sql: &'static str,
                value: &str,
            ) -> Result<Option<$crate::User>, $crate::StoreError> {
                use $crate::sql::users as q;
                ::sqlx::query(sql)
                    .bind(value)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))?
                    .as_ref()
                    .map($crate::rows::user)
                    .transpose()
            }
        }

        #[::async_trait::async_trait]
        impl $crate::UserStore for $store {
            async fn create_user(&self, user: &$crate::User) -> Result<(), $crate::StoreError> {
                use $crate::sql::users as q;
                ::sqlx::query(q::INSERT)
                    .bind(&user.id)
                    .bind(&user.username)
                    .bind(&user.password_hash)
                    .bind(user.is_admin)
                    .bind(user.created_at.0)
                    .execute(&self.pool)
                    .await
                    .map(drop)
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }

            async fn user_by_name(
                &self,
                username: &str,
            ) -> Result<Option<$crate::User>, $crate::StoreError> {
                self.user_where($crate::sql::users::BY_NAME, username).await
            }

            async fn user_by_id(
                &self,
                id: &str,
            ) -> Result<Option<$crate::User>, $crate::StoreError> {
                self.user_where($crate::sql::users::BY_ID, id).await
            }

            async fn set_password_hash(
                &self,
                user_id: &str,
                password_hash: &str,
            ) -> Result<bool, $crate::StoreError> {
                use $crate::sql::users as q;
                ::sqlx::query(q::SET_PASSWORD_HASH)
                    .bind(password_hash)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected() > 0)
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }

            async fn bump_credential_epoch(
                &self,
                user_id: &str,
            ) -> Result<bool, $crate::StoreError> {
                use $crate::sql::users as q;
                ::sqlx::query(q::BUMP_EPOCH)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected() > 0)
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }

            async fn disable_user(&self, user_id: &str) -> Result<bool, $crate::StoreError> {
                use $crate::sql::users as q;
                ::sqlx::query(q::DISABLE)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await
                    .map(|r| r.rows_affected() > 0)
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))
            }

            async fn search_users(
                &self,
                fragment: &str,
                limit: u32,
            ) -> Result<Vec<$crate::User>, $crate::StoreError> {
                use $crate::sql::users as q;
                ::sqlx::query(&q::search(<Self as $crate::sql::Dialect>::BYTE_ORDER))
                    .bind(q::like_containing(fragment))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql::on::<Self>(q::TABLE, q::CONFLICT))?
                    .iter()
                    .map($crate::rows::user)
                    .collect()
            }
        }
    };
}
pub(crate) use impl_user_store;
