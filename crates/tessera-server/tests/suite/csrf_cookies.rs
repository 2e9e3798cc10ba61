//! The cookie's CSRF defence (`X-CSRF-Token`, `Origin`, `Sec-Fetch-Site`), logout, and
//! session fixation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::json;

/// `DELETE /v1/session` with the cookie and whatever `extra` adds.
async fn logout_with(s: &TestServer, c: &CookieSession, extra: impl FnOnce(Req) -> Req) -> Resp {
    s.send(extra(Req::delete("/v1/session").cookie(&c.token)))
        .await
}

#[tokio::test]
async fn logout_without_csrf_header_is_403_and_keeps_the_session() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    let r = logout_with(&s, &c, |r| r).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "csrf_rejected");
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
}

#[tokio::test]
async fn logout_with_a_wrong_csrf_token_is_403() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    let other = s.login("alice", PASSWORD).await;
    let mut tampered = c.csrf.clone();
    tampered.pop();
    tampered.push(if c.csrf.ends_with('A') { 'B' } else { 'A' });
    for wrong in [
        "".to_owned(),
        "nope".to_owned(),
        tampered,
        other.csrf.clone(),
        c.token.clone(),
    ] {
        let r = logout_with(&s, &c, |r| r.csrf(&wrong)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{wrong:?}");
        assert_error_shape(&r);
    }
    // Two CSRF headers are refused rather than guessed at.
    let r = logout_with(&s, &c, |r| r.csrf(&c.csrf).csrf(&c.csrf)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
}

#[tokio::test]
async fn logout_from_a_cross_site_origin_is_403_even_with_the_csrf_token() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    for origin in [
        "https://evil.example",
        "http://tessera.test.evil.example",
        "null",
        "tessera.test",
    ] {
        let r = logout_with(&s, &c, |r| {
            r.csrf(&c.csrf)
                .header("origin", origin)
                .header("host", HOST)
        })
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(r.error_code(), "csrf_rejected");
    }
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
}

#[tokio::test]
async fn logout_marked_sec_fetch_site_cross_site_is_403() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    for site in ["cross-site", "Cross-Site"] {
        let r = logout_with(&s, &c, |r| r.csrf(&c.csrf).header("sec-fetch-site", site)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{site}");
    }
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
}

