//! Tessera against the usual axum stack — `tower-sessions` (memory store) for sessions,
//! `jsonwebtoken` (EdDSA) for access tokens — serving the same `GET /v1/userinfo`, driven by
//! the same load generator (`tessera bench`'s, `src/loadgen.rs`) under the same load,
//! interleaved: Tessera, usual, Tessera, usual… three rounds. Prints each round's rates and
//! the ratios, Tessera ÷ usual stack (above 1: Tessera serves more).
//!
//! Run: `cargo bench -p tessera --bench usual_stack` (`TESSERA_BENCH_SECS`, default 2, is
//! each run's length; `TESSERA_BENCH_REDIS`, default the local Redis, for the Redis session
//! figure, skipped with a reason when Redis does not answer).
//!
//! Both servers and the load generator share this process's runtime and the machine's
//! cores, so a ratio compares the servers' work per request, not their capacity. Three figures
//! explain the session ratios: two ceilings (Tessera's `/healthz`, a route that checks
//! nothing, and a bare axum route answering a fixed body, each against the usual stack's
//! whole session check), each router's time per request called in process without a
//! network, and, for Redis, the CPU time per request of this process and of the Redis server
//! (Linux `/proc`, Redis `INFO cpu`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../src/bench_user.rs"]
#[allow(dead_code)]
mod bench_user;
#[path = "../src/loadgen.rs"]
#[allow(dead_code)]
mod loadgen;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tessera_core::jose::{Algorithm as TesseraAlg, SigningKey};
use tessera_core::opaque::random_id;
use tessera_core::password::PasswordHasher;
use tessera_core::time::{Clock, SystemClock};
use tessera_server::{AppState, ServerConfig};
use tessera_store::Store;
use tessera_store::memory::MemoryStore;
use tessera_store::redis::RedisStore;
use tessera_store::split::SplitStore;
use tower_sessions::{Session, SessionManagerLayer};

/// The allocator the `tessera` binary ships with. The two servers share this process, so
/// the usual stack runs on it too: the ratios compare the servers, not two allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONNECTIONS: usize = 16;
const ROUNDS: usize = 3;
const COLD_JWTS: usize = 1000;
const SESSIONS: usize = 8;

/// The claims of Tessera's access tokens (RFC 9068 shape), for the usual stack to mint and
/// check.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    sid: Option<String>,
    scope: Option<String>,
    client_id: String,
    username: Option<String>,
}

/// What a usual-stack session holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionUser {
    sub: String,
    username: String,
}

/// The usual stack's `/v1/userinfo` answer: the same members as Tessera's.
#[derive(Serialize)]
struct Userinfo {
    sub: String,
    auth: &'static str,
    sid: Option<String>,
    username: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    exp: Option<i64>,
}

struct Usual {
    decoding: DecodingKey,
    validation: Validation,
}

