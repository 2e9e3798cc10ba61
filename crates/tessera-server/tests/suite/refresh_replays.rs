//! Security finding 4: the grace window gives a lost response back once, never a live refresh
//! token to whoever else holds the previous one; each replay is logged and counted.

use std::sync::atomic::Ordering;

use axum::http::StatusCode;

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
