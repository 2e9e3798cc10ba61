//! The admin pages: for administrators only; find a user, disable them (their open page is
//! sent to sign in, their logins refused), end one of their sessions, the keys and the events.

use axum::http::{StatusCode, header};
use tessera_server::service::{self, ClientContext};

use crate::common::*;
use crate::page_client::PageClient;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

async fn admin(s: &TestServer) -> PageClient {
    service::register(
        &s.state,
        "root",
        PASSWORD.to_owned(),
        true,
        &ClientContext::default(),
    )
    .await
    .unwrap();
    let mut b = PageClient::new(UA, "192.0.2.10:4000");
    b.sign_in(s, "root", PASSWORD).await;
    b
}

/// The id in the first `/admin/users/{id}` link of a page.
fn user_link(html: &str) -> String {
    let at = html.find("/admin/users/").unwrap() + "/admin/users/".len();
    let rest = &html[at..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn only_administrators_reach_the_admin_pages() {
    let s = TestServer::new().await;
    let mut root = admin(&s).await;
    s.register("bob", PASSWORD).await;
    let mut stranger = PageClient::new(UA, "192.0.2.1:4000");
    let r = stranger.get(&s, "/admin").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header(header::LOCATION).as_deref(),
        Some("/login?return_to=%2Fadmin")
    );
    let mut bob = PageClient::new(UA, "192.0.2.2:4000");
    bob.sign_in(&s, "bob", PASSWORD).await;
    let r = bob.get(&s, "/admin").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("Not allowed"));
    assert!(!bob.get(&s, "/account").await.text().contains("/admin"));

    let page = root.get(&s, "/admin?q=bo").await;
    assert_eq!(page.status, StatusCode::OK);
    crate::pages::assert_page_headers(&page, "/admin");
    let html = page.text();
    assert!(html.contains("<th scope=\"row\">bob</th>"), "{html}");
    assert!(
        html.contains("current") && html.contains("EdDSA"),
        "the keys: {html}"
    );
    assert!(
        html.contains("Rotated every 30 days."),
        "the schedule: {html}"
    );
    assert!(
        html.contains("Next change"),
        "each key's next change: {html}"
    );
    assert!(
        html.contains("login_succeeded") || html.contains("login"),
        "{html}"
    );
    let bob_id = user_link(&html);
    // With a valid CSRF token of his own, bob still cannot disable anyone.
    let r = bob
        .post(&s, &format!("/admin/users/{bob_id}/disable"), &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(bob.get(&s, "/account").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_admin_disables_a_user_whose_page_is_then_sent_to_sign_in() {
    let s = TestServer::new().await;
    let mut root = admin(&s).await;
    s.register("bob", PASSWORD).await;
    let mut bob = PageClient::new(UA, "192.0.2.2:4000");
    bob.sign_in(&s, "bob", PASSWORD).await;
    let app = s.password_grant("bob", PASSWORD).await;
    let bob_id = user_link(&root.get(&s, "/admin?q=bob").await.text());
    let sessions = root.get(&s, &format!("/admin/users/{bob_id}")).await;
    assert_eq!(sessions.status, StatusCode::OK);
    assert!(sessions.text().contains("Firefox on Linux"));
    assert!(sessions.text().contains("App authorization"));

    let r = root
        .post(&s, &format!("/admin/users/{bob_id}/disable"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let next = bob.get(&s, "/account/sessions").await;
    assert_eq!(next.status, StatusCode::SEE_OTHER);
    assert_eq!(
        next.header(header::LOCATION).as_deref(),
        Some("/login?return_to=%2Faccount%2Fsessions")
    );
    assert_eq!(
        s.refresh_raw(&app.refresh).await.status,
        StatusCode::BAD_REQUEST
    );
    let mut again = PageClient::new(UA, "192.0.2.2:4000");
    again.get(&s, "/login").await;
    let r = again
        .post(&s, "/login", &[("username", "bob"), ("password", PASSWORD)])
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a disabled user cannot sign in"
    );
    let page = root.get(&s, "/admin?q=bob&notice=disabled").await.text();
    assert!(
        page.contains("Disabled") && page.contains("user_disabled"),
        "{page}"
    );
    // An admin cannot disable themselves through the page either.
    let root_id = user_link(&root.get(&s, "/admin?q=root").await.text());
    let r = root
        .post(&s, &format!("/admin/users/{root_id}/disable"), &[])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(root.get(&s, "/admin").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_admin_ends_one_session_of_a_user_and_leaves_the_others() {
    let s = TestServer::new().await;
    let mut root = admin(&s).await;
    s.register("carol", PASSWORD).await;
    let mut laptop = PageClient::new(UA, "192.0.2.3:4000");
    let mut phone = PageClient::new(
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
        "192.0.2.4:4000",
    );
    laptop.sign_in(&s, "carol", PASSWORD).await;
    phone.sign_in(&s, "carol", PASSWORD).await;
    let carol_id = user_link(&root.get(&s, "/admin?q=carol").await.text());
    let page = root
        .get(&s, &format!("/admin/users/{carol_id}"))
        .await
        .text();
    let row = &page[page.find("Chrome on Android").unwrap()..];
    let at = row.find("/admin/sessions/").unwrap() + "/admin/sessions/".len();
    let sid = row[at..at + row[at..].find('/').unwrap()].to_owned();
    let r = root
        .post(
            &s,
            &format!("/admin/sessions/{sid}/end"),
            &[("user", carol_id.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header(header::LOCATION),
        Some(format!("/admin/users/{carol_id}"))
    );
    assert_eq!(
        phone.get(&s, "/account").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(laptop.get(&s, "/account").await.status, StatusCode::OK);
    // A session id that does not exist is the 404 page; a `user` that is no path goes home.
    let r = root
        .post(
            &s,
            "/admin/sessions/no-such-session/end",
            &[("user", "//evil.example")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = root
        .post(
            &s,
            &format!("/admin/sessions/{sid}/end"),
            &[("user", "/../../evil")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "already ended");
}
