//! Tests of DPoP proof verification: one accepted proof per algorithm, then every rule of
//! RFC 9449 §4.3 broken on its own.
use serde_json::{Value, json};

use super::*;
use crate::jose::{Algorithm, SigningKey, b64};

const NOW: UnixTime = UnixTime(1_700_000_000);
const TOKEN: &str = "eyJ.access.token";

fn key(alg: Algorithm) -> SigningKey {
    SigningKey::generate(alg, "client-key".into()).unwrap()
}

fn claims() -> ProofClaims<'static> {
    ProofClaims {
        jti: "proof-1",
        htm: "GET",
        htu: "https://auth.example/v1/userinfo",
        iat: NOW,
        access_token: Some(TOKEN),
        nonce: None,
    }
}

fn request() -> ProofRequest<'static> {
    ProofRequest {
        method: "GET",
        url: "https://auth.example/v1/userinfo",
        access_token: Some(TOKEN),
    }
}

/// The public JWK of `key` as a proof header carries it.
fn public(key: &SigningKey) -> Value {
    let mut jwk = key.verifying_key().public_jwk().unwrap();
    jwk.as_object_mut().unwrap().remove("kid");
    jwk
}

/// A proof with a header and payload written by the test, signed by `key`.
fn forged(key: &SigningKey, header: &Value, payload: &Value) -> String {
    key.sign_with_header(header, payload).unwrap()
}

fn payload() -> Value {
    json!({"jti": "proof-1", "htm": "GET", "htu": "https://auth.example/v1/userinfo",
           "iat": NOW.0, "ath": access_token_hash(TOKEN)})
}

fn refused(proof: &str) -> DpopError {
    verify_proof(proof, &request(), NOW).unwrap_err()
}

#[test]
fn a_proof_by_each_allowed_algorithm_verifies_and_names_its_key() {
    for alg in PROOF_ALGORITHMS {
        let key = key(alg);
        let proof = sign_proof(&key, &claims()).unwrap();
        let verified = verify_proof(&proof, &request(), NOW).unwrap();
        assert_eq!(
            Some(verified.jkt()),
            thumbprint(&key.verifying_key()).as_deref()
        );
        assert_eq!(verified.iat(), NOW);
        assert_eq!(verified.nonce(), None);
        verified
            .check_bound_to(&thumbprint(&key.verifying_key()).unwrap())
            .unwrap();
    }
}

/// RFC 7638 §3.1's example (the RSA key of RFC 7517 Appendix A.1) and RFC 8037 Appendix
/// A.3's (the Ed25519 key of its Appendix A.2).
#[test]
fn thumbprints_match_the_rfc_7638_and_8037_examples() {
    for (jwk, expected) in [
        (
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
        ),
        (
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
        ),
    ] {
        let key = VerifyingKey::from_jwk(&Jwk::from_json(jwk).unwrap()).unwrap();
        assert_eq!(thumbprint(&key).unwrap(), expected);
    }
}

#[test]
fn typ_must_be_exactly_dpop_jwt() {
    let key = key(Algorithm::EdDSA);
    for typ in [
        json!("JWT"),
        json!("at+jwt"),
        json!("application/dpop+jwt"),
        json!("DPOP+JWT"),
        json!(1),
    ] {
        let header = json!({"typ": typ, "alg": "EdDSA", "jwk": public(&key)});
        assert!(matches!(
            refused(&forged(&key, &header, &payload())),
            DpopError::WrongType
        ));
    }
    let header = json!({"alg": "EdDSA", "jwk": public(&key)});
    assert!(matches!(
        refused(&forged(&key, &header, &payload())),
        DpopError::WrongType
    ));
}

#[test]
fn alg_none_hmac_and_rsa_proofs_are_refused() {
    let header = json!({"typ": DPOP_TYP, "alg": "none", "jwk": {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}});
    let unsigned = format!(
        "{}.{}.",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(payload().to_string().as_bytes())
    );
    assert!(matches!(refused(&unsigned), DpopError::AlgorithmNotAllowed));

    let hmac = key(Algorithm::HS256);
    let secret = b64::encode(&hmac.secret_bytes_dangerously());
    let header = json!({"typ": DPOP_TYP, "alg": "HS256", "jwk": {"kty": "oct", "k": secret}});
    assert!(matches!(
        refused(&forged(&hmac, &header, &payload())),
        DpopError::AlgorithmNotAllowed
    ));
    let header = json!({"typ": DPOP_TYP, "alg": "HS256", "jwk": {"kty": "oct"}});
    assert!(matches!(
        refused(&forged(&hmac, &header, &payload())),
        DpopError::AlgorithmNotAllowed
    ));

    let rsa = key(Algorithm::RS256);
    let header = json!({"typ": DPOP_TYP, "alg": "RS256", "jwk": public(&rsa)});
    assert!(matches!(
        refused(&forged(&rsa, &header, &payload())),
        DpopError::AlgorithmNotAllowed
    ));
    assert!(matches!(
        sign_proof(&rsa, &claims()),
        Err(DpopError::AlgorithmNotAllowed)
    ));
}

