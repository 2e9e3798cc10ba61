//! The session check with 10⁶ sessions in Redis against 10³: the same sequential check
//! (`auth::check_session`, one request's work) on a Redis-backed instance, first with
//! [`SMALL`] sessions in its namespace, then after filling it to [`LARGE`] through the store's
//! own `create_session`, on sessions picked at random among all of them; and Redis's
//! `used_memory` growth per session.
//!
//! Design decision: the instance's touch interval is raised to an hour, so no check writes
//! "last seen" back: the fill takes longer than the default 60 s, and sessions older than
//! that would pay a touch on first use at 10⁶ but not at 10³ — the comparison would then be of
//! touches, not of lookups. Its upkeep runs once at start (before the fill) and not again,
//! so no sweep walks the 10⁶ sessions while they are measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_core::opaque::{OpaqueToken, TokenKind, random_id};
use tessera_core::session::{Session, SessionKind, SessionPolicy};
use tessera_core::time::{Clock, SystemClock};
use tessera_server::{AppState, auth};
use tessera_store::Store;
use tessera_store::memory::MemoryStore;
use tessera_store::split::SplitStore;

/// Sessions of the small figure.
const SMALL: usize = 1_000;
/// Sessions of the large figure.
const LARGE: usize = 1_000_000;
/// Sessions per (synthetic) user: users hold a few sessions each, as in a deployment.
const SESSIONS_PER_USER: usize = 4;
/// Concurrent tasks filling the store (the store's connection multiplexes them).
const FILL_TASKS: usize = 64;
/// How long each run of checks lasts.
const WINDOW: Duration = Duration::from_secs(2);
/// Runs of each set of sessions checked.
const ROUNDS: usize = 3;

/// A small, fast generator for picking sessions (splitmix64); quality is ample for indices.
struct Picker(u64);

impl Picker {
    fn new() -> Self {
        let seed = random_id().unwrap().bytes().fold(0u64, |h, b| {
            h.rotate_left(8) ^ u64::from(b).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        });
        Self(seed)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % n as u64) as usize
    }
}

/// Creates `count` browser sessions through `store.create_session`, [`SESSIONS_PER_USER`] per
/// user, from [`FILL_TASKS`] concurrent tasks; returns their raw tokens.
async fn fill(store: &Arc<dyn Store>, policy: SessionPolicy, count: usize) -> Vec<String> {
    let mut tasks = Vec::with_capacity(FILL_TASKS);
    for t in 0..FILL_TASKS {
        let share = count / FILL_TASKS + usize::from(t < count % FILL_TASKS);
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::with_capacity(share);
            let mut user = random_id().unwrap();
            for n in 0..share {
                if n % SESSIONS_PER_USER == 0 {
                    user = random_id().unwrap();
                }
                let token = OpaqueToken::generate(TokenKind::Session).unwrap();
                let session = Session::new(
                    random_id().unwrap(),
                    Some(token.hash()),
                    user.clone(),
                    SessionKind::Browser,
                    SystemClock.now(),
                    &policy,
                );
                store.create_session(&session).await.unwrap();
                tokens.push(token.expose_secret().to_owned());
            }
            tokens
        }));
    }
    let mut tokens = Vec::with_capacity(count);
    for task in tasks {
        tokens.extend(task.await.unwrap());
    }
    tokens
}

