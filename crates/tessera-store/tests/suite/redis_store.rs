//! The Redis backend against real Redis: the shared conformance suite through a `SplitStore`
//! (single node and cluster, memory or SQLite as the durable half), the pub/sub feed, the
//! attempt counter, key TTLs and fast failure when Redis is down.
//!
//! Design decision: nothing here needs a Redis set up by hand. The single-node tests use
//! `TESSERA_TEST_REDIS` (default `redis://127.0.0.1:6379`); the cluster tests use
//! `TESSERA_TEST_REDIS_CLUSTER` (comma-separated seeds) or else start their own throwaway
//! 3-master cluster from `redis-server` on free loopback ports, killed when the test ends. When
//! Redis is missing the tests print "skipping: …" — unless `CI=true`, where they fail. Every
//! test works in a fresh random namespace and deletes its keys afterwards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hash::{BuildHasher, Hasher};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use tessera_core::opaque::{OpaqueToken, TokenKind, random_id};
use tessera_core::revocation::Revocation;
use tessera_core::session::{Session, SessionKind, SessionPolicy};
use tessera_core::time::{Clock, SystemClock};
use tessera_store::memory::MemoryStore;
use tessera_store::postgres::PostgresStore;
use tessera_store::redis::RedisStore;
use tessera_store::redis::keys::Keys;
use tessera_store::split::SplitStore;
use tessera_store::sqlite::SqliteStore;
use tessera_store::{
    AttemptCounter, FeedEvent, RevocationStore, SessionStore, StoreError, conformance,
};
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

// ---------------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------------

/// A random 64-bit number (std's per-process random hasher keys; enough for names and ports).
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// A fresh namespace, `t<random hex>`.
fn namespace() -> String {
    format!("t{:016x}", random_u64())
}

/// Skips the test (or, under `CI=true`, fails it) because Redis is not available.
fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("Redis required under CI=true: {why}");
    }
    eprintln!("skipping: {why}");
}

