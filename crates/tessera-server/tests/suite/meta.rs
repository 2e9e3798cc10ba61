//! Discovery, the JWKS, the operations endpoints, and the router's 404/405 answers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::clients_oauth::{Client, client_token, introspect, register};
use crate::common;

use axum::http::{Method, StatusCode};
use common::*;
use tessera_server::state::READINESS_TIMEOUT;

#[tokio::test]
async fn discovery_is_consistent_with_the_issuer() {
    let s = TestServer::new().await;
    let r = s.send(Req::get("/.well-known/openid-configuration")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let d = r.json();
    assert_eq!(d["issuer"], ISSUER);
    assert_eq!(d["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    assert_eq!(d["token_endpoint"], format!("{ISSUER}/oauth/token"));
    assert_eq!(d["revocation_endpoint"], format!("{ISSUER}/oauth/revoke"));
    assert_eq!(d["userinfo_endpoint"], format!("{ISSUER}/v1/userinfo"));
    let grants = d["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&"password".into()) && grants.contains(&"refresh_token".into()));
    assert_eq!(
        d["access_token_signing_alg_values_supported"],
        serde_json::json!(["EdDSA"])
    );
    // Each advertised endpoint is served here, at the advertised path.
    for key in [
        "jwks_uri",
        "token_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
    ] {
        let url = d[key].as_str().unwrap();
        let path = url.strip_prefix(ISSUER).unwrap();
        let method = if key == "jwks_uri" || key == "userinfo_endpoint" {
            Method::GET
        } else {
            Method::POST
        };
        let r = s.send(Req::new(method, path)).await;
        assert_ne!(r.status, StatusCode::NOT_FOUND, "{key}: {path}");
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{key}: {path}");
    }
    // Each client authentication method is advertised for an endpoint exactly when that
    // endpoint accepts it.
    s.register("alice", PASSWORD).await;
    let c = register(&s, "read").await;
    let lists = [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ];
    for key in lists {
        for m in d[key].as_array().unwrap() {
            let m = m.as_str().unwrap();
            assert!(
                CLIENT_AUTH.contains(&m),
                "{key} names {m}, which is not proven here"
            );
        }
    }
    for method in CLIENT_AUTH {
        let accepted = [
            token_accepts(&s, &c, method).await,
            revoke_accepts(&s, &c, method).await,
            introspect_accepts(&s, &c, method).await,
        ];
        for (key, accepted) in lists.into_iter().zip(accepted) {
            let advertised = d[key].as_array().unwrap().contains(&method.into());
            assert_eq!(advertised, accepted, "{key}: {method}");
        }
    }
}

/// Every client authentication method the tests below know how to present.
const CLIENT_AUTH: [&str; 3] = ["none", "client_secret_basic", "client_secret_post"];

/// A form post to `path` by a caller authenticating by `method` (as discovery names it).
fn client_auth(path: &str, method: &str, c: &Client, form: &[(&str, &str)]) -> Req {
    let req = Req::post(path);
    match method {
        "none" => req.form(form),
        "client_secret_basic" => req.header("authorization", c.basic()).form(form),
        "client_secret_post" => {
            let mut form = form.to_vec();
            form.extend([("client_id", c.id.as_str()), ("client_secret", &c.secret)]);
            req.form(&form)
        }
        other => panic!("no way to present {other}"),
    }
}

/// A live access token `method` may revoke or introspect: a first-party app's (no client)
/// for `none`, else one issued to `c`.
async fn token_for(s: &TestServer, c: &Client, method: &str) -> String {
    let token = if method == "none" {
        s.password_grant("alice", PASSWORD).await.access
    } else {
        let r = client_token(s, c, None).await;
        r.json()["access_token"].as_str().unwrap().to_owned()
    };
    assert_eq!(introspect(s, c, &token).await.json()["active"], true);
    token
}

/// Whether `/oauth/token` issues tokens to a caller authenticating by `method`: the password
/// grant of a first-party app without a client for `none`, else `client_credentials`.
async fn token_accepts(s: &TestServer, c: &Client, method: &str) -> bool {
    let form: &[(&str, &str)] = if method == "none" {
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ]
    } else {
        &[("grant_type", "client_credentials")]
    };
    let r = s.send(client_auth("/oauth/token", method, c, form)).await;
    r.status == StatusCode::OK && r.json()["access_token"].is_string()
}

/// Whether `/oauth/revoke` revokes a token for a caller authenticating by `method` — the
/// answer is 200 even for what it did not revoke, so the token's death is the proof.
async fn revoke_accepts(s: &TestServer, c: &Client, method: &str) -> bool {
    let token = token_for(s, c, method).await;
    let r = s
        .send(client_auth(
            "/oauth/revoke",
            method,
            c,
            &[("token", &token)],
        ))
        .await;
    r.status == StatusCode::OK && introspect(s, c, &token).await.json()["active"] == false
}

/// Whether `/oauth/introspect` answers a caller authenticating by `method`.
async fn introspect_accepts(s: &TestServer, c: &Client, method: &str) -> bool {
    let token = token_for(s, c, method).await;
    let r = s
        .send(client_auth(
            "/oauth/introspect",
            method,
            c,
            &[("token", &token)],
        ))
        .await;
    r.status == StatusCode::OK && r.json()["active"] == true
}

#[tokio::test]
async fn discovery_and_tokens_use_an_issuer_without_a_trailing_slash() {
    let s = TestServer::with_config(|c| {
        *c = tessera_server::ServerConfig::new("https://auth.example/");
    })
    .await;
    let d = s
        .send(Req::get("/.well-known/openid-configuration"))
        .await
        .json();
    assert_eq!(d["issuer"], "https://auth.example");
    assert_eq!(d["jwks_uri"], "https://auth.example/.well-known/jwks.json");
    s.register("alice", PASSWORD).await;
    let t = s.password_grant("alice", PASSWORD).await;
    assert_eq!(jwt_part(&t.access, 1)["iss"], "https://auth.example");
    assert_eq!(s.userinfo_bearer(&t.access).await.status, StatusCode::OK);
}

#[tokio::test]
async fn jwks_has_the_current_public_key_and_nothing_private() {
    let s = TestServer::new().await;
    let r = s.send(Req::get("/.well-known/jwks.json")).await;
    assert_eq!(r.status, StatusCode::OK);
    let jwks = r.json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let k = &keys[0];
    assert_eq!(k["kty"], "OKP");
    assert_eq!(k["crv"], "Ed25519");
    assert_eq!(k["alg"], "EdDSA");
    assert_eq!(k["use"], "sig");
    assert!(k["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
    assert!(k["x"].as_str().is_some_and(|x| x.len() == 43));
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(k.get(private).is_none(), "private member {private} in {k}");
    }
    let cache = r.header("cache-control").unwrap();
    assert!(cache.starts_with("public"), "{cache}");
}

#[tokio::test]
async fn the_access_token_kid_is_published_in_the_jwks() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t = s.password_grant("alice", PASSWORD).await;
    let kid = jwt_part(&t.access, 0)["kid"].as_str().unwrap().to_owned();
    let jwks = s.send(Req::get("/.well-known/jwks.json")).await.json();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid of the token is in the JWKS");
    assert_eq!(key["alg"], jwt_part(&t.access, 0)["alg"]);
}

#[tokio::test]
async fn a_second_instance_on_the_same_store_publishes_the_same_key_and_accepts_its_tokens() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t = s.password_grant("alice", PASSWORD).await;
    let mut config = tessera_server::ServerConfig::new(ISSUER);
    config.kek.clone_from(&s.state.config().kek);
    let second = tessera_server::AppState::new(
        s.state.store().clone(),
        config,
        s.clock.clone(),
        tessera_core::password::PasswordHasher::with_cost(64, 1).unwrap(),
    )
    .await
    .unwrap();
    let second = tessera_server::app(second);
    let get = |uri: &str, bearer: Option<&str>| {
        let mut req = Req::get(uri);
        if let Some(b) = bearer {
            req = req.bearer(b);
        }
        req.build()
    };
    let jwks_one = s.send(Req::get("/.well-known/jwks.json")).await.json();
    let resp = tower::ServiceExt::oneshot(second.clone(), get("/.well-known/jwks.json", None))
        .await
        .unwrap();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let jwks_two: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(jwks_one, jwks_two);
    let resp = tower::ServiceExt::oneshot(second, get("/v1/userinfo", Some(&t.access)))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn healthz_and_readyz_are_200() {
    let s = TestServer::new().await;
    let r = s.send(Req::get("/healthz")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ok");
    let r = s.send(Req::get("/readyz")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ready");
}

/// A store that accepts the call and never answers (PostgreSQL's pool waiting for a connection,
/// Redis behind a dead link) must not hold `/readyz` for the store's own 3 s timeouts: the probe
/// answers 503 `unavailable` after `READINESS_TIMEOUT`, well inside a one-second probe. The
/// clock is paused and advances only when every task waits on it, so the measured time is the
/// server's timer and nothing else.
#[tokio::test(start_paused = true)]
async fn readyz_answers_503_within_a_second_when_the_store_hangs() {
    let store = crate::faulty_store::FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    assert_eq!(s.send(Req::get("/readyz")).await.status, StatusCode::OK);

    store.hang("revocations");
    let took = readyz_says_unreachable_within_a_second(&s).await;
    assert!(took >= READINESS_TIMEOUT, "{took:?}");

    store.heal();
    assert_eq!(s.send(Req::get("/readyz")).await.status, StatusCode::OK);
}

/// A TCP relay to Redis that can go silent: it then keeps every connection open and forwards
/// nothing, which is how Redis behind a dead link looks to its clients (they wait for their own
/// 3 s response timeout).
struct SilentableRelay {
    port: u16,
    silent: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SilentableRelay {
    fn start(upstream: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = std::sync::Arc::default();
        let (flag, upstream) = (std::sync::Arc::clone(&silent), upstream.to_owned());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let client = client.unwrap();
                let server = std::net::TcpStream::connect(&upstream).unwrap();
                Self::pump(&client, &server, &flag);
                Self::pump(&server, &client, &flag);
            }
        });
        Self { port, silent }
    }

    /// Copies `from` to `to` on a thread of its own while the relay is not silent; drops
    /// what arrives while it is.
    fn pump(
        from: &std::net::TcpStream,
        to: &std::net::TcpStream,
        silent: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        use std::io::{Read, Write};
        let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
        let silent = std::sync::Arc::clone(silent);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                if !silent.load(std::sync::atomic::Ordering::SeqCst)
                    && to.write_all(&buf[..n]).is_err()
                {
                    break;
                }
            }
            let _ = to.shutdown(std::net::Shutdown::Both);
        });
    }

    fn go_silent(&self) {
        self.silent.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// With `--redis`, sessions live in Redis: when it stops answering, no session or login can be
/// checked, so `/readyz` says `unavailable` (503) — within a second, not after the Redis
/// client's own 3 s timeout. Skipped without Redis on 127.0.0.1:6379, unless `CI=true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_within_a_second_when_redis_stops_answering() {
    const REDIS: &str = "127.0.0.1:6379";
    if std::net::TcpStream::connect(REDIS).is_err() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "Redis required under CI=true"
        );
        eprintln!("skipping: no Redis at {REDIS}");
        return;
    }
    let relay = SilentableRelay::start(REDIS);
    let namespace = format!("readyz{}", std::process::id());
    let redis = tessera_store::redis::RedisStore::connect(
        &[format!("redis://127.0.0.1:{}", relay.port)],
        &namespace,
    )
    .await
    .unwrap();
    let durable = std::sync::Arc::new(tessera_store::memory::MemoryStore::new());
    let store = tessera_store::split::SplitStore::new(durable, std::sync::Arc::new(redis));
    let s = TestServer::with_store(std::sync::Arc::new(store), |_| {}).await;
    let r = s.send(Req::get("/readyz")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    relay.go_silent();
    readyz_says_unreachable_within_a_second(&s).await;
}

