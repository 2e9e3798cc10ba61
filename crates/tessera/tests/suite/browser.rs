//! Tessera's pages in a real browser (headless Chromium through chromedriver) against the real
//! binary: sign-in and registration forms, a second browser as a second device, signing it
//! out, forms posted from another origin, the cookie out of reach of scripts, and an
//! accessibility check of every page. With `TESSERA_SCREENSHOTS=DIR` the walk-through also
//! saves a screenshot of each page (how `docs/screenshots/` is made).

use crate::browser_support::{
    Browser, Driver, axe_source, axe_violations, dom_problems, serve_foreign_page,
};
use crate::common::{PASSWORD, Server};
use crate::webdriver::Locator;

/// The second device: another browser and system, so the sessions page can tell them apart.
const SECOND_DEVICE: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";

const NEW_PASSWORD: &str = "lantern orchard pebble 2026";

fn serve() -> Server {
    Server::start(|cmd, addr| {
        cmd.args(["--listen", &addr.to_string(), "--store", "memory:"]);
    })
}

/// The sign-out button in the sessions table's row naming `device`.
fn sign_out_button_of(device: &str) -> String {
    format!("//tr[th[contains(., '{device}')]]//button")
}

#[test]
fn a_second_device_is_listed_then_signed_out_from_the_first() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let server = serve();
    let laptop = Browser::open(&driver, server.addr, None);
    laptop.goto("/register");
    laptop.fill("username", "alice");
    laptop.fill("password", PASSWORD);
    laptop.click_and_wait(Locator::Css("main button[type=submit]"));
    assert_eq!(laptop.path(), "/account");
    assert!(laptop.text().contains("alice"));

    // The second device is sent to sign in, then back to the page it asked for.
    let phone = Browser::open(&driver, server.addr, Some(SECOND_DEVICE));
    phone.goto("/account/sessions");
    assert_eq!(phone.path(), "/login?return_to=%2Faccount%2Fsessions");
    phone.sign_in("/login?return_to=%2Faccount%2Fsessions", "alice", PASSWORD);
    assert_eq!(phone.path(), "/account/sessions");
    assert!(phone.text().contains("Firefox on Windows (this device)"));

    laptop.goto("/account/sessions");
    let listed = laptop.text();
    assert!(
        listed.contains("Chrome (headless) on Linux (this device)"),
        "{listed}"
    );
    assert!(listed.contains("Firefox on Windows"), "{listed}");
    assert!(!listed.contains("Firefox on Windows (this device)"));
    assert_eq!(listed.matches("this device").count(), 1);
    laptop.screenshot("sessions-two-devices");

    // Scripts cannot read the session cookie (HttpOnly).
    let cookies = laptop.client.execute("return document.cookie;");
    assert!(
        !cookies.as_str().unwrap_or_default().contains("tessera"),
        "{cookies}"
    );

    laptop.click_and_wait(Locator::XPath(&sign_out_button_of("Firefox on Windows")));
    assert!(laptop.text().contains("That session is signed out."));
    assert!(!laptop.text().contains("Firefox on Windows"));
    // The phone's next click sends it to sign in.
    phone.click_and_wait(Locator::LinkText("Account"));
    assert_eq!(phone.path(), "/login");

    // Signing out from the header ends the laptop's session too.
    laptop.click_and_wait(Locator::Css("form.signout button"));
    assert_eq!(laptop.path(), "/login?notice=signed-out");
    laptop.goto("/account");
    assert_eq!(laptop.path(), "/login");
}

/// The foreign page: three forms aimed at Tessera, each with the fields its real form has
/// and a guessed `csrf_token`.
fn foreign_forms(tessera: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><title>Win a prize</title></head><body>
<form method="post" action="{tessera}/login"><input type="hidden" name="csrf_token" value="guess">
<input type="hidden" name="username" value="mallory"><input type="hidden" name="password" value="{PASSWORD}">
<button id="login">Log in as mallory</button></form>
<form method="post" action="{tessera}/account/sessions/others"><input type="hidden" name="csrf_token" value="guess">
<button id="others">Sign out other sessions</button></form>
<form method="post" action="{tessera}/account/password"><input type="hidden" name="csrf_token" value="guess">
<input type="hidden" name="current_password" value="{PASSWORD}"><input type="hidden" name="new_password" value="{NEW_PASSWORD}">
<button id="password">Change password</button></form>
</body></html>"#
    )
}

