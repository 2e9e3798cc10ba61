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

/// 75 password-grant logins with the old password, released together with a password change
/// by a barrier: whatever each login answered, none of its tokens works afterwards. (Before
/// the credential epoch, 4 refresh families of 75 survived and kept minting JWTs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_racing_a_password_change_all_die() {
    // Throttling and load shedding are not under test here: let all 75 logins reach their
    // password check, and the change its hash (with the default queue of 16, the change's
    // new-password check and hash could be refused `503 overloaded` behind the logins).
    let s = Arc::new(
        TestServer::with_config(|c| {
            c.login_limit_per_account = 1000;
            c.hashing_queue = 100;
        })
        .await,
    );
    s.register("alice", PASSWORD).await;
    let owner = s.password_grant("alice", PASSWORD).await;
    let barrier = Arc::new(Barrier::new(76));
    let logins: Vec<_> = (0..75)
        .map(|_| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.password_grant_raw("alice", PASSWORD).await
            })
        })
        .collect();
    let change = {
        let (s, barrier, access) = (s.clone(), barrier.clone(), owner.access.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            s.send(Req::post("/v1/password").bearer(&access).json(&json!({
                "current_password": PASSWORD, "new_password": NEW_PASSWORD,
            })))
            .await
        })
    };
    let mut issued = Vec::new();
    for l in logins {
        let r = l.await.unwrap();
        if r.status == StatusCode::OK {
            issued.push(app_tokens(&r));
        }
    }
    assert_eq!(change.await.unwrap().status, StatusCode::NO_CONTENT);
    let mut alive = 0;
    for t in &issued {
        if s.userinfo_bearer(&t.access).await.status == StatusCode::OK {
            alive += 1;
        }
        if s.refresh_raw(&t.refresh).await.status == StatusCode::OK {
            alive += 1;
        }
    }
    assert_eq!(
        alive,
        0,
        "{} logins answered 200; their tokens must all be dead",
        issued.len()
    );
}
