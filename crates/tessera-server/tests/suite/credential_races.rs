//! Security finding 2: logins in flight racing an action that ends all of a user's
//! credentials (password change, sign out everywhere) must not leave a session behind.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use tokio::sync::Barrier;

use crate::common::*;
use crate::faulty_store::FaultyStore;

/// The reset lands exactly between the password check and the session: the login fails and
/// leaves nothing that works — for the cookie login and the password grant alike.
#[tokio::test]
async fn a_login_overtaken_by_a_credential_reset_leaves_no_session() {
    let store = FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    s.register("alice", PASSWORD).await;

    store.reset_credentials_before_next_session();
    let r = s.login_raw("alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.header("set-cookie").is_none());

    store.reset_credentials_before_next_session();
    let r = s.password_grant_raw("alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.error_code(), "invalid_grant");

    let probe = s.password_grant("alice", PASSWORD).await;
    let r = s.send(Req::get("/v1/sessions").bearer(&probe.access)).await;
    assert_eq!(
        r.json()["sessions"].as_array().unwrap().len(),
        1,
        "only the probe's session"
    );
}

/// How many logins race each credential reset.
const RACERS: usize = 75;

/// How many times a race may be run before it must have overlapped its action. A round
/// takes a fraction of a second (test hashing is cheap), and on two cores over half of the
/// password-change rounds end with every login answered before the change lands (its own
/// hashing queues behind theirs), which proves nothing about the race: 20 rounds make a
/// spurious failure about a one-in-20,000 event.
const ROUNDS: usize = 20;

/// A server with alice registered. Throttling and load shedding are not under test: every
/// login reaches its password check, and the reset its hashing (with the default queue of 16,
/// a password change's new-password check and hash could be refused `503 overloaded` behind
/// the logins).
async fn race_server() -> Arc<TestServer> {
    let s = TestServer::with_config(|c| {
        c.login_limit_per_account = 1000;
        c.hashing_queue = 100;
    })
    .await;
    s.register("alice", PASSWORD).await;
    Arc::new(s)
}

/// [`RACERS`] password-grant logins as alice, released by one barrier together with
/// `action`: every login's answer, by number, and the action's result.
async fn race_logins<T, F>(s: &Arc<TestServer>, action: F) -> (Vec<Resp>, T)
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS + 1));
    let logins: Vec<_> = (0..RACERS)
        .map(|_| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.password_grant_raw("alice", PASSWORD).await
            })
        })
        .collect();
    let action = tokio::spawn(async move {
        barrier.wait().await;
        action.await
    });
    let mut answers = Vec::new();
    for l in logins {
        answers.push(l.await.unwrap());
    }
    (answers, action.await.unwrap())
}

/// Whether anything a login was issued still works: its access JWT or its refresh token.
async fn alive(s: &TestServer, tokens: &AppTokens) -> bool {
    let access = s.userinfo_bearer(&tokens.access).await.status == StatusCode::OK;
    let refresh = s.refresh_raw(&tokens.refresh).await.status == StatusCode::OK;
    access || refresh
}

/// The logins answered 200, by number, with their tokens.
fn issued(answers: &[Resp]) -> Vec<(usize, AppTokens)> {
    answers
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == StatusCode::OK)
        .map(|(i, r)| (i, app_tokens(r)))
        .collect()
}

/// 75 password-grant logins with the old password, released by a barrier together with a
/// password change: whatever each login answered, none of its tokens works afterwards. (Before
/// the credential epoch, 4 refresh families of 75 survived and kept minting JWTs.) A round
/// counts only if the change landed among the logins: some answered 200, some were refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_racing_a_password_change_all_die() {
    for _ in 0..ROUNDS {
        let s = race_server().await;
        let owner = s.password_grant("alice", PASSWORD).await;
        let change = {
            let s = s.clone();
            async move {
                s.send(
                    Req::post("/v1/password")
                        .bearer(&owner.access)
                        .json(&json!({
                            "current_password": PASSWORD, "new_password": NEW_PASSWORD,
                        })),
                )
                .await
            }
        };
        let (answers, change) = race_logins(&s, change).await;
        assert_eq!(change.status, StatusCode::NO_CONTENT, "{}", change.text());
        let issued = issued(&answers);
        for (i, tokens) in &issued {
            assert!(!alive(&s, tokens).await, "login {i} outlived the change");
        }
        if !issued.is_empty() && issued.len() < RACERS {
            return;
        }
    }
    panic!("in {ROUNDS} rounds the password change never landed among the logins");
}
