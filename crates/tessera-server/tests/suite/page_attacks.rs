//! The pages attacked the way a hostile site or a guesser would: forged form posts (foreign
//! or `null` `Origin`, `Sec-Fetch-Site: cross-site`, a missing, wrong or repeated
//! `csrf_token`), open redirects through `return_to`, and a concurrent burst of sign-ins.

use std::sync::Arc;

use axum::http::{StatusCode, header};
use tessera_server::pages;
use tessera_server::routes::Verb;
use tokio::sync::Barrier;

use crate::common::*;
use crate::page_client::PageClient;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// How a forged post differs from the page's own.
#[derive(Clone, Copy, Debug)]
enum Forgery {
    ForeignOrigin,
    NullOrigin,
    CrossSite,
    NoToken,
    WrongToken,
    TwoTokens,
}

const FORGERIES: [Forgery; 6] = [
    Forgery::ForeignOrigin,
    Forgery::NullOrigin,
    Forgery::CrossSite,
    Forgery::NoToken,
    Forgery::WrongToken,
    Forgery::TwoTokens,
];

/// Posts `fields` to `path` from `b`, forged as `how`.
async fn forged(
    s: &TestServer,
    b: &mut PageClient,
    path: &str,
    fields: &[(&str, &str)],
    how: Forgery,
) -> Resp {
    let good = b.csrf.clone().unwrap();
    let mut wrong = good.clone();
    wrong.pop();
    wrong.push(if good.ends_with('A') { 'B' } else { 'A' });
    let mut all: Vec<(&str, &str)> = match how {
        Forgery::NoToken => vec![],
        Forgery::WrongToken => vec![("csrf_token", wrong.as_str())],
        Forgery::TwoTokens => vec![
            ("csrf_token", good.as_str()),
            ("csrf_token", wrong.as_str()),
        ],
        _ => vec![("csrf_token", good.as_str())],
    };
    all.extend_from_slice(fields);
    b.post_raw(s, path, &all, |r| match how {
        Forgery::ForeignOrigin => r
            .header(header::ORIGIN, "https://evil.example")
            .header("sec-fetch-site", "cross-site"),
        Forgery::NullOrigin => r.header(header::ORIGIN, "null"),
        Forgery::CrossSite => r.header("sec-fetch-site", "cross-site"),
        _ => r.header(header::ORIGIN, ISSUER),
    })
    .await
}

fn assert_refused(r: &Resp, what: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text());
    assert!(
        r.text().contains("This form could not be accepted"),
        "{what}: a page, not JSON"
    );
    assert!(
        r.header(header::SET_COOKIE).is_none(),
        "{what}: no cookie set"
    );
}

