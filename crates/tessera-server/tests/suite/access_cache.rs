//! Attacks on the cache of verified access tokens (`AppState::access_cache`, used by
//! `auth::verify_jwt`): a cached token must be refused exactly when full verification plus
//! the revocation check would refuse it, and the cache must stay within its capacity.

use std::sync::Arc;

use axum::http::StatusCode;
use tessera_core::keys::KeyStatus;
use tessera_core::revocation::Revocation;
use tessera_server::service;
use tokio::sync::Barrier;

use crate::common::*;

/// A server with alice's app tokens, whose access token has been used once (so it is cached).
async fn cached() -> (TestServer, AppTokens) {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    assert_eq!(s.userinfo_bearer(&app.access).await.status, StatusCode::OK);
    assert!(s.state.access_cache().contains(&app.access));
    (s, app)
}

fn kid_of(jwt: &str) -> String {
    jwt_part(jwt, 0)["kid"].as_str().unwrap().to_owned()
}

/// Replaces one character of `token` at `at` with another base64url character.
fn one_byte_off(token: &str, at: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn a_reused_token_is_answered_from_the_cache_with_the_same_claims() {
    let (s, app) = cached().await;
    let first = s.userinfo_bearer(&app.access).await;
    let again = s.userinfo_bearer(&app.access).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.json(), again.json());
    assert_eq!(s.state.access_cache().len(), 1);
}

#[tokio::test]
async fn a_token_one_byte_away_from_a_cached_one_is_verified_from_scratch_and_refused() {
    let (s, app) = cached().await;
    let signature = app.access.rfind('.').unwrap() + 1;
    let payload = app.access.find('.').unwrap() + 1;
    for at in [signature, signature + 20, payload + 5, 3] {
        let forged = one_byte_off(&app.access, at);
        let r = s.userinfo_bearer(&forged).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "byte {at}");
        assert!(!s.state.access_cache().contains(&forged));
    }
    assert_eq!(s.userinfo_bearer(&app.access).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_cached_token_is_refused_after_its_jti_is_revoked() {
    let (s, app) = cached().await;
    assert_eq!(s.revoke(&app.access).await.status, StatusCode::OK);
    assert_eq!(
        s.userinfo_bearer(&app.access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_cached_token_is_refused_after_its_session_is_revoked() {
    let (s, app) = cached().await;
    let sid = jwt_part(&app.access, 1)["sid"].as_str().unwrap().to_owned();
    service::revoke_session_tree(&s.state, &sid).await.unwrap();
    assert_eq!(
        s.userinfo_bearer(&app.access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_cached_token_is_refused_after_its_user_is_signed_out_everywhere() {
    let (s, app) = cached().await;
    let sub = jwt_part(&app.access, 1)["sub"].as_str().unwrap().to_owned();
    // The cutoff is `now`; a token issued in the same second is not before it, so move on.
    s.advance(1);
    service::revoke_user(&s.state, &sub, None).await.unwrap();
    assert_eq!(
        s.userinfo_bearer(&app.access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_key_is_revoked() {
    let (s, app) = cached().await;
    let kid = kid_of(&app.access);
    s.state
        .record_revocation(Revocation::Key {
            kid,
            expires_at: s.state.now().plus(3600),
        })
        .await
        .unwrap();
    // Before any key-ring reload: the revocation list alone stops it.
    assert_eq!(
        s.userinfo_bearer(&app.access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_cached_token_is_refused_once_its_key_is_retired_and_the_ring_reloaded() {
    let (s, app) = cached().await;
    let kid = kid_of(&app.access);
    assert!(
        s.state
            .store()
            .set_key_status(&kid, KeyStatus::Current, KeyStatus::Retired, s.state.now())
            .await
            .unwrap()
    );
    s.state.reload_keys().await.unwrap();
    assert!(s.state.key_ring().verifier(&kid).is_none());
    assert_eq!(
        s.userinfo_bearer(&app.access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let (s, app) = cached().await;
    let exp = jwt_part(&app.access, 1)["exp"].as_i64().unwrap();
    let leeway = s.state.config().leeway_secs;
    // The last second it is valid (with leeway), then the first it is not.
    s.advance(exp + leeway - s.state.now().0 - 1);
    assert_eq!(s.userinfo_bearer(&app.access).await.status, StatusCode::OK);
    s.advance(1);
    assert_eq!(
        s.userinfo_bearer(&app.access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_burst_of_distinct_tokens_never_grows_the_cache_past_its_capacity() {
    const CAPACITY: usize = 32;
    let s = TestServer::with_config(|c| c.access_cache_capacity = CAPACITY).await;
    assert_eq!(s.state.access_cache().capacity(), CAPACITY);
    s.register("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    let sid = jwt_part(&app.access, 1)["sid"].as_str().unwrap().to_owned();
    let sub = jwt_part(&app.access, 1)["sub"].as_str().unwrap().to_owned();
    for n in 0..3 * CAPACITY {
        let jwt = service::issue_access(
            &s.state,
            &sub,
            Some("alice"),
            Some(&sid),
            None,
            service::FIRST_PARTY_CLIENT,
            None,
        )
        .unwrap();
        assert_eq!(s.userinfo_bearer(&jwt).await.status, StatusCode::OK, "#{n}");
        assert!(s.state.access_cache().len() <= CAPACITY);
    }
    assert!(!s.state.access_cache().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_token_all_agree() {
    const REQUESTS: usize = 16;
    let (s, app) = cached().await;
    let s = Arc::new(s);
    // Released together on a multi-thread runtime, every request with the cached token gets
    // the same answer; after its revocation, every one is refused.
    let barrier = Arc::new(Barrier::new(REQUESTS));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (s, barrier, jwt) = (Arc::clone(&s), Arc::clone(&barrier), app.access.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let r = s.userinfo_bearer(&jwt).await;
                (r.status, r.json())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let (status, body) = &answers[0];
    assert_eq!(*status, StatusCode::OK);
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(body["sub"], jwt_part(&app.access, 1)["sub"]);

    assert_eq!(s.revoke(&app.access).await.status, StatusCode::OK);
    let barrier = Arc::new(Barrier::new(REQUESTS));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (s, barrier, jwt) = (Arc::clone(&s), Arc::clone(&barrier), app.access.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.userinfo_bearer(&jwt).await.status
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
}
