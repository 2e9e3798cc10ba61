#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! End to end: two `tessera serve` instances over PostgreSQL + Redis, a confidential client
//! made with `tessera clients create`, and `tessera-verify`'s `resource-server` example
//! following instance A through a TCP proxy in this test that counts the HTTP requests it
//! carries and can be cut. What must hold:
//!
//! - a verified call costs no request to Tessera (the proxy's count stays put over 200 calls);
//! - a logout on instance B is refused by the resource server within a second (B → Redis
//!   pub/sub → A → A's revocation stream → the resource server);
//! - with Tessera unreachable, the resource server fails closed (503) once its revocation
//!   state is older than `--max-staleness`, recovers by itself when Tessera is back, and then
//!   refuses what was revoked during the outage.
//!
//! The example is built by `cargo test --workspace` (or `cargo build -p tessera-verify
//! --examples`); without it, or without PostgreSQL or Redis, the test prints "skipping: …",
//! unless `CI=true`, where it fails.

use crate::common;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{
    Deployment, ISSUER, PASSWORD, Response, Server, TEST_KEK, bearer, password_grant, register,
    skip, tessera, try_request,
};

/// The resource server's `--max-staleness`. It must stay above the interval of the stream's
/// heartbeats (at most 15 s by the contract, 2 s as served): the verifier reopens a stream
/// that is silent for this long, and a bound below the heartbeat would make an idle but
/// healthy resource server reconnect — and fail closed while it does — every few seconds.
const MAX_STALENESS: Duration = Duration::from_secs(5);

/// How long a revocation made on B may take to be refused by the resource server.
const REFUSED_WITHIN: Duration = Duration::from_secs(1);

/// Margin over [`MAX_STALENESS`] for the resource server to fail closed once cut off.
const STALE_MARGIN: Duration = Duration::from_secs(3);

/// How long the resource server may take to recover once Tessera is reachable again: its
/// reconnection backoff doubles up to 10 s, with ±25 % jitter.
const RECOVER_WITHIN: Duration = Duration::from_secs(15);

/// Verified calls in a row that must not reach Tessera.
const VERIFIED_CALLS: usize = 200;

// --- A TCP proxy that counts HTTP requests and can be cut. ---

/// Counts HTTP/1.1 requests in one connection's client→server bytes, exactly: a request is a
/// head (request line and headers, ending with an empty line) followed by a body whose length
/// `Content-Length` gives, none without it (RFC 9112 §6.3 — a request without `Content-Length`
/// or `Transfer-Encoding` has no body). A chunked body or anything that is not HTTP/1.x (an
/// HTTP/2 preface) cannot be framed this way and is reported instead of guessed at.
#[derive(Default)]
struct RequestFramer {
    head: Vec<u8>,
    body_left: usize,
}

impl RequestFramer {
    /// Feeds bytes; returns the request line of every request head completed by them.
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        let mut pending = bytes.to_vec();
        loop {
            let body = self.body_left.min(pending.len());
            self.body_left -= body;
            pending.drain(..body);
            if pending.is_empty() {
                return Ok(lines);
            }
            let searched_from = self.head.len().saturating_sub(3);
            self.head.append(&mut pending);
            let Some(end) = self.head[searched_from..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| searched_from + p + 4)
            else {
                return Ok(lines);
            };
            // What follows the head: its body, then possibly the next (pipelined) request.
            pending = self.head.split_off(end);
            let head = String::from_utf8(std::mem::take(&mut self.head))
                .map_err(|_| "a request head that is not UTF-8".to_owned())?;
            let line = head.lines().next().unwrap_or_default().to_owned();
            if !line.ends_with(" HTTP/1.1") && !line.ends_with(" HTTP/1.0") {
                return Err(format!("not an HTTP/1.x request line: {line:?}"));
            }
            for (name, value) in head.lines().skip(1).filter_map(|h| h.split_once(':')) {
                let (name, value) = (name.trim(), value.trim());
                if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(format!("{line}: a Transfer-Encoding body ({value})"));
                }
                if name.eq_ignore_ascii_case("content-length") {
                    self.body_left = value
                        .parse()
                        .map_err(|_| format!("{line}: Content-Length {value:?}"))?;
                }
            }
            lines.push(line);
        }
    }
}

