//! The client IP behind a proxy (`ServerConfig::trusted_proxies`): forwarding headers are read
//! only from a trusted peer, right to left, and the address they give is what login throttling
//! keys on and what the session list shows.

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
use tessera_server::IpNet;

/// The proxy's address, as the server's socket sees it.
const PROXY: &str = "127.0.0.1:41000";

/// A server that trusts the proxy at 127.0.0.1.
async fn behind_proxy() -> TestServer {
    TestServer::with_config(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await
}

fn login(username: &str, password: &str) -> Req {
    Req::post("/v1/sessions").json(&json!({"username": username, "password": password}))
}

/// A login the proxy forwards with `X-Forwarded-For: xff`.
fn login_via_proxy(xff: &str, username: &str, password: &str) -> Req {
    login(username, password)
        .client_ip(PROXY)
        .header("x-forwarded-for", xff)
}

fn assert_status(r: &Resp, status: StatusCode, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
}

/// The `ip` the session list shows for the session `token` belongs to.
async fn listed_ip(s: &TestServer, token: &str) -> serde_json::Value {
    let r = s.send(Req::get("/v1/sessions").cookie(token)).await;
    assert_status(&r, StatusCode::OK, "session list");
    let list = r.json()["sessions"].as_array().unwrap().clone();
    let current = list.iter().find(|e| e["current"] == true).unwrap();
    current["ip"].clone()
}

#[tokio::test]
async fn forwarding_headers_are_ignored_without_trusted_proxies() {
    let s = TestServer::new().await;
    assert!(s.state.config().trusted_proxies.is_empty(), "the default");
    let limit = s.state.config().login_limit_per_ip;
    let attacker = "203.0.113.7:40000";
    // One guess at each of many accounts (so no account limit applies), each claiming to be
    // forwarded for a new address.
    for i in 0..limit {
        let r = s
            .send(
                login(&format!("user{i}"), "wrong password number x")
                    .client_ip(attacker)
                    .header("x-forwarded-for", format!("198.51.100.{i}"))
                    .header("forwarded", format!("for=192.0.2.{i}")),
            )
            .await;
        assert_status(&r, StatusCode::UNAUTHORIZED, &format!("attempt {i}"));
    }
    for (name, value) in [
        ("x-forwarded-for", "198.51.100.250"),
        ("forwarded", "for=192.0.2.250"),
        ("x-forwarded-for", "6.6.6.6, 127.0.0.1"),
    ] {
        let r = s
            .send(
                login("another", "wrong password number x")
                    .client_ip(attacker)
                    .header(name, value),
            )
            .await;
        assert_status(&r, StatusCode::TOO_MANY_REQUESTS, value);
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_throttled_separately() {
    let s = behind_proxy().await;
    s.register("alice", PASSWORD).await;
    let limit = s.state.config().login_limit_per_ip;
    let (a, b) = ("203.0.113.5", "198.51.100.9");
    for i in 0..limit {
        let r = s
            .send(login_via_proxy(
                a,
                &format!("user{i}"),
                "wrong password number x",
            ))
            .await;
        assert_status(&r, StatusCode::UNAUTHORIZED, &format!("attempt {i}"));
    }
    let r = s
        .send(login_via_proxy(a, "alice", "wrong password number x"))
        .await;
    assert_status(&r, StatusCode::TOO_MANY_REQUESTS, "client A");
    let r = s.send(login_via_proxy(a, "alice", PASSWORD)).await;
    assert_status(
        &r,
        StatusCode::TOO_MANY_REQUESTS,
        "client A, right password",
    );
    // Client B arrives through the same proxy socket address, and is not locked out.
    let r = s
        .send(login_via_proxy(b, "user0", "wrong password number x"))
        .await;
    assert_status(&r, StatusCode::UNAUTHORIZED, "client B, wrong password");
    let r = s.send(login_via_proxy(b, "alice", PASSWORD)).await;
    assert_status(&r, StatusCode::CREATED, "client B");
    // So is a client named by `Forwarded`.
    let r = s
        .send(
            login("alice", PASSWORD)
                .client_ip(PROXY)
                .header("forwarded", "for=192.0.2.44"),
        )
        .await;
    assert_status(&r, StatusCode::CREATED, "client C");
}

#[tokio::test]
async fn a_client_cannot_spoof_past_the_trusted_proxy() {
    let s = TestServer::with_config(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.login_limit_per_ip = 3;
    })
    .await;
    s.register("alice", PASSWORD).await;
    // The client sends `X-Forwarded-For: 6.6.6.N` (or a trusted-looking address); the proxy
    // appends the address it saw, 203.0.113.5. Only that one counts.
    for (i, injected) in ["6.6.6.1", "6.6.6.2", "127.0.0.1"].iter().enumerate() {
        let r = s
            .send(login_via_proxy(
                &format!("{injected}, 203.0.113.5"),
                &format!("user{i}"),
                "wrong password number x",
            ))
            .await;
        assert_status(&r, StatusCode::UNAUTHORIZED, injected);
    }
    for xff in [
        "6.6.6.9, 203.0.113.5",
        "203.0.113.5",
        "garbage, 203.0.113.5",
    ] {
        let r = s.send(login_via_proxy(xff, "alice", PASSWORD)).await;
        assert_status(&r, StatusCode::TOO_MANY_REQUESTS, xff);
    }
    // The address the client named is not the one throttled.
    let r = s.send(login_via_proxy("6.6.6.1", "alice", PASSWORD)).await;
    assert_status(&r, StatusCode::CREATED, "the injected address");
    assert_eq!(
        r.json()["ip"],
        "6.6.6.1",
        "and it is what a session from there records"
    );
    let spoofed = s
        .send(login_via_proxy("6.6.6.1, 198.51.100.3", "alice", PASSWORD))
        .await;
    assert_status(&spoofed, StatusCode::CREATED, "another client");
    assert_eq!(spoofed.json()["ip"], "198.51.100.3");
}

#[tokio::test]
async fn forwarded_quoted_ipv6_and_ports_parse_and_malformed_values_never_5xx() {
    let s = TestServer::with_config(|c| {
        c.trusted_proxies = vec![
            "127.0.0.1".parse().unwrap(),
            "2001:db8:ffff::/48".parse::<IpNet>().unwrap(),
        ];
    })
    .await;
    s.register("alice", PASSWORD).await;
    for (forwarded, ip) in [
        (
            "for=\"[2001:db8:cafe::17]:4711\";proto=https;by=\"[2001:db8:ffff::1]\"",
            "2001:db8:cafe::17",
        ),
        (
            "for=\"[2001:db8:cafe::17]:4711\", For=\"[2001:db8:ffff::2]:443\"",
            "2001:db8:cafe::17",
        ),
        ("for=\"192.0.2.43:47011\"", "192.0.2.43"),
        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        (
            "for=\"_gazonk\", for=\"[2001:db8:ffff::9]\"",
            "2001:db8:ffff::9",
        ),
    ] {
        let r = s
            .send(
                login("alice", PASSWORD)
                    .client_ip(PROXY)
                    .header("forwarded", forwarded),
            )
            .await;
        assert_status(&r, StatusCode::CREATED, forwarded);
        assert_eq!(r.json()["ip"], ip, "{forwarded}");
    }
    // Unreadable chains end at the last trusted hop (here the proxy itself), on every route
    // that reads the client, and never cause a 5xx.
    for (name, value) in [
        ("forwarded", "for="),
        ("forwarded", "for=\"[2001:db8:cafe::17]:4711"),
        ("forwarded", "for=\"[2001:db8:cafe::17\""),
        ("forwarded", "for=\"[::1]:999999\""),
        ("forwarded", "for=unknown"),
        ("forwarded", "for=1.2.3.4;for=5.6.7.8"),
        ("forwarded", "proto=https"),
        ("forwarded", "for=\"\\\"\""),
        ("forwarded", ";;,,=;"),
        ("forwarded", "for=fe80::1%25eth0"),
        ("x-forwarded-for", "not an address"),
        ("x-forwarded-for", "1.2.3.4:port"),
        ("x-forwarded-for", "[::1"),
        ("x-forwarded-for", "999.1.1.1"),
        ("x-forwarded-for", ""),
        ("x-forwarded-for", ",,,,"),
    ] {
        let what = format!("{name}: {value}");
        let r = s
            .send(
                login("alice", PASSWORD)
                    .client_ip(PROXY)
                    .header(name, value),
            )
            .await;
        assert_clean(&r);
        assert_status(&r, StatusCode::CREATED, &what);
        assert_eq!(r.json()["ip"], "127.0.0.1", "{what}");
        let r = s
            .send(
                Req::post("/v1/users")
                    .client_ip(PROXY)
                    .header(name, value)
                    .json(&json!({"username": "alice", "password": PASSWORD})),
            )
            .await;
        assert_clean(&r);
        let r = s
            .send(
                Req::post("/oauth/token")
                    .client_ip(PROXY)
                    .header(name, value)
                    .form(&[
                        ("grant_type", "password"),
                        ("username", "alice"),
                        ("password", "wrong password number x"),
                    ]),
            )
            .await;
        assert_clean(&r);
    }
    // Bytes that are not ASCII neither.
    let r = s
        .send(
            login("alice", PASSWORD)
                .client_ip(PROXY)
                .header_bytes("x-forwarded-for".parse().unwrap(), b"203.0.113.5\xff"),
        )
        .await;
    assert_status(&r, StatusCode::CREATED, "non-ASCII");
    assert_eq!(r.json()["ip"], "127.0.0.1");
}

#[tokio::test]
async fn the_session_list_shows_the_forwarded_ip_only_behind_a_trusted_proxy() {
    for (trusted, socket, shown) in [
        (false, "192.0.2.1:5000", "192.0.2.1"),
        (false, PROXY, "127.0.0.1"),
        (true, "192.0.2.1:5000", "192.0.2.1"),
        (true, PROXY, "203.0.113.5"),
    ] {
        let s = if trusted {
            behind_proxy().await
        } else {
            TestServer::new().await
        };
        s.register("alice", PASSWORD).await;
        let what = format!("trusted proxy: {trusted}, socket {socket}");
        let r = s
            .send(
                login("alice", PASSWORD)
                    .client_ip(socket)
                    .header("x-forwarded-for", "203.0.113.5"),
            )
            .await;
        assert_status(&r, StatusCode::CREATED, &what);
        let cookie = cookie_session(&r);
        assert_eq!(listed_ip(&s, &cookie.token).await, shown, "{what}");
        // The password grant's session records the same address.
        let r = s
            .send(
                Req::post("/oauth/token")
                    .client_ip(socket)
                    .header("x-forwarded-for", "203.0.113.5")
                    .form(&[
                        ("grant_type", "password"),
                        ("username", "alice"),
                        ("password", PASSWORD),
                    ]),
            )
            .await;
        assert_status(&r, StatusCode::OK, &what);
        let app = app_tokens(&r);
        let r = s.send(Req::get("/v1/sessions").bearer(&app.access)).await;
        let sid = jwt_part(&app.access, 1)["sid"].as_str().unwrap().to_owned();
        let list = r.json()["sessions"].as_array().unwrap().clone();
        let grant = list.iter().find(|e| e["id"] == sid.as_str()).unwrap();
        assert_eq!(grant["ip"], shown, "password grant, {what}");
    }
}
