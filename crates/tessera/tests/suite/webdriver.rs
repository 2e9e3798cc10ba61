//! A W3C WebDriver client, as small as the browser tests need: sessions, navigation, finding
//! and clicking elements, typing, scripts and screenshots — JSON over the plain HTTP helper of
//! `common` to a chromedriver on loopback.
//!
//! Written here rather than taken from a crate: the protocol is a dozen JSON endpoints, and
//! the WebDriver crates bring a second HTTP stack and their own copies of half the tree.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

/// The key under which WebDriver names an element (W3C WebDriver §12.1).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How an element is looked for.
#[derive(Clone, Copy, Debug)]
pub enum Locator<'a> {
    /// A CSS selector.
    Css(&'a str),
    /// An XPath expression.
    XPath(&'a str),
    /// A link by its whole text.
    LinkText(&'a str),
    /// An element by `id`.
    Id(&'a str),
}

impl Locator<'_> {
    fn query(self) -> Value {
        match self {
            Self::Css(css) => json!({ "using": "css selector", "value": css }),
            Self::XPath(x) => json!({ "using": "xpath", "value": x }),
            Self::LinkText(t) => json!({ "using": "link text", "value": t }),
            Self::Id(id) => json!({ "using": "css selector", "value": format!("#{id}") }),
        }
    }
}

/// One HTTP exchange with chromedriver, which keeps connections open whatever the request
/// says: the answer is read by its `Content-Length`, not to the end of the stream.
fn exchange(
    driver: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(driver)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {driver}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut raw = vec![0; length];
    reader.read_exact(&mut raw)?;
    Ok((status, String::from_utf8_lossy(&raw).into_owned()))
}

/// One command; the `value` of the answer, or the WebDriver error as `Err`.
fn command(
    driver: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let text = body.map(Value::to_string).unwrap_or_default();
    let (status, answer) =
        exchange(driver, method, path, &text).map_err(|e| format!("{method} {path}: {e}"))?;
    let answer: Value = serde_json::from_str(&answer)
        .map_err(|e| format!("{method} {path}: not JSON ({e}): {answer}"))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if status == 200 {
        Ok(value)
    } else {
        Err(format!("{method} {path}: {status} {value}"))
    }
}

/// A browser session, ended (and its browser closed) when dropped.
pub struct Session {
    driver: SocketAddr,
    id: String,
}

/// An element of the current page.
pub struct Element<'s> {
    session: &'s Session,
    id: String,
}

impl Session {
    /// A new session with these capabilities (`alwaysMatch`).
    pub fn new(driver: SocketAddr, capabilities: Value) -> Self {
        let body = json!({ "capabilities": { "alwaysMatch": capabilities } });
        let value = command(driver, "POST", "/session", Some(&body)).expect("a new session");
        let id = value["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Self { driver, id }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        command(
            self.driver,
            method,
            &format!("/session/{}{path}", self.id),
            body,
        )
    }

    fn must(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.call(method, path, body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.must("POST", "/url", Some(&json!({ "url": url })));
    }

    /// The current page's URL.
    pub fn url(&self) -> String {
        self.must("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element `locator` finds.
    pub fn find(&self, locator: Locator<'_>) -> Element<'_> {
        let found = self.must("POST", "/element", Some(&locator.query()));
        let id = found[ELEMENT_KEY].as_str().expect("an element").to_owned();
        Element { session: self, id }
    }

    /// Runs `script` (a function body) in the page; its return value.
    pub fn execute(&self, script: &str) -> Value {
        self.must(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    /// [`Session::execute`], if the page lets it finish (`Err` while a navigation is under way).
    pub fn try_execute(&self, script: &str) -> Result<Value, String> {
        self.call(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    /// Runs `script`, which calls its last argument with the result.
    pub fn execute_async(&self, script: &str) -> Value {
        self.must(
            "POST",
            "/execute/async",
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let b64 = self.must("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 text"))
            .expect("a PNG in base64")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = command(
            self.driver,
            "DELETE",
            &format!("/session/{}", self.id),
            None,
        );
    }
}

impl Element<'_> {
    fn path(&self, action: &str) -> String {
        format!("/element/{}/{action}", self.id)
    }

    /// Clicks it.
    pub fn click(&self) {
        self.session
            .must("POST", &self.path("click"), Some(&json!({})));
    }

    /// Empties a text field.
    pub fn clear(&self) {
        self.session
            .must("POST", &self.path("clear"), Some(&json!({})));
    }

    /// Types `text` into it.
    pub fn send_keys(&self, text: &str) {
        self.session
            .must("POST", &self.path("value"), Some(&json!({ "text": text })));
    }

    /// Its rendered text.
    pub fn text(&self) -> String {
        self.session
            .must("GET", &self.path("text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}
