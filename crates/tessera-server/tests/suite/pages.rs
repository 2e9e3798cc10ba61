//! The pages as a browser uses them: sign-in with `return_to`, registration, the account and
//! its password change, the session list and its sign-out buttons, sign-out, the headers on
//! every page, and errors that are pages.

use axum::http::{StatusCode, header};

use crate::common::*;
use crate::faulty_store::FaultyStore;
use crate::page_client::PageClient;

const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// Asserts the headers every page carries.
pub fn assert_page_headers(r: &Resp, what: &str) {
    let csp = r
        .header(header::CONTENT_SECURITY_POLICY)
        .unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert!(csp.contains("default-src 'none'"), "{what}: CSP {csp:?}");
    assert!(!csp.contains("unsafe-inline"), "{what}: CSP {csp:?}");
    assert!(!csp.contains("unsafe-eval"), "{what}: CSP {csp:?}");
    assert_eq!(
        r.header(header::REFERRER_POLICY).as_deref(),
        Some("same-origin"),
        "{what}"
    );
    assert_eq!(
        r.header(header::CACHE_CONTROL).as_deref(),
        Some("no-store"),
        "{what}"
    );
    assert_eq!(
        r.header(header::X_FRAME_OPTIONS).as_deref(),
        Some("DENY"),
        "{what}"
    );
    assert_eq!(
        r.header(header::X_CONTENT_TYPE_OPTIONS).as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        r.header(header::CONTENT_TYPE).as_deref(),
        Some("text/html; charset=utf-8"),
        "{what}"
    );
    let html = r.text();
    assert_eq!(html.matches("<h1").count(), 1, "{what}: one h1");
    assert!(
        html.contains("<main") && html.contains("<header"),
        "{what}: landmarks"
    );
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "{what}: no inline code"
    );
}

#[tokio::test]
async fn every_page_carries_strict_headers_and_one_stylesheet_from_this_origin() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let mut b = PageClient::new(FIREFOX_LINUX, "192.0.2.1:4000");
    for path in ["/login", "/register", "/no-such-page"] {
        let r = b.get(&s, path).await;
        assert_page_headers(&r, path);
    }
    b.sign_in(&s, "alice", PASSWORD).await;
    for path in ["/account", "/account/sessions", "/account/no-such-page"] {
        let r = b.get(&s, path).await;
        assert_page_headers(&r, path);
    }
    let css = b.get(&s, "/static/tessera.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(
        css.header(header::CONTENT_TYPE).as_deref(),
        Some("text/css; charset=utf-8")
    );
    assert!(css.text().contains(":focus-visible"));
}

