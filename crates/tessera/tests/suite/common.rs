//! Helpers for the real-binary tests: run the `tessera` executable, start `tessera serve` on a
//! free port (killed on drop, so a failing test leaves no process behind), a tiny HTTP/1.1
//! client over `std::net::TcpStream` — a handful of requests need no HTTP crate —, and
//! [`Deployment`]: instances over the shared PostgreSQL and Redis in a namespace of their own,
//! removed when dropped.

// Each test crate uses a different subset of these helpers.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
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

    /// Sends the signal `name` (`TERM`, `INT`, …) to the process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {name} {pid}: {status}");
    }

    /// Waits up to `within` for the process to exit; its status, or `None` if it is still
    /// running (it is then killed when dropped).
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
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

// ---------------------------------------------------------------------------------------------
// Deployments: instances over the machine's shared PostgreSQL and Redis, in a namespace of
// their own. The services are named by `TESSERA_TEST_POSTGRES` (default
// `postgres://postgres@127.0.0.1:5432/test`) and `TESSERA_TEST_REDIS` (default
// `redis://127.0.0.1:6379`).

/// Every instance behind one load balancer is given the same issuer: tokens minted by one
/// must verify on the others.
pub const ISSUER: &str = "http://tessera.test";

/// How long a fresh instance may take to follow the feed (`/readyz` says `ready`).
const READY_WITHIN: Duration = Duration::from_secs(20);

pub fn postgres_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("TESSERA_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The parts of `scheme://[user][:password]@host[:port][/path]` the tests need.
struct UrlParts {
    authority: String,
    password: Option<String>,
    path: String,
}

fn parse_url(url: &str, default_port: u16) -> Option<UrlParts> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (userinfo, host) = match rest[..end].rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, &rest[..end]),
    };
    if host.is_empty() {
        return None;
    }
    let has_port = !host.ends_with(']')
        && host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    let authority = if has_port {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    };
    let password = userinfo
        .and_then(|u| u.split_once(':'))
        .map(|(_, p)| p.to_owned())
        .filter(|p| !p.is_empty());
    let path = rest[end..]
        .trim_start_matches('/')
        .split('?')
        .next()
        .unwrap_or("")
        .to_owned();
    Some(UrlParts {
        authority,
        password,
        path,
    })
}

