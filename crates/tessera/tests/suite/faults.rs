#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Two `tessera serve` instances over PostgreSQL + Redis, with each service killed under load
//! and brought back. What must hold throughout: a revoked token is never accepted (a store
//! outage may make the answer 503, never a stale 200), every answer is 200, 401 or 503 (no
//! other 5xx, no crash), `/readyz` says what is wrong, and service resumes by itself once the
//! store is back.
//!
//! Refreshes go through the same outages (security finding 7): a refresh answered 503 must
//! not have spent its token, so the client's retry after the grace window rotates instead of
//! being taken for reuse and revoking the session tree.
//!
//! The tests kill servers, so they start their own — a `redis-server` and a PostgreSQL cluster
//! (`pg_createcluster`, which needs root) on free loopback ports, the latter behind a TCP proxy
//! in the test process where the test must choose the moment of the outage — and never touch
//! the machine's shared ones. Without those tools (or root) they print "skipping: …", unless
//! `CI=true`, where they fail.

use crate::common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{
    PASSWORD, Response, Server, TEST_KEK, cookie_login, free_port, password_grant, random_hex,
    register, skip, start_servers, try_request, userinfo_bearer, userinfo_cookie,
};
use serde_json::json;

const ISSUER: &str = "http://tessera.test";

/// Each test has a PostgreSQL and a Redis of its own, so one fixed namespace will do.
const NAMESPACE: &str = "tf";

/// How long a revocation may take to reach the other instance.
const PUSH_WITHIN: Duration = Duration::from_secs(2);

/// How long an instance may take to notice an outage (the PostgreSQL pool gives up on a
/// connection after 3 s; the Redis feed pings every second).
const NOTICE_WITHIN: Duration = Duration::from_secs(10);

/// How long an instance may take to resume once its store is back (reconnection backoff is
/// capped at 2 s).
const RECOVER_WITHIN: Duration = Duration::from_secs(15);

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// --- A private redis-server. ---

/// What a private Redis keeps across a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RedisData {
    /// Nothing is persisted: a restart comes back empty, as a Redis used as a cache may.
    Volatile,
    /// Every write is appended and fsynced before it is acknowledged (`appendfsync always`):
    /// a restart, even after SIGKILL, comes back with everything — sessions included.
    Durable,
}

/// A `redis-server` of this test's own, killed when dropped.
struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    data: RedisData,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start(data: RedisData) -> Self {
        let mut redis = Self {
            child: None,
            port: free_port().port(),
            data,
            dir: tempfile::tempdir().unwrap(),
        };
        redis.spawn();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts `redis-server` on this port and waits until it answers `PING`.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("redis.log"))
            .unwrap();
        let persistence: &[&str] = match self.data {
            RedisData::Volatile => &["--appendonly", "no"],
            RedisData::Durable => &["--appendonly", "yes", "--appendfsync", "always"],
        };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no"])
            .args(persistence)
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawning redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pong() {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer:\n{}",
                self.port,
                std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pong(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// SIGKILL: no shutdown, connections cut as by a crash.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

// --- A private PostgreSQL cluster. ---

/// A PostgreSQL cluster of this test's own (`pg_createcluster`), dropped with its data when
/// this is dropped, whether the test passed or panicked.
struct PrivatePostgres {
    version: String,
    name: String,
    port: u16,
}

impl PrivatePostgres {
    fn create() -> Self {
        let version = std::fs::read_dir("/usr/lib/postgresql")
            .expect("listing /usr/lib/postgresql")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|v| Some((v.parse::<u32>().ok()?, v)))
            .max()
            .expect("a PostgreSQL version under /usr/lib/postgresql")
            .1;
        let cluster = Self {
            version,
            name: format!("tf_{}", random_hex(4)),
            port: free_port().port(),
        };
        // fsync off: a throwaway cluster whose "crash" (stop -m immediate) is a process kill,
        // not a power cut; the OS keeps every write. It makes creation and recovery quick.
        run(Command::new("pg_createcluster")
            .args([&cluster.version, &cluster.name])
            .args(["-p", &cluster.port.to_string(), "-o", "fsync=off"])
            .args(["--", "--auth=trust", "--no-sync"]));
        cluster.start();
        run(Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &cluster.port.to_string()])
            .args(["-U", "postgres", "-q", "-c", "create database test"]));
        cluster
    }

    fn url(&self) -> String {
        url_of_postgres_at(self.port)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn start(&self) {
        run(Command::new("pg_ctlcluster").args([&self.version, &self.name, "start"]));
    }

    /// Stops the server without a shutdown checkpoint; clients' connections are cut.
    fn stop_immediately(&self) {
        run(Command::new("pg_ctlcluster").args([
            &self.version,
            &self.name,
            "stop",
            "-m",
            "immediate",
        ]));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let dropped = Command::new("pg_dropcluster")
            .args(["--stop", &self.version, &self.name])
            .stdin(Stdio::null())
            .output();
        match dropped {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "warning: pg_dropcluster {} failed: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("warning: could not run pg_dropcluster: {e}"),
        }
    }
}

