//! Races on one session, for the invariant that makes a lookup by token safe however a
//! backend spreads a session over its storage: once `delete_session` has returned, no lookup
//! by token finds the session, and no touch brings it back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Barrier;

use super::sessions::browser;
use super::{NOW, id};
use crate::Store;

/// Rounds per race: each is a fresh session, so a lost race in one does not hide the others.
const ROUNDS: usize = 20;

/// Readers looking a session up by token while it is deleted: every lookup that starts after
/// the delete returned finds nothing.
pub(super) async fn deleted_session_is_never_found_by_token_afterwards<S: Store + ?Sized>(
    s: &Arc<S>,
) {
    const READERS: usize = 3;
    for _ in 0..ROUNDS {
        let session = browser(&id(), NOW);
        let hash = session.token_hash.unwrap();
        s.create_session(&session).await.unwrap();
        let deleted = Arc::new(AtomicBool::new(false));
        let barrier = Arc::new(Barrier::new(READERS + 1));
        let mut readers = Vec::new();
        for _ in 0..READERS {
            let (s, deleted, barrier) = (Arc::clone(s), Arc::clone(&deleted), Arc::clone(&barrier));
            readers.push(tokio::spawn(async move {
                barrier.wait().await;
                let mut lookups = 0u32;
                loop {
                    let after_delete = deleted.load(Ordering::SeqCst);
                    let found = s.session_by_token(&hash).await.unwrap();
                    lookups += 1;
                    if after_delete {
                        assert_eq!(found, None, "found by token after its delete returned");
                        return lookups;
                    }
                }
            }));
        }
        barrier.wait().await;
        assert_eq!(
            s.delete_session(&session.id).await.unwrap().map(|d| d.id),
            Some(session.id.clone())
        );
        deleted.store(true, Ordering::SeqCst);
        for reader in readers {
            assert!(reader.await.unwrap() >= 1);
        }
        assert_eq!(s.session_by_token(&hash).await.unwrap(), None);
    }
}

/// Touches racing a delete of the same session: afterwards the session is gone by token, by
/// id and from its user's list — a touch that lost the race re-created nothing.
pub(super) async fn touch_racing_delete_does_not_resurrect<S: Store + ?Sized>(s: &Arc<S>) {
    const TOUCHERS: usize = 2;
    const TOUCHES: i64 = 10;
    for _ in 0..ROUNDS {
        let session = browser(&id(), NOW);
        let hash = session.token_hash.unwrap();
        s.create_session(&session).await.unwrap();
        let barrier = Arc::new(Barrier::new(TOUCHERS + 1));
        let mut touchers = Vec::new();
        for _ in 0..TOUCHERS {
            let (s, barrier, sid) = (Arc::clone(s), Arc::clone(&barrier), session.id.clone());
            touchers.push(tokio::spawn(async move {
                barrier.wait().await;
                for i in 1..=TOUCHES {
                    s.touch_session(&sid, NOW.plus(i)).await.unwrap();
                }
            }));
        }
        barrier.wait().await;
        let deleted = s.delete_session(&session.id).await.unwrap();
        assert_eq!(deleted.map(|d| d.id), Some(session.id.clone()));
        for toucher in touchers {
            toucher.await.unwrap();
        }
        assert_eq!(s.session_by_token(&hash).await.unwrap(), None);
        assert_eq!(s.session_by_id(&session.id).await.unwrap(), None);
        assert!(
            s.sessions_of_user(&session.user_id)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.delete_session(&session.id).await.unwrap(), None);
    }
}
