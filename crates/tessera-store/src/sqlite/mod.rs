//! The embedded default store: one SQLite file, no server to run.
//!
//! Design decision: durability and atomicity come from SQLite itself, never from an in-process
//! lock, so several pools — or several processes — on one file stay correct. The file is opened
//! with `journal_mode=WAL` and `synchronous=FULL` (a `kill -9` loses nothing that was
//! acknowledged), and every read-modify-write (refresh rotation, the first signing key) runs in
//! a `BEGIN IMMEDIATE` transaction, which takes the database's write lock before reading so two
//! writers can never both act on the same stale read. Queries are built at run time
//! (`sqlx::query` + `bind`), so building needs no database.

mod keys;
mod refresh;
mod revocations;
mod sessions;
mod users;

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{BoxError, StoreError};

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
}

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
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| map_err(e, "database", "database"))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Self { pool })
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

/// Maps an sqlx error to a [`StoreError`], keeping it as the source. `table` names the table
/// whose rows were being decoded; `conflict` names what a uniqueness violation means.
fn map_err(e: sqlx::Error, table: &'static str, conflict: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(conflict),
        sqlx::Error::Database(db)
            if db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED)) =>
        {
            StoreError::Unavailable(Box::new(e))
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
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
fn on(table: &'static str, conflict: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| map_err(e, table, conflict)
}
