//! DPoP (RFC 9449) attacked the way a thief would: a stolen bound token presented as a bearer
//! token, with a proof by another key, with a replayed proof (one at a time and in a
//! barrier-synchronised burst), with proofs made for another request or at another time, and
//! with hostile proofs (`alg: none`, HS256, private key material); a bound refresh token used
//! without its key; a client registered `dpop` that sends no proof; a replay store that fails.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use tessera_core::client::{NewClient, Scope};
use tessera_core::dpop::{ProofClaims, sign_proof, thumbprint};
use tessera_core::jose::{Algorithm, SigningKey, b64};
use tessera_core::opaque::random_id;
use tessera_core::time::UnixTime;
use tessera_server::service;
use tokio::sync::Barrier;

use crate::common::{AppTokens, ISSUER, PASSWORD, Req, Resp, TestServer, app_tokens, jwt_part};
use crate::faulty_store::FaultyStore;

/// A client's DPoP key.
struct Holder(SigningKey);

impl Holder {
    fn new(alg: Algorithm) -> Self {
        Self(SigningKey::generate(alg, "dpop".into()).unwrap())
    }

    fn jkt(&self) -> String {
        thumbprint(&self.0.verifying_key()).unwrap()
    }

    /// A fresh proof for `method` on `path` at the server, issued at `iat`.
    fn proof_at(&self, method: &str, url: &str, token: Option<&str>, iat: UnixTime) -> String {
        let jti = random_id().unwrap();
        sign_proof(
            &self.0,
            &ProofClaims {
                jti: &jti,
                htm: method,
                htu: url,
                iat,
                access_token: token,
                nonce: None,
            },
        )
        .unwrap()
    }

    fn proof(&self, s: &TestServer, method: &str, path: &str, token: Option<&str>) -> String {
        self.proof_at(method, &format!("{ISSUER}{path}"), token, s.state.now())
    }
}

async fn userinfo_dpop(s: &TestServer, token: &str, proof: &str) -> Resp {
    s.send(
        Req::get("/v1/userinfo")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof),
    )
    .await
}

async fn password_grant_with(s: &TestServer, name: &str, proof: &str) -> Resp {
    s.send(Req::post("/oauth/token").header("dpop", proof).form(&[
        ("grant_type", "password"),
        ("username", name),
        ("password", PASSWORD),
    ]))
    .await
}

/// A user whose password-grant tokens are bound to `holder`'s key.
async fn bound_tokens(s: &TestServer, name: &str, holder: &Holder) -> AppTokens {
    s.register(name, PASSWORD).await;
    let r = password_grant_with(s, name, &holder.proof(s, "POST", "/oauth/token", None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["token_type"], "DPoP");
    let tokens = app_tokens(&r);
    assert_eq!(jwt_part(&tokens.access, 1)["cnf"]["jkt"], holder.jkt());
    tokens
}

fn assert_dpop_challenge(r: &Resp, error: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.error_code(), error);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(&format!("error=\"{error}\"")),
        "{challenge}"
    );
    assert!(challenge.contains("algs=\"EdDSA ES256\""), "{challenge}");
}

