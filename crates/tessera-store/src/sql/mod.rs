//! The SQL of the relational backends, written once for SQLite and PostgreSQL.
//!
//! Each submodule holds one record kind's statement texts (`$N` placeholders, which sqlx
//! accepts on both drivers) and a macro that implements that record's store trait over them.
//! [`sql_store!`] emits all seven implementations for a backend's store type; the backend
//! supplies only what really differs between the dialects, through [`Dialect`]: error codes,
//! how a rotation takes its lock and commits, the first-key insert and the revocation announcement.
//!
//! Design decision: the shared implementations are macros instantiated per backend, not
//! functions generic over `sqlx::Database`. Each expansion is ordinary code on one concrete
//! driver, so it needs none of the higher-ranked `Encode`/`Executor` bounds a generic version
//! would repeat on every function — bounds that also break the `Send` proofs `async_trait`
//! needs. Row decoding is already shared by [`crate::rows`].

pub(crate) mod audit;
pub(crate) mod clients;
pub(crate) mod codes;
pub(crate) mod keys;
pub(crate) mod refresh;
pub(crate) mod replays;
pub(crate) mod revocations;
pub(crate) mod sessions;
pub(crate) mod users;

use std::sync::Arc;

use tessera_core::keys::KeyRecord;
use tessera_core::revocation::Revocation;

use crate::{RevocationFeed, RotateOutcome, StoreError};

/// The transaction type of a dialect's driver.
pub(crate) type Tx<D> = sqlx::Transaction<'static, <D as Dialect>::Db>;

/// A query on a dialect's driver.
pub(crate) type Query<'q, D> = sqlx::query::Query<
    'q,
    <D as Dialect>::Db,
    <<D as Dialect>::Db as sqlx::Database>::Arguments<'q>,
>;

/// What a relational backend supplies to [`sql_store!`]: only what differs between dialects.
/// The store type must also have a `pool: sqlx::Pool<Self::Db>` field.
pub(crate) trait Dialect: Sized + Send + Sync {
    /// The sqlx driver.
    type Db: sqlx::Database;

    /// The column that orders rows created in the same second by insertion (`rowid` on
    /// SQLite, an identity column on PostgreSQL).
    const INSERTION_ORDER: &'static str;

    /// The `COLLATE` clause that orders text by its bytes (PostgreSQL's default collation
    /// follows the locale; SQLite's is already binary).
    const BYTE_ORDER: &'static str;

    /// Whether a database error means "try again later" (the caller gets
    /// [`StoreError::Unavailable`]) rather than "this statement failed".
    fn is_transient(e: &dyn sqlx::error::DatabaseError) -> bool;

    /// The statement that reads the presented token's family (`$1` the token's hash; the
    /// columns of [`refresh::FAMILY_BY_TOKEN`]) inside the rotation's transaction, so that no
    /// other rotation of that family can interleave before the transaction ends.
    const LOCK_FAMILY: &'static str;

    /// Runs one refresh rotation (the store's `rotate_in`, from
    /// [`refresh::impl_refresh_store!`]) in a transaction of this dialect's and commits it.
    async fn run_rotation(&self, rotation: refresh::Rotation) -> Result<RotateOutcome, StoreError>;

    /// Inserts `key` only if no key has its status (see
    /// [`crate::KeyStore::insert_key_if_vacant`]).
    async fn insert_key_if_vacant(&self, key: &KeyRecord) -> Result<bool, StoreError>;

    /// Announces a revocation as stored, inside the transaction that stored it.
    async fn announce(&self, tx: &mut Tx<Self>, stored: &Revocation) -> Result<(), StoreError>;

    /// The push feed [`Self::announce`] feeds, if the dialect has one.
    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>>;

    /// Clears, where this dialect can, the bytes a key's replaced secret left behind (a
    /// plain key sealed, or a key re-wrapped under a new KEK): called after each replacement.
    async fn forget_replaced_secret(&self) -> Result<(), StoreError>;
}

/// Maps an sqlx error to a [`StoreError`], keeping it as the source. `table` names the table
/// whose rows were being decoded; `conflict` names what a uniqueness violation means.
pub(crate) fn map_err<D: Dialect>(
    e: sqlx::Error,
    table: &'static str,
    conflict: &'static str,
) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(conflict),
        sqlx::Error::Database(db) if D::is_transient(db.as_ref()) => {
            StoreError::Unavailable(Box::new(e))
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
        // Decoding failures keep sqlx's error as the source; the table goes to the log.
        sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => {
            tracing::error!(table, "undecodable row");
            StoreError::Backend(Box::new(e))
        }
        _ => StoreError::Backend(Box::new(e)),
    }
}

/// An error mapper for statements on `table`, where a uniqueness violation means `conflict`.
pub(crate) fn on<D: Dialect>(
    table: &'static str,
    conflict: &'static str,
) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| map_err::<D>(e, table, conflict)
}

/// Implements every store trait for a backend's store type (`$store`, which implements
/// [`Dialect`]) with the shared statements.
macro_rules! sql_store {
    ($store:ty) => {
        $crate::sql::users::impl_user_store!($store);
        $crate::sql::sessions::impl_session_store!($store);
        $crate::sql::refresh::impl_refresh_store!($store);
        $crate::sql::revocations::impl_revocation_store!($store);
        $crate::sql::keys::impl_key_store!($store);
        $crate::sql::clients::impl_client_store!($store);
        $crate::sql::audit::impl_audit_store!($store);
        $crate::sql::replays::impl_replay_store!($store);
        $crate::sql::codes::impl_code_store!($store);
    };
}
pub(crate) use sql_store;
