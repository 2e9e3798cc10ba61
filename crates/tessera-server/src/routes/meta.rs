//! Discovery, the JWKS, and the operations endpoints.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// The OpenAPI description of this API, kept beside the code and checked against the router
/// by a test.
pub const OPENAPI: &str = include_str!("../../openapi.json");

fn cacheable(body: serde_json::Value, max_age: u32) -> Response {
    let mut resp = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// `GET /.well-known/openid-configuration`.
pub(super) async fn discovery(State(state): State<AppState>) -> Response {
    let iss = &state.config.issuer;
    let ring = state.key_ring();
    let algs: Vec<&str> = ring
        .current()
        .map(|k| k.alg().as_str())
        .into_iter()
        .collect();
    cacheable(
        json!({
            "issuer": iss,
            "jwks_uri": format!("{iss}/.well-known/jwks.json"),
            "token_endpoint": format!("{iss}/oauth/token"),
            "revocation_endpoint": format!("{iss}/oauth/revoke"),
            "userinfo_endpoint": format!("{iss}/v1/userinfo"),
            "grant_types_supported": ["password", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "response_types_supported": [],
            "access_token_signing_alg_values_supported": algs,
            "verification_alg_values_supported": ["EdDSA", "ES256", "RS256", "PS256"],
        }),
        300,
    )
}

/// `GET /.well-known/jwks.json`: the public keys (next, current, retiring).
pub(super) async fn jwks(State(state): State<AppState>) -> Response {
    cacheable(state.key_ring().jwks(), 300)
}

/// `GET /healthz`: the process is up.
pub(super) async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: the store answers.
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.revocations(state.now()).await {
        Ok(_) => Json(json!({ "status": "ready" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %crate::error::error_chain(&e), "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "store": "unreachable" })),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let counters = [
        ("tessera_logins_total{result=\"ok\"}", &m.logins_ok),
        ("tessera_logins_total{result=\"failed\"}", &m.logins_failed),
        (
            "tessera_logins_total{result=\"throttled\"}",
            &m.logins_throttled,
        ),
        (
            "tessera_access_tokens_issued_total",
            &m.access_tokens_issued,
        ),
        ("tessera_refresh_rotations_total", &m.refresh_rotations),
        (
            "tessera_refresh_reuse_detected_total",
            &m.refresh_reuse_detected,
        ),
        (
            "tessera_revocations_recorded_total",
            &m.revocations_recorded,
        ),
    ];
    let mut out = String::from(
        "# TYPE tessera_logins_total counter\n# TYPE tessera_access_tokens_issued_total counter\n\
         # TYPE tessera_refresh_rotations_total counter\n# TYPE tessera_refresh_reuse_detected_total counter\n\
         # TYPE tessera_revocations_recorded_total counter\n# TYPE tessera_revocation_list_entries gauge\n",
    );
    for (name, c) in counters {
        out.push_str(&format!("{name} {}\n", c.load(Ordering::Relaxed)));
    }
    out.push_str(&format!(
        "tessera_revocation_list_entries {}\n",
        state.revocation_count()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// `GET /openapi.json`.
pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
