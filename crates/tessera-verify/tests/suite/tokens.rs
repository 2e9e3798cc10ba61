//! Signature, key and claim checks, and that a verification costs no request.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tessera_core::access::AccessError;
use tessera_core::jose::JoseError;
use tessera_core::keys::KeyStatus;
use tessera_verify::{Verifier, VerifyError};

use crate::mock::{AUDIENCE, CLIENT_ID, CLIENT_SECRET, Mock, key, sign_with};

pub async fn verifier(mock: &Mock) -> Verifier {
    Verifier::builder(mock.issuer())
        .server(&mock.url)
        .audience(AUDIENCE)
        .client(CLIENT_ID, CLIENT_SECRET)
        .max_staleness(Duration::from_secs(2))
        .jwks_refetch_interval(Duration::from_millis(500))
        .start()
        .await
        .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_good_token_verifies_without_any_request() {
    let mock = Mock::start().await;
    let v = Verifier::builder(mock.issuer())
        .audience(AUDIENCE)
        .client(CLIENT_ID, CLIENT_SECRET)
        .start()
        .await
        .unwrap();
    mock.wait_for_streams(1).await;
    let token = mock.sign(&mock.claims("j1"));
    let before = mock.counters().total();
    for _ in 0..100 {
        let claims = v.verify(&token).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.jti, "j1");
    }
    assert_eq!(
        mock.counters().total(),
        before,
        "no request per verification"
    );
    assert_eq!(mock.counters().unauthorised.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn tokens_that_are_not_valid_access_tokens_for_us_are_refused() {
    let mock = Mock::start().await;
    let v = verifier(&mock).await;
    let past = mock.claims("j").exp.plus(-1000);
    let expired = tessera_core::access::AccessClaims {
        exp: past,
        iat: past.plus(-300),
        nbf: past.plus(-300),
        ..mock.claims("j")
    };
    let wrong_aud = tessera_core::access::AccessClaims {
        aud: "https://other.example".into(),
        ..mock.claims("j")
    };
    let wrong_iss = tessera_core::access::AccessClaims {
        iss: "https://evil.example".into(),
        ..mock.claims("j")
    };
    assert!(matches!(
        v.verify(&mock.sign(&expired)),
        Err(VerifyError::Invalid(AccessError::Expired))
    ));
    assert!(matches!(
        v.verify(&mock.sign(&wrong_aud)),
        Err(VerifyError::Invalid(AccessError::WrongAudience))
    ));
    assert!(matches!(
        v.verify(&mock.sign(&wrong_iss)),
        Err(VerifyError::Invalid(AccessError::WrongIssuer))
    ));

    // Forged: another key signs under the published kid.
    let mut forger = key(KeyStatus::Current);
    forger.kid = mock.current_kid().to_owned();
    assert!(matches!(
        v.verify(&sign_with(&forger, &mock.claims("j"))),
        Err(VerifyError::Invalid(AccessError::Jose(
            JoseError::BadSignature
        )))
    ));
    // Tampered payload under a genuine signature.
    let good = mock.sign(&mock.claims("j"));
    let mut parts: Vec<&str> = good.split('.').collect();
    let other = mock.sign(&tessera_core::access::AccessClaims {
        sub: "mallory".into(),
        ..mock.claims("j")
    });
    parts[1] = other.split('.').nth(1).unwrap();
    assert!(matches!(
        v.verify(&parts.join(".")),
        Err(VerifyError::Invalid(AccessError::Jose(
            JoseError::BadSignature
        )))
    ));
    // alg none, with and without a signature segment.
    let header = b64(format!(
        r#"{{"alg":"none","typ":"at+jwt","kid":"{}"}}"#,
        mock.current_kid()
    )
    .as_bytes());
    let payload = b64(&serde_json::to_vec(&mock.claims("j")).unwrap());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.{}", b64(b"sig")),
    ] {
        assert!(
            matches!(v.verify(&token), Err(VerifyError::Invalid(_))),
            "{token}"
        );
    }
    assert!(matches!(
        v.verify("not a token"),
        Err(VerifyError::Invalid(_))
    ));
    // The good one still passes: nothing above poisoned the verifier.
    assert!(v.verify(&good).is_ok());
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_a_bounded_rate() {
    let mock = Mock::start().await;
    let v = Verifier::builder(mock.issuer())
        .audience(AUDIENCE)
        .client(CLIENT_ID, CLIENT_SECRET)
        .jwks_refetch_interval(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let jwks = || mock.counters().jwks.load(Ordering::SeqCst);
    assert_eq!(jwks(), 1);
    let fresh = key(KeyStatus::Next);
    let token = sign_with(&fresh, &mock.claims("j"));
    assert!(matches!(
        v.verify(&token),
        Err(VerifyError::Invalid(AccessError::Jose(
            JoseError::UnknownKey
        )))
    ));
    // That refusal already asked for a refetch; the key was not published yet.
    for _ in 0..100 {
        if jwks() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(jwks(), 2);
    mock.publish(&fresh);
    // Hammering with unknown kids within the interval fetches nothing more.
    for _ in 0..100 {
        assert!(v.verify(&token).is_err());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(jwks(), 2, "at most one refetch per interval");
    // After the interval, the next unknown kid refetches and picks the published key up.
    let started = Instant::now();
    let claims = loop {
        match v.verify(&token) {
            Ok(claims) => break claims,
            Err(_) if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the published key was not picked up: {e}"),
        }
    };
    assert_eq!(claims.jti, "j");
    assert_eq!(jwks(), 3);
    assert!(v.kids().contains(&fresh.kid));
}
