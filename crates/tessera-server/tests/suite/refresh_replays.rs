//! Security finding 4: the grace window gives a lost response back once, never a live refresh
//! token to whoever else holds the previous one; each replay is logged and counted.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use tessera_core::opaque::{OpaqueToken, TokenKind};

use crate::common::*;

#[tokio::test]
async fn the_previous_refresh_token_replays_once_and_is_counted() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let r0 = s.password_grant("alice", PASSWORD).await;
    let r1 = s.refresh(&r0.refresh).await;
    s.advance(3);
    // The client that lost the response gets the same successor back, once.
    let replay = s.refresh(&r0.refresh).await;
    assert_eq!(replay.refresh, r1.refresh);
    assert_eq!(
        s.state
            .metrics()
            .refresh_grace_replays
            .load(Ordering::Relaxed),
        1
    );
    let metrics = s.send(Req::get("/metrics")).await.text();
    assert!(
        metrics.contains("tessera_refresh_grace_replays_total 1"),
        "{metrics}"
    );
    // A thief replaying the stolen previous token again: reuse, and the tree dies.
    let r = s.refresh_raw(&r0.refresh).await;
    assert_eq!(r.error_code(), "invalid_grant");
    assert_eq!(
        s.refresh_raw(&r1.refresh).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.userinfo_bearer(&replay.access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// Security finding 4: a database dump plus a leaked previous-generation token must not yield
/// the current refresh token offline — the server's own sweep clears the sealed successor
/// once the grace window has passed.
#[tokio::test]
async fn the_sweep_clears_the_sealed_successor_after_the_grace_window() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let r0 = s.password_grant("alice", PASSWORD).await;
    let r1 = s.refresh(&r0.refresh).await;
    let current = OpaqueToken::parse(TokenKind::Refresh, &r1.refresh)
        .unwrap()
        .hash();
    let sealed = || async {
        let (family, _) = s
            .state
            .store()
            .family_by_token(&current)
            .await
            .unwrap()
            .unwrap();
        family.sealed_successor.is_some()
    };
    assert!(sealed().await, "sealed while a replay may still come");
    s.advance(s.state.config().refresh_grace_secs + 1);
    // The first maintenance tick sweeps.
    let upkeep = s.state.spawn_maintenance(Duration::from_secs(3600));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sealed().await {
        assert!(tokio::time::Instant::now() < deadline, "never cleared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    upkeep.abort();
    // The current token itself still works: only its sealed copy is gone.
    let r2 = s.refresh(&r1.refresh).await;
    assert_eq!(s.userinfo_bearer(&r2.access).await.status, StatusCode::OK);
}
