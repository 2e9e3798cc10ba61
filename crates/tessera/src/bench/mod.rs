//! `tessera bench`: Tessera instances started in this process (the server's own `app` and
//! `AppState`, each on a loopback listener), one per store that answers, driven over HTTP by
//! [`crate::loadgen`]; the figures go to a Markdown report with SVG charts.
//!
//! Design decision: everything — servers, stores' clients, load generator — shares this
//! process and its two-core-sized runtime, as a single-host deployment would share the
//! machine. The figures are therefore end-to-end on one box (generator cost included), for
//! comparing credential kinds and stores with each other, not absolute capacity.

mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tessera_core::client::{NewClient, Scope};
use tessera_core::keys::kek::Kek;
use tessera_core::opaque::random_id;
use tessera_core::password::PasswordHasher;
use tessera_core::revocation::{Revocation, RevocationSubject};
use tessera_core::time::{Clock, SystemClock};
use tessera_server::revocations::FeedState;
use tessera_server::service::{self, ClientContext};
use tessera_server::{AppState, ServerConfig};
use tessera_store::Store;
use tessera_store::memory::MemoryStore;
use tessera_store::postgres::PostgresStore;
use tessera_store::redis::RedisStore;
use tessera_store::split::SplitStore;
use tessera_store::sqlite::SqliteStore;

use crate::backends::runtime;
use crate::bench_user::{PASSWORD, bench_user, fresh_name};
use crate::cli::{BenchArgs, BenchStore};
use crate::loadgen::{self, Outcome, Script};

/// The password of the bench users (a passphrase the policy accepts).
/// Revocations timed per store pair.
const PROPAGATION_ROUNDS: usize = 200;
const PROPAGATION_ROUNDS_QUICK: usize = 30;

/// Settings resolved from the flags.
#[derive(Debug, Clone)]
struct Plan {
    connections: usize,
    credentials: usize,
    duration: Duration,
    rounds: usize,
}

/// The figures of one load run.
#[derive(Debug, Clone)]
pub struct Row {
    /// The store.
    pub store: String,
    /// What was sent.
    pub kind: String,
    /// The measurements.
    pub outcome: Outcome,
}

/// Revocation delays between two instances over one shared store, in microseconds.
#[derive(Debug, Clone)]
pub struct Propagation {
    /// The store and its feed.
    pub store: String,
    /// Sorted delays.
    pub delays_us: Vec<u32>,
}

/// Everything measured.
#[derive(Debug, Default)]
pub struct Results {
    /// `GET /v1/userinfo` per credential kind and store.
    pub userinfo: Vec<Row>,
    /// Token issuance per grant and store.
    pub issuance: Vec<Row>,
    /// Revocation delays.
    pub propagation: Vec<Propagation>,
    /// Stores not measured, with the reason.
    pub skipped: Vec<(String, String)>,
    /// The run's settings, as the report prints them.
    pub settings: String,
}

/// Runs `tessera bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let plan = Plan {
        connections: args.connections.unwrap_or(if args.quick { 4 } else { 16 }),
        credentials: args
            .credentials
            .unwrap_or(if args.quick { 100 } else { 1000 }),
        duration: args.duration.unwrap_or(if args.quick {
            Duration::from_millis(400)
        } else {
            Duration::from_secs(3)
        }),
        rounds: if args.quick {
            PROPAGATION_ROUNDS_QUICK
        } else {
            PROPAGATION_ROUNDS
        },
    };
    if plan.connections == 0 || plan.credentials == 0 {
        bail!("--connections and --credentials must be at least 1");
    }
    let started = Instant::now();
    let results = runtime()?.block_on(measure(&args, &plan))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let written = report::write(&args.out, &results, started.elapsed())?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

