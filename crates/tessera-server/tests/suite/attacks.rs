#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The attack suite over the real HTTP path.
//!
//! Every forged or malformed token of the shared generator (RFC 8725 §2–3, the jwt_tool /
//! jwt-hack playbooks, OWASP ASVS 5.0 V9; `tessera-core/tests/attack_cases`) is built from the
//! running server's own JWKS and genuine tokens — the server's ring holds its EdDSA signing
//! key plus an ES256 and an RS256 `next` key, all three verifying — and is sent:
//!
//! - to `GET /v1/userinfo` as `Authorization: Bearer` → exactly `401 invalid_token` with
//!   `WWW-Authenticate` (tokens no HTTP client could put in a header, e.g. with a newline, go
//!   through the body endpoints only);
//! - as the `refresh_token` of `POST /oauth/token` → `400 invalid_grant`;
//! - to `POST /oauth/revoke` → `200` (RFC 7009 §2.2), after which every genuine token still
//!   works: a forged or tampered token revokes nothing, in particular not the `jti` it copies.
//!
//! `jku`, `x5u` and URL-shaped `kid`s point at a listener of this test; it must never be
//! contacted. Run with `--nocapture` for the case count per family.

#[path = "../../../tessera-core/tests/attack_cases/mod.rs"]
mod attack_cases;
use crate::common;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::TcpListener;

use attack_cases::{Attacker, FAMILIES, RealKey, Setup, generate, p256_high_s};
use axum::http::{HeaderValue, StatusCode};
use common::{AppTokens, PASSWORD, Req, Resp, T0, TestServer, jwt_part};
use serde_json::{Value, json};
use tessera_core::access::{self, AccessClaims};
use tessera_core::jose::{Algorithm, SigningKey, b64};
use tessera_core::keys::{KeyRing, KeyStatus};
use tessera_core::time::UnixTime;
use tessera_server::extract::MAX_BODY_BYTES;

/// At least this many cases must run.
const MIN_CASES: usize = 150;

/// A server whose ring is EdDSA (current, the server's own) + ES256 and RS256 (next), a user
/// with an app session, and each key's genuine access token.
struct World {
    s: TestServer,
    app: AppTokens,
    jwks: Value,
    keys: Vec<RealKey>,
}

async fn world() -> World {
    let s = TestServer::new().await;
    let mut extra = Vec::new();
    for alg in [Algorithm::ES256, Algorithm::RS256] {
        let record = KeyRing::generate_record(alg, KeyStatus::Next, UnixTime(T0)).unwrap();
        s.state.store().insert_key(&record).await.unwrap();
        extra.push(record);
    }
    s.state.reload_keys().await.unwrap();
    s.register("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    let jwks = s.send(Req::get("/.well-known/jwks.json")).await.json();
    let jwk_of = |kid: &str| {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .cloned()
            .expect("key published in the JWKS")
    };
    let ring = s.state.key_ring();
    let current = ring.current().unwrap();
    assert_eq!(current.alg(), Algorithm::EdDSA);
    let mut keys = vec![RealKey {
        alg: current.alg(),
        kid: current.kid().to_owned(),
        pkcs8: current.secret_bytes_dangerously().to_vec(),
        public_jwk: jwk_of(current.kid()),
        genuine: app.access.clone(),
    }];
    let claims = access_claims(&app.access);
    for record in &extra {
        let key = SigningKey::from_secret(record.alg, record.kid.clone(), &record.secret).unwrap();
        let genuine = access::issue(
            &key,
            &AccessClaims {
                jti: format!("{}-{}", claims.jti, record.alg),
                ..claims.clone()
            },
        )
        .unwrap();
        keys.push(RealKey {
            alg: record.alg,
            kid: record.kid.clone(),
            pkcs8: record.secret.to_vec(),
            public_jwk: jwk_of(&record.kid),
            genuine,
        });
    }
    World { s, app, jwks, keys }
}

fn access_claims(token: &str) -> AccessClaims {
    serde_json::from_value(jwt_part(token, 1)).unwrap()
}

fn assert_invalid_token(r: &Resp, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "{what}: expected 401, got {} {}",
        r.status,
        r.text()
    );
    assert_eq!(r.json()["error"], "invalid_token", "{what}");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
        "{what}: WWW-Authenticate {challenge:?}"
    );
}

fn assert_invalid_grant(r: &Resp, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "{what}: expected 400, got {} {}",
        r.status,
        r.text()
    );
    assert_eq!(r.error_code(), "invalid_grant", "{what}");
}