/// Every page that writes, forged six ways: refused with a 403 page, and nothing changed —
/// the session lives, the password is the same, no one was registered or signed in.
#[tokio::test]
async fn forged_form_posts_are_refused_and_change_nothing() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let mut victim = PageClient::new(UA, "192.0.2.1:4000");
    victim.sign_in(&s, "alice", PASSWORD).await;
    let mut other = PageClient::new(UA, "192.0.2.2:4000");
    other.sign_in(&s, "alice", PASSWORD).await;
    victim.get(&s, "/account/sessions").await;
    let other_sid = {
        let page = other.get(&s, "/account/sessions").await.text();
        let at = page.find("(this device)").unwrap();
        let row = &page[at..];
        let a = &row[row.find("/account/sessions/").unwrap() + 18..];
        a[..a.find('/').unwrap()].to_owned()
    };
    victim.get(&s, "/account").await;
    let posts = pages::route_table()
        .into_iter()
        .filter(|(verb, _)| *verb == Verb::Post)
        .map(|(_, path)| path)
        .collect::<Vec<_>>();
    assert!(posts.len() >= 6, "{posts:?}");
    for path in posts {
        let path = path.replace("{id}", &other_sid);
        let fields: Vec<(&str, &str)> = match path.as_str() {
            "/login" => vec![("username", "alice"), ("password", PASSWORD)],
            "/register" => vec![("username", "mallory"), ("password", NEW_PASSWORD)],
            "/account/password" => vec![
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
            _ => vec![],
        };
        for how in FORGERIES {
            // A signed-out browser for the sign-in forms, holding its own form cookie.
            let mut b = if path == "/login" || path == "/register" {
                let mut fresh = PageClient::new(UA, "192.0.2.3:4000");
                fresh.get(&s, &path).await;
                fresh
            } else {
                victim.clone()
            };
            let r = forged(&s, &mut b, &path, &fields, how).await;
            assert_refused(&r, &format!("{how:?} {path}"));
            assert!(b.session().is_none() || b.session() == victim.session());
        }
    }
    assert_eq!(victim.get(&s, "/account").await.status, StatusCode::OK);
    assert_eq!(other.get(&s, "/account").await.status, StatusCode::OK);
    assert_eq!(
        s.login_raw("alice", PASSWORD).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        s.login_raw("mallory", NEW_PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// The sign-in form's token must be the one its own page set in the `__Host-` cookie: a
/// token without the cookie, another browser's token, or a cookie that repeats is refused.
#[tokio::test]
async fn a_sign_in_post_needs_the_form_cookie_of_its_own_page() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let mut attacker = PageClient::new(UA, "203.0.113.9:4000");
    attacker.get(&s, "/login").await;
    let attackers_token = attacker.csrf.clone().unwrap();
    let fields = [
        ("csrf_token", attackers_token.as_str()),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    let same_origin = |r: Req| r.header(header::ORIGIN, ISSUER);
    // No cookie at all (a victim who never opened the page).
    let mut victim = PageClient::new(UA, "192.0.2.1:4000");
    let r = victim.post_raw(&s, "/login", &fields, same_origin).await;
    assert_refused(&r, "no form cookie");
    // The victim's own cookie, the attacker's token.
    victim.get(&s, "/login").await;
    let r = victim.post_raw(&s, "/login", &fields, same_origin).await;
    assert_refused(&r, "another browser's token");
    // The cookie twice (tossed in beside the real one).
    let mut tossed = victim.clone();
    let real = tossed.jar.remove("__Host-tessera_csrf").unwrap();
    tossed.jar.insert(
        "__Host-tessera_csrf".to_owned(),
        format!("{real}; __Host-tessera_csrf={attackers_token}"),
    );
    let r = tossed.post_raw(&s, "/login", &fields, same_origin).await;
    assert_refused(&r, "a repeated form cookie");
    assert!(victim.session().is_none());
}

/// Open redirects through `return_to`: every value that could leave the origin sends the
/// browser to `/account` instead, and is not even put into the sign-in form.
#[tokio::test]
async fn return_to_never_sends_the_browser_off_the_origin() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    for evil in [
        "//evil.example",
        "//evil.example/account",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "https:evil.example",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/.//evil.example",
        "/a/..//evil.example",
        "/\tevil.example",
        " //evil.example",
        "/account\r\nLocation: https://evil.example",
    ] {
        let mut b = PageClient::new(UA, "192.0.2.1:4000");
        let query = serde_urlencoded::to_string([("return_to", evil)]).unwrap();
        let page = b.get(&s, &format!("/login?{query}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            !page.text().contains("name=\"return_to\""),
            "{evil:?} echoed"
        );
        let r = b
            .post(
                &s,
                "/login",
                &[
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("return_to", evil),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{evil:?}");
        assert_eq!(
            r.header(header::LOCATION).as_deref(),
            Some("/account"),
            "{evil:?}"
        );
    }
}

/// A burst of form sign-ins at one account, released together by a barrier: no more
/// passwords are checked than the account's limit, and the rest get the throttled page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_form_sign_ins_cannot_outrun_the_throttle() {
    let s = Arc::new(TestServer::new().await);
    s.register("alice", PASSWORD).await;
    let limit = s.state.config().login_limit_per_account;
    let checks = || {
        s.state
            .metrics()
            .password_checks
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = checks();
    let n = 60;
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut b = PageClient::new(
                    UA,
                    Box::leak(format!("198.51.100.{i}:1000").into_boxed_str()),
                );
                b.get(&s, "/login").await;
                barrier.wait().await;
                let guess = format!("guess number {i:04} wrong");
                b.post(&s, "/login", &[("username", "alice"), ("password", &guess)])
                    .await
            })
        })
        .collect();
    let mut throttled = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            throttled += 1;
            assert!(r.header(header::RETRY_AFTER).is_some());
            assert!(r.text().contains("Too many attempts"), "{}", r.text());
        } else {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
    }
    let verified = checks() - before;
    assert!(verified <= u64::from(limit), "{verified} guesses verified");
    assert_eq!(throttled, n - usize::try_from(verified).unwrap());
    let mut owner = PageClient::new(UA, "192.0.2.200:1000");
    owner.get(&s, "/login").await;
    let r = owner
        .post(
            &s,
            "/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the right password, sent last"
    );
}
