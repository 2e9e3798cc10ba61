//! Sessions, the revocation list (with its pub/sub feed) and attempt counters in Redis — one
//! node or a Redis Cluster — for server instances that scale out over one shared Redis.
//!
//! Design decision: **every atomic step touches one hash slot.** Keys that one Lua script
//! changes together share a cluster hash tag (`{u:<user hex>}` for a user's sessions and their
//! index, `{<ns>:rev}` for the whole revocation list), so the same scripts run unchanged on one
//! node and on a cluster. Lookups that cannot know the user go through keys in other slots: by
//! session id a small pointer, by token hash a copy of the session record (one round trip per
//! request), created after the record and deleted before it, so a crash between cross-slot
//! steps leaves only a record no token finds or a pointer to nothing — never a usable session
//! that cannot be deleted. See [`keys`] for the full layout and `sessions` for the ordering.
//!
//! Expiry: every key carries a TTL (a session's keys its absolute lifetime, counted from when it
//! is stored), so Redis itself forgets what is dead even if no sweep ever runs; the sweeps
//! ([`crate::SessionStore::delete_dead_sessions`], [`crate::RevocationStore::prune_revocations`])
//! apply the caller's clock and policy on top. The store never reads a clock of its own.

mod attempts;
mod feed;
pub mod keys;
mod replays;
mod revocations;
mod session_record;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value};

use crate::{BoxError, RevocationFeed, StoreError};

pub use feed::RedisFeed;
use keys::Keys;

/// How long connecting to a node, or waiting for one reply, may take before the operation fails
/// with [`StoreError::Unavailable`]: a dead Redis must fail requests fast, not hang them.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The longest TTL given to any key (ten years): the cap that keeps hostile or absurd
/// timestamps from overflowing `EXPIRE`.
const MAX_TTL_SECS: i64 = 10 * 366 * 24 * 3600;

/// A connection to one node (reconnecting by itself) or to a cluster (following its topology).
/// Both are cheap to clone; every operation clones one.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Sessions, revocations and attempt counters in Redis (one node, or a cluster).
///
/// Users, signing keys and refresh families are not here: pair it with a durable store in a
/// [`crate::split::SplitStore`].
#[derive(Clone)]
pub struct RedisStore {
    conn: Connection,
    keys: Keys,
    feed: Arc<RedisFeed>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("namespace", &self.keys.namespace())
            .field("cluster", &matches!(self.conn, Connection::Cluster(_)))
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to Redis. One URL names a single node; several name the seed nodes of a Redis
    /// Cluster. Every key and the pub/sub channel are prefixed with `namespace` (letters,
    /// digits, `_`, `-`, `.`; at most 64), so deployments can share one Redis.
    ///
    /// Must be called inside a Tokio runtime; the revocation feed runs its tasks there.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if Redis cannot be reached within a few seconds;
    /// [`StoreError::Backend`] for a bad URL or namespace.
    pub async fn connect(urls: &[String], namespace: &str) -> Result<Self, StoreError> {
        let keys = Keys::new(namespace)?;
        let conn = match urls {
            [] => return Err(StoreError::Backend(BoxError::from("no Redis URL given"))),
            [url] => {
                let client = redis::Client::open(url.as_str()).map_err(map_err)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(TIMEOUT))
                    .set_response_timeout(Some(TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(TIMEOUT);
                Connection::Single(
                    ConnectionManager::new_with_config(client, config)
                        .await
                        .map_err(map_err)?,
                )
            }
            seeds => {
                let client = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
                    .connection_timeout(TIMEOUT)
                    .response_timeout(TIMEOUT)
                    .build()
                    .map_err(map_err)?;
                Connection::Cluster(client.get_async_connection().await.map_err(map_err)?)
            }
        };
        let mut store = Self {
            feed: Arc::new(RedisFeed::new(urls, keys.channel())?),
            conn,
            keys,
        };
        // A connection object is not proof of a reachable server: ask one.
        let _: Value = redis::cmd("PING")
            .query_async(&mut store.conn)
            .await
            .map_err(map_err)?;
        Ok(store)
    }

    /// The namespace every key starts with.
    #[must_use]
    pub fn namespace(&self) -> &str {
        self.keys.namespace()
    }

    /// The revocation feed, as its concrete type.
    #[must_use]
    pub fn revocation_feed(&self) -> Arc<RedisFeed> {
        Arc::clone(&self.feed)
    }

    /// A connection handle for one operation.
    fn conn(&self) -> Connection {
        self.conn.clone()
    }

    /// The feed as the trait object [`crate::RevocationStore::feed`] hands out.
    fn dyn_feed(&self) -> Arc<dyn RevocationFeed> {
        Arc::clone(&self.feed) as Arc<dyn RevocationFeed>
    }
}

/// Maps a Redis error to a [`StoreError`], keeping it as the source: failures to reach a
/// working node are [`StoreError::Unavailable`] (the caller may retry), anything else is
/// [`StoreError::Backend`].
fn map_err(e: RedisError) -> StoreError {
    let unreachable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::BusyLoading
                )
        );
    if unreachable {
        StoreError::Unavailable(Box::new(e))
    } else {
        StoreError::Backend(Box::new(e))
    }
}

/// A TTL in whole seconds, at least 1 and at most [`MAX_TTL_SECS`].
fn ttl_secs(secs: i64) -> i64 {
    secs.clamp(1, MAX_TTL_SECS)
}
