//! The background tasks: following the revocation stream, and keeping the JWKS current.
//!
//! Design decision: every (re)connection starts with a catch-up (`GET /v1/revocations?since=`)
//! before the stream is opened from the cursor it returned (`Last-Event-ID`), so the list is
//! known complete at a definite moment rather than "some time after the replay began"; any
//! answer the follower cannot read whole drops the connection without moving the cursor, and
//! the staleness bound turns a persistent problem into refusals, never into missed
//! revocations.

use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tessera_core::revocation::Revocation;

use crate::sse::{SseItem, SseParser};
use crate::{Error, Shared};

/// First reconnection delay; doubled after every attempt that made no progress.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest reconnection delay.
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Follows the revocation stream for as long as the task lives.
pub(crate) async fn revocations(shared: Arc<Shared>, mut cursor: String) {
    let mut delay = BACKOFF_MIN;
    let mut first = true;
    loop {
        if !first {
            match shared.catch_up(Some(&cursor)).await {
                Ok(next) => cursor = next,
                Err(e) => {
                    tracing::warn!(error = %e, "revocation catch-up failed; retrying");
                    delay = pause(delay).await;
                    continue;
                }
            }
        }
        first = false;
        let (progressed, outcome) = stream(&shared, &mut cursor).await;
        match outcome {
            Ok(()) => tracing::info!("revocation stream ended by the server; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "revocation stream lost; reconnecting"),
        }
        if progressed {
            delay = BACKOFF_MIN;
        }
        delay = pause(delay).await;
    }
}

/// Sleeps for `delay` with ±25 % jitter (so verifiers dropped together do not return
/// together), then returns the next delay.
async fn pause(delay: Duration) -> Duration {
    let jitter = RandomState::new().hash_one(delay) % 501; // 0..=500 ‰
    let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    let millis = millis.saturating_mul(750 + jitter) / 1000; // 75 %..125 %
    tokio::time::sleep(Duration::from_millis(millis)).await;
    delay.saturating_mul(2).min(BACKOFF_MAX)
}

/// One stream connection, until it ends or fails. Returns whether it delivered anything (an
/// event or heartbeat) and why it stopped.
async fn stream(shared: &Shared, cursor: &mut String) -> (bool, Result<(), Error>) {
    let what = "revocation stream";
    let mut response = match shared.remote.stream(cursor).await {
        Ok(response) => response,
        Err(e) => return (false, Err(e)),
    };
    let mut parser = SseParser::new();
    let mut progressed = false;
    loop {
        let chunk = match tokio::time::timeout(shared.max_staleness, response.chunk()).await {
            Err(_) => {
                let detail = "silent for longer than max_staleness".into();
                return (progressed, Err(Error::Protocol { what, detail }));
            }
            Ok(Err(e)) => return (progressed, Err(Error::http(what, &e))),
            Ok(Ok(None)) => return (progressed, Ok(())),
            Ok(Ok(Some(chunk))) => chunk,
        };
        let items = match parser.feed(&chunk) {
            Ok(items) => items,
            Err(e) => {
                let detail = e.to_string();
                return (progressed, Err(Error::Protocol { what, detail }));
            }
        };
        let mut heard = false;
        let mut revocations = Vec::new();
        for item in items {
            heard = true;
            match item {
                SseItem::Comment => {}
                SseItem::Event { event, data } if event == "revocation" => {
                    let wire = serde_json::from_str(&data).ok();
                    match wire.as_ref().and_then(Revocation::from_wire) {
                        Some(r) => revocations.push(r),
                        None => {
                            // Apply nothing of this chunk, keep the cursor before it: the
                            // reconnection asks again, and staleness fails closed meanwhile.
                            let detail = "unreadable revocation event".into();
                            return (progressed, Err(Error::Protocol { what, detail }));
                        }
                    }
                }
                SseItem::Event { event, .. } => {
                    tracing::debug!(%event, "ignoring an unknown event type");
                }
            }
        }
        if !heard {
            continue;
        }
        if !revocations.is_empty() {
            shared.apply(&revocations);
        } else {
            shared.prune();
        }
        if let Some(id) = parser.committed_id() {
            id.clone_into(cursor);
        }
        shared.mark_fresh();
        progressed = true;
    }
}

/// Fetches the JWKS when a verification asks (unknown `kid`) or every `jwks_refresh`.
pub(crate) async fn keys(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            () = shared.jwks_wanted.notified() => {}
            () = tokio::time::sleep(shared.jwks_refresh) => {}
        }
        match shared.remote.jwks().await {
            Ok(keys) => {
                *shared.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
            }
            Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; keeping the keys held"),
        }
    }
}
