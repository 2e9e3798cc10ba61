//! Shared harness for the in-process HTTP tests: an [`AppState`] over a [`MemoryStore`] with a
//! [`ManualClock`] the tests can move, cheap password hashing, request builders, and helpers
//! for the common flows (register, cookie login, password grant, refresh).
//!
//! Every test drives `tessera_server::app(state)` with `tower::ServiceExt::oneshot`, exactly as
//! the binary serves it, without a socket.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::BodyExt;
use serde_json::Value;
use tessera_core::password::PasswordHasher;
use tessera_core::time::{ManualClock, UnixTime};
use tessera_server::{AppState, ServerConfig};
use tessera_store::memory::MemoryStore;
use tower::ServiceExt;

/// The issuer every test server uses.
pub const ISSUER: &str = "http://tessera.test";
/// The `Host` the test server answers as.
pub const HOST: &str = "tessera.test";
/// Name of the session cookie.
pub const COOKIE: &str = "__Host-tessera_session";
/// A password that passes the policy.
pub const PASSWORD: &str = "violet tugboat anagram 1987";
/// Another password that passes the policy.
pub const NEW_PASSWORD: &str = "purple monkey dishwasher 42";
/// Where the manual clock starts.
pub const T0: i64 = 1_700_000_000;

/// A test server: the router, its state, and the clock that drives it.
pub struct TestServer {
    /// The state the router was built over.
    pub state: AppState,
    /// The clock; `advance` moves the server's time.
    pub clock: Arc<ManualClock>,
    router: Router,
}

/// A response with its body read.
#[derive(Debug)]
pub struct Resp {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl Resp {
    /// The body as JSON; panics (test failure) if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}), status {}: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as a string, if present.
    pub fn header(&self, name: impl AsRef<str>) -> Option<String> {
        self.headers
            .get(name.as_ref())
            .map(|v| v.to_str().expect("ASCII header").to_owned())
    }

    /// The `error` code of an error body, checking the OAuth2 error shape on the way.
    pub fn error_code(&self) -> String {
        assert_error_shape(self);
        self.json()["error"].as_str().unwrap().to_owned()
    }

    /// The value of the session cookie set by this response, if any.
    pub fn set_cookie_value(&self) -> Option<String> {
        let sc = self.header(header::SET_COOKIE)?;
        let first = sc.split(';').next()?;
        let (name, value) = first.split_once('=')?;
        (name == COOKIE).then(|| value.to_owned())
    }
}

/// Every error answer is OAuth2-shaped JSON with a 4xx status.
pub fn assert_error_shape(r: &Resp) {
    assert!(
        r.status.is_client_error(),
        "expected a 4xx, got {} with {:?}",
        r.status,
        r.text()
    );
    let v = r.json();
    assert!(
        v["error"].as_str().is_some_and(|s| !s.is_empty()),
        "no error code in {v}"
    );
    assert!(
        v["error_description"].as_str().is_some(),
        "no error_description in {v}"
    );
}

/// No 5xx, whatever the input; and an error answer, if any, is OAuth2-shaped.
pub fn assert_clean(r: &Resp) {
    assert!(
        !r.status.is_server_error(),
        "server error {} with {:?}",
        r.status,
        r.text()
    );
    if !r.status.is_success() {
        assert_error_shape(r);
    }
}

/// A request under construction.
pub struct Req {
    builder: axum::http::request::Builder,
    body: Body,
    connect: Option<SocketAddr>,
}

impl Req {
    /// A request with no body.
    pub fn new(method: Method, uri: &str) -> Self {
        Self {
            builder: Request::builder().method(method).uri(uri),
            body: Body::empty(),
            connect: None,
        }
    }

    /// `GET uri`.
    pub fn get(uri: &str) -> Self {
        Self::new(Method::GET, uri)
    }

    /// `POST uri`.
    pub fn post(uri: &str) -> Self {
        Self::new(Method::POST, uri)
    }

    /// `DELETE uri`.
    pub fn delete(uri: &str) -> Self {
        Self::new(Method::DELETE, uri)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.builder = self.builder.header(name.as_ref(), value.as_ref());
        self
    }