/// Asks `/readyz` and checks it answers 503 `unreachable` within a second; returns how long
/// it took. Bounded at 10 s here too, so a probe that waits for ever fails the test instead of
/// hanging it.
async fn readyz_says_unreachable_within_a_second(s: &TestServer) -> std::time::Duration {
    let start = tokio::time::Instant::now();
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.send(Req::get("/readyz")),
    )
    .await
    .expect("/readyz answered");
    let took = start.elapsed();
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json()["status"], "unavailable");
    assert_eq!(r.json()["store"], "unreachable");
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    took
}

#[tokio::test]
async fn metrics_is_prometheus_text_with_login_counters() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    s.login("alice", PASSWORD).await;
    s.login_raw("alice", "wrong password number x").await;
    s.password_grant("alice", PASSWORD).await;
    let r = s.send(Req::get("/metrics")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.text();
    assert!(
        text.contains("# TYPE tessera_logins_total counter"),
        "{text}"
    );
    assert!(
        text.contains("tessera_logins_total{result=\"ok\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("tessera_logins_total{result=\"failed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("tessera_access_tokens_issued_total 1"),
        "{text}"
    );
    // The whole exposition reads back under the format's rules.
    crate::prometheus::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

#[tokio::test]
async fn openapi_is_json_and_describes_every_contract_path() {
    let s = TestServer::new().await;
    let r = s.send(Req::get("/openapi.json")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/users", "post"),
        ("/v1/sessions", "post"),
        ("/v1/sessions", "get"),
        ("/v1/sessions", "delete"),
        ("/v1/sessions/{id}", "delete"),
        ("/v1/session", "get"),
        ("/v1/session", "delete"),
        ("/v1/userinfo", "get"),
        ("/v1/password", "post"),
        ("/oauth/token", "post"),
        ("/oauth/revoke", "post"),
        ("/.well-known/openid-configuration", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from openapi.json"
        );
    }
}

#[tokio::test]
async fn unknown_path_is_a_json_404() {
    let s = TestServer::new().await;
    for path in [
        "/nope",
        "/v1",
        "/v1/users/alice",
        "/oauth/authorise",
        "/v1/sessions/a/b",
    ] {
        let r = s.send(Req::get(path)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.error_code(), "not_found");
    }
}

#[tokio::test]
async fn wrong_method_is_a_json_405() {
    let s = TestServer::new().await;
    for (method, path) in [
        (Method::GET, "/v1/users"),
        (Method::GET, "/oauth/token"),
        (Method::OPTIONS, "/oauth/revoke"),
        (Method::PUT, "/v1/sessions"),
        (Method::POST, "/v1/session"),
        (Method::GET, "/v1/sessions/abc"),
        (Method::POST, "/healthz"),
        (Method::DELETE, "/.well-known/jwks.json"),
        (Method::PATCH, "/v1/password"),
    ] {
        let r = s.send(Req::new(method.clone(), path)).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(r.error_code(), "method_not_allowed");
        // RFC 9110 §15.5.6: a 405 names the methods that are allowed.
        assert!(r.header("allow").is_some_and(|a| !a.is_empty()), "{path}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let s = TestServer::new().await;
    for req in [
        Req::get("/healthz"),
        Req::get("/nope"),
        Req::get("/v1/userinfo"),
        Req::post("/oauth/token").form(&[("grant_type", "x")]),
    ] {
        let r = s.send(req).await;
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(r.header("referrer-policy").as_deref(), Some("no-referrer"));
        assert!(r.header("cache-control").is_some());
    }
}

#[tokio::test]
async fn token_responses_are_not_cacheable() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let r = s.password_grant_raw("alice", PASSWORD).await;
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(r.header("pragma").as_deref(), Some("no-cache"));
}

#[tokio::test]
async fn jwks_and_discovery_are_cached_no_longer_than_a_next_key_waits() {
    // A `next` key may sign MIN_PUBLISHED_SECS after it is published: no verifier may hold a
    // JWKS without it by then.
    use tessera_core::keys::lifecycle::{JWKS_MAX_AGE_SECS, MIN_PUBLISHED_SECS};
    assert_eq!(i64::from(JWKS_MAX_AGE_SECS), MIN_PUBLISHED_SECS);
    let s = TestServer::new().await;
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
    ] {
        let r = s.send(Req::get(path)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.header("cache-control").unwrap(),
            format!("public, max-age={JWKS_MAX_AGE_SECS}"),
            "{path}"
        );
    }
}

/// The properties and required properties a documented schema declares, following `allOf`
/// and `$ref`.
fn documented(doc: &serde_json::Value, schema: &serde_json::Value) -> (Vec<String>, Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        return documented(doc, doc.pointer(r.strip_prefix('#').unwrap()).unwrap());
    }
    let mut props: Vec<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let (p, r) = documented(doc, part);
        props.extend(p);
        required.extend(r);
    }
    (props, required)
}

/// A real body carries only documented properties, and every required one.
fn assert_matches_schema(doc: &serde_json::Value, name: &str, body: &serde_json::Value) {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name}");
    let (props, required) = documented(doc, schema);
    let body = body.as_object().unwrap();
    for key in body.keys() {
        assert!(
            props.contains(key),
            "{name}: `{key}` is sent but not documented"
        );
    }
    for key in &required {
        assert!(
            body.contains_key(key),
            "{name}: required `{key}` is not sent"
        );
    }
}