#[tokio::test]
async fn a_bound_token_works_only_as_dpop_with_a_proof_by_its_key() {
    let s = TestServer::new().await;
    let holder = Holder::new(Algorithm::EdDSA);
    let tokens = bound_tokens(&s, "alice", &holder).await;
    let proof = holder.proof(&s, "GET", "/v1/userinfo", Some(&tokens.access));
    let r = userinfo_dpop(&s, &tokens.access, &proof).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["username"], "alice");

    // Stolen: as a bearer token, with no proof, with a proof by the thief's own key.
    assert_dpop_challenge(&s.userinfo_bearer(&tokens.access).await, "invalid_token");
    let no_proof = s
        .send(Req::get("/v1/userinfo").header("authorization", format!("DPoP {}", tokens.access)))
        .await;
    assert_dpop_challenge(&no_proof, "invalid_dpop_proof");
    let thief = Holder::new(Algorithm::EdDSA);
    let theirs = thief.proof(&s, "GET", "/v1/userinfo", Some(&tokens.access));
    assert_dpop_challenge(
        &userinfo_dpop(&s, &tokens.access, &theirs).await,
        "invalid_dpop_proof",
    );
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let s = TestServer::new().await;
    let holder = Holder::new(Algorithm::ES256);
    let tokens = bound_tokens(&s, "bob", &holder).await;
    let proof = holder.proof(&s, "GET", "/v1/userinfo", Some(&tokens.access));
    assert_eq!(
        userinfo_dpop(&s, &tokens.access, &proof).await.status,
        StatusCode::OK
    );
    s.advance(30);
    assert_dpop_challenge(
        &userinfo_dpop(&s, &tokens.access, &proof).await,
        "invalid_dpop_proof",
    );
    // The token endpoint spends proofs too: one proof, two grants.
    let login = holder.proof(&s, "POST", "/oauth/token", None);
    assert_eq!(
        password_grant_with(&s, "bob", &login).await.status,
        StatusCode::OK
    );
    let again = password_grant_with(&s, "bob", &login).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.error_code(), "invalid_dpop_proof");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proof_replayed_in_a_burst_succeeds_exactly_once() {
    const BURST: usize = 16;
    let s = Arc::new(TestServer::new().await);
    let holder = Holder::new(Algorithm::EdDSA);
    let tokens = bound_tokens(&s, "carol", &holder).await;
    let proof = Arc::new(holder.proof(&s, "GET", "/v1/userinfo", Some(&tokens.access)));
    let barrier = Arc::new(Barrier::new(BURST));
    let racers: Vec<_> = (0..BURST)
        .map(|_| {
            let (s, proof, barrier) = (Arc::clone(&s), Arc::clone(&proof), Arc::clone(&barrier));
            let token = tokens.access.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                userinfo_dpop(&s, &token, &proof).await
            })
        })
        .collect();
    let mut ok = 0;
    for racer in racers {
        let r = racer.await.unwrap();
        if r.status == StatusCode::OK {
            ok += 1;
        } else {
            assert_dpop_challenge(&r, "invalid_dpop_proof");
        }
    }
    assert_eq!(ok, 1, "exactly one use of one proof");
}

#[tokio::test]
async fn a_proof_for_another_request_or_time_is_refused() {
    let s = TestServer::new().await;
    let holder = Holder::new(Algorithm::EdDSA);
    let tokens = bound_tokens(&s, "dave", &holder).await;
    let at = &tokens.access;
    let now = s.state.now();
    let userinfo = format!("{ISSUER}/v1/userinfo");
    let cases = [
        (
            "wrong htm",
            holder.proof_at("POST", &userinfo, Some(at), now),
        ),
        (
            "wrong htu path",
            holder.proof_at("GET", &format!("{ISSUER}/v1/sessions"), Some(at), now),
        ),
        (
            "wrong htu host",
            holder.proof_at("GET", "http://evil.test/v1/userinfo", Some(at), now),
        ),
        (
            "wrong ath",
            holder.proof_at("GET", &userinfo, Some("another.access.token"), now),
        ),
        ("no ath", holder.proof_at("GET", &userinfo, None, now)),
        (
            "stale iat",
            holder.proof_at("GET", &userinfo, Some(at), now.plus(-61)),
        ),
        (
            "future iat",
            holder.proof_at("GET", &userinfo, Some(at), now.plus(6)),
        ),
    ];
    for (what, proof) in cases {
        let r = userinfo_dpop(&s, at, &proof).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_dpop_challenge(&r, "invalid_dpop_proof");
    }
    // The same token still works with a proof made for this request: nothing was spent.
    let good = holder.proof(&s, "GET", "/v1/userinfo", Some(at));
    assert_eq!(userinfo_dpop(&s, at, &good).await.status, StatusCode::OK);
}

/// `htu` names the endpoint at the issuer, whatever `Host` the request arrived with (a proxy
/// in front of the server), and never the internal address.
#[tokio::test]
async fn htu_is_the_public_url_at_the_issuer() {
    let s = TestServer::new().await;
    let holder = Holder::new(Algorithm::EdDSA);
    let tokens = bound_tokens(&s, "erin", &holder).await;
    let internal = holder.proof_at(
        "GET",
        "http://10.0.0.7:8080/v1/userinfo",
        Some(&tokens.access),
        s.state.now(),
    );
    let via_proxy = |proof: String| {
        Req::get("/v1/userinfo")
            .header("host", "10.0.0.7:8080")
            .header("authorization", format!("DPoP {}", tokens.access))
            .header("dpop", proof)
    };
    assert_dpop_challenge(&s.send(via_proxy(internal)).await, "invalid_dpop_proof");
    let public = holder.proof(&s, "GET", "/v1/userinfo", Some(&tokens.access));
    assert_eq!(s.send(via_proxy(public)).await.status, StatusCode::OK);
}

