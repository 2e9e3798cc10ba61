//! Checks of [`crate::RefreshStore`], including rotation races between real tasks.

use std::sync::Arc;

use tessera_core::opaque::{OpaqueToken, TokenHash, TokenKind};
use tessera_core::refresh::{RefreshFamily, open_successor, seal_successor};
use tessera_core::time::UnixTime;

use super::{NOW, id, token};
use crate::{RotateOutcome, Store, Successor};

pub(super) const GRACE: i64 = 10;
/// Concurrent callers in the race checks.
const RACERS: usize = 16;

pub(super) fn family(now: UnixTime, lifetime: i64) -> RefreshFamily {
    RefreshFamily {
        id: id(),
        user_id: id(),
        sid: id(),
        client_id: Some("conformance-client".into()),
        scope: Some("openid profile".into()),
        created_at: now,
        expires_at: now.plus(lifetime),
        generation: 0,
        rotated_at: None,
        sealed_successor: None,
        revoked_at: None,
        jkt: None,
    }
}

/// A new family with its generation-0 token.
async fn new_family<S: Store + ?Sized>(s: &Arc<S>) -> (RefreshFamily, OpaqueToken, TokenHash) {
    let f = family(NOW, 3600);
    let (t, h) = token(TokenKind::Refresh);
    s.create_family(&f, &h).await.unwrap();
    (f, t, h)
}

/// A successor for `previous`, really sealed under it.
pub(super) fn successor(previous: &OpaqueToken) -> (OpaqueToken, Successor) {
    let (next, hash) = token(TokenKind::Refresh);
    let sealed = seal_successor(previous, &next).unwrap();
    (next, Successor { hash, sealed })
}

/// Rotates `presented` expecting `Rotated`; returns the new token and its hash.
async fn rotate_ok<S: Store + ?Sized>(
    s: &Arc<S>,
    presented: &OpaqueToken,
    now: UnixTime,
) -> (OpaqueToken, TokenHash) {
    let (next, succ) = successor(presented);
    let outcome = s
        .rotate(&presented.hash(), now, GRACE, &succ)
        .await
        .unwrap();
    assert!(matches!(outcome, RotateOutcome::Rotated(_)), "{outcome:?}");
    (next, succ.hash)
}

async fn is_revoked<S: Store + ?Sized>(s: &Arc<S>, h: &TokenHash) -> bool {
    s.family_by_token(h)
        .await
        .unwrap()
        .unwrap()
        .0
        .revoked_at
        .is_some()
}

pub(super) async fn current_token_rotates<S: Store + ?Sized>(s: &Arc<S>) {
    let (_, t0, _) = new_family(s).await;
    let (_, succ) = successor(&t0);
    let outcome = s
        .rotate(&t0.hash(), NOW.plus(5), GRACE, &succ)
        .await
        .unwrap();
    let RotateOutcome::Rotated(after) = outcome else {
        panic!("expected Rotated, got {outcome:?}")
    };
    assert_eq!(after.generation, 1);
    assert_eq!(after.rotated_at, Some(NOW.plus(5)));
    assert_eq!(
        after.sealed_successor.as_deref(),
        Some(succ.sealed.as_slice())
    );
    assert_eq!(after.revoked_at, None);
    assert_eq!(
        s.family_by_token(&succ.hash).await.unwrap(),
        Some((after, 1))
    );
}

pub(super) async fn previous_token_within_grace_gets_same_successor<S: Store + ?Sized>(s: &Arc<S>) {
    let (_, t0, _) = new_family(s).await;
    let (t1, _) = rotate_ok(s, &t0, NOW).await;
    let (_, other) = successor(&t0);
    let outcome = s
        .rotate(&t0.hash(), NOW.plus(GRACE - 1), GRACE, &other)
        .await
        .unwrap();
    let RotateOutcome::GraceRetry { family, sealed } = outcome else {
        panic!("expected GraceRetry, got {outcome:?}")
    };
    assert_eq!(family.generation, 1);
    assert_eq!(
        open_successor(&t0, &sealed).unwrap(),
        t1,
        "the same successor, not a new one"
    );
    assert_eq!(
        s.family_by_token(&other.hash).await.unwrap(),
        None,
        "the retry's offer is not stored"
    );
    assert!(!is_revoked(s, &t1.hash()).await);
}