// --- A TCP proxy in front of PostgreSQL, which the test can cut. ---

/// PostgreSQL's acknowledgement of a COMMIT: a CommandComplete message (`C`, its length 11,
/// the tag `COMMIT`).
const COMMIT_ACK: &[u8] = b"C\0\0\0\x0bCOMMIT\0";

/// A TCP proxy from a free loopback port to a PostgreSQL server, which the test can cut and
/// restore: an outage of the database as its clients see it, with the database left running.
///
/// A cut refuses new connections and ends every open one, with one care a stopped server
/// would not take: what was already forwarded is still answered. Only the half towards
/// PostgreSQL is closed at first, so it finishes what it received — a COMMIT that got through
/// is acknowledged — and the client's connection is closed once PostgreSQL has closed its
/// side. (A stopped PostgreSQL may die between committing and acknowledging, after which no
/// client can know whether its transaction took effect; the outages tested here are the ones a
/// server can handle.)
///
/// [`CuttableProxy::cut_at_next_commit`] times a cut at the worst moment for a server whose
/// commit point is not its last store call: just after PostgreSQL acknowledged a COMMIT,
/// before the client has read the acknowledgement — so the client's next statement, whatever
/// it is, cannot reach the database.
struct CuttableProxy {
    inner: Arc<ProxyState>,
}

struct ProxyState {
    port: u16,
    upstream: SocketAddr,
    /// The upstream sides of the connections opened since the last cut.
    open: Mutex<Vec<TcpStream>>,
    /// The accepting thread and its stop flag, while not cut.
    acceptor: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
    /// Cut when PostgreSQL next acknowledges a COMMIT.
    cut_at_commit: AtomicBool,
    /// Cuts so far.
    cuts: AtomicUsize,
}

impl CuttableProxy {
    fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let inner = Arc::new(ProxyState {
            port: listener.local_addr().unwrap().port(),
            upstream,
            open: Mutex::default(),
            acceptor: Mutex::default(),
            cut_at_commit: AtomicBool::new(false),
            cuts: AtomicUsize::new(0),
        });
        ProxyState::accept_on(&inner, listener);
        Self { inner }
    }

    fn port(&self) -> u16 {
        self.inner.port
    }

    /// Cuts at PostgreSQL's next COMMIT acknowledgement, and returns once it has; panics if
    /// none comes within a few seconds (nothing is committing).
    fn cut_at_next_commit(&self) {
        let cuts = self.inner.cuts.load(Ordering::SeqCst);
        self.inner.cut_at_commit.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.inner.cuts.load(Ordering::SeqCst) == cuts {
            assert!(
                Instant::now() < deadline,
                "no COMMIT went through the proxy in 10 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Accepts connections on the same port again.
    fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.inner.port))
            .unwrap_or_else(|e| panic!("rebinding the proxy's port {}: {e}", self.inner.port));
        ProxyState::accept_on(&self.inner, listener);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.inner.cut();
    }
}

impl ProxyState {
    fn accept_on(this: &Arc<Self>, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let (proxy, stopped) = (Arc::clone(this), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break; // Dropping the listener refuses whatever comes next.
                }
                let Ok(client) = client else { continue };
                // No upstream: dropping `client` closes it, as the database would have.
                let Ok(server) = TcpStream::connect(proxy.upstream) else {
                    continue;
                };
                proxy.open.lock().unwrap().push(server.try_clone().unwrap());
                relay(&proxy, client, server);
            }
        });
        *this.acceptor.lock().unwrap() = Some((stop, thread));
    }

    /// Refuses new connections and winds down the open ones (see [`CuttableProxy`]).
    fn cut(&self) {
        let acceptor = self.acceptor.lock().unwrap().take();
        if let Some((stop, thread)) = acceptor {
            stop.store(true, Ordering::SeqCst);
            // Wakes the blocked `accept`, which then sees the flag.
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            thread.join().unwrap();
            self.cuts.fetch_add(1, Ordering::SeqCst);
        }
        for upstream in self.open.lock().unwrap().drain(..) {
            let _ = upstream.shutdown(Shutdown::Write);
        }
    }
}