/// Forwards `127.0.0.1:<port>` to an upstream and records the request line of every HTTP
/// request going client→server (see [`RequestFramer`]; counting connections would miss the
/// requests a kept-alive connection carries). [`CountingProxy::cut`] drops every connection
/// and refuses new ones; [`CountingProxy::restore`] accepts on the same port again.
struct CountingProxy {
    inner: Arc<ProxyInner>,
}

struct ProxyInner {
    port: u16,
    upstream: SocketAddr,
    /// Request lines, in the order their heads were complete.
    requests: Mutex<Vec<String>>,
    /// Bytes the framer could not account for; a test must not pass over them.
    unframed: Mutex<Vec<String>>,
    /// Live connections, by number: the client's socket and the upstream one.
    open: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    next_id: AtomicU64,
    /// The accepting thread and its stop flag, while not cut.
    acceptor: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

impl CountingProxy {
    fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let inner = Arc::new(ProxyInner {
            port: listener.local_addr().unwrap().port(),
            upstream,
            requests: Mutex::default(),
            unframed: Mutex::default(),
            open: Mutex::default(),
            next_id: AtomicU64::new(0),
            acceptor: Mutex::default(),
        });
        ProxyInner::accept_on(&inner, listener);
        Self { inner }
    }

    /// The origin to give as `--server`.
    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.port)
    }

    /// Every request line carried so far.
    fn requests(&self) -> Vec<String> {
        let unframed = self.inner.unframed.lock().unwrap();
        assert!(
            unframed.is_empty(),
            "the proxy could not count some traffic: {unframed:?}"
        );
        self.inner.requests.lock().unwrap().clone()
    }

    fn cut(&self) {
        self.inner.cut();
    }

    fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.inner.port))
            .unwrap_or_else(|e| panic!("rebinding the proxy's port {}: {e}", self.inner.port));
        ProxyInner::accept_on(&self.inner, listener);
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.inner.cut();
    }
}

impl ProxyInner {
    fn accept_on(this: &Arc<Self>, listener: TcpListener) {
        // Non-blocking, polled: the thread checks its stop flag between attempts, and dropping
        // the listener when it stops is what makes new connections refused.
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (proxy, stopped) = (Arc::clone(this), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => proxy.relay(client),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => {}
                }
            }
        });
        *this.acceptor.lock().unwrap() = Some((stop, thread));
    }

    /// Connects `client` to the upstream and copies both ways on two threads, framing the
    /// client's bytes; a refused upstream closes the client, as the server would have.
    fn relay(self: &Arc<Self>, client: TcpStream) {
        let Ok(server) = TcpStream::connect(self.upstream) else {
            return;
        };
        client.set_nonblocking(false).unwrap();
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.open.lock().unwrap().insert(
            id,
            (client.try_clone().unwrap(), server.try_clone().unwrap()),
        );
        let (mut from_client, mut to_server) =
            (client.try_clone().unwrap(), server.try_clone().unwrap());
        let proxy = Arc::clone(self);
        std::thread::spawn(move || {
            let mut framer = RequestFramer::default();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match from_client.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // Counted before forwarding: once the server can answer, the count has it.
                match framer.feed(&buf[..n]) {
                    Ok(lines) => proxy.requests.lock().unwrap().extend(lines),
                    Err(e) => proxy.unframed.lock().unwrap().push(e),
                }
                if to_server.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to_server.shutdown(Shutdown::Write);
        });
        let (mut from_server, mut to_client, proxy) = (server, client, Arc::clone(self));
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from_server, &mut to_client);
            let _ = to_client.shutdown(Shutdown::Both);
            let _ = from_server.shutdown(Shutdown::Both);
            proxy.open.lock().unwrap().remove(&id);
        });
    }

    fn cut(&self) {
        let acceptor = self.acceptor.lock().unwrap().take();
        if let Some((stop, thread)) = acceptor {
            stop.store(true, Ordering::SeqCst);
            thread.join().unwrap();
        }
        for (_, (client, server)) in self.open.lock().unwrap().drain() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
    }
}

// --- The resource server process. ---

/// `cargo test` builds the examples next to the test binaries' `deps` directory.
fn example() -> Option<PathBuf> {
    let deps = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let path = deps
        .parent()?
        .join("examples")
        .join(format!("resource-server{}", std::env::consts::EXE_SUFFIX));
    path.exists().then_some(path)
}