#[test]
fn forms_posted_from_another_origin_are_refused() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let server = serve();
    let tessera = format!("http://{}", server.addr);
    for name in ["alice", "mallory"] {
        let r = server.post_json(
            "/v1/users",
            &serde_json::json!({ "username": name, "password": PASSWORD }),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let victim = Browser::open(&driver, server.addr, None);
    victim.sign_in("/login", "alice", PASSWORD);
    // A second session of alice's, which "sign out other sessions" would end.
    let other = Browser::open(&driver, server.addr, Some(SECOND_DEVICE));
    other.sign_in("/login", "alice", PASSWORD);

    let foreign = serve_foreign_page(foreign_forms(&tessera));
    // `localhost` is another site; `127.0.0.1` on another port is the same site but another
    // origin, so the session cookie is sent and only the origin checks stand in the way.
    for origin in [
        format!("http://localhost:{}", foreign.port()),
        format!("http://127.0.0.1:{}", foreign.port()),
    ] {
        for button in ["login", "others", "password"] {
            victim.goto(&format!("{origin}/"));
            victim.click_and_wait(Locator::Id(button));
            let shown = victim.text();
            assert!(
                shown.contains("This form could not be accepted"),
                "{origin} {button}: {shown}"
            );
        }
    }
    // Nothing changed: alice is still signed in on both devices, with the same password.
    victim.goto("/account/sessions");
    let listed = victim.text();
    assert!(listed.contains("Firefox on Windows"), "{listed}");
    assert!(listed.contains("alice") && !listed.contains("mallory"));
    other.goto("/account");
    assert_eq!(other.path(), "/account");
    let r = server.post_json(
        "/v1/sessions",
        &serde_json::json!({ "username": "alice", "password": PASSWORD }),
    );
    assert_eq!(r.status, 201, "the password is unchanged");
}

/// Every page: the DOM checks, axe-core's WCAG 2 A/AA rules with no serious or critical
/// violation, and (with `TESSERA_SCREENSHOTS`) a screenshot.
#[test]
fn every_page_passes_the_accessibility_checks() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let axe = axe_source();
    let server = serve();
    let b = Browser::open(&driver, server.addr, None);
    let mut problems = Vec::new();
    let mut check = |name: &str, b: &Browser| {
        for p in dom_problems(b) {
            problems.push(format!("{name}: {p}"));
        }
        if let Some(axe) = &axe {
            for v in axe_violations(b, axe) {
                problems.push(format!("{name}: {v}"));
            }
        }
        b.screenshot(name);
    };
    b.goto("/register");
    check("register", &b);
    b.fill("username", "alice");
    b.fill("password", "too short");
    // The browser's own check (minlength) would stop this post; the server's is the one shown.
    b.client
        .execute("document.getElementById('password').removeAttribute('minlength'); return true;");
    b.click_and_wait(Locator::Css("main button[type=submit]"));
    check("register-weak-password", &b);
    b.fill("password", PASSWORD);
    b.click_and_wait(Locator::Css("main button[type=submit]"));
    check("account", &b);
    b.goto("/account/sessions");
    check("sessions", &b);
    b.goto("/no-such-page");
    check("not-found", &b);
    b.goto("/account");
    b.click_and_wait(Locator::Css("form.signout button"));
    check("login-signed-out", &b);
    b.fill("username", "alice");
    b.fill("password", "not the password at all");
    b.click_and_wait(Locator::Css("main button[type=submit]"));
    check("login-failed", &b);
    b.goto("/login");
    check("login", &b);
    drop(b);
    assert!(problems.is_empty(), "{problems:#?}");
}

/// `tessera users create NAME [--admin] --data-dir DIR`, the password on stdin.
pub(crate) fn create_user(data_dir: &std::path::Path, name: &str, admin: bool) {
    use std::io::Write;
    let mut cmd = crate::common::tessera();
    cmd.args(["users", "create", name, "--data-dir"])
        .arg(data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    if admin {
        cmd.arg("--admin");
    }
    let mut child = cmd.spawn().unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(child.wait().unwrap().success(), "users create {name}");
}

#[test]
fn an_admin_disables_a_user_whose_open_page_then_goes_to_sign_in() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let axe = axe_source();
    let data = tempfile::tempdir().unwrap();
    create_user(data.path(), "root", true);
    create_user(data.path(), "bob", false);
    let server = Server::start(|cmd, addr| {
        cmd.args(["--listen", &addr.to_string(), "--data-dir"])
            .arg(data.path());
    });
    let bob = Browser::open(&driver, server.addr, Some(SECOND_DEVICE));
    bob.sign_in("/login", "bob", PASSWORD);
    assert_eq!(bob.path(), "/account");

    let root = Browser::open(&driver, server.addr, None);
    root.sign_in("/login?return_to=%2Fadmin", "root", PASSWORD);
    assert_eq!(root.path(), "/admin");
    root.fill("q", "bob");
    root.click_and_wait(Locator::Css("form[role=search] button"));
    let mut problems = Vec::new();
    for p in dom_problems(&root) {
        problems.push(format!("admin: {p}"));
    }
    if let Some(axe) = &axe {
        problems.extend(axe_violations(&root, axe));
    }
    root.screenshot("admin");
    root.click_and_wait(Locator::XPath("//tr[th[.='bob']]//a"));
    assert!(root.text().contains("Firefox on Windows"));
    problems.extend(dom_problems(&root));
    if let Some(axe) = &axe {
        problems.extend(axe_violations(&root, axe));
    }
    root.screenshot("admin-user-sessions");
    assert!(problems.is_empty(), "{problems:#?}");
    root.goto("/admin?q=bob");
    root.click_and_wait(Locator::XPath("//tr[th[.='bob']]//button"));
    assert!(
        root.text().contains("The user is disabled"),
        "{}",
        root.text()
    );

    // Bob's open page: the next click lands on the sign-in page.
    bob.click_and_wait(Locator::LinkText("Sessions"));
    assert_eq!(bob.path(), "/login?return_to=%2Faccount%2Fsessions");
    bob.sign_in("/login", "bob", PASSWORD);
    assert_eq!(bob.path(), "/login");
    assert!(bob.text().contains("Unknown user or wrong password."));

    // What the pages did is in the audit log, as `tessera audit` shows it.
    drop(server);
    let out = crate::common::tessera()
        .args(["audit", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    eprintln!("tessera audit after the browser test:\n{log}");
    for expected in ["user_disabled", "bob", "root"] {
        assert!(log.contains(expected), "{expected} missing from:\n{log}");
    }
    assert!(!log.contains(PASSWORD), "no password in the log");
}