/// Copies bytes both ways between `client` and `server` until either side closes, on two
/// threads of their own; cuts the proxy before forwarding a COMMIT acknowledgement if asked to.
fn relay(proxy: &Arc<ProxyState>, client: TcpStream, server: TcpStream) {
    let (mut from_client, mut to_server) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let (mut from_server, mut to_client, proxy) = (server, client, Arc::clone(proxy));
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        // The end of what came before, for an acknowledgement split across two reads.
        let mut seen: Vec<u8> = Vec::new();
        loop {
            let n = match from_server.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(COMMIT_ACK.len()).any(|w| w == COMMIT_ACK)
                && proxy.cut_at_commit.swap(false, Ordering::SeqCst)
            {
                proxy.cut();
            }
            seen.drain(..seen.len().saturating_sub(COMMIT_ACK.len() - 1));
            if to_client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        // PostgreSQL has said all it will: the client's connection ends, both ways.
        let _ = to_client.shutdown(Shutdown::Both);
    });
}

/// A store the test can take down and bring back.
trait Outage {
    fn begin(&mut self);
    fn end(&mut self);
}

/// Redis killed (SIGKILL) and restarted on its port.
impl Outage for PrivateRedis {
    fn begin(&mut self) {
        self.kill();
    }
    fn end(&mut self) {
        self.spawn();
    }
}

/// PostgreSQL cut off just after it acknowledged a COMMIT, then reachable again.
impl Outage for CuttableProxy {
    fn begin(&mut self) {
        self.cut_at_next_commit();
    }
    fn end(&mut self) {
        self.restore();
    }
}

/// The URL of the test database of a private cluster reached on `port` (its own, or a
/// proxy's).
fn url_of_postgres_at(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/test")
}

/// Both private services, or `None` (after saying why) where this machine cannot run them.
fn private_services(redis_data: RedisData) -> Option<(PrivatePostgres, PrivateRedis)> {
    let missing: Vec<&str> = ["pg_createcluster", "pg_ctlcluster", "pg_dropcluster"]
        .into_iter()
        .chain(["psql", "redis-server"])
        .filter(|p| !on_path(p))
        .collect();
    if !missing.is_empty() {
        skip(&format!("not installed: {}", missing.join(", ")));
        return None;
    }
    if !Path::new("/usr/lib/postgresql").is_dir() {
        skip("no PostgreSQL server under /usr/lib/postgresql");
        return None;
    }
    if !is_root() {
        skip("pg_createcluster needs root to create a private PostgreSQL cluster");
        return None;
    }
    // Redis first: if creating the cluster panics, the redis-server is still cleaned up.
    let redis = PrivateRedis::start(redis_data);
    Some((PrivatePostgres::create(), redis))
}

/// Instances A and B over PostgreSQL at `store` and Redis at `redis`, each following the
/// revocation feed, with `extra` arguments.
fn start_pair(store: &str, redis: &str, extra: &[&str]) -> Vec<Server> {
    let servers = start_servers(2, |cmd, addr, _| {
        cmd.env("TESSERA_KEK", TEST_KEK)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--issuer")
            .arg(ISSUER)
            .arg("--store")
            .arg(store)
            .arg("--redis")
            .arg(redis)
            .arg("--namespace")
            .arg(NAMESPACE)
            .args(extra);
    });
    for s in &servers {
        s.wait_readiness(&["ready"], RECOVER_WITHIN);
    }
    servers
}

// --- The credentials every test sets up, and the load it keeps up while a store fails. ---

/// A user with a cookie session, a live access token `j1` and one `j2` revoked (on B)
/// before any fault.
struct Credentials {
    cookie: String,
    j1: String,
    j2: String,
}

