//! Checks of [`crate::AuditStore`].

use std::sync::Arc;

use tessera_core::audit::EventKind;
use tessera_core::time::UnixTime;

use super::{NOW, id};
use crate::{AuditEvent, AuditQuery, Store};

fn event(user: &str, kind: EventKind, at: UnixTime, detail: &str) -> AuditEvent {
    AuditEvent {
        at,
        kind,
        user: Some(user.to_owned()),
        ip: Some("192.0.2.7".into()),
        detail: detail.to_owned(),
    }
}

fn query(user: &str) -> AuditQuery {
    AuditQuery {
        user: Some(user.to_owned()),
        limit: 100,
        ..AuditQuery::default()
    }
}

/// Events come back whole, newest first; each filter narrows, and together they all apply.
pub(super) async fn append_and_filter<S: Store + ?Sized>(s: &Arc<S>) {
    let (alice, bob) = (id(), id());
    let appended = [
        event(&alice, EventKind::Login, NOW, "cookie"),
        event(&alice, EventKind::LoginFailed, NOW.plus(10), "bad_password"),
        event(&bob, EventKind::Login, NOW.plus(20), "password_grant"),
        event(&alice, EventKind::Logout, NOW.plus(30), ""),
    ];
    for e in &appended {
        s.append_event(e).await.unwrap();
    }
    let mine = s.events(&query(&alice)).await.unwrap();
    let got: Vec<_> = mine.iter().map(|r| r.event.clone()).collect();
    assert_eq!(
        got,
        [&appended[3], &appended[1], &appended[0]].map(AuditEvent::clone)
    );
    assert!(mine.windows(2).all(|w| w[0].seq > w[1].seq), "{mine:?}");
    let logins = AuditQuery {
        kind: Some(EventKind::Login),
        ..query(&alice)
    };
    assert_eq!(
        s.events(&logins).await.unwrap()[0].event,
        appended[0],
        "kind and user together"
    );
    assert_eq!(s.events(&logins).await.unwrap().len(), 1);
    let since = AuditQuery {
        since: Some(NOW.plus(10)),
        ..query(&alice)
    };
    let recent: Vec<_> = s.events(&since).await.unwrap();
    assert_eq!(recent.len(), 2, "since is inclusive");
    assert_eq!(s.events(&query(&id())).await.unwrap(), []);
    // An event of no user, and one with no address, round-trip too.
    let key = AuditEvent {
        at: NOW,
        kind: EventKind::KeyRotated,
        user: None,
        ip: None,
        detail: format!("kid {}", id()),
    };
    s.append_event(&key).await.unwrap();
    let keys = AuditQuery {
        kind: Some(EventKind::KeyRotated),
        limit: 500,
        ..AuditQuery::default()
    };
    assert!(
        s.events(&keys)
            .await
            .unwrap()
            .iter()
            .any(|r| r.event == key)
    );
}

/// Paging by `before` walks the log newest first without gaps or repeats, even while new
/// events arrive; the limit is capped.
pub(super) async fn paging_is_stable<S: Store + ?Sized>(s: &Arc<S>) {
    let user = id();
    for i in 0..7 {
        s.append_event(&event(&user, EventKind::Login, NOW, &format!("{i}")))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .events(&AuditQuery {
                before,
                limit: 3,
                ..query(&user)
            })
            .await
            .unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        before = Some(last.seq);
        seen.extend(page.iter().map(|r| r.event.detail.clone()));
        // A newer event arriving mid-walk does not shift the pages still to come.
        s.append_event(&event(&user, EventKind::Logout, NOW, "new"))
            .await
            .unwrap();
    }
    assert_eq!(seen, ["6", "5", "4", "3", "2", "1", "0"]);
    let none = AuditQuery {
        limit: 0,
        ..query(&user)
    };
    assert!(s.events(&none).await.unwrap().is_empty());
    let huge = AuditQuery {
        limit: u32::MAX,
        ..query(&user)
    };
    assert_eq!(s.events(&huge).await.unwrap().len(), 7 + 3);
}

/// Pruning deletes exactly the events older than the cutoff.
pub(super) async fn prune_removes_only_older<S: Store + ?Sized>(s: &Arc<S>) {
    // Far from every other check's times, so concurrent runs on one store stay apart.
    let base = UnixTime(1_000_000);
    let user = id();
    for at in [base, base.plus(5), base.plus(10)] {
        s.append_event(&event(&user, EventKind::Admin, at, "x"))
            .await
            .unwrap();
    }
    let pruned = s.prune_events(base.plus(5)).await.unwrap();
    assert!(pruned >= 1, "{pruned}");
    let left: Vec<_> = s
        .events(&query(&user))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event.at)
        .collect();
    assert_eq!(left, [base.plus(10), base.plus(5)]);
}
