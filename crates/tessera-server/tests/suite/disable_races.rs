//! Disabling a user races everything the user holds: a burst of requests with their cookie,
//! JWT and refresh token, and logins with their password, released together with the disable
//! by a barrier. Afterwards nothing of theirs works — not the old credentials, and not any
//! credential a racing request was handed.

use std::sync::Arc;

use axum::http::StatusCode;
use tokio::sync::Barrier;

use crate::admin_users::admin;
use crate::common::*;

/// Throttling and load shedding are not under test: every racer reaches its check.
async fn server() -> Arc<TestServer> {
    Arc::new(
        TestServer::with_config(|c| {
            c.login_limit_per_account = 1000;
            c.login_limit_per_ip = 1000;
            c.hashing_queue = 200;
        })
        .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_users_credentials_die_at_once_even_racing_the_disable() {
    let s = server().await;
    let (_, root) = admin(&s, "root").await;
    let id = s.register("alice", PASSWORD).await;
    let browser = s.login("alice", PASSWORD).await;
    let apps: Vec<AppTokens> =
        futures_util::future::join_all((0..4).map(|_| s.password_grant("alice", PASSWORD))).await;
    const RACERS: usize = 48;
    let barrier = Arc::new(Barrier::new(RACERS + 1));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (s, barrier, browser) = (s.clone(), barrier.clone(), browser.clone());
            let app = apps[i % apps.len()].clone();
            tokio::spawn(async move {
                barrier.wait().await;
                match i % 3 {
                    0 => (s.session_status(&browser.token).await, None),
                    1 => (s.userinfo_bearer(&app.access).await.status, None),
                    _ => {
                        let r = s.refresh_raw(&app.refresh).await;
                        let handed = (r.status == StatusCode::OK).then(|| app_tokens(&r));
                        (r.status, handed)
                    }
                }
            })
        })
        .collect();
    let disable = {
        let (s, barrier, root) = (s.clone(), barrier.clone(), root.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            s.send(Req::post(&format!("/v1/admin/users/{id}/disable")).bearer(&root))
                .await
        })
    };
    let mut handed = Vec::new();
    for r in racers {
        let (status, tokens) = r.await.unwrap();
        assert!(
            [
                StatusCode::OK,
                StatusCode::UNAUTHORIZED,
                StatusCode::BAD_REQUEST
            ]
            .contains(&status),
            "{status}"
        );
        handed.extend(tokens);
    }
    let r = disable.await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // The moment the disable answered, everything is refused: old and newly handed alike.
    assert_eq!(
        s.session_status(&browser.token).await,
        StatusCode::UNAUTHORIZED
    );
    for t in apps.iter().chain(&handed) {
        assert_eq!(
            s.userinfo_bearer(&t.access).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            s.refresh_raw(&t.refresh).await.error_code(),
            "invalid_grant"
        );
    }
    let sessions = s
        .state
        .store()
        .sessions_of_user(
            &s.state
                .store()
                .user_by_name("alice")
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    assert!(sessions.is_empty(), "{sessions:?}");
}

/// 60 logins with the right password — cookie logins and password grants — released with the
/// disable: whatever each answered, no session of the user is left, and no token works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_racing_a_disable_never_leave_a_live_session() {
    let s = server().await;
    let (_, root) = admin(&s, "root").await;
    let id = s.register("alice", PASSWORD).await;
    const LOGINS: usize = 60;
    let barrier = Arc::new(Barrier::new(LOGINS + 1));
    let logins: Vec<_> = (0..LOGINS)
        .map(|i| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                if i % 2 == 0 {
                    let r = s.login_raw("alice", PASSWORD).await;
                    (r.status == StatusCode::CREATED).then(|| (Some(cookie_session(&r)), None))
                } else {
                    let r = s.password_grant_raw("alice", PASSWORD).await;
                    (r.status == StatusCode::OK).then(|| (None, Some(app_tokens(&r))))
                }
            })
        })
        .collect();
    let disable = {
        let (s, barrier, root, id) = (s.clone(), barrier.clone(), root.clone(), id.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            s.send(Req::post(&format!("/v1/admin/users/{id}/disable")).bearer(&root))
                .await
        })
    };
    let mut won = Vec::new();
    for l in logins {
        won.extend(l.await.unwrap());
    }
    assert_eq!(disable.await.unwrap().status, StatusCode::OK);
    let mut alive = 0;
    for (cookie, app) in &won {
        if let Some(c) = cookie {
            alive += usize::from(s.session_status(&c.token).await == StatusCode::OK);
        }
        if let Some(t) = app {
            alive += usize::from(s.userinfo_bearer(&t.access).await.status == StatusCode::OK);
            alive += usize::from(s.refresh_raw(&t.refresh).await.status == StatusCode::OK);
        }
    }
    assert_eq!(
        alive,
        0,
        "{} logins succeeded before the disable; none may live",
        won.len()
    );
    assert!(
        s.state
            .store()
            .sessions_of_user(&id)
            .await
            .unwrap()
            .is_empty()
    );
    let listed = s
        .send(Req::get(&format!("/v1/admin/users/{id}/sessions")).bearer(&root))
        .await;
    assert_eq!(listed.json()["sessions"].as_array().unwrap().len(), 0);
    assert_eq!(
        s.login_raw("alice", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}