fn set_up(a: &Server, b: &Server, username: &str) -> Credentials {
    register(a, username, PASSWORD);
    let (cookie, _) = cookie_login(a, username, PASSWORD);
    let (j1, _) = password_grant(a, username, PASSWORD);
    let (j2, _) = password_grant(b, username, PASSWORD);
    let resp = b.post_form("/oauth/revoke", &[("token", &j2)]);
    assert_eq!(resp.status, 200, "revoking J2 on B: {resp:?}");
    let revoked = Instant::now();
    while userinfo_bearer(a, &j2).status != 401 {
        assert!(revoked.elapsed() < PUSH_WITHIN, "J2 still accepted on A");
        std::thread::sleep(Duration::from_millis(5));
    }
    for s in [a, b] {
        assert_eq!(userinfo_bearer(s, &j1).status, 200, "J1 on {}", s.addr);
        assert_eq!(userinfo_bearer(s, &j2).status, 401, "J2 on {}", s.addr);
        assert_eq!(userinfo_cookie(s, &cookie).status, 200, "S on {}", s.addr);
    }
    Credentials { cookie, j1, j2 }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Probe {
    J1,
    J2,
    Cookie,
}

/// One request of the load: which instance, which credential, what came back (or why nothing
/// did).
#[derive(Debug)]
struct Sample {
    instance: SocketAddr,
    probe: Probe,
    outcome: Result<u16, String>,
}

/// Background load: a thread per instance and credential sending `/v1/userinfo` with J1, J2
/// or the cookie, recording every answer, until stopped. One thread per credential, so a
/// request stalled on a dead store does not pause the others.
struct Hammer {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Sample>>>,
}

impl Hammer {
    fn start(servers: &[Server], creds: &Credentials) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let probes = [
            (Probe::J1, "Authorization", format!("Bearer {}", creds.j1)),
            (Probe::J2, "Authorization", format!("Bearer {}", creds.j2)),
            (Probe::Cookie, "Cookie", creds.cookie.clone()),
        ];
        let mut threads = Vec::new();
        for server in servers {
            for (probe, header, value) in probes.clone() {
                let addr = server.addr;
                let stop = Arc::clone(&stop);
                threads.push(std::thread::spawn(move || {
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let outcome =
                            try_request(addr, "GET", "/v1/userinfo", &[(header, &value)], None)
                                .map(|r| r.status)
                                .map_err(|e| e.to_string());
                        samples.push(Sample {
                            instance: addr,
                            probe,
                            outcome,
                        });
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    samples
                }));
            }
        }
        Self { stop, threads }
    }

    /// Stops the load and checks every answer it got: J2 never accepted, J1 never refused
    /// as invalid, nothing but 200, 401 or 503, and every server still running.
    fn finish(self, servers: &mut [Server]) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        let samples: Vec<Sample> = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let mut counts = std::collections::BTreeMap::new();
        for s in &samples {
            *counts.entry((s.probe, s.outcome.clone())).or_insert(0u32) += 1;
        }
        println!("load during the fault: {counts:?}");
        for s in servers.iter_mut() {
            assert!(s.is_running(), "{} died; log:\n{}", s.addr, s.log());
        }
        for s in &samples {
            let allowed: &[u16] = match s.probe {
                // A revoked token: refused, or 503 when that cannot be established — never 200.
                Probe::J2 => &[401, 503],
                // A live token is never refused as invalid; 503 at worst.
                Probe::J1 => &[200, 503],
                // A session may be lost with an emptied Redis (401).
                Probe::Cookie => &[200, 401, 503],
            };
            match &s.outcome {
                Ok(status) if allowed.contains(status) => {}
                other => panic!(
                    "{:?} on {} answered {other:?}, expected one of {allowed:?}; \
                     distribution: {counts:?}",
                    s.probe, s.instance
                ),
            }
        }
        samples
    }
}

fn login(server: &Server, username: &str) -> common::Response {
    server.post_json(
        "/v1/sessions",
        &json!({ "username": username, "password": PASSWORD }),
    )
}

// --- The tests. ---

