//! The revocation list for resource servers: `GET /v1/revocations[?since=CURSOR]` to catch up,
//! `GET /v1/revocations/stream` (server-sent events) to follow. Both serve this instance's view
//! ([`crate::revocations::RevocationView`]), which the store's feed keeps exact, so a
//! revocation made on any instance reaches every subscriber of every instance.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_core::revocation::Revocation;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use crate::client_auth::AuthenticatedClient;
use crate::revocations::{Backlog, Numbered};
use crate::routes::openapi::InvalidClient;
use crate::routes::openapi::shapes::WireRevocation;
use crate::state::AppState;

/// How often an idle stream carries a comment line, so subscribers (and proxies) can tell a
/// quiet stream from a dead one. The contract promises one at least every 15 s; every 2 s lets
/// a resource server keep a staleness bound of a few seconds (a comment line costs a few bytes).
const HEARTBEAT: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Since {
    /// The cursor of the last revocation seen (a `cursor` or an event `id`).
    #[param(max_length = 200)]
    since: Option<String>,
}

/// The revocations after a cursor, and the cursor to resume from.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CaughtUp {
    cursor: String,
    #[schema(value_type = Vec<WireRevocation>)]
    revocations: Vec<Value>,
}

fn wire(revocations: &[Revocation]) -> Vec<Value> {
    revocations.iter().map(Revocation::to_wire).collect()
}

/// The revocation list, for resource servers catching up.
///
/// Without `since`, or with a cursor this instance cannot continue from: the whole live list.
/// With a cursor: what came after it.
#[utoipa::path(
    get,
    path = "/v1/revocations",
    tag = "revocations",
    operation_id = "listRevocations",
    params(Since),
    security(("clientBasic" = [])),
    responses(
        (status = 200, description = "The revocations and the cursor to resume from.", body = CaughtUp),
        (status = 401, response = InvalidClient),
    )
)]
pub(super) async fn list(
    State(state): State<AppState>,
    _client: AuthenticatedClient,
    Query(Since { since }): Query<Since>,
) -> Json<CaughtUp> {
    let caught_up = state.revocations.catch_up(since.as_deref());
    Json(CaughtUp {
        revocations: wire(&caught_up.backlog.into_revocations()),
        cursor: caught_up.cursor,
    })
}

/// Revocations as server-sent events.
///
/// Each revocation as `event: revocation`, `id: <cursor>`, `data: <WireRevocation JSON>`;
/// `Last-Event-ID` resumes (a cursor this instance cannot continue from replays the whole live
/// list first, only its last event carrying a cursor); without it the stream starts at the
/// present. A comment line every 2 s (the
/// contract: at least every 15 s). A subscriber that falls behind is disconnected and resumes
/// from its cursor; every stream ends when the server shuts down.
#[utoipa::path(
    get,
    path = "/v1/revocations/stream",
    tag = "revocations",
    operation_id = "streamRevocations",
    params(("Last-Event-ID" = Option<String>, Header, max_length = 200,
        description = "The `id` of the last event received, to resume after it.")),
    security(("clientBasic" = [])),
    responses(
        (status = 200, description = "The event stream.", body = String, content_type = "text/event-stream"),
        (status = 401, response = InvalidClient),
    )
)]
pub(super) async fn stream(
    State(state): State<AppState>,
    _client: AuthenticatedClient,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let since = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (caught_up, live) = state.revocations.subscribe(since.as_deref());
    let backlog: Vec<Event> = match caught_up.backlog {
        // Each entry is a point to resume from.
        Backlog::After(entries) => entries
            .iter()
            .map(|(n, r)| event(r).id(state.revocations.cursor(*n)))
            .collect(),
        // The whole list is a point to resume from only once all of it has arrived: only its
        // last event carries the cursor, so a subscriber cut off part-way (its Last-Event-ID
        // unchanged) is sent the whole list again.
        Backlog::Whole(all) => {
            let last = all.len().saturating_sub(1);
            all.iter()
                .enumerate()
                .map(|(i, r)| {
                    let e = event(r);
                    if i == last {
                        e.id(caught_up.cursor.clone())
                    } else {
                        e
                    }
                })
                .collect()
        }
    };
    let closing = state.closing();
    let follow = Follow {
        state,
        backlog: backlog.into_iter(),
        live,
        closing,
    };
    let events = futures_util::stream::unfold(follow, Follow::next);
    Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT))
}

fn event(r: &Revocation) -> Event {
    Event::default()
        .event("revocation")
        .data(r.to_wire().to_string())
}

/// One subscriber's position: its catch-up still to send, then the live events.
struct Follow {
    state: AppState,
    backlog: std::vec::IntoIter<Event>,
    live: Receiver<Numbered>,
    closing: tokio::sync::watch::Receiver<bool>,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if let Some(e) = self.backlog.next() {
            return Some((Ok(e), self));
        }
        let received = tokio::select! {
            received = self.live.recv() => received,
            _ = self.closing.wait_for(|closing| *closing) => return None,
        };
        match received {
            Ok((n, r)) => {
                let e = event(&r).id(self.state.revocations.cursor(n));
                Some((Ok(e), self))
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::info!(
                    missed,
                    "revocation subscriber fell behind; disconnected to resume from its cursor"
                );
                None
            }
            Err(RecvError::Closed) => None,
        }
    }
}
