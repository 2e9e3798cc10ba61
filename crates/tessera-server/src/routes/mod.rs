//! The HTTP API as one [`axum::Router`], built by [`app`] so it can be driven in-process by
//! tests (`tower::ServiceExt::oneshot`) exactly as the binary serves it.

mod account;
mod meta;
mod oauth;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::routing::{delete, get, post};

use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;

/// The whole API.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/users", post(account::register))
        .route(
            "/v1/sessions",
            post(account::login)
                .get(account::list_sessions)
                .delete(account::revoke_other_sessions),
        )
        .route("/v1/sessions/{id}", delete(account::revoke_session))
        .route(
            "/v1/session",
            get(account::current_session).delete(account::logout),
        )
        .route("/v1/userinfo", get(account::userinfo))
        .route("/v1/password", post(account::change_password))
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/.well-known/openid-configuration", get(meta::discovery))
        .route("/.well-known/jwks.json", get(meta::jwks))
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .route("/metrics", get(meta::metrics))
        .route("/openapi.json", get(meta::openapi))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::map_request(host_from_authority))
        .with_state(state)
}

/// HTTP/2 carries the host as the `:authority` pseudo-header, not `Host`; copy it over so the
/// same-origin check (which compares `Origin` with `Host`) works on either protocol.
async fn host_from_authority(mut req: axum::extract::Request) -> axum::extract::Request {
    if !req.headers().contains_key(header::HOST) {
        let authority = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        if let Some(host) = authority {
            req.headers_mut().insert(header::HOST, host);
        }
    }
    req
}

async fn security_headers(mut resp: axum::response::Response) -> axum::response::Response {
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}
