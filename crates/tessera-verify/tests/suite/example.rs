//! The `resource-server` example, run as a process against the mock: its command line, its
//! "listening on" line and `GET /whoami`.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::mock::{AUDIENCE, CLIENT_ID, CLIENT_SECRET, Mock};

/// `cargo test` builds the examples next to the test binaries' `deps` directory.
fn example() -> Option<PathBuf> {
    let deps = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let path = deps
        .parent()?
        .join("examples")
        .join(format!("resource-server{}", std::env::consts::EXE_SUFFIX));
    path.exists().then_some(path)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_example_serves_whoami_for_valid_tokens_only() {
    let Some(path) = example() else {
        println!("skipped: the example is not built (run `cargo test -p tessera-verify`)");
        return;
    };
    let mock = Mock::start().await;
    let mut child = Killed(
        Command::new(path)
            .args(["--issuer", mock.issuer(), "--server", &mock.url])
            .args(["--audience", AUDIENCE, "--client-id", CLIENT_ID])
            .args(["--client-secret", CLIENT_SECRET, "--listen", "127.0.0.1:0"])
            .args(["--max-staleness", "5"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();

    let token = mock.sign(&mock.claims("j"));
    let (status, body) = get(&addr, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({ "sub": "alice", "scope": "read write", "sid": "sid-1" })
    );
    let (status, body) = get(&addr, None).await;
    assert_eq!(status, 401);
    assert_eq!(body, r#"{"error":"invalid_token"}"#);
}

/// A minimal HTTP/1.1 GET, so the test needs no HTTP client of its own.
async fn get(addr: &str, token: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let request =
        format!("GET /whoami HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap();
    (status, body)
}