/// The `resource-server` example, killed when dropped.
struct ResourceServer {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl ResourceServer {
    /// Starts it against `server` (an origin) and waits for its "listening on" line.
    fn start(path: &PathBuf, server: &str, client_id: &str, client_secret: &str) -> Self {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("resource-server.log");
        let mut child = std::process::Command::new(path)
            .args(["--issuer", ISSUER, "--server", server, "--audience", ISSUER])
            .args(["--client-id", client_id, "--client-secret", client_secret])
            .args(["--listen", "127.0.0.1:0", "--max-staleness"])
            .arg(MAX_STALENESS.as_secs().to_string())
            .env_remove("TESSERA_CLIENT_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawning the resource-server example");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let addr = line.trim().strip_prefix("listening on ").map(str::parse);
        let Some(Ok(addr)) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the resource server did not start (first line {line:?}); log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Self {
            child,
            addr,
            log,
            _log_dir: log_dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /whoami` with a bearer token, on a fresh connection.
    fn whoami(&self, token: &str) -> Response {
        try_request(
            self.addr,
            "GET",
            "/whoami",
            &[("Authorization", &bearer(token))],
            None,
        )
        .unwrap_or_else(|e| panic!("GET /whoami: {e}; log:\n{}", self.log()))
    }

    /// Polls `/whoami` with `token` until it answers `wanted`, allowing only `meanwhile`
    /// before that; returns how long it took and how many polls. Panics after `within`.
    fn wait_status(
        &self,
        token: &str,
        wanted: u16,
        meanwhile: u16,
        within: Duration,
        what: &str,
    ) -> (Duration, u32) {
        let start = Instant::now();
        let mut polls = 0;
        loop {
            polls += 1;
            let resp = self.whoami(token);
            if resp.status == wanted {
                return (start.elapsed(), polls);
            }
            assert_eq!(
                resp.status,
                meanwhile,
                "{what}: neither {wanted} nor {meanwhile}: {resp:?}; log:\n{}",
                self.log()
            );
            assert!(
                start.elapsed() < within,
                "{what}: not {wanted} within {within:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for ResourceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- The scenario. ---

/// `tessera clients create rs --scope read` on the deployment's store: `(id, secret)`.
fn create_client(deployment: &Deployment) -> (String, String) {
    let out = tessera()
        .env("TESSERA_KEK", TEST_KEK)
        .args(["clients", "create", "rs", "--scope", "read"])
        .args(deployment.store_args())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tessera clients create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        made["client_id"].as_str().unwrap().to_owned(),
        made["client_secret"].as_str().unwrap().to_owned(),
    )
}

fn revoke(server: &Server, token: &str) {
    let resp = server.post_form("/oauth/revoke", &[("token", token)]);
    assert_eq!(resp.status, 200, "revoking on {}: {resp:?}", server.addr);
}

/// The claims of a JWT Tessera issued (read without verification: the resource server's
/// answer is compared with them).
fn claims(jwt: &str) -> serde_json::Value {
    tessera_core::jose::decode_unverified_dangerously(jwt)
        .unwrap()
        .1
}

#[test]
fn resource_server_verifies_locally_follows_revocations_and_fails_closed_when_cut_off() {
    let Some(example) = example() else {
        skip(
            "the resource-server example is not built (`cargo build -p tessera-verify --examples`)",
        );
        return;
    };
    let Some(deployment) = Deployment::new(true) else {
        return;
    };
    let servers = deployment.start(2, &[]);
    let [a, b] = &servers[..] else {
        panic!("two servers")
    };
    let (client_id, client_secret) = create_client(&deployment);
    let proxy = CountingProxy::start(a.addr);
    let rs = ResourceServer::start(&example, &proxy.origin(), &client_id, &client_secret);
    // Discovery, the JWKS, the first catch-up, then the stream it follows from then on.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy
        .requests()
        .iter()
        .any(|r| r.starts_with("GET /v1/revocations/stream "))
    {
        assert!(
            Instant::now() < deadline,
            "the resource server does not follow the stream: {:?}; log:\n{}",
            proxy.requests(),
            rs.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("resource server started: {:?}", proxy.requests());

    // a. Logged in on B, verified by the resource server (which talks to A) from memory.
    register(b, "reader", PASSWORD);
    let (jwt, refresh) = password_grant(b, "reader", PASSWORD);
    let resp = rs.whoami(&jwt);
    assert_eq!(resp.status, 200, "{resp:?}; log:\n{}", rs.log());
    let expected = claims(&jwt);
    assert!(expected["sid"].is_string(), "{expected}");
    assert_eq!(
        resp.json(),
        serde_json::json!({
            "sub": expected["sub"],
            "scope": expected["scope"],
            "sid": expected["sid"],
        })
    );
    let before = proxy.requests();
    let started = Instant::now();
    for i in 0..VERIFIED_CALLS {
        let resp = rs.whoami(&jwt);
        assert_eq!(resp.status, 200, "verified call #{i}: {resp:?}");
    }
    let took = started.elapsed();
    let after = proxy.requests();
    assert_eq!(
        after,
        before,
        "verified calls reached Tessera: {:?}",
        &after[before.len().min(after.len())..]
    );
    println!(
        "{VERIFIED_CALLS} verified calls in {took:?}: requests to Tessera before {}, after {}",
        before.len(),
        after.len()
    );

    // b. Logged out on B: refused by the resource server once A's stream delivers.
    let sent = Instant::now();
    revoke(b, &refresh);
    let answered = Instant::now();
    let (delay, polls) = rs.wait_status(&jwt, 401, 200, REFUSED_WITHIN, "logout on B");
    println!(
        "logout on B ({:?} round trip) refused by the resource server {delay:?} after the \
         answer (poll #{polls})",
        answered - sent
    );
    assert_eq!(
        proxy.requests(),
        after,
        "the revocation came on the open stream, not by asking"
    );

    // c. Cut off from Tessera: fail closed, then recover by itself.
    let (fresh, _) = password_grant(b, "reader", PASSWORD);
    let (doomed, doomed_refresh) = password_grant(b, "reader", PASSWORD);
    for token in [&fresh, &doomed] {
        let resp = rs.whoami(token);
        assert_eq!(resp.status, 200, "before the cut: {resp:?}");
    }
    proxy.cut();
    let (stale_after, _) = rs.wait_status(
        &fresh,
        503,
        200,
        MAX_STALENESS + STALE_MARGIN,
        "cut off from Tessera",
    );
    println!("cut off: 503 (fails closed) after {stale_after:?}");
    // Revoked while the resource server cannot hear of it: refused as stale, never accepted.
    revoke(b, &doomed_refresh);
    let resp = rs.whoami(&doomed);
    assert_eq!(resp.status, 503, "revoked during the outage: {resp:?}");
    let requests_at_restore = proxy.requests().len();
    proxy.restore();
    let (recovered_after, _) = rs.wait_status(&fresh, 200, 503, RECOVER_WITHIN, "restored");
    // The catch-up that ended the outage also brought the revocation made during it.
    let resp = rs.whoami(&doomed);
    assert_eq!(resp.status, 401, "revoked during the outage: {resp:?}");
    let requests = proxy.requests();
    println!(
        "restored: 200 again after {recovered_after:?}, revocation made during the outage \
         refused; requests since the restore: {:?}",
        &requests[requests_at_restore..]
    );
    assert!(
        requests[requests_at_restore..]
            .iter()
            .any(|r| r.starts_with("GET /v1/revocations?since=")),
        "recovery is a catch-up from the cursor: {requests:?}"
    );
}

/// The proxy's count is only as good as its framing: requests split across reads, pipelined
/// in one read, and bodies that look like requests are each counted once; what cannot be
/// framed is an error.
#[test]
fn the_counting_proxy_frames_http_requests_exactly() {
    let mut framer = RequestFramer::default();
    let stream = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
        POST /b HTTP/1.1\r\nContent-Length: 31\r\n\r\nGET /not-a-request HTTP/1.1\r\n\r\n\
        GET /c?since=1 HTTP/1.1\r\n\r\n";
    let (first, second) = stream.split_at(20);
    let mut lines = framer.feed(first).unwrap();
    assert!(lines.is_empty(), "{lines:?}");
    lines.extend(framer.feed(second).unwrap());
    assert_eq!(
        lines,
        [
            "GET /a HTTP/1.1",
            "POST /b HTTP/1.1",
            "GET /c?since=1 HTTP/1.1"
        ]
    );
    let mut byte_by_byte = RequestFramer::default();
    let mut lines = Vec::new();
    for b in stream {
        lines.extend(byte_by_byte.feed(&[*b]).unwrap());
    }
    assert_eq!(lines.len(), 3, "{lines:?}");
    let chunked = b"POST /d HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(RequestFramer::default().feed(chunked).is_err());
    let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    assert!(RequestFramer::default().feed(h2).is_err());
}