/// Redis holds the sessions and carries the revocation feed. Killing it must cost sessions
/// (503 while it is down, lost after an empty restart), never a revocation: with the feed
/// down, every JWT is checked against PostgreSQL, and the revocation list is reloaded from
/// PostgreSQL when the feed returns.
#[test]
fn redis_outage_never_readmits_a_revoked_token_and_recovers() {
    let Some((postgres, mut redis)) = private_services(RedisData::Volatile) else {
        return;
    };
    let mut servers = start_pair(&postgres.url(), &redis.url(), &[]);
    let (a, b) = (&servers[0], &servers[1]);
    let creds = set_up(a, b, "dana");
    let (j4, _) = password_grant(a, "dana", PASSWORD);

    let hammer = Hammer::start(&servers, &creds);
    std::thread::sleep(Duration::from_millis(300));
    redis.kill();
    let killed = Instant::now();

    for s in [a, b] {
        let (status, after) = s.wait_readiness(&["degraded", "unavailable"], NOTICE_WITHIN);
        println!("{}: /readyz {status} {after:?} after Redis died", s.addr);
    }
    for s in [a, b] {
        // Sessions live only in Redis: neither yes nor no can be said.
        let resp = userinfo_cookie(s, &creds.cookie);
        assert_eq!(resp.status, 503, "cookie with Redis down: {resp:?}");
        // JWTs need no Redis: checked against PostgreSQL while the feed is down.
        let resp = userinfo_bearer(s, &creds.j1);
        assert_eq!(resp.status, 200, "J1 with Redis down: {resp:?}");
        let resp = userinfo_bearer(s, &creds.j2);
        assert_eq!(resp.status, 401, "J2 with Redis down: {resp:?}");
    }
    // Logins need the shared throttling counters and a session: refused, not half-done.
    let resp = login(a, "dana");
    assert_eq!(resp.status, 503, "login with Redis down: {resp:?}");
    // A revocation made while the feed is down cannot be pushed, yet must hold everywhere at
    // once: it is written to PostgreSQL first (the commit point), and instances whose feed is
    // down check PostgreSQL per request. The answer may still be 503 — the Redis copy and its
    // announcement failed — and a retry is harmless; what may not happen is a live J4.
    let resp = b.post_form("/oauth/revoke", &[("token", &j4)]);
    assert!(
        [200, 503].contains(&resp.status),
        "revoke with Redis down: {resp:?}"
    );
    for s in [a, b] {
        let resp = userinfo_bearer(s, &j4);
        assert_eq!(resp.status, 401, "J4, revoked during the outage: {resp:?}");
    }
    // Long enough for the load to see the outage, not only its edges.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(killed.elapsed()));
    redis.spawn();
    println!("Redis was down for {:?}", killed.elapsed());
    for s in [a, b] {
        let (_, after) = s.wait_readiness(&["ready"], RECOVER_WITHIN);
        println!("{}: ready {after:?} after Redis came back", s.addr);
    }
    let samples = hammer.finish(&mut servers);
    let (a, b) = (&servers[0], &servers[1]);
    assert!(
        samples
            .iter()
            .any(|s| s.probe == Probe::Cookie && s.outcome == Ok(503)),
        "the load saw the outage"
    );
    for s in [a, b] {
        assert_eq!(userinfo_bearer(s, &creds.j1).status, 200, "J1 after");
        assert_eq!(userinfo_bearer(s, &creds.j2).status, 401, "J2 after");
        assert_eq!(userinfo_bearer(s, &j4).status, 401, "J4 after");
        // Redis came back empty: the session is gone, and refused rather than trusted.
        assert_eq!(userinfo_cookie(s, &creds.cookie).status, 401, "S after");
    }
    let (cookie, _) = cookie_login(b, "dana", PASSWORD);
    let resp = userinfo_cookie(a, &cookie);
    assert_eq!(resp.status, 200, "a new session after recovery: {resp:?}");
}