fn single_url() -> String {
    std::env::var("TESSERA_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A store on the single test node in a fresh namespace, or `None` (after [`skip`]).
async fn single(ns: &str) -> Option<RedisStore> {
    let url = single_url();
    match RedisStore::connect(std::slice::from_ref(&url), ns).await {
        Ok(s) => Some(s),
        Err(e) => {
            skip(&format!("no Redis at {url}: {e:?}"));
            None
        }
    }
}

/// Deletes every key of namespace `ns` on the node at `url`.
async fn cleanup(url: &str, ns: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for pattern in [format!("{ns}:*"), format!("{{{ns}:rev}}*")] {
        let keys: Vec<String> = {
            let mut iter = conn.scan_match::<_, String>(&pattern).await.unwrap();
            let mut keys = Vec::new();
            while let Some(k) = futures_util::StreamExt::next(&mut iter).await {
                keys.push(k.unwrap());
            }
            keys
        };
        for k in keys {
            // One key at a time: on a cluster node a multi-key DEL could span slots.
            let _: Result<(), _> = conn.del(&k).await;
        }
    }
}

/// Redis processes this test started; killed (and reaped) when dropped, even on panic.
struct Cluster {
    nodes: Vec<Option<Child>>,
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// Kills node `i` (as a crash would).
    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if let Some(mut child) = self.nodes[i].take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A free loopback port whose cluster-bus twin (port + 10000) is free too.
fn free_port() -> u16 {
    for _ in 0..200 {
        let port = 20_000 + u16::try_from(random_u64() % 10_000).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port pair");
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn redis_cli(args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts a private 3-master cluster, or `None` (after [`skip`]) without `redis-server`.
fn start_cluster() -> Option<Cluster> {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster {
        nodes: Vec::new(),
        ports: Vec::new(),
        _dir: dir,
    };
    let dir = cluster._dir.path().to_owned();
    for _ in 0..3 {
        let port = free_port();
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file"])
            .arg(dir.join(format!("nodes-{port}.conf")))
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => {
                cluster.nodes.push(Some(child));
                cluster.ports.push(port);
            }
            Err(e) => {
                skip(&format!("cannot start redis-server: {e}"));
                return None;
            }
        }
    }
    for &port in &cluster.ports {
        wait_until("redis-server to listen", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }
    let addrs: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    redis_cli(&args).expect("redis-cli --cluster create");
    for &port in &cluster.ports {
        let port = port.to_string();
        wait_until("cluster_state:ok", Duration::from_secs(20), || {
            redis_cli(&["-p", &port, "cluster", "info"])
                .is_some_and(|info| info.contains("cluster_state:ok"))
        });
    }
    Some(cluster)
}

/// Seed URLs of the test cluster, with the guard of a private one (`None` when given by env).
async fn cluster() -> Option<(Vec<String>, Option<Cluster>)> {
    if let Ok(seeds) = std::env::var("TESSERA_TEST_REDIS_CLUSTER") {
        let urls = seeds.split(',').map(|s| s.trim().to_owned()).collect();
        return Some((urls, None));
    }
    let own = tokio::task::spawn_blocking(start_cluster).await.unwrap()?;
    Some((own.urls(), Some(own)))
}

/// Deletes `ns`'s keys from a cluster given by env (a private one is simply killed).
async fn cleanup_cluster(urls: &[String], own: Option<&Cluster>, ns: &str) {
    if own.is_none() {
        // Best effort: the seeds named are scanned; keys on other masters expire by TTL.
        for url in urls {
            cleanup(url, ns).await;
        }
    }
}

async fn next_event(rx: &mut Receiver<FeedEvent>, within: Duration) -> FeedEvent {
    timeout(within, rx.recv())
        .await
        .expect("feed event in time")
        .expect("feed still open")
}

/// Waits for `want`, skipping `Revoked` events from other traffic.
async fn expect_event(rx: &mut Receiver<FeedEvent>, want: &FeedEvent, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let got = next_event(rx, left).await;
        if &got == want {
            return;
        }
        assert!(
            matches!(got, FeedEvent::Revoked(_)),
            "expected {want:?}, got {got:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Conformance
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_conforms_with_memory_durable() {
    let ns = namespace();
    let Some(redis) = single(&ns).await else {
        return;
    };
    let store = Arc::new(SplitStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(redis),
    ));
    let ran = conformance::run_all(Arc::clone(&store)).await;
    assert!(ran >= 30);
    // Again on the same namespace: the suite must tolerate its own leftovers.
    conformance::run_all(store).await;
    cleanup(&single_url(), &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_conforms_with_sqlite_durable() {
    let ns = namespace();
    let Some(redis) = single(&ns).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("tessera.db"))
        .await
        .unwrap();
    let store: Arc<dyn tessera_store::Store> =
        Arc::new(SplitStore::new(Arc::new(sqlite), Arc::new(redis)));
    conformance::run_all(store).await;
    cleanup(&single_url(), &ns).await;
}

/// The production pairing: PostgreSQL as the durable side, in a fresh schema dropped after.
async fn postgres(ns: &str) -> Option<PostgresStore> {
    let url = std::env::var("TESSERA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    match PostgresStore::connect(&url, ns).await {
        Ok(s) => Some(s),
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL required under CI=true: {e:?}");
            }
            eprintln!("skipping: no PostgreSQL at {url}: {e:?}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_conforms_with_postgres_durable() {
    let ns = namespace();
    let Some(redis) = single(&ns).await else {
        return;
    };
    let Some(pg) = postgres(&ns).await else {
        return;
    };
    let pg = Arc::new(pg);
    let store: Arc<dyn tessera_store::Store> =
        Arc::new(SplitStore::new(pg.clone(), Arc::new(redis)));
    conformance::run_all(store).await;
    pg.drop_schema().await.unwrap();
    cleanup(&single_url(), &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_conforms_with_postgres_durable() {
    let Some((urls, own)) = cluster().await else {
        return;
    };
    let ns = namespace();
    let Some(pg) = postgres(&ns).await else {
        return;
    };
    let pg = Arc::new(pg);
    let redis = RedisStore::connect(&urls, &ns).await.unwrap();
    conformance::run_all(Arc::new(SplitStore::new(pg.clone(), Arc::new(redis)))).await;
    pg.drop_schema().await.unwrap();
    cleanup_cluster(&urls, own.as_ref(), &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_conforms() {
    let Some((urls, own)) = cluster().await else {
        return;
    };
    let ns = namespace();
    let redis = RedisStore::connect(&urls, &ns).await.unwrap();
    let store = Arc::new(SplitStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(redis),
    ));
    conformance::run_all(Arc::clone(&store)).await;
    conformance::run_all(store).await;
    let paged = namespace();
    lists_and_prunes_in_pages(&RedisStore::connect(&urls, &paged).await.unwrap()).await;
    cleanup_cluster(&urls, own.as_ref(), &ns).await;
    cleanup_cluster(&urls, own.as_ref(), &paged).await;
}

// ---------------------------------------------------------------------------------------------
// Long revocation lists
// ---------------------------------------------------------------------------------------------

/// More entries than one Redis call reads or prunes (1,000 a page), in a fresh namespace: the
/// list comes back whole and exactly once across the pages, and the prune takes every expired
/// entry, page after page, and nothing else.
async fn lists_and_prunes_in_pages(store: &RedisStore) {
    let now = SystemClock.now();
    let mut live: Vec<Revocation> = (0..2_500)
        .map(|i| Revocation::Token {
            jti: format!("live-{i}"),
            expires_at: now.plus(600),
        })
        .collect();
    live.extend((0..20).map(|i| Revocation::User {
        user_id: format!("user-{i}"),
        not_before: now,
        expires_at: now.plus(600),
    }));
    let expired: Vec<Revocation> = (0..2_100)
        .map(|i| Revocation::Session {
            sid: format!("gone-{i}"),
            expires_at: now.plus(-1),
        })
        .collect();
    for r in live.iter().chain(&expired) {
        store.add_revocation(r).await.unwrap();
    }
    let names = |list: &[Revocation]| {
        let mut names: Vec<String> = list.iter().map(|r| format!("{r:?}")).collect();
        names.sort();
        names
    };
    assert_eq!(names(&store.revocations(now).await.unwrap()), names(&live));
    assert_eq!(
        store.prune_revocations(now).await.unwrap(),
        expired.len() as u64
    );
    assert_eq!(store.prune_revocations(now).await.unwrap(), 0);
    assert_eq!(
        names(&store.revocations(now.plus(-10)).await.unwrap()),
        names(&live),
        "the prune took a live entry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_revocation_lists_are_read_and_pruned_in_pages() {
    let ns = namespace();
    let Some(redis) = single(&ns).await else {
        return;
    };
    lists_and_prunes_in_pages(&redis).await;
    cleanup(&single_url(), &ns).await;
}

// ---------------------------------------------------------------------------------------------
// The feed
// ---------------------------------------------------------------------------------------------

fn token_revocation() -> Revocation {
    Revocation::Token {
        jti: random_id().unwrap(),
        expires_at: SystemClock.now().plus(600),
    }
}

/// Follows on `a`, revokes on `b`: `Connected`, then the revocation, within 2 s.
async fn feed_delivers(a: &RedisStore, b: &RedisStore) {
    let mut rx = a.feed().expect("redis has a feed").follow();
    assert_eq!(
        next_event(&mut rx, Duration::from_secs(2)).await,
        FeedEvent::Connected
    );
    let r = token_revocation();
    b.add_revocation(&r).await.unwrap();
    expect_event(&mut rx, &FeedEvent::Revoked(r), Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_delivers_revocations_from_another_instance() {
    let ns = namespace();
    let (Some(a), Some(b)) = (single(&ns).await, single(&ns).await) else {
        return;
    };
    feed_delivers(&a, &b).await;

    // Another namespace's revocations are not delivered.
    let mut rx = a.feed().unwrap().follow();
    assert_eq!(
        next_event(&mut rx, Duration::from_secs(2)).await,
        FeedEvent::Connected
    );
    let other_ns = namespace();
    let other = single(&other_ns).await.unwrap();
    other.add_revocation(&token_revocation()).await.unwrap();
    assert!(
        timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "nothing from another namespace"
    );
    cleanup(&single_url(), &ns).await;
    cleanup(&single_url(), &other_ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_feed_delivers_revocations_from_any_node() {
    let Some((urls, own)) = cluster().await else {
        return;
    };
    let ns = namespace();
    let a = RedisStore::connect(&urls, &ns).await.unwrap();
    // B knows the seeds in another order; the feed listens on A's first seed only, whichever
    // node owns the revocation slot: classic PUBLISH reaches every node.
    let mut reversed = urls.clone();
    reversed.reverse();
    let b = RedisStore::connect(&reversed, &ns).await.unwrap();
    feed_delivers(&a, &b).await;
    cleanup_cluster(&urls, own.as_ref(), &ns).await;
}

/// Regression guard for the feed's failure handling: a node dying is reported within ~2 s,
/// and the feed reconnects through the next seed by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_reports_a_dead_node_and_fails_over_to_the_next_seed() {
    if std::env::var("TESSERA_TEST_REDIS_CLUSTER").is_ok() {
        eprintln!("skipping: needs a private cluster it may kill nodes of");
        return;
    }
    let Some(mut own) = tokio::task::spawn_blocking(start_cluster).await.unwrap() else {
        return;
    };
    let urls = own.urls();
    let ns = namespace();
    let store = RedisStore::connect(&urls, &ns).await.unwrap();
    let mut rx = store.feed().unwrap().follow();
    assert_eq!(
        next_event(&mut rx, Duration::from_secs(2)).await,
        FeedEvent::Connected
    );

    own.kill(0);
    let killed = Instant::now();
    assert_eq!(
        next_event(&mut rx, Duration::from_millis(2500)).await,
        FeedEvent::Disconnected
    );
    assert!(killed.elapsed() <= Duration::from_millis(2500));
    assert_eq!(
        next_event(&mut rx, Duration::from_secs(5)).await,
        FeedEvent::Connected,
        "reconnected through another seed"
    );

    // A message published on a surviving node still arrives (the cluster itself is down for
    // the dead master's slots, so publish directly).
    let r = token_revocation();
    let client = redis::Client::open(urls[2].as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = conn
        .publish(
            Keys::new(&ns).unwrap().channel(),
            serde_json::to_string(&r).unwrap(),
        )
        .await
        .unwrap();
    expect_event(&mut rx, &FeedEvent::Revoked(r), Duration::from_secs(2)).await;
}

// ---------------------------------------------------------------------------------------------
// Attempt counters, TTLs, failures
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_counter_counts_within_a_window_and_resets() {
    let ns = namespace();
    let Some(s) = single(&ns).await else {
        return;
    };
    assert_eq!(s.peek("ip:192.0.2.1").await.unwrap(), (0, 0));
    for n in 1..=3u32 {
        let (count, left) = s.hit("ip:192.0.2.1", 60).await.unwrap();
        assert_eq!(count, n);
        assert!((58..=60).contains(&left), "left {left}");
    }
    let (count, left) = s.peek("ip:192.0.2.1").await.unwrap();
    assert_eq!(count, 3);
    assert!((58..=60).contains(&left), "left {left}");
    // A later hit with another window length does not move the open window.
    let (_, left) = s.hit("ip:192.0.2.1", 600).await.unwrap();
    assert!(left <= 60, "left {left}");
    assert_eq!(s.peek("user:other").await.unwrap(), (0, 0));

    s.reset("ip:192.0.2.1").await.unwrap();
    assert_eq!(s.peek("ip:192.0.2.1").await.unwrap(), (0, 0));
    assert_eq!(s.hit("ip:192.0.2.1", 60).await.unwrap().0, 1);

    // Windows close by themselves.
    assert_eq!(s.hit("short", 1).await.unwrap().0, 1);
    assert_eq!(s.hit("short", 1).await.unwrap().0, 2);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(s.peek("short").await.unwrap(), (0, 0));
    assert_eq!(s.hit("short", 1).await.unwrap().0, 1);
    cleanup(&single_url(), &ns).await;
}

/// The shared attempt-counter checks (exact counts under 64 concurrent hits, refunds that
/// stop at zero and open no window) on one node and on a cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_counter_conforms() {
    let ns = namespace();
    if let Some(s) = single(&ns).await {
        assert_eq!(conformance::run_attempt_checks(Arc::new(s)).await, 4);
        cleanup(&single_url(), &ns).await;
    }
    let Some((urls, own)) = cluster().await else {
        return;
    };
    let ns = namespace();
    let s = RedisStore::connect(&urls, &ns).await.unwrap();
    conformance::run_attempt_checks(Arc::new(s)).await;
    cleanup_cluster(&urls, own.as_ref(), &ns).await;
}

async fn ttl(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("TTL").arg(key).query_async(conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_and_revocation_keys_carry_ttls() {
    let ns = namespace();
    let Some(s) = single(&ns).await else {
        return;
    };
    let keys = Keys::new(&ns).unwrap();
    let client = redis::Client::open(single_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();

    let now = SystemClock.now();
    let token = OpaqueToken::generate(TokenKind::Session).unwrap();
    let mut session = Session::new(
        random_id().unwrap(),
        Some(token.hash()),
        random_id().unwrap(),
        SessionKind::Browser,
        now,
        &SessionPolicy::default(),
    );
    session.expires_at = now.plus(3600);
    s.create_session(&session).await.unwrap();
    let session_keys = [
        keys.session(&session.user_id, &session.id),
        keys.user_index(&session.user_id),
        keys.token(&token.hash().to_hex()),
        keys.session_owner(&session.id),
        keys.session_users(),
    ];
    for key in &session_keys {
        let t = ttl(&mut conn, key).await;
        assert!((3590..=3600).contains(&t), "TTL of {key} is {t}");
    }
    // Touching does not extend a session past its absolute end.
    s.touch_session(&session.id, now.plus(60)).await.unwrap();
    let t = ttl(&mut conn, &session_keys[0]).await;
    assert!((3590..=3600).contains(&t), "TTL after touch {t}");

    assert_eq!(
        s.delete_session(&session.id).await.unwrap(),
        Some({
            let mut touched = session.clone();
            touched.last_seen = now.plus(60);
            touched
        })
    );
    for key in &session_keys[..4] {
        assert_eq!(ttl(&mut conn, key).await, -2, "{key} deleted");
    }

    let r = Revocation::Session {
        sid: session.id.clone(),
        expires_at: now.plus(600),
    };
    s.add_revocation(&r).await.unwrap();
    for key in [keys.revocation_list(), keys.revocation_index()] {
        let t = ttl(&mut conn, &key).await;
        // The list outlives its latest entry by a day (clock-skew margin), and no more.
        assert!((600..=600 + 86_400).contains(&t), "TTL of {key} is {t}");
    }
    assert_eq!(
        s.revocations_for("", Some(&session.id), "nobody", None, now)
            .await
            .unwrap(),
        vec![r]
    );
    cleanup(&single_url(), &ns).await;
}

/// Regression guard for fail-fast: with Redis down, connecting fails as `Unavailable` within
/// seconds instead of hanging requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_is_unavailable_quickly() {
    let port = free_port();
    let started = Instant::now();
    let single = RedisStore::connect(&[format!("redis://127.0.0.1:{port}")], "t").await;
    assert!(
        matches!(single, Err(StoreError::Unavailable(_))),
        "{single:?}"
    );
    let cluster = RedisStore::connect(
        &[
            format!("redis://127.0.0.1:{port}"),
            format!("redis://127.0.0.1:{}", port + 1),
        ],
        "t",
    )
    .await;
    assert!(cluster.is_err(), "{cluster:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_namespaces_are_refused() {
    let result = RedisStore::connect(&[single_url()], "a{b}").await;
    assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
}
