//! The revocation feed on PostgreSQL `LISTEN/NOTIFY`: every instance hears each revocation any
//! instance stores ([`crate::RevocationStore::add_revocation`] notifies in its transaction).
//!
//! Design decision: the follower task owns a dedicated connection (a pool of one, outside the
//! store's pool) and never lets sqlx reconnect it silently: a lost connection may have missed
//! notifications, so the task reports [`FeedEvent::Disconnected`], reconnects with backoff and
//! reports [`FeedEvent::Connected`], upon which the follower reloads the list from the store.
//! A periodic ping on the listening connection turns a silently dead link into a reconnect.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tessera_core::revocation::Revocation;
use tokio::sync::mpsc;

use super::ACQUIRE_TIMEOUT;
use crate::{BoxError, FeedEvent, RevocationFeed};

/// Events buffered for a slow follower before the task waits for it.
const CAPACITY: usize = 1024;
/// The first reconnection delay, doubled after each failure up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest reconnection delay.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often an idle listening connection is checked.
const PING_EVERY: Duration = Duration::from_secs(15);

/// Revocations announced on one schema's channel, followed on a background task per call of
/// [`RevocationFeed::follow`].
#[derive(Clone)]
pub struct PgRevocationFeed {
    options: PgConnectOptions,
    channel: String,
}

impl std::fmt::Debug for PgRevocationFeed {
    // The connect options hold the password: show the channel only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRevocationFeed")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl PgRevocationFeed {
    /// A feed of `channel` on the server `options` point to.
    pub(super) fn new(options: PgConnectOptions, channel: String) -> Self {
        Self { options, channel }
    }

    /// The `LISTEN/NOTIFY` channel followed.
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.channel
    }
}

impl RevocationFeed for PgRevocationFeed {
    /// Starts the follower task on the current Tokio runtime. Called outside one, it logs an
    /// error and returns a receiver that yields nothing.
    fn follow(&self) -> mpsc::Receiver<FeedEvent> {
        let (tx, rx) = mpsc::channel(CAPACITY);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(run(self.options.clone(), self.channel.clone(), tx));
            }
            Err(e) => tracing::error!(error = %e, "revocation feed needs a Tokio runtime"),
        }
        rx
    }
}

/// Why following one connection ended.
enum Stop {
    /// The receiver is gone: stop for good.
    ReceiverGone,
    /// The connection failed or was lost: reconnect.
    Lost(BoxError),
}

/// The follower task: connect, listen, forward, and start over after any failure.
async fn run(options: PgConnectOptions, channel: String, tx: mpsc::Sender<FeedEvent>) {
    let mut backoff = INITIAL_BACKOFF;
    // Reported once per outage, including a failure to connect at all.
    let mut down_reported = false;
    loop {
        let stop = tokio::select! {
            () = tx.closed() => Stop::ReceiverGone,
            connected = listen(&options, &channel) => match connected {
                Ok((pool, mut listener)) => {
                    backoff = INITIAL_BACKOFF;
                    down_reported = false;
                    let stop = if tx.send(FeedEvent::Connected).await.is_err() {
                        Stop::ReceiverGone
                    } else {
                        forward(&mut listener, &tx).await
                    };
                    drop(listener);
                    pool.close().await;
                    stop
                }
                Err(e) => Stop::Lost(Box::new(e)),
            },
        };
        match stop {
            Stop::ReceiverGone => return,
            Stop::Lost(e) => {
                tracing::warn!(error = %e, channel, retry_in = ?backoff, "revocation feed down");
            }
        }
        if !down_reported {
            if tx.send(FeedEvent::Disconnected).await.is_err() {
                return;
            }
            down_reported = true;
        }
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
    }
}

/// A listener on `channel` over a dedicated connection, and the pool of one that holds it.
async fn listen(
    options: &PgConnectOptions,
    channel: &str,
) -> Result<(PgPool, PgListener), sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.clone())
        .await?;
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(listener) => listener,
        Err(e) => {
            pool.close().await;
            return Err(e);
        }
    };
    // A lost connection is handled here (see the module docs), not inside sqlx.
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    if let Err(e) = listener.listen(channel).await {
        drop(listener);
        pool.close().await;
        return Err(e);
    }
    Ok((pool, listener))
}

/// Forwards notifications until the connection fails or the receiver goes.
async fn forward(listener: &mut PgListener, tx: &mpsc::Sender<FeedEvent>) -> Stop {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.reset();
    loop {
        tokio::select! {
            () = tx.closed() => return Stop::ReceiverGone,
            _ = ping.tick() => {
                let pinged = tokio::time::timeout(
                    ACQUIRE_TIMEOUT,
                    sqlx::query("SELECT 1").execute(&mut *listener),
                )
                .await;
                match pinged {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Stop::Lost(Box::new(e)),
                    Err(e) => return Stop::Lost(Box::new(e)),
                }
            }
            received = listener.try_recv() => match received {
                Ok(Some(notification)) => {
                    match serde_json::from_str::<Revocation>(notification.payload()) {
                        Ok(revocation) => {
                            if tx.send(FeedEvent::Revoked(revocation)).await.is_err() {
                                return Stop::ReceiverGone;
                            }
                        }
                        Err(e) => tracing::warn!(
                            error = %e,
                            channel = notification.channel(),
                            "ignoring an unparsable revocation notification"
                        ),
                    }
                }
                Ok(None) => return Stop::Lost(BoxError::from("connection lost")),
                Err(e) => return Stop::Lost(Box::new(e)),
            },
        }
    }
}
