//! A reload of the revocation list (after a feed reconnect) is built on a copy off the lock
//! and swapped in: revocations that arrive while it is built must survive the swap.

use std::sync::Arc;

use tessera_core::revocation::Revocation;
use tessera_core::time::UnixTime;
use tessera_server::revocations::RevocationView;
use tessera_store::RevocationStore;
use tessera_store::memory::MemoryStore;
use tokio::sync::Barrier;

const NOW: UnixTime = UnixTime(1_700_000_000);

fn session(n: usize) -> Revocation {
    Revocation::Session {
        sid: format!("reloaded-{n}"),
        expires_at: NOW.plus(600),
    }
}

/// Reloads of a 20,000-entry list race 2,000 revocations applied one by one (as the feed
/// applies them), released together: every one of both is in the list afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_arriving_during_a_reload_survive_the_swap() {
    const STORED: usize = 20_000;
    const LIVE: usize = 2_000;
    let store = Arc::new(MemoryStore::new());
    for n in 0..STORED {
        store.add_revocation(&session(n)).await.unwrap();
    }
    let view = Arc::new(RevocationView::new(true));
    let barrier = Arc::new(Barrier::new(2));
    let reloader = {
        let (view, barrier, store) = (Arc::clone(&view), Arc::clone(&barrier), Arc::clone(&store));
        tokio::spawn(async move {
            barrier.wait().await;
            for _ in 0..5 {
                view.reload(store.as_ref(), NOW).await.unwrap();
            }
        })
    };
    let inserter = {
        let (view, barrier) = (Arc::clone(&view), Arc::clone(&barrier));
        tokio::spawn(async move {
            barrier.wait().await;
            for n in 0..LIVE {
                view.insert(&Revocation::Token {
                    jti: format!("live-{n}"),
                    expires_at: NOW.plus(600),
                });
                if n % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    reloader.await.unwrap();
    inserter.await.unwrap();
    assert_eq!(view.len(), STORED + LIVE);
    let store_dyn: &dyn tessera_store::Store = store.as_ref();
    for n in (0..STORED).step_by(997) {
        let sid = format!("reloaded-{n}");
        assert!(
            view.is_session_revoked(store_dyn, &sid, "u", NOW)
                .await
                .unwrap()
        );
    }
}
