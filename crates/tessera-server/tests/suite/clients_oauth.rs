//! Registered clients at the OAuth endpoints, attacked as a client would be: the
//! `client_credentials` grant, client authentication (Basic and body, wrong and mixed
//! methods, a burst of guesses), introspection, revocation of client tokens, deleting a
//! client, and the revocation list and stream resource servers follow.

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::BodyExt;
use serde_json::Value;
use tessera_core::client::{ClientId, NewClient, Scope};
use tessera_core::revocation::Revocation;
use tessera_server::service;

use crate::common::{PASSWORD, Req, Resp, TestServer, assert_error_shape};

pub(crate) struct Client {
    pub(crate) id: String,
    pub(crate) secret: String,
}

impl Client {
    pub(crate) fn basic(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.id, self.secret))
        )
    }
}

pub(crate) async fn register(s: &TestServer, scope: &str) -> Client {
    let (record, secret) = service::register_client(
        &s.state,
        NewClient {
            name: "billing".into(),
            scope: Scope::parse(scope).unwrap(),
            ..NewClient::default()
        },
        &service::Actor::Operator,
    )
    .await
    .unwrap();
    Client {
        id: record.id.as_str().to_owned(),
        secret: secret.unwrap().expose_secret().to_owned(),
    }
}

pub(crate) async fn client_token(s: &TestServer, c: &Client, scope: Option<&str>) -> Resp {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    s.send(
        Req::post("/oauth/token")
            .header("authorization", c.basic())
            .form(&form),
    )
    .await
}

pub(crate) async fn introspect(s: &TestServer, c: &Client, token: &str) -> Resp {
    s.send(
        Req::post("/oauth/introspect")
            .header("authorization", c.basic())
            .form(&[("token", token)]),
    )
    .await
}

fn assert_invalid_client(r: &Resp) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.error_code(), "invalid_client");
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some("Basic realm=\"tessera\"")
    );
    assert_error_shape(r);
}

#[tokio::test]
async fn client_credentials_by_basic_or_post_gives_a_token_for_the_client() {
    let s = TestServer::new().await;
    let c = register(&s, "read write").await;
    let r = client_token(&s, &c, Some("read")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read");
    assert!(body.get("refresh_token").is_none());
    let claims = introspect(&s, &c, body["access_token"].as_str().unwrap())
        .await
        .json();
    assert_eq!(claims["active"], true);
    assert_eq!(claims["sub"], c.id.as_str());
    assert_eq!(claims["client_id"], c.id.as_str());
    assert!(claims.get("sid").is_none());

    // client_secret_post, and no scope asked: every scope the client may have.
    let r = s
        .send(Req::post("/oauth/token").form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &c.id),
            ("client_secret", &c.secret),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["scope"], "read write");
}

