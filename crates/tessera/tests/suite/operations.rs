//! Operations on the real binary: graceful shutdown on SIGTERM (in-flight requests drained,
//! new connections refused, revocation streams closed, exit 0 in time, and a bound on the
//! drain), JSON logs carrying request ids and no secrets, and `tessera config check`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::common::{self, PASSWORD, Server, tessera};

/// A login request: its head (with `Expect: 100-continue`) and its body, written apart.
fn login_request(addr: SocketAddr, username: &str) -> (String, String) {
    let body = serde_json::json!({ "username": username, "password": PASSWORD }).to_string();
    let head = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    (head, body)
}

/// Connects and sends a request head, returning once the server answered `100 Continue`:
/// the server has read the head and its handler is reading the body, so the request is in
/// flight for certain (a connection whose head was not read yet counts as idle, and idle
/// connections are closed at shutdown, as HTTP/1.1 allows).
fn start_request(addr: SocketAddr, head: &str) -> TcpStream {
    let mut s = connect(addr);
    s.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        got.push(byte[0]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    s
}

/// The status code of a whole response read from `stream`; `None` if the connection closed
/// without one.
fn status_of(stream: &mut TcpStream) -> Option<u16> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    text.split(' ').nth(1).and_then(|s| s.parse().ok())
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// A client registered on the embedded store in `dir` (before the server starts on it).
fn stream_client(dir: &std::path::Path) -> (String, String) {
    let out = tessera()
        .args(["clients", "create", "follower", "--data-dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["client_id"].as_str().unwrap().to_owned(),
        v["client_secret"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn sigterm_drains_requests_in_flight_refuses_new_ones_and_exits_0() {
    const BURST: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = stream_client(dir.path());
    let mut server = Server::start(|cmd, addr| {
        // A debug build's Argon2id on a loaded machine takes seconds: the bound is not what
        // this test is about (`a_request_that_never_finishes_is_cut_at_the_drain_timeout` is).
        cmd.arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--drain-timeout", "300"]);
    });
    let addr = server.addr;
    common::register(&server, "alice", PASSWORD);

    // A subscriber of the revocation stream: it must not hold the shutdown open.
    let mut follower = connect(addr);
    let basic = base64_basic(&id, &secret);
    write!(
        follower,
        "GET /v1/revocations/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {basic}\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 12];
    follower.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200", "the stream is open");

    // A login whose body is held back: in flight for certain when the signal comes.
    let (head, body) = login_request(addr, "alice");
    let mut slow = start_request(addr, &head);
    let (early, late) = body.split_at(body.len() / 2);
    slow.write_all(early.as_bytes()).unwrap();

    // A burst of logins, all sent before the signal: alice's (201) and strangers' (401),
    // each an Argon2id hash (the strangers' against the dummy hash). Alice's stay under her
    // account's throttle (10 attempts at once), the failures under the address's (30).
    let barrier = Arc::new(Barrier::new(BURST + 1));
    let burst: Vec<_> = (0..BURST)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let (user, expected) = if i % 2 == 0 {
                    ("alice".to_owned(), 201)
                } else {
                    (format!("stranger{i}"), 401)
                };
                let (head, body) = login_request(addr, &user);
                let mut s = start_request(addr, &head);
                s.write_all(body.as_bytes()).unwrap();
                barrier.wait();
                let status = status_of(&mut s);
                (status, expected, Instant::now())
            })
        })
        .collect();
    barrier.wait();
    let signalled = Instant::now();
    server.signal("TERM");

    // New connections are refused once the listener is closed.
    std::thread::sleep(Duration::from_millis(200));
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    assert!(
        refused.is_err(),
        "a new connection was accepted after SIGTERM"
    );

    // The held-back login completes normally.
    slow.write_all(late.as_bytes()).unwrap();
    assert_eq!(status_of(&mut slow), Some(201), "{}", server.log());

    let mut after_signal = 0;
    for t in burst {
        let (status, expected, at) = t.join().unwrap();
        assert_eq!(status, Some(expected), "{}", server.log());
        if at > signalled {
            after_signal += 1;
        }
    }
    assert!(
        after_signal > 0,
        "no burst login was still in flight at the signal: the test proved nothing"
    );
    // The stream ended (its body closed), so the connection reads to its end.
    let mut rest = Vec::new();
    follower.read_to_end(&mut rest).unwrap();

    let status = server
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "still running 10 s after the last answer:\n{}",
                server.log()
            )
        });
    assert_eq!(status.code(), Some(0), "{}", server.log());
    let log = server.log();
    assert!(log.contains("drained"), "{log}");
}

#[test]
fn a_request_that_never_finishes_is_cut_at_the_drain_timeout() {
    let mut server = Server::start(|cmd, addr| {
        cmd.arg("--listen").arg(addr.to_string()).args([
            "--store",
            "memory:",
            "--drain-timeout",
            "1",
        ]);
    });
    let (head, body) = login_request(server.addr, "nobody");
    let mut stuck = start_request(server.addr, &head);
    stuck.write_all(&body.as_bytes()[..3]).unwrap();
    let signalled = Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after SIGTERM:\n{}", server.log()));
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM"
    );
    assert!(
        server.log().contains("the drain timeout passed"),
        "{}",
        server.log()
    );
}