#[tokio::test]
async fn logout_with_csrf_token_is_204_and_the_cookie_is_then_401() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    let r = s.send(Req::delete("/v1/session").browser(&c)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let cleared = r.header("set-cookie").unwrap();
    assert!(cleared.starts_with(&format!("{COOKIE}=;")), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(s.session_status(&c.token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.userinfo_cookie(&c.token).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Logging out twice is a 401, not a crash.
    let again = s.send(Req::delete("/v1/session").browser(&c)).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_needs_only_the_csrf_token_when_no_origin_is_sent() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    let r = logout_with(&s, &c, |r| r.csrf(&c.csrf)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn logout_from_the_requests_own_host_or_a_trusted_origin_is_allowed() {
    let s = TestServer::with_config(|c| {
        c.trusted_origins = vec!["https://app.example".into()];
    })
    .await;
    s.register("alice", PASSWORD).await;
    let own = s.login("alice", PASSWORD).await;
    let r = logout_with(&s, &own, |r| {
        r.csrf(&own.csrf)
            .header("origin", "https://auth.example:8443")
            .header("host", "auth.example:8443")
            .header("sec-fetch-site", "same-origin")
    })
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());

    let trusted = s.login("alice", PASSWORD).await;
    let r = logout_with(&s, &trusted, |r| {
        r.csrf(&trusted.csrf)
            .header("origin", "https://app.example")
            .header("host", HOST)
            .header("sec-fetch-site", "same-site")
    })
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
}

#[tokio::test]
async fn bearer_session_token_writes_need_no_csrf_token() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    let r = s.send(Req::delete("/v1/session").bearer(&c.token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(s.session_status(&c.token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_cookie_authenticated_write_requires_the_csrf_token() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    let other = s.login("alice", PASSWORD).await;
    let writes = [
        Req::delete("/v1/session").cookie(&c.token),
        Req::delete("/v1/sessions").cookie(&c.token),
        Req::delete(&format!("/v1/sessions/{}", other.id)).cookie(&c.token),
        Req::post("/v1/password").cookie(&c.token).json(&json!({
            "current_password": PASSWORD, "new_password": NEW_PASSWORD
        })),
    ];
    for w in writes {
        let r = s.send(w).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert_eq!(r.error_code(), "csrf_rejected");
    }
    // Nothing changed.
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
    assert_eq!(s.session_status(&other.token).await, StatusCode::OK);
    s.login("alice", PASSWORD).await;
}

#[tokio::test]
async fn login_from_a_cross_site_page_is_refused() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    for extra in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = s
            .send(
                Req::post("/v1/sessions")
                    .header(extra.0, extra.1)
                    .header("host", HOST)
                    .json(&json!({"username": "alice", "password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{extra:?}");
        assert!(r.header("set-cookie").is_none());
    }
}

#[tokio::test]
async fn login_never_adopts_a_preset_cookie() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    // The attacker plants their own valid session cookie in the victim's browser...
    let mallory = user_with_cookie(&s, "mallory").await;
    let r = s
        .send(
            Req::post("/v1/sessions")
                .cookie(&mallory.token)
                .json(&json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let victim = cookie_session(&r);
    // ...the victim's login gets a fresh token, and the planted one stays the attacker's.
    assert_ne!(victim.token, mallory.token);
    assert_ne!(victim.id, mallory.id);
    assert_ne!(victim.csrf, mallory.csrf);
    let planted = s.send(Req::get("/v1/session").cookie(&mallory.token)).await;
    assert_eq!(planted.json()["username"], "mallory");
    let fresh = s.send(Req::get("/v1/session").cookie(&victim.token)).await;
    assert_eq!(fresh.json()["username"], "alice");

    // A made-up cookie value is not adopted either.
    let made_up = "tss_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_AAAAAA";
    let r = s
        .send(
            Req::post("/v1/sessions")
                .cookie(made_up)
                .json(&json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_ne!(r.set_cookie_value().unwrap(), made_up);
    assert_eq!(s.session_status(made_up).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_repeated_session_cookie_is_refused() {
    let s = TestServer::new().await;
    let a = user_with_cookie(&s, "alice").await;
    let r = s
        .send(Req::get("/v1/session").header(
            "cookie",
            format!("{COOKIE}={}; {COOKIE}={}", a.token, a.token),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Among other cookies, it is found.
    let r = s
        .send(Req::get("/v1/session").header(
            "cookie",
            format!("theme=dark; {COOKIE}={}; lang=en", a.token),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_cookie_without_the_host_prefix_is_ignored() {
    let s = TestServer::new().await;
    let a = user_with_cookie(&s, "alice").await;
    let r = s
        .send(Req::get("/v1/session").header("cookie", format!("tessera_session={}", a.token)))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// HTTP/2 names the host in `:authority`, with no `Host` header: the same-origin check must
/// still see it (and still refuse a foreign origin).
#[tokio::test]
async fn same_origin_writes_work_over_http2_without_a_host_header() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let c = s.login("alice", PASSWORD).await;
    let over_h2 = |origin: &str| {
        Req::delete("https://auth.example:8443/v1/session")
            .cookie(&c.token)
            .csrf(&c.csrf)
            .header("origin", origin)
    };
    let r = s.send(over_h2("https://evil.example")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = s.send(over_h2("https://auth.example:8443")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
}

/// Walks every route the router serves (its own table, not a hand-kept list): on every unsafe
/// method, the session cookie without `X-CSRF-Token` — or with it but from a foreign origin —
/// is either refused with `csrf_rejected`, or makes no difference at all (the same answer as
/// the same request with no cookie, on a server in the same state: the route does not
/// authenticate by cookie). Either way the victim's sessions live on.
#[tokio::test]
async fn every_unsafe_route_refuses_a_cookie_without_csrf_proof() {
    /// A fresh server with a victim logged in twice; sends `attack` at `path` built by `make`.
    async fn attempt(method: &Method, path: &str, make: fn(Req, &CookieSession) -> Req) -> Resp {
        let s = TestServer::new().await;
        let c = user_with_cookie(&s, "alice").await;
        let other = s.login("alice", PASSWORD).await;
        // Every field any route reads, none of them a secret the attacker lacks.
        let body = json!({
            "username": "mallory", "password": PASSWORD, "grant_type": "password",
            "current_password": PASSWORD, "new_password": NEW_PASSWORD, "token": "x",
        });
        let uri = path.replace("{id}", &other.id);
        let req = make(Req::new(method.clone(), &uri), &c)
            .json(&body)
            .header("host", HOST);
        let r = s.send(req).await;
        assert_eq!(
            s.session_status(&c.token).await,
            StatusCode::OK,
            "{method} {path}"
        );
        assert_eq!(
            s.session_status(&other.token).await,
            StatusCode::OK,
            "{method} {path}"
        );
        r
    }
    let attacks: [fn(Req, &CookieSession) -> Req; 3] = [
        |r, c| r.cookie(&c.token),
        |r, c| {
            r.cookie(&c.token)
                .csrf(&c.csrf)
                .header("origin", "https://evil.example")
        },
        |r, c| {
            r.cookie(&c.token)
                .csrf(&c.csrf)
                .header("sec-fetch-site", "cross-site")
        },
    ];
    let mut guarded = Vec::new();
    for (verb, path) in tessera_server::route_table() {
        let method = verb.method();
        if method.is_safe() {
            continue;
        }
        let baseline = attempt(&method, path, |r, _| r).await.status;
        for attack in attacks {
            let r = attempt(&method, path, attack).await;
            if r.status == StatusCode::FORBIDDEN && r.error_code() == "csrf_rejected" {
                guarded.push(format!("{method} {path}"));
            } else {
                assert_eq!(
                    r.status,
                    baseline,
                    "{method} {path}: the cookie changed the answer without CSRF proof: {}",
                    r.text()
                );
            }
        }
    }
    guarded.dedup();
    for write in [
        "DELETE /v1/session",
        "DELETE /v1/sessions",
        "DELETE /v1/sessions/{id}",
        "POST /v1/password",
    ] {
        assert!(
            guarded.iter().any(|g| g == write),
            "{write} not guarded: {guarded:?}"
        );
    }
}
