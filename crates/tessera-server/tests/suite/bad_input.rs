//! Malformed requests get a clear OAuth2-style 4xx and change nothing: bad JSON, wrong media
//! types, oversized bodies, missing or mistyped fields, repeated parameters, non-UTF-8 bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common;

use axum::http::{HeaderName, StatusCode};
use common::*;
use serde_json::json;

/// Every endpoint that reads a body.
const BODY_ENDPOINTS: [&str; 5] = [
    "/v1/users",
    "/v1/sessions",
    "/v1/password",
    "/oauth/token",
    "/oauth/revoke",
];

/// A server with alice registered, and her cookie session (body endpoints that need
/// authentication get it, so the body is what is judged).
async fn server() -> (TestServer, CookieSession) {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    (s, c)
}

fn post(path: &str, c: &CookieSession) -> Req {
    Req::post(path).browser(c)
}

#[tokio::test]
async fn invalid_json_is_400_invalid_request_everywhere() {
    let (s, c) = server().await;
    for path in BODY_ENDPOINTS {
        for body in [
            "",
            "{",
            "{\"username\": }",
            "not json",
            "{\"a\":1}}",
            "nul",
            "\u{feff}{}",
            "{'username':'x'}",
        ] {
            let r = s
                .send(post(path, &c).raw("application/json", body.to_owned()))
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body:?}");
            assert_eq!(r.error_code(), "invalid_request", "{path} {body:?}");
        }
    }
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
}

