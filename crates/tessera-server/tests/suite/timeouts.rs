//! Expiry driven by the manual clock: access-token lifetime with leeway, session idle and
//! absolute timeouts, refresh-family lifetime.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use axum::http::StatusCode;
use common::*;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

#[tokio::test]
async fn access_token_expires_after_its_lifetime_plus_leeway() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t = s.password_grant("alice", PASSWORD).await;
    s.advance(599);
    assert_eq!(s.userinfo_bearer(&t.access).await.status, StatusCode::OK);
    // Past `exp` but inside the 30 s leeway.
    s.advance(20);
    assert_eq!(s.userinfo_bearer(&t.access).await.status, StatusCode::OK);
    s.advance(12);
    let r = s.userinfo_bearer(&t.access).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "invalid_token");
    // The refresh token outlives it and mints a working one.
    let fresh = s.refresh(&t.refresh).await;
    assert_eq!(
        s.userinfo_bearer(&fresh.access).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn access_token_lifetime_follows_the_config() {
    let s = TestServer::with_config(|c| {
        c.access_ttl_secs = 60;
        c.leeway_secs = 0;
    })
    .await;
    s.register("alice", PASSWORD).await;
    let r = s.password_grant_raw("alice", PASSWORD).await;
    assert_eq!(r.json()["expires_in"], 60);
    let t = app_tokens(&r);
    s.advance(59);
    assert_eq!(s.userinfo_bearer(&t.access).await.status, StatusCode::OK);
    s.advance(1);
    assert_eq!(
        s.userinfo_bearer(&t.access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn session_ends_after_twelve_idle_hours() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    s.advance(12 * HOUR);
    assert_eq!(s.session_status(&c.token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.userinfo_cookie(&c.token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.userinfo_bearer(&c.token).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn use_keeps_a_session_alive_past_the_idle_timeout() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    s.advance(11 * HOUR);
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
    s.advance(11 * HOUR);
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
    let last_seen = s
        .send(Req::get("/v1/session").cookie(&c.token))
        .await
        .json()["last_seen"]
        .as_i64()
        .unwrap();
    assert_eq!(last_seen, T0 + 22 * HOUR);
}

#[tokio::test]
async fn last_seen_is_written_at_most_once_a_minute() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    s.advance(30);
    let seen = s
        .send(Req::get("/v1/session").cookie(&c.token))
        .await
        .json()["last_seen"]
        .clone();
    assert_eq!(seen, T0);
    s.advance(30);
    let seen = s
        .send(Req::get("/v1/session").cookie(&c.token))
        .await
        .json()["last_seen"]
        .clone();
    assert_eq!(seen, T0 + 60);
}

#[tokio::test]
async fn idle_sessions_drop_out_of_the_session_list() {
    let s = TestServer::new().await;
    let idle = user_with_cookie(&s, "alice").await;
    s.advance(11 * HOUR);
    let active = s.login("alice", PASSWORD).await;
    s.advance(2 * HOUR);
    let list = s
        .send(Req::get("/v1/sessions").cookie(&active.token))
        .await
        .json();
    let ids: Vec<_> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec![active.id.clone()]);
    assert_eq!(
        s.session_status(&idle.token).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn session_ends_after_seven_days_however_active() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    let mut elapsed = 0;
    while elapsed + 11 * HOUR < 7 * DAY {
        s.advance(11 * HOUR);
        elapsed += 11 * HOUR;
        assert_eq!(
            s.session_status(&c.token).await,
            StatusCode::OK,
            "at {elapsed}s"
        );
    }
    s.advance(7 * DAY - elapsed - 1);
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
    s.advance(1);
    assert_eq!(s.session_status(&c.token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_cookie_max_age_matches_the_absolute_lifetime() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let r = s.login_raw("alice", PASSWORD).await;
    let sc = r.header("set-cookie").unwrap();
    assert!(sc.contains(&format!("Max-Age={}", 7 * DAY)), "{sc}");
}

#[tokio::test]
async fn app_sessions_last_thirty_days_then_refresh_fails() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let mut t = s.password_grant("alice", PASSWORD).await;
    // A day-old access token is long dead, but the refresh token still works.
    s.advance(DAY);
    assert_eq!(
        s.userinfo_bearer(&t.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    t = s.refresh(&t.refresh).await;
    s.advance(29 * DAY - 1);
    t = s.refresh(&t.refresh).await;
    s.advance(1);
    let r = s.refresh_raw(&t.refresh).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_grant");
}

#[tokio::test]
async fn revocation_outlives_the_tokens_it_revokes() {
    // A revoked token must stay refused right up to (and past) its own expiry.
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t = s.password_grant("alice", PASSWORD).await;
    s.advance(300);
    assert_eq!(s.revoke(&t.access).await.status, StatusCode::OK);
    for step in [0, 200, 100, 29, 1, 1000] {
        s.advance(step);
        assert_eq!(
            s.userinfo_bearer(&t.access).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}