#[test]
fn a_header_alg_other_than_the_keys_is_refused() {
    let ed = key(Algorithm::EdDSA);
    let header = json!({"typ": DPOP_TYP, "alg": "ES256", "jwk": public(&ed)});
    assert!(matches!(
        refused(&forged(&ed, &header, &payload())),
        DpopError::Jose(JoseError::AlgorithmMismatch)
    ));
}

#[test]
fn a_missing_or_private_jwk_is_refused() {
    let key = key(Algorithm::ES256);
    let header = json!({"typ": DPOP_TYP, "alg": "ES256"});
    assert!(matches!(
        refused(&forged(&key, &header, &payload())),
        DpopError::MissingKey
    ));
    let header = json!({"typ": DPOP_TYP, "alg": "ES256", "jwk": "not an object"});
    assert!(matches!(
        refused(&forged(&key, &header, &payload())),
        DpopError::MissingKey
    ));
    for private in PRIVATE_MEMBERS {
        let mut jwk = public(&key);
        jwk.as_object_mut()
            .unwrap()
            .insert(private.into(), "AAAA".into());
        let header = json!({"typ": DPOP_TYP, "alg": "ES256", "jwk": jwk});
        assert!(
            matches!(
                refused(&forged(&key, &header, &payload())),
                DpopError::PrivateKey
            ),
            "{private}"
        );
    }
}

#[test]
fn a_proof_signed_by_another_key_than_its_jwk_is_refused() {
    let (honest, thief) = (key(Algorithm::EdDSA), key(Algorithm::EdDSA));
    let header = json!({"typ": DPOP_TYP, "alg": "EdDSA", "jwk": public(&honest)});
    assert!(matches!(
        refused(&forged(&thief, &header, &payload())),
        DpopError::Jose(JoseError::BadSignature)
    ));
}

#[test]
fn a_proof_by_another_key_than_the_binding_is_refused() {
    let (honest, thief) = (key(Algorithm::EdDSA), key(Algorithm::ES256));
    let proof = sign_proof(&thief, &claims()).unwrap();
    let verified = verify_proof(&proof, &request(), NOW).unwrap();
    let bound = thumbprint(&honest.verifying_key()).unwrap();
    assert!(matches!(
        verified.check_bound_to(&bound),
        Err(DpopError::KeyMismatch)
    ));
}

#[test]
fn jti_must_be_a_bounded_non_empty_string() {
    let key = key(Algorithm::EdDSA);
    let header = json!({"typ": DPOP_TYP, "alg": "EdDSA", "jwk": public(&key)});
    let long = "x".repeat(MAX_JTI_BYTES + 1);
    for jti in [json!(null), json!(""), json!(7), json!(long)] {
        let mut payload = payload();
        payload["jti"] = jti;
        assert!(matches!(
            refused(&forged(&key, &header, &payload)),
            DpopError::BadClaim("jti")
        ));
    }
    let mut payload = payload();
    payload.as_object_mut().unwrap().remove("jti");
    assert!(matches!(
        refused(&forged(&key, &header, &payload)),
        DpopError::BadClaim("jti")
    ));
}

#[test]
fn htm_must_be_the_exact_method() {
    let key = key(Algorithm::EdDSA);
    for htm in ["POST", "get", "GET "] {
        let proof = sign_proof(&key, &ProofClaims { htm, ..claims() }).unwrap();
        assert!(matches!(refused(&proof), DpopError::WrongMethod), "{htm}");
    }
}

#[test]
fn htu_is_compared_without_query_and_fragment_after_normalising() {
    let key = key(Algorithm::EdDSA);
    for htu in [
        "https://auth.example/v1/userinfo",
        "HTTPS://Auth.EXAMPLE:443/v1/userinfo",
        "https://auth.example/v1/userinfo?x=1#frag",
    ] {
        let proof = sign_proof(&key, &ProofClaims { htu, ..claims() }).unwrap();
        verify_proof(&proof, &request(), NOW).unwrap();
    }
    for htu in [
        "http://auth.example/v1/userinfo",
        "https://auth.example:8443/v1/userinfo",
        "https://evil.example/v1/userinfo",
        "https://auth.example/v1/userinfo/",
        "https://auth.example/v1/USERINFO",
        "https://user@auth.example/v1/userinfo",
        "/v1/userinfo",
        "not a url",
    ] {
        let proof = sign_proof(&key, &ProofClaims { htu, ..claims() }).unwrap();
        assert!(matches!(refused(&proof), DpopError::WrongUrl), "{htu}");
    }
    assert_eq!(
        normalize_htu("HTTP://Example.COM:80").unwrap(),
        "http://example.com/"
    );
    assert!(matches!(normalize_htu("ftp://x/"), Err(DpopError::BadUrl)));
}