    /// Adds a header from raw bytes (which may be non-ASCII).
    pub fn header_bytes(mut self, name: HeaderName, value: &[u8]) -> Self {
        self.builder = self.builder.header(
            name,
            HeaderValue::from_bytes(value).expect("valid header bytes"),
        );
        self
    }

    /// A JSON body.
    pub fn json(self, v: &Value) -> Self {
        self.raw("application/json", v.to_string())
    }

    /// A form-encoded body.
    pub fn form(self, pairs: &[(&str, &str)]) -> Self {
        let body = serde_urlencoded::to_string(pairs).expect("encodable form");
        self.raw("application/x-www-form-urlencoded", body)
    }

    /// A body of the given content type.
    pub fn raw(mut self, content_type: &str, body: impl Into<Body>) -> Self {
        self.builder = self.builder.header(header::CONTENT_TYPE, content_type);
        self.body = body.into();
        self
    }

    /// A body with no content type.
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// The session cookie.
    pub fn cookie(self, token: &str) -> Self {
        self.header(header::COOKIE, format!("{COOKIE}={token}"))
    }

    /// The CSRF header.
    pub fn csrf(self, csrf: &str) -> Self {
        self.header("x-csrf-token", csrf)
    }

    /// A cookie-authenticated write from our own pages: cookie, CSRF header, same origin.
    pub fn browser(self, s: &CookieSession) -> Self {
        self.cookie(&s.token)
            .csrf(&s.csrf)
            .header(header::ORIGIN, ISSUER)
            .header(header::HOST, HOST)
            .header("sec-fetch-site", "same-origin")
    }

    /// `Authorization: Bearer token`.
    pub fn bearer(self, token: &str) -> Self {
        self.header(header::AUTHORIZATION, format!("Bearer {token}"))
    }

    /// The client address as the socket would report it (for per-IP limits).
    pub fn client_ip(mut self, addr: &str) -> Self {
        self.connect = Some(addr.parse().expect("socket address"));
        self
    }

    /// The finished request.
    pub fn build(self) -> Request<Body> {
        let mut req = self.builder.body(self.body).expect("valid request");
        if let Some(addr) = self.connect {
            req.extensions_mut().insert(ConnectInfo(addr));
        }
        req
    }
}

/// A cookie session as a browser holds it.
#[derive(Clone, Debug)]
pub struct CookieSession {
    /// The cookie value (`tss_…`).
    pub token: String,
    /// The CSRF token from the login body.
    pub csrf: String,
    /// The session id.
    pub id: String,
}

/// What the password grant hands an app.
#[derive(Clone, Debug)]
pub struct AppTokens {
    /// The access JWT.
    pub access: String,
    /// The refresh token (`trt_…`).
    pub refresh: String,
}

impl TestServer {
    /// A server with default settings.
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    /// A server whose default settings `tweak` adjusts.
    pub async fn with_config(tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::with_store(Arc::new(MemoryStore::new()), tweak).await
    }

    /// A server over `store`, with settings `tweak` adjusts.
    pub async fn with_store(
        store: Arc<dyn tessera_store::Store>,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let cheap = PasswordHasher::with_cost(64, 1).expect("cheap hasher");
        Self::with_parts(store, cheap, tweak).await
    }

    /// A server over `store` hashing with `hasher`, with settings `tweak` adjusts.
    pub async fn with_parts(
        store: Arc<dyn tessera_store::Store>,
        hasher: PasswordHasher,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let clock = Arc::new(ManualClock::new(UnixTime(T0)));
        let mut config = ServerConfig::new(ISSUER);
        tweak(&mut config);
        let state = AppState::new(store, config, clock.clone(), hasher)
            .await
            .expect("state");
        let router = tessera_server::app(state.clone());
        Self {
            state,
            clock,
            router,
        }
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, secs: i64) {
        self.clock.advance(secs);
    }

    /// Moves the clock on by `secs`, then reloads the revocation list from the store as the
    /// upkeep task does, which drops the entries that expired meanwhile.
    pub async fn advance_and_reload_revocations(&self, secs: i64) {
        self.advance(secs);
        let now = self.state.now();
        self.state
            .revocations()
            .reload(self.state.store().as_ref(), now)
            .await
            .unwrap();
    }

    /// Sends a request and reads the whole response.
    pub async fn send(&self, req: Req) -> Resp {
        self.send_request(req.build()).await
    }