pub(super) async fn previous_token_after_grace_is_reuse<S: Store + ?Sized>(s: &Arc<S>) {
    let (_, t0, _) = new_family(s).await;
    let (t1, _) = rotate_ok(s, &t0, NOW).await;
    let (_, other) = successor(&t0);
    let outcome = s
        .rotate(&t0.hash(), NOW.plus(GRACE), GRACE, &other)
        .await
        .unwrap();
    let RotateOutcome::Reused(family) = outcome else {
        panic!("expected Reused, got {outcome:?}")
    };
    assert_eq!(family.revoked_at, Some(NOW.plus(GRACE)));
    assert!(is_revoked(s, &t1.hash()).await);
}

pub(super) async fn after_reuse_even_current_token_is_refused<S: Store + ?Sized>(s: &Arc<S>) {
    let (_, t0, _) = new_family(s).await;
    let (t1, _) = rotate_ok(s, &t0, NOW).await;
    let (_, a) = successor(&t0);
    assert!(matches!(
        s.rotate(&t0.hash(), NOW.plus(100), GRACE, &a)
            .await
            .unwrap(),
        RotateOutcome::Reused(_)
    ));
    let (_, b) = successor(&t1);
    assert_eq!(
        s.rotate(&t1.hash(), NOW.plus(101), GRACE, &b)
            .await
            .unwrap(),
        RotateOutcome::Refused
    );
    assert_eq!(s.family_by_token(&b.hash).await.unwrap(), None);
}

pub(super) async fn older_generation_is_reuse<S: Store + ?Sized>(s: &Arc<S>) {
    let (_, t0, _) = new_family(s).await;
    let (t1, _) = rotate_ok(s, &t0, NOW).await;
    let (t2, _) = rotate_ok(s, &t1, NOW.plus(1)).await;
    assert_eq!(s.family_by_token(&t2.hash()).await.unwrap().unwrap().1, 2);
    // Generation 0 is two behind: reuse even inside the grace window.
    let (_, a) = successor(&t0);
    assert!(matches!(
        s.rotate(&t0.hash(), NOW.plus(2), GRACE, &a).await.unwrap(),
        RotateOutcome::Reused(_)
    ));
    assert!(is_revoked(s, &t2.hash()).await);
}

pub(super) async fn unknown_token_is_refused<S: Store + ?Sized>(s: &Arc<S>) {
    let (t, h) = token(TokenKind::Refresh);
    let (_, succ) = successor(&t);
    assert_eq!(
        s.rotate(&h, NOW, GRACE, &succ).await.unwrap(),
        RotateOutcome::Refused
    );
    assert_eq!(s.family_by_token(&h).await.unwrap(), None);
    assert_eq!(s.family_by_token(&succ.hash).await.unwrap(), None);
}

pub(super) async fn expired_family_is_refused<S: Store + ?Sized>(s: &Arc<S>) {
    let (f, t0, h0) = new_family(s).await;
    let (_, succ) = successor(&t0);
    assert_eq!(
        s.rotate(&h0, f.expires_at, GRACE, &succ).await.unwrap(),
        RotateOutcome::Refused
    );
    let (stored, generation) = s.family_by_token(&h0).await.unwrap().unwrap();
    assert_eq!((stored, generation), (f, 0), "nothing changed");
}

pub(super) async fn zero_grace_makes_retry_reuse<S: Store + ?Sized>(s: &Arc<S>) {
    let (_, t0, _) = new_family(s).await;
    let (next, succ) = successor(&t0);
    assert!(matches!(
        s.rotate(&t0.hash(), NOW, 0, &succ).await.unwrap(),
        RotateOutcome::Rotated(_)
    ));
    let (_, again) = successor(&t0);
    assert!(matches!(
        s.rotate(&t0.hash(), NOW, 0, &again).await.unwrap(),
        RotateOutcome::Reused(_)
    ));
    assert!(is_revoked(s, &next.hash()).await);
}

