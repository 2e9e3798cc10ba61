//! Checks of what DPoP needs from a store: [`crate::ReplayStore`] (first use wins, also
//! under a real race) and the key binding of a refresh family.

use std::sync::Arc;

use tessera_core::opaque::TokenKind;
use tessera_core::refresh::RefreshFamily;
use tokio::sync::Barrier;

use super::refresh::{GRACE, family, successor};
use super::{NOW, id, token};
use crate::{RotateOutcome, Store};

/// Concurrent callers in the race check.
const RACERS: usize = 16;

pub(crate) async fn first_use_wins_and_keys_are_independent<S: Store + ?Sized>(s: &Arc<S>) {
    let (a, b) = (id(), id());
    assert!(s.remember_once(&a, NOW.plus(60), NOW).await.unwrap());
    assert!(!s.remember_once(&a, NOW.plus(60), NOW).await.unwrap());
    assert!(
        !s.remember_once(&a, NOW.plus(120), NOW.plus(30))
            .await
            .unwrap()
    );
    assert!(s.remember_once(&b, NOW.plus(60), NOW).await.unwrap());
}

/// A sweep before a marker's expiry keeps it: the key is still refused afterwards.
pub(crate) async fn sweep_keeps_live_markers<S: Store + ?Sized>(s: &Arc<S>) {
    let key = id();
    assert!(s.remember_once(&key, NOW.plus(60), NOW).await.unwrap());
    s.forget_expired(NOW.plus(30)).await.unwrap();
    assert!(
        !s.remember_once(&key, NOW.plus(90), NOW.plus(30))
            .await
            .unwrap()
    );
}

pub(crate) async fn concurrent_callers_have_one_winner<S: Store + ?Sized>(s: &Arc<S>) {
    let key = Arc::new(id());
    let barrier = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (s, key, barrier) = (Arc::clone(s), Arc::clone(&key), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                s.remember_once(&key, NOW.plus(60), NOW).await.unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one caller may be first");
}

/// A family bound to a DPoP key keeps the binding on every read and through rotation.
pub(crate) async fn binding_key_is_kept_through_rotation<S: Store + ?Sized>(s: &Arc<S>) {
    let bound = RefreshFamily {
        jkt: Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into()),
        ..family(NOW, 3600)
    };
    let (t, h) = token(TokenKind::Refresh);
    s.create_family(&bound, &h).await.unwrap();
    let (read, _) = s.family_by_token(&h).await.unwrap().unwrap();
    assert_eq!(read.jkt, bound.jkt);
    let (next, succ) = successor(&t);
    match s.rotate(&h, NOW, GRACE, &succ).await.unwrap() {
        RotateOutcome::Rotated(f) => assert_eq!(f.jkt, bound.jkt),
        other => panic!("{other:?}"),
    }
    let (read, generation) = s.family_by_token(&next.hash()).await.unwrap().unwrap();
    assert_eq!((read.jkt, generation), (bound.jkt, 1));
}
