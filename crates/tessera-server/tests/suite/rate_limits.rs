//! Login throttling per account and per client IP, on every route that checks a password.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

fn login_from(ip: &str, username: &str, password: &str) -> Req {
    Req::post("/v1/sessions")
        .client_ip(ip)
        .json(&json!({"username": username, "password": password}))
}

fn assert_throttled(r: &Resp) -> u64 {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.error_code(), "slow_down");
    let secs: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After seconds");
    assert!((1..=300).contains(&secs), "{secs}");
    assert!(r.header("set-cookie").is_none());
    secs
}

#[tokio::test]
async fn account_is_throttled_after_ten_failures_with_retry_after() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    for i in 0..10 {
        let r = s.login_raw("alice", "wrong password number x").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    s.advance(100);
    assert_eq!(
        assert_throttled(&s.login_raw("alice", "wrong again, still").await),
        200
    );
    // Even the right password is refused while throttled, on every login route.
    assert_throttled(&s.login_raw("alice", PASSWORD).await);
    assert_throttled(&s.password_grant_raw("alice", PASSWORD).await);
    // Another account is not affected.
    s.register("bob", PASSWORD).await;
    s.login("bob", PASSWORD).await;
    // When the window has passed, the right password works again.
    s.advance(200);
    s.login("alice", PASSWORD).await;
    assert!(
        s.send(Req::get("/metrics"))
            .await
            .text()
            .contains("tessera_logins_total{result=\"throttled\"} 3")
    );
}

#[tokio::test]
async fn unknown_accounts_are_throttled_the_same_way() {
    let s = TestServer::new().await;
    for _ in 0..10 {
        let r = s.login_raw("nobody", "wrong password number x").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_throttled(&s.login_raw("nobody", "wrong password number x").await);
}

#[tokio::test]
async fn password_grant_failures_count_against_the_account() {
    let s = TestServer::with_config(|c| c.login_limit_per_account = 3).await;
    s.register("alice", PASSWORD).await;
    for _ in 0..3 {
        let r = s
            .password_grant_raw("alice", "wrong password number x")
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    assert_throttled(&s.password_grant_raw("alice", PASSWORD).await);
    assert_throttled(&s.login_raw("ALICE", PASSWORD).await);
}

#[tokio::test]
async fn a_successful_login_clears_the_accounts_failures() {
    let s = TestServer::with_config(|c| c.login_limit_per_account = 3).await;
    s.register("alice", PASSWORD).await;
    for _ in 0..2 {
        s.login_raw("alice", "wrong password number x").await;
    }
    s.login("alice", PASSWORD).await;
    for _ in 0..2 {
        let r = s.login_raw("alice", "wrong password number x").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    s.login("alice", PASSWORD).await;
}

#[tokio::test]
async fn password_change_guesses_are_throttled_like_logins() {
    let s = TestServer::with_config(|c| c.login_limit_per_account = 3).await;
    let c = user_with_cookie(&s, "alice").await;
    for _ in 0..3 {
        let r = s
            .send(
                Req::post("/v1/password")
                    .json(&json!({
                        "current_password": "wrong password number x",
                        "new_password": NEW_PASSWORD
                    }))
                    .browser(&c),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    let r = s
        .send(
            Req::post("/v1/password")
                .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
                .browser(&c),
        )
        .await;
    assert_throttled(&r);
}

#[tokio::test]
async fn client_ip_is_throttled_across_accounts() {
    let s = TestServer::with_config(|c| c.login_limit_per_ip = 5).await;
    s.register("alice", PASSWORD).await;
    let attacker = "203.0.113.7:40000";
    // Spraying one guess at many accounts from one address.
    for i in 0..5 {
        let r = s
            .send(login_from(
                attacker,
                &format!("user{i}"),
                "wrong password number x",
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_throttled(
        &s.send(login_from(attacker, "user9", "wrong password number x"))
            .await,
    );
    // Another port of the same address is the same client.
    assert_throttled(
        &s.send(login_from("203.0.113.7:40001", "alice", PASSWORD))
            .await,
    );
    assert_throttled(
        &s.send(Req::post("/oauth/token").client_ip(attacker).form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ]))
        .await,
    );
    // Another address is fine, including for the sprayed accounts.
    let r = s
        .send(login_from("198.51.100.1:1", "alice", PASSWORD))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = s.send(login_from("[2001:db8::1]:443", "user0", "x")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The window ends.
    s.advance(300);
    let r = s.send(login_from(attacker, "alice", PASSWORD)).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn successful_logins_do_not_count_against_the_ip_limit() {
    let s = TestServer::with_config(|c| c.login_limit_per_ip = 3).await;
    s.register("alice", PASSWORD).await;
    for _ in 0..5 {
        let r = s.send(login_from("203.0.113.9:1", "alice", PASSWORD)).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
}

/// The device cookie a login sets (`__Host-tessera_device=…`), as a `Cookie` header value.
fn device_cookie_of(r: &Resp) -> String {
    let all: Vec<String> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let device = all
        .iter()
        .find(|c| c.starts_with("__Host-tessera_device="))
        .unwrap_or_else(|| panic!("no device cookie in {all:?}"));
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(device.contains(attr), "{attr} missing from {device}");
    }
    device.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn an_attacker_cannot_lock_the_owner_out_of_a_known_device() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let device = device_cookie_of(&s.login_raw("alice", PASSWORD).await);
    // A stranger burns the account's failure budget.
    for _ in 0..10 {
        s.login_raw("alice", "guessing from afar 123").await;
    }
    assert_throttled(&s.login_raw("alice", PASSWORD).await);
    // The owner's known browser still gets in.
    let r = s
        .send(
            Req::post("/v1/sessions")
                .header("cookie", device.clone())
                .json(&json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

/// The password grant sets a device cookie too (finding 5): an app that keeps it is not
/// locked out by a stranger who exhausts the account's limit without one.
#[tokio::test]
async fn an_app_keeping_its_device_cookie_is_not_locked_out_by_a_strangers_guesses() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let device = device_cookie_of(&s.password_grant_raw("alice", PASSWORD).await);
    // A stranger, without the cookie, spends the account's whole budget.
    for _ in 0..s.state.config().login_limit_per_account {
        let r = s
            .password_grant_raw("alice", "guessing from afar 123")
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    }
    assert_throttled(&s.password_grant_raw("alice", PASSWORD).await);
    // The app presents its device cookie and gets in.
    let r = s
        .send(Req::post("/oauth/token").header("cookie", &device).form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["access_token"].is_string());
}

#[tokio::test]
async fn a_known_device_is_throttled_on_its_own_and_only_for_its_account() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    s.register("bob", PASSWORD).await;
    let device = device_cookie_of(&s.login_raw("alice", PASSWORD).await);
    let with_device = |user: &str, pw: &str| {
        Req::post("/v1/sessions")
            .header("cookie", device.clone())
            .json(&json!({"username": user, "password": pw}))
    };
    // The device cookie is no free pass: guesses from it are limited too…
    for _ in 0..10 {
        s.send(with_device("alice", "wrong from the device!")).await;
    }
    assert_throttled(&s.send(with_device("alice", PASSWORD)).await);
    // …and alice's device cookie earns nothing on bob's account.
    for _ in 0..10 {
        s.send(with_device("bob", "wrong guess on bob's acct"))
            .await;
    }
    assert_throttled(&s.send(with_device("bob", PASSWORD)).await);
}