/// Sequential session checks for [`WINDOW`], each on a token picked at random from `tokens`,
/// after a short warm-up; returns the timings.
async fn checks(s: &AppState, tokens: &[String]) -> Vec<Duration> {
    let mut picker = Picker::new();
    for _ in 0..200 {
        let raw = &tokens[picker.below(tokens.len())];
        auth::check_session(s, raw).await.unwrap();
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < WINDOW {
        let raw = &tokens[picker.below(tokens.len())];
        let t = Instant::now();
        auth::check_session(s, raw).await.unwrap();
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    samples
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// Prints one run's figure: the summary line, with the rate and the load average.
fn report(name: &str, samples: &[Duration]) {
    let rate = samples.len() as f64 / WINDOW.as_secs_f64();
    super::summary(
        &format!("{name} ({rate:.0}/s, load {})", super::load_average()),
        samples.to_vec(),
    );
}

/// [`ROUNDS`] runs over each of `sets` in turn (A, B, A, B…), each printed; returns each set's
/// samples pooled over its runs, sorted.
async fn interleaved(s: &AppState, sets: &[(&str, &[String])]) -> Vec<Vec<Duration>> {
    let mut pooled = vec![Vec::new(); sets.len()];
    for _ in 0..ROUNDS {
        for ((name, tokens), pool) in sets.iter().zip(&mut pooled) {
            let samples = checks(s, tokens).await;
            report(name, &samples);
            pool.extend(samples);
        }
    }
    for pool in &mut pooled {
        pool.sort_unstable();
    }
    pooled
}

/// The whole figure over the Redis at `url` (skipped, with the reason, if it does not answer).
pub async fn run(url: &str) {
    let ns = format!(
        "bench_rs_{}",
        random_id().unwrap().to_lowercase().replace(['-', '_'], "")
    );
    let Some(redis) = super::redis(url, &ns).await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(SplitStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(redis),
    ));
    let mut config = super::bench_config();
    config.sessions.touch_interval_secs = 3600;
    let policy = config.sessions;
    let s = super::state_with(store.clone(), config, Duration::from_secs(24 * 3600)).await;

    let memory_before = super::redis_used_memory(url);
    let mut tokens = fill(&store, policy, SMALL).await;
    let memory_small = super::redis_used_memory(url);
    let small = interleaved(&s, &[("session check, Redis, 10^3 sessions", &tokens)]).await;

    let t = Instant::now();
    tokens.extend(fill(&store, policy, LARGE - SMALL).await);
    let filled = t.elapsed();
    let memory_large = super::redis_used_memory(url);
    println!(
        "filled to 10^6 sessions in {filled:.1?} ({:.0} sessions/s, {FILL_TASKS} tasks, \
         create_session; load {})",
        (LARGE - SMALL) as f64 / filled.as_secs_f64(),
        super::load_average()
    );
    // The first 10³ again, now among 10⁶, interleaved with picks among all: separates the
    // table's size from the spread of the keys picked and from the machine's load drifting.
    let after = interleaved(
        &s,
        &[
            ("session check, Redis, 10^6 sessions", &tokens),
            ("session check, Redis, first 10^3 of 10^6", &tokens[..SMALL]),
        ],
    )
    .await;
    let ratio = |q: f64, of: &[Duration]| {
        quantile(of, q).as_secs_f64() / quantile(&small[0], q).as_secs_f64()
    };
    println!(
        "pooled over {ROUNDS} runs each, ÷ 10^3 before the fill: 10^6 median {:.2}×, p99 \
         {:.2}×; first 10^3 of 10^6 median {:.2}×, p99 {:.2}×",
        ratio(0.5, &after[0]),
        ratio(0.99, &after[0]),
        ratio(0.5, &after[1]),
        ratio(0.99, &after[1])
    );
    if let (Some(b), Some(m), Some(l)) = (memory_before, memory_small, memory_large) {
        println!(
            "Redis used_memory: {:.1} MB before, {:.1} MB at 10^3, {:.1} MB at 10^6 → {:.0} \
             bytes/session (10^3 → 10^6; the whole server's figure, so other clients' keys \
             count too)",
            b as f64 / 1e6,
            m as f64 / 1e6,
            l as f64 / 1e6,
            l.saturating_sub(m) as f64 / (LARGE - SMALL) as f64
        );
    }
    s.close_streams();
    let t = Instant::now();
    let dropped = super::drop_redis_keys(url, &ns);
    println!("deleted {dropped} keys in {:.1?}", t.elapsed());
}
