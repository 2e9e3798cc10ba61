//! What one more instance adds: 1, 2 and 3 instances — each its own `AppState` with its own
//! pools over one PostgreSQL schema and one Redis namespace, each serving
//! `tessera_server::app` on its own loopback port — under `GET /v1/userinfo` from a fixed
//! [`CONNECTIONS`] keep-alive connections spread round-robin over them, with session tokens
//! and with access JWTs. Interleaved (1, 2, 3, 1, 2, 3…) for [`ROUNDS`] rounds.
//!
//! Everything — instances, load generator, and here PostgreSQL and Redis too — shares the
//! machine's cores, so on a machine with few cores this measures how the added instances
//! share them, not what they would add on machines of their own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_core::opaque::random_id;
use tessera_server::AppState;
use tessera_store::Store;
use tessera_store::split::SplitStore;

use super::loadgen;

/// Keep-alive connections in every run, whatever the number of instances.
const CONNECTIONS: usize = 16;
/// Instances of the largest configuration.
const MAX_INSTANCES: usize = 3;
/// Rounds of 1, 2, 3 instances.
const ROUNDS: usize = 3;
/// Length of each run.
const RUN: Duration = Duration::from_secs(2);
/// Distinct session tokens and access JWTs cycled through.
const SESSIONS: usize = 8;
const JWTS: usize = 1000;

/// One instance serving on loopback; its server task is aborted when the bench is done.
struct Instance {
    state: AppState,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

async fn start(pg_url: &str, redis_url: &str, ns: &str) -> Option<Instance> {
    let pg = super::postgres(pg_url, ns).await?;
    let redis = super::redis(redis_url, ns).await?;
    let store: Arc<dyn Store> = Arc::new(SplitStore::new(Arc::new(pg), Arc::new(redis)));
    let state = super::state(store).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        tessera_server::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Some(Instance {
        state,
        addr,
        server,
    })
}

/// A user registered through the first instance, [`SESSIONS`] session tokens and [`JWTS`]
/// access JWTs of it — every instance accepts them (one store, one issuer, one KEK).
async fn credentials(state: &AppState) -> (Vec<String>, Vec<String>) {
    let made = super::bench_user::bench_user(state, SESSIONS, JWTS)
        .await
        .unwrap();
    (made.sessions, made.jwts)
}

fn userinfo_gets(tokens: &[String]) -> Arc<Vec<Vec<u8>>> {
    Arc::new(
        tokens
            .iter()
            .map(|t| loadgen::get("/v1/userinfo", &[format!("authorization: Bearer {t}")]))
            .collect(),
    )
}

/// One run over `addrs`: connection `c` goes to `addrs[c % n]`, one `loadgen::run` per
/// instance, all at once. Returns the summed rate and the p99 over every request (µs).
async fn measure(addrs: &[SocketAddr], requests: &Arc<Vec<Vec<u8>>>) -> (f64, u32) {
    let mut runs = Vec::with_capacity(addrs.len());
    for (i, addr) in addrs.iter().enumerate() {
        let scripts = (i..CONNECTIONS)
            .step_by(addrs.len())
            .map(|c| loadgen::cycle(Arc::clone(requests), c * 7919))
            .collect();
        runs.push(tokio::spawn(loadgen::run(*addr, scripts, RUN, 200)));
    }
    let mut rate = 0.0;
    let mut latencies = Vec::new();
    for run in runs {
        let out = run.await.unwrap().unwrap();
        assert_eq!(out.errors, 0, "a request failed: {out:?}");
        rate += out.rate();
        latencies.extend(out.latencies_us);
    }
    latencies.sort_unstable();
    let all = loadgen::Outcome {
        latencies_us: latencies,
        ..loadgen::Outcome::default()
    };
    (rate, all.quantile_us(0.99))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Rounds of 1, 2, 3 instances for one credential kind; prints each run, then the medians
/// and their ratio to one instance.
async fn compare(name: &str, addrs: &[SocketAddr], requests: &Arc<Vec<Vec<u8>>>) {
    // Warm-up over every instance: pools opened, first JWT verifications paid.
    let _ = measure(addrs, requests).await;
    let mut rates = vec![Vec::new(); addrs.len()];
    let mut p99s = vec![Vec::new(); addrs.len()];
    for round in 1..=ROUNDS {
        let mut line = format!("  round {round}:");
        for n in 1..=addrs.len() {
            let (rate, p99) = measure(&addrs[..n], requests).await;
            line.push_str(&format!(" {n} inst. {rate:>7.0}/s p99 {p99:>5} µs |"));
            rates[n - 1].push(rate);
            p99s[n - 1].push(f64::from(p99));
        }
        println!(
            "{} (load {})",
            line.trim_end_matches(" |"),
            super::load_average()
        );
    }
    let one = median(rates[0].clone());
    for (n, (r, p)) in rates.into_iter().zip(p99s).enumerate() {
        let rate = median(r);
        println!(
            "{name}, {} instance(s): {rate:.0}/s, p99 {:.0} µs (medians) → {:.2}× one instance",
            n + 1,
            median(p),
            rate / one
        );
    }
}

/// The whole figure over the PostgreSQL and Redis at `pg_url` and `redis_url` (skipped, with
/// the reason, if either does not answer).
pub async fn run(pg_url: &str, redis_url: &str) {
    let ns = format!(
        "bench_in_{}",
        random_id().unwrap().to_lowercase().replace(['-', '_'], "")
    );
    let mut instances = Vec::with_capacity(MAX_INSTANCES);
    for _ in 0..MAX_INSTANCES {
        match start(pg_url, redis_url, &ns).await {
            Some(i) => instances.push(i),
            None => break,
        }
    }
    if instances.len() == MAX_INSTANCES {
        let addrs: Vec<SocketAddr> = instances.iter().map(|i| i.addr).collect();
        let (sessions, jwts) = credentials(&instances[0].state).await;
        println!(
            "GET /v1/userinfo over 1, 2, 3 instances (PostgreSQL + Redis), {CONNECTIONS} \
             connections round-robin, {RUN:?} runs:"
        );
        compare("session tokens", &addrs, &userinfo_gets(&sessions)).await;
        compare("access JWTs", &addrs, &userinfo_gets(&jwts)).await;
    }
    for i in &instances {
        i.server.abort();
        i.state.close_streams();
    }
    super::drop_redis_keys(redis_url, &ns);
    if let Some(pg) = super::postgres(pg_url, &ns).await {
        pg.drop_schema().await.unwrap();
    }
}
