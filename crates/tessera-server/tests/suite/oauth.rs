//! `/oauth/token` (password and refresh grants), `/oauth/revoke`, and `/v1/userinfo` with each
//! kind of credential.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::json;

fn assert_token_response(r: &Resp) -> AppTokens {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    let tokens = app_tokens(r);
    assert!(tokens.refresh.starts_with("trt_"), "{}", tokens.refresh);
    assert_eq!(tokens.access.split('.').count(), 3);
    tokens
}

#[tokio::test]
async fn password_grant_form_returns_bearer_access_and_refresh_tokens() {
    let s = TestServer::new().await;
    let uid = s.register("alice", PASSWORD).await;
    let r = s.password_grant_raw("alice", PASSWORD).await;
    let t = assert_token_response(&r);
    let header = jwt_part(&t.access, 0);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    let claims = jwt_part(&t.access, 1);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], ISSUER);
    assert_eq!(claims["sub"], uid.as_str());
    assert_eq!(claims["iat"], T0);
    assert_eq!(claims["exp"], T0 + 600);
    assert!(claims["sid"].is_string() && claims["jti"].is_string());
}

#[tokio::test]
async fn password_grant_json_returns_bearer_access_and_refresh_tokens() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let r = s
        .send(Req::post("/oauth/token").json(&json!({
            "grant_type": "password", "username": "alice", "password": PASSWORD
        })))
        .await;
    let t = assert_token_response(&r);
    assert_eq!(s.userinfo_bearer(&t.access).await.status, StatusCode::OK);
}

#[tokio::test]
async fn password_grant_carries_a_wellformed_scope() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let r = s
        .send(Req::post("/oauth/token").form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("scope", "read write:all"),
        ]))
        .await;
    let t = assert_token_response(&r);
    assert_eq!(r.json()["scope"], "read write:all");
    let info = s.userinfo_bearer(&t.access).await.json();
    assert_eq!(info["scope"], "read write:all");
    // The refreshed token keeps it.
    let r = s.refresh_raw(&t.refresh).await;
    assert_eq!(r.json()["scope"], "read write:all");

    for bad in ["a  b", " a", "quote\"d", "back\\slash", "tab\there"] {
        let r = s
            .send(Req::post("/oauth/token").form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", bad),
            ]))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(r.error_code(), "invalid_request");
    }
}

#[tokio::test]
async fn password_grant_missing_parameters_is_invalid_request() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    for form in [
        vec![("grant_type", "password"), ("username", "alice")],
        vec![("grant_type", "password"), ("password", PASSWORD)],
        vec![
            ("grant_type", "password"),
            ("username", ""),
            ("password", PASSWORD),
        ],
        vec![("username", "alice"), ("password", PASSWORD)],
    ] {
        let r = s.send(Req::post("/oauth/token").form(&form)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(r.error_code(), "invalid_request", "{form:?}");
    }
}

#[tokio::test]
async fn unknown_grant_type_is_unsupported_grant_type() {
    let s = TestServer::new().await;
    for g in [
        "authorization-code",
        "implicit",
        "PASSWORD",
        "",
        "password ",
    ] {
        let r = s
            .send(Req::post("/oauth/token").form(&[
                ("grant_type", g),
                ("username", "alice"),
                ("password", PASSWORD),
            ]))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{g:?}");
        assert_eq!(r.error_code(), "unsupported_grant_type", "{g:?}");
    }
}

#[tokio::test]
async fn userinfo_with_an_access_jwt_reports_jwt() {
    let s = TestServer::new().await;
    let uid = s.register("alice", PASSWORD).await;
    let t = s.password_grant("alice", PASSWORD).await;
    let r = s.userinfo_bearer(&t.access).await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(body["auth"], "jwt");
    assert_eq!(body["sub"], uid.as_str());
    assert_eq!(body["username"], "alice");
    assert_eq!(body["sid"], jwt_part(&t.access, 1)["sid"]);
    // The scheme name is case-insensitive.
    let r = s
        .send(Req::get("/v1/userinfo").header("authorization", format!("bearer {}", t.access)))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn userinfo_with_the_cookie_reports_session() {
    let s = TestServer::new().await;
    let uid = s.register("alice", PASSWORD).await;
    let c = s.login("alice", PASSWORD).await;
    let r = s.userinfo_cookie(&c.token).await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(body["auth"], "session");
    assert_eq!(body["sub"], uid.as_str());
    assert_eq!(body["username"], "alice");
    assert_eq!(body["sid"], c.id.as_str());
}

#[tokio::test]
async fn userinfo_with_a_bearer_session_token_reports_session() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    let r = s.userinfo_bearer(&c.token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["auth"], "session");
    assert_eq!(r.json()["username"], "alice");
}