/// A JWT in `Authorization: Bearer`, else the session cookie.
async fn usual_userinfo(
    axum::extract::State(usual): axum::extract::State<Arc<Usual>>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return match jsonwebtoken::decode::<Claims>(token, &usual.decoding, &usual.validation) {
            Ok(data) => Json(Userinfo {
                sub: data.claims.sub,
                auth: "jwt",
                sid: data.claims.sid,
                username: data.claims.username,
                client_id: Some(data.claims.client_id),
                scope: data.claims.scope,
                exp: Some(data.claims.exp),
            })
            .into_response(),
            Err(_) => StatusCode::UNAUTHORIZED.into_response(),
        };
    }
    match session.get::<SessionUser>("user").await {
        Ok(Some(user)) => Json(Userinfo {
            sub: user.sub,
            auth: "session",
            sid: session.id().map(|id| id.to_string()),
            username: Some(user.username),
            client_id: None,
            scope: None,
            exp: None,
        })
        .into_response(),
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// Starts a session and answers with its id (the cookie's value), for the bench to send.
async fn usual_login(session: Session) -> Response {
    session
        .insert(
            "user",
            SessionUser {
                sub: "usual-user".into(),
                username: "alice".into(),
            },
        )
        .await
        .unwrap();
    session.save().await.unwrap();
    session.id().unwrap().to_string().into_response()
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// The usual stack on a loopback port, its router (for the in-process figures) and its
/// signing key.
async fn usual_stack() -> (SocketAddr, axum::Router, EncodingKey) {
    let key = SigningKey::generate(TesseraAlg::EdDSA, "usual".into()).unwrap();
    let encoding = EncodingKey::from_ed_der(&key.secret_bytes_dangerously());
    let jwk = key.verifying_key().public_jwk().unwrap();
    let decoding = DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["http://usual.test"]);
    validation.set_audience(&["http://usual.test"]);
    let usual = Arc::new(Usual {
        decoding,
        validation,
    });
    let app = axum::Router::new()
        .route("/v1/userinfo", get(usual_userinfo))
        .route("/login", get(usual_login))
        .with_state(usual)
        .layer(SessionManagerLayer::new(tower_sessions::MemoryStore::default()).with_secure(false));
    (serve(app.clone()).await, app, encoding)
}

/// The time one request takes through `router` called in process (tower's `oneshot`: no
/// socket, no HTTP parsing), body read included; the median of 50 batches of 2,000 after a
/// warm-up. What the router itself costs, apart from the network and the load generator.
async fn in_process(router: &axum::Router, request: &[u8]) -> Duration {
    use tower::ServiceExt as _;
    let (head, _) = std::str::from_utf8(request)
        .unwrap()
        .split_once("\r\n\r\n")
        .unwrap();
    let mut lines = head.split("\r\n");
    let path = lines.next().unwrap().split(' ').nth(1).unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let call = || async {
        let mut req = axum::http::Request::get(path.as_str());
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = router
            .clone()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
    };
    for _ in 0..2_000 {
        call().await;
    }
    let mut batches = Vec::with_capacity(50);
    for _ in 0..50 {
        let start = std::time::Instant::now();
        for _ in 0..2_000 {
            call().await;
        }
        batches.push(start.elapsed() / 2_000);
    }
    batches.sort_unstable();
    batches[batches.len() / 2]
}

fn usual_jwt(key: &EncodingKey) -> String {
    let now = SystemClock.now().0;
    let claims = Claims {
        iss: "http://usual.test".into(),
        sub: "usual-user".into(),
        aud: "http://usual.test".into(),
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: random_id().unwrap(),
        sid: Some("usual-sid".into()),
        scope: None,
        client_id: "first-party".into(),
        username: Some("alice".into()),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, key).unwrap()
}

/// A Tessera instance as `tessera bench` starts one.
async fn tessera(store: Arc<dyn Store>) -> (SocketAddr, AppState) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let config = ServerConfig::new(format!("http://{addr}"));
    let state = AppState::new(
        store,
        config,
        clock,
        PasswordHasher::with_cost(8, 1).unwrap(),
    )
    .await
    .unwrap();
    state.spawn_maintenance(Duration::from_secs(1));
    let app =
        tessera_server::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, state)
}

/// A user on `state`, its session tokens and access JWTs.
async fn tessera_credentials(
    state: &AppState,
    sessions: usize,
    jwts: usize,
) -> (Vec<String>, Vec<String>) {
    let made = bench_user::bench_user(state, sessions, jwts).await.unwrap();
    (made.sessions, made.jwts)
}

fn bearer_gets(path: &str, tokens: &[String]) -> Arc<Vec<Vec<u8>>> {
    Arc::new(
        tokens
            .iter()
            .map(|t| loadgen::get(path, &[format!("authorization: Bearer {t}")]))
            .collect(),
    )
}

fn cookie_gets(ids: &[String]) -> Arc<Vec<Vec<u8>>> {
    Arc::new(
        ids.iter()
            .map(|id| loadgen::get("/v1/userinfo", &[format!("cookie: id={id}")]))
            .collect(),
    )
}

/// One side of a comparison: where to send what.
#[derive(Clone)]
struct Side {
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
}

