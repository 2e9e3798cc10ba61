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
//! The tests kill servers, so they start their own — a `redis-server` and a PostgreSQL cluster
//! (`pg_createcluster`, which needs root) on free loopback ports — and never touch the
//! machine's shared ones. Without those tools (or root) they print "skipping: …", unless
//! `CI=true`, where they fail.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{
    PASSWORD, Server, cookie_login, free_port, password_grant, random_hex, register, skip,
    start_servers, try_request, userinfo_bearer, userinfo_cookie,
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

/// A `redis-server` of this test's own, killed when dropped. Nothing is persisted, so a
/// restart comes back empty — as a Redis used as a cache may.
struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start() -> Self {
        let mut redis = Self {
            child: None,
            port: free_port().port(),
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
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
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
        format!("postgres://postgres@127.0.0.1:{}/test", self.port)
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

/// Both private services, or `None` (after saying why) where this machine cannot run them.
fn private_services() -> Option<(PrivatePostgres, PrivateRedis)> {
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
    let redis = PrivateRedis::start();
    Some((PrivatePostgres::create(), redis))
}

/// Instances A and B over the private services, each following the revocation feed.
fn start_pair(postgres: &PrivatePostgres, redis: &PrivateRedis) -> Vec<Server> {
    let servers = start_servers(2, |cmd, addr, _| {
        cmd.arg("--listen")
            .arg(addr.to_string())
            .arg("--issuer")
            .arg(ISSUER)
            .arg("--store")
            .arg(postgres.url())
            .arg("--redis")
            .arg(redis.url())
            .arg("--namespace")
            .arg(NAMESPACE);
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
    let Some((postgres, mut redis)) = private_services() else {
        return;
    };
    let mut servers = start_pair(&postgres, &redis);
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
    let Some((postgres, redis)) = private_services() else {
        return;
    };
    let mut servers = start_pair(&postgres, &redis);
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
