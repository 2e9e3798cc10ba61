//! What a flow leaves behind when its store fails half-way: nothing spent, nothing revived,
//! never a 200 for something that did not happen.

use axum::http::StatusCode;

use crate::authorization_code::{VERIFIER, app, code_for, grant, redeem};
use crate::clients_oauth::{introspect, register};
use crate::common::*;
use crate::faulty_store::FaultyStore;

/// Security finding 3: a logout whose clean-up failed (503) must not come back to life once
/// the access-token horizon has passed — the revocation lives as long as the session could.
#[tokio::test]
async fn half_failed_logout_stays_dead_for_the_sessions_whole_life() {
    let store = FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    let c = user_with_cookie(&s, "alice").await;
    store.fail("revoke_families_of_session");
    let r = s.send(Req::delete("/v1/session").browser(&c)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    store.heal();
    assert_eq!(s.session_status(&c.token).await, StatusCode::UNAUTHORIZED);
    // Past the access horizon (630 s) and well within the session's own life (7 days,
    // 12 h idle), with expired revocations pruned as the upkeep task does.
    for step in [631, 3600, 6 * 3600] {
        s.advance_and_reload_revocations(step).await;
        assert_eq!(
            s.session_status(&c.token).await,
            StatusCode::UNAUTHORIZED,
            "+{step} s"
        );
    }
}

/// Past the budget of lasting session revocations (finding 8) the session row's deletion is
/// the commit point: a logout whose clean-up fails is a 503 that leaves the session for the
/// retry, and the retried logout stays dead past the access horizon.
#[tokio::test]
async fn a_logout_past_the_revocation_budget_that_fails_is_finished_by_its_retry() {
    let store = FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |c| c.revocations_per_user = 0).await;
    let c = user_with_cookie(&s, "alice").await;
    store.fail("delete_session");
    let r = s.send(Req::delete("/v1/session").browser(&c)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    store.heal();
    assert_eq!(s.session_status(&c.token).await, StatusCode::OK);
    let r = s.send(Req::delete("/v1/session").browser(&c)).await;
    assert!(r.status.is_success(), "{}", r.text());
    s.advance_and_reload_revocations(631).await;
    assert_eq!(s.session_status(&c.token).await, StatusCode::UNAUTHORIZED);
}

/// Security finding 7: a refresh that fails after the store gave way must not have spent the
/// token: the retry with the same token, after the grace window, succeeds and is not reuse.
#[tokio::test]
async fn refresh_failing_on_the_session_store_does_not_spend_the_token() {
    let store = FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    s.register("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    for failing in [
        "session_by_id",
        "user_by_id",
        "touch_session",
        "family_by_token",
    ] {
        store.fail(failing);
        s.advance(120); // due a touch, and past any grace window
        let r = s.refresh_raw(&app.refresh).await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{failing}: {}",
            r.text()
        );
        store.heal();
    }
    s.advance(120);
    let next = s.refresh(&app.refresh).await;
    assert_eq!(s.userinfo_bearer(&next.access).await.status, StatusCode::OK);
    assert_eq!(s.refresh_raw(&next.refresh).await.status, StatusCode::OK);
}

/// Security finding 7, for a registered app's refresh token: nothing the grant reads after
/// `rotate` (the commit) may fail it, or the 503 would leave the app holding a spent token
/// whose retry is reuse. A read that fails before the commit is a 503 the retry recovers from.
#[tokio::test]
async fn an_apps_refresh_is_never_failed_by_the_store_after_its_commit() {
    let store = FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    let spa = app(&s, true, false).await;
    let (_, code) = code_for(&s, &spa, "ada").await;
    let r = redeem(&s, &spa, &code, VERIFIER).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut refresh = r.json()["refresh_token"].as_str().unwrap().to_owned();
    let by_app = |token: &str| {
        Req::post("/oauth/token").form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", spa.id.as_str()),
        ])
    };
    let reads = [
        "client",
        "family_by_token",
        "session_by_id",
        "touch_session",
        "user_by_id",
    ];
    for read in reads {
        store.fail(read);
        let r = s.send(by_app(&refresh)).await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{read}: {}",
            r.text()
        );
        store.heal();
        s.advance(120); // due a touch, and past any grace window

        store.fail_after("rotate", read);
        let r = s.send(by_app(&refresh)).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{read} after the commit: {}",
            r.text()
        );
        store.heal();
        refresh = r.json()["refresh_token"].as_str().unwrap().to_owned();
        s.advance(120);
    }
    assert_eq!(s.send(by_app(&refresh)).await.status, StatusCode::OK);
}

/// Security finding 7's one deliberate exception: a code is spent before anything else (single
/// use, RFC 6749 §4.1.2). A store failure after the redemption is a 503; the retry is refused
/// as a used code, which ends only the unfinished session that code was opening: the user's
/// own session lives, and a new authorization gives the app working tokens.
#[tokio::test]
async fn a_code_redemption_failing_after_its_commit_costs_one_new_authorization() {
    let store = FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    let spa = app(&s, true, false).await;
    let (mut browser, code) = code_for(&s, &spa, "ada").await;
    store.fail_after("redeem_code", "create_family");
    let r = redeem(&s, &spa, &code, VERIFIER).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    store.heal();
    let r = redeem(&s, &spa, &code, VERIFIER).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.error_code(), "invalid_grant");
    assert_eq!(browser.get(&s, "/account").await.status, StatusCode::OK);
    let tokens = grant(&s, &spa, &mut browser).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(s.userinfo_bearer(access).await.status, StatusCode::OK);
}