#[tokio::test]
async fn the_served_openapi_is_the_generated_one_and_real_bodies_match_its_schemas() {
    let s = TestServer::new().await;
    let doc = s.send(Req::get("/openapi.json")).await.json();
    assert_eq!(
        doc,
        serde_json::to_value(tessera_server::routes::openapi()).unwrap()
    );

    let get = |path: &'static str| s.send(Req::get(path));
    let discovery = get("/.well-known/openid-configuration").await.json();
    assert_matches_schema(&doc, "Discovery", &discovery);
    let jwks = get("/.well-known/jwks.json").await.json();
    assert_matches_schema(&doc, "JwkSet", &jwks);
    assert_matches_schema(&doc, "Jwk", &jwks["keys"][0]);
    assert_matches_schema(&doc, "Health", &get("/healthz").await.json());
    assert_matches_schema(&doc, "Readiness", &get("/readyz").await.json());

    let user = s.register_raw("alice", PASSWORD).await.json();
    assert_matches_schema(&doc, "User", &user);
    let login = s.login_raw("alice", PASSWORD).await;
    assert_eq!(login.status, StatusCode::CREATED);
    assert_matches_schema(&doc, "LoginSession", &login.json());
    let browser = cookie_session(&login);
    let current = s
        .send(Req::get("/v1/session").browser(&browser))
        .await
        .json();
    assert_matches_schema(&doc, "CurrentSession", &current);
    let listed = s
        .send(Req::get("/v1/sessions").browser(&browser))
        .await
        .json();
    assert_matches_schema(&doc, "SessionList", &listed);
    assert_matches_schema(&doc, "Session", &listed["sessions"][0]);
    assert_matches_schema(
        &doc,
        "Userinfo",
        &s.userinfo_cookie(&browser.token).await.json(),
    );

    let granted = s.password_grant_raw("alice", PASSWORD).await.json();
    assert_matches_schema(&doc, "TokenResponse", &granted);
    let access = granted["access_token"].as_str().unwrap();
    assert_matches_schema(&doc, "Userinfo", &s.userinfo_bearer(access).await.json());

    let refused = get("/v1/userinfo").await.json();
    assert_matches_schema(&doc, "Error", &refused);
}