async fn measure(args: &BenchArgs, plan: &Plan) -> anyhow::Result<Results> {
    let mut results = Results {
        settings: format!(
            "{} connections, {} distinct credentials, {:?} per run, {} CPUs{}",
            plan.connections,
            plan.credentials,
            plan.duration,
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            if args.quick { ", --quick" } else { "" }
        ),
        ..Results::default()
    };
    let kek = Kek::generate().context("generating the bench KEK")?;
    let ns = fresh_name("bench_")?;
    // Runs per store: 4 credential kinds, 3 grants; the bar counts runs and propagation sets.
    let per_store = 7 + 1;
    let bar = ProgressBar::with_draw_target(
        Some((args.stores.len() * per_store) as u64),
        ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let tmp = std::env::temp_dir().join(&ns);
    for kind in &args.stores {
        let name = kind.label();
        bar.set_message(format!("{name}: opening"));
        let opened = open(*kind, &ns, &tmp).await;
        let mut pair = match opened {
            Ok(pair) => pair,
            Err(e) => {
                bar.println(format!("skipping {name}: {e:#}"));
                results.skipped.push((name.to_owned(), format!("{e:#}")));
                bar.inc(per_store as u64);
                continue;
            }
        };
        let outcome = bench_store(name, &pair, plan, &kek, &bar, &mut results).await;
        let cleanup = pair.cleanup().await;
        outcome?;
        cleanup?;
        pair.stores.clear();
    }
    bar.finish_with_message("done");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    Ok(results)
}

/// Two store handles on the same data (two instances' connection pools), and how to clean up.
struct Opened {
    stores: Vec<Arc<dyn Store>>,
    /// Whether instances learn of each other's revocations through a feed.
    feed: Option<&'static str>,
    postgres: Option<Arc<PostgresStore>>,
    redis: Option<(String, String)>,
    sqlite_file: Option<PathBuf>,
}

impl Opened {
    async fn cleanup(&mut self) -> anyhow::Result<()> {
        if let Some(pg) = self.postgres.take() {
            pg.drop_schema()
                .await
                .context("dropping the bench schema")?;
        }
        if let Some((url, ns)) = self.redis.take() {
            delete_redis_namespace(&url, &ns).await?;
        }
        if let Some(file) = self.sqlite_file.take() {
            for suffix in ["", "-wal", "-shm"] {
                let path = PathBuf::from(format!("{}{suffix}", file.display()));
                if path.exists() {
                    std::fs::remove_file(&path)
                        .with_context(|| format!("removing {}", path.display()))?;
                }
            }
        }
        Ok(())
    }
}

fn postgres_url() -> String {
    std::env::var("TESSERA_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn redis_url() -> String {
    std::env::var("TESSERA_BENCH_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A bounded wait for a store that may not answer, so an unreachable one is skipped quickly.
async fn within<T>(
    what: &str,
    fut: impl Future<Output = Result<T, tessera_store::StoreError>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(Duration::from_secs(5), fut).await {
        Ok(r) => r.with_context(|| format!("connecting to {what}")),
        Err(_) => bail!("{what} did not answer within 5 s"),
    }
}

async fn open(kind: BenchStore, ns: &str, tmp: &std::path::Path) -> anyhow::Result<Opened> {
    let mut opened = Opened {
        stores: Vec::new(),
        feed: None,
        postgres: None,
        redis: None,
        sqlite_file: None,
    };
    match kind {
        BenchStore::Memory => {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            opened.stores = vec![store];
        }
        BenchStore::Sqlite => {
            std::fs::create_dir_all(tmp).with_context(|| format!("creating {}", tmp.display()))?;
            let file = tmp.join("bench.db");
            opened.sqlite_file = Some(file.clone());
            let store = within("SQLite", SqliteStore::open(&file)).await?;
            opened.stores = vec![Arc::new(store)];
        }
        BenchStore::Postgres => {
            let url = postgres_url();
            let schema = format!("{ns}_pg");
            let a = Arc::new(within("PostgreSQL", PostgresStore::connect(&url, &schema)).await?);
            opened.postgres = Some(Arc::clone(&a));
            let b = within("PostgreSQL", PostgresStore::connect(&url, &schema)).await?;
            opened.stores = vec![a, Arc::new(b)];
            opened.feed = Some("PostgreSQL LISTEN/NOTIFY");
        }
        BenchStore::Redis => {
            let url = redis_url();
            let rns = format!("{ns}_rd");
            let ra = within(
                "Redis",
                RedisStore::connect(std::slice::from_ref(&url), &rns),
            )
            .await?;
            opened.redis = Some((url.clone(), rns.clone()));
            let rb = within(
                "Redis",
                RedisStore::connect(std::slice::from_ref(&url), &rns),
            )
            .await?;
            // Its durable store: PostgreSQL when it answers, as deployed; else a SQLite file.
            let pg_url = postgres_url();
            let durable: (Arc<dyn Store>, Arc<dyn Store>) =
                match within("PostgreSQL", PostgresStore::connect(&pg_url, &rns)).await {
                    Ok(a) => {
                        let a = Arc::new(a);
                        opened.postgres = Some(Arc::clone(&a));
                        let b = within("PostgreSQL", PostgresStore::connect(&pg_url, &rns)).await?;
                        opened.feed = Some("Redis pub/sub (+ PostgreSQL records)");
                        (a, Arc::new(b))
                    }
                    Err(_) => {
                        std::fs::create_dir_all(tmp)
                            .with_context(|| format!("creating {}", tmp.display()))?;
                        let file = tmp.join("bench-redis.db");
                        opened.sqlite_file = Some(file.clone());
                        let a: Arc<dyn Store> =
                            Arc::new(within("SQLite", SqliteStore::open(&file)).await?);
                        opened.feed = Some("Redis pub/sub (+ SQLite records)");
                        (Arc::clone(&a), a)
                    }
                };
            opened.stores = vec![
                Arc::new(SplitStore::new(durable.0, Arc::new(ra))),
                Arc::new(SplitStore::new(durable.1, Arc::new(rb))),
            ];
        }
    }
    Ok(opened)
}

/// Deletes every key of the bench namespace (and only those).
async fn delete_redis_namespace(url: &str, ns: &str) -> anyhow::Result<()> {
    use redis::AsyncCommands as _;
    let client = redis::Client::open(url).context("Redis URL")?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .context("connecting to Redis for clean-up")?;
    let keys: Vec<String> = {
        let mut iter: redis::AsyncIter<'_, String> = conn
            .scan_match(format!("*{ns}*"))
            .await
            .context("listing the bench keys")?;
        let mut keys = Vec::new();
        while let Some(k) = futures_next(&mut iter).await {
            keys.push(k);
        }
        keys
    };
    for chunk in keys.chunks(500) {
        let _: () = conn.del(chunk).await.context("deleting the bench keys")?;
    }
    Ok(())
}

async fn futures_next(iter: &mut redis::AsyncIter<'_, String>) -> Option<String> {
    loop {
        match iter.next_item().await {
            Some(Ok(k)) => return Some(k),
            Some(Err(_)) => continue,
            None => return None,
        }
    }
}

/// One instance: its state and its loopback address; the server stops when this is dropped.
struct Instance {
    state: AppState,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.state.close_streams();
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts an instance as `tessera serve` does (upkeep running, the store's feed live),
/// with login throttling lifted: the load generator logs in from one address far more often
/// than the limits allow a person to.
async fn start(
    store: Arc<dyn Store>,
    kek: &Kek,
    hasher: PasswordHasher,
) -> anyhow::Result<Instance> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let addr = listener.local_addr()?;
    let mut config = ServerConfig::new(format!("http://{addr}"));
    config.kek = Some(kek.clone());
    config.login_limit_per_ip = u32::MAX;
    config.login_limit_per_account = u32::MAX;
    config.register_limit_per_ip = u32::MAX;
    config.hashing_queue = 1024;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = AppState::new(store, config, clock, hasher)
        .await
        .context("starting an instance")?;
    let maintenance = state.spawn_maintenance(Duration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.revocations().feed_state() == FeedState::Down {
        if Instant::now() > deadline {
            bail!("the store's revocation feed did not come up within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app =
        tessera_server::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "bench instance stopped serving");
        }
    });
    Ok(Instance {
        state,
        addr,
        stop: Some(stop),
        tasks: vec![maintenance, server],
    })
}

fn cheap_hasher() -> anyhow::Result<PasswordHasher> {
    // Setup only (registering the bench users); the login figure uses the default cost.
    PasswordHasher::with_cost(8, 1).context("password hasher")
}

fn bearer(token: &str) -> Vec<String> {
    vec![format!("authorization: Bearer {token}")]
}

async fn load(
    bar: &ProgressBar,
    what: &str,
    addr: SocketAddr,
    scripts: Vec<Script>,
    plan: &Plan,
    expect: u16,
) -> anyhow::Result<Outcome> {
    bar.set_message(what.to_owned());
    let out = loadgen::run(addr, scripts, plan.duration, expect)
        .await
        .with_context(|| format!("load run {what}"))?;
    if out.ok == 0 {
        bail!("{what}: no request succeeded ({} errors)", out.errors);
    }
    bar.inc(1);
    Ok(out)
}

fn cycling(requests: Vec<Vec<u8>>, plan: &Plan) -> Vec<Script> {
    let requests = Arc::new(requests);
    (0..plan.connections)
        .map(|c| loadgen::cycle(Arc::clone(&requests), c * 7919))
        .collect()
}

async fn bench_store(
    name: &str,
    opened: &Opened,
    plan: &Plan,
    kek: &Kek,
    bar: &ProgressBar,
    results: &mut Results,
) -> anyhow::Result<()> {
    let Some(first) = opened.stores.first() else {
        bail!("no store opened");
    };
    bar.set_message(format!("{name}: setting up"));
    let a = start(Arc::clone(first), kek, cheap_hasher()?).await?;
    let context = ClientContext::default();
    // One session and one JWT for the "one" runs, then `plan.credentials` of each.
    let made = bench_user(&a.state, plan.credentials + 1, plan.credentials + 1)
        .await
        .map_err(anyhow::Error::msg)?;
    let bearer_get = |token: &String| loadgen::get("/v1/userinfo", &bearer(token));
    let (one_session, sessions) = made.sessions.split_first().context("no session made")?;
    let (one_jwt, jwts) = made.jwts.split_first().context("no JWT made")?;
    let (jwts, sessions): (Vec<_>, Vec<_>) = (
        jwts.iter().map(bearer_get).collect(),
        sessions.iter().map(bearer_get).collect(),
    );
    let n = plan.credentials;
    let kinds: Vec<(String, Vec<Vec<u8>>)> = vec![
        ("re-used JWT".into(), vec![bearer_get(one_jwt)]),
        (format!("{n} distinct JWTs"), jwts),
        ("one session (bearer)".into(), vec![bearer_get(one_session)]),
        (format!("{n} sessions (bearer)"), sessions),
    ];
    for (kind, requests) in kinds {
        let out = load(
            bar,
            &format!("{name}: userinfo, {kind}"),
            a.addr,
            cycling(requests, plan),
            plan,
            200,
        )
        .await?;
        results.userinfo.push(Row {
            store: name.to_owned(),
            kind,
            outcome: out,
        });
    }

    // Issuance. Login at the server's default password cost, on an instance of its own.
    let login_instance = start(
        Arc::clone(first),
        kek,
        PasswordHasher::owasp().context("password hasher")?,
    )
    .await?;
    let login_user = fresh_name("l")?;
    service::register(
        &login_instance.state,
        &login_user,
        PASSWORD.into(),
        false,
        &context,
    )
    .await
    .context("registering the login user")?;
    let login_req = login_body(&login_user);
    let out = load(
        bar,
        &format!("{name}: login (password grant, default Argon2id cost)"),
        login_instance.addr,
        cycling(vec![login_req], plan),
        plan,
        200,
    )
    .await?;
    results.issuance.push(Row {
        store: name.to_owned(),
        kind: "login (password grant, default Argon2id cost: 19 MiB, 2 passes)".into(),
        outcome: out,
    });
    drop(login_instance);

    // Refresh: each connection follows its own rotation chain from a login of its own.
    let mut scripts: Vec<Script> = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        let answer = loadgen::once(a.addr, &login_body(&made.username)).await?;
        let first_refresh = refresh_token_of(&answer)
            .with_context(|| format!("a login for a refresh chain answered {}", answer.status))?;
        let mut next = first_refresh;
        scripts.push(Box::new(move |last: Option<&loadgen::Answer>| {
            if let Some(answer) = last {
                next = refresh_token_of(answer)?;
            }
            Some(loadgen::post_form(
                "/oauth/token",
                &[],
                &format!("grant_type=refresh_token&refresh_token={next}"),
            ))
        }));
    }
    let out = load(bar, &format!("{name}: refresh"), a.addr, scripts, plan, 200).await?;
    results.issuance.push(Row {
        store: name.to_owned(),
        kind: "refresh (rotation)".into(),
        outcome: out,
    });

    let (client, secret) = service::register_client(
        &a.state,
        NewClient {
            name: "bench".into(),
            scope: Scope::parse("bench:read").context("scope")?,
            redirect_uris: Vec::new(),
            public: false,
            first_party: false,
            dpop: false,
        },
        &service::Actor::Operator,
    )
    .await
    .context("registering the bench client")?;
    let secret = secret.context("a confidential client has a secret")?;
    let cc = loadgen::post_form(
        "/oauth/token",
        &[],
        &format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            client.id.as_str(),
            secret.expose_secret()
        ),
    );
    let out = load(
        bar,
        &format!("{name}: client_credentials"),
        a.addr,
        cycling(vec![cc], plan),
        plan,
        200,
    )
    .await?;
    results.issuance.push(Row {
        store: name.to_owned(),
        kind: "client_credentials".into(),
        outcome: out,
    });

    if let (Some(feed), Some(second)) = (opened.feed, opened.stores.get(1)) {
        bar.set_message(format!("{name}: revocation propagation"));
        let b = start(Arc::clone(second), kek, cheap_hasher()?).await?;
        let delays = propagation(&a.state, &b.state, plan.rounds).await?;
        results.propagation.push(Propagation {
            store: format!("{name}: {feed}"),
            delays_us: delays,
        });
    }
    bar.inc(1);
    Ok(())
}

/// A password-grant request for `username`.
fn login_body(username: &str) -> Vec<u8> {
    loadgen::post_form(
        "/oauth/token",
        &[],
        &format!(
            "grant_type=password&username={username}&password={}",
            PASSWORD.replace(' ', "+")
        ),
    )
}

/// The `refresh_token` member of a token answer.
fn refresh_token_of(answer: &loadgen::Answer) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
    value.get("refresh_token")?.as_str().map(str::to_owned)
}

/// Revokes a token on `a` and times until `b` refuses it from memory (its feed is live, so
/// its memory alone decides), `rounds` times. Returns the sorted delays in microseconds.
async fn propagation(a: &AppState, b: &AppState, rounds: usize) -> anyhow::Result<Vec<u32>> {
    if b.revocations().feed_state() != FeedState::Live {
        bail!("the second instance's feed is not live");
    }
    let mut delays = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let jti = random_id()?;
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
        .context("recording a revocation")?;
        while !b
            .is_revoked(subject, "")
            .await
            .context("checking a revocation")?
        {
            if start.elapsed() > Duration::from_secs(5) {
                bail!("a revocation did not reach the second instance within 5 s");
            }
            tokio::task::yield_now().await;
        }
        delays.push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    delays.sort_unstable();
    Ok(delays)
}

/// Parses `500ms`, `3s` or `3` (seconds).
pub fn parse_run_duration(text: &str) -> Result<Duration, String> {
    let (digits, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms or 3s"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        _ => return Err(format!("unknown unit {unit:?}: use ms or s")),
    };
    if d < Duration::from_millis(50) || d > Duration::from_secs(600) {
        return Err(format!("{text:?}: give 50ms to 600s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::parse_run_duration;
    use std::time::Duration;

    #[test]
    fn run_durations_take_ms_or_s() {
        assert_eq!(parse_run_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_run_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_run_duration("3"), Ok(Duration::from_secs(3)));
        for bad in ["", "ms", "10ms", "1h", "601s", "1.5s"] {
            assert!(parse_run_duration(bad).is_err(), "{bad}");
        }
    }
}
