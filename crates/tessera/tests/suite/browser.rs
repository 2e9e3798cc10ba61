//! Tessera's pages in a real browser (headless Chromium through chromedriver) against the real
//! binary: sign-in and registration forms, a second browser as a second device, signing it
//! out, forms posted from another origin, the cookie out of reach of scripts, and an
//! accessibility check of every page. With `TESSERA_SCREENSHOTS=DIR` the walk-through also
//! saves a screenshot of each page (how `docs/screenshots/` is made).

use fantoccini::Locator;

use crate::browser_support::{
    Browser, Driver, axe_source, axe_violations, dom_problems, serve_foreign_page,
};
use crate::common::{PASSWORD, Server};

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

#[tokio::test]
async fn a_second_device_is_listed_then_signed_out_from_the_first() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let server = serve();
    let laptop = Browser::open(&driver, server.addr, None).await;
    laptop.goto("/register").await;
    laptop.fill("username", "alice").await;
    laptop.fill("password", PASSWORD).await;
    laptop
        .click_and_wait(Locator::Css("main button[type=submit]"))
        .await;
    assert_eq!(laptop.path().await, "/account");
    assert!(laptop.text().await.contains("alice"));

    // The second device is sent to sign in, then back to the page it asked for.
    let phone = Browser::open(&driver, server.addr, Some(SECOND_DEVICE)).await;
    phone.goto("/account/sessions").await;
    assert_eq!(phone.path().await, "/login?return_to=%2Faccount%2Fsessions");
    phone
        .sign_in("/login?return_to=%2Faccount%2Fsessions", "alice", PASSWORD)
        .await;
    assert_eq!(phone.path().await, "/account/sessions");
    assert!(
        phone
            .text()
            .await
            .contains("Firefox on Windows (this device)")
    );

    laptop.goto("/account/sessions").await;
    let listed = laptop.text().await;
    assert!(
        listed.contains("Chrome (headless) on Linux (this device)"),
        "{listed}"
    );
    assert!(listed.contains("Firefox on Windows"), "{listed}");
    assert!(!listed.contains("Firefox on Windows (this device)"));
    assert_eq!(listed.matches("this device").count(), 1);
    laptop.screenshot("sessions-two-devices").await;

    // Scripts cannot read the session cookie (HttpOnly).
    let cookies = laptop
        .client
        .execute("return document.cookie;", vec![])
        .await
        .unwrap();
    assert!(
        !cookies.as_str().unwrap_or_default().contains("tessera"),
        "{cookies}"
    );

    laptop
        .click_and_wait(Locator::XPath(&sign_out_button_of("Firefox on Windows")))
        .await;
    assert!(laptop.text().await.contains("That session is signed out."));
    assert!(!laptop.text().await.contains("Firefox on Windows"));
    // The phone's next click sends it to sign in.
    phone.click_and_wait(Locator::LinkText("Account")).await;
    assert_eq!(phone.path().await, "/login");

    // Signing out from the header ends the laptop's session too.
    laptop
        .click_and_wait(Locator::Css("form.signout button"))
        .await;
    assert_eq!(laptop.path().await, "/login?notice=signed-out");
    laptop.goto("/account").await;
    assert_eq!(laptop.path().await, "/login");
    laptop.close().await;
    phone.close().await;
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

#[tokio::test]
async fn forms_posted_from_another_origin_are_refused() {
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
    let victim = Browser::open(&driver, server.addr, None).await;
    victim.sign_in("/login", "alice", PASSWORD).await;
    // A second session of alice's, which "sign out other sessions" would end.
    let other = Browser::open(&driver, server.addr, Some(SECOND_DEVICE)).await;
    other.sign_in("/login", "alice", PASSWORD).await;

    let foreign = serve_foreign_page(foreign_forms(&tessera));
    // `localhost` is another site; `127.0.0.1` on another port is the same site but another
    // origin, so the session cookie is sent and only the origin checks stand in the way.
    for origin in [
        format!("http://localhost:{}", foreign.port()),
        format!("http://127.0.0.1:{}", foreign.port()),
    ] {
        for button in ["login", "others", "password"] {
            victim.goto(&format!("{origin}/")).await;
            victim.click_and_wait(Locator::Id(button)).await;
            let shown = victim.text().await;
            assert!(
                shown.contains("This form could not be accepted"),
                "{origin} {button}: {shown}"
            );
        }
    }
    // Nothing changed: alice is still signed in on both devices, with the same password.
    victim.goto("/account/sessions").await;
    let listed = victim.text().await;
    assert!(listed.contains("Firefox on Windows"), "{listed}");
    assert!(listed.contains("alice") && !listed.contains("mallory"));
    other.goto("/account").await;
    assert_eq!(other.path().await, "/account");
    let r = server.post_json(
        "/v1/sessions",
        &serde_json::json!({ "username": "alice", "password": PASSWORD }),
    );
    assert_eq!(r.status, 201, "the password is unchanged");
    victim.close().await;
    other.close().await;
}

/// Every page: the DOM checks, axe-core's WCAG 2 A/AA rules with no serious or critical
/// violation, and (with `TESSERA_SCREENSHOTS`) a screenshot.
#[tokio::test]
async fn every_page_passes_the_accessibility_checks() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let axe = axe_source();
    let server = serve();
    let b = Browser::open(&driver, server.addr, None).await;
    let mut problems = Vec::new();
    let mut check = async |name: &str, b: &Browser| {
        for p in dom_problems(b).await {
            problems.push(format!("{name}: {p}"));
        }
        if let Some(axe) = &axe {
            for v in axe_violations(b, axe).await {
                problems.push(format!("{name}: {v}"));
            }
        }
        b.screenshot(name).await;
    };
    b.goto("/register").await;
    check("register", &b).await;
    b.fill("username", "alice").await;
    b.fill("password", "too short").await;
    // The browser's own check (minlength) would stop this post; the server's is the one shown.
    b.client
        .execute(
            "document.getElementById('password').removeAttribute('minlength'); return true;",
            vec![],
        )
        .await
        .unwrap();
    b.click_and_wait(Locator::Css("main button[type=submit]"))
        .await;
    check("register-weak-password", &b).await;
    b.fill("password", PASSWORD).await;
    b.click_and_wait(Locator::Css("main button[type=submit]"))
        .await;
    check("account", &b).await;
    b.goto("/account/sessions").await;
    check("sessions", &b).await;
    b.goto("/no-such-page").await;
    check("not-found", &b).await;
    b.goto("/account").await;
    b.click_and_wait(Locator::Css("form.signout button")).await;
    check("login-signed-out", &b).await;
    b.fill("username", "alice").await;
    b.fill("password", "not the password at all").await;
    b.click_and_wait(Locator::Css("main button[type=submit]"))
        .await;
    check("login-failed", &b).await;
    b.goto("/login").await;
    check("login", &b).await;
    b.close().await;
    assert!(problems.is_empty(), "{problems:#?}");
}
