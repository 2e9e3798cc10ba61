//! Helpers for the real-binary tests: run the `tessera` executable, start `tessera serve` on a
//! free port (killed on drop, so a failing test leaves no process behind), and a tiny HTTP/1.1
//! client over `std::net::TcpStream` — a handful of requests need no HTTP crate.

// Each test crate uses a different subset of these helpers.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

/// The key-encryption key tests give a shared store (PostgreSQL), which needs one: every
/// instance and admin command of a deployment is given the same KEK (`TESSERA_KEK`).
pub const TEST_KEK: &str = "dGVzc2VyYS10ZXN0LWtlay0wMTIzNDU2Nzg5YWJjZGU=";

/// A password that passes the policy.
pub const PASSWORD: &str = "plum tractor velvet ocean";

/// `tessera` with no `TESSERA_*` variable inherited from the caller's environment, so a
/// developer's own settings cannot change what a test sees.
pub fn tessera() -> Command {
    let mut cmd = Command::new(TESSERA);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TESSERA_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("TESSERA_LOG", "info");
    cmd
}

/// A vector file of `tessera-core`'s test data, parsed.
pub fn vector(relative: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tessera-core/tests/vectors")
        .join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A running `tessera serve`, killed (SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Server {
    /// Starts `tessera serve` on a free port and waits until `/healthz` answers.
    /// `configure` adds the arguments or environment, given the address to listen on.
    /// A port another process grabbed in between is retried with a new one.
    pub fn start(configure: impl Fn(&mut Command, SocketAddr)) -> Self {
        let log_dir = tempfile::tempdir().unwrap();
        for attempt in 0..5 {
            let addr = free_port();
            let log = log_dir.path().join(format!("serve-{attempt}.log"));
            let mut cmd = tessera();
            cmd.arg("serve")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap());
            configure(&mut cmd, addr);
            let mut child = cmd.spawn().expect("spawning tessera serve");
            match wait_healthy(&mut child, addr) {
                Ok(()) => {
                    return Self {
                        child: Some(child),
                        addr,
                        log,
                        _log_dir: log_dir,
                    };
                }
                Err(status) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    assert!(
                        text.contains("binding"),
                        "tessera serve did not start ({status}):\n{text}"
                    );
                }
            }
        }
        panic!("no free port after 5 attempts");
    }

    /// Kills the process with SIGKILL (no graceful shutdown) and returns its exit status.
    pub fn kill(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap()
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `METHOD path` with extra headers and an optional `(content type, body)`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
    ) -> Response {
        request(self.addr, method, path, headers, body)
    }

    /// `GET path` with extra headers.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers, None)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Response {
        self.request(
            "POST",
            path,
            &[],
            Some(("application/json", &body.to_string())),
        )
    }

    /// `POST path` with a form body made of `pairs`.
    pub fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> Response {
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.request(
            "POST",
            path,
            &[],
            Some(("application/x-www-form-urlencoded", &body)),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nothing listens on right now (bind port 0, note it, let it go).
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
}

/// Polls `/healthz` until it answers 200; `Err` with the exit status if the process died.
fn wait_healthy(child: &mut Child, addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(status.to_string());
        }
        if try_request(addr, "GET", "/healthz", &[], None).is_ok_and(|r| r.status == 200) {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "tessera serve on {addr} not healthy after 30 s"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// An HTTP response, body read whole.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Response {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }

    /// The `name=value` pair of the cookie `name` set by this response, ready for a
    /// `Cookie` header.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .filter_map(|(_, v)| v.split(';').next())
            .find(|pair| pair.split_once('=').is_some_and(|(n, _)| n == name))
            .map(str::to_owned)
    }
}

/// One request on a fresh connection (`Connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> Response {
    try_request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// One request on a fresh connection; `Err` if the server cannot be reached or answers
/// garbage (for tests that expect servers or their stores to fail).
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let (content_type, content) = body.unwrap_or(("", ""));
    if body.is_some() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if body.is_some() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", content.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(content.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed response: {:?}", String::from_utf8_lossy(&raw)),
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Several servers over shared stores (multi-instance and fault tests).

