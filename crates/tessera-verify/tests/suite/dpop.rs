//! DPoP-bound tokens at a resource server, attacked as a thief holding the token but not the
//! key would: as a bearer token, without a proof, with a proof by another key, with a
//! replayed proof (one at a time, and in a barrier-synchronised burst across threads), and
//! with proofs for another method, URL, token or time.

use std::sync::{Arc, Barrier};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tessera_core::access::Confirmation;
use tessera_core::dpop::{ProofClaims, sign_proof, thumbprint};
use tessera_core::jose::{Algorithm, SigningKey};
use tessera_core::opaque::random_id;
use tessera_core::time::UnixTime;
use tessera_verify::{Presentation, Scheme, VerifiedToken, Verifier, VerifyError};
use tower::ServiceExt as _;

use crate::mock::{CLIENT_ID, CLIENT_SECRET, Mock, now};
use crate::tokens::verifier;

const WHOAMI: &str = "https://api.example/whoami";

fn holder() -> SigningKey {
    SigningKey::generate(Algorithm::EdDSA, "client".into()).unwrap()
}

fn proof(key: &SigningKey, htm: &str, htu: &str, token: Option<&str>, iat: UnixTime) -> String {
    let jti = random_id().unwrap();
    sign_proof(
        key,
        &ProofClaims {
            jti: &jti,
            htm,
            htu,
            iat,
            access_token: token,
            nonce: None,
        },
    )
    .unwrap()
}

/// A token the mock issuer bound to `key`.
fn bound(mock: &Mock, key: &SigningKey) -> String {
    let jkt = thumbprint(&key.verifying_key()).unwrap();
    mock.sign(&tessera_core::access::AccessClaims {
        cnf: Some(Confirmation { jkt }),
        ..mock.claims("bound")
    })
}

async fn whoami(VerifiedToken(claims): VerifiedToken) -> Json<Value> {
    Json(json!({ "sub": claims.sub }))
}

async fn call(app: &Router, authorization: &str, proof: Option<&str>) -> (StatusCode, Value) {
    let mut request = Request::get("/whoami").header(header::AUTHORIZATION, authorization);
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("DPoP error="), "{challenge}");
    }
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn a_bound_token_needs_a_fresh_proof_by_its_key() {
    let mock = Mock::start().await;
    let v = verifier(&mock).await;
    let app = Router::new().route("/whoami", get(whoami)).layer(v.layer());
    let key = holder();
    let token = bound(&mock, &key);
    let dpop = format!("DPoP {token}");
    let good = proof(&key, "GET", WHOAMI, Some(&token), now());
    assert_eq!(call(&app, &dpop, Some(&good)).await.0, StatusCode::OK);

    let refused = |error: &str| (StatusCode::UNAUTHORIZED, json!({ "error": error }));
    assert_eq!(
        call(&app, &dpop, Some(&good)).await,
        refused("invalid_dpop_proof"),
        "replay"
    );
    assert_eq!(
        call(&app, &format!("Bearer {token}"), None).await,
        refused("invalid_token"),
        "as a bearer token"
    );
    assert_eq!(
        call(&app, &dpop, None).await,
        refused("invalid_dpop_proof"),
        "no proof"
    );
    let thief = holder();
    let cases = [
        (
            "another key",
            proof(&thief, "GET", WHOAMI, Some(&token), now()),
        ),
        (
            "wrong htm",
            proof(&key, "POST", WHOAMI, Some(&token), now()),
        ),
        (
            "wrong htu",
            proof(
                &key,
                "GET",
                "https://api.example/other",
                Some(&token),
                now(),
            ),
        ),
        (
            "another host",
            proof(
                &key,
                "GET",
                "https://evil.example/whoami",
                Some(&token),
                now(),
            ),
        ),
        (
            "wrong ath",
            proof(&key, "GET", WHOAMI, Some("other.token.here"), now()),
        ),
        (
            "stale",
            proof(&key, "GET", WHOAMI, Some(&token), now().plus(-61)),
        ),
        (
            "future",
            proof(&key, "GET", WHOAMI, Some(&token), now().plus(30)),
        ),
    ];
    for (what, p) in cases {
        assert_eq!(
            call(&app, &dpop, Some(&p)).await,
            refused("invalid_dpop_proof"),
            "{what}"
        );
    }
    // An unbound token presented as DPoP is refused too: nothing ties it to the proof.
    let unbound = mock.sign(&mock.claims("plain"));
    let p = proof(&key, "GET", WHOAMI, Some(&unbound), now());
    assert_eq!(
        call(&app, &format!("DPoP {unbound}"), Some(&p)).await,
        refused("invalid_token")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_replayed_in_a_burst_is_accepted_once() {
    const BURST: usize = 16;
    let mock = Mock::start().await;
    let v = verifier(&mock).await;
    let key = holder();
    let token = bound(&mock, &key);
    let p = proof(&key, "GET", WHOAMI, Some(&token), now());
    let barrier = Arc::new(Barrier::new(BURST));
    let accepted = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..BURST)
            .map(|_| {
                let (v, barrier, token, p) = (&v, Arc::clone(&barrier), &token, &p);
                scope.spawn(move || {
                    barrier.wait();
                    v.verify_presentation(&Presentation {
                        scheme: Scheme::DPoP,
                        token,
                        proof: Some(p),
                        method: "GET",
                        path: "/whoami",
                    })
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|r| r.join().unwrap())
            .filter(|r| match r {
                Ok(_) => true,
                Err(VerifyError::Replayed) => false,
                Err(e) => panic!("{e}"),
            })
            .count()
    });
    assert_eq!(accepted, 1);
}

/// Without a public URL (configured, or an http(s) audience) there is nothing to check `htu`
/// against: bound tokens are refused rather than checked against the request's own `Host`.
#[tokio::test]
async fn without_a_public_url_bound_tokens_are_refused() {
    let mock = Mock::start().await;
    let v = Verifier::builder(mock.issuer())
        .server(&mock.url)
        .audience("api")
        .client(CLIENT_ID, CLIENT_SECRET)
        .start()
        .await
        .unwrap();
    let key = holder();
    let token = mock.sign(&tessera_core::access::AccessClaims {
        aud: "api".into(),
        cnf: Some(Confirmation {
            jkt: thumbprint(&key.verifying_key()).unwrap(),
        }),
        ..mock.claims("bound")
    });
    let p = proof(&key, "GET", WHOAMI, Some(&token), now());
    let presented = Presentation {
        scheme: Scheme::DPoP,
        token: &token,
        proof: Some(&p),
        method: "GET",
        path: "/whoami",
    };
    assert!(matches!(
        v.verify_presentation(&presented),
        Err(VerifyError::NoPublicUrl)
    ));
    let v = Verifier::builder(mock.issuer())
        .server(&mock.url)
        .audience("api")
        .public_url("https://api.example/")
        .client(CLIENT_ID, CLIENT_SECRET)
        .start()
        .await
        .unwrap();
    v.verify_presentation(&presented).unwrap();
}
