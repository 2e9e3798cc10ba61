//! Request bodies: arbitrary bytes as JSON and as form bodies, sent through the real router
//! (`tessera_server::app`) to `POST /oauth/token`, `/oauth/revoke`, `/v1/users` and
//! `/v1/sessions`, so the real `Input<T>` extractor and the real request structs
//! (`TokenRequest`, `RevokeRequest`, `Credentials`) and handlers parse them.
//!
//! Input format: the first byte picks the endpoint (bits 0–1) and the content type (bits 2–4:
//! JSON and form most of the time, sometimes a variant spelling or none); the rest is the body.
//! Invariants: never a 5xx, and every error is OAuth2-shaped JSON (`error` + `error_description`).
//!
//! The app runs over a `MemoryStore` with a `ManualClock` and the cheapest Argon2 cost, with one
//! registered user (`fuzzuser` / `PASSWORD`) so logins can succeed. Bodies that register users
//! make the store grow, so the app is rebuilt every `REBUILD_EVERY` inputs (which also resets
//! the login throttling).

#![no_main]

use std::cell::RefCell;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use tessera_core::password::PasswordHasher;
use tessera_core::time::{ManualClock, UnixTime};
use tessera_server::{AppState, ServerConfig};
use tessera_store::memory::MemoryStore;
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

const ISSUER: &str = "https://tessera.fuzz";
/// The seeded user's password (passes the password policy).
const PASSWORD: &str = "violet tugboat anagram 1987";
const REBUILD_EVERY: u64 = 20_000;

const ENDPOINTS: [&str; 4] = ["/oauth/token", "/oauth/revoke", "/v1/users", "/v1/sessions"];
const CONTENT_TYPES: [Option<&str>; 8] = [
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("application/json; charset=utf-8"),
    Some("Application/X-WWW-Form-Urlencoded ; charset=UTF-8"),
    Some("text/plain"),
    None,
];

struct Harness {
    runtime: Runtime,
    router: Router,
    runs: u64,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let router = runtime.block_on(build_app());
        Self {
            runtime,
            router,
            runs: 0,
        }
    }

    fn send(&mut self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        self.runs += 1;
        if self.runs % REBUILD_EVERY == 0 {
            self.router = self.runtime.block_on(build_app());
        }
        let router = self.router.clone();
        self.runtime.block_on(async move {
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            (status, body.to_vec())
        })
    }
}

async fn build_app() -> Router {
    let clock = Arc::new(ManualClock::new(UnixTime(1_700_000_000)));
    let state = AppState::new(
        Arc::new(MemoryStore::new()),
        ServerConfig::new(ISSUER),
        clock,
        PasswordHasher::with_cost(8, 1).expect("cheap hasher"),
    )
    .await
    .expect("state");
    let router = tessera_server::app(state);
    let register = Request::builder()
        .method(Method::POST)
        .uri("/v1/users")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            serde_json::json!({"username": "fuzzuser", "password": PASSWORD}).to_string(),
        ))
        .expect("request");
    let status = router
        .clone()
        .oneshot(register)
        .await
        .expect("infallible")
        .status();
    assert_eq!(status, StatusCode::CREATED, "seed user");
    router
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let path = ENDPOINTS[usize::from(selector & 0b11)];
    let content_type = CONTENT_TYPES[usize::from((selector >> 2) & 0b111)];
    let mut builder = Request::builder().method(Method::POST).uri(path);
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    let request = builder.body(Body::from(body.to_vec())).expect("request");
    let (status, bytes) = HARNESS.with(|h| {
        h.borrow_mut()
            .get_or_insert_with(Harness::new)
            .send(request)
    });
    assert!(
        !status.is_server_error(),
        "{status} for {path} {content_type:?}: {}",
        String::from_utf8_lossy(&bytes)
    );
    if !status.is_success() {
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("error body is JSON");
        assert!(
            v["error"].as_str().is_some_and(|s| !s.is_empty()),
            "no error code: {v}"
        );
        assert!(
            v["error_description"].as_str().is_some(),
            "no description: {v}"
        );
    }
});