/// A proof whose header and payload the attacker wrote, signed by `key`.
fn forged(key: &SigningKey, header: &Value, url: &str, now: UnixTime) -> String {
    let payload = json!({"jti": random_id().unwrap(), "htm": "POST", "htu": url, "iat": now.0});
    key.sign_with_header(header, &payload).unwrap()
}

#[tokio::test]
async fn hostile_proofs_are_refused_at_the_token_endpoint() {
    let s = TestServer::new().await;
    s.register("frank", PASSWORD).await;
    let url = format!("{ISSUER}/oauth/token");
    let now = s.state.now();
    let ed = SigningKey::generate(Algorithm::EdDSA, "k".into()).unwrap();
    let mut public = ed.verifying_key().public_jwk().unwrap();
    public.as_object_mut().unwrap().remove("kid");
    let unsigned = {
        let header = json!({"typ": "dpop+jwt", "alg": "none", "jwk": public});
        let payload = json!({"jti": "x", "htm": "POST", "htu": url, "iat": now.0});
        format!(
            "{}.{}.",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(payload.to_string().as_bytes())
        )
    };
    let hmac = SigningKey::generate(Algorithm::HS256, "h".into()).unwrap();
    let k = b64::encode(&hmac.secret_bytes_dangerously());
    let hs256 = forged(
        &hmac,
        &json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": k}}),
        &url,
        now,
    );
    let mut private = public.clone();
    private["d"] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A".into();
    let leaked = forged(
        &ed,
        &json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": private}),
        &url,
        now,
    );
    let untyped = forged(&ed, &json!({"alg": "EdDSA", "jwk": public}), &url, now);
    for (what, proof) in [
        ("alg none", unsigned),
        ("HS256", hs256),
        ("private jwk", leaked),
        ("no typ", untyped),
        ("garbage", "not.a.proof".to_owned()),
    ] {
        let r = password_grant_with(&s, "frank", &proof).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text());
        assert_eq!(r.error_code(), "invalid_dpop_proof", "{what}");
        assert!(r.json().get("access_token").is_none());
    }
}

#[tokio::test]
async fn a_bound_refresh_token_needs_a_proof_by_its_key() {
    let s = TestServer::new().await;
    let holder = Holder::new(Algorithm::EdDSA);
    let tokens = bound_tokens(&s, "grace", &holder).await;
    let refresh = |proof: Option<String>| {
        let mut req = Req::post("/oauth/token");
        if let Some(proof) = proof {
            req = req.header("dpop", proof);
        }
        s.send(req.form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh),
        ]))
    };
    let r = refresh(None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_dpop_proof");
    let thief = Holder::new(Algorithm::EdDSA);
    let r = refresh(Some(thief.proof(&s, "POST", "/oauth/token", None))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_dpop_proof");
    // The refused attempts spent nothing: the owner's refresh rotates normally.
    let r = refresh(Some(holder.proof(&s, "POST", "/oauth/token", None))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["token_type"], "DPoP");
    let next = app_tokens(&r);
    assert_eq!(jwt_part(&next.access, 1)["cnf"]["jkt"], holder.jkt());
    // The successor is bound too.
    assert_eq!(
        s.refresh_raw(&next.refresh).await.error_code(),
        "invalid_dpop_proof"
    );
}

async fn dpop_client(s: &TestServer) -> (String, String) {
    let (record, secret) = service::register_client(
        &s.state,
        NewClient {
            name: "bound-api".into(),
            scope: Scope::parse("read").unwrap(),
            dpop: true,
            ..NewClient::default()
        },
        &service::Actor::Operator,
    )
    .await
    .unwrap();
    (
        record.id.as_str().to_owned(),
        secret.unwrap().expose_secret().to_owned(),
    )
}

#[tokio::test]
async fn a_dpop_client_must_send_a_proof() {
    let s = TestServer::new().await;
    let (id, secret) = dpop_client(&s).await;
    let grant = |proof: Option<String>| {
        let mut req = Req::post("/oauth/token");
        if let Some(proof) = proof {
            req = req.header("dpop", proof);
        }
        s.send(req.form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ]))
    };
    let r = grant(None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_dpop_proof");
    let holder = Holder::new(Algorithm::ES256);
    let r = grant(Some(holder.proof(&s, "POST", "/oauth/token", None))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["token_type"], "DPoP");
    let access = r.json()["access_token"].as_str().unwrap().to_owned();

    // Introspection reports the binding (RFC 9449 §6.2).
    let r = s
        .send(Req::post("/oauth/introspect").form(&[
            ("token", access.as_str()),
            ("client_id", &id),
            ("client_secret", &secret),
        ]))
        .await;
    let facts = r.json();
    assert_eq!(facts["active"], true);
    assert_eq!(facts["token_type"], "DPoP");
    assert_eq!(facts["cnf"]["jkt"], holder.jkt());
}

