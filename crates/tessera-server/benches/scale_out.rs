//! Scale-out benchmark: how fast a revocation reaches another instance, how many session
//! checks per second each store sustains (with JWT verification alongside for comparison), the
//! revocation list at 10⁶ entries: the reload a feed reconnect runs, and what checks running
//! meanwhile see of it; the session check with 10⁶ sessions in Redis against 10³
//! (`scale_out/redis_sessions.rs`); a full read of 10⁶ revocations from Redis and what another
//! instance's session lookups wait meanwhile (`scale_out/redis_revocations.rs`); and the
//! `/v1/userinfo` throughput of 1, 2 and 3 instances over one PostgreSQL + Redis
//! (`scale_out/instances.rs`).
//!
//! Run: `cargo bench -p tessera-server --bench scale_out` (PostgreSQL and Redis from
//! `TESSERA_BENCH_POSTGRES` / `TESSERA_BENCH_REDIS`, default the local ones; a store that does not
//! answer is skipped). Two `AppState`s with separate connection pools stand in for two
//! instances: the path measured — write, NOTIFY or PUBLISH, delivery, merge into the other
//! instance's in-memory list — is the one separate processes take.
//!
//! Skipping the long parts: `TESSERA_BENCH_SKIP_SCALE=1` skips the 10⁶-entry revocation list,
//! `TESSERA_BENCH_SKIP_REDIS_SCALE=1` the 10⁶ Redis sessions (a fill of a minute or more and
//! about a gigabyte of Redis memory while it runs), `TESSERA_BENCH_SKIP_REDIS_REVOCATIONS=1` the
//! 10⁶ Redis revocations (a fill of about a minute), `TESSERA_BENCH_SKIP_INSTANCES=1` the 1, 2,
//! 3 instances.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../../tessera/src/bench_user.rs"]
#[allow(dead_code)]
mod bench_user;
#[path = "../../tessera/src/loadgen.rs"]
#[allow(dead_code)]
mod loadgen;

#[path = "scale_out/instances.rs"]
mod instances;
#[path = "scale_out/redis_revocations.rs"]
mod redis_revocations;
#[path = "scale_out/redis_sessions.rs"]
mod redis_sessions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::opaque::random_id;
use tessera_core::password::PasswordHasher;
use tessera_core::revocation::{Revocation, RevocationSubject};
use tessera_core::time::{Clock, SystemClock};
use tessera_server::revocations::{FeedState, RevocationView};
use tessera_server::{AppState, ServerConfig, auth, service};
use tessera_store::memory::MemoryStore;
use tessera_store::postgres::PostgresStore;
use tessera_store::redis::RedisStore;
use tessera_store::split::SplitStore;
use tessera_store::sqlite::SqliteStore;
use tessera_store::{RevocationStore, Store};

const PROPAGATION_ROUNDS: usize = 300;
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(2);
/// Entries in the revocation list of the scale figures.
const SCALE_ENTRIES: usize = 1_000_000;
/// Reloads timed at that size.
const SCALE_RELOADS: usize = 3;

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<44} n={:<6} median={:>9.1?} p99={:>9.1?} max={:>9.1?}",
        samples.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
}

/// The configuration every bench instance shares: one issuer (so an access token issued by
/// one is accepted by the others) and one KEK, as a deployment's instances on one store have.
fn bench_config() -> ServerConfig {
    let mut config = ServerConfig::new("http://bench.test");
    config.kek = Some(tessera_core::keys::kek::Kek::from_bytes(&[7; 32]).unwrap());
    config
}

/// An instance as `tessera serve` runs it: upkeep started and, for stores with a feed, the
/// feed live (otherwise every check would also ask the store, as in degraded mode).
async fn state(store: Arc<dyn Store>) -> AppState {
    state_with(store, bench_config(), Duration::from_secs(1)).await
}

/// [`state`] with a given configuration and upkeep period (the first upkeep tick, with its
/// sweep, runs at once; the next after `upkeep`).
async fn state_with(store: Arc<dyn Store>, config: ServerConfig, upkeep: Duration) -> AppState {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let hasher = PasswordHasher::with_cost(8, 1).unwrap();
    let s = AppState::new(store, config, clock, hasher).await.unwrap();
    s.spawn_maintenance(upkeep);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.revocations().feed_state() == FeedState::Down {
        assert!(Instant::now() < deadline, "feed never became live");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s
}

/// Revokes on `a`, then spins until `b` refuses the token from memory alone.
async fn propagation(name: &str, a: AppState, b: AppState) {
    assert_eq!(b.revocations().feed_state(), FeedState::Live, "{name}");
    let mut samples = Vec::with_capacity(PROPAGATION_ROUNDS);
    for _ in 0..PROPAGATION_ROUNDS {
        let jti = random_id().unwrap();
        let subject = RevocationSubject {
            jti: &jti,
            sid: None,
            sub: "bench",
            client_id: None,
            iat: a.now(),
        };
        let start = Instant::now();
        a.record_revocation(Revocation::Token {
            jti: jti.clone(),
            expires_at: a.now().plus(600),
        })
        .await
        .unwrap();
        // The feed is live (asserted above), so memory decides and no token is needed.
        while !b.is_revoked(subject, "").await.unwrap() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{name}: revocation never arrived"
            );
            tokio::task::yield_now().await;
        }
        samples.push(start.elapsed());
    }
    summary(&format!("revocation A→B, {name}"), samples);
}

