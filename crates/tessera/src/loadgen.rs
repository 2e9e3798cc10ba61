//! An HTTP/1.1 load generator over loopback: `connections` keep-alive TCP connections, each
//! sending one request, reading the whole answer, and sending the next, until the deadline.
//!
//! Used by `tessera bench` and by the `usual_stack` bench (compiled there through `#[path]`),
//! so both sides of a comparison are driven by the same code.
//!
//! Design decision: requests are raw bytes rendered up front and answers are parsed only as
//! far as the status line and `content-length` — no HTTP client library in the measured
//! loop, so the generator's own cost is small and identical for every server it drives. The
//! servers measured are hyper (through axum), which always answers these routes with a
//! `content-length`; a chunked answer is reported as an error rather than guessed at.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// One answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// What one connection sends next, given the previous answer (`None` before the first
/// request). Returning `None` ends the connection early (a chain that cannot go on).
pub type Script = Box<dyn FnMut(Option<&Answer>) -> Option<Vec<u8>> + Send>;

/// A GET request with the given extra header lines (each without its CRLF).
#[must_use]
pub fn get(path: &str, headers: &[String]) -> Vec<u8> {
    let mut req = format!("GET {path} HTTP/1.1\r\nhost: bench\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// A form POST (`application/x-www-form-urlencoded`) with the given extra header lines.
#[must_use]
pub fn post_form(path: &str, headers: &[String], body: &str) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n",
        body.len()
    );
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    req.into_bytes()
}

/// A script that cycles through `requests`, starting at `offset` (so connections spread
/// over the set instead of marching in step).
#[must_use]
pub fn cycle(requests: std::sync::Arc<Vec<Vec<u8>>>, offset: usize) -> Script {
    let mut i = offset;
    Box::new(move |_| {
        let n = requests.len();
        if n == 0 {
            return None;
        }
        let req = requests.get(i % n).cloned();
        i = i.wrapping_add(1);
        req
    })
}

/// The measurements of one run.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Answers with the expected status.
    pub ok: u64,
    /// Answers with another status, or connections that failed.
    pub errors: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latency of every answered request, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// Bytes of every request sent, summed.
    pub request_bytes: u64,
    /// Bytes of every answer read (head and body), summed.
    pub answer_bytes: u64,
}

impl Outcome {
    /// Successful answers per second.
    #[must_use]
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// The latency at quantile `q` (0 to 1), in microseconds.
    #[must_use]
    pub fn quantile_us(&self, q: f64) -> u32 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0;
        }
        let rank = ((n as f64 - 1.0) * q.clamp(0.0, 1.0)).round() as usize;
        self.latencies_us.get(rank).copied().unwrap_or(0)
    }

    /// Mean request size in bytes (the credential is most of it).
    #[must_use]
    pub fn request_bytes_each(&self) -> f64 {
        let n = self.ok + self.errors;
        if n == 0 {
            0.0
        } else {
            self.request_bytes as f64 / n as f64
        }
    }

    /// Mean answer size in bytes.
    #[must_use]
    pub fn answer_bytes_each(&self) -> f64 {
        let n = self.ok + self.errors;
        if n == 0 {
            0.0
        } else {
            self.answer_bytes as f64 / n as f64
        }
    }
}

/// Runs one script per connection against `addr` for `duration`; an answer counts as
/// successful if its status is `expect`.
///
/// # Errors
/// If no connection could be opened at all.
pub async fn run(
    addr: SocketAddr,
    scripts: Vec<Script>,
    duration: Duration,
    expect: u16,
) -> std::io::Result<Outcome> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(scripts.len());
    for script in scripts {
        tasks.push(tokio::spawn(connection(addr, script, deadline, expect)));
    }
    let mut total = Outcome::default();
    let mut connected = false;
    let mut last_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(one)) => {
                connected = true;
                total.ok += one.ok;
                total.errors += one.errors;
                total.request_bytes += one.request_bytes;
                total.answer_bytes += one.answer_bytes;
                total.latencies_us.extend(one.latencies_us);
            }
            Ok(Err(e)) => {
                total.errors += 1;
                last_error = Some(e);
            }
            Err(e) => {
                total.errors += 1;
                last_error = Some(std::io::Error::other(e.to_string()));
            }
        }
    }
    total.elapsed = start.elapsed();
    if !connected {
        return Err(last_error.unwrap_or_else(|| std::io::Error::other("no connection ran")));
    }
    total.latencies_us.sort_unstable();
    Ok(total)
}