    /// Sends a request and returns the response with its body unread (a stream).
    pub async fn open(&self, req: Req) -> axum::response::Response {
        self.router
            .clone()
            .oneshot(req.build())
            .await
            .expect("infallible router")
    }

    /// Sends a prepared request and reads the whole response.
    pub async fn send_request(&self, req: Request<Body>) -> Resp {
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("infallible router");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// `POST /v1/users`.
    pub async fn register_raw(&self, username: &str, password: &str) -> Resp {
        self.send(Req::post("/v1/users").json(&serde_json::json!({
            "username": username, "password": password
        })))
        .await
    }

    /// Registers a user; returns its id.
    pub async fn register(&self, username: &str, password: &str) -> String {
        let r = self.register_raw(username, password).await;
        assert_eq!(r.status, StatusCode::CREATED, "register: {}", r.text());
        r.json()["id"].as_str().unwrap().to_owned()
    }

    /// `POST /v1/sessions` with JSON credentials.
    pub async fn login_raw(&self, username: &str, password: &str) -> Resp {
        self.send(Req::post("/v1/sessions").json(&serde_json::json!({
            "username": username, "password": password
        })))
        .await
    }

    /// Cookie login that must succeed.
    pub async fn login(&self, username: &str, password: &str) -> CookieSession {
        let r = self.login_raw(username, password).await;
        assert_eq!(r.status, StatusCode::CREATED, "login: {}", r.text());
        cookie_session(&r)
    }

    /// Password grant (form-encoded).
    pub async fn password_grant_raw(&self, username: &str, password: &str) -> Resp {
        self.send(Req::post("/oauth/token").form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ]))
        .await
    }

    /// Password grant that must succeed.
    pub async fn password_grant(&self, username: &str, password: &str) -> AppTokens {
        let r = self.password_grant_raw(username, password).await;
        assert_eq!(r.status, StatusCode::OK, "password grant: {}", r.text());
        app_tokens(&r)
    }

    /// Refresh grant (form-encoded).
    pub async fn refresh_raw(&self, refresh_token: &str) -> Resp {
        self.send(Req::post("/oauth/token").form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ]))
        .await
    }

    /// Refresh grant that must succeed.
    pub async fn refresh(&self, refresh_token: &str) -> AppTokens {
        let r = self.refresh_raw(refresh_token).await;
        assert_eq!(r.status, StatusCode::OK, "refresh: {}", r.text());
        app_tokens(&r)
    }

    /// `POST /oauth/revoke` with a form body.
    pub async fn revoke(&self, token: &str) -> Resp {
        self.send(Req::post("/oauth/revoke").form(&[("token", token)]))
            .await
    }

    /// `GET /v1/userinfo` with a bearer token.
    pub async fn userinfo_bearer(&self, token: &str) -> Resp {
        self.send(Req::get("/v1/userinfo").bearer(token)).await
    }

    /// `GET /v1/userinfo` with the session cookie.
    pub async fn userinfo_cookie(&self, token: &str) -> Resp {
        self.send(Req::get("/v1/userinfo").cookie(token)).await
    }

    /// `GET /v1/session` with the session cookie.
    pub async fn session_status(&self, token: &str) -> StatusCode {
        self.send(Req::get("/v1/session").cookie(token))
            .await
            .status
    }
}

/// The cookie session a successful login response describes.
pub fn cookie_session(r: &Resp) -> CookieSession {
    let body = r.json();
    CookieSession {
        token: r.set_cookie_value().expect("session cookie set"),
        csrf: body["csrf_token"].as_str().expect("csrf_token").to_owned(),
        id: body["id"].as_str().expect("session id").to_owned(),
    }
}

/// The tokens of a successful token-endpoint response.
pub fn app_tokens(r: &Resp) -> AppTokens {
    let body = r.json();
    AppTokens {
        access: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        refresh: body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
    }
}

/// Decodes one base64url part of a compact JWS as JSON (without verifying anything).
pub fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("JWS part");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON part")
}

/// A registered user with a cookie session.
pub async fn user_with_cookie(s: &TestServer, name: &str) -> CookieSession {
    s.register(name, PASSWORD).await;
    s.login(name, PASSWORD).await
}