/// Sequential session checks (one request's worth of work) for a fixed window.
async fn session_checks(name: &str, s: AppState) {
    let user = service::register(
        &s,
        &format!(
            "bench{}",
            random_id().unwrap().to_lowercase().replace(['-', '_'], "")
        ),
        "plum tractor velvet ocean".into(),
        false,
        &service::ClientContext::default(),
    )
    .await
    .unwrap();
    let token = service::start_browser_session(&s, &user, &service::ClientContext::default())
        .await
        .unwrap()
        .token;
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < THROUGHPUT_WINDOW {
        let t = Instant::now();
        auth::check_session(&s, token.expose_secret())
            .await
            .unwrap();
        samples.push(t.elapsed());
    }
    let rate = samples.len() as f64 / start.elapsed().as_secs_f64();
    summary(&format!("session check, {name} ({rate:.0}/s)"), samples);
}

async fn jwt_checks(s: AppState) {
    let jwt = service::issue_access(
        &s,
        "bench",
        Some("bench"),
        Some("sid"),
        None,
        "first-party",
        None,
    )
    .unwrap();
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < THROUGHPUT_WINDOW {
        let t = Instant::now();
        auth::verify_jwt(&s, &jwt).await.unwrap();
        samples.push(t.elapsed());
    }
    let rate = samples.len() as f64 / start.elapsed().as_secs_f64();
    summary(&format!("JWT check, EdDSA, memory ({rate:.0}/s)"), samples);
    println!("access token size: {} bytes", jwt.len());
}