impl Server {
    /// Whether the process is still running: a server that panicked or aborted is not.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().is_ok_and(|s| s.is_none()))
    }

    /// `/readyz`'s `status` (`ready`, `degraded`, `unavailable`), or why there is none.
    pub fn readiness(&self) -> Result<String, String> {
        let resp =
            try_request(self.addr, "GET", "/readyz", &[], None).map_err(|e| e.to_string())?;
        serde_json::from_str::<serde_json::Value>(&resp.body)
            .ok()
            .and_then(|v| v["status"].as_str().map(str::to_owned))
            .ok_or_else(|| format!("{resp:?}"))
    }

    /// Polls `/readyz` until its status is one of `wanted`; returns it and how long that took.
    /// Panics, with the server's log, if that does not happen `within`.
    pub fn wait_readiness(&self, wanted: &[&str], within: Duration) -> (String, Duration) {
        let start = Instant::now();
        loop {
            let seen = self.readiness();
            if let Ok(status) = &seen {
                if wanted.contains(&status.as_str()) {
                    return (status.clone(), start.elapsed());
                }
            }
            assert!(
                start.elapsed() < within,
                "{}: /readyz not {wanted:?} within {within:?} (last: {seen:?}); log:\n{}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts `n` servers at once (their start-up overlaps, as a rolling deploy's would);
/// `configure` also gets the server's index.
pub fn start_servers(
    n: usize,
    configure: impl Fn(&mut Command, SocketAddr, usize) + Sync,
) -> Vec<Server> {
    let configure = &configure;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| scope.spawn(move || Server::start(|cmd, addr| configure(cmd, addr, i))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// `bytes` random bytes from the OS, as lower-case hex: unique names for namespaces and
/// clusters, so concurrent or aborted runs never collide.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("reading /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a missing service fails the test (`CI=true`) instead of skipping it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips a test that needs something this machine lacks — or, under `CI=true`, fails it, so
/// CI cannot pass by silently testing nothing.
pub fn skip(why: &str) {
    assert!(!in_ci(), "CI=true, so this test may not skip: {why}");
    eprintln!("skipping: {why}");
}

/// `Authorization` value for a bearer token.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Registers `username` with `password` (expects 201).
pub fn register(server: &Server, username: &str, password: &str) {
    let resp = server.post_json(
        "/v1/users",
        &serde_json::json!({ "username": username, "password": password }),
    );
    assert_eq!(resp.status, 201, "registering {username}: {resp:?}");
}

/// A cookie login: the `Cookie` header value and the CSRF token from the body.
pub fn cookie_login(server: &Server, username: &str, password: &str) -> (String, String) {
    let resp = server.post_json(
        "/v1/sessions",
        &serde_json::json!({ "username": username, "password": password }),
    );
    assert_eq!(resp.status, 201, "cookie login of {username}: {resp:?}");
    let cookie = resp
        .cookie("__Host-tessera_session")
        .expect("login sets the session cookie");
    let csrf = resp.json()["csrf_token"]
        .as_str()
        .expect("login body carries csrf_token")
        .to_owned();
    (cookie, csrf)
}

/// The password grant: `(access JWT, refresh token)`.
pub fn password_grant(server: &Server, username: &str, password: &str) -> (String, String) {
    let resp = server.post_form(
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ],
    );
    assert_eq!(resp.status, 200, "password grant of {username}: {resp:?}");
    let body = resp.json();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// `GET /v1/userinfo` with a bearer token.
pub fn userinfo_bearer(server: &Server, token: &str) -> Response {
    server.get("/v1/userinfo", &[("Authorization", &bearer(token))])
}

/// `GET /v1/userinfo` with a `Cookie` header.
pub fn userinfo_cookie(server: &Server, cookie: &str) -> Response {
    server.get("/v1/userinfo", &[("Cookie", cookie)])
}