pub(super) async fn revoke_family_refuses_its_tokens<S: Store + ?Sized>(s: &Arc<S>) {
    let (f, t0, h0) = new_family(s).await;
    s.revoke_family(&f.id, NOW.plus(1)).await.unwrap();
    s.revoke_family(&f.id, NOW.plus(2)).await.unwrap();
    assert_eq!(
        s.family_by_token(&h0).await.unwrap().unwrap().0.revoked_at,
        Some(NOW.plus(1)),
        "first revocation kept"
    );
    let (_, succ) = successor(&t0);
    assert_eq!(
        s.rotate(&h0, NOW.plus(3), GRACE, &succ).await.unwrap(),
        RotateOutcome::Refused
    );
    s.revoke_family(&id(), NOW).await.unwrap();
}

pub(super) async fn revoke_families_of_session_spares_others<S: Store + ?Sized>(s: &Arc<S>) {
    let sid = id();
    let mut hashes = Vec::new();
    for _ in 0..2 {
        let mut f = family(NOW, 3600);
        f.sid.clone_from(&sid);
        let (_, h) = token(TokenKind::Refresh);
        s.create_family(&f, &h).await.unwrap();
        hashes.push(h);
    }
    let (_, _, other) = new_family(s).await;
    s.revoke_families_of_session(&sid, NOW.plus(1))
        .await
        .unwrap();
    for h in &hashes {
        assert!(is_revoked(s, h).await);
    }
    assert!(!is_revoked(s, &other).await);
}

pub(super) async fn family_by_token_reports_generations<S: Store + ?Sized>(s: &Arc<S>) {
    let (f, t0, h0) = new_family(s).await;
    assert_eq!(s.family_by_token(&h0).await.unwrap(), Some((f.clone(), 0)));
    let (t1, h1) = rotate_ok(s, &t0, NOW).await;
    let (_, h2) = rotate_ok(s, &t1, NOW.plus(1)).await;
    for (h, generation) in [(h0, 0), (h1, 1), (h2, 2)] {
        let (stored, g) = s.family_by_token(&h).await.unwrap().unwrap();
        assert_eq!(
            (stored.id.as_str(), stored.generation, g),
            (f.id.as_str(), 2, generation)
        );
    }
}

pub(super) async fn delete_expired_families_removes_tokens<S: Store + ?Sized>(s: &Arc<S>) {
    let far = UnixTime(3_500_000_000);
    let old = family(far, 100);
    let young = family(far, 10_000);
    let (t_old, h_old) = token(TokenKind::Refresh);
    let (_, h_young) = token(TokenKind::Refresh);
    s.create_family(&old, &h_old).await.unwrap();
    s.create_family(&young, &h_young).await.unwrap();
    let (_, h_old1) = rotate_ok(s, &t_old, far.plus(1)).await;
    let deleted = s.delete_expired_families(old.expires_at).await.unwrap();
    assert!(deleted >= 1, "deleted {deleted}");
    assert_eq!(s.family_by_token(&h_old).await.unwrap(), None);
    assert_eq!(s.family_by_token(&h_old1).await.unwrap(), None);
    assert!(s.family_by_token(&h_young).await.unwrap().is_some());
}

pub(super) async fn duplicate_first_token_conflicts<S: Store + ?Sized>(s: &Arc<S>) {
    let (_, _, h) = new_family(s).await;
    let f = family(NOW, 3600);
    assert!(s.create_family(&f, &h).await.is_err());
    assert_ne!(s.family_by_token(&h).await.unwrap().unwrap().0.id, f.id);
}

/// The sealed successor the store holds for the family of `h`.
async fn stored_successor<S: Store + ?Sized>(s: &Arc<S>, h: &TokenHash) -> Option<Vec<u8>> {
    s.family_by_token(h)
        .await
        .unwrap()
        .unwrap()
        .0
        .sealed_successor
}

pub(super) async fn second_replay_within_grace_is_reuse<S: Store + ?Sized>(s: &Arc<S>) {
    let (_, t0, _) = new_family(s).await;
    let (t1, h1) = rotate_ok(s, &t0, NOW).await;
    let (_, a) = successor(&t0);
    let outcome = s.rotate(&t0.hash(), NOW.plus(1), GRACE, &a).await.unwrap();
    let RotateOutcome::GraceRetry { family, sealed } = outcome else {
        panic!("expected GraceRetry, got {outcome:?}")
    };
    assert_eq!(open_successor(&t0, &sealed).unwrap(), t1);
    assert_eq!(family.sealed_successor, None);
    assert_eq!(
        stored_successor(s, &h1).await,
        None,
        "the single replay spent the sealed successor"
    );
    let (_, b) = successor(&t0);
    let outcome = s.rotate(&t0.hash(), NOW.plus(2), GRACE, &b).await.unwrap();
    let RotateOutcome::Reused(family) = outcome else {
        panic!("expected Reused, got {outcome:?}")
    };
    assert_eq!(family.revoked_at, Some(NOW.plus(2)));
    assert!(is_revoked(s, &h1).await);
}