async fn assert_genuine_tokens_work(s: &TestServer, keys: &[RealKey], after: &str) {
    for key in keys {
        let r = s.userinfo_bearer(&key.genuine).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "genuine {} token refused after {after}: {}",
            key.alg,
            r.text()
        );
    }
}

#[tokio::test]
async fn every_forged_token_is_refused_over_http() {
    let canary = TcpListener::bind("127.0.0.1:0").unwrap();
    let canary_url = format!("http://{}", canary.local_addr().unwrap());
    let w = world().await;
    let s = &w.s;
    let attacker = Attacker::new();
    let generated = generate(&Setup {
        keys: &w.keys,
        jwks: &w.jwks,
        attacker: &attacker,
        canary: &canary_url,
    });
    for (name, token) in &generated.controls {
        let r = s.userinfo_bearer(token).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "control {name} refused: the generator is broken"
        );
    }
    assert_genuine_tokens_work(s, &w.keys, "start").await;

    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut body_only = 0;
    for case in &generated.cases {
        let what = format!("{} / {}", case.family, case.name);
        *counts.entry(case.family).or_default() += 1;
        if HeaderValue::from_str(&format!("Bearer {}", case.token)).is_ok() {
            let r = s.send(Req::get("/v1/userinfo").bearer(&case.token)).await;
            assert_invalid_token(&r, &what);
        } else {
            body_only += 1;
        }
        assert_invalid_grant(&s.refresh_raw(&case.token).await, &what);
        let r = s.revoke(&case.token).await;
        assert_eq!(r.status, StatusCode::OK, "{what}: revoke {}", r.text());
        assert_genuine_tokens_work(s, &w.keys, &what).await;
    }

    let total: usize = counts.values().sum();
    println!("\n== HTTP path (/v1/userinfo, refresh grant, revoke): {total} cases, all refused");
    for family in FAMILIES {
        println!(
            "{family:>62}: {:>4}",
            counts.get(family).copied().unwrap_or(0)
        );
    }
    println!(
        "{:>62}: {body_only:>4}",
        "(not sendable as a header: body only)"
    );
    assert!(total >= MIN_CASES, "only {total} cases");
    for family in FAMILIES {
        assert!(
            counts.get(family).copied().unwrap_or(0) >= 3,
            "family {family:?} has fewer than 3 cases"
        );
    }

    // The forged tokens changed nothing: the app session still refreshes.
    let next = s.refresh(&w.app.refresh).await;
    assert_eq!(s.userinfo_bearer(&next.access).await.status, StatusCode::OK);

    canary.set_nonblocking(true).unwrap();
    match canary.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the server made an outbound connection: {other:?}"),
    }
}

/// Real credentials of other kinds, and JWTs signed by the real key that are not access tokens
/// for this server, offered where an access token is expected.
#[tokio::test]
async fn real_credentials_of_other_types_are_not_access_tokens() {
    let w = world().await;
    let s = &w.s;
    let c = access_claims(&w.app.access);

    // A refresh token is never a bearer credential, nor a session cookie.
    assert_invalid_token(
        &s.userinfo_bearer(&w.app.refresh).await,
        "refresh token as bearer",
    );
    assert_invalid_token(
        &s.userinfo_cookie(&w.app.refresh).await,
        "refresh token as session cookie",
    );
    // A session token *is* a bearer credential at /v1/userinfo (DESIGN), as a session...
    let cookie = s.login("alice", PASSWORD).await;
    let r = s.userinfo_bearer(&cookie.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["auth"], "session");
    // ...but neither it nor an access token is a refresh token.
    for (what, t) in [
        ("session token", &cookie.token),
        ("access token", &w.app.access),
    ] {
        assert_invalid_grant(&s.refresh_raw(t).await, &format!("{what} as refresh token"));
    }

    let ring = s.state.key_ring();
    let key = ring.current().unwrap();
    let id_token = key
        .sign_compact(
            "JWT",
            &json!({
                "iss": c.iss, "sub": c.sub, "aud": "some-client", "exp": c.exp, "iat": c.iat,
                "auth_time": c.iat, "nonce": "n-0S6_WzA2Mj",
            }),
        )
        .unwrap();
    let id_shaped_access = key
        .sign_compact("JWT", &serde_json::to_value(&c).unwrap())
        .unwrap();
    let wrong_iss = access::issue(
        key,
        &AccessClaims {
            iss: "http://evil.test".into(),
            ..c.clone()
        },
    )
    .unwrap();
    let wrong_aud = access::issue(
        key,
        &AccessClaims {
            aud: "http://evil.test".into(),
            ..c.clone()
        },
    )
    .unwrap();
    for (what, t) in [
        ("ID token signed by the real key", &id_token),
        (
            "every access claim under typ JWT, signed by the real key",
            &id_shaped_access,
        ),
        ("access token with a wrong iss", &wrong_iss),
        ("access token with a wrong aud", &wrong_aud),
    ] {
        assert_invalid_token(&s.userinfo_bearer(t).await, what);
        assert_invalid_grant(&s.refresh_raw(t).await, what);
        assert_eq!(s.revoke(t).await.status, StatusCode::OK, "{what}");
        // They copy the genuine jti and sid: revoking them must not revoke the genuine token.
        assert_genuine_tokens_work(s, &w.keys, what).await;
    }
    let r = s.userinfo_bearer(&cookie.token).await;
    assert_eq!(r.status, StatusCode::OK, "session survives: {}", r.text());
    s.refresh(&w.app.refresh).await;
}

