//! `POST /v1/password`: checks the current password and the policy, then revokes every
//! credential of the user.

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

fn change(current: &str, new: &str) -> Req {
    Req::post("/v1/password").json(&json!({
        "current_password": current, "new_password": new
    }))
}

#[tokio::test]
async fn wrong_current_password_is_400_and_changes_nothing() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    let r = s
        .send(change("not my password at all", NEW_PASSWORD).browser(&c))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_request");
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
    s.login("alice", PASSWORD).await;
    assert_eq!(
        s.login_raw("alice", NEW_PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn weak_new_password_is_400_and_changes_nothing() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    for weak in ["short", "passwordpassword", "alice alice alice alice"] {
        let r = s.send(change(PASSWORD, weak).browser(&c)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{weak}");
        assert_eq!(r.error_code(), "weak_password", "{weak}");
    }
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
    s.login("alice", PASSWORD).await;
}

#[tokio::test]
async fn password_change_without_credentials_is_401() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let r = s.send(change(PASSWORD, NEW_PASSWORD)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    s.login("alice", PASSWORD).await;
}

#[tokio::test]
async fn password_change_revokes_every_credential_of_the_user() {
    let s = TestServer::new().await;
    let me = user_with_cookie(&s, "alice").await;
    let other_cookie = s.login("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    let app2 = s.password_grant("alice", PASSWORD).await;
    let rotated = s.refresh(&app2.refresh).await;
    let bob = user_with_cookie(&s, "bob").await;
    let bob_app = s.password_grant("bob", PASSWORD).await;

    let r = s.send(change(PASSWORD, NEW_PASSWORD).browser(&me)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    // The cookie that made the change is cleared and dead too.
    let cleared = r.header("set-cookie").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    for cookie in [&me.token, &other_cookie.token] {
        assert_eq!(s.session_status(cookie).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            s.userinfo_bearer(cookie).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    for access in [&app.access, &app2.access, &rotated.access] {
        let r = s.userinfo_bearer(access).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.error_code(), "invalid_token");
    }
    for refresh in [&app.refresh, &app2.refresh, &rotated.refresh] {
        let r = s.refresh_raw(refresh).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.error_code(), "invalid_grant");
    }

    // Bob is untouched.
    assert_eq!(s.session_status(&bob.token).await, StatusCode::OK);
    assert_eq!(
        s.userinfo_bearer(&bob_app.access).await.status,
        StatusCode::OK
    );

    // The new password works, at once (same second as the cutoff), the old one does not.
    let fresh = s.login("alice", NEW_PASSWORD).await;
    assert_eq!(s.session_status(&fresh.token).await, StatusCode::OK);
    let fresh_app = s.password_grant("alice", NEW_PASSWORD).await;
    assert_eq!(
        s.userinfo_bearer(&fresh_app.access).await.status,
        StatusCode::OK
    );
    s.refresh(&fresh_app.refresh).await;
    let old = s.login_raw("alice", PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.password_grant_raw("alice", PASSWORD).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn password_change_with_an_access_jwt_needs_no_csrf_and_revokes_it() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    let cookie = s.login("alice", PASSWORD).await;
    let r = s
        .send(change(PASSWORD, NEW_PASSWORD).bearer(&app.access))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert!(r.header("set-cookie").is_none());
    assert_eq!(
        s.userinfo_bearer(&app.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.session_status(&cookie.token).await,
        StatusCode::UNAUTHORIZED
    );
    s.login("alice", NEW_PASSWORD).await;
}

#[tokio::test]
async fn password_change_accepts_a_form_body() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    let r = s
        .send(
            Req::post("/v1/password")
                .form(&[
                    ("current_password", PASSWORD),
                    ("new_password", NEW_PASSWORD),
                ])
                .browser(&c),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    s.login("alice", NEW_PASSWORD).await;
}

#[tokio::test]
async fn password_change_missing_fields_is_400() {
    let s = TestServer::new().await;
    let c = user_with_cookie(&s, "alice").await;
    for body in [
        json!({}),
        json!({"current_password": PASSWORD}),
        json!({"new_password": NEW_PASSWORD}),
        json!({"current_password": 1, "new_password": NEW_PASSWORD}),
    ] {
        let r = s
            .send(Req::post("/v1/password").json(&body).browser(&c))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_error_shape(&r);
    }
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
}
