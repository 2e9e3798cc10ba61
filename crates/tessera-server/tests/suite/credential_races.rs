//! Security finding 2: logins in flight racing an action that ends all of a user's
//! credentials (password change, sign out everywhere, an operator's revoke) must not leave a
//! session behind.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use tessera_server::service;
use tessera_store::UserStore;
use tokio::sync::Barrier;

use crate::common::*;
use crate::faulty_store::{FaultyStore, LOGIN};

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

/// A server over a [`FaultyStore`] (which records what each racing login read) with alice
/// registered. Throttling and load shedding are not under test: every login reaches its
/// password check, and the reset its hashing (with the default queue of 16, a password
/// change's new-password check and hash could be refused `503 overloaded` behind the logins).
async fn race_server() -> (Arc<TestServer>, Arc<FaultyStore>) {
    let store = FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |c| {
        c.login_limit_per_account = 1000;
        c.hashing_queue = 100;
    })
    .await;
    s.register("alice", PASSWORD).await;
    (Arc::new(s), store)
}

/// [`RACERS`] password-grant logins as alice, each in its [`LOGIN`] scope, released by one
/// barrier together with `action`, which starts once `after` logins have answered: every
/// login's answer, by number, and the action's result.
async fn race_logins<T, F>(s: &Arc<TestServer>, after: usize, action: F) -> (Vec<Resp>, T)
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS + 1));
    let (answered, mut watch) = tokio::sync::watch::channel(0);
    let answered = Arc::new(answered);
    let logins: Vec<_> = (0..RACERS)
        .map(|i| {
            let (s, barrier, answered) = (s.clone(), barrier.clone(), answered.clone());
            tokio::spawn(LOGIN.scope(i, async move {
                barrier.wait().await;
                let r = s.password_grant_raw("alice", PASSWORD).await;
                answered.send_modify(|n| *n += 1);
                r
            }))
        })
        .collect();
    let action = tokio::spawn(async move {
        barrier.wait().await;
        watch.wait_for(|n| *n >= after).await.unwrap();
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

/// Checks a race against a reset that leaves the password valid (sign out everywhere, an
/// operator's revoke): every login that read the credential epoch before the reset raised
/// it — verified before it — is dead, whatever it answered; those that began after it live.
/// Whether the round was a race: some logins that verified before the reset were answered
/// 200 (the reset's list of sessions must catch them) and some were refused (their own
/// check after creating the session must).
async fn check_reset_race(
    s: &TestServer,
    store: &FaultyStore,
    answers: &[Resp],
    epoch_before: i64,
) -> bool {
    let issued = issued(answers);
    let mut early_issued = 0;
    for (i, tokens) in &issued {
        let read = store
            .epoch_read_by(*i)
            .expect("each login looked its user up");
        let early = read == epoch_before;
        early_issued += usize::from(early);
        assert_eq!(
            alive(s, tokens).await,
            !early,
            "login {i} read epoch {read} (before the reset: {epoch_before})"
        );
    }
    early_issued > 0 && issued.len() < RACERS
}

/// 75 password-grant logins with the old password, released by a barrier together with a
/// password change: whatever each login answered, none of its tokens works afterwards. (Before
/// the credential epoch, 4 refresh families of 75 survived and kept minting JWTs.) A round
/// counts only if the change landed among the logins: some answered 200, some were refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_racing_a_password_change_all_die() {
    for _ in 0..ROUNDS {
        let (s, _) = race_server().await;
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
        let (answers, change) = race_logins(&s, 0, change).await;
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

/// "Sign out everywhere" (`DELETE /v1/sessions`) racing 75 logins with the (still valid)
/// password: every login that verified before it is dead afterwards, even one answered 200;
/// the caller's own session is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_racing_sign_out_everywhere_die_if_they_verified_before_it() {
    for _ in 0..ROUNDS {
        let (s, store) = race_server().await;
        let epoch_before = store
            .user_by_name("alice")
            .await
            .unwrap()
            .unwrap()
            .credential_epoch;
        let owner = s.password_grant("alice", PASSWORD).await;
        let sign_out = {
            let (s, access) = (s.clone(), owner.access.clone());
            async move { s.send(Req::delete("/v1/sessions").bearer(&access)).await }
        };
        let (answers, signed_out) = race_logins(&s, 1, sign_out).await;
        assert_eq!(signed_out.status, StatusCode::OK, "{}", signed_out.text());
        let raced = check_reset_race(&s, &store, &answers, epoch_before).await;
        assert_eq!(
            s.userinfo_bearer(&owner.access).await.status,
            StatusCode::OK,
            "the caller's session is kept"
        );
        if raced {
            return;
        }
    }
    panic!("in {ROUNDS} rounds the sign-out never landed among the logins");
}

/// The operator's "revoke every credential of this user" (`tessera users revoke`, the same
/// flow as the admin's) racing 75 logins: as for sign out everywhere, with nothing kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_racing_an_operators_revoke_die_if_they_verified_before_it() {
    for _ in 0..ROUNDS {
        let (s, store) = race_server().await;
        let alice = store.user_by_name("alice").await.unwrap().unwrap();
        let revoke = {
            let s = s.clone();
            async move {
                service::revoke_user_credentials(&s.state, &service::Actor::Operator, &alice.id)
                    .await
            }
        };
        let (answers, revoked) = race_logins(&s, 1, revoke).await;
        assert!(revoked.is_ok(), "{revoked:?}");
        if check_reset_race(&s, &store, &answers, alice.credential_epoch).await {
            return;
        }
    }
    panic!("in {ROUNDS} rounds the revoke never landed among the logins");
}
