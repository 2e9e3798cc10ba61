//! `/metrics`: a valid exposition (read back by a strict parser), requests by route template
//! and status with latency histograms, authentication outcomes by reason, the sessions gauge,
//! the revocation feed's lag, request ids — and a flood of made-up paths that adds no series.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use tokio::sync::Barrier;

use crate::common::*;
use crate::faulty_store::FaultyStore;
use crate::prometheus::{Exposition, parse};

async fn scrape(s: &TestServer) -> Exposition {
    let r = s.send(Req::get("/metrics")).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn requests(e: &Exposition, method: &str, route: &str, status: &str) -> f64 {
    e.matching(
        "tessera_http_requests_total",
        &[("method", method), ("route", route), ("status", status)],
    )
    .map(|s| s.value)
    .sum()
}

#[tokio::test]
async fn requests_are_counted_by_route_template_status_and_latency() {
    let s = TestServer::new().await;
    let alice = user_with_cookie(&s, "alice").await;
    s.login_raw("alice", "wrong password number x").await;
    for id in ["first-made-up-id", "second-made-up-id"] {
        let r = s
            .send(Req::delete(&format!("/v1/sessions/{id}")).browser(&alice))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    s.send(Req::get("/no/such/path")).await;
    s.send(Req::new(Method::PUT, "/v1/userinfo")).await;
    let e = scrape(&s).await;

    assert_eq!(requests(&e, "POST", "/v1/users", "201"), 1.0);
    assert_eq!(requests(&e, "POST", "/v1/sessions", "201"), 1.0);
    assert_eq!(requests(&e, "POST", "/v1/sessions", "401"), 1.0);
    assert_eq!(requests(&e, "DELETE", "/v1/sessions/{id}", "404"), 2.0);
    // Unrouted paths and methods share one series.
    assert_eq!(requests(&e, "other", "unmatched", "404"), 1.0);
    assert_eq!(requests(&e, "other", "unmatched", "405"), 1.0);
    for s in &e.samples {
        for v in s.labels.values() {
            assert!(!v.contains("made-up") && !v.contains("/no/such"), "{s:?}");
        }
    }
    // The histogram counted both logins, and the route table's other routes are there at 0.
    let logins = [("method", "POST"), ("route", "/v1/sessions")];
    assert_eq!(
        e.value("tessera_http_request_duration_seconds_count", &logins),
        2.0
    );
    assert!(e.value("tessera_http_request_duration_seconds_sum", &logins) > 0.0);
    assert_eq!(
        e.value(
            "tessera_http_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/v1/revocations")]
        ),
        0.0
    );
    assert_eq!(
        e.types["tessera_http_request_duration_seconds"],
        "histogram"
    );
    assert_eq!(e.types["tessera_http_requests_total"], "counter");
    assert_eq!(e.value("tessera_logins_total", &[("result", "ok")]), 1.0);
    assert_eq!(
        e.value("tessera_logins_total", &[("result", "failed")]),
        1.0
    );
}

#[tokio::test]
async fn a_flood_of_made_up_paths_and_methods_adds_no_series() {
    let s = TestServer::new().await;
    s.send(Req::get("/warm-up")).await;
    let before = s.send(Req::get("/metrics")).await.text().lines().count();
    for i in 0..500 {
        let path = format!("/v1/sessions/{i}/x{i}?q={i}");
        s.send(Req::get(&path)).await;
        let method = Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
        s.send(Req::new(method, &format!("/v1/users/{i}"))).await;
    }
    let text = s.send(Req::get("/metrics")).await.text();
    // The unmatched series gained a 405 line and `/metrics` its own 200: nothing per path.
    assert!(
        text.lines().count() <= before + 3,
        "{before} lines before, {} after",
        text.lines().count()
    );
    let e = parse(&text).unwrap();
    assert_eq!(
        e.matching("tessera_http_requests_total", &[("route", "unmatched")])
            .map(|s| s.value)
            .sum::<f64>(),
        1001.0
    );
}

