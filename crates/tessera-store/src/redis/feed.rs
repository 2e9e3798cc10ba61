//! The revocation feed over Redis pub/sub.
//!
//! Design decision: each follower holds one dedicated RESP2 pub/sub connection to **one** node.
//! Classic `PUBLISH` is broadcast over a Redis Cluster's bus to every node, so any seed will do:
//! the follower starts with the first and moves to the next seed after each failure. A dead
//! connection is noticed either by the stream ending (the socket closed) or by a `PING` that
//! goes unanswered for [`PING_TIMEOUT`] (a silently dropped network), so `Disconnected` is
//! reported within about two seconds of Redis going away.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

use super::TIMEOUT;
use crate::{BoxError, FeedEvent, RevocationFeed, StoreError};

/// How often a quiet subscription is checked with a `PING`.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a `PING` may go unanswered before the connection counts as dead.
const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// First and longest pause between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Events buffered for a slow follower.
const BUFFER: usize = 256;

/// The pub/sub feed of one namespace's revocations.
pub struct RedisFeed {
    clients: Vec<redis::Client>,
    channel: String,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for RedisFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFeed")
            .field("channel", &self.channel)
            .field("seeds", &self.clients.len())
            .finish_non_exhaustive()
    }
}

impl RedisFeed {
    /// A feed of `channel` on the nodes named by `urls` (tried in turn). Must be called inside a
    /// Tokio runtime, which the followers' tasks will run on.
    pub(super) fn new(urls: &[String], channel: String) -> Result<Self, StoreError> {
        let clients = urls
            .iter()
            .map(|u| redis::Client::open(u.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(super::map_err)?;
        if clients.is_empty() {
            return Err(StoreError::Backend(BoxError::from("no Redis URL given")));
        }
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Self {
            clients,
            channel,
            runtime,
        })
    }
}

impl RevocationFeed for RedisFeed {
    fn follow(&self) -> mpsc::Receiver<FeedEvent> {
        let (tx, rx) = mpsc::channel(BUFFER);
        self.runtime
            .spawn(run(self.clients.clone(), self.channel.clone(), tx));
        rx
    }
}

/// Why a subscription ended.
enum End {
    /// The follower dropped its receiver: stop for good.
    Closed,
    /// The connection broke: report it and reconnect.
    Broken(BoxError),
}

/// Follows the feed until the receiver is dropped.
async fn run(clients: Vec<redis::Client>, channel: String, tx: mpsc::Sender<FeedEvent>) {
    let mut backoff = BACKOFF_MIN;
    for client in clients.iter().cycle() {
        match subscribe(client, &channel).await {
            Ok((sink, stream)) => {
                backoff = BACKOFF_MIN;
                if tx.send(FeedEvent::Connected).await.is_err() {
                    return;
                }
                match pump(sink, stream, &tx).await {
                    End::Closed => return,
                    End::Broken(e) => {
                        tracing::warn!(error = %e, "revocation feed connection lost");
                    }
                }
                if tx.send(FeedEvent::Disconnected).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "revocation feed cannot subscribe"),
        }
        tokio::select! {
            () = tx.closed() => return,
            () = sleep(backoff) => {}
        }
        backoff = backoff.saturating_mul(2).min(BACKOFF_MAX);
    }
}

/// Opens a pub/sub connection to one node and subscribes to `channel`, within [`TIMEOUT`].
async fn subscribe(
    client: &redis::Client,
    channel: &str,
) -> Result<(PubSubSink, PubSubStream), BoxError> {
    let connect = async {
        let (mut sink, stream) = client.get_async_pubsub().await?.split();
        sink.subscribe(channel).await?;
        Ok::<_, redis::RedisError>((sink, stream))
    };
    Ok(timeout(TIMEOUT, connect).await??)
}

/// Forwards messages until the connection breaks or the receiver is dropped, pinging the node
/// whenever it has been quiet for [`PING_EVERY`].
async fn pump(mut sink: PubSubSink, mut stream: PubSubStream, tx: &mpsc::Sender<FeedEvent>) -> End {
    let mut quiet_since = Instant::now();
    loop {
        tokio::select! {
            () = tx.closed() => return End::Closed,
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return End::Broken(BoxError::from("subscription stream ended"));
                };
                quiet_since = Instant::now();
                let revocation = msg
                    .get_payload::<String>()
                    .map_err(BoxError::from)
                    .and_then(|p| serde_json::from_str(&p).map_err(BoxError::from));
                match revocation {
                    Ok(r) => {
                        if tx.send(FeedEvent::Revoked(r)).await.is_err() {
                            return End::Closed;
                        }
                    }
                    // Not ours to act on; the store stays the authority.
                    Err(e) => tracing::warn!(error = %e, "undecodable revocation message ignored"),
                }
            }
            () = tokio::time::sleep_until(quiet_since + PING_EVERY) => {
                match timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => quiet_since = Instant::now(),
                    Ok(Err(e)) => return End::Broken(Box::new(e)),
                    Err(e) => return End::Broken(Box::new(e)),
                }
            }
        }
    }
}