#[tokio::test]
async fn userinfo_prefers_the_bearer_header_over_the_cookie() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    let t = s.password_grant("alice", PASSWORD).await;
    let r = s
        .send(Req::get("/v1/userinfo").cookie(&c.token).bearer(&t.access))
        .await;
    assert_eq!(r.json()["auth"], "jwt");
    // A bad bearer is not rescued by a good cookie.
    let r = s
        .send(Req::get("/v1/userinfo").cookie(&c.token).bearer("garbage"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn userinfo_without_credentials_is_401_with_www_authenticate_bearer() {
    let s = TestServer::new().await;
    let r = s.send(Req::get("/v1/userinfo")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(!challenge.contains("error="), "{challenge}");
    assert_error_shape(&r);
}

#[tokio::test]
async fn userinfo_with_a_garbage_credential_is_401_invalid_token() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t = s.password_grant("alice", PASSWORD).await;
    let parts: Vec<&str> = t.access.split('.').collect();
    // Same claims, signature flipped.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig));
    // alg "none" with the real claims.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let alg_none = format!("{none_header}.{}.", parts[1]);
    // Claims changed, original signature.
    let mut claims = jwt_part(&t.access, 1);
    claims["sub"] = json!("someone-else");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    for bad in [
        "garbage",
        "a.b.c",
        "tss_garbage",
        "trt_garbage",
        &t.refresh,
        &bad_sig,
        &alg_none,
        &forged,
    ] {
        let r = s.userinfo_bearer(bad).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(r.error_code(), "invalid_token", "{bad}");
        let challenge = r.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
            "{challenge}"
        );
    }
    for header in [
        "Basic YWxpY2U6cHc=",
        "Bearer",
        "Bearer  two spaces",
        "Token abc",
    ] {
        let r = s
            .send(Req::get("/v1/userinfo").header("authorization", header))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{header}");
        assert_eq!(r.error_code(), "invalid_token", "{header}");
    }
}

#[tokio::test]
async fn refresh_rotates_to_a_new_refresh_token_and_access_token() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t0 = s.password_grant("alice", PASSWORD).await;
    s.advance(1);
    let r = s.refresh_raw(&t0.refresh).await;
    let t1 = assert_token_response(&r);
    assert_ne!(t1.refresh, t0.refresh);
    assert_ne!(t1.access, t0.access);
    assert_eq!(
        jwt_part(&t1.access, 1)["sid"],
        jwt_part(&t0.access, 1)["sid"]
    );
    assert_eq!(s.userinfo_bearer(&t1.access).await.json()["auth"], "jwt");
    // JSON works too.
    let r = s
        .send(Req::post("/oauth/token").json(&json!({
            "grant_type": "refresh_token", "refresh_token": t1.refresh
        })))
        .await;
    let t2 = assert_token_response(&r);
    assert_ne!(t2.refresh, t1.refresh);
}

#[tokio::test]
async fn refresh_retry_within_grace_returns_the_same_successor() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t0 = s.password_grant("alice", PASSWORD).await;
    let t1 = s.refresh(&t0.refresh).await;
    s.advance(5);
    let retry = s.refresh(&t0.refresh).await;
    assert_eq!(retry.refresh, t1.refresh);
    // The retry's access token works, and so do the earlier ones.
    for access in [&t0.access, &t1.access, &retry.access] {
        assert_eq!(s.userinfo_bearer(access).await.status, StatusCode::OK);
    }
    // The successor is still the current token and rotates normally.
    let t2 = s.refresh(&t1.refresh).await;
    assert_ne!(t2.refresh, t1.refresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_one_token_both_get_the_same_successor() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    for _ in 0..10 {
        let t = s.password_grant("alice", PASSWORD).await;
        let (a, b) = tokio::join!(s.refresh_raw(&t.refresh), s.refresh_raw(&t.refresh));
        let (a, b) = (app_tokens(&a), app_tokens(&b));
        assert_eq!(a.refresh, b.refresh);
        assert_eq!(s.userinfo_bearer(&a.access).await.status, StatusCode::OK);
        assert_eq!(s.userinfo_bearer(&b.access).await.status, StatusCode::OK);
        s.refresh(&a.refresh).await;
    }
}

#[tokio::test]
async fn refresh_reuse_after_grace_revokes_the_whole_family() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t0 = s.password_grant("alice", PASSWORD).await;
    let t1 = s.refresh(&t0.refresh).await;
    s.advance(11);
    let t2 = s.refresh(&t1.refresh).await;

    // An attacker replays the first token, long after it was rotated.
    let r = s.refresh_raw(&t0.refresh).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_grant");

    // Every access token of the family is dead, and so is the current refresh token.
    for access in [&t0.access, &t1.access, &t2.access] {
        let r = s.userinfo_bearer(access).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.error_code(), "invalid_token");
    }
    let r = s.refresh_raw(&t2.refresh).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_grant");
    assert!(
        s.send(Req::get("/metrics"))
            .await
            .text()
            .contains("tessera_refresh_reuse_detected_total 1")
    );
}