#[tokio::test]
async fn unbound_credentials_presented_as_dpop_are_refused() {
    let s = TestServer::new().await;
    s.register("heidi", PASSWORD).await;
    let tokens = s.password_grant("heidi", PASSWORD).await;
    assert!(jwt_part(&tokens.access, 1).get("cnf").is_none());
    assert_eq!(
        s.userinfo_bearer(&tokens.access).await.status,
        StatusCode::OK
    );
    let holder = Holder::new(Algorithm::EdDSA);
    let proof = holder.proof(&s, "GET", "/v1/userinfo", Some(&tokens.access));
    assert_dpop_challenge(
        &userinfo_dpop(&s, &tokens.access, &proof).await,
        "invalid_token",
    );
    let session = s.login("heidi", PASSWORD).await;
    let proof = holder.proof(&s, "GET", "/v1/userinfo", Some(&session.token));
    assert_dpop_challenge(
        &userinfo_dpop(&s, &session.token, &proof).await,
        "invalid_token",
    );
}

#[tokio::test]
async fn a_bound_token_is_exchanged_only_with_a_proof_by_its_key() {
    let s = TestServer::new().await;
    let holder = Holder::new(Algorithm::EdDSA);
    let tokens = bound_tokens(&s, "ivan", &holder).await;
    let exchange = |proof: Option<String>| {
        let mut req = Req::post("/oauth/token");
        if let Some(proof) = proof {
            req = req.header("dpop", proof);
        }
        s.send(req.form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", &tokens.access),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ]))
    };
    assert_eq!(exchange(None).await.error_code(), "invalid_dpop_proof");
    let thief = Holder::new(Algorithm::EdDSA);
    let r = exchange(Some(thief.proof(&s, "POST", "/oauth/token", None))).await;
    assert_eq!(r.error_code(), "invalid_dpop_proof");
    let r = exchange(Some(holder.proof(&s, "POST", "/oauth/token", None))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_part(&access, 1)["cnf"]["jkt"], holder.jkt());
}

#[tokio::test]
async fn discovery_advertises_the_proof_algorithms() {
    let s = TestServer::new().await;
    let r = s.send(Req::get("/.well-known/openid-configuration")).await;
    assert_eq!(
        r.json()["dpop_signing_alg_values_supported"],
        json!(["EdDSA", "ES256"])
    );
}

/// A replay store that cannot answer fails closed: no proof is accepted unchecked.
#[tokio::test]
async fn a_failing_replay_store_fails_closed() {
    let store = FaultyStore::new();
    let s = TestServer::with_store(store.clone(), |_| {}).await;
    let holder = Holder::new(Algorithm::EdDSA);
    let tokens = bound_tokens(&s, "judy", &holder).await;
    store.fail("remember_once");
    let proof = holder.proof(&s, "GET", "/v1/userinfo", Some(&tokens.access));
    let r = userinfo_dpop(&s, &tokens.access, &proof).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let r = password_grant_with(&s, "judy", &holder.proof(&s, "POST", "/oauth/token", None)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    store.heal();
    assert_eq!(
        userinfo_dpop(&s, &tokens.access, &proof).await.status,
        StatusCode::OK
    );
}

/// RFC 9449 §5: a confidential client's refresh token is held by its secret, not bound to a
/// key; its access token is bound all the same.
#[tokio::test]
async fn a_confidential_clients_refresh_token_is_not_bound() {
    let s = TestServer::new().await;
    s.register("kim", PASSWORD).await;
    let (record, secret) = service::register_client(
        &s.state,
        NewClient {
            name: "first-party-backend".into(),
            first_party: true,
            ..NewClient::default()
        },
        &service::Actor::Operator,
    )
    .await
    .unwrap();
    let (id, secret) = (record.id.as_str().to_owned(), secret.unwrap());
    let holder = Holder::new(Algorithm::EdDSA);
    let r = s
        .send(
            Req::post("/oauth/token")
                .header("dpop", holder.proof(&s, "POST", "/oauth/token", None))
                .form(&[
                    ("grant_type", "password"),
                    ("username", "kim"),
                    ("password", PASSWORD),
                    ("client_id", &id),
                    ("client_secret", secret.expose_secret()),
                ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["token_type"], "DPoP");
    let tokens = app_tokens(&r);
    let refreshed = s.refresh(&tokens.refresh).await;
    assert!(jwt_part(&refreshed.access, 1).get("cnf").is_none());
}
