#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Secrets never leak: no token or password in the server's log (at debug level, with every
//! request path exercised, failures included), in an error body, or accepted from a URL.

use crate::common;

use common::{PASSWORD, Server, bearer, cookie_login, password_grant, register};

#[test]
fn tokens_and_passwords_never_reach_logs_error_bodies_or_urls() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(|cmd, addr| {
        // Grace 0, so presenting a rotated refresh token is reuse at once.
        cmd.env("TESSERA_LOG", "debug")
            .args([
                "--listen",
                &addr.to_string(),
                "--refresh-grace",
                "0",
                "--data-dir",
            ])
            .arg(data.path());
    });
    register(&server, "alice", PASSWORD);
    let (cookie, csrf) = cookie_login(&server, "alice", PASSWORD);
    let session_token = cookie.split_once('=').unwrap().1.to_owned();
    let (access, refresh) = password_grant(&server, "alice", PASSWORD);
    let rotated = server.post_form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    let next_refresh = rotated.json()["refresh_token"].as_str().unwrap().to_owned();

    // Failures log their reasons; the tokens involved must not be among them.
    let mut secrets = vec![
        session_token.clone(),
        access.clone(),
        refresh.clone(),
        next_refresh.clone(),
        csrf.clone(),
        PASSWORD.to_owned(),
    ];
    let tampered = format!("{}x", &access[..access.len() - 1]);
    let forged_refresh = format!("{}A", &refresh[..refresh.len() - 1]);
    secrets.push(tampered.clone());
    let mut bodies = vec![
        server.get("/v1/userinfo", &[("Authorization", &bearer(&tampered))]),
        server.post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &forged_refresh),
            ],
        ),
        server.post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "a wrong password here"),
            ],
        ),
        server.request(
            "DELETE",
            "/v1/session",
            &[("Cookie", &cookie), ("X-CSRF-Token", "wrong")],
            None,
        ),
    ];
    // RFC 6750 §2.3's query parameter is not a way in: tokens in URLs end up in logs.
    let in_url = server.get(&format!("/v1/userinfo?access_token={access}"), &[]);
    assert_eq!(
        in_url.status, 401,
        "a token in the URL must not authenticate"
    );
    // Reuse detection and logout: the paths with the most to say in the log.
    server.post_form(
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    server.post_form("/oauth/revoke", &[("token", &access)]);
    bodies.push(server.get("/v1/userinfo", &[("Authorization", &bearer(&access))]));

    for resp in &bodies {
        assert!((400..500).contains(&resp.status), "{resp:?}");
        let text = &resp.body;
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "an error body repeats a secret: {text}"
            );
        }
    }
    let log = server.log();
    assert!(log.contains("DEBUG"), "debug logging was on:\n{log}");
    assert!(
        log.contains("refresh token reuse"),
        "the reuse was logged:\n{log}"
    );
    for s in &secrets {
        assert!(
            !log.contains(s.as_str()),
            "the log contains a secret ({}…):\n{log}",
            &s[..8]
        );
    }
    // The opaque token bodies, without prefixes, are not there either.
    for t in [&session_token, &refresh, &next_refresh] {
        assert!(
            !log.contains(&t[4..20]),
            "the log contains part of an opaque token"
        );
    }
}