#[tokio::test]
async fn wrong_content_type_is_415_everywhere() {
    let (s, c) = server().await;
    let body = json!({"username": "bob", "password": PASSWORD}).to_string();
    for path in BODY_ENDPOINTS {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/xml"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonx"),
            Some("json"),
            Some(""),
        ] {
            let req = match ct {
                Some(ct) => post(path, &c).raw(ct, body.clone()),
                None => post(path, &c).body(body.clone()),
            };
            let r = s.send(req).await;
            assert_eq!(
                r.status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{path} {ct:?}"
            );
            assert_eq!(r.error_code(), "invalid_request");
        }
    }
    // Nothing was registered.
    assert_eq!(
        s.login_raw("bob", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn content_type_parameters_and_case_are_tolerated() {
    let s = TestServer::new().await;
    let body = json!({"username": "alice", "password": PASSWORD}).to_string();
    let r = s
        .send(Req::post("/v1/users").raw("Application/JSON; charset=utf-8", body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test]
async fn oversized_body_is_413_everywhere() {
    let (s, c) = server().await;
    let huge_password = "x".repeat(20 * 1024);
    for path in BODY_ENDPOINTS {
        let json_body = json!({
            "username": "alice", "password": huge_password, "token": huge_password,
            "grant_type": "password", "current_password": huge_password,
            "new_password": huge_password,
        });
        let r = s.send(post(path, &c).json(&json_body)).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(r.error_code(), "invalid_request");
        let r = s
            .send(post(path, &c).form(&[("grant_type", "password"), ("x", &huge_password)]))
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        // A megabyte is refused the same way.
        let r = s
            .send(post(path, &c).raw("application/json", vec![b' '; 1 << 20]))
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
}

#[tokio::test]
async fn missing_fields_are_400() {
    let (s, c) = server().await;
    let cases = [
        ("/v1/users", json!({})),
        ("/v1/users", json!({"username": "bob"})),
        ("/v1/users", json!({"password": PASSWORD})),
        ("/v1/sessions", json!({"username": "alice"})),
        ("/v1/sessions", json!({"password": PASSWORD})),
        ("/v1/password", json!({"new_password": NEW_PASSWORD})),
        (
            "/oauth/token",
            json!({"username": "alice", "password": PASSWORD}),
        ),
        (
            "/oauth/token",
            json!({"grant_type": "password", "username": "alice"}),
        ),
        ("/oauth/token", json!({"grant_type": "refresh_token"})),
        ("/oauth/revoke", json!({"token_type_hint": "refresh_token"})),
    ];
    for (path, body) in cases {
        let r = s.send(post(path, &c).json(&body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body}");
        assert_eq!(r.error_code(), "invalid_request", "{path} {body}");
    }
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
}

#[tokio::test]
async fn wrong_json_types_are_400() {
    let (s, c) = server().await;
    let cases = [
        ("/v1/users", json!({"username": 1, "password": PASSWORD})),
        ("/v1/users", json!({"username": "bob", "password": ["a"]})),
        ("/v1/users", json!({"username": null, "password": PASSWORD})),
        ("/v1/users", json!("bob")),
        ("/v1/users", json!(null)),
        ("/v1/users", json!(42)),
        (
            "/v1/sessions",
            json!({"username": {"$ne": ""}, "password": PASSWORD}),
        ),
        (
            "/v1/sessions",
            json!({"username": "alice", "password": true}),
        ),
        (
            "/v1/password",
            json!({"current_password": PASSWORD, "new_password": 7}),
        ),
        ("/oauth/token", json!({"grant_type": 1})),
        ("/oauth/token", json!({"grant_type": ["password"]})),
        (
            "/oauth/token",
            json!({"grant_type": "password", "username": "alice", "password": 1}),
        ),
        (
            "/oauth/token",
            json!({"grant_type": "refresh_token", "refresh_token": {}}),
        ),
        (
            "/oauth/token",
            json!({"grant_type": "password", "username": "alice",
                                "password": PASSWORD, "scope": 5}),
        ),
        ("/oauth/revoke", json!({"token": 12})),
        ("/oauth/revoke", json!([])),
    ];
    for (path, body) in cases {
        let r = s.send(post(path, &c).json(&body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body}");
        assert_eq!(r.error_code(), "invalid_request", "{path} {body}");
    }
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
}

#[tokio::test]
async fn duplicate_parameters_are_400() {
    let (s, c) = server().await;
    let form = "application/x-www-form-urlencoded";
    let cases = [
        (
            "/oauth/token",
            "grant_type=password&grant_type=refresh_token&username=alice&password=x",
        ),
        (
            "/oauth/token",
            "grant_type=password&username=alice&username=bob&password=x",
        ),
        (
            "/oauth/token",
            "grant_type=refresh_token&refresh_token=a&refresh_token=b",
        ),
        ("/oauth/revoke", "token=a&token=b"),
        ("/v1/sessions", "username=alice&username=mallory&password=x"),
        ("/v1/users", "username=bob&password=x&password=y"),
    ];
    for (path, body) in cases {
        let r = s.send(post(path, &c).raw(form, body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body}");
        assert_eq!(r.error_code(), "invalid_request", "{path} {body}");
    }
    // JSON duplicates too.
    let r = s
        .send(post("/oauth/token", &c).raw(
            "application/json",
            r#"{"grant_type":"password","grant_type":"refresh_token"}"#,
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_error_shape(&r);
}

#[tokio::test]
async fn unknown_extra_fields_are_ignored() {
    let s = TestServer::new().await;
    let r = s
        .send(Req::post("/v1/users").json(&json!({
            "username": "alice", "password": PASSWORD, "is_admin": true, "id": "chosen"
        })))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_ne!(r.json()["id"], "chosen");
    let c = s.login("alice", PASSWORD).await;
    let info = s.userinfo_cookie(&c.token).await.json();
    assert_eq!(info["is_admin"], false);
}

#[tokio::test]
async fn non_utf8_bodies_are_refused_cleanly() {
    let (s, c) = server().await;
    let bad: &[&[u8]] = &[
        b"\xff\xfe\xfd",
        b"{\"username\":\"al\xffice\",\"password\":\"x\"}",
        b"\x00\x00\x00",
        b"{\"grant_type\":\"password\xc3\"}",
    ];
    for path in BODY_ENDPOINTS {
        for body in bad {
            let r = s
                .send(post(path, &c).raw("application/json", body.to_vec()))
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body:?}");
            assert_error_shape(&r);
            // Form decoding replaces bad bytes; whatever the answer, it is clean.
            let r = s
                .send(post(path, &c).raw("application/x-www-form-urlencoded", body.to_vec()))
                .await;
            assert_clean(&r);
            let r = s
                .send(post(path, &c).raw(
                    "application/x-www-form-urlencoded",
                    b"username=%FF%FE&password=%C3&grant_type=password&token=%80".to_vec(),
                ))
                .await;
            assert_clean(&r);
        }
    }
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
}

#[tokio::test]
async fn non_ascii_headers_are_refused_cleanly() {
    let (s, c) = server().await;
    let auth = HeaderName::from_static("authorization");
    let r = s
        .send(Req::get("/v1/userinfo").header_bytes(auth.clone(), b"Bearer \xff\xfe"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "invalid_token");
    // A non-ASCII cookie header is skipped, so no credential: 401 without an error code.
    let r = s
        .send(Req::get("/v1/session").header_bytes(HeaderName::from_static("cookie"), b"x=\xff"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Fetch metadata and the CSRF header in bytes that are not ASCII.
    for (name, value) in [
        ("sec-fetch-site", b"same\xff".as_slice()),
        ("origin", b"https://\xfftessera.test".as_slice()),
        ("x-csrf-token", b"\xff\xff".as_slice()),
    ] {
        let r = s
            .send(
                Req::delete("/v1/session")
                    .cookie(&c.token)
                    .csrf(&c.csrf)
                    .header_bytes(HeaderName::from_static(name), value),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}");
        assert_error_shape(&r);
    }
    // A repeated Authorization header is refused.
    let r = s
        .send(Req::get("/v1/userinfo").bearer(&c.token).bearer(&c.token))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
}

#[tokio::test]
async fn unknown_grant_type_is_400_unsupported_grant_type_in_json_and_form() {
    let s = TestServer::new().await;
    let r = s
        .send(Req::post("/oauth/token").json(&json!({"grant_type": "magic"})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "unsupported_grant_type");
    let r = s
        .send(Req::post("/oauth/token").form(&[("grant_type", "magic")]))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "unsupported_grant_type");
}

#[tokio::test]
async fn bad_session_ids_in_the_path_are_404_not_500() {
    let (s, c) = server().await;
    for id in ["%FF%FE", "%00", "..", "a%2Fb", &"x".repeat(5000)] {
        let r = s
            .send(Req::delete(&format!("/v1/sessions/{id}")).browser(&c))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(r.error_code(), "not_found");
    }
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
}

#[tokio::test]
async fn every_error_has_an_oauth2_body_and_a_4xx_status() {
    let (s, c) = server().await;
    let reqs = [
        Req::post("/v1/users").json(&json!({"username": "alice", "password": PASSWORD})),
        Req::post("/v1/users").json(&json!({"username": "bob", "password": "short"})),
        Req::post("/v1/sessions").json(&json!({"username": "alice", "password": "nope"})),
        Req::get("/v1/session"),
        Req::get("/v1/sessions").bearer("nope"),
        Req::delete("/v1/session").cookie(&c.token),
        Req::delete("/v1/sessions/nope").bearer(&c.token),
        Req::get("/v1/userinfo"),
        Req::post("/v1/password").bearer(&c.token).json(&json!({
            "current_password": "wrong", "new_password": NEW_PASSWORD
        })),
        Req::post("/oauth/token").form(&[("grant_type", "nope")]),
        Req::post("/oauth/token").form(&[("grant_type", "refresh_token"), ("refresh_token", "x")]),
        Req::post("/oauth/revoke").form(&[]),
        Req::get("/missing"),
        Req::new(axum::http::Method::PUT, "/healthz"),
    ];
    for req in reqs {
        let r = s.send(req).await;
        assert_error_shape(&r);
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
    }
}
