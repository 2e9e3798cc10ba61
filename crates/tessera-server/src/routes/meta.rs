//! Discovery, the JWKS, and the operations endpoints.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::revocations::FeedState;
use crate::service::GrantType;
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
            "introspection_endpoint": format!("{iss}/oauth/introspect"),
            "userinfo_endpoint": format!("{iss}/v1/userinfo"),
            "grant_types_supported": GrantType::supported(),
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": [],
            "access_token_signing_alg_values_supported": algs,
            "verification_alg_values_supported": ["EdDSA", "ES256", "RS256", "PS256"],
        }),
        state.config.key_schedule().publication_secs(),
    )
}

/// `GET /.well-known/jwks.json`: the public keys (next, current, retiring). Verifiers may
/// cache it for as long as a `next` key is published before it signs, so none can miss one.
pub(super) async fn jwks(State(state): State<AppState>) -> Response {
    cacheable(
        state.key_ring().jwks(),
        state.config.key_schedule().publication_secs(),
    )
}

/// `GET /healthz`: the process is up.
pub(super) async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: whether the store answers and the revocation feed is live. With the feed
/// down but the store up, the instance is `degraded` (correct, but checks every credential
/// against the store) and still answers 200; with the store down it is `unavailable` (503).
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let feed = state.revocations.feed_state();
    let store_ok = state.store_answers().await;
    let (code, status) = match (store_ok, feed) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, FeedState::Down) => (StatusCode::OK, "degraded"),
        (true, _) => (StatusCode::OK, "ready"),
    };
    let body = json!({
        "status": status,
        "store": if store_ok { "ok" } else { "unreachable" },
        "revocation_feed": feed.as_str(),
    });
    (code, Json(body)).into_response()
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
        ("tessera_password_checks_total", &m.password_checks),
        (
            "tessera_access_tokens_issued_total",
            &m.access_tokens_issued,
        ),
        ("tessera_refresh_rotations_total", &m.refresh_rotations),
        (
            "tessera_refresh_grace_replays_total",
            &m.refresh_grace_replays,
        ),
        ("tessera_password_hashing_refused_total", &m.hashing_refused),
        (
            "tessera_registrations_throttled_total",
            &m.registrations_throttled,
        ),
        (
            "tessera_refresh_reuse_detected_total",
            &m.refresh_reuse_detected,
        ),
        (
            "tessera_revocations_recorded_total",
            &m.revocations_recorded,
        ),
    ];
    // Each family's TYPE line is derived from the list, once, before its first sample (the
    // exposition format wants it there), so adding a counter is one line above.
    let mut out = String::new();
    let mut typed: Vec<&str> = Vec::new();
    for (name, c) in counters {
        let family = name.split_once('{').map_or(name, |(family, _)| family);
        if !typed.contains(&family) {
            typed.push(family);
            out.push_str(&format!("# TYPE {family} counter\n"));
        }
        out.push_str(&format!("{name} {}\n", c.load(Ordering::Relaxed)));
    }
    out.push_str("# TYPE tessera_revocation_list_entries gauge\n");
    out.push_str(&format!(
        "tessera_revocation_list_entries {}\n",
        state.revocations.len()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// `GET /openapi.json`.
pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::OPENAPI;

    /// Every (method, path) the router serves, as lower-case method names.
    fn routes() -> Vec<(String, &'static str)> {
        crate::routes::route_table()
            .into_iter()
            .map(|(verb, path)| (verb.method().as_str().to_ascii_lowercase(), path))
            .collect()
    }

    const METHODS: &[&str] = &[
        "get", "put", "post", "delete", "patch", "head", "options", "trace",
    ];

    #[test]
    fn openapi_documents_exactly_the_routed_operations() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1.")),
            "an OpenAPI 3.1 document"
        );
        let paths = doc["paths"].as_object().expect("paths object");
        let routes = routes();
        for (method, path) in &routes {
            assert!(
                paths.get(*path).and_then(|p| p.get(method)).is_some(),
                "{} {path} is routed but not in openapi.json",
                method.to_uppercase()
            );
        }
        let mut distinct: Vec<&str> = routes.iter().map(|(_, p)| *p).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(
            paths.len(),
            distinct.len(),
            "openapi.json documents unrouted paths"
        );
        let operations = paths
            .values()
            .flat_map(|item| item.as_object().into_iter().flat_map(|o| o.keys()))
            .filter(|k| METHODS.contains(&k.as_str()))
            .count();
        assert_eq!(
            operations,
            routes.len(),
            "openapi.json documents unrouted methods"
        );
    }

    /// The grant types the token endpoint documents are exactly the ones `GrantType` has.
    #[test]
    fn openapi_documents_exactly_the_grant_types() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let documented: Vec<&str> = doc["components"]["schemas"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|schema| schema["properties"]["grant_type"]["enum"].as_array())
            .flatten()
            .filter_map(serde_json::Value::as_str)
            .collect();
        assert_eq!(documented, crate::service::GrantType::supported());
    }

    #[test]
    fn openapi_declares_the_four_credential_schemes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearerJwt"]["bearerFormat"], "JWT");
        assert_eq!(schemes["sessionCookie"]["in"], "cookie");
        assert_eq!(schemes["sessionCookie"]["name"], "__Host-tessera_session");
        assert_eq!(schemes["csrfToken"]["name"], "X-CSRF-Token");
        assert_eq!(schemes["bearerSession"]["scheme"], "bearer");
        let error = &doc["components"]["schemas"]["Error"]["required"];
        assert_eq!(error, &serde_json::json!(["error", "error_description"]));
    }
}
