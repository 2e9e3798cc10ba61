//! What the browser tests drive: Debian's `chromedriver` (killed on drop), headless Chromium
//! sessions with a fresh profile each (a second browser is a second device), a page server on
//! another origin for the forged-form tests, and axe-core for the accessibility checks.
//!
//! Without Chromium the browser tests print why and skip — unless `CI=true`, where a missing
//! browser fails them (`.ci/run` installs `chromium` and `chromium-driver`).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::free_port;
use crate::webdriver::{Locator, Session};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// The flags every Chromium here starts with: headless, and quiet on a closed network.
const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,800",
];

/// Whether a missing browser must fail the run (CI) rather than skip.
fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A running `chromedriver`, killed when dropped.
pub struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Driver {
    /// Starts chromedriver on a free port; `None` (with the reason printed) when Chromium is
    /// not installed and this is not CI.
    pub fn start() -> Option<Self> {
        let missing: Vec<&str> = [CHROMEDRIVER, CHROMIUM]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        if !missing.is_empty() {
            let reason = format!(
                "browser tests need {missing:?} (Debian: apt-get install chromium chromium-driver)"
            );
            assert!(!required(), "CI=true: {reason}");
            eprintln!("skipping: {reason}");
            return None;
        }
        let addr = free_port();
        let port = addr.port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning chromedriver");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self { child, addr })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium with a profile of its own: a device.
pub struct Browser {
    /// The WebDriver session.
    pub client: Session,
    /// Tessera's base URL (`http://127.0.0.1:PORT`).
    pub base: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A fresh browser (new profile: no cookies) for the server at `addr`; `user_agent`
    /// overrides Chromium's own, to tell two devices apart on the sessions page.
    pub fn open(driver: &Driver, addr: SocketAddr, user_agent: Option<&str>) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        if let Some(ua) = user_agent {
            args.push(format!("--user-agent={ua}"));
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        });
        let client = Session::new(driver.addr, caps);
        Self {
            client,
            base: format!("http://{addr}"),
            _profile: profile,
        }
    }

    /// Opens a path of Tessera's (or a full URL).
    pub fn goto(&self, path: &str) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        self.client.goto(&url);
    }

    /// The current page's path and query.
    pub fn path(&self) -> String {
        let url = self.client.url();
        let path = url.strip_prefix(&self.base).unwrap_or(&url);
        path.to_owned()
    }

    /// The text of the page as shown.
    pub fn text(&self) -> String {
        self.client.find(Locator::Css("body")).text()
    }

    /// Types into the field with this `id`, as a person would.
    pub fn fill(&self, id: &str, text: &str) {
        let field = self.client.find(Locator::Id(id));
        field.clear();
        field.send_keys(text);
    }

    /// Clicks what `locator` finds and waits until the browser has loaded the next page.
    pub fn click_and_wait(&self, locator: Locator<'_>) {
        self.client
            .execute("window.__before_click = true; return true;");
        self.client.find(locator).click();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let loaded = self
                .client
                .try_execute(
                    "return window.__before_click === undefined && document.readyState === 'complete';",
                )
                .unwrap_or(Value::Bool(false));
            if loaded == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "no new page after the click");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Signs in through `/login` (from wherever the browser is sent).
    pub fn sign_in(&self, path: &str, username: &str, password: &str) {
        self.goto(path);
        self.fill("username", username);
        self.fill("password", password);
        self.click_and_wait(Locator::Css("main button[type=submit]"));
    }

    /// Saves a PNG of the page as `name` under `TESSERA_SCREENSHOTS`, when that is set.
    pub fn screenshot(&self, name: &str) {
        let Ok(dir) = std::env::var("TESSERA_SCREENSHOTS") else {
            return;
        };
        let png = self.client.screenshot();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png).unwrap();
    }
}

/// A page server on another origin: answers every request with `html`, on its own thread for
/// the life of the test binary.
pub fn serve_foreign_page(html: String) -> SocketAddr {
    serve_on(TcpListener::bind("127.0.0.1:0").unwrap(), html)
}

/// [`serve_foreign_page`] on a listener bound beforehand — for a page whose origin the server
/// must know when it starts (`--cors-origin`, a redirect URI).
pub fn serve_on(listener: TcpListener, html: String) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    addr
}

/// axe-core's source (`TESSERA_AXE_JS`, which `scripts/test` installs from npm); `None` with
/// the reason printed when it is missing outside CI.
pub fn axe_source() -> Option<String> {
    let path = std::env::var("TESSERA_AXE_JS").ok();
    match path.as_deref().map(std::fs::read_to_string) {
        Some(Ok(source)) => Some(source),
        other => {
            let reason = format!(
                "axe-core not found (TESSERA_AXE_JS={path:?}: {:?}); scripts/test installs it from npm",
                other.map(|r| r.err())
            );
            assert!(!required(), "CI=true: {reason}");
            eprintln!("skipping the axe-core part: {reason}");
            None
        }
    }
}

/// The serious and critical WCAG 2 A/AA violations axe-core finds on the page.
pub fn axe_violations(b: &Browser, axe: &str) -> Vec<String> {
    b.client.execute(&format!(
        "{axe}
;return true;"
    ));
    let script = r"
        const done = arguments[arguments.length - 1];
        axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa', 'best-practice'] } })
          .then(r => done(r.violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
          .catch(e => done(['axe failed: ' + e]));
    ";
    let found = b.client.execute_async(script);
    serde_json::from_value(found).unwrap()
}

/// What can be checked from the DOM alone: one `h1`, a `main` landmark, a language, every
/// visible form control labelled, every button named, focusable controls reachable.
pub fn dom_problems(b: &Browser) -> Vec<String> {
    let script = r"
        const problems = [];
        if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
        if (!document.querySelector('main')) problems.push('no main landmark');
        if (!document.documentElement.lang) problems.push('no lang');
        for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
          if (el.labels.length === 0 && !el.getAttribute('aria-label')) problems.push('unlabelled ' + (el.id || el.name));
          if (el.tabIndex < 0) problems.push('unreachable ' + el.id);
        }
        for (const el of document.querySelectorAll('button, a[href]')) {
          if (!el.textContent.trim() && !el.getAttribute('aria-label')) problems.push('unnamed ' + el.outerHTML);
        }
        return problems;
    ";
    let found = b.client.execute(script);
    serde_json::from_value(found).unwrap()
}