/// Resident set size in bytes (Linux `/proc/self/statm`).
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Revocation checks of a token the list does not name (every check's common case), one after
/// another until `stop`, each timed.
async fn checks_until(
    view: Arc<RevocationView>,
    store: Arc<MemoryStore>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<Duration> {
    let jti = random_id().unwrap();
    let (sid, sub) = (random_id().unwrap(), random_id().unwrap());
    let subject = RevocationSubject {
        jti: &jti,
        sid: Some(&sid),
        sub: &sub,
        client_id: Some("bench-client"),
        iat: SystemClock.now(),
    };
    let mut samples = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let t = Instant::now();
        let revoked = view
            .is_token_revoked(store.as_ref(), subject, "", SystemClock.now())
            .await
            .unwrap();
        samples.push(t.elapsed());
        assert!(!revoked);
        tokio::task::yield_now().await;
    }
    samples
}

/// The revocation list at [`SCALE_ENTRIES`] (server-shaped ids: 70% `jti`, 20% `sid`, 10%
/// user cutoffs) held by an instance without a feed (memory decides): the first load, then
/// full reloads into the loaded list (a feed reconnect's), with revocation checks running on
/// the other worker — their latency during the reloads against with none.
async fn revocation_scale() {
    let store = Arc::new(MemoryStore::new());
    let now = SystemClock.now();
    for n in 0..SCALE_ENTRIES {
        let id = random_id().unwrap();
        let expires_at = now.plus(3600);
        let r = match n % 10 {
            0..=6 => Revocation::Token {
                jti: id,
                expires_at,
            },
            7 | 8 => Revocation::Session {
                sid: id,
                expires_at,
            },
            _ => Revocation::User {
                user_id: id,
                not_before: now,
                expires_at,
            },
        };
        store.add_revocation(&r).await.unwrap();
    }
    let view = Arc::new(RevocationView::new(false));
    let before = rss();
    let t = Instant::now();
    view.reload(store.as_ref(), now).await.unwrap();
    let first = t.elapsed();
    let grown = rss().zip(before).map(|(a, b)| a.saturating_sub(b));
    assert_eq!(view.len(), SCALE_ENTRIES);
    println!(
        "revocation list, 10^6 entries: first load {first:.1?}; RSS growth {:.0} MB (the list, \
         plus what the allocator kept of the fetched copy)",
        grown.unwrap_or(0) as f64 / 1e6
    );

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = tokio::spawn(checks_until(view.clone(), store.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    summary(
        "revocation check, 10^6, no reload running",
        checker.await.unwrap(),
    );

    stop.store(false, std::sync::atomic::Ordering::Relaxed);
    let checker = tokio::spawn(checks_until(view.clone(), store.clone(), stop.clone()));
    let mut reloads = Vec::new();
    for _ in 0..SCALE_RELOADS {
        let t = Instant::now();
        view.reload(store.as_ref(), SystemClock.now())
            .await
            .unwrap();
        reloads.push(t.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    summary(
        "revocation check, 10^6, during reloads",
        checker.await.unwrap(),
    );
    summary("full reload into the loaded list, 10^6", reloads);
}

async fn postgres(url: &str, ns: &str) -> Option<PostgresStore> {
    match PostgresStore::connect(url, ns).await {
        Ok(s) => Some(s),
        Err(e) => {
            println!("skipping PostgreSQL ({url}): {e}");
            None
        }
    }
}

async fn redis(url: &str, ns: &str) -> Option<RedisStore> {
    match RedisStore::connect(&[url.to_owned()], ns).await {
        Ok(s) => Some(s),
        Err(e) => {
            println!("skipping Redis ({url}): {e}");
            None
        }
    }
}

/// Runs `redis-cli` against `url` with `args`, feeding it `stdin` (commands, one a line);
/// returns its standard output, or `None` if it could not run. Fed commands, its replies are
/// discarded (unread, they could fill the pipe while the commands are still being written).
fn redis_cli(url: &str, args: &[&str], stdin: Option<&str>) -> Option<String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let host_port = url.trim_start_matches("redis://").trim_end_matches('/');
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "6379"));
    let mut child = Command::new("redis-cli")
        .args(["-h", host, "-p", port])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if stdin.is_some() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .spawn()
        .ok()?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).ok()?;
    }
    let out = child.wait_with_output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The machine's 1-minute load average (Linux `/proc/loadavg`), printed beside figures taken
/// on a shared machine.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Redis's `used_memory` (bytes), from `INFO memory`.
fn redis_used_memory(url: &str) -> Option<u64> {
    let info = redis_cli(url, &["info", "memory"], None)?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Deletes every key of the namespace `ns`; returns how many there were. The keys go to one
/// `redis-cli` as `UNLINK` lines of 500 keys (millions of keys after the session fill).
fn drop_redis_keys(url: &str, ns: &str) -> usize {
    let pattern = format!("*{ns}*");
    let Some(keys) = redis_cli(url, &["--scan", "--pattern", &pattern], None) else {
        return 0;
    };
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    let commands: String = keys
        .chunks(500)
        .map(|batch| format!("UNLINK {}\n", batch.join(" ")))
        .collect();
    if !commands.is_empty() {
        let _ = redis_cli(url, &[], Some(&commands));
    }
    keys.len()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pg_url = std::env::var("TESSERA_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let redis_url =
        std::env::var("TESSERA_BENCH_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let ns = format!(
        "bench_{}",
        random_id().unwrap().to_lowercase().replace(['-', '_'], "")
    );
    println!(
        "tessera scale-out benchmark ({} CPUs)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    jwt_checks(state(Arc::new(MemoryStore::new())).await).await;
    if std::env::var_os("TESSERA_BENCH_SKIP_SCALE").is_none() {
        revocation_scale().await;
    }
    session_checks("memory", state(Arc::new(MemoryStore::new())).await).await;
    let db = std::env::temp_dir().join(format!("{ns}.db"));
    session_checks(
        "sqlite",
        state(Arc::new(SqliteStore::open(&db).await.unwrap())).await,
    )
    .await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }

    if std::env::var_os("TESSERA_BENCH_SKIP_REDIS_SCALE").is_none() {
        redis_sessions::run(&redis_url).await;
    }
    if std::env::var_os("TESSERA_BENCH_SKIP_REDIS_REVOCATIONS").is_none() {
        redis_revocations::run(&redis_url).await;
    }

    let (Some(pg_a), Some(pg_b)) = (postgres(&pg_url, &ns).await, postgres(&pg_url, &ns).await)
    else {
        return;
    };
    let pg_a = Arc::new(pg_a);
    session_checks("postgres", state(pg_a.clone()).await).await;
    propagation(
        "postgres LISTEN/NOTIFY",
        state(pg_a.clone()).await,
        state(Arc::new(pg_b)).await,
    )
    .await;

    if let (Some(r_a), Some(r_b)) = (redis(&redis_url, &ns).await, redis(&redis_url, &ns).await) {
        let split_a: Arc<dyn Store> = Arc::new(SplitStore::new(pg_a.clone(), Arc::new(r_a)));
        let pg_c = postgres(&pg_url, &ns).await.unwrap();
        let split_b: Arc<dyn Store> = Arc::new(SplitStore::new(Arc::new(pg_c), Arc::new(r_b)));
        session_checks("redis (+postgres)", state(split_a.clone()).await).await;
        propagation(
            "redis pub/sub (+postgres record)",
            state(split_a).await,
            state(split_b).await,
        )
        .await;
        drop_redis_keys(&redis_url, &ns);
    }
    pg_a.drop_schema().await.unwrap();
    if std::env::var_os("TESSERA_BENCH_SKIP_INSTANCES").is_none() {
        instances::run(&pg_url, &redis_url).await;
    }
}