#[tokio::test]
async fn signing_in_through_the_form_starts_a_cookie_session_and_returns_to_the_page() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let mut b = PageClient::new(FIREFOX_LINUX, "192.0.2.1:4000");
    let first = b.get(&s, "/account/sessions").await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let to_login = first.header(header::LOCATION).unwrap();
    assert_eq!(to_login, "/login?return_to=%2Faccount%2Fsessions");
    let page = b.get(&s, &to_login).await;
    assert!(
        page.text()
            .contains(r#"name="return_to" value="/account/sessions""#)
    );
    let form_cookie = page.header(header::SET_COOKIE).unwrap();
    assert!(
        form_cookie.starts_with("__Host-tessera_csrf="),
        "{form_cookie}"
    );
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(form_cookie.contains(attr), "{form_cookie}");
    }
    let r = b
        .post(
            &s,
            "/login",
            &[
                ("username", "Alice"),
                ("password", PASSWORD),
                ("return_to", "/account/sessions"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(
        r.header(header::LOCATION).as_deref(),
        Some("/account/sessions")
    );
    let cookies: Vec<String> = r
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies.iter().find(|c| c.starts_with(COOKIE)).unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(!session.contains("Domain"), "{session}");
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-tessera_device=")),
        "the device cookie, as an API login sets it: {cookies:?}"
    );
    let page = b.get(&s, "/account/sessions").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("this device"));
    let account = b.get(&s, "/account").await;
    assert!(account.text().contains("alice"));
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_page() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let mut b = PageClient::new(FIREFOX_LINUX, "192.0.2.1:4000");
    b.get(&s, "/login").await;
    let wrong = b
        .post(
            &s,
            "/login",
            &[("username", "alice"), ("password", "wrong password here")],
        )
        .await;
    let unknown = b
        .post(
            &s,
            "/login",
            &[("username", "zelda"), ("password", "wrong password here")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(
        wrong.text().replace("alice", "NAME"),
        unknown.text().replace("zelda", "NAME")
    );
    assert!(wrong.text().contains("Unknown user or wrong password."));
    assert!(b.session().is_none());
}

#[tokio::test]
async fn registration_through_the_form_applies_the_password_policy_then_signs_in() {
    let s = TestServer::new().await;
    let mut b = PageClient::new(FIREFOX_LINUX, "192.0.2.1:4000");
    b.get(&s, "/register").await;
    let weak = b
        .post(
            &s,
            "/register",
            &[("username", "bob"), ("password", "password123")],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.text().contains("role=\"alert\""), "{}", weak.text());
    assert_eq!(
        s.login_raw("bob", "password123").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(b.session().is_none());
    let ok = b
        .post(
            &s,
            "/register",
            &[("username", "bob"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    assert_eq!(ok.header(header::LOCATION).as_deref(), Some("/account"));
    assert!(b.get(&s, "/account").await.text().contains("bob"));
    let taken = PageClient::new(FIREFOX_LINUX, "192.0.2.2:4000");
    let mut taken = taken;
    taken.get(&s, "/register").await;
    let r = taken
        .post(
            &s,
            "/register",
            &[("username", "bob"), ("password", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

/// The id in the sign-out form of the first row naming `device`.
fn session_id_of(html: &str, device: &str) -> String {
    let row = &html[html.find(device).unwrap()..];
    let action = &row[row.find("/account/sessions/").unwrap() + "/account/sessions/".len()..];
    action[..action.find('/').unwrap()].to_owned()
}

#[tokio::test]
async fn the_sessions_page_lists_every_session_and_signs_them_out() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let mut laptop = PageClient::new(FIREFOX_LINUX, "192.0.2.1:4000");
    let mut desktop = PageClient::new(CHROME_WINDOWS, "198.51.100.7:4000");
    laptop.sign_in(&s, "alice", PASSWORD).await;
    desktop.sign_in(&s, "alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    let page = laptop.get(&s, "/account/sessions").await.text();
    assert!(
        page.contains(r#"Firefox on Linux <strong class="current">(this device)</strong>"#),
        "{page}"
    );
    assert!(page.contains("Chrome on Windows"));
    assert!(!page.contains(r#"Chrome on Windows <strong"#));
    assert!(page.contains("App authorization"));
    assert!(page.contains("192.0.2.1") && page.contains("198.51.100.7"));
    assert!(
        !page.contains("Mozilla/5.0"),
        "the raw agent is never shown"
    );
    assert!(page.contains("Sign out other sessions"));
    assert_eq!(page.matches("this device").count(), 1);
    let other = desktop.get(&s, "/account/sessions").await.text();
    assert!(other.contains(r#"Chrome on Windows <strong class="current">(this device)</strong>"#));

    let desktop_id = session_id_of(&page, "Chrome on Windows");
    let r = laptop
        .post(&s, &format!("/account/sessions/{desktop_id}/sign-out"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let next = desktop.get(&s, "/account").await;
    assert_eq!(next.status, StatusCode::SEE_OTHER);
    assert_eq!(next.header(header::LOCATION).as_deref(), Some("/login"));
    assert_eq!(s.refresh_raw(&app.refresh).await.status, StatusCode::OK);

    let r = laptop.post(&s, "/account/sessions/others", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = laptop.get(&s, "/account/sessions").await;
    assert_eq!(page.status, StatusCode::OK, "this device stays signed in");
    assert!(!page.text().contains("App authorization"));
    assert_eq!(
        s.refresh_raw(&app.refresh).await.status,
        StatusCode::BAD_REQUEST,
        "the app authorization died with its session"
    );
    // Another user's session id, and one that does not exist, are the same 404 page.
    let mut mallory = PageClient::new(FIREFOX_LINUX, "203.0.113.9:4000");
    s.register("mallory", PASSWORD).await;
    mallory.sign_in(&s, "mallory", PASSWORD).await;
    let alice_id = session_id_of(&page.text(), "Firefox on Linux");
    for id in [alice_id.as_str(), "no-such-session"] {
        let r = mallory
            .post(&s, &format!("/account/sessions/{id}/sign-out"), &[])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}: {}", r.text());
        assert!(r.text().contains("Page not found"));
    }
    assert_eq!(laptop.get(&s, "/account").await.status, StatusCode::OK);
}

#[tokio::test]
async fn signing_out_ends_the_session_and_clears_what_the_site_stored() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let mut b = PageClient::new(FIREFOX_LINUX, "192.0.2.1:4000");
    b.sign_in(&s, "alice", PASSWORD).await;
    let token = b.session().unwrap().clone();
    b.get(&s, "/account").await;
    let r = b.post(&s, "/logout", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header(header::LOCATION).as_deref(),
        Some("/login?notice=signed-out")
    );
    assert_eq!(
        r.header("clear-site-data").as_deref(),
        Some("\"cookies\", \"storage\"")
    );
    assert!(b.session().is_none(), "the cookie is cleared");
    assert_eq!(s.session_status(&token).await, StatusCode::UNAUTHORIZED);
    let login = b.get(&s, "/login?notice=signed-out").await;
    assert!(login.text().contains("You are signed out."));
}

#[tokio::test]
async fn changing_the_password_through_the_form_needs_the_current_one_and_signs_out_everywhere() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let mut b = PageClient::new(FIREFOX_LINUX, "192.0.2.1:4000");
    let mut other = PageClient::new(CHROME_WINDOWS, "198.51.100.7:4000");
    b.sign_in(&s, "alice", PASSWORD).await;
    other.sign_in(&s, "alice", PASSWORD).await;
    b.get(&s, "/account").await;
    let wrong = b
        .post(
            &s,
            "/account/password",
            &[
                ("current_password", "not my password at all"),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.text().contains("Current password is wrong."),
        "{}",
        wrong.text()
    );
    let weak = b
        .post(
            &s,
            "/account/password",
            &[("current_password", PASSWORD), ("new_password", "short")],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert_eq!(other.get(&s, "/account").await.status, StatusCode::OK);
    s.login("alice", PASSWORD).await;

    let ok = b
        .post(
            &s,
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    assert_eq!(
        ok.header(header::LOCATION).as_deref(),
        Some("/login?notice=password-changed")
    );
    assert!(b.session().is_none());
    assert_eq!(
        other.get(&s, "/account").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        s.login_raw("alice", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    b.sign_in(&s, "alice", NEW_PASSWORD).await;
}

#[tokio::test]
async fn errors_are_pages_for_a_browser_and_json_for_the_api() {
    let store = FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    s.register("alice", PASSWORD).await;
    let mut b = PageClient::new(FIREFOX_LINUX, "192.0.2.1:4000");
    let missing = b.get(&s, "/nowhere").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text().contains("Page not found"));
    let api = s.send(Req::get("/nowhere")).await;
    assert_eq!(api.error_code(), "not_found");
    let wrong_method = b.get(&s, "/logout").await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_page_headers(&wrong_method, "405");

    b.sign_in(&s, "alice", PASSWORD).await;
    store.fail("session_by_token");
    let down = b.get(&s, "/account").await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_page_headers(&down, "store down");
    let text = down.text();
    assert!(text.contains("Temporarily unavailable"), "{text}");
    assert!(
        !text.contains("injected fault") && !text.contains("Store"),
        "{text}"
    );
    store.heal();
    assert_eq!(b.get(&s, "/account").await.status, StatusCode::OK);
}