/// Sends one request on a new connection and returns the answer (for setting up).
///
/// # Errors
/// If the connection fails or the answer cannot be read.
pub async fn once(addr: SocketAddr, request: &[u8]) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut buf = Vec::new();
    Ok(read_answer(&mut stream, &mut buf).await?.0)
}

async fn connection(
    addr: SocketAddr,
    mut script: Script,
    deadline: Instant,
    expect: u16,
) -> std::io::Result<Outcome> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut out = Outcome::default();
    let mut buf = Vec::with_capacity(8192);
    let mut last: Option<Answer> = None;
    while Instant::now() < deadline {
        let Some(req) = script(last.as_ref()) else {
            break;
        };
        let t = Instant::now();
        stream.write_all(&req).await?;
        out.request_bytes += req.len() as u64;
        let (answer, size) = match read_answer(&mut stream, &mut buf).await {
            Ok(a) => a,
            Err(e) => {
                // The server closed or broke the connection: counted, and this connection ends.
                out.errors += 1;
                tracing::debug!(error = %e, "load generator connection ended");
                break;
            }
        };
        let us = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
        out.answer_bytes += size as u64;
        if answer.status == expect {
            out.ok += 1;
            out.latencies_us.push(us);
        } else {
            out.errors += 1;
        }
        last = Some(answer);
    }
    Ok(out)
}

/// Reads one answer; `buf` carries bytes read past its end (there are none with one request
/// in flight, but the buffer is kept honest anyway). Returns the answer and its wire size.
async fn read_answer(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<(Answer, usize)> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        read_more(stream, buf).await?;
    };
    let head = std::str::from_utf8(buf.get(..head_end).unwrap_or_default())
        .map_err(|_| invalid("answer head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid("no status line"))?;
    let mut length = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(invalid("chunked answers are not supported"));
            }
        }
    }
    let length = length.ok_or_else(|| invalid("answer without content-length"))?;
    let total = head_end + length;
    while buf.len() < total {
        read_more(stream, buf).await?;
    }
    let body = buf.get(head_end..total).unwrap_or_default().to_vec();
    buf.drain(..total);
    Ok((Answer { status, body }, total))
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "server closed the connection",
        ));
    }
    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

#[cfg(test)]
mod tests {
    // The usual_stack bench compiles this file (#[path]) with cfg(test) but no test harness,
    // which drops the test functions and leaves the import unused there.
    #[allow(unused_imports)]
    use super::{Duration, cycle, get, run};

    #[tokio::test]
    async fn reads_keep_alive_answers_and_counts_statuses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/ok", axum::routing::get(|| async { "hello" }))
            .route(
                "/no",
                axum::routing::get(|| async { (axum::http::StatusCode::UNAUTHORIZED, "no") }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let requests = std::sync::Arc::new(vec![get("/ok", &[]), get("/no", &[])]);
        let out = run(
            addr,
            vec![cycle(requests.clone(), 0), cycle(requests, 1)],
            Duration::from_millis(200),
            200,
        )
        .await
        .unwrap();
        assert!(out.ok > 10, "{out:?}");
        // Strict alternation on each connection: as many refusals as successes, give or take
        // the last request of each connection.
        assert!(out.ok.abs_diff(out.errors) <= 2, "{out:?}");
        assert_eq!(out.latencies_us.len() as u64, out.ok);
        assert!(out.quantile_us(0.5) <= out.quantile_us(0.99));
        assert!(out.request_bytes_each() > 20.0);
    }
}
