//! Discovery, the JWKS, and the operations endpoints.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::revocations::FeedState;
use crate::routes::openapi::shapes::JwkSet;
use crate::service::GrantType;
use crate::state::AppState;

fn cacheable(body: impl Serialize, max_age: u32) -> Response {
    let mut resp = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// Server metadata (RFC 8414).
#[derive(Serialize, ToSchema)]
pub(super) struct Discovery {
    #[schema(format = "uri")]
    issuer: String,
    #[schema(format = "uri")]
    jwks_uri: String,
    /// The authorization-code flow's page (OAuth 2.1 §3.1).
    #[schema(format = "uri")]
    authorization_endpoint: String,
    #[schema(format = "uri")]
    token_endpoint: String,
    #[schema(format = "uri")]
    revocation_endpoint: String,
    #[schema(format = "uri")]
    introspection_endpoint: String,
    #[schema(format = "uri")]
    userinfo_endpoint: String,
    grant_types_supported: Vec<&'static str>,
    /// The grants only first-party clients (or none) may use: `password`. Third-party apps
    /// use the authorization-code flow.
    first_party_only_grant_types: [&'static str; 1],
    token_endpoint_auth_methods_supported: [&'static str; 3],
    revocation_endpoint_auth_methods_supported: [&'static str; 3],
    introspection_endpoint_auth_methods_supported: [&'static str; 2],
    /// `code`: the authorization-code flow, the only one.
    response_types_supported: [&'static str; 1],
    response_modes_supported: [&'static str; 1],
    /// PKCE is required, and `S256` is its only method (`plain` is refused).
    code_challenge_methods_supported: [&'static str; 1],
    /// RFC 9207: every authorization response carries `iss`.
    authorization_response_iss_parameter_supported: bool,
    access_token_signing_alg_values_supported: Vec<&'static str>,
    verification_alg_values_supported: [&'static str; 4],
    /// The algorithms a DPoP proof may be signed with (RFC 9449 §5.1).
    dpop_signing_alg_values_supported: Vec<&'static str>,
}

/// Server metadata (RFC 8414 style).
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "discovery",
    operation_id = "discovery",
    responses(
        (status = 200, description = "The metadata. Cacheable for as long as a new key is published before it signs (300 s).",
            body = Discovery,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
    )
)]
pub(super) async fn discovery(State(state): State<AppState>) -> Response {
    let iss = &state.config.issuer;
    let ring = state.key_ring();
    let algs: Vec<&str> = ring
        .current()
        .map(|k| k.alg().as_str())
        .into_iter()
        .collect();
    cacheable(
        Discovery {
            issuer: iss.clone(),
            jwks_uri: format!("{iss}/.well-known/jwks.json"),
            authorization_endpoint: format!("{iss}/oauth/authorize"),
            token_endpoint: format!("{iss}/oauth/token"),
            revocation_endpoint: format!("{iss}/oauth/revoke"),
            introspection_endpoint: format!("{iss}/oauth/introspect"),
            userinfo_endpoint: format!("{iss}/v1/userinfo"),
            grant_types_supported: GrantType::supported(),
            first_party_only_grant_types: [GrantType::Password.as_str()],
            token_endpoint_auth_methods_supported: [
                "none",
                "client_secret_basic",
                "client_secret_post",
            ],
            revocation_endpoint_auth_methods_supported: [
                "none",
                "client_secret_basic",
                "client_secret_post",
            ],
            introspection_endpoint_auth_methods_supported: [
                "client_secret_basic",
                "client_secret_post",
            ],
            response_types_supported: ["code"],
            response_modes_supported: ["query"],
            code_challenge_methods_supported: ["S256"],
            authorization_response_iss_parameter_supported: true,
            access_token_signing_alg_values_supported: algs,
            verification_alg_values_supported: ["EdDSA", "ES256", "RS256", "PS256"],
            dpop_signing_alg_values_supported: crate::dpop::signing_algs(),
        },
        state.config.key_schedule().publication_secs(),
    )
}

/// The public signing keys (RFC 7517).
///
/// The next, current and retiring keys, so verifiers can pick a key by `kid` across a
/// rotation. Private material never appears. Verifiers may cache it for as long as a `next`
/// key is published before it signs, so none can miss one.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "discovery",
    operation_id = "jwks",
    responses(
        (status = 200, description = "The key set. Cacheable for 300 s.", body = JwkSet,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
    )
)]
pub(super) async fn jwks(State(state): State<AppState>) -> Response {
    cacheable(
        state.key_ring().jwks(),
        state.config.key_schedule().publication_secs(),
    )
}

/// The process is up.
#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok`.
    #[schema(value_type = String)]
    status: &'static str,
}

/// Liveness: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    responses((status = 200, description = "Up.", body = Health))
)]
pub(super) async fn healthz() -> Response {
    Json(Health { status: "ok" }).into_response()
}

/// Whether this instance can serve.
#[derive(Serialize, ToSchema)]
pub(super) struct Readiness {
    /// `ready`, `degraded` or `unavailable`.
    #[schema(value_type = String)]
    status: &'static str,
    /// `ok` or `unreachable`.
    #[schema(value_type = String)]
    store: &'static str,
    /// `none`: the store has no feed and this instance's memory is authoritative; `live`:
    /// revocations are pushed; `down`: credentials are checked against the store per request.
    #[schema(value_type = String)]
    revocation_feed: &'static str,
}

/// Readiness: the store answers and the revocation feed is live.
///
/// With the revocation feed down but the store up the instance is `degraded`: still correct
/// (it checks every credential against the store) and still 200. With the store down — the
/// durable store, or the session store (Redis, with `--redis`) — or silent for 800 ms, it is
/// `unavailable` (503).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready or degraded.", body = Readiness),
        (status = 503, description = "The store is unreachable.", body = Readiness),
    )
)]
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let feed = state.revocations.feed_state();
    let store_ok = state.store_answers().await;
    let (code, status) = match (store_ok, feed) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, FeedState::Down) => (StatusCode::OK, "degraded"),
        (true, _) => (StatusCode::OK, "ready"),
    };
    let body = Readiness {
        status,
        store: if store_ok { "ok" } else { "unreachable" },
        revocation_feed: feed.as_str(),
    };
    (code, Json(body)).into_response()
}

/// Prometheus metrics.
///
/// Requests by method, route template and status (`tessera_http_requests_total`) and their
/// latency (`tessera_http_request_duration_seconds`), authentication outcomes
/// (`tessera_authentications_total{reason}`), logins by result, the flows' counters, the
/// sessions in the store (`tessera_sessions_active`, counted once a minute), the revocation
/// list's size and the revocation feed's state and lag. The README lists each with its
/// meaning.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4.", body = String,
            content_type = "text/plain"),
    )
)]
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&state),
    )
        .into_response()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "openapi",
    responses(
        (status = 200, description = "The OpenAPI 3.1 description of the API.",
            body = Object, content_type = "application/json"),
        (status = 500, response = super::openapi::InternalError),
    )
)]
pub(super) async fn openapi() -> Result<Response, ApiError> {
    let json = super::openapi::json().map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}