#[test]
fn a_second_signal_ends_the_drain_at_once() {
    let mut server = Server::start(|cmd, addr| {
        cmd.arg("--listen").arg(addr.to_string()).args([
            "--store",
            "memory:",
            "--drain-timeout",
            "300",
        ]);
    });
    let (head, body) = login_request(server.addr, "nobody");
    let mut stuck = start_request(server.addr, &head);
    stuck.write_all(&body.as_bytes()[..3]).unwrap();
    server.signal("INT");
    // Still draining: the stuck request holds it open.
    assert!(server.wait_exit(Duration::from_millis(500)).is_none());
    let second = Instant::now();
    server.signal("INT");
    let status = server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("a second Ctrl-C did not end the drain:\n{}", server.log()));
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(second.elapsed() < Duration::from_secs(3));
    assert!(
        server.log().contains("a second signal came"),
        "{}",
        server.log()
    );
}

#[test]
fn ctrl_c_with_nothing_in_flight_exits_0_at_once() {
    let mut server = Server::start(|cmd, addr| {
        cmd.arg("--listen")
            .arg(addr.to_string())
            .args(["--store", "memory:"]);
    });
    // An idle keep-alive connection does not hold the shutdown open.
    let mut idle = connect(server.addr);
    write!(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 12];
    idle.read_exact(&mut buf).unwrap();
    let signalled = Instant::now();
    server.signal("INT");
    let status = server.wait_exit(Duration::from_secs(5)).expect("exited");
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(signalled.elapsed() < Duration::from_secs(2));
}

fn base64_basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}

#[test]
fn json_logs_carry_the_request_id_on_every_line_of_a_request_and_no_secret() {
    let server = Server::start(|cmd, addr| {
        cmd.arg("--listen")
            .arg(addr.to_string())
            .args(["--store", "memory:", "--log-format", "json"])
            .env("TESSERA_LOG", "info,tessera_server=debug");
    });
    common::register(&server, "alice", PASSWORD);
    let (access, refresh) = common::password_grant(&server, "alice", PASSWORD);
    let forged = format!("{}x", &access[..access.len() - 1]);
    let r = server.get(
        "/v1/userinfo",
        &[
            ("authorization", &common::bearer(&forged)),
            ("x-request-id", "trace-4711"),
        ],
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-request-id"), Some("trace-4711"));
    let made = server.get(
        "/v1/userinfo",
        &[("authorization", &common::bearer(&access))],
    );
    assert_eq!(made.status, 200);
    let made_id = made
        .header("x-request-id")
        .expect("a made request id")
        .to_owned();
    // Give the log writer a moment.
    std::thread::sleep(Duration::from_millis(200));

    let log = server.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let of = |id: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id)
            .collect()
    };
    let traced = of("trace-4711");
    // The refusal's reason and the request's end, both under the caller's id.
    assert!(
        traced
            .iter()
            .any(|l| l["fields"]["message"] == "access token refused"),
        "{log}"
    );
    assert!(
        traced
            .iter()
            .any(|l| l["fields"]["message"] == "request done" && l["fields"]["status"] == 401),
        "{log}"
    );
    for l in &traced {
        assert_eq!(l["span"]["route"], "/v1/userinfo", "{l}");
        assert_eq!(l["span"]["method"], "GET", "{l}");
    }
    assert!(!of(&made_id).is_empty(), "{log}");
    for secret in [PASSWORD, access.as_str(), refresh.as_str(), forged.as_str()] {
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
}

/// The value of the unlabelled sample `name` in a `/metrics` body.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn the_feed_metrics_follow_a_live_feed_over_postgres() {
    let Some(deployment) = common::Deployment::new(false) else {
        return;
    };
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .floor();
    let servers = deployment.start(2, &[]);
    let (a, b) = (&servers[0], &servers[1]);
    common::register(a, "alice", PASSWORD);
    let (_, refresh) = common::password_grant(a, "alice", PASSWORD);
    // The app's logout on A reaches B's memory through the feed.
    let r = a.post_form("/oauth/revoke", &[("token", &refresh)]);
    assert_eq!(r.status, 200, "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let m = b.get("/metrics", &[]).body;
        if sample(&m, "tessera_revocation_list_entries").is_some_and(|n| n >= 1.0) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "B never heard of the revocation:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        sample(&metrics, "tessera_revocation_feed_up"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "tessera_revocation_feed_lag_seconds"),
        Some(0.0),
        "{metrics}"
    );
    let last = sample(
        &metrics,
        "tessera_revocation_feed_last_event_timestamp_seconds",
    )
    .unwrap();
    assert!(last >= started, "last event {last}, test started {started}");
}