pub(super) async fn replay_after_the_successor_was_used_is_reuse<S: Store + ?Sized>(s: &Arc<S>) {
    let (_, t0, _) = new_family(s).await;
    let (t1, _) = rotate_ok(s, &t0, NOW).await;
    let (_, h2) = rotate_ok(s, &t1, NOW.plus(1)).await;
    let (_, a) = successor(&t0);
    assert!(matches!(
        s.rotate(&t0.hash(), NOW.plus(2), GRACE, &a).await.unwrap(),
        RotateOutcome::Reused(_)
    ));
    assert!(is_revoked(s, &h2).await);
}

pub(super) async fn sweep_clears_successors_past_the_window<S: Store + ?Sized>(s: &Arc<S>) {
    let far = UnixTime(3_600_000_000);
    let mut hashes = Vec::new();
    // Rotated at `far` (window passed at `far + GRACE`), at `far + 1` (still open), and at
    // `far + 1` but then revoked.
    for rotated_at in [far, far.plus(1), far.plus(1)] {
        let f = family(far, 10_000);
        let (t0, h0) = token(TokenKind::Refresh);
        s.create_family(&f, &h0).await.unwrap();
        let (_, h1) = rotate_ok(s, &t0, rotated_at).await;
        assert!(stored_successor(s, &h1).await.is_some());
        hashes.push((f.id, h1));
    }
    s.revoke_family(&hashes[2].0, far.plus(2)).await.unwrap();
    let cleared = s
        .clear_stale_successors(far.plus(GRACE), GRACE)
        .await
        .unwrap();
    assert!(cleared >= 2, "cleared {cleared}");
    assert_eq!(
        stored_successor(s, &hashes[0].1).await,
        None,
        "window passed"
    );
    assert!(
        stored_successor(s, &hashes[1].1).await.is_some(),
        "window still open"
    );
    assert_eq!(stored_successor(s, &hashes[2].1).await, None, "revoked");
    // Without a grace window nothing is kept.
    s.clear_stale_successors(far.plus(GRACE), 0).await.unwrap();
    assert_eq!(stored_successor(s, &hashes[1].1).await, None);
}

/// Spawns [`RACERS`] tasks presenting `presented` at once, each offering its own successor.
async fn race<S: Store + ?Sized>(
    s: &Arc<S>,
    presented: &OpaqueToken,
    grace: i64,
) -> Vec<(Successor, RotateOutcome)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (s, barrier, hash) = (Arc::clone(s), Arc::clone(&barrier), presented.hash());
        let (_, succ) = successor(presented);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let outcome = s.rotate(&hash, NOW.plus(1), grace, &succ).await.unwrap();
            (succ, outcome)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// Racers presenting the current token at once: one rotates; of the others, who all present
/// what is then the previous token, at most one gets the grace retry (the winner's successor)
/// and the rest are reuse — or refused, once that reuse has revoked the family.
pub(super) async fn concurrent_rotation_with_grace_has_one_winner<S: Store + ?Sized>(s: &Arc<S>) {
    let (_, t0, _) = new_family(s).await;
    let results = race(s, &t0, GRACE).await;
    let winners: Vec<&Successor> = results
        .iter()
        .filter(|(_, o)| matches!(o, RotateOutcome::Rotated(_)))
        .map(|(succ, _)| succ)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = winners[0];
    let mut retries = 0;
    for (_, outcome) in &results {
        match outcome {
            RotateOutcome::Rotated(family) => assert_eq!(family.generation, 1),
            RotateOutcome::GraceRetry { sealed, .. } => {
                retries += 1;
                assert_eq!(sealed, &winner.sealed);
            }
            RotateOutcome::Reused(_) | RotateOutcome::Refused => {}
        }
    }
    assert!(retries <= 1, "{results:?}");
    let (stored, generation) = s.family_by_token(&winner.hash).await.unwrap().unwrap();
    assert_eq!((stored.generation, generation), (1, 1));
    // Sixteen racers: after the one rotation and the one retry, the third is reuse.
    assert!(stored.revoked_at.is_some(), "{results:?}");
}

