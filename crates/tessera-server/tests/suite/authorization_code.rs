//! The authorization-code flow with PKCE (`/oauth/authorize`, the consent page, the
//! `authorization_code` grant), attacked as a third-party app's adversary would: open
//! redirects, PKCE downgrades, code injection (another client, another redirect URI, another
//! verifier), code replay in a burst, a stale code, a credential reset between consent and
//! redemption, and a cross-site consent post.

use std::sync::Arc;

use aws_lc_rs::digest;
use axum::http::{StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tessera_core::client::{NewClient, Scope};
use tessera_server::service;
use tokio::sync::Barrier;

use crate::common::*;
use crate::page_client::PageClient;

pub(crate) const CALLBACK: &str = "https://photos.example/callback";
pub(crate) const VERIFIER: &str = "a-verifier-of-forty-three-or-more-characters_0123456789";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

pub(crate) struct App {
    pub(crate) id: String,
    secret: Option<String>,
}

pub(crate) async fn app(s: &TestServer, public: bool, first_party: bool) -> App {
    let (record, secret) = service::register_client(
        &s.state,
        NewClient {
            name: "Photo <Printer>".into(),
            scope: Scope::parse("photos profile").unwrap(),
            redirect_uris: vec![CALLBACK.into(), "http://127.0.0.1:7777/cb".into()],
            public,
            first_party,
            ..NewClient::default()
        },
        &service::Actor::Operator,
    )
    .await
    .unwrap();
    App {
        id: record.id.to_string(),
        secret: secret.map(|s| s.expose_secret().to_owned()),
    }
}

/// The authorization request's query, with `tweak` applied to its pairs.
pub(crate) fn request(app: &App, tweak: impl FnOnce(&mut Vec<(&'static str, String)>)) -> String {
    let mut pairs: Vec<(&'static str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", app.id.clone()),
        ("redirect_uri", CALLBACK.into()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
        ("state", "st&te=1".into()),
        ("scope", "photos".into()),
    ];
    tweak(&mut pairs);
    format!(
        "/oauth/authorize?{}",
        serde_urlencoded::to_string(&pairs).unwrap()
    )
}

/// The query parameters of a redirect to the client.
fn redirect_params(location: &str) -> Vec<(String, String)> {
    let query = location.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(query).unwrap()
}

pub(crate) fn param(location: &str, name: &str) -> Option<String> {
    redirect_params(location)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

async fn signed_in(s: &TestServer, name: &str) -> PageClient {
    s.register(name, PASSWORD).await;
    let mut browser = PageClient::new(
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
        "192.0.2.9:4000",
    );
    browser.sign_in(s, name, PASSWORD).await;
    browser
}

/// Consents to `query` and returns the redirect to the client.
async fn consent(s: &TestServer, browser: &mut PageClient, query: &str, decision: &str) -> String {
    let page = browser.get(s, query).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let fields: Vec<(String, String)> = redirect_params(query);
    let mut form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.push(("decision", decision));
    let r = browser.post(s, "/oauth/authorize", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    r.header(header::LOCATION).unwrap()
}

/// A code for `app`, consented to by a fresh user.
pub(crate) async fn code_for(s: &TestServer, app: &App, user: &str) -> (PageClient, String) {
    let mut browser = signed_in(s, user).await;
    let location = consent(s, &mut browser, &request(app, |_| {}), "allow").await;
    (browser, param(&location, "code").unwrap())
}

/// The tokens of one more authorization of `app` by the signed-in `browser`.
pub(crate) async fn grant(
    s: &TestServer,
    app: &App,
    browser: &mut PageClient,
) -> serde_json::Value {
    let location = consent(s, browser, &request(app, |_| {}), "allow").await;
    let code = param(&location, "code").unwrap();
    let r = redeem(s, app, &code, VERIFIER).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

pub(crate) async fn redeem(s: &TestServer, app: &App, code: &str, verifier: &str) -> Resp {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier),
    ];
    let mut req = Req::post("/oauth/token");
    match &app.secret {
        Some(secret) => {
            let basic = STANDARD.encode(format!("{}:{secret}", app.id));
            req = req.header(header::AUTHORIZATION, format!("Basic {basic}"));
        }
        None => form.push(("client_id", &app.id)),
    }
    s.send(req.form(&form)).await
}

#[tokio::test]
async fn a_public_app_gets_tokens_through_consent_and_pkce_and_refreshes_them() {
    let s = TestServer::new().await;
    let spa = app(&s, true, false).await;
    let mut browser = signed_in(&s, "ada").await;
    let query = request(&spa, |_| {});
    let page = browser.get(&s, &query).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    assert!(
        html.contains("Photo &lt;Printer&gt;"),
        "escaped name: {html}"
    );
    assert!(html.contains("photos") && !html.contains("<li><code>profile"));
    let csp = page.header(header::CONTENT_SECURITY_POLICY).unwrap();
    assert!(
        csp.contains("form-action 'self' https://photos.example;"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));

    let location = consent(&s, &mut browser, &query, "allow").await;
    assert!(
        location.starts_with(&format!("{CALLBACK}?code=tac_")),
        "{location}"
    );
    assert_eq!(param(&location, "state").as_deref(), Some("st&te=1"));
    assert_eq!(param(&location, "iss").as_deref(), Some(ISSUER));

    let code = param(&location, "code").unwrap();
    let r = redeem(&s, &spa, &code, VERIFIER).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["scope"], "photos");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let claims = jwt_part(&access, 1);
    assert_eq!(claims["client_id"], spa.id.as_str());
    assert_eq!(claims["scope"], "photos");
    assert_eq!(s.userinfo_bearer(&access).await.status, StatusCode::OK);

    // The app's refresh token answers to the app: by its id, or without one (public).
    let refresh = body["refresh_token"].as_str().unwrap();
    let r = s
        .send(Req::post("/oauth/token").form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &spa.id),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // …not to another client.
    let other = app(&s, true, false).await;
    let next = r.json()["refresh_token"].as_str().unwrap().to_owned();
    let r = s
        .send(Req::post("/oauth/token").form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &next),
            ("client_id", &other.id),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_grant");
    // A public app names itself to revoke (RFC 7009 §2.1), but cannot introspect that way.
    let introspect = s
        .send(Req::post("/oauth/introspect").form(&[("token", &next), ("client_id", &spa.id)]))
        .await;
    assert_eq!(introspect.status, StatusCode::UNAUTHORIZED);
    let revoke = s
        .send(Req::post("/oauth/revoke").form(&[("token", &next), ("client_id", &spa.id)]))
        .await;
    assert_eq!(revoke.status, StatusCode::OK, "{}", revoke.text());
    assert_eq!(s.refresh_raw(&next).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn without_a_session_the_browser_signs_in_first_and_comes_back() {
    let s = TestServer::new().await;
    let spa = app(&s, true, false).await;
    s.register("bea", PASSWORD).await;
    let mut browser = PageClient::new("Mozilla/5.0 Chrome/129.0", "192.0.2.8:4000");
    let query = request(&spa, |_| {});
    let r = browser.get(&s, &query).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let login = r.header(header::LOCATION).unwrap();
    let return_to = param(&login, "return_to").unwrap();
    assert_eq!(return_to, query);
    browser.get(&s, &login).await;
    let r = browser
        .post(
            &s,
            "/login",
            &[
                ("username", "bea"),
                ("password", PASSWORD),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(r.header(header::LOCATION).as_deref(), Some(query.as_str()));
    let page = browser.get(&s, &query).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("Allow"));
}

#[tokio::test]
async fn unknown_clients_and_unregistered_redirect_uris_get_a_page_never_a_redirect() {
    let s = TestServer::new().await;
    let spa = app(&s, true, false).await;
    let mut browser = signed_in(&s, "cyd").await;
    let evil = [
        "https://evil.example/callback",
        "https://photos.example/callback/",
        "https://photos.example/callback?next=https://evil.example",
        "https://photos.example.evil.example/callback",
        "https://PHOTOS.example/callback",
        "http://photos.example/callback",
        "https://photos.example/callback#x",
        "//evil.example/callback",
        "",
    ];
    for uri in evil {
        let query = request(&spa, |p| {
            p.retain(|(k, _)| *k != "redirect_uri");
            p.push(("redirect_uri", uri.into()));
        });
        let r = browser.get(&s, &query).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(r.header(header::LOCATION).is_none(), "{uri}");
        assert!(r.text().contains("redirect uri is not registered"), "{uri}");
        assert!(!r.text().contains("evil.example"), "{uri}: echoed");
    }
    for client in [
        "",
        "nope",
        "tcl_doesnotexist0000000000000000000000000000000",
    ] {
        let query = request(&spa, |p| {
            p.retain(|(k, _)| *k != "client_id");
            p.push(("client_id", client.into()));
        });
        let r = browser.get(&s, &query).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{client}");
        assert!(r.header(header::LOCATION).is_none());
    }
    // A parameter sent twice is refused outright.
    let twice = format!(
        "{}&redirect_uri=https%3A%2F%2Fevil.example",
        request(&spa, |_| {})
    );
    let r = browser.get(&s, &twice).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.header(header::LOCATION).is_none());
}

#[tokio::test]
async fn pkce_downgrades_and_bad_parameters_go_back_to_the_app_as_errors() {
    let s = TestServer::new().await;
    let spa = app(&s, true, false).await;
    let mut browser = signed_in(&s, "dee").await;
    type Tweak = fn(&mut Vec<(&'static str, String)>);
    let cases: [(Tweak, &str); 6] = [
        (
            |p| p.retain(|(k, _)| *k != "code_challenge"),
            "invalid_request",
        ),
        (
            |p| p.retain(|(k, _)| *k != "code_challenge_method"),
            "invalid_request",
        ),
        (
            |p| {
                p.retain(|(k, _)| *k != "code_challenge_method");
                p.push(("code_challenge_method", "plain".into()));
            },
            "invalid_request",
        ),
        (
            |p| {
                p.retain(|(k, _)| *k != "response_type");
                p.push(("response_type", "token".into()));
            },
            "unsupported_response_type",
        ),
        (
            |p| {
                p.retain(|(k, _)| *k != "scope");
                p.push(("scope", "photos admin".into()));
            },
            "invalid_scope",
        ),
        (
            |p| {
                p.retain(|(k, _)| *k != "code_challenge");
                p.push(("code_challenge", VERIFIER.into()));
            },
            "invalid_request",
        ),
    ];
    for (tweak, code) in cases {
        let r = browser.get(&s, &request(&spa, tweak)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{code}: {}", r.text());
        let location = r.header(header::LOCATION).unwrap();
        assert!(location.starts_with(CALLBACK), "{location}");
        assert_eq!(
            param(&location, "error").as_deref(),
            Some(code),
            "{location}"
        );
        assert_eq!(param(&location, "state").as_deref(), Some("st&te=1"));
        assert_eq!(param(&location, "iss").as_deref(), Some(ISSUER));
        assert!(param(&location, "code").is_none());
    }
}

#[tokio::test]
async fn denying_sends_access_denied_and_first_party_apps_skip_consent() {
    let s = TestServer::new().await;
    let spa = app(&s, true, false).await;
    let mut browser = signed_in(&s, "eve").await;
    let location = consent(&s, &mut browser, &request(&spa, |_| {}), "deny").await;
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));
    assert!(param(&location, "code").is_none());

    let own = app(&s, true, true).await;
    let r = browser.get(&s, &request(&own, |_| {})).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let code = param(&r.header(header::LOCATION).unwrap(), "code").unwrap();
    assert_eq!(
        redeem(&s, &own, &code, VERIFIER).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_forged_consent_post_is_refused() {
    let s = TestServer::new().await;
    let spa = app(&s, true, false).await;
    let mut browser = signed_in(&s, "fay").await;
    let query = request(&spa, |_| {});
    browser.get(&s, &query).await;
    let mut form: Vec<(String, String)> = redirect_params(&query);
    form.push(("decision".into(), "allow".into()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // From another site, with the victim's cookie (and even the right token).
    let csrf = browser.csrf.clone().unwrap();
    let mut with_token = form.clone();
    with_token.push(("csrf_token", &csrf));
    for (origin, site) in [
        ("https://evil.example", "cross-site"),
        ("null", "cross-site"),
    ] {
        let r = browser
            .post_raw(&s, "/oauth/authorize", &with_token, |r| {
                r.header(header::ORIGIN, origin)
                    .header("sec-fetch-site", site)
            })
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{origin}");
        assert!(r.header(header::LOCATION).is_none());
    }
    // Same origin without the token.
    let r = browser
        .post_raw(&s, "/oauth/authorize", &form, |r| {
            r.header(header::ORIGIN, ISSUER)
                .header("sec-fetch-site", "same-origin")
        })
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn injected_codes_are_refused_another_client_redirect_uri_or_verifier() {
    let s = TestServer::new().await;
    let spa = app(&s, true, false).await;
    let thief = app(&s, true, false).await;
    for (who, verifier, redirect) in [
        (&thief, VERIFIER, CALLBACK),
        (
            &spa,
            "another-verifier-that-is-long-enough-to-be-well-formed",
            CALLBACK,
        ),
        (&spa, VERIFIER, "http://127.0.0.1:7777/cb"),
    ] {
        let (_, code) = code_for(&s, &spa, &format!("u{}", redirect.len() + verifier.len())).await;
        let r = s
            .send(Req::post("/oauth/token").form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
                ("client_id", &who.id),
            ]))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert_eq!(r.error_code(), "invalid_grant");
        // The attempt spent the code: the real app's later redemption fails too.
        assert_eq!(
            redeem(&s, &spa, &code, VERIFIER).await.status,
            StatusCode::BAD_REQUEST
        );
    }
    // A confidential app must authenticate; naming itself is not enough.
    let server_app = app(&s, false, false).await;
    let (_, code) = code_for(&s, &server_app, "conf").await;
    let named_only = App {
        id: server_app.id.clone(),
        secret: None,
    };
    let r = redeem(&s, &named_only, &code, VERIFIER).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "invalid_client");
    assert_eq!(
        redeem(&s, &server_app, &code, VERIFIER).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_code_expires_after_a_minute() {
    let s = TestServer::new().await;
    let spa = app(&s, true, false).await;
    let (_, code) = code_for(&s, &spa, "gil").await;
    s.advance(61);
    let r = redeem(&s, &spa, &code, VERIFIER).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_code_in_a_burst_issues_at_most_once_and_ends_what_it_issued() {
    const RACERS: usize = 12;
    let s = Arc::new(TestServer::new().await);
    let spa = Arc::new(app(&s, true, false).await);
    let (_, code) = code_for(&s, &spa, "hal").await;
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (s, spa, code, barrier) = (s.clone(), spa.clone(), code.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                redeem(&s, &spa, &code, VERIFIER).await
            })
        })
        .collect();
    let mut issued = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::OK => issued.push(r.json()),
            StatusCode::BAD_REQUEST => assert_eq!(r.error_code(), "invalid_grant"),
            other => panic!("{other}: {}", r.text()),
        }
    }
    assert!(issued.len() <= 1, "{} token sets", issued.len());
    // Every replay revoked the first redemption's session: nothing it issued works.
    for body in issued {
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(
            s.userinfo_bearer(access).await.status,
            StatusCode::UNAUTHORIZED
        );
        let refresh = body["refresh_token"].as_str().unwrap();
        assert_eq!(s.refresh_raw(refresh).await.status, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn a_replay_after_success_revokes_the_apps_tokens_and_nothing_else() {
    let s = TestServer::new().await;
    let spa = app(&s, true, false).await;
    let (mut browser, code) = code_for(&s, &spa, "ivy").await;
    let first = redeem(&s, &spa, &code, VERIFIER).await.json();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(s.userinfo_bearer(access).await.status, StatusCode::OK);
    let again = redeem(&s, &spa, &code, VERIFIER).await;
    assert_eq!(again.error_code(), "invalid_grant");
    assert_eq!(
        s.userinfo_bearer(access).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The user's browser session is another node of the tree: untouched.
    assert_eq!(browser.get(&s, "/account").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_authorization_is_a_session_of_its_own_revocable_alone_and_with_everything() {
    let s = TestServer::new().await;
    let spa = app(&s, true, false).await;
    s.register("jon", PASSWORD).await;
    let api = s.login("jon", PASSWORD).await;
    let mut browser = PageClient::new("Mozilla/5.0 Firefox/130.0", "192.0.2.7:4000");
    browser.sign_in(&s, "jon", PASSWORD).await;
    let one = grant(&s, &spa, &mut browser).await;
    let two = grant(&s, &spa, &mut browser).await;
    let sid = jwt_part(one["access_token"].as_str().unwrap(), 1)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = s
        .send(Req::get("/v1/sessions").cookie(&api.token))
        .await
        .json();
    assert!(listed.to_string().contains(&sid), "{listed}");
    // Revoking one authorization ends its tokens only.
    let r = s
        .send(Req::delete(&format!("/v1/sessions/{sid}")).browser(&api))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let dead = one["access_token"].as_str().unwrap();
    let alive = two["access_token"].as_str().unwrap();
    assert_eq!(
        s.userinfo_bearer(dead).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.userinfo_bearer(alive).await.status, StatusCode::OK);
    // "Sign out everywhere else" ends the other one.
    let r = s.send(Req::delete("/v1/sessions").browser(&api)).await;
    assert_eq!(
        r.json()["revoked"],
        2,
        "the browser page's session and the app's"
    );
    assert_eq!(
        s.userinfo_bearer(alive).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = two["refresh_token"].as_str().unwrap();
    assert_eq!(s.refresh_raw(refresh).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_password_change_between_consent_and_redemption_voids_the_code() {
    let s = TestServer::new().await;
    let spa = app(&s, true, false).await;
    let (_, code) = code_for(&s, &spa, "kim").await;
    let other_device = s.login("kim", PASSWORD).await;
    let r = s
        .send(
            Req::post("/v1/password")
                .browser(&other_device)
                .json(&serde_json::json!({
                    "current_password": PASSWORD, "new_password": NEW_PASSWORD,
                })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = redeem(&s, &spa, &code, VERIFIER).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.error_code(), "invalid_grant");
}

#[tokio::test]
async fn a_third_party_app_cannot_use_the_password_grant_and_discovery_says_so() {
    let s = TestServer::new().await;
    let server_app = app(&s, false, false).await;
    s.register("lee", PASSWORD).await;
    let basic = STANDARD.encode(format!("{}:{}", server_app.id, server_app.secret.unwrap()));
    let r = s
        .send(
            Req::post("/oauth/token")
                .header(header::AUTHORIZATION, format!("Basic {basic}"))
                .form(&[
                    ("grant_type", "password"),
                    ("username", "lee"),
                    ("password", PASSWORD),
                ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "unauthorized_client");
    let d = s
        .send(Req::get("/.well-known/openid-configuration"))
        .await
        .json();
    assert_eq!(
        d["authorization_endpoint"],
        format!("{ISSUER}/oauth/authorize")
    );
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        d["first_party_only_grant_types"],
        serde_json::json!(["password"])
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert!(
        d["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&"authorization_code".into())
    );
}