async fn measure(side: &Side, secs: Duration) -> loadgen::Outcome {
    let scripts = (0..CONNECTIONS)
        .map(|c| loadgen::cycle(Arc::clone(&side.requests), c * 7919))
        .collect();
    let out = loadgen::run(side.addr, scripts, secs, 200).await.unwrap();
    assert_eq!(out.errors, 0, "a request failed: {out:?}");
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs A, B, A, B… for `ROUNDS` rounds; prints each and returns the median ratio A ÷ B.
async fn compare(
    name: &str,
    a_name: &str,
    a: &Side,
    b_name: &str,
    b: &Side,
    secs: Duration,
) -> f64 {
    let (mut ra, mut rb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let oa = measure(a, secs).await;
        let ob = measure(b, secs).await;
        println!(
            "  round {round}: {a_name} {:>8.0}/s p99 {:>5} µs ({:.0} B/req) | {b_name} {:>8.0}/s p99 {:>5} µs ({:.0} B/req) | ratio {:.2}",
            oa.rate(),
            oa.quantile_us(0.99),
            oa.request_bytes_each(),
            ob.rate(),
            ob.quantile_us(0.99),
            ob.request_bytes_each(),
            oa.rate() / ob.rate()
        );
        ratios.push(oa.rate() / ob.rate());
        ra.push(oa.rate());
        rb.push(ob.rate());
    }
    let ratio = median(ratios);
    println!(
        "{name}: {a_name} {:.0}/s, {b_name} {:.0}/s (medians) → ratio {ratio:.2}\n",
        median(ra),
        median(rb)
    );
    ratio
}

#[tokio::main]
async fn main() {
    let secs = Duration::from_secs(
        std::env::var("TESSERA_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2),
    );
    println!(
        "Tessera vs the usual stack (axum + tower-sessions memory store + jsonwebtoken EdDSA): \
         GET /v1/userinfo, {CONNECTIONS} keep-alive connections, {secs:?} per run, {ROUNDS} interleaved rounds, {} CPUs\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let (t_addr, t_state) = tessera(Arc::new(MemoryStore::new())).await;
    let (t_sessions, t_jwts) = tessera_credentials(&t_state, SESSIONS, COLD_JWTS).await;
    let (u_addr, u_router, u_key) = usual_stack().await;
    let u_jwts: Vec<String> = (0..COLD_JWTS).map(|_| usual_jwt(&u_key)).collect();
    let mut u_sessions = Vec::new();
    for _ in 0..SESSIONS {
        let answer = loadgen::once(u_addr, &loadgen::get("/login", &[]))
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        u_sessions.push(String::from_utf8(answer.body).unwrap());
    }

    let tessera_side = |requests| Side {
        addr: t_addr,
        requests,
    };
    let usual_side = |requests| Side {
        addr: u_addr,
        requests,
    };
    let mut summary = Vec::new();
    for (name, t, u) in [
        (
            "one re-used JWT",
            bearer_gets("/v1/userinfo", &t_jwts[..1]),
            bearer_gets("/v1/userinfo", &u_jwts[..1]),
        ),
        (
            "1,000 cold JWTs",
            bearer_gets("/v1/userinfo", &t_jwts),
            bearer_gets("/v1/userinfo", &u_jwts),
        ),
        (
            "one session",
            bearer_gets("/v1/userinfo", &t_sessions[..1]),
            cookie_gets(&u_sessions[..1]),
        ),
        (
            "8 sessions",
            bearer_gets("/v1/userinfo", &t_sessions),
            cookie_gets(&u_sessions),
        ),
    ] {
        println!("{name} (Tessera ÷ usual stack):");
        let r = compare(
            name,
            "tessera",
            &tessera_side(t),
            "usual",
            &usual_side(u),
            secs,
        )
        .await;
        summary.push((format!("{name}: Tessera ÷ usual stack"), r));
    }

    // The most any session check could reach here: Tessera answering a route that checks
    // nothing, against the usual stack's whole session check.
    println!("Ceiling: Tessera /healthz ÷ usual stack one session:");
    let r = compare(
        "healthz vs usual session",
        "tessera healthz",
        &tessera_side(Arc::new(vec![loadgen::get("/healthz", &[])])),
        "usual session",
        &usual_side(cookie_gets(&u_sessions[..1])),
        secs,
    )
    .await;
    summary.push((
        "ceiling: Tessera /healthz ÷ usual stack one session".into(),
        r,
    ));
    // And the most any axum server could reach: a route that answers a fixed body.
    let bare_addr = serve(axum::Router::new().route(
        "/v1/userinfo",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], "{}") }),
    ))
    .await;
    println!("Ceiling of any axum server: a fixed answer ÷ usual stack one session:");
    let r = compare(
        "fixed answer vs usual session",
        "fixed answer",
        &Side {
            addr: bare_addr,
            requests: Arc::new(vec![loadgen::get("/v1/userinfo", &[])]),
        },
        "usual session",
        &usual_side(cookie_gets(&u_sessions[..1])),
        secs,
    )
    .await;
    summary.push((
        "ceiling: bare axum fixed answer ÷ usual stack one session".into(),
        r,
    ));

    // The same requests through each router in process: the routers' own cost.
    let t_router = tessera_server::app(t_state.clone());
    let t_session = bearer_gets("/v1/userinfo", &t_sessions[..1]);
    let u_session = cookie_gets(&u_sessions[..1]);
    let healthz = loadgen::get("/healthz", &[]);
    println!(
        "In process (oneshot, no network), per request: Tessera session check {:?}, usual stack session check {:?}, Tessera /healthz {:?}\n",
        in_process(&t_router, &t_session[0]).await,
        in_process(&u_router, &u_session[0]).await,
        in_process(&t_router, &healthz).await,
    );

    println!("Tessera /v1/userinfo with a re-used JWT ÷ Tessera /healthz:");
    let r = compare(
        "userinfo vs healthz",
        "userinfo",
        &tessera_side(bearer_gets("/v1/userinfo", &t_jwts[..1])),
        "healthz",
        &tessera_side(Arc::new(vec![loadgen::get("/healthz", &[])])),
        secs,
    )
    .await;
    summary.push((
        "Tessera /v1/userinfo (re-used JWT) ÷ Tessera /healthz".into(),
        r,
    ));

    let redis_url =
        std::env::var("TESSERA_BENCH_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let ns = format!(
        "usual_{}",
        random_id().unwrap().to_lowercase().replace(['-', '_'], "")
    );
    match RedisStore::connect(std::slice::from_ref(&redis_url), &ns).await {
        Ok(redis) => {
            let store: Arc<dyn Store> = Arc::new(SplitStore::new(
                Arc::new(MemoryStore::new()),
                Arc::new(redis),
            ));
            let (r_addr, r_state) = tessera(store).await;
            let (r_sessions, _) = tessera_credentials(&r_state, 1, 0).await;
            println!("Tessera session check over HTTP, Redis ÷ memory (one session):");
            let r = compare(
                "redis vs memory",
                "redis",
                &Side {
                    addr: r_addr,
                    requests: bearer_gets("/v1/userinfo", &r_sessions),
                },
                "memory",
                &tessera_side(bearer_gets("/v1/userinfo", &t_sessions[..1])),
                secs,
            )
            .await;
            summary.push(("Tessera session /v1/userinfo, Redis ÷ memory".into(), r));
            cpu_per_request(
                "memory",
                &tessera_side(bearer_gets("/v1/userinfo", &t_sessions[..1])),
                &redis_url,
                secs,
            )
            .await;
            cpu_per_request(
                "redis",
                &Side {
                    addr: r_addr,
                    requests: bearer_gets("/v1/userinfo", &r_sessions),
                },
                &redis_url,
                secs,
            )
            .await;
            println!();
            delete_keys(&redis_url, &ns).await;
        }
        Err(e) => println!("skipping Redis session vs memory ({redis_url}): {e}\n"),
    }

    println!("Ratios (medians of {ROUNDS} interleaved rounds, requests/s):");
    for (name, r) in summary {
        println!("  {name:<58} {r:.2}");
    }
}

