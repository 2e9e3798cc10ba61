//! What every request passes through before and after its route: the request id and its log
//! span, the request metrics, `Host` for HTTP/2, CORS, and the security headers of every
//! response.
//!
//! Design decision: **one middleware, not a layer per concern.** Each axum middleware layer
//! boxes a future and moves the request and the response through one more call; with four of
//! them that was about half of the work the server did for a cached-JWT or memory-session
//! request. Here the concerns stay in their own modules as plain functions
//! ([`crate::metrics::Observation`], [`crate::cors::Cors`]) and this one function runs them in
//! order, once.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

use crate::cors::Cors;
use crate::metrics::Observation;
use crate::state::AppState;

/// The middleware, outermost on every route: the observation (span and latency) covers
/// everything else, and a listed origin's preflight is answered without reaching a route.
pub(crate) async fn edge(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let observation = Observation::begin(&state, &req);
    host_from_authority(&mut req);
    let cors = Cors::of(&state, &req);
    let mut resp = match cors.preflight_answer() {
        Some(answer) => answer,
        None => next.run(req).instrument(observation.span()).await,
    };
    // Room for what is added below (up to 10 headers), so the map grows once if at all.
    resp.headers_mut().reserve(10);
    security_headers(&mut resp);
    cors.decorate(&mut resp);
    observation.end(&state, &mut resp);
    resp
}

/// HTTP/2 carries the host as the `:authority` pseudo-header, not `Host`; copy it over so the
/// same-origin check (which compares `Origin` with `Host`) works on either protocol.
fn host_from_authority(req: &mut Request) {
    if req.headers().contains_key(header::HOST) {
        return;
    }
    let authority = req
        .uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    if let Some(host) = authority {
        req.headers_mut().insert(header::HOST, host);
    }
}

fn security_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The pages send `same-origin`, so browsers put `Origin` on their own form posts.
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}