/// Security finding 9: with the feed and the store down, `/oauth/revoke` of an access JWT
/// cannot know the token's state and must not answer 200 for a revocation it did not make.
#[tokio::test]
async fn revoking_a_jwt_while_revocations_cannot_be_checked_is_503() {
    let store = FaultyStore::with_dead_feed();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    s.register("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    store.fail("revocations");
    let r = s.revoke(&app.access).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    store.heal();
    assert_eq!(s.userinfo_bearer(&app.access).await.status, StatusCode::OK);
    assert_eq!(s.revoke(&app.access).await.status, StatusCode::OK);
    assert_eq!(
        s.userinfo_bearer(&app.access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// Security finding 11: while the feed is down, a key revoked in the store must stop
/// verifying at once, not at the next key-ring reload.
#[tokio::test]
async fn a_key_revoked_while_the_feed_is_down_stops_verifying_at_once() {
    let store = FaultyStore::with_dead_feed();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    s.register("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    assert_eq!(s.userinfo_bearer(&app.access).await.status, StatusCode::OK);
    let kid = jwt_part(&app.access, 0)["kid"].as_str().unwrap().to_owned();
    use tessera_core::keys::KeyStatus;
    use tessera_store::KeyStore;
    assert!(
        store
            .set_key_status(&kid, KeyStatus::Current, KeyStatus::Revoked, s.state.now())
            .await
            .unwrap()
    );
    assert_eq!(
        s.userinfo_bearer(&app.access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// Finding 7's audit, reuse detection: `rotate` commits the family's revocation, then the
/// cascade to the session tree fails (503). A later presentation of a token of that revoked
/// family must finish the cascade — not just be refused while the session and its access
/// tokens live on.
#[tokio::test]
async fn reuse_detected_while_the_cascade_fails_is_finished_by_the_next_attempt() {
    let store = FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    s.register("alice", PASSWORD).await;
    let r0 = s.password_grant("alice", PASSWORD).await;
    let r1 = s.refresh(&r0.refresh).await;
    s.advance(60); // past the grace window: presenting r0 again is reuse
    store.fail("add_revocation");
    let r = s.refresh_raw(&r0.refresh).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    store.heal();
    let r = s.refresh_raw(&r0.refresh).await;
    assert_eq!(r.error_code(), "invalid_grant");
    assert_eq!(
        s.userinfo_bearer(&r1.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.refresh_raw(&r1.refresh).await.status,
        StatusCode::BAD_REQUEST
    );
}

/// A password change whose store gives way right after the new hash is written must not leave
/// the old sessions alive: the client's retry cannot redo it (its `current_password` is no
/// longer current), so a stolen session would outlive the change. The old sessions are
/// revoked before the hash changes.
#[tokio::test]
async fn a_password_change_failing_after_the_new_hash_leaves_no_old_session() {
    let store = FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    let owner = user_with_cookie(&s, "alice").await;
    let thief = s.password_grant("alice", PASSWORD).await;
    store.fail_after("set_password_hash", "sessions_of_user");
    store.fail_after("set_password_hash", "bump_credential_epoch");
    let r = s
        .send(Req::post("/v1/password").browser(&owner).json(
            &serde_json::json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
        ))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    store.heal();
    assert_eq!(
        s.userinfo_bearer(&thief.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.refresh_raw(&thief.refresh).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.session_status(&owner.token).await,
        StatusCode::UNAUTHORIZED
    );
}

/// While the feed is down, a client deleted on another instance (its cutoff only in the
/// store) ends the tokens issued to it for users at once: the store lookup asks for the
/// token's client as well as its subject.
#[tokio::test]
async fn a_client_deleted_elsewhere_while_the_feed_is_down_ends_its_users_tokens() {
    use tessera_core::revocation::Revocation;
    use tessera_server::service::ACCESS_TOKEN_TYPE;
    use tessera_store::RevocationStore;

    const API: &str = "https://api.example";
    let store = FaultyStore::with_dead_feed();
    let s = TestServer::with_store(store.clone(), |c| {
        c.exchange_audiences = vec![API.to_owned()];
    })
    .await;
    let app = register(&s, "read").await;
    let watcher = register(&s, "read").await;
    s.register("alice", PASSWORD).await;
    let own = s.password_grant("alice", PASSWORD).await.access;
    let r = s
        .send(
            Req::post("/oauth/token")
                .header("authorization", app.basic())
                .form(&[
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    ),
                    ("subject_token", own.as_str()),
                    ("subject_token_type", ACCESS_TOKEN_TYPE),
                    ("audience", API),
                ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let held = r.json()["access_token"].as_str().unwrap().to_owned();
    let active = |token: String| {
        let (s, watcher) = (&s, &watcher);
        async move {
            introspect(s, watcher, &token).await.json()["active"]
                .as_bool()
                .unwrap()
        }
    };
    assert!(active(held.clone()).await);
    // Another instance deletes the client: its cutoff reaches this one only through the store.
    let now = s.state.now();
    store
        .add_revocation(&Revocation::User {
            user_id: app.id.clone(),
            not_before: now.plus(1),
            expires_at: now.plus(3600),
        })
        .await
        .unwrap();
    assert!(!active(held).await, "the client's cutoff was not looked up");
    assert!(active(own).await, "the user's own token was ended too");
}