/// Credentials far beyond the 8 KiB token bound: refused without a 5xx on every path.
#[tokio::test]
async fn oversized_credentials_are_refused_cleanly() {
    let s = TestServer::new().await;
    s.register("alice", PASSWORD).await;
    let app = s.password_grant("alice", PASSWORD).await;
    for size in [8 * 1024 + 1, 64 * 1024, 1024 * 1024] {
        let junk = format!("{}.{}", app.access, "A".repeat(size));
        let what = format!("{size}-byte token");
        assert_invalid_token(&s.userinfo_bearer(&junk).await, &what);
        let refresh = s.refresh_raw(&junk).await;
        let revoke = s.revoke(&junk).await;
        if junk.len() + 64 < MAX_BODY_BYTES {
            assert_invalid_grant(&refresh, &what);
            assert_eq!(revoke.status, StatusCode::OK, "{what}");
        } else {
            for r in [&refresh, &revoke] {
                assert_eq!(
                    r.status,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "{what}: {}",
                    r.text()
                );
            }
        }
    }
    assert_eq!(s.userinfo_bearer(&app.access).await.status, StatusCode::OK);
}

/// ECDSA high-S malleability over HTTP. `(r, s)` and `(r, n − s)` are both valid signatures of
/// the same bytes; JWS (RFC 7518 §3.4) does not require low-S and Wycheproof counts high-S as
/// valid, so the server may accept the twin. That is harmless: a Tessera access token is
/// identified by its `jti`, never by its bytes, so the twin carries the identical claims and
/// revoking the original (by `jti`) refuses the twin as well. Asserted: the twin is refused,
/// or accepted with the identical identity — and dies with the original.
#[tokio::test]
async fn ecdsa_high_s_twin_dies_with_the_original() {
    let w = world().await;
    let s = &w.s;
    let es = w.keys.iter().find(|k| k.alg == Algorithm::ES256).unwrap();
    let key = SigningKey::from_secret(Algorithm::ES256, es.kid.clone(), &es.pkcs8).unwrap();
    let c = access_claims(&w.app.access);
    let (mut refused, mut accepted) = (0, 0);
    for i in 0..8 {
        let original = access::issue(
            &key,
            &AccessClaims {
                jti: format!("high-s-{i}"),
                ..c.clone()
            },
        )
        .unwrap();
        let (input, sig) = original.rsplit_once('.').unwrap();
        let twin = format!(
            "{input}.{}",
            b64::encode(&p256_high_s(&b64::decode(sig).unwrap()))
        );
        let a = s.userinfo_bearer(&original).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        let b = s.userinfo_bearer(&twin).await;
        match b.status {
            StatusCode::UNAUTHORIZED => {
                assert_invalid_token(&b, "high-S twin");
                refused += 1;
            }
            StatusCode::OK => {
                assert_eq!(a.json(), b.json(), "the twin is another identity");
                accepted += 1;
            }
            other => panic!("high-S twin: {other} {}", b.text()),
        }
        assert_eq!(s.revoke(&original).await.status, StatusCode::OK);
        assert_invalid_token(&s.userinfo_bearer(&original).await, "revoked original");
        assert_invalid_token(&s.userinfo_bearer(&twin).await, "twin of a revoked token");
    }
    println!(
        "ES256 (r, n − s) twins over HTTP: {accepted} accepted as the same jti, {refused} refused"
    );
    assert_genuine_tokens_work(s, &w.keys, "revoking the high-S originals").await;
}