#[test]
fn iat_must_be_recent_and_not_ahead() {
    let key = key(Algorithm::EdDSA);
    for (iat, ok) in [
        (NOW.plus(-MAX_PROOF_AGE_SECS), true),
        (NOW.plus(PROOF_LEEWAY_SECS), true),
        (NOW.plus(-MAX_PROOF_AGE_SECS - 1), false),
        (NOW.plus(PROOF_LEEWAY_SECS + 1), false),
        (NOW.plus(-86_400), false),
    ] {
        let proof = sign_proof(&key, &ProofClaims { iat, ..claims() }).unwrap();
        let result = verify_proof(&proof, &request(), NOW);
        match (ok, result) {
            (true, Ok(_)) => {}
            (false, Err(DpopError::Stale)) if iat < NOW => {}
            (false, Err(DpopError::FromTheFuture)) if iat > NOW => {}
            (_, other) => panic!("iat {iat:?}: {other:?}"),
        }
    }
    let header = json!({"typ": DPOP_TYP, "alg": "EdDSA", "jwk": public(&key)});
    for iat in [json!("1700000000"), json!(1.7e9), json!(null)] {
        let mut payload = payload();
        payload["iat"] = iat;
        assert!(matches!(
            refused(&forged(&key, &header, &payload)),
            DpopError::BadClaim("iat")
        ));
    }
}

#[test]
fn ath_must_hash_the_presented_access_token() {
    let key = key(Algorithm::EdDSA);
    let other = sign_proof(
        &key,
        &ProofClaims {
            access_token: Some("another.access.token"),
            ..claims()
        },
    )
    .unwrap();
    assert!(matches!(refused(&other), DpopError::WrongAccessTokenHash));
    let missing = sign_proof(
        &key,
        &ProofClaims {
            access_token: None,
            ..claims()
        },
    )
    .unwrap();
    assert!(matches!(refused(&missing), DpopError::WrongAccessTokenHash));
    // At the token endpoint no access token is presented, so no `ath` is asked for.
    let request = ProofRequest {
        access_token: None,
        ..request()
    };
    verify_proof(&missing, &request, NOW).unwrap();
}

#[test]
fn a_nonce_is_returned_and_a_malformed_one_refused() {
    let key = key(Algorithm::ES256);
    let proof = sign_proof(
        &key,
        &ProofClaims {
            nonce: Some("n-1"),
            ..claims()
        },
    )
    .unwrap();
    assert_eq!(
        verify_proof(&proof, &request(), NOW).unwrap().nonce(),
        Some("n-1")
    );
    let header = json!({"typ": DPOP_TYP, "alg": "ES256", "jwk": public(&key)});
    for nonce in [json!(1), json!(""), json!("n".repeat(MAX_NONCE_BYTES + 1))] {
        let mut payload = payload();
        payload["nonce"] = nonce;
        assert!(matches!(
            refused(&forged(&key, &header, &payload)),
            DpopError::BadClaim("nonce")
        ));
    }
}

#[test]
fn malformed_and_oversized_proofs_are_refused() {
    for bad in ["", "a", "a.b", "a.b.c", "....", "eyJ9.e30.AA"] {
        assert!(matches!(refused(bad), DpopError::Jose(_)), "{bad:?}");
    }
    let huge = "a".repeat(jose::MAX_TOKEN_BYTES + 1);
    assert!(matches!(
        refused(&huge),
        DpopError::Jose(JoseError::TooLarge)
    ));
}

#[test]
fn replay_keys_tell_proofs_apart_by_key_and_jti() {
    let (a, b) = (key(Algorithm::EdDSA), key(Algorithm::EdDSA));
    let replay = |key: &SigningKey, jti: &'static str| {
        let proof = sign_proof(key, &ProofClaims { jti, ..claims() }).unwrap();
        verify_proof(&proof, &request(), NOW).unwrap().replay_key()
    };
    let first = replay(&a, "one");
    assert_eq!(first, replay(&a, "one"));
    assert_ne!(first.0, replay(&a, "two").0);
    assert_ne!(first.0, replay(&b, "one").0);
    assert_eq!(first.1, NOW.plus(MAX_PROOF_AGE_SECS + 1));
}

#[test]
fn debug_of_a_proof_request_never_prints_the_access_token() {
    let request = ProofRequest {
        access_token: Some("eyJ.secret-token.sig"),
        ..request()
    };
    let printed = format!("{request:?}");
    assert!(!printed.contains("secret-token"), "{printed}");
    assert!(printed.contains("<redacted>") && printed.contains(request.method));
}