#[tokio::test]
async fn client_authentication_refuses_every_wrong_credential() {
    let s = TestServer::new().await;
    let c = register(&s, "read").await;
    let other = register(&s, "read").await;
    let wrong = [
        Client {
            id: c.id.clone(),
            secret: other.secret.clone(),
        },
        Client {
            id: c.id.clone(),
            secret: String::new(),
        },
        Client {
            id: "no-such-client".into(),
            secret: c.secret.clone(),
        },
        Client {
            id: c.id.clone(),
            secret: format!("{}x", c.secret),
        },
    ];
    for w in &wrong {
        assert_invalid_client(&client_token(&s, w, None).await);
        assert_invalid_client(&introspect(&s, w, "x").await);
    }
    // No credentials at all.
    let r = s
        .send(Req::post("/oauth/token").form(&[("grant_type", "client_credentials")]))
        .await;
    assert_invalid_client(&r);
    let r = s
        .send(Req::post("/oauth/introspect").form(&[("token", "x")]))
        .await;
    assert_invalid_client(&r);
    // Two methods at once are refused (RFC 6749 §2.3), even when both are right.
    let r = s
        .send(
            Req::post("/oauth/token")
                .header("authorization", c.basic())
                .form(&[("grant_type", "client_credentials"), ("client_id", &c.id)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A scope beyond the client's.
    let r = client_token(&s, &c, Some("read admin")).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );
    // A public client has no secret to authenticate with.
    let (public, none) = service::register_client(
        &s.state,
        NewClient {
            name: "spa".into(),
            public: true,
            redirect_uris: vec!["https://app.example/cb".into()],
            ..NewClient::default()
        },
        &service::Actor::Operator,
    )
    .await
    .unwrap();
    assert!(none.is_none());
    let spa = Client {
        id: public.id.as_str().to_owned(),
        secret: String::new(),
    };
    assert_invalid_client(&client_token(&s, &spa, None).await);
}

#[tokio::test]
async fn a_burst_of_secret_guesses_gets_nothing() {
    let s = TestServer::new().await;
    let c = register(&s, "read").await;
    let mut guesses = Vec::new();
    for i in 0..64 {
        let guess = Client {
            id: c.id.clone(),
            secret: format!("tcs_guess{i}"),
        };
        let s = &s;
        guesses.push(async move { client_token(s, &guess, None).await });
    }
    for r in futures_util::future::join_all(guesses).await {
        assert_invalid_client(&r);
    }
    assert_eq!(client_token(&s, &c, None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn introspection_reports_live_tokens_and_nothing_else() {
    let s = TestServer::new().await;
    let rs = register(&s, "introspect").await;
    s.register("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    let facts = introspect(&s, &rs, &app.access).await.json();
    assert_eq!(facts["active"], true);
    assert_eq!(facts["username"], "alice");
    assert!(facts["sid"].is_string() && facts["exp"].is_i64() && facts["jti"].is_string());
    let browser = s.login("alice", PASSWORD).await;
    let facts = introspect(&s, &rs, &browser.token).await.json();
    assert_eq!(
        (facts["active"].clone(), facts["token_type"].clone()),
        (Value::Bool(true), "session".into())
    );
    assert!(facts.get("client_id").is_none());

    // The signature's first character changed: its first six bits differ.
    let dot = app.access.rfind('.').unwrap() + 1;
    let flipped = if app.access[dot..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    let forged = format!("{}{flipped}{}", &app.access[..dot], &app.access[dot + 1..]);
    for dead in [forged.as_str(), app.refresh.as_str(), "garbage", "tss_nope"] {
        assert_eq!(
            introspect(&s, &rs, dead).await.json(),
            serde_json::json!({"active": false}),
            "{dead}"
        );
    }
    assert_eq!(s.revoke(&app.access).await.status, StatusCode::OK);
    assert_eq!(
        introspect(&s, &rs, &app.access).await.json()["active"],
        false
    );
    s.advance(3_600);
    assert_eq!(
        introspect(&s, &rs, &browser.token).await.json()["active"],
        true
    );
    s.advance(8 * 24 * 3_600);
    assert_eq!(
        introspect(&s, &rs, &browser.token).await.json()["active"],
        false
    );
}

#[tokio::test]
async fn a_client_token_is_revoked_only_by_its_client() {
    let s = TestServer::new().await;
    let c = register(&s, "read").await;
    let other = register(&s, "read").await;
    let token = client_token(&s, &c, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Without authentication, or by another client: refused, and the token lives on.
    assert_eq!(s.revoke(&token).await.error_code(), "unauthorized_client");
    let r = s
        .send(
            Req::post("/oauth/revoke")
                .header("authorization", other.basic())
                .form(&[("token", &token)]),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "unauthorized_client")
    );
    assert_eq!(introspect(&s, &other, &token).await.json()["active"], true);
    let r = s
        .send(
            Req::post("/oauth/revoke")
                .header("authorization", c.basic())
                .form(&[("token", &token)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(introspect(&s, &other, &token).await.json()["active"], false);
}

#[tokio::test]
async fn deleting_a_client_ends_its_tokens_and_its_access() {
    let s = TestServer::new().await;
    let c = register(&s, "read").await;
    let watcher = register(&s, "read").await;
    let token = client_token(&s, &c, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        service::delete_client(
            &s.state,
            &ClientId::parse(&c.id).unwrap(),
            &service::Actor::Operator
        )
        .await
        .unwrap()
    );
    assert_eq!(
        introspect(&s, &watcher, &token).await.json()["active"],
        false
    );
    assert_invalid_client(&client_token(&s, &c, None).await);
    // Resource servers hear of it on the revocation list.
    let list = s
        .send(Req::get("/v1/revocations").header("authorization", watcher.basic()))
        .await
        .json();
    let ended: Vec<&Value> = list["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["sub"] == c.id.as_str())
        .collect();
    assert_eq!(ended.len(), 1, "{list}");
    assert!(
        !service::delete_client(
            &s.state,
            &ClientId::parse(&c.id).unwrap(),
            &service::Actor::Operator
        )
        .await
        .unwrap()
    );
}

#[tokio::test]
async fn the_revocation_list_catches_up_from_a_cursor() {
    let s = TestServer::new().await;
    let rs = register(&s, "read").await;
    assert_invalid_client(&s.send(Req::get("/v1/revocations")).await);
    assert_invalid_client(&s.send(Req::get("/v1/revocations/stream")).await);
    let list = |since: Option<String>| {
        let uri = since.map_or("/v1/revocations".to_owned(), |c| {
            format!("/v1/revocations?since={c}")
        });
        let req = Req::get(&uri).header("authorization", rs.basic());
        let s = &s;
        async move { s.send(req).await.json() }
    };
    let start = list(None).await;
    assert_eq!(start["revocations"], serde_json::json!([]));
    let cursor = start["cursor"].as_str().unwrap().to_owned();

    s.register("alice", PASSWORD).await;
    let browser = s.login("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    s.revoke(&app.access).await;
    s.send(Req::delete("/v1/session").browser(&browser)).await;
    let after = list(Some(cursor.clone())).await;
    let news = after["revocations"].as_array().unwrap();
    assert!(news.iter().any(|r| r["jti"].is_string()), "{after}");
    assert_eq!(
        news.iter().filter(|r| r["sid"].is_string()).count(),
        1,
        "{after}"
    );
    for r in news {
        assert!(Revocation::from_wire(r).is_some(), "{r}");
    }
    // Nothing new after the newest cursor; an unknown cursor gets the whole live list.
    let newest = after["cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        list(Some(newest)).await["revocations"],
        serde_json::json!([])
    );
    let whole = list(Some("another-instance-7".into())).await;
    assert_eq!(whole["revocations"].as_array().unwrap().len(), news.len());
}

/// The next block (the lines up to a blank line) of a stream, within `limit`; `None` if the
/// stream ended.
async fn next_block(
    body: &mut axum::body::Body,
    buf: &mut String,
    limit: Duration,
) -> Option<String> {
    loop {
        if let Some(end) = buf.find("\n\n") {
            return Some(buf.drain(..end + 2).collect());
        }
        let frame = tokio::time::timeout(limit, body.frame())
            .await
            .expect("nothing within the limit");
        match frame {
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    buf.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
            _ => return None,
        }
    }
}

/// The next `event: revocation` of a stream (its `id`, if it has one, and its data), within
/// `limit` for each block read; `None` if the stream ended.
async fn next_event(
    body: &mut axum::body::Body,
    buf: &mut String,
    limit: Duration,
) -> Option<(Option<String>, Value)> {
    loop {
        let block = next_block(body, buf, limit).await?;
        let field = |name: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .map(|v| v.trim().to_owned())
        };
        if field("event").as_deref() == Some("revocation") {
            let data: Value = serde_json::from_str(&field("data").unwrap()).unwrap();
            return Some((field("id"), data));
        }
    }
}

/// Opens the revocation stream as `client`: 200, `text/event-stream`; its body.
async fn stream(s: &TestServer, client: &Client) -> axum::body::Body {
    let resp = s
        .open(Req::get("/v1/revocations/stream").header("authorization", client.basic()))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    resp.into_body()
}

/// The stream's heartbeat period (`HEARTBEAT` in `routes/revocations.rs`).
const HEARTBEAT: Duration = Duration::from_secs(2);

#[tokio::test]
async fn an_idle_stream_carries_a_heartbeat_comment_every_period() {
    let s = TestServer::new().await;
    let rs = register(&s, "read").await;
    let mut body = stream(&s, &rs).await;
    let mut buf = String::new();
    // Nothing is revoked: every block is a heartbeat, each within a period plus a margin for
    // a loaded machine — twice, so the beat repeats rather than only opening the stream.
    for _ in 0..2 {
        let block = next_block(&mut body, &mut buf, HEARTBEAT + Duration::from_millis(1500))
            .await
            .expect("the stream stays open");
        assert!(
            block.starts_with(':') && block.trim_end().lines().all(|l| l.starts_with(':')),
            "a comment, not an event: {block:?}"
        );
    }
}

#[tokio::test]
async fn the_stream_pushes_revocations_resumes_and_ends_on_shutdown() {
    let s = TestServer::new().await;
    let rs = register(&s, "read").await;
    let mut body = stream(&s, &rs).await;
    let mut buf = String::new();
    let revoke = |jti: &str| Revocation::Token {
        jti: jti.into(),
        expires_at: s.state.now().plus(600),
    };
    s.state.record_revocation(revoke("j1")).await.unwrap();
    let (first_id, first) = next_event(&mut body, &mut buf, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(first["jti"], "j1");
    let first_id = first_id.expect("a live event carries its cursor");
    s.state.record_revocation(revoke("j2")).await.unwrap();
    s.state.record_revocation(revoke("j3")).await.unwrap();

    // A second subscriber resuming from the first event gets exactly what came after it.
    let resumed = s
        .open(
            Req::get("/v1/revocations/stream")
                .header("authorization", rs.basic())
                .header("last-event-id", &first_id),
        )
        .await;
    let mut resumed = resumed.into_body();
    let mut rbuf = String::new();
    for want in ["j2", "j3"] {
        let (_, e) = next_event(&mut resumed, &mut rbuf, Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(e["jti"], want);
    }
    // Shutting down ends every stream, so a graceful shutdown can finish.
    s.state.close_streams();
    let mut ended = false;
    for _ in 0..4 {
        if next_event(&mut resumed, &mut rbuf, Duration::from_secs(2))
            .await
            .is_none()
        {
            ended = true;
            break;
        }
    }
    assert!(ended);
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_cut_off_and_resumes_from_its_cursor() {
    let s = TestServer::new().await;
    let rs = register(&s, "read").await;
    let cursor = s
        .send(Req::get("/v1/revocations").header("authorization", rs.basic()))
        .await
        .json()["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut slow = stream(&s, &rs).await;
    // A burst far beyond what one subscriber may buffer, while it reads nothing.
    for i in 0..1_500 {
        s.state
            .record_revocation(Revocation::Token {
                jti: format!("burst{i}"),
                expires_at: s.state.now().plus(600),
            })
            .await
            .unwrap();
    }
    let mut buf = String::new();
    let mut got = 0;
    while next_event(&mut slow, &mut buf, Duration::from_secs(5))
        .await
        .is_some()
    {
        got += 1;
    }
    assert!(
        got < 1_500,
        "the slow subscriber was not cut off ({got} events)"
    );
    // Resuming from its cursor, it catches up on everything.
    let caught_up = s
        .send(
            Req::get(&format!("/v1/revocations?since={cursor}"))
                .header("authorization", rs.basic()),
        )
        .await
        .json();
    assert_eq!(caught_up["revocations"].as_array().unwrap().len(), 1_500);
}

/// A subscriber whose cursor this instance cannot continue from gets the whole live list, and
/// only its last event carries a cursor: one cut off part-way keeps its old Last-Event-ID and
/// is sent the whole list again, never the rest of it as if it had seen the start.
#[tokio::test]
async fn the_whole_list_is_a_resume_point_only_at_its_end() {
    let s = TestServer::new().await;
    let rs = register(&s, "read").await;
    for i in 0..3 {
        s.state
            .record_revocation(Revocation::Token {
                jti: format!("old{i}"),
                expires_at: s.state.now().plus(600),
            })
            .await
            .unwrap();
    }
    let mut body = s
        .open(
            Req::get("/v1/revocations/stream")
                .header("authorization", rs.basic())
                .header("last-event-id", "another-instance-9"),
        )
        .await
        .into_body();
    let mut buf = String::new();
    let mut ids = Vec::new();
    let mut jtis = Vec::new();
    for _ in 0..3 {
        let (id, data) = next_event(&mut body, &mut buf, Duration::from_secs(2))
            .await
            .unwrap();
        ids.push(id);
        jtis.push(data["jti"].as_str().unwrap().to_owned());
    }
    jtis.sort();
    assert_eq!(jtis, ["old0", "old1", "old2"]);
    assert!(ids[0].is_none() && ids[1].is_none(), "{ids:?}");
    let cursor = ids[2]
        .clone()
        .expect("the last event of the whole list carries the cursor");
    // Resuming from it: nothing is replayed; the next live revocation follows.
    drop(body);
    let mut resumed = s
        .open(
            Req::get("/v1/revocations/stream")
                .header("authorization", rs.basic())
                .header("last-event-id", &cursor),
        )
        .await
        .into_body();
    s.state
        .record_revocation(Revocation::Token {
            jti: "new".into(),
            expires_at: s.state.now().plus(600),
        })
        .await
        .unwrap();
    let mut rbuf = String::new();
    let (id, data) = next_event(&mut resumed, &mut rbuf, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(data["jti"], "new");
    assert!(id.is_some());
}

/// Issuance racing the deletion of its client: four connections take `client_credentials`
/// tokens over and over while an admin deletes the client under them. Whichever way each race
/// goes, once the deletion has answered no token of the client is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_issued_while_the_client_is_deleted_all_die_with_it() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let s = Arc::new(TestServer::new().await);
    let c = Arc::new(register(&s, "read").await);
    let watcher = register(&s, "read").await;
    let issued = Arc::new(AtomicUsize::new(0));
    let issuers: Vec<_> = (0..4)
        .map(|_| {
            let (s, c, issued) = (Arc::clone(&s), Arc::clone(&c), Arc::clone(&issued));
            tokio::spawn(async move {
                let mut tokens = Vec::new();
                loop {
                    let r = client_token(&s, &c, None).await;
                    if r.status != StatusCode::OK {
                        assert_invalid_client(&r);
                        return tokens;
                    }
                    tokens.push(r.json()["access_token"].as_str().unwrap().to_owned());
                    issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    // Memory-store calls never wait: let the other tasks in.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    while issued.load(Ordering::SeqCst) < 20 {
        tokio::task::yield_now().await;
    }
    let id = ClientId::parse(&c.id).unwrap();
    assert!(
        service::delete_client(&s.state, &id, &service::Actor::Operator)
            .await
            .unwrap()
    );
    let mut tokens = Vec::new();
    for task in issuers {
        tokens.extend(task.await.unwrap());
    }
    for token in &tokens {
        assert_eq!(
            introspect(&s, &watcher, token).await.json()["active"],
            false
        );
    }
    println!(
        "{} tokens issued while the deletion raced them; all dead after it",
        tokens.len()
    );
}

/// A deletion whose store write fails after the revocation was recorded: the admin gets an
/// error, the client is still registered, and the retry finishes the job.
#[tokio::test]
async fn a_deletion_failing_half_way_is_finished_by_its_retry() {
    let store = crate::faulty_store::FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    let c = register(&s, "read").await;
    let watcher = register(&s, "read").await;
    let token = client_token(&s, &c, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = ClientId::parse(&c.id).unwrap();
    store.fail("delete_client");
    assert!(
        service::delete_client(&s.state, &id, &service::Actor::Operator)
            .await
            .is_err()
    );
    store.heal();
    // The first revocation stood: the old token is already dead.
    assert_eq!(
        introspect(&s, &watcher, &token).await.json()["active"],
        false
    );
    assert!(
        service::delete_client(&s.state, &id, &service::Actor::Operator)
            .await
            .unwrap()
    );
    assert_invalid_client(&client_token(&s, &c, None).await);
}