/// PostgreSQL holds users, keys, refresh families and the durable revocation record. While
/// it is down, what needs it (logins, recording a revocation) answers 503 and changes
/// nothing; JWT checks go on from memory, which the live Redis feed keeps exact.
#[test]
fn postgres_outage_never_readmits_a_revoked_token_and_recovers() {
    let Some((postgres, redis)) = private_services(RedisData::Volatile) else {
        return;
    };
    let mut servers = start_pair(&postgres.url(), &redis.url(), &[]);
    let (a, b) = (&servers[0], &servers[1]);
    let creds = set_up(a, b, "erin");
    let (j3, _) = password_grant(a, "erin", PASSWORD);

    let hammer = Hammer::start(&servers, &creds);
    std::thread::sleep(Duration::from_millis(300));
    postgres.stop_immediately();
    let stopped = Instant::now();

    for s in [a, b] {
        let (_, after) = s.wait_readiness(&["unavailable"], NOTICE_WITHIN);
        println!(
            "{}: /readyz unavailable {after:?} after PostgreSQL stopped",
            s.addr
        );
    }
    for s in [a, b] {
        let resp = userinfo_bearer(s, &creds.j1);
        assert_eq!(resp.status, 200, "J1 with PostgreSQL down: {resp:?}");
        let resp = userinfo_bearer(s, &creds.j2);
        assert_eq!(resp.status, 401, "J2 with PostgreSQL down: {resp:?}");
    }
    let resp = login(a, "erin");
    assert_eq!(resp.status, 503, "login with PostgreSQL down: {resp:?}");
    // The durable record is the commit point of a revocation: without it, 503.
    let resp = b.post_form("/oauth/revoke", &[("token", &j3)]);
    assert_eq!(resp.status, 503, "revoke with PostgreSQL down: {resp:?}");

    postgres.start();
    println!("PostgreSQL was down for {:?}", stopped.elapsed());
    for s in [a, b] {
        let (_, after) = s.wait_readiness(&["ready"], RECOVER_WITHIN);
        println!("{}: ready {after:?} after PostgreSQL came back", s.addr);
    }
    let samples = hammer.finish(&mut servers);
    println!("{} requests during the fault", samples.len());
    let (a, b) = (&servers[0], &servers[1]);
    for s in [a, b] {
        assert_eq!(userinfo_bearer(s, &creds.j1).status, 200, "J1 after");
        assert_eq!(userinfo_bearer(s, &creds.j2).status, 401, "J2 after");
        // The refused revocation changed nothing: the client must retry, and now can.
        assert_eq!(userinfo_bearer(s, &j3).status, 200, "J3 after a 503 revoke");
    }
    let resp = b.post_form("/oauth/revoke", &[("token", &j3)]);
    assert_eq!(resp.status, 200, "revoke retried after recovery: {resp:?}");
    let revoked = Instant::now();
    while userinfo_bearer(a, &j3).status != 401 {
        assert!(revoked.elapsed() < PUSH_WITHIN, "J3 still accepted on A");
        std::thread::sleep(Duration::from_millis(5));
    }
    let resp = login(b, "erin");
    assert_eq!(resp.status, 201, "login after recovery: {resp:?}");
}

// --- Refreshes through an outage (security finding 7). ---

/// The grace window the refresh tests' servers run with: short, so that waiting it out is
/// quick.
const REFRESH_GRACE: Duration = Duration::from_secs(1);

/// App sessions refreshing at once.
const REFRESHERS: usize = 6;

/// Rotations (over all sessions) before the store is taken down: the traffic is running.
const ROTATIONS_BEFORE: usize = 3 * REFRESHERS;

/// The shortest outage: "a few seconds".
const OUTAGE_AT_LEAST: Duration = Duration::from_secs(3);

/// How long every session may take to have a refresh answered 503 once the store is down
/// (a PostgreSQL pool gives up after 3 s).
const REFUSED_WITHIN: Duration = Duration::from_secs(15);

/// One app session (password grant): its latest tokens, and how its refresh loop ended.
#[derive(Debug)]
struct AppSession {
    access: String,
    refresh: String,
    rotations: u32,
    /// When a refresh of `refresh` was answered 503 — the token is then still the one refused.
    refused_at: Option<Instant>,
    /// An answer other than 200 or 503 (or none), which ends the loop too.
    unexpected: Option<String>,
}

/// What the refresh loops share with the test.
#[derive(Default)]
struct Progress {
    rotations: AtomicUsize,
    finished: AtomicUsize,
    stop: AtomicBool,
}

fn try_refresh(addr: SocketAddr, token: &str) -> std::io::Result<Response> {
    // Refresh tokens are a prefix and base64url: nothing to escape in a form.
    let body = format!("grant_type=refresh_token&refresh_token={token}");
    try_request(
        addr,
        "POST",
        "/oauth/token",
        &[],
        Some(("application/x-www-form-urlencoded", &body)),
    )
}

/// Refreshes `session` in a loop against alternating instances, starting with `addrs[first %
/// 2]`, until a refresh is answered 503 (the token stays the refused one), anything else
/// unexpected happens, or `progress.stop`.
fn refresh_until_refused(
    addrs: [SocketAddr; 2],
    first: usize,
    mut session: AppSession,
    progress: &Progress,
) -> AppSession {
    let mut turn = first;
    while !progress.stop.load(Ordering::SeqCst) {
        match try_refresh(addrs[turn % 2], &session.refresh) {
            Ok(resp) if resp.status == 200 => {
                let body = resp.json();
                session.access = body["access_token"].as_str().unwrap().to_owned();
                session.refresh = body["refresh_token"].as_str().unwrap().to_owned();
                session.rotations += 1;
                progress.rotations.fetch_add(1, Ordering::SeqCst);
            }
            Ok(resp) if resp.status == 503 => {
                session.refused_at = Some(Instant::now());
                break;
            }
            other => {
                session.unexpected = Some(format!("on {}: {other:?}", addrs[turn % 2]));
                break;
            }
        }
        turn += 1;
        // Traffic, not a stress test: the machine runs other tests too.
        std::thread::sleep(Duration::from_millis(10));
    }
    progress.finished.fetch_add(1, Ordering::SeqCst);
    session
}

