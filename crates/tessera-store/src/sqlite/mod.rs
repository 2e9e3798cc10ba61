//! The embedded default store: one SQLite file, no server to run.
//!
//! Design decision: durability and atomicity come from SQLite itself, never from an in-process
//! lock, so several pools — or several processes — on one file stay correct. The file is opened
//! with `journal_mode=WAL` and `synchronous=FULL` (a `kill -9` loses nothing that was
//! acknowledged) and `secure_delete=ON` (replaced key secrets leave no bytes behind), and
//! every read-modify-write (refresh rotation, the first signing key) runs in a `BEGIN
//! IMMEDIATE` transaction, which takes the database's write lock before reading so two
//! writers can never both act on the same stale read. Rotations in one process go through one
//! writer task that commits them in groups (`rotations`): one disk sync for many rotations,
//! and no rotation sleeping in SQLite's busy handler (1, 2, 5… ms) behind another of its own
//! process. The SQL itself is shared with
//! PostgreSQL (`crate::sql`); this module adds the file, the pragmas, the locking and the
//! error codes. Queries are built at run time (`sqlx::query` + `bind`), so building needs no
//! database.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tessera_core::keys::KeyRecord;
use tessera_core::revocation::Revocation;

use crate::sql::{self, Dialect, Tx};
use crate::{BoxError, RevocationFeed, RotateOutcome, StoreError};

mod rotations;

/// The schema, embedded at build time from `migrations/sqlite/` and applied at open.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another writer's lock before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections per pool. SQLite has one writer at a time; readers proceed in parallel in WAL mode.
const MAX_CONNECTIONS: u32 = 8;

/// A store in one SQLite database file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// This store's rotation writer (see the module docs).
    rotations: rotations::RotationQueue,
}

// Every store trait, from the shared SQL; the dialect's part is `impl Dialect` below.
sql::sql_store!(SqliteStore);

impl SqliteStore {
    /// Opens (creating if needed, with mode 0600 on Unix) the database file at `path` and
    /// applies any pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the file cannot be created or opened,
    /// [`StoreError::Backend`] if a migration fails.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        create_private_file(path).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted and replaced content is overwritten with zeros, so a sealed key's plain
            // bytes (or its old-KEK ciphertext) do not linger in free space of the file.
            // Measured within the noise of the write path, which is bound by `fsync`.
            .pragma("secure_delete", "ON")
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(sql::on::<Self>("database", "database"))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        let rotations = rotations::RotationQueue::start(pool.clone());
        Ok(Self { pool, rotations })
    }

    /// Opens the database named by a `sqlite://PATH` (or `sqlite:PATH`) URL; see
    /// [`SqliteStore::open`]. Query parameters are not accepted: the store sets its own options.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is not of that form; otherwise as [`SqliteStore::open`].
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .filter(|p| !p.is_empty() && !p.contains('?'))
            .ok_or_else(|| StoreError::Backend(BoxError::from("expected a sqlite://PATH URL")))?;
        Self::open(Path::new(path)).await
    }

    /// The underlying pool, for maintenance and tests.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Creates the database file readable by its owner only, before SQLite creates it with the
/// process umask. An existing file is left as it is.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(drop)
}

/// SQLite's primary result codes for "another connection holds the lock".
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// Whether any key is current; the first-key insert's check.
const ANY_KEY_OF_STATUS: &str = "SELECT 1 FROM signing_keys WHERE status = $1 LIMIT 1";

impl Dialect for SqliteStore {
    type Db = Sqlite;

    const INSERTION_ORDER: &'static str = "rowid";
    const BYTE_ORDER: &'static str = "COLLATE BINARY";

    /// BEGIN IMMEDIATE already holds the database's write lock: a plain read suffices.
    const LOCK_FAMILY: &'static str = sql::refresh::FAMILY_BY_TOKEN;

    fn is_transient(e: &dyn sqlx::error::DatabaseError) -> bool {
        // Extended result codes carry the primary code in their low byte.
        e.code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
    }

    /// Through the store's rotation writer, committed with whatever rotations wait with it.
    async fn run_rotation(
        &self,
        rotation: sql::refresh::Rotation,
    ) -> Result<RotateOutcome, StoreError> {
        self.rotations.rotate(rotation).await
    }

    async fn insert_key_if_vacant(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        let err = sql::keys::on_write::<Self>;
        // IMMEDIATE: the check and the insert happen under the write lock, so instances
        // inserting together cannot both see "no key of this status".
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        let taken = sqlx::query(ANY_KEY_OF_STATUS)
            .bind(key.status.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        if taken.is_some() {
            tx.rollback().await.map_err(err)?;
            return Ok(false);
        }
        sql::keys::bind_insert(sqlx::query(sql::keys::INSERT), key)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(true)
    }

    async fn announce(&self, _tx: &mut Tx<Self>, _stored: &Revocation) -> Result<(), StoreError> {
        // No push feed: other instances learn of revocations by reloading the list.
        Ok(())
    }

    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        None
    }

    /// `secure_delete` already zeroed the old secret in the changed page, but the write-ahead
    /// log still holds earlier images of that page: a truncating checkpoint copies the page
    /// into the database file and empties the log. It waits for readers (the busy timeout);
    /// if one still holds an old snapshot, the log stays until a later checkpoint, and the
    /// caller is told nothing worse than that in the log.
    async fn forget_replaced_secret(&self) -> Result<(), StoreError> {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.pool)
            .await
            .map_err(sql::on::<Self>("database", "database"))?;
        if busy != 0 {
            tracing::warn!(
                "a reader kept the write-ahead log busy: it may hold a replaced signing-key \
                 secret until the next checkpoint"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use sqlx::Row;

    use super::SqliteStore;
    use crate::sql;

    /// Regression guard for the per-request revocation check: it probes the primary key
    /// `(kind, key)` and never scans the table.
    #[tokio::test]
    async fn revocations_for_searches_the_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("plan.db"))
            .await
            .unwrap();
        let rows = sqlx::query(&format!(
            "EXPLAIN QUERY PLAN {}",
            sql::revocations::FOR_CREDENTIAL
        ))
        .fetch_all(store.pool())
        .await
        .unwrap();
        let plan: Vec<String> = rows.iter().map(|r| r.get("detail")).collect();
        let searches = plan
            .iter()
            .filter(|d| {
                d.starts_with("SEARCH revocations USING INDEX sqlite_autoindex_revocations")
            })
            .count();
        // One probe each for the jti, the sid, the user and the client.
        assert_eq!(searches, 4, "{plan:?}");
        assert!(!plan.iter().any(|d| d.starts_with("SCAN")), "{plan:?}");
    }
}
