//! A single-page app on another origin, in a real browser against the real binary: the
//! authorization-code flow with PKCE for a public client (sign-in and consent on Tessera's
//! pages, the code redeemed and userinfo read by the page's own `fetch`), possible only
//! because its origin is listed with `--cors-origin` — and the same page on an origin that is
//! not listed, whose `fetch` the browser refuses.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::browser::create_user;
use crate::browser_support::{Browser, Driver, serve_on};
use crate::common::{PASSWORD, Server, tessera};
use crate::webdriver::Locator;

/// The app: a button that starts the flow (verifier, S256 challenge and state made with
/// `crypto.subtle` and kept in `sessionStorage`), and on the way back the code redeemed and
/// userinfo read, the outcome written into `#result`. Its own CSP allows its inline script
/// and connections to Tessera only.
const SPA: &str = r#"<!DOCTYPE html><html lang="en"><head><title>Notes</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; connect-src TESSERA">
</head><body><main><h1>Notes</h1>
<button id="start">Sign in with Tessera</button><pre id="result"></pre></main>
<script>
const tessera = "TESSERA";
// The client: the third-party one, unless the test chose another for this tab.
const clientId = sessionStorage.getItem("client_id") || "CLIENT_ID";
const here = location.origin + "/";
const b64url = bytes => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const random = () => b64url(crypto.getRandomValues(new Uint8Array(32)));
async function start() {
  const verifier = random();
  const state = random();
  sessionStorage.setItem("verifier", verifier);
  sessionStorage.setItem("state", state);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  const query = new URLSearchParams({
    response_type: "code", client_id: clientId, redirect_uri: here,
    code_challenge: b64url(digest), code_challenge_method: "S256", state,
  });
  location.assign(tessera + "/oauth/authorize?" + query);
}
async function redeem(code, verifier) {
  const token = await fetch(tessera + "/oauth/token", {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "authorization_code", client_id: clientId, code,
      redirect_uri: here, code_verifier: verifier,
    }),
  });
  const grant = await token.json();
  if (!token.ok) return { token_status: token.status, error: grant.error };
  const info = await fetch(tessera + "/v1/userinfo", {
    headers: { Authorization: "Bearer " + grant.access_token },
  });
  return {
    token_status: token.status, token_type: grant.token_type,
    userinfo_status: info.status, userinfo: await info.json(),
  };
}
const failed = e => ({ failed: e.name + ": " + e.message });
const show = r => { document.getElementById("result").textContent = JSON.stringify(r); };
const back = new URLSearchParams(location.search);
if (back.has("code")) {
  if (back.get("state") !== sessionStorage.getItem("state")) {
    show({ error: "state mismatch" });
  } else {
    redeem(back.get("code"), sessionStorage.getItem("verifier"))
      .then(r => show({ ...r, iss: back.get("iss") }), e => show(failed(e)));
  }
}
document.getElementById("start").addEventListener("click", start);
</script></body></html>"#;

/// `tessera clients create` for a public client whose one redirect URI is `redirect_uri`;
/// its id. A third-party one is asked for consent, a first-party one is not.
fn create_public_client(
    data_dir: &std::path::Path,
    redirect_uri: &str,
    first_party: bool,
) -> String {
    let mut cmd = tessera();
    cmd.args(["clients", "create", "Notes", "--public", "--redirect-uri"])
        .arg(redirect_uri);
    if first_party {
        cmd.arg("--first-party");
    }
    let out = cmd
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let made: Value = serde_json::from_str(text.trim()).unwrap();
    made["client_id"].as_str().unwrap().to_owned()
}

/// What the page wrote into `#result`, once it has written it.
fn result_shown(b: &Browser) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = b
            .client
            .execute("return document.getElementById('result').textContent;");
        if let Some(text) = text.as_str().filter(|t| !t.is_empty()) {
            return serde_json::from_str(text).unwrap();
        }
        assert!(Instant::now() < deadline, "the page showed no result");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The page's own `redeem` with a made-up code, as it reports it.
