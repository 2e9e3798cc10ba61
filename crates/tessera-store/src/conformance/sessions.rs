//! Checks of [`crate::SessionStore`].

use std::sync::Arc;

use tessera_core::opaque::TokenKind;
use tessera_core::session::{Session, SessionKind, SessionPolicy};
use tessera_core::time::UnixTime;

use super::{NOW, id, token};
use crate::Store;

pub(super) fn browser(user_id: &str, now: UnixTime) -> Session {
    let (_, hash) = token(TokenKind::Session);
    Session::new(
        id(),
        Some(hash),
        user_id.to_owned(),
        SessionKind::Browser,
        now,
        &SessionPolicy::default(),
    )
}

fn app(user_id: &str, now: UnixTime) -> Session {
    Session::new(
        id(),
        None,
        user_id.to_owned(),
        SessionKind::App,
        now,
        &SessionPolicy::default(),
    )
}

pub(super) async fn create_and_look_up<S: Store + ?Sized>(s: &Arc<S>) {
    let user = id();
    let mut b = browser(&user, NOW);
    b.user_agent = Some("Mozilla/5.0 (conformance)".into());
    b.ip = Some("192.0.2.7".into());
    s.create_session(&b).await.unwrap();
    let hash = b.token_hash.unwrap();
    assert_eq!(s.session_by_token(&hash).await.unwrap(), Some(b.clone()));
    assert_eq!(s.session_by_id(&b.id).await.unwrap(), Some(b.clone()));

    let mut a = app(&user, NOW);
    a.client_id = Some("tcl_the-app-it-was-granted-to".into());
    s.create_session(&a).await.unwrap();
    assert_eq!(s.session_by_id(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.sessions_of_user(&user).await.unwrap(), vec![b.clone(), a]);

    let (_, unknown) = token(TokenKind::Session);
    assert_eq!(s.session_by_token(&unknown).await.unwrap(), None);
    assert_eq!(s.session_by_id(&id()).await.unwrap(), None);
}

pub(super) async fn touch_records_last_seen<S: Store + ?Sized>(s: &Arc<S>) {
    let b = browser(&id(), NOW);
    s.create_session(&b).await.unwrap();
    s.touch_session(&b.id, NOW.plus(120)).await.unwrap();
    let back = s.session_by_id(&b.id).await.unwrap().unwrap();
    assert_eq!(back.last_seen, NOW.plus(120));
    assert_eq!(back.created_at, NOW);
    // Whatever a backend keeps for the lookup by token sees the touch too.
    let by_token = s.session_by_token(&b.token_hash.unwrap()).await.unwrap();
    assert_eq!(by_token, Some(back));
    s.touch_session(&id(), NOW).await.unwrap();
}

pub(super) async fn list_of_user_is_ordered_and_scoped<S: Store + ?Sized>(s: &Arc<S>) {
    let user = id();
    let other = id();
    // Inserted out of order: the list must come back oldest first.
    let third = browser(&user, NOW.plus(20));
    let first = app(&user, NOW);
    let second = browser(&user, NOW.plus(10));
    for session in [&third, &first, &second] {
        s.create_session(session).await.unwrap();
    }
    s.create_session(&browser(&other, NOW.plus(5)))
        .await
        .unwrap();
    assert_eq!(
        s.sessions_of_user(&user).await.unwrap(),
        vec![first, second, third]
    );
    assert_eq!(s.sessions_of_user(&other).await.unwrap().len(), 1);
    assert!(s.sessions_of_user(&id()).await.unwrap().is_empty());
}

pub(super) async fn delete_returns_the_session<S: Store + ?Sized>(s: &Arc<S>) {
    let b = browser(&id(), NOW);
    s.create_session(&b).await.unwrap();
    assert_eq!(s.delete_session(&b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(s.session_by_id(&b.id).await.unwrap(), None);
    assert_eq!(
        s.session_by_token(&b.token_hash.unwrap()).await.unwrap(),
        None
    );
    assert_eq!(s.delete_session(&b.id).await.unwrap(), None);
}

pub(super) async fn delete_dead_removes_only_dead<S: Store + ?Sized>(s: &Arc<S>) {
    // Far from NOW, so other checks' sessions are long dead by then or not yet in play.
    let start = UnixTime(3_000_000_000);
    let policy = SessionPolicy::default();
    let user = id();
    let sweep = start.plus(policy.browser_idle_secs);

    let idle_dead = browser(&user, start); // idle end == sweep
    let mut kept_alive = browser(&user, start);
    kept_alive.last_seen = start.plus(3600);
    let mut absolute_dead = browser(&user, start.plus(-policy.browser_absolute_secs));
    absolute_dead.last_seen = sweep.plus(-1);
    let young_app = app(&user, start);
    let old_app = app(&user, sweep.plus(-policy.app_absolute_secs));
    for session in [
        &idle_dead,
        &kept_alive,
        &absolute_dead,
        &young_app,
        &old_app,
    ] {
        s.create_session(session).await.unwrap();
    }
    for (session, dead) in [
        (&idle_dead, true),
        (&kept_alive, false),
        (&absolute_dead, true),
        (&young_app, false),
        (&old_app, true),
    ] {
        assert_eq!(
            session.dead_at(&policy) <= sweep,
            dead,
            "test data for {session:?}"
        );
    }

    let deleted = s.delete_dead_sessions(sweep, &policy).await.unwrap();
    assert!(deleted >= 3, "deleted {deleted}");
    let left: Vec<String> = s
        .sessions_of_user(&user)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(left, vec![kept_alive.id.clone(), young_app.id.clone()]);
    assert_eq!(
        s.session_by_token(&idle_dead.token_hash.unwrap())
            .await
            .unwrap(),
        None
    );
    for session in [&kept_alive, &young_app] {
        s.delete_session(&session.id).await.unwrap();
    }
}

pub(super) async fn count_follows_creates_and_deletes<S: Store + ?Sized>(s: &Arc<S>) {
    let before = s.count_sessions().await.unwrap();
    let user = id();
    let other = id();
    let a = browser(&user, NOW);
    let b = app(&user, NOW);
    let c = browser(&other, NOW);
    for session in [&a, &b, &c] {
        s.create_session(session).await.unwrap();
    }
    assert_eq!(s.count_sessions().await.unwrap(), before + 3);
    // A conflicting create adds nothing.
    assert!(s.create_session(&a).await.is_err());
    assert_eq!(s.count_sessions().await.unwrap(), before + 3);
    s.delete_session(&b.id).await.unwrap();
    assert_eq!(s.count_sessions().await.unwrap(), before + 2);
    for session in [&a, &c] {
        s.delete_session(&session.id).await.unwrap();
    }
    assert_eq!(s.count_sessions().await.unwrap(), before);
}
