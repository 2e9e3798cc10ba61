//! The admin API's client routes: only administrators, whatever credential the others bring
//! (a user's token, a client's own token, a cookie without its CSRF token, nothing); a client
//! made there works at once, and deleting it ends its tokens.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tessera_server::service;

use crate::common::{PASSWORD, Req, TestServer, assert_error_shape};

async fn admin_token(s: &TestServer) -> String {
    service::register(
        &s.state,
        "root",
        PASSWORD.to_owned(),
        true,
        &Default::default(),
    )
    .await
    .unwrap();
    s.password_grant("root", PASSWORD).await.access
}

#[tokio::test]
async fn only_administrators_reach_the_client_routes() {
    let s = TestServer::new().await;
    let admin = admin_token(&s).await;
    s.register("mallory", PASSWORD).await;
    let user = s.password_grant("mallory", PASSWORD).await.access;
    let made = s
        .send(
            Req::post("/v1/admin/clients")
                .bearer(&admin)
                .json(&json!({ "name": "svc", "scope": "read" })),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text());
    let id = made.json()["client_id"].as_str().unwrap().to_owned();
    let secret = made.json()["client_secret"].as_str().unwrap().to_owned();
    let client_token = s
        .send(
            Req::post("/oauth/token")
                .header(
                    "authorization",
                    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
                )
                .form(&[("grant_type", "client_credentials")]),
        )
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let delete = format!("/v1/admin/clients/{id}");
    let attempts: [(&str, &str, Option<serde_json::Value>); 3] = [
        ("GET", "/v1/admin/clients", None),
        ("POST", "/v1/admin/clients", Some(json!({ "name": "evil" }))),
        ("DELETE", &delete, None),
    ];
    for (method, uri, body) in &attempts {
        for (who, bearer) in [
            ("a user", Some(&user)),
            ("a client", Some(&client_token)),
            ("nobody", None),
        ] {
            let mut req = Req::new(method.parse().unwrap(), uri);
            if let Some(body) = body {
                req = req.json(body);
            }
            if let Some(token) = bearer {
                req = req.bearer(token);
            }
            let r = s.send(req).await;
            let want = if bearer.is_some() {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(r.status, want, "{who}: {method} {uri}");
            assert_error_shape(&r);
        }
    }
    // Nothing changed: the one client is there, and no "evil" one.
    let listed = s
        .send(Req::get("/v1/admin/clients").bearer(&admin))
        .await
        .json();
    assert_eq!(listed["clients"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_client_made_by_an_admin_works_and_dies_with_its_deletion() {
    let s = TestServer::new().await;
    let admin = admin_token(&s).await;
    let made = s
        .send(Req::post("/v1/admin/clients").bearer(&admin).json(&json!({
            "name": "billing", "scope": "invoices:read", "redirect_uris": ["https://billing.example/cb"]
        })))
        .await
        .json();
    let (id, secret) = (
        made["client_id"].as_str().unwrap(),
        made["client_secret"].as_str().unwrap(),
    );
    let basic = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    let listed = s.send(Req::get("/v1/admin/clients").bearer(&admin)).await;
    let text = listed.text();
    assert!(!text.contains(secret) && !text.contains("secret"), "{text}");
    assert_eq!(
        listed.json()["clients"][0]["redirect_uris"],
        json!(["https://billing.example/cb"])
    );
    let token = s
        .send(
            Req::post("/oauth/token")
                .header("authorization", &basic)
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    assert_eq!(token.status, StatusCode::OK);
    let token = token.json()["access_token"].as_str().unwrap().to_owned();

    let gone = s
        .send(Req::delete(&format!("/v1/admin/clients/{id}")).bearer(&admin))
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let again = s
        .send(Req::delete(&format!("/v1/admin/clients/{id}")).bearer(&admin))
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let r = s
        .send(
            Req::post("/oauth/token")
                .header("authorization", &basic)
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Its token is on the revocation list: refused by introspection for another client.
    let other = s
        .send(
            Req::post("/v1/admin/clients")
                .bearer(&admin)
                .json(&json!({ "name": "watcher" })),
        )
        .await
        .json();
    let watcher = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            other["client_id"].as_str().unwrap(),
            other["client_secret"].as_str().unwrap()
        ))
    );
    let facts = s
        .send(
            Req::post("/oauth/introspect")
                .header("authorization", &watcher)
                .form(&[("token", &token)]),
        )
        .await
        .json();
    assert_eq!(facts, json!({ "active": false }));
}

#[tokio::test]
async fn bad_client_registrations_are_refused_with_nothing_stored() {
    let s = TestServer::new().await;
    let admin = admin_token(&s).await;
    for bad in [
        json!({}),
        json!({ "name": "" }),
        json!({ "name": "x", "scope": "a\\b" }),
        json!({ "name": "x", "redirect_uris": ["http://evil.example/cb"] }),
        json!({ "name": "x", "redirect_uris": ["https://a.example/cb#frag"] }),
        json!({ "name": "x", "unknown": true }),
        json!({ "name": 7 }),
    ] {
        let r = s
            .send(Req::post("/v1/admin/clients").bearer(&admin).json(&bad))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert_error_shape(&r);
    }
    let listed = s
        .send(Req::get("/v1/admin/clients").bearer(&admin))
        .await
        .json();
    assert_eq!(listed["clients"], json!([]));
}