#[tokio::test]
async fn authentication_outcomes_are_counted_by_reason() {
    let s = TestServer::new().await;
    let alice = user_with_cookie(&s, "alice").await;
    let app = s.password_grant("alice", PASSWORD).await;
    let bearer_session = s.login("alice", PASSWORD).await;
    assert_eq!(s.userinfo_bearer(&app.access).await.status, StatusCode::OK);
    assert_eq!(
        s.userinfo_bearer(&bearer_session.token).await.status,
        StatusCode::OK
    );
    assert_eq!(s.userinfo_cookie(&alice.token).await.status, StatusCode::OK);
    assert_eq!(
        s.send(Req::get("/v1/userinfo")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let basic = Req::get("/v1/userinfo").header("authorization", "Basic YTpi");
    assert_eq!(s.send(basic).await.status, StatusCode::UNAUTHORIZED);
    let mut broken = bearer_session.token.clone();
    broken.pop();
    broken.push(if bearer_session.token.ends_with('A') {
        'B'
    } else {
        'A'
    });
    assert_eq!(
        s.userinfo_bearer(&broken).await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut forged = app.access.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    assert_eq!(
        s.userinfo_bearer(&forged).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Logging out deletes the session: its token is then unknown.
    let gone = s.login("alice", PASSWORD).await;
    let out = s.send(Req::delete("/v1/session").browser(&gone)).await;
    assert!(out.status.is_success(), "{out:?}");
    assert_eq!(
        s.userinfo_cookie(&gone.token).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Signing out the other devices revokes the app's login: its JWT is refused as revoked.
    let others = s.send(Req::delete("/v1/sessions").browser(&alice)).await;
    assert!(others.status.is_success(), "{others:?}");
    assert_eq!(
        s.userinfo_bearer(&app.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Past its ten minutes, a fresh login's JWT is expired.
    let later = s.password_grant("alice", PASSWORD).await;
    s.advance(11 * 60);
    assert_eq!(
        s.userinfo_bearer(&later.access).await.status,
        StatusCode::UNAUTHORIZED
    );

    let e = scrape(&s).await;
    let reason = |r: &str| e.value("tessera_authentications_total", &[("reason", r)]);
    assert_eq!(reason("ok_jwt"), 1.0);
    assert_eq!(reason("ok_session"), 1.0);
    // userinfo, the logout and the sign-out-others, all by cookie.
    assert_eq!(reason("ok_cookie"), 3.0);
    assert_eq!(reason("missing"), 1.0);
    assert_eq!(reason("malformed"), 2.0);
    assert_eq!(reason("invalid"), 1.0);
    assert_eq!(reason("unknown_session"), 1.0);
    assert_eq!(reason("revoked"), 1.0);
    assert_eq!(reason("expired"), 1.0);
    assert_eq!(reason("unavailable"), 0.0);
}

#[tokio::test]
async fn a_store_failure_is_counted_as_unavailable_not_as_a_bad_credential() {
    let store = FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    let alice = user_with_cookie(&s, "alice").await;
    store.fail("session_by_token");
    let r = s.userinfo_cookie(&alice.token).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    store.heal();
    let e = scrape(&s).await;
    assert_eq!(
        e.value(
            "tessera_authentications_total",
            &[("reason", "unavailable")]
        ),
        1.0
    );
    assert_eq!(
        e.value(
            "tessera_authentications_total",
            &[("reason", "unknown_session")]
        ),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_burst_loses_no_count() {
    const TASKS: usize = 32;
    const EACH: usize = 25;
    let s = Arc::new(TestServer::new().await);
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            for _ in 0..EACH {
                assert_eq!(s.send(Req::get("/healthz")).await.status, StatusCode::OK);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let e = scrape(&s).await;
    let n = (TASKS * EACH) as f64;
    assert_eq!(requests(&e, "GET", "/healthz", "200"), n);
    let labels = [("method", "GET"), ("route", "/healthz")];
    assert_eq!(
        e.value("tessera_http_request_duration_seconds_count", &labels),
        n
    );
}

#[tokio::test]
async fn request_ids_are_echoed_when_safe_and_made_otherwise() {
    let s = TestServer::new().await;
    let id = |r: &Resp| r.header("x-request-id").expect("x-request-id");
    let given = s
        .send(Req::get("/healthz").header("x-request-id", "0f8fad5b-d9cb-469f"))
        .await;
    assert_eq!(id(&given), "0f8fad5b-d9cb-469f");
    let a = id(&s.send(Req::get("/healthz")).await);
    let b = id(&s.send(Req::get("/no-route")).await);
    assert_ne!(a, b);
    let long = "x".repeat(65);
    for unsafe_id in ["two words", "quote\"d", long.as_str(), "tab\there"] {
        let r = s
            .send(Req::get("/healthz").header_bytes(
                axum::http::HeaderName::from_static("x-request-id"),
                unsafe_id.as_bytes(),
            ))
            .await;
        let made = id(&r);
        assert_ne!(made, unsafe_id);
        assert!(
            tessera_server::metrics::acceptable_request_id(&made),
            "{made}"
        );
    }
    // Errors carry it too.
    let err = s
        .send(Req::get("/v1/userinfo").header("x-request-id", "trace-me"))
        .await;
    assert_eq!(err.status, StatusCode::UNAUTHORIZED);
    assert_eq!(id(&err), "trace-me");
}

#[tokio::test]
async fn the_sessions_gauge_counts_the_store_after_each_sweep() {
    let s = TestServer::new().await;
    user_with_cookie(&s, "alice").await;
    s.login("alice", PASSWORD).await;
    s.password_grant("alice", PASSWORD).await;
    let before = s.send(Req::get("/metrics")).await.text();
    assert!(!before.contains("tessera_sessions_active"), "no count yet");
    // The first maintenance tick sweeps, then counts.
    let upkeep = s.state.spawn_maintenance(Duration::from_secs(3600));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let e = loop {
        let e = scrape(&s).await;
        if e.matching("tessera_sessions_active", &[]).next().is_some() {
            break e;
        }
        assert!(tokio::time::Instant::now() < deadline, "never counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    upkeep.abort();
    assert_eq!(e.value("tessera_sessions_active", &[]), 3.0);
    assert_eq!(e.types["tessera_sessions_active"], "gauge");
    assert_eq!(
        e.value("tessera_sessions_counted_timestamp_seconds", &[]),
        T0 as f64
    );
}

#[tokio::test]
async fn feed_lag_grows_while_the_feed_is_down_and_is_absent_without_one() {
    let without = scrape(&TestServer::new().await).await;
    assert!(
        without
            .matching("tessera_revocation_feed_up", &[])
            .next()
            .is_none()
    );
    assert_eq!(without.value("tessera_revocation_list_entries", &[]), 0.0);

    let s = TestServer::with_store(FaultyStore::with_dead_feed(), |_| {}).await;
    let upkeep = s.state.spawn_maintenance(Duration::from_secs(3600));
    // Following starts on the maintenance task; give it a moment to note the time.
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.advance(42);
    let e = scrape(&s).await;
    upkeep.abort();
    assert_eq!(e.value("tessera_revocation_feed_up", &[]), 0.0);
    assert_eq!(e.value("tessera_revocation_feed_lag_seconds", &[]), 42.0);
    assert_eq!(
        e.value("tessera_revocation_feed_last_event_timestamp_seconds", &[]),
        0.0
    );
}
