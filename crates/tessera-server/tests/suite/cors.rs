//! CORS as a hostile page would probe it: a listed origin gets its exact origin echoed with
//! credentials; an unlisted origin, a look-alike of a listed one, `null`, or two `Origin`
//! headers get no CORS header at all; preflights of listed origins answer `204` with a
//! cache lifetime; `Vary: Origin` is on every answer.

use axum::http::{Method, StatusCode};
use tessera_server::cors::CorsOrigin;

use crate::common::{PASSWORD, Req, Resp, TestServer};

const APP: &str = "https://app.example";

async fn server() -> TestServer {
    TestServer::with_config(|c| {
        c.cors_origins = vec![
            CorsOrigin::parse(APP).unwrap(),
            CorsOrigin::parse("http://localhost:5173").unwrap(),
        ];
    })
    .await
}

fn assert_no_cors(r: &Resp, what: &str) {
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
    ] {
        assert_eq!(r.header(name), None, "{what}: {name}");
    }
    assert_vary_origin(r);
}

/// `origin` echoed exactly, with credentials, and `Vary: Origin`.
fn assert_allowed(r: &Resp, origin: &str) {
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(origin)
    );
    assert_eq!(
        r.header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_vary_origin(r);
}

fn assert_vary_origin(r: &Resp) {
    let vary: Vec<_> = r
        .headers
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(vary.iter().any(|v| v.contains("Origin")), "{vary:?}");
}

#[tokio::test]
async fn a_listed_origin_is_echoed_exactly_with_credentials() {
    let s = server().await;
    s.register("alice", PASSWORD).await;
    let tokens = s.password_grant("alice", PASSWORD).await;
    let r = s
        .send(
            Req::get("/v1/userinfo")
                .bearer(&tokens.access)
                .header("origin", APP),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_allowed(&r, APP);
    let exposed = r.header("access-control-expose-headers").unwrap();
    assert!(exposed.contains("DPoP-Nonce") && exposed.contains("WWW-Authenticate"));
    assert_vary_origin(&r);
    // Error answers carry the headers too, so the page can read why it was refused.
    let r = s
        .send(Req::get("/v1/userinfo").header("origin", "http://localhost:5173"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("http://localhost:5173")
    );
}

#[tokio::test]
async fn unlisted_look_alike_and_null_origins_get_no_cors_headers() {
    let s = server().await;
    for origin in [
        "https://evil.example",
        "https://app.example.evil.example",
        "http://app.example",
        "https://app.example:8443",
        "https://APP.example",
        "https://app.example/",
        "null",
        "*",
    ] {
        let r = s
            .send(Req::get("/.well-known/jwks.json").header("origin", origin))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{origin}");
        assert_no_cors(&r, origin);
        let pre = s
            .send(
                Req::new(Method::OPTIONS, "/oauth/token")
                    .header("origin", origin)
                    .header("access-control-request-method", "POST"),
            )
            .await;
        assert_ne!(pre.status, StatusCode::NO_CONTENT, "{origin}");
        assert_no_cors(&pre, origin);
    }
    // Two Origin headers, one of them listed: neither is believed.
    let r = s
        .send(
            Req::get("/.well-known/jwks.json")
                .header("origin", APP)
                .header("origin", "https://evil.example"),
        )
        .await;
    assert_no_cors(&r, "two origins");
    // Without any configured origin, nobody gets CORS headers.
    let plain = TestServer::new().await;
    let r = plain
        .send(Req::get("/.well-known/jwks.json").header("origin", APP))
        .await;
    assert_no_cors(&r, "no allowlist");
}

#[tokio::test]
async fn a_listed_origins_preflight_is_answered_204_and_cacheable() {
    let s = server().await;
    let r = s
        .send(
            Req::new(Method::OPTIONS, "/v1/userinfo")
                .header("origin", APP)
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization, dpop"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_allowed(&r, APP);
    assert_eq!(r.header("access-control-max-age").as_deref(), Some("600"));
    let allowed = r.header("access-control-allow-headers").unwrap();
    for needed in ["Authorization", "DPoP", "Content-Type", "X-CSRF-Token"] {
        assert!(allowed.contains(needed), "{needed} in {allowed}");
    }
    let methods = r.header("access-control-allow-methods").unwrap();
    assert!(methods.contains("POST") && methods.contains("GET"));
    assert_vary_origin(&r);
}
