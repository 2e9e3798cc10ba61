//! The shared production store: one PostgreSQL schema per deployment, any number of server
//! instances on it.
//!
//! Design decision: every guarantee holds across instances because PostgreSQL enforces it, never
//! an in-process lock. Refresh rotation locks the family row (`SELECT … FOR UPDATE`) inside a
//! transaction; "one first signing key" is a partial unique index; a revocation is written and
//! announced (`pg_notify`) in one transaction, so none is stored unannounced and none announced
//! unstored. The namespace names the schema: the pool's every connection sets its
//! `search_path` to it, so deployments (or test runs) can share one database. Queries are built
//! at run time (`sqlx::query` + `bind`), so building needs no database; their text is shared with
//! SQLite (`crate::sql`).

mod feed;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, Postgres};
use tessera_core::keys::KeyRecord;
use tessera_core::revocation::Revocation;

use crate::sql::{self, Dialect, Tx};
use crate::{BoxError, RevocationFeed, RotateOutcome, StoreError};

pub use feed::PgRevocationFeed;

/// The schema, embedded at build time from `migrations/postgres/` and applied at connect.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long taking a pooled connection (or opening one) may take before the store reports
/// itself unavailable: short, so a dead server gives a quick 503 rather than a hung request.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Connections per pool (per server instance).
const MAX_CONNECTIONS: u32 = 16;

/// The longest namespace accepted: the feed's channel, `tessera_rev_` + namespace, must fit
/// PostgreSQL's 63-byte identifiers.
const MAX_NAMESPACE_LEN: usize = 48;

/// A validated namespace: `^[a-z_][a-z0-9_]{0,47}$`, safe to quote into SQL as an identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Schema(String);

impl Schema {
    /// Checks `namespace` against the accepted form.
    fn parse(namespace: &str) -> Result<Self, StoreError> {
        let mut chars = namespace.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if first_ok && rest_ok && namespace.len() <= MAX_NAMESPACE_LEN {
            Ok(Self(namespace.to_owned()))
        } else {
            Err(StoreError::Backend(BoxError::from(format!(
                "invalid PostgreSQL namespace {namespace:?}: expected 1 to {MAX_NAMESPACE_LEN} \
                 characters of [a-z0-9_], not starting with a digit"
            ))))
        }
    }

    /// The schema as a quoted identifier. The validated form has no `"` to escape; quoting
    /// still keeps reserved words (`user`, `table`) usable as names.
    fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The `LISTEN/NOTIFY` channel revocations are announced on.
    fn channel(&self) -> String {
        format!("tessera_rev_{}", self.0)
    }
}

/// A store in one schema of a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    schema: Schema,
    feed: Arc<PgRevocationFeed>,
}

// Every store trait, from the shared SQL; the dialect's part is `impl Dialect` below.
sql::sql_store!(PostgresStore);

impl std::fmt::Debug for PostgresStore {
    // The connect options hold the password: show the schema only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema.0)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…`), creates the schema named by
    /// `namespace` if needed and applies any pending migrations in it.
    ///
    /// Instances starting together are serialised around schema creation and migration by a
    /// PostgreSQL advisory lock keyed by the schema name.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the namespace is not of the form `^[a-z_][a-z0-9_]{0,47}$`, the
    /// URL is malformed or a migration fails; [`StoreError::Unavailable`] if the server cannot be
    /// reached.
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, StoreError> {
        let schema = Schema::parse(namespace)?;
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| StoreError::Backend(Box::new(e)))?;
        prepare_schema(&options, &schema).await?;

        let set_search_path: Arc<str> = format!("SET search_path TO {}", schema.quoted()).into();
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _meta| {
                let sql = Arc::clone(&set_search_path);
                Box::pin(async move { conn.execute(&*sql).await.map(drop) })
            })
            .connect_with(options.clone())
            .await
            .map_err(on_database())?;
        let feed = Arc::new(PgRevocationFeed::new(options, schema.channel()));
        Ok(Self { pool, schema, feed })
    }

    /// The underlying pool (its connections' `search_path` is the schema), for maintenance and
    /// tests.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema this store lives in (its namespace).
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.schema.0
    }

    /// Drops the schema and everything in it. For tests' cleanup: the store is unusable after.
    ///
    /// # Errors
    /// As any statement: [`StoreError::Unavailable`] or [`StoreError::Backend`].
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema.quoted());
        self.pool
            .execute(sql.as_str())
            .await
            .map(drop)
            .map_err(on_database())
    }
}