pub(super) async fn concurrent_rotation_without_grace_revokes<S: Store + ?Sized>(s: &Arc<S>) {
    let (_, t0, h0) = new_family(s).await;
    let results = race(s, &t0, 0).await;
    let count = |pred: fn(&RotateOutcome) -> bool| results.iter().filter(|(_, o)| pred(o)).count();
    assert_eq!(
        count(|o| matches!(o, RotateOutcome::Rotated(_))),
        1,
        "{results:?}"
    );
    assert!(
        count(|o| matches!(o, RotateOutcome::Reused(_))) >= 1,
        "{results:?}"
    );
    assert_eq!(
        count(|o| matches!(
            o,
            RotateOutcome::Rotated(_) | RotateOutcome::Reused(_) | RotateOutcome::Refused
        )),
        RACERS,
        "{results:?}"
    );
    assert!(is_revoked(s, &h0).await);
}

/// Racers presenting the *previous* token at once, within grace: exactly one gets the grace
/// retry; the rest are reuse (or refused, once that reuse has revoked the family).
pub(super) async fn concurrent_replays_get_one_grace_retry<S: Store + ?Sized>(s: &Arc<S>) {
    let (_, t0, _) = new_family(s).await;
    let (t1, h1) = rotate_ok(s, &t0, NOW).await;
    let results = race(s, &t0, GRACE).await;
    let tally = |pred: fn(&RotateOutcome) -> bool| results.iter().filter(|(_, o)| pred(o)).count();
    let retries = tally(|o| matches!(o, RotateOutcome::GraceRetry { .. }));
    let reuses = tally(|o| matches!(o, RotateOutcome::Reused(_)));
    let refusals = tally(|o| matches!(o, RotateOutcome::Refused));
    assert_eq!((retries, reuses + refusals), (1, RACERS - 1), "{results:?}");
    assert!(reuses >= 1, "{results:?}");
    for (_, outcome) in &results {
        if let RotateOutcome::GraceRetry { sealed, .. } = outcome {
            assert_eq!(open_successor(&t0, sealed).unwrap(), t1);
        }
    }
    assert!(is_revoked(s, &h1).await);
    assert_eq!(stored_successor(s, &h1).await, None);
}

/// Racers split between two handles on one backing store (two server instances): each of five
/// rounds has exactly one winner and at most one grace retry, which gets the winner's
/// successor.
pub(super) async fn rotation_is_atomic_across<A: Store + ?Sized, B: Store + ?Sized>(
    a: &Arc<A>,
    b: &Arc<B>,
) {
    for round in 0..5 {
        let (_, presented, hash) = new_family(a).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            let (_, succ) = successor(&presented);
            let barrier = Arc::clone(&barrier);
            let (a, b) = (Arc::clone(a), Arc::clone(b));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let outcome = if i % 2 == 0 {
                    a.rotate(&hash, NOW.plus(1), GRACE, &succ).await
                } else {
                    b.rotate(&hash, NOW.plus(1), GRACE, &succ).await
                };
                outcome.unwrap()
            }));
        }
        let (mut rotated, mut retried) = (0, 0);
        let mut sealed = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                RotateOutcome::Rotated(f) => {
                    rotated += 1;
                    sealed.push(f.sealed_successor.unwrap());
                }
                RotateOutcome::GraceRetry { sealed: s, .. } => {
                    retried += 1;
                    sealed.push(s);
                }
                // One retry per rotation: the racers after it are reuse, then refused.
                RotateOutcome::Reused(_) | RotateOutcome::Refused => {}
            }
        }
        assert_eq!(rotated, 1, "round {round}");
        assert!(retried <= 1, "round {round}: {retried} retries");
        assert!(
            sealed.windows(2).all(|w| w[0] == w[1]),
            "round {round}: successors differ"
        );
    }
}