fn connect(url: &str, default_port: u16) -> Result<TcpStream, String> {
    let parts = parse_url(url, default_port).ok_or_else(|| format!("cannot parse {url}"))?;
    let mut last = format!("{} resolves to nothing", parts.authority);
    for addr in parts
        .authority
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
    {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

// A minimal RESP client, enough to find and delete a namespace's keys. ---

enum RespValue {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<RespValue>),
}

struct Redis {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Redis {
    fn connect(url: &str) -> Result<Self, String> {
        let stream = connect(url, 6379)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut redis = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let parts = parse_url(url, 6379).ok_or("unparsable URL")?;
        if let Some(password) = parts.password {
            redis.call(&["AUTH", &password])?;
        }
        if !parts.path.is_empty() {
            redis.call(&["SELECT", &parts.path])?;
        }
        Ok(redis)
    }

    fn call(&mut self, args: &[&str]) -> Result<RespValue, String> {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.writer
            .write_all(out.as_bytes())
            .map_err(|e| e.to_string())?;
        match self.read()? {
            RespValue::Error(e) => Err(e),
            v => Ok(v),
        }
    }

    fn read(&mut self) -> Result<RespValue, String> {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at_checked(1).ok_or("empty reply")?;
        let number = || rest.parse::<i64>().map_err(|e| format!("{line:?}: {e}"));
        Ok(match kind {
            "+" => RespValue::Simple(rest.to_owned()),
            "-" => RespValue::Error(rest.to_owned()),
            ":" => RespValue::Int(number()?),
            "$" => match usize::try_from(number()?) {
                Err(_) => RespValue::Bulk(None),
                Ok(len) => {
                    let mut buf = vec![0; len + 2];
                    self.reader
                        .read_exact(&mut buf)
                        .map_err(|e| e.to_string())?;
                    buf.truncate(len);
                    RespValue::Bulk(Some(String::from_utf8_lossy(&buf).into_owned()))
                }
            },
            "*" => {
                let n = usize::try_from(number()?).unwrap_or(0);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.read()?);
                }
                RespValue::Array(items)
            }
            _ => return Err(format!("unexpected reply {line:?}")),
        })
    }

    /// Deletes every key matching `pattern`; returns how many.
    fn delete_matching(&mut self, pattern: &str) -> Result<usize, String> {
        let mut cursor = "0".to_owned();
        let mut deleted = 0;
        loop {
            let RespValue::Array(reply) =
                self.call(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"])?
            else {
                return Err("SCAN did not answer an array".into());
            };
            let mut reply = reply.into_iter();
            let (Some(RespValue::Bulk(Some(next))), Some(RespValue::Array(keys))) =
                (reply.next(), reply.next())
            else {
                return Err("SCAN answered an unexpected shape".into());
            };
            let keys: Vec<String> = keys
                .into_iter()
                .filter_map(|k| match k {
                    RespValue::Bulk(Some(k)) | RespValue::Simple(k) => Some(k),
                    _ => None,
                })
                .collect();
            if !keys.is_empty() {
                let mut args = vec!["DEL"];
                args.extend(keys.iter().map(String::as_str));
                if let RespValue::Int(n) = self.call(&args)? {
                    deleted += usize::try_from(n).unwrap_or(0);
                }
            }
            if next == "0" {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

// One deployment: a namespace on the shared services, removed when dropped.

/// A namespace of its own on the shared PostgreSQL (a schema) and Redis (a key prefix).
/// Declared before the servers that use it, so it is dropped — and cleaned — after them,
/// whether the test passed or panicked.
pub struct Deployment {
    namespace: String,
    postgres: String,
    redis: Option<String>,
}

impl Deployment {
    /// `None` (after printing why) when a needed service is unreachable outside CI.
    pub fn new(with_redis: bool) -> Option<Self> {
        let postgres = postgres_url();
        if let Err(e) = connect(&postgres, 5432) {
            skip(&format!("PostgreSQL unreachable at {postgres}: {e}"));
            return None;
        }
        let redis = if with_redis {
            let url = redis_url();
            if let Err(e) = Redis::connect(&url).and_then(|mut r| r.call(&["PING"])) {
                skip(&format!("Redis unreachable at {url}: {e}"));
                return None;
            }
            Some(url)
        } else {
            None
        };
        Some(Self {
            namespace: format!("t{}", random_hex(6)),
            postgres,
            redis,
        })
    }

    /// Starts `n` instances over this deployment, all with the issuer [`ISSUER`] and the
    /// extra `serve` arguments `extra`, and waits until each follows the feed.
    pub fn start(&self, n: usize, extra: &[&str]) -> Vec<Server> {
        let servers = start_servers(n, |cmd, addr, _| {
            cmd.env("TESSERA_KEK", TEST_KEK)
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--issuer")
                .arg(ISSUER)
                .args(self.store_args())
                .args(extra);
        });
        // Until the feed is followed, an instance checks the store per request: correct but
        // not what the tests using a deployment are about. Ready means pushed revocations
        // will reach it.
        for s in &servers {
            s.wait_readiness(&["ready"], READY_WITHIN);
        }
        servers
    }

    /// The arguments that open this deployment's store, for `serve` and the admin commands
    /// alike: `--store`, `--namespace` and, with Redis, `--redis`.
    pub fn store_args(&self) -> Vec<String> {
        let mut args = vec![
            "--store".to_owned(),
            self.postgres.clone(),
            "--namespace".to_owned(),
            self.namespace.clone(),
        ];
        if let Some(redis) = &self.redis {
            args.extend(["--redis".to_owned(), redis.clone()]);
        }
        args
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let ns = &self.namespace;
        let dropped = Command::new("psql")
            .arg(&self.postgres)
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS \"{ns}\" CASCADE"))
            .stdin(Stdio::null())
            .output();
        match dropped {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: could not drop schema {ns}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("warning: could not run psql to drop schema {ns}: {e}"),
        }
        if let Some(url) = &self.redis {
            // Sessions, counters and the channel use `<ns>:`; the revocation copy shares one
            // Cluster hash slot as `{<ns>:rev}:`.
            let cleaned = Redis::connect(url).and_then(|mut r| {
                Ok(r.delete_matching(&format!("{ns}:*"))?
                    + r.delete_matching(&format!("{{{ns}:rev}}*"))?)
            });
            if let Err(e) = cleaned {
                eprintln!("warning: could not delete Redis keys of {ns}: {e}");
            }
        }
    }
}