/// Where the CPU of one session check goes: one more run of `side`, with the CPU time this
/// process (servers, store clients and load generator) and the Redis server used during it,
/// per request served. On a machine whose cores the run saturates, the Redis server's share
/// is what a Redis-backed check cannot give back to serving requests.
async fn cpu_per_request(name: &str, side: &Side, redis_url: &str, secs: Duration) {
    let (Some(own_before), Some(redis_before)) = (own_cpu_secs(), redis_cpu_secs(redis_url).await)
    else {
        println!(
            "  CPU per request ({name}): not measurable here (needs Linux /proc and Redis INFO)"
        );
        return;
    };
    let out = measure(side, secs).await;
    let (Some(own_after), Some(redis_after)) = (own_cpu_secs(), redis_cpu_secs(redis_url).await)
    else {
        return;
    };
    #[allow(clippy::cast_precision_loss)] // request counts far below 2^52
    let requests = out.ok as f64;
    println!(
        "  CPU per request ({name}, {:.0}/s): this process {:.1} µs, Redis server {:.1} µs",
        out.rate(),
        (own_after - own_before) / requests * 1e6,
        (redis_after - redis_before) / requests * 1e6,
    );
}

/// CPU seconds (user + system) this process has used, from Linux's `/proc/self/stat`, whose
/// times are in clock ticks of 100 per second (`USER_HZ`, fixed by the kernel's ABI).
fn own_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 of `rest`.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    #[allow(clippy::cast_precision_loss)]
    Some(ticks as f64 / 100.0)
}

/// CPU seconds (user + system) the Redis server reports having used (`INFO cpu`).
async fn redis_cpu_secs(url: &str) -> Option<f64> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(&mut conn)
        .await
        .ok()?;
    let field = |name: &str| -> Option<f64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
            .trim()
            .parse()
            .ok()
    };
    Some(field("used_cpu_user")? + field("used_cpu_sys")?)
}

/// Deletes the keys of this bench's Redis namespace.
async fn delete_keys(url: &str, ns: &str) {
    use redis::AsyncCommands as _;
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys = Vec::new();
    {
        let mut iter: redis::AsyncIter<'_, String> =
            conn.scan_match(format!("*{ns}*")).await.unwrap();
        while let Some(k) = iter.next_item().await {
            keys.push(k.unwrap());
        }
    }
    if !keys.is_empty() {
        let _: () = conn.del(keys).await.unwrap();
    }
}