/// Creates the schema and migrates it on a connection of its own, holding a session-level
/// advisory lock keyed by the schema name throughout: `CREATE SCHEMA IF NOT EXISTS` itself can
/// fail with a unique violation when two instances run it at once. sqlx's migrator takes its own
/// advisory lock too, but keyed by the database name and only around the migrations.
/// Closing the connection (or losing it) releases the lock.
async fn prepare_schema(options: &PgConnectOptions, schema: &Schema) -> Result<(), StoreError> {
    let err = on_database();
    let mut conn: PgConnection = tokio::time::timeout(ACQUIRE_TIMEOUT, options.connect())
        .await
        .map_err(|e| StoreError::Unavailable(Box::new(e)))?
        .map_err(&err)?;
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
        .bind(format!("tessera schema {}", schema.0))
        .execute(&mut conn)
        .await
        .map_err(&err)?;
    conn.execute(format!("CREATE SCHEMA IF NOT EXISTS {}", schema.quoted()).as_str())
        .await
        .map_err(&err)?;
    conn.execute(format!("SET search_path TO {}", schema.quoted()).as_str())
        .await
        .map_err(&err)?;
    // `run_direct` rather than `run`: `run(&mut conn)` makes this future fail the
    // "`Acquire` is not general enough" check wherever it must be `Send` (a spawned task).
    MIGRATOR.run_direct(&mut conn).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => err(e),
        other => StoreError::Backend(Box::new(other)),
    })?;
    conn.close().await.map_err(&err)
}

/// Errors of statements on the database as a whole (schema, connections).
fn on_database() -> impl Fn(sqlx::Error) -> StoreError {
    sql::on::<PostgresStore>("database", "database")
}

/// SQLSTATEs that mean "try again later" rather than "this request is wrong": class 08
/// (connection exception) and 53 (insufficient resources) by prefix; the server shutting down
/// or starting up; a serialisation failure, deadlock or lock timeout.
fn is_transient(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "55P03"
        )
}

impl Dialect for PostgresStore {
    type Db = Postgres;

    const INSERTION_ORDER: &'static str = "seq";
    const BYTE_ORDER: &'static str = "COLLATE \"C\"";

    /// The lock every racer on this family queues behind. Once the winner commits, READ
    /// COMMITTED re-reads the locked row's newest version, so a racer sees the rotated family;
    /// if the family was deleted meanwhile (expired), the token is unknown. A token's own row
    /// never changes once written: it needs no lock.
    const LOCK_FAMILY: &'static str = sql::refresh::FAMILY_BY_TOKEN_FOR_UPDATE;

    fn is_transient(e: &dyn sqlx::error::DatabaseError) -> bool {
        e.code().is_some_and(|c| is_transient(&c))
    }

    /// A transaction of its own: the row lock (`FOR UPDATE`) keeps rotations of one family
    /// apart while rotations of different families commit in parallel.
    async fn run_rotation(
        &self,
        rotation: sql::refresh::Rotation,
    ) -> Result<RotateOutcome, StoreError> {
        let err = sql::on::<Self>(sql::refresh::TABLE, sql::refresh::CONFLICT);
        let mut tx = self.pool.begin().await.map_err(&err)?;
        let outcome = Self::rotate_in(&mut tx, &rotation).await?;
        tx.commit().await.map_err(&err)?;
        Ok(outcome)
    }

    async fn insert_key_if_vacant(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        // A partial unique index admits at most one current and one next key. The conflict
        // target is that index only: losing the race to another key of the status inserts
        // nothing, while a duplicate kid still fails as a conflict.
        let sql = format!(
            "{} ON CONFLICT (status) WHERE status IN ('current', 'next') DO NOTHING",
            sql::keys::INSERT
        );
        sql::keys::bind_insert(sqlx::query(&sql), key)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(sql::keys::on_write::<Self>)
    }

    async fn announce(&self, tx: &mut Tx<Self>, stored: &Revocation) -> Result<(), StoreError> {
        // PostgreSQL delivers the notification at commit: followers ([`PgRevocationFeed`])
        // hear of exactly the revocations that were stored.
        let payload =
            serde_json::to_string(stored).map_err(|e| StoreError::Backend(Box::new(e)))?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(self.schema.channel())
            .bind(payload)
            .execute(&mut **tx)
            .await
            .map(drop)
            .map_err(sql::on::<Self>(
                sql::revocations::TABLE,
                sql::revocations::TABLE,
            ))
    }

    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        Some(Arc::clone(&self.feed) as Arc<dyn RevocationFeed>)
    }

    /// Nothing a client can do: the old row version stays in a dead tuple until `VACUUM`
    /// reuses it, and in the server's WAL and backups. `docs/SECURITY.md` says to rotate the
    /// keys that were ever stored unprotected instead.
    async fn forget_replaced_secret(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::Schema;

    #[test]
    fn namespace_validation() {
        for good in ["a", "_", "tessera", "tessera_t_0f9a", &"a".repeat(48)] {
            assert!(Schema::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "bad-name;drop",
            "1abc",
            "Abc",
            "a b",
            "a\"b",
            "é",
            &"a".repeat(49),
        ] {
            assert!(Schema::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting_and_channel() {
        let s = Schema::parse("user").unwrap();
        assert_eq!(s.quoted(), "\"user\"");
        assert_eq!(s.channel(), "tessera_rev_user");
    }
}
