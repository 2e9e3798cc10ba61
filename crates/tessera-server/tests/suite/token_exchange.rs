//! Token exchange (RFC 8693), attacked: every way to widen what a token may do (another
//! audience, more scope, a longer life, a dead or forged subject, re-exchanging an exchanged
//! token), and exchanges racing the logout of their subject.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use tessera_core::client::ClientId;
use tessera_server::service::{self, ACCESS_TOKEN_TYPE};
use tokio::task::JoinHandle;

use crate::clients_oauth::{Client, introspect, register};
use crate::common::{PASSWORD, Req, Resp, TestServer, jwt_part};

const API: &str = "https://api.example";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

async fn server() -> TestServer {
    TestServer::with_config(|c| c.exchange_audiences = vec![API.to_owned()]).await
}

async fn exchange_raw(s: &TestServer, subject: &str, extra: &[(&str, &str)]) -> Resp {
    exchange_as(s, None, subject, extra).await
}

/// An exchange, as the client of the `Basic` header `client` if one is given.
async fn exchange_as(
    s: &TestServer,
    client: Option<&str>,
    subject: &str,
    extra: &[(&str, &str)],
) -> Resp {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ];
    form.extend_from_slice(extra);
    let mut req = Req::post("/oauth/token").form(&form);
    if let Some(basic) = client {
        req = req.header("authorization", basic);
    }
    s.send(req).await
}