/// Refreshes with `token` until the answer is not 503 (or [`RECOVER_WITHIN`] is over), as a
/// client would: the answer, and how many 503s came before it.
///
/// Once the store is back and `/readyz` says `ready`, an instance may still answer one 503:
/// after a Redis outage, its Redis connection first reports the reconnection attempt that
/// failed during the outage, then reconnects. A 503 spends nothing, so retrying it is fine.
fn retry_while_unavailable(addr: SocketAddr, token: &str) -> (Response, u32) {
    let deadline = Instant::now() + RECOVER_WITHIN;
    let mut unavailable = 0;
    loop {
        let resp = try_refresh(addr, token).unwrap();
        if resp.status != 503 || Instant::now() > deadline {
            return (resp, unavailable);
        }
        unavailable += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `tessera_refresh_reuse_detected_total` and `tessera_refresh_rotations_total` of a server.
fn refresh_counters(server: &Server) -> (u64, u64) {
    let resp = server.get("/metrics", &[]);
    assert_eq!(resp.status, 200, "/metrics: {resp:?}");
    let counter = |name: &str| -> u64 {
        resp.body
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{}", resp.body))
    };
    (
        counter("tessera_refresh_reuse_detected_total"),
        counter("tessera_refresh_rotations_total"),
    )
}

/// Security finding 7's scenario over `servers` (A and B, run with `--refresh-grace`
/// [`REFRESH_GRACE`]): app sessions of `username` refresh in a loop against alternating
/// instances; `store` goes down while they run, and comes back once every session has had a
/// refresh answered 503. Each of those refreshes is then retried with the same token, after
/// the grace window, when a spent token would count as reuse. None may: the retry rotates, no
/// family is revoked — every session's latest refresh token works and its access token is
/// accepted — and neither instance counts a reuse.
fn refreshes_survive_an_outage(servers: &mut [Server], username: &str, store: &mut dyn Outage) {
    register(&servers[0], username, PASSWORD);
    let sessions: Vec<AppSession> = (0..REFRESHERS)
        .map(|i| {
            let (access, refresh) = password_grant(&servers[i % 2], username, PASSWORD);
            AppSession {
                access,
                refresh,
                rotations: 0,
                refused_at: None,
                unexpected: None,
            }
        })
        .collect();
    let addrs = [servers[0].addr, servers[1].addr];
    let progress = Arc::new(Progress::default());
    let loops: Vec<JoinHandle<AppSession>> = sessions
        .into_iter()
        .enumerate()
        .map(|(i, session)| {
            let progress = Arc::clone(&progress);
            std::thread::spawn(move || refresh_until_refused(addrs, i, session, &progress))
        })
        .collect();
    let join = |loops: Vec<JoinHandle<AppSession>>| -> Vec<AppSession> {
        progress.stop.store(true, Ordering::SeqCst);
        loops.into_iter().map(|t| t.join().unwrap()).collect()
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    while progress.rotations.load(Ordering::SeqCst) < ROTATIONS_BEFORE {
        if progress.finished.load(Ordering::SeqCst) > 0 || Instant::now() > deadline {
            panic!("refreshing before the outage: {:?}", join(loops));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    store.begin();
    let began = Instant::now();
    while progress.finished.load(Ordering::SeqCst) < REFRESHERS && began.elapsed() < REFUSED_WITHIN
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut sessions = join(loops);
    std::thread::sleep(OUTAGE_AT_LEAST.saturating_sub(began.elapsed()));
    store.end();
    let outage = began.elapsed();
    for s in servers.iter() {
        s.wait_readiness(&["ready"], RECOVER_WITHIN);
    }
    for s in servers.iter_mut() {
        assert!(s.is_running(), "{} died; log:\n{}", s.addr, s.log());
    }
    let unexpected: Vec<_> = sessions
        .iter()
        .filter_map(|s| s.unexpected.as_ref())
        .collect();
    assert!(
        unexpected.is_empty(),
        "refreshes answered neither 200 nor 503: {unexpected:?}"
    );
    assert!(
        sessions.iter().all(|s| s.refused_at.is_some()),
        "every session saw the outage (a refresh answered 503): {sessions:?}"
    );

    // A rotation committed before a 503 is retried as reuse once its grace window is over;
    // the server's clock counts whole seconds, and the rotation came before the answer.
    let latest_refusal = sessions.iter().filter_map(|s| s.refused_at).max().unwrap();
    let retry_at = latest_refusal + REFRESH_GRACE + Duration::from_millis(250);
    std::thread::sleep(retry_at.saturating_duration_since(Instant::now()));
    // (final answer, 503s before it) per session.
    let mut retries = Vec::new();
    for (i, session) in sessions.iter_mut().enumerate() {
        // Mostly on the other instance than the one the session's loop last used.
        let (resp, unavailable) = retry_while_unavailable(addrs[(i + 1) % 2], &session.refresh);
        if resp.status == 200 {
            let body = resp.json();
            session.access = body["access_token"].as_str().unwrap().to_owned();
            session.refresh = body["refresh_token"].as_str().unwrap().to_owned();
        }
        retries.push((resp.status, unavailable));
    }
    // The families live on: the latest refresh token rotates, the latest access token works.
    let mut afterwards = Vec::new();
    for (i, session) in sessions.iter_mut().enumerate() {
        let resp = try_refresh(addrs[i % 2], &session.refresh).unwrap();
        if resp.status == 200 {
            session.access = resp.json()["access_token"].as_str().unwrap().to_owned();
        }
        let userinfo: Vec<u16> = servers
            .iter()
            .map(|s| userinfo_bearer(s, &session.access).status)
            .collect();
        afterwards.push((resp.status, userinfo));
    }
    let counters: Vec<(u64, u64)> = servers.iter().map(refresh_counters).collect();
    let rotations: Vec<u32> = sessions.iter().map(|s| s.rotations).collect();
    println!(
        "outage of {outage:?}; rotations before it per session {rotations:?}; \
         retries of the refreshes answered 503 (answer, 503s before it): {retries:?}; \
         then (refresh, [userinfo on A, B]) per session: {afterwards:?}; \
         (reuse detected, rotations) on A, B: {counters:?}"
    );
    assert!(
        retries.iter().all(|&(status, _)| status == 200),
        "every refresh answered 503 succeeds when retried with the same token: {retries:?}"
    );
    assert!(
        afterwards
            .iter()
            .all(|(r, u)| *r == 200 && u == &[200, 200]),
        "no family was revoked: {afterwards:?}"
    );
    assert!(
        counters.iter().all(|&(reuse, _)| reuse == 0),
        "no retry counted as reuse: {counters:?}"
    );
}

/// Redis holds the sessions a refresh checks before it rotates. Killed while refreshes run,
/// it makes them 503 — and, since the rotation comes after those checks, unspent: retried
/// after the grace window once Redis is back (with its data), each rotates. Before the fix,
/// the rotation came first, and every such retry was taken for reuse.
#[test]
fn redis_outage_refresh_503_is_retried_without_reuse() {
    let Some((postgres, mut redis)) = private_services(RedisData::Durable) else {
        return;
    };
    let grace = REFRESH_GRACE.as_secs().to_string();
    let mut servers = start_pair(&postgres.url(), &redis.url(), &["--refresh-grace", &grace]);
    refreshes_survive_an_outage(&mut servers, "fern", &mut redis);
}

/// PostgreSQL holds the refresh families and users. Cut off while refreshes run — through a
/// proxy, just after it acknowledged a COMMIT (a rotation: the refreshes' only transaction),
/// see [`CuttableProxy`] — it makes them 503 without a rotation committed: retried after the
/// grace window once it is back, each rotates. Before the fix, the refresh whose rotation
/// had just committed still read the user from PostgreSQL, answered 503, and its retry was
/// taken for reuse.
#[test]
fn postgres_outage_refresh_503_is_retried_without_reuse() {
    let Some((postgres, redis)) = private_services(RedisData::Volatile) else {
        return;
    };
    let mut proxy = CuttableProxy::start(postgres.addr());
    let grace = REFRESH_GRACE.as_secs().to_string();
    let mut servers = start_pair(
        &url_of_postgres_at(proxy.port()),
        &redis.url(),
        &["--refresh-grace", &grace],
    );
    refreshes_survive_an_outage(&mut servers, "gale", &mut proxy);
}
