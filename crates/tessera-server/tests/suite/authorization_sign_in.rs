//! The sign-in page in front of an authorization request: a first-party app (or one already
//! consented to) is sent its code straight from the sign-in form's post, and `form-action`
//! governs that post's redirects too — so the page's CSP names the app's origin, and only
//! when `return_to` is an authorization request for a known client and a registered redirect
//! URI. An attacker's `return_to` never widens it.

use axum::http::{StatusCode, header};
use tessera_server::pages::CSP;

use crate::authorization_code::{App, CALLBACK, app, param, request};
use crate::common::*;
use crate::page_client::PageClient;

/// The `Content-Security-Policy` of the sign-in page in front of `return_to`.
async fn login_csp(s: &TestServer, return_to: &str) -> String {
    let mut browser = PageClient::new("Mozilla/5.0 Chrome/129.0", "192.0.2.7:4000");
    let query = serde_urlencoded::to_string([("return_to", return_to)]).unwrap();
    let r = browser.get(s, &format!("/login?{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{return_to}: {}", r.text());
    r.header(header::CONTENT_SECURITY_POLICY).unwrap()
}

fn widened(origin: &str) -> String {
    CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    )
}

/// The authorization request with `name` set to `value` instead.
fn request_with(app: &App, name: &'static str, value: &str) -> String {
    request(app, |p| {
        p.retain(|(k, _)| *k != name);
        p.push((name, value.into()));
    })
}

#[tokio::test]
async fn the_sign_in_page_lets_its_post_reach_a_registered_redirect_origin_only() {
    let s = TestServer::new().await;
    let spa = app(&s, true, true).await;
    s.register("dot", PASSWORD).await;
    let query = request(&spa, |_| {});

    // The request's own redirect URI, or the other one registered for the client.
    assert_eq!(
        login_csp(&s, &query).await,
        widened("https://photos.example")
    );
    let other = request_with(&spa, "redirect_uri", "http://127.0.0.1:7777/cb");
    assert_eq!(
        login_csp(&s, &other).await,
        widened("http://127.0.0.1:7777")
    );
    // A request that goes back to the app with an error (no PKCE) goes to the same origin.
    let no_pkce = request(&spa, |p| {
        p.retain(|(k, _)| !k.starts_with("code_challenge"))
    });
    assert_eq!(
        login_csp(&s, &no_pkce).await,
        widened("https://photos.example")
    );

    // Whatever else an attacker puts in `return_to` leaves the strict policy.
    let unregistered = request_with(&spa, "redirect_uri", "https://evil.example/callback");
    let unknown_client = request_with(
        &spa,
        "client_id",
        "tcl_doesnotexist0000000000000000000000000000000",
    );
    let twice = format!("{query}&redirect_uri=https%3A%2F%2Fevil.example%2Fcallback");
    let elsewhere = query.replacen("/oauth/authorize", "/account", 1);
    let injected = format!("{query}&x=%3B%20form-action%20*");
    let absolute = format!("https://evil.example{query}");
    for return_to in [
        unregistered.as_str(),
        &unknown_client,
        &twice,
        &elsewhere,
        &absolute,
        "/oauth/authorize",
        "/oauth/authorize?redirect_uri=https%3A%2F%2Fevil.example%2Fcallback",
    ] {
        assert_eq!(login_csp(&s, return_to).await, CSP, "{return_to}");
    }
    // Unknown parameters are ignored; nothing of the query reaches the header but the origin.
    assert_eq!(
        login_csp(&s, &injected).await,
        widened("https://photos.example")
    );

    // A failed sign-in shows the form again, with the same policy; the right password then
    // goes through the request straight to the app (first-party: no consent).
    let mut browser = PageClient::new("Mozilla/5.0 Chrome/129.0", "192.0.2.7:4000");
    let login = format!(
        "/login?{}",
        serde_urlencoded::to_string([("return_to", &query)]).unwrap()
    );
    browser.get(&s, &login).await;
    let attempt = |password: &'static str| {
        [
            ("username", "dot"),
            ("password", password),
            ("return_to", query.as_str()),
        ]
    };
    let r = browser
        .post(&s, "/login", &attempt("not the password at all"))
        .await;
    assert!(r.status.is_client_error(), "{}", r.text());
    assert_eq!(
        r.header(header::CONTENT_SECURITY_POLICY).unwrap(),
        widened("https://photos.example")
    );
    let r = browser.post(&s, "/login", &attempt(PASSWORD)).await;
    assert_eq!(r.header(header::LOCATION).as_deref(), Some(query.as_str()));
    let r = browser.get(&s, &query).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let to = r.header(header::LOCATION).unwrap();
    assert!(to.starts_with(CALLBACK), "{to}");
    assert!(param(&to, "code").is_some(), "{to}");
}
