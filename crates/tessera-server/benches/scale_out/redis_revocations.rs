//! The revocation list at 10⁶ entries in Redis: how long a full read takes (`revocations`,
//! what a feed reconnect or the periodic full reload of an instance runs), and what it costs
//! everyone else. Redis runs one command at a time for every client, so the figure that
//! matters is how long a session check of *another* instance (one `HGETALL`, through its own
//! connection) waits while the read runs, against the same checks with Redis otherwise idle.
//!
//! The list is filled through the store's own `add_revocation` (the script every revocation
//! takes, `PUBLISH` included), [`FILL_TASKS`] at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tessera_core::opaque::{OpaqueToken, TokenKind, random_id};
use tessera_core::revocation::Revocation;
use tessera_core::time::{Clock, SystemClock};
use tessera_store::redis::RedisStore;
use tessera_store::{RevocationStore, SessionStore};

/// Entries in the list.
const ENTRIES: usize = 1_000_000;
/// Concurrent tasks filling it (the store's connection multiplexes them).
const FILL_TASKS: usize = 64;
/// Full reads measured.
const READS: usize = 3;
const _: () = assert!(
    ENTRIES % FILL_TASKS == 0,
    "each filling task takes an equal share"
);

async fn fill(store: &Arc<RedisStore>) {
    let expires_at = SystemClock.now().plus(3_600);
    let mut tasks = Vec::with_capacity(FILL_TASKS);
    for _ in 0..FILL_TASKS {
        let share = ENTRIES / FILL_TASKS;
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                let r = Revocation::Token {
                    jti: random_id().unwrap(),
                    expires_at,
                };
                store.add_revocation(&r).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Runs `work` while another instance's store (`checker`) looks up a session in a loop, one
/// at a time; returns what `work` returned and the timings of the lookups made meanwhile.
async fn checked_while<T>(
    checker: &Arc<RedisStore>,
    work: impl Future<Output = T>,
) -> (T, Vec<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let looking = {
        let (checker, stop) = (Arc::clone(checker), Arc::clone(&stop));
        tokio::spawn(async move {
            let unknown = OpaqueToken::generate(TokenKind::Session).unwrap().hash();
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                checker.session_by_token(&unknown).await.unwrap();
                samples.push(t.elapsed());
            }
            samples
        })
    };
    let out = work.await;
    stop.store(true, Ordering::Relaxed);
    (out, looking.await.unwrap())
}

/// The whole figure over the Redis at `url` (skipped, with the reason, if it does not answer).
pub async fn run(url: &str) {
    let ns = format!(
        "bench_rev_{}",
        random_id().unwrap().to_lowercase().replace(['-', '_'], "")
    );
    let (store, checker) = match (
        RedisStore::connect(&[url.to_owned()], &ns).await,
        RedisStore::connect(&[url.to_owned()], &ns).await,
    ) {
        (Ok(a), Ok(b)) => (Arc::new(a), Arc::new(b)),
        (Err(e), _) | (_, Err(e)) => {
            println!("skipping the Redis revocation list at scale ({url}): {e}");
            return;
        }
    };
    println!(
        "\nrevocation list of {ENTRIES} entries in Redis (load {}):",
        super::load_average()
    );
    let start = Instant::now();
    fill(&store).await;
    println!("  filled through add_revocation in {:.1?}", start.elapsed());
    let ((), idle) = checked_while(&checker, tokio::time::sleep(Duration::from_secs(2))).await;
    super::summary("  session lookup, Redis otherwise idle", idle);
    for _ in 0..READS {
        let (took, during) = checked_while(&checker, async {
            let t = Instant::now();
            let list = store.revocations(SystemClock.now()).await.unwrap();
            assert_eq!(list.len(), ENTRIES);
            t.elapsed()
        })
        .await;
        println!("  full read (revocations) in {took:.1?}");
        super::summary("  session lookup during the read", during);
    }
    let dropped = super::drop_redis_keys(url, &ns);
    println!("  removed {dropped} keys");
}