#[tokio::test]
async fn refresh_reuse_of_an_old_token_within_the_grace_window_is_still_reuse() {
    // Grace covers only the previous token: two generations back is reuse however soon.
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t0 = s.password_grant("alice", PASSWORD).await;
    let t1 = s.refresh(&t0.refresh).await;
    let t2 = s.refresh(&t1.refresh).await;
    assert_eq!(
        s.refresh_raw(&t0.refresh).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.userinfo_bearer(&t2.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.refresh_raw(&t2.refresh).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn refresh_grace_zero_detects_reuse_immediately() {
    let s = TestServer::with_config(|c| c.refresh_grace_secs = 0).await;
    s.register("alice", PASSWORD).await;
    let t0 = s.password_grant("alice", PASSWORD).await;
    let t1 = s.refresh(&t0.refresh).await;
    // The very same second: no grace, so this is reuse.
    let r = s.refresh_raw(&t0.refresh).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_grant");
    assert_eq!(
        s.refresh_raw(&t1.refresh).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.userinfo_bearer(&t1.access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn refresh_with_a_malformed_or_unknown_token_is_invalid_grant() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t = s.password_grant("alice", PASSWORD).await;
    let mut flipped = t.refresh.clone();
    flipped.pop();
    flipped.push(if t.refresh.ends_with('A') { 'B' } else { 'A' });
    let cookie = s.login("alice", PASSWORD).await;
    for bad in [
        "garbage",
        "trt_",
        flipped.as_str(),
        cookie.token.as_str(),
        &t.access,
    ] {
        let r = s.refresh_raw(bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.error_code(), "invalid_grant", "{bad}");
    }
    let r = s
        .send(Req::post("/oauth/token").form(&[("grant_type", "refresh_token")]))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_request");
    // None of that disturbed the real token.
    s.refresh(&t.refresh).await;
}

#[tokio::test]
async fn revoking_a_refresh_token_logs_the_app_session_out() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t = s.password_grant("alice", PASSWORD).await;
    let other = s.password_grant("alice", PASSWORD).await;
    let r = s.revoke(&t.refresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        s.userinfo_bearer(&t.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = s.refresh_raw(&t.refresh).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_grant");
    // Another login of the same user is untouched.
    assert_eq!(
        s.userinfo_bearer(&other.access).await.status,
        StatusCode::OK
    );
    s.refresh(&other.refresh).await;
    // Revoking again is still 200.
    assert_eq!(s.revoke(&t.refresh).await.status, StatusCode::OK);
}

#[tokio::test]
async fn revoking_an_access_jwt_makes_it_401() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t = s.password_grant("alice", PASSWORD).await;
    let r = s
        .send(Req::post("/oauth/revoke").json(&json!({
            "token": t.access, "token_type_hint": "access_token"
        })))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = s.userinfo_bearer(&t.access).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "invalid_token");
    assert_eq!(s.revoke(&t.access).await.status, StatusCode::OK);
}

#[tokio::test]
async fn revoking_a_session_token_logs_that_session_out() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    assert_eq!(s.revoke(&c.token).await.status, StatusCode::OK);
    assert_eq!(s.session_status(&c.token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoking_garbage_is_200_and_changes_nothing() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t = s.password_grant("alice", PASSWORD).await;
    let mut flipped = t.refresh.clone();
    flipped.pop();
    flipped.push(if t.refresh.ends_with('A') { 'B' } else { 'A' });
    for garbage in ["garbage", "a.b.c", "tss_x", "trt_x", flipped.as_str()] {
        let r = s.revoke(garbage).await;
        assert_eq!(r.status, StatusCode::OK, "{garbage}");
    }
    assert_eq!(s.userinfo_bearer(&t.access).await.status, StatusCode::OK);
    s.refresh(&t.refresh).await;
}

#[tokio::test]
async fn revoke_without_a_token_is_400() {
    let s = TestServer::new().await;
    for req in [
        Req::post("/oauth/revoke").form(&[]),
        Req::post("/oauth/revoke").form(&[("token", "")]),
        Req::post("/oauth/revoke").form(&[("token_type_hint", "refresh_token")]),
        Req::post("/oauth/revoke").json(&json!({})),
        Req::post("/oauth/revoke").json(&json!({"token": null})),
    ] {
        let r = s.send(req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert_eq!(r.error_code(), "invalid_request");
    }
}

#[tokio::test]
async fn logging_out_an_app_with_its_jwt_kills_its_refresh_token() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let t = s.password_grant("alice", PASSWORD).await;
    let r = s.send(Req::delete("/v1/session").bearer(&t.access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.userinfo_bearer(&t.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.refresh_raw(&t.refresh).await.status,
        StatusCode::BAD_REQUEST
    );
}