fn redeem_made_up_code(b: &Browser) -> Value {
    b.client.execute_async(
        "const done = arguments[arguments.length - 1];
         redeem('not-a-code', 'v'.repeat(43)).then(done, e => done(failed(e)));",
    )
}

#[test]
fn a_single_page_app_on_a_listed_origin_signs_in_with_pkce_and_another_origin_is_refused() {
    let Some(driver) = Driver::start() else {
        return;
    };
    // Both pages' origins are fixed before the server starts: one is listed, one is not.
    let listed = TcpListener::bind("127.0.0.1:0").unwrap();
    let unlisted = TcpListener::bind("127.0.0.1:0").unwrap();
    let spa = format!("http://{}", listed.local_addr().unwrap());
    let other = format!("http://{}", unlisted.local_addr().unwrap());

    let data = tempfile::tempdir().unwrap();
    create_user(data.path(), "alice", false);
    let client_id = create_public_client(data.path(), &format!("{spa}/"), false);
    let first_party = create_public_client(data.path(), &format!("{spa}/"), true);
    let server = Server::start(|cmd, addr| {
        cmd.args(["--listen", &addr.to_string()])
            .args(["--issuer", &format!("http://{addr}")])
            .args(["--cors-origin", &spa, "--data-dir"])
            .arg(data.path());
    });
    let base = format!("http://{}", server.addr);
    let page = SPA
        .replace("TESSERA", &base)
        .replace("CLIENT_ID", &client_id);
    serve_on(listed, page.clone());
    serve_on(unlisted, page);

    let b = Browser::open(&driver, server.addr, None);
    b.goto(&format!("{spa}/"));
    b.click_and_wait(Locator::Id("start"));
    assert!(b.path().starts_with("/login?return_to="), "{}", b.path());
    b.fill("username", "alice");
    b.fill("password", PASSWORD);
    b.click_and_wait(Locator::Css("main button[type=submit]"));
    assert!(b.path().starts_with("/oauth/authorize?"), "{}", b.path());
    assert!(b.text().contains("Allow Notes to use your account?"));
    b.click_and_wait(Locator::Css("button[name=decision][value=allow]"));

    let url = b.client.url();
    assert!(url.starts_with(&format!("{spa}/?code=")), "{url}");
    let shown = result_shown(&b);
    assert_eq!(shown["token_status"], 200, "{shown}");
    assert_eq!(shown["token_type"], "Bearer", "{shown}");
    assert_eq!(shown["userinfo_status"], 200, "{shown}");
    assert_eq!(shown["userinfo"]["username"], "alice", "{shown}");
    assert_eq!(shown["iss"], base.as_str(), "{shown}");

    // A first-party app is sent its code straight from the sign-in form's post, through
    // `/oauth/authorize` to the app's origin: the sign-in page's CSP lets that redirect go.
    let fresh = Browser::open(&driver, server.addr, None);
    fresh.goto(&format!("{spa}/"));
    fresh.client.execute(&format!(
        "sessionStorage.setItem('client_id', '{first_party}'); return true;"
    ));
    fresh.goto(&format!("{spa}/"));
    fresh.click_and_wait(Locator::Id("start"));
    fresh.fill("username", "alice");
    fresh.fill("password", PASSWORD);
    fresh.click_and_wait(Locator::Css("main button[type=submit]"));
    let url = fresh.client.url();
    assert!(url.starts_with(&format!("{spa}/?code=")), "{url}");
    let shown = result_shown(&fresh);
    assert_eq!(shown["userinfo"]["username"], "alice", "{shown}");

    // From the listed origin a refused code is an answer the page can read…
    let answer = redeem_made_up_code(&b);
    assert_eq!(answer["token_status"], 400, "{answer}");
    assert_eq!(answer["error"], "invalid_grant", "{answer}");
    // …from any other origin the browser keeps the answer from the page.
    b.goto(&format!("{other}/"));
    let refused = redeem_made_up_code(&b);
    assert_eq!(refused["failed"], "TypeError: Failed to fetch", "{refused}");
}
