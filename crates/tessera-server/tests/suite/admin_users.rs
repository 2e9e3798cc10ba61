//! The admin API's users, sessions, keys and audit routes: only administrators reach them
//! (not users, not a disabled admin, not a cookie write without its CSRF token), bad ids and
//! filters get a 4xx, and each route does what it says.

use axum::http::StatusCode;
use serde_json::json;
use tessera_core::keys::lifecycle::MIN_PUBLISHED_SECS;
use tessera_server::service;

use crate::common::*;

/// Registers an admin; returns their id and an access token.
pub async fn admin(s: &TestServer, name: &str) -> (String, String) {
    let user = service::register(
        &s.state,
        name,
        PASSWORD.to_owned(),
        true,
        &Default::default(),
    )
    .await
    .unwrap();
    (user.id, s.password_grant(name, PASSWORD).await.access)
}

#[tokio::test]
async fn only_administrators_reach_the_user_key_and_audit_routes() {
    let s = TestServer::new().await;
    let (_, root) = admin(&s, "root").await;
    let victim = s.register("victim", PASSWORD).await;
    let victim_session = s.login("victim", PASSWORD).await;
    s.register("mallory", PASSWORD).await;
    let user = s.password_grant("mallory", PASSWORD).await.access;
    let disable = format!("/v1/admin/users/{victim}/disable");
    let sessions = format!("/v1/admin/users/{victim}/sessions");
    let end = format!("/v1/admin/sessions/{}", victim_session.id);
    let routes = [
        ("GET", "/v1/admin/users?query=v"),
        ("POST", disable.as_str()),
        ("GET", sessions.as_str()),
        ("DELETE", end.as_str()),
        ("POST", "/v1/admin/keys/rotate"),
        ("GET", "/v1/admin/audit"),
    ];
    for (method, uri) in routes {
        let r = s
            .send(Req::new(method.parse().unwrap(), uri).bearer(&user))
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {uri}: {}",
            r.text()
        );
        assert_eq!(r.error_code(), "forbidden");
        let r = s.send(Req::new(method.parse().unwrap(), uri)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_error_shape(&r);
    }
    // Nothing the refused requests asked for happened.
    assert_eq!(
        s.session_status(&victim_session.token).await,
        StatusCode::OK
    );
    let r = s.send(Req::get(&sessions).bearer(&root)).await;
    assert_eq!(r.json()["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(
        s.send(Req::get("/.well-known/jwks.json")).await.json()["keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // An admin's cookie: reads pass; writes need the CSRF token and a same-origin request.
    service::register(
        &s.state,
        "webadmin",
        PASSWORD.to_owned(),
        true,
        &Default::default(),
    )
    .await
    .unwrap();
    let web = s.login("webadmin", PASSWORD).await;
    assert_eq!(
        s.send(Req::get("/v1/admin/audit").cookie(&web.token))
            .await
            .status,
        StatusCode::OK
    );
    for (method, uri) in [
        ("POST", disable.as_str()),
        ("DELETE", end.as_str()),
        ("POST", "/v1/admin/keys/rotate"),
    ] {
        let bare = s
            .send(Req::new(method.parse().unwrap(), uri).cookie(&web.token))
            .await;
        assert_eq!(bare.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert_eq!(bare.error_code(), "csrf_rejected");
        let cross = Req::new(method.parse().unwrap(), uri)
            .browser(&web)
            .header("origin", "https://evil.example");
        assert_eq!(s.send(cross).await.error_code(), "csrf_rejected");
    }
    assert_eq!(
        s.session_status(&victim_session.token).await,
        StatusCode::OK,
        "no CSRF write went through"
    );
    let r = s.send(Req::post(&disable).browser(&web)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        s.session_status(&victim_session.token).await,
        StatusCode::UNAUTHORIZED
    );
}

/// An admin marked disabled in the store (without the cascade, so their token still
/// verifies) is no admin: the extractor itself checks the flag.
#[tokio::test]
async fn a_disabled_admin_is_no_admin() {
    let s = TestServer::new().await;
    let (id, token) = admin(&s, "root").await;
    assert_eq!(
        s.send(Req::get("/v1/admin/users").bearer(&token))
            .await
            .status,
        StatusCode::OK
    );
    assert!(s.state.store().disable_user(&id).await.unwrap());
    let r = s.send(Req::get("/v1/admin/users").bearer(&token)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}

#[tokio::test]
async fn user_search_is_a_bounded_substring_match() {
    let s = TestServer::new().await;
    let (_, root) = admin(&s, "root").await;
    for name in ["carol_b", "carolyn", "bob", "acarola"] {
        s.register(name, PASSWORD).await;
    }
    let r = s
        .send(Req::get("/v1/admin/users?query=%20CAROL%20").bearer(&root))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let users = r.json()["users"].as_array().unwrap().clone();
    let names: Vec<_> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acarola", "carol_b", "carolyn"]);
    for u in &users {
        let mut keys: Vec<_> = u.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["disabled", "id", "is_admin", "username"],
            "never a hash"
        );
        assert_eq!(u["disabled"], false);
    }
    let r = s
        .send(Req::get("/v1/admin/users?query=carol&limit=1").bearer(&root))
        .await;
    assert_eq!(r.json()["users"].as_array().unwrap().len(), 1);
    let r = s
        .send(Req::get("/v1/admin/users?query=l_").bearer(&root))
        .await;
    assert_eq!(
        r.json()["users"][0]["username"],
        "carol_b",
        "`_` is a character"
    );
    assert_eq!(r.json()["users"].as_array().unwrap().len(), 1);
    let all = s.send(Req::get("/v1/admin/users").bearer(&root)).await;
    assert_eq!(all.json()["users"].as_array().unwrap().len(), 5);
    let long = format!("/v1/admin/users?query={}", "a".repeat(65));
    for bad in [
        "/v1/admin/users?limit=ten",
        "/v1/admin/users?limit=-1",
        "/v1/admin/users?sort=name",
        long.as_str(),
        "/v1/admin/users?query=a&query=b",
    ] {
        let r = s.send(Req::get(bad).bearer(&root)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert_eq!(r.error_code(), "invalid_request");
    }
}

#[tokio::test]
async fn disabling_ends_every_credential_and_refuses_logins_like_a_wrong_password() {
    let s = TestServer::new().await;
    let (root_id, root) = admin(&s, "root").await;
    let id = s.register("alice", PASSWORD).await;
    let browser = s.login("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    let wrong_login = s.login_raw("alice", "not the password at all").await;
    let wrong_grant = s
        .password_grant_raw("alice", "not the password at all")
        .await;

    let r = s
        .send(Req::post(&format!("/v1/admin/users/{id}/disable")).bearer(&root))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["disabled"], true);
    assert_eq!(r.json()["username"], "alice");
    assert_eq!(r.json()["sessions_revoked"], 2);

    assert_eq!(
        s.session_status(&browser.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.userinfo_bearer(&app.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.refresh_raw(&app.refresh).await.error_code(),
        "invalid_grant"
    );
    let exchange = s
        .send(Req::post("/oauth/token").form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", &app.access),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ]))
        .await;
    assert_eq!(exchange.error_code(), "invalid_grant");
    // The right password now gets exactly what a wrong one got.
    let login = s.login_raw("alice", PASSWORD).await;
    assert_eq!(
        (login.status, login.json()),
        (wrong_login.status, wrong_login.json())
    );
    assert!(login.header("set-cookie").is_none());
    let grant = s.password_grant_raw("alice", PASSWORD).await;
    assert_eq!(
        (grant.status, grant.json()),
        (wrong_grant.status, wrong_grant.json())
    );

    let search = s
        .send(Req::get("/v1/admin/users?query=alice").bearer(&root))
        .await;
    assert_eq!(search.json()["users"][0]["disabled"], true);
    let listed = s
        .send(Req::get(&format!("/v1/admin/users/{id}/sessions")).bearer(&root))
        .await;
    assert_eq!(listed.json()["sessions"], json!([]));
    // Unknown ids are 404; an admin cannot lock themselves out.
    for uri in [
        "/v1/admin/users/nobody/disable".to_owned(),
        format!("/v1/admin/users/{}/disable", "x".repeat(300)),
    ] {
        let r = s.send(Req::post(&uri).bearer(&root)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert_error_shape(&r);
    }
    let me = s
        .send(Req::post(&format!("/v1/admin/users/{root_id}/disable")).bearer(&root))
        .await;
    assert_eq!(
        (me.status, me.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert_eq!(s.userinfo_bearer(&root).await.status, StatusCode::OK);
}

#[tokio::test]
async fn admins_see_and_end_a_users_sessions() {
    let s = TestServer::new().await;
    let (_, root) = admin(&s, "root").await;
    let id = s.register("bob", PASSWORD).await;
    let laptop = s.login("bob", PASSWORD).await;
    let phone = s.password_grant("bob", PASSWORD).await;
    let mut own = s
        .send(Req::get("/v1/sessions").cookie(&laptop.token))
        .await
        .json();
    let r = s
        .send(Req::get(&format!("/v1/admin/users/{id}/sessions")).bearer(&root))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut listed = r.json();
    // The same shape as the user's own list; only `current` differs (the admin's request).
    for l in [&mut listed, &mut own] {
        for s in l["sessions"].as_array_mut().unwrap() {
            s.as_object_mut().unwrap().remove("current");
        }
    }
    assert_eq!(listed, own);
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2);

    let r = s
        .send(Req::delete(&format!("/v1/admin/sessions/{}", laptop.id)).bearer(&root))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(
        s.session_status(&laptop.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.userinfo_bearer(&phone.access).await.status,
        StatusCode::OK,
        "the other session lives"
    );
    let again = s
        .send(Req::delete(&format!("/v1/admin/sessions/{}", laptop.id)).bearer(&root))
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let sid = jwt_part(&phone.access, 1)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    s.send(Req::delete(&format!("/v1/admin/sessions/{sid}")).bearer(&root))
        .await;
    assert_eq!(
        s.userinfo_bearer(&phone.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.refresh_raw(&phone.refresh).await.error_code(),
        "invalid_grant",
        "its refresh family ends too"
    );
    let r = s
        .send(Req::get("/v1/admin/users/nobody/sessions").bearer(&root))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_error_shape(&r);
}

#[tokio::test]
async fn key_rotation_is_the_cli_step() {
    let s = TestServer::new().await;
    let (_, root) = admin(&s, "root").await;
    let first = s
        .send(Req::post("/v1/admin/keys/rotate").bearer(&root))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let next = first.json()["published_next"].as_str().unwrap().to_owned();
    assert!(first.json()["promote_after_secs"].as_i64().unwrap() > 0);
    let jwks = s.send(Req::get("/.well-known/jwks.json")).await.json();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == next.as_str())
    );
    // What the admin page and `keys list` show: the statuses, and never a secret.
    let keys = service::signing_keys(&s.state, &s.state.config().key_schedule())
        .await
        .unwrap();
    let statuses: Vec<_> = keys.iter().map(|k| (k.kid.as_str(), k.status)).collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&(next.as_str(), "next")), "{statuses:?}");
    assert!(statuses.iter().any(|(_, st)| *st == "current"));
    assert!(keys.iter().all(|k| k.next_change_at.is_some()));
    let early = s
        .send(Req::post("/v1/admin/keys/rotate").bearer(&root))
        .await;
    assert_eq!(
        (early.status, early.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let bad = s
        .send(Req::post("/v1/admin/keys/rotate?force=maybe").bearer(&root))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let forced = s
        .send(Req::post("/v1/admin/keys/rotate?force=true").bearer(&root))
        .await;
    assert_eq!(forced.status, StatusCode::OK, "{}", forced.text());
    assert_eq!(forced.json()["current"], next.as_str());
    // The new key signs at once on this instance; the old token still verifies (retiring).
    assert_eq!(s.userinfo_bearer(&root).await.status, StatusCode::OK);
    let fresh = s.password_grant("root", PASSWORD).await.access;
    assert_eq!(jwt_part(&fresh, 0)["kid"], next.as_str());
}

#[tokio::test]
async fn manual_rotation_never_publishes_a_fourth_key() {
    let s = TestServer::new().await;
    let (_, root) = admin(&s, "root").await;
    let first = jwt_part(&root, 0)["kid"].as_str().unwrap().to_owned();
    let rotate = |path| s.send(Req::post(path).bearer(&root));
    let published = || async {
        let jwks = s.send(Req::get("/.well-known/jwks.json")).await.json();
        jwks["keys"].as_array().unwrap().len()
    };
    // Published, then promoted: `first` is retiring, its tokens live for the access-token
    // lifetime plus leeway.
    assert_eq!(rotate("/v1/admin/keys/rotate").await.status, StatusCode::OK);
    s.advance(MIN_PUBLISHED_SECS);
    assert_eq!(rotate("/v1/admin/keys/rotate").await.status, StatusCode::OK);
    assert_eq!(published().await, 3);

    // The next promotion, due by the 5 minutes, waits for `first` to retire, and says when.
    s.advance(MIN_PUBLISHED_SECS);
    let refused = rotate("/v1/admin/keys/rotate").await;
    assert_eq!(
        (refused.status, refused.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let why = refused.text();
    assert!(
        why.contains(&format!("key {first} is retiring until")) && why.contains("force"),
        "{why}"
    );
    assert_eq!(published().await, 3);

    // Forced: `first` retires early, so the JWKS still holds three keys; its tokens stop.
    let forced = rotate("/v1/admin/keys/rotate?force=true").await;
    assert_eq!(forced.status, StatusCode::OK, "{}", forced.text());
    assert_eq!(forced.json()["retired"], json!([first]));
    assert_eq!(published().await, 3);
    assert_eq!(
        s.userinfo_bearer(&root).await.status,
        StatusCode::UNAUTHORIZED
    );
}
