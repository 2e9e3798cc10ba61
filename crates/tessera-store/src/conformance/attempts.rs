//! Checks of [`crate::AttemptCounter`]: exact counts under concurrent hits, and refunds that
//! never go below zero nor open a window.

use std::sync::Arc;

use super::id;
use crate::AttemptCounter;

/// The window every check opens: long enough never to close during a run.
const WINDOW: i64 = 600;
/// Concurrent hits in the race check.
const RACERS: u32 = 64;

/// A fresh key of `kind`, so runs on one shared backend never meet.
fn key(kind: &str) -> String {
    format!("conformance:{kind}:{}", id())
}

pub(super) async fn concurrent_hits_get_distinct_counts<A: AttemptCounter + ?Sized>(a: &Arc<A>) {
    let k = key("race");
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS as usize));
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (a, barrier, k) = (Arc::clone(a), Arc::clone(&barrier), k.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            a.hit(&k, WINDOW).await.unwrap().0
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=RACERS).collect::<Vec<_>>(),
        "each count exactly once"
    );
    assert_eq!(a.peek(&k).await.unwrap().0, RACERS);
}

pub(super) async fn refund_takes_back_one_never_below_zero<A: AttemptCounter + ?Sized>(a: &Arc<A>) {
    let k = key("refund");
    a.hit(&k, WINDOW).await.unwrap();
    a.hit(&k, WINDOW).await.unwrap();
    a.refund(&k).await.unwrap();
    let (count, left) = a.peek(&k).await.unwrap();
    assert_eq!(count, 1);
    assert!(left > 0 && left <= WINDOW, "left {left}");
    for _ in 0..3 {
        a.refund(&k).await.unwrap();
    }
    assert_eq!(a.peek(&k).await.unwrap().0, 0);
    // The window is still the one opened by the first hit.
    let (count, left) = a.hit(&k, WINDOW).await.unwrap();
    assert_eq!(count, 1, "counting restarts from zero, not below");
    assert!(left > 0 && left <= WINDOW, "left {left}");
}

pub(super) async fn concurrent_refunds_stop_at_zero<A: AttemptCounter + ?Sized>(a: &Arc<A>) {
    let k = key("refunds");
    for _ in 0..4 {
        a.hit(&k, WINDOW).await.unwrap();
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (a, barrier, k) = (Arc::clone(a), Arc::clone(&barrier), k.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            a.refund(&k).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(a.peek(&k).await.unwrap().0, 0);
    assert_eq!(a.hit(&k, WINDOW).await.unwrap().0, 1);
}

pub(super) async fn refund_without_a_window_opens_none<A: AttemptCounter + ?Sized>(a: &Arc<A>) {
    let k = key("none");
    a.refund(&k).await.unwrap();
    assert_eq!(a.peek(&k).await.unwrap(), (0, 0));
    // Had the refund left a counter behind (at -1, or without expiry), this would not be a
    // fresh window of one attempt.
    let (count, left) = a.hit(&k, 5).await.unwrap();
    assert_eq!(count, 1);
    assert!(left > 0 && left <= 5, "left {left}");
    a.reset(&k).await.unwrap();
}