/// Four tasks exchanging `subject` for the API (as `client`, if given) over and over until
/// the server refuses with `refusal`; returned once 20 exchanges have succeeded, so what the
/// caller does next races the rest. Each task ends with the tokens it was given.
async fn racing_exchanges(
    s: &Arc<TestServer>,
    client: Option<&str>,
    subject: &str,
    refusal: &'static str,
) -> Vec<JoinHandle<Vec<String>>> {
    let issued = Arc::new(AtomicUsize::new(0));
    let tasks = (0..4)
        .map(|_| {
            let (s, issued) = (Arc::clone(s), Arc::clone(&issued));
            let (client, subject) = (client.map(str::to_owned), subject.to_owned());
            tokio::spawn(async move {
                let mut tokens = Vec::new();
                loop {
                    let r =
                        exchange_as(&s, client.as_deref(), &subject, &[("audience", API)]).await;
                    if r.status != StatusCode::OK {
                        assert_eq!(r.error_code(), refusal, "{}", r.text());
                        return tokens;
                    }
                    tokens.push(r.json()["access_token"].as_str().unwrap().to_owned());
                    issued.fetch_add(1, Ordering::SeqCst);
                    // Memory-store calls never wait: let the other tasks in.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    while issued.load(Ordering::SeqCst) < 20 {
        tokio::task::yield_now().await;
    }
    tasks
}

/// Every token the tasks of [`racing_exchanges`] were given.
async fn tokens_of(tasks: Vec<JoinHandle<Vec<String>>>) -> Vec<String> {
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.extend(task.await.unwrap());
    }
    tokens
}

async fn exchange(s: &TestServer, subject: &str, extra: &[(&str, &str)]) -> Value {
    let r = exchange_raw(s, subject, extra).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

/// Whether introspection, asked by `client`, says `token` is live.
async fn active(s: &TestServer, client: &Client, token: &str) -> bool {
    introspect(s, client, token).await.json()["active"]
        .as_bool()
        .unwrap()
}

#[tokio::test]
async fn a_session_becomes_an_audience_bound_token_that_dies_with_it() {
    let s = server().await;
    let api = register(&s, "read").await;
    s.register("alice", PASSWORD).await;
    let browser = s.login("alice", PASSWORD).await;
    let body = exchange(&s, &browser.token, &[("audience", API)]).await;
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();
    let claims = jwt_part(token, 1);
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["sid"], browser.id.as_str());
    assert_eq!(claims["username"], "alice");
    // Meant for the API, not for Tessera's own endpoints.
    assert_eq!(
        s.userinfo_bearer(token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(active(&s, &api, token).await);
    // Logging out of the session ends the exchanged token too.
    let r = s.send(Req::delete("/v1/session").browser(&browser)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert!(!active(&s, &api, token).await);
    assert_eq!(
        exchange_raw(&s, &browser.token, &[("audience", API)])
            .await
            .error_code(),
        "invalid_grant"
    );
}

#[tokio::test]
async fn an_exchanged_token_never_outlives_or_outreaches_its_subject() {
    let s = server().await;
    s.register("alice", PASSWORD).await;
    let r = s
        .send(Req::post("/oauth/token").form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("scope", "read write"),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let app = crate::common::app_tokens(&r);
    s.advance(500);
    // 100 s of the subject's 600 left: so is the new token's life.
    let body = exchange(&s, &app.access, &[("audience", API), ("scope", "read")]).await;
    assert_eq!(body["expires_in"], 100);
    assert_eq!(body["scope"], "read");
    let claims = jwt_part(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(
        claims["exp"].as_i64(),
        jwt_part(&app.access, 1)["exp"].as_i64()
    );
    assert_eq!(claims["sid"], jwt_part(&app.access, 1)["sid"]);

    for (extra, code) in [
        (vec![("audience", "https://evil.example")], "invalid_target"),
        (
            vec![("audience", API), ("scope", "read admin")],
            "invalid_scope",
        ),
    ] {
        let r = exchange_raw(&s, &app.access, &extra).await;
        assert_eq!(
            (r.status, r.error_code()),
            (StatusCode::BAD_REQUEST, code.to_owned())
        );
    }
    // An exchanged token cannot be exchanged again (its audience is not the issuer's).
    let hop = body["access_token"].as_str().unwrap();
    assert_eq!(
        exchange_raw(&s, hop, &[]).await.error_code(),
        "invalid_grant"
    );
    // Wrong type, missing subject, forged and dead subjects.
    let r = s
        .send(Req::post("/oauth/token").form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", &app.access),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
        ]))
        .await;
    assert_eq!(r.error_code(), "invalid_request");
    let r = s
        .send(Req::post("/oauth/token").form(&[("grant_type", EXCHANGE)]))
        .await;
    assert_eq!(r.error_code(), "invalid_request");
    for dead in [app.refresh.as_str(), "tss_forged", "not.a.jwt"] {
        assert_eq!(
            exchange_raw(&s, dead, &[]).await.error_code(),
            "invalid_grant",
            "{dead}"
        );
    }
    s.advance(101);
    assert_eq!(
        exchange_raw(&s, &app.access, &[]).await.error_code(),
        "invalid_grant"
    );
}

#[tokio::test]
async fn an_authenticated_client_owns_the_new_token() {
    let s = server().await;
    let client = register(&s, "read").await;
    s.register("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    let r = exchange_as(&s, Some(&client.basic()), &app.access, &[("audience", API)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let claims = jwt_part(r.json()["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["client_id"], client.id.as_str());
    // A wrong secret is not ignored.
    let wrong = format!("Basic {}", STANDARD.encode("nobody:tcs_x"));
    let r = exchange_as(&s, Some(&wrong), &app.access, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// An exchanged token is revoked at `/oauth/revoke` like any other access token: by the
/// client it was issued to, not by another, and without a client when first-party. (It was
/// once verified for Tessera's own audience only, so revoking it answered 200 and did
/// nothing.)
#[tokio::test]
async fn an_exchanged_token_is_revoked_by_its_client() {
    let s = server().await;
    let owner = register(&s, "read").await;
    let stranger = register(&s, "read").await;
    s.register("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    let revoke = |basic: Option<&str>, token: &str| {
        let mut req = Req::post("/oauth/revoke").form(&[("token", token)]);
        if let Some(basic) = basic {
            req = req.header("authorization", basic);
        }
        req
    };

    let owned = exchange_as(&s, Some(&owner.basic()), &app.access, &[("audience", API)]).await;
    let owned = owned.json()["access_token"].as_str().unwrap().to_owned();
    let r = s.send(revoke(Some(&stranger.basic()), &owned)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.error_code(), "unauthorized_client");
    assert!(active(&s, &owner, &owned).await);
    assert_eq!(
        s.send(revoke(Some(&owner.basic()), &owned)).await.status,
        StatusCode::OK
    );
    assert!(!active(&s, &owner, &owned).await);

    let first_party = exchange(&s, &app.access, &[("audience", API)]).await;
    let first_party = first_party["access_token"].as_str().unwrap();
    assert!(active(&s, &owner, first_party).await);
    assert_eq!(
        s.send(revoke(None, first_party)).await.status,
        StatusCode::OK
    );
    assert!(!active(&s, &owner, first_party).await);
    // The subject lives on: only the one token was revoked.
    assert_eq!(s.userinfo_bearer(&app.access).await.status, StatusCode::OK);
}

/// Exchanges racing the logout of their subject: four clients exchange the session over and
/// over while it is logged out under them. Whichever way each race goes, once the logout has
/// answered no exchanged token is accepted anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_racing_a_logout_all_die_with_it() {
    let s = Arc::new(server().await);
    let api = register(&s, "read").await;
    s.register("alice", PASSWORD).await;
    let browser = s.login("alice", PASSWORD).await;
    let exchangers = racing_exchanges(&s, None, &browser.token, "invalid_grant").await;
    let out = s.send(Req::delete("/v1/session").browser(&browser)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let tokens = tokens_of(exchangers).await;
    for token in &tokens {
        assert!(
            !active(&s, &api, token).await,
            "an exchanged token outlived the logout"
        );
    }
    println!(
        "{} tokens exchanged while the logout raced them; all dead after it",
        tokens.len()
    );
}

/// A client deleted while it exchanges users' tokens: four connections exchange alice's token
/// as the client, over and over, while an admin deletes the client under them. Every token
/// issued to the client — `sub` alice, `client_id` the client — dies with it, whichever way
/// each race went; alice's own token, issued to another client, lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_client_takes_the_tokens_it_holds_for_users_with_it() {
    let s = Arc::new(server().await);
    let watcher = register(&s, "read").await;
    let app = register(&s, "read").await;
    s.register("alice", PASSWORD).await;
    let own = s.password_grant("alice", PASSWORD).await.access;
    let exchangers = racing_exchanges(&s, Some(&app.basic()), &own, "invalid_client").await;
    let id = ClientId::parse(&app.id).unwrap();
    assert!(
        service::delete_client(&s.state, &id, &service::Actor::Operator)
            .await
            .unwrap()
    );
    let tokens = tokens_of(exchangers).await;
    assert!(tokens.len() >= 20);
    for token in &tokens {
        assert_eq!(jwt_part(token, 1)["client_id"], id.as_str());
        assert!(
            !active(&s, &watcher, token).await,
            "a token issued to the deleted client outlived it"
        );
    }
    assert!(
        active(&s, &watcher, &own).await,
        "the deletion ended a token of another client"
    );
    println!(
        "{} tokens exchanged by the client while its deletion raced them; all dead after it",
        tokens.len()
    );
}
