//! Tests of RFC 9068 access-token issuance and verification.
use serde_json::json;

use super::*;
use crate::jose::{Algorithm, b64};
use crate::keys::{KeyRecord, KeyStatus};

const NOW: UnixTime = UnixTime(1_700_000_000);

fn ring_with(alg: Algorithm) -> (KeyRing, KeyRecord) {
    let record = KeyRing::generate_record(alg, KeyStatus::Current, NOW).unwrap();
    (
        KeyRing::from_records(std::slice::from_ref(&record)).unwrap(),
        record,
    )
}

fn policy() -> AccessPolicy {
    AccessPolicy {
        issuer: "https://auth.example".into(),
        audience: "api".into(),
        leeway_secs: 30,
    }
}

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "https://auth.example".into(),
        sub: "user-1".into(),
        aud: "api".into(),
        exp: NOW.plus(600),
        iat: NOW,
        nbf: NOW,
        jti: "jti-1".into(),
        sid: Some("sid-1".into()),
        scope: Some("read write".into()),
        client_id: "first-party".into(),
        username: Some("alice".into()),
        cnf: None,
    }
}

/// Signs an arbitrary payload with the ring's current key and the given `typ`.
fn sign_raw(ring: &KeyRing, typ: &str, payload: &Value) -> String {
    ring.current().unwrap().sign_compact(typ, payload).unwrap()
}

#[test]
fn round_trip_every_algorithm_and_report_sizes() {
    for alg in Algorithm::ALL {
        let (ring, _) = ring_with(alg);
        let token = issue(ring.current().unwrap(), &claims()).unwrap();
        assert_eq!(verify(&token, &ring, &policy(), NOW).unwrap(), claims());
        println!("access token size {alg}: {} bytes", token.len());
    }
    let (ring, _) = ring_with(Algorithm::EdDSA);
    let minimal = AccessClaims {
        sid: None,
        scope: None,
        username: None,
        cnf: None,
        ..claims()
    };
    let token = issue(ring.current().unwrap(), &minimal).unwrap();
    assert_eq!(verify(&token, &ring, &policy(), NOW).unwrap(), minimal);
}

#[test]
fn time_rules_with_bounded_leeway() {
    let (ring, _) = ring_with(Algorithm::EdDSA);
    let token = issue(ring.current().unwrap(), &claims()).unwrap();
    let p = policy(); // leeway 30
    let exp = NOW.plus(600);
    assert!(verify(&token, &ring, &p, exp.plus(29)).is_ok());
    assert!(matches!(
        verify(&token, &ring, &p, exp.plus(30)),
        Err(AccessError::Expired)
    ));
    assert!(matches!(
        verify(&token, &ring, &p, exp.plus(31)),
        Err(AccessError::Expired)
    ));
    // Before nbf: leeway applies, then NotYetValid.
    assert!(verify(&token, &ring, &p, NOW.plus(-30)).is_ok());
    assert!(matches!(
        verify(&token, &ring, &p, NOW.plus(-31)),
        Err(AccessError::NotYetValid)
    ));
    // A huge configured leeway is capped at 60 s; a negative one counts as 0.
    let lax = AccessPolicy {
        leeway_secs: 86_400,
        ..policy()
    };
    assert!(verify(&token, &ring, &lax, exp.plus(59)).is_ok());
    assert!(matches!(
        verify(&token, &ring, &lax, exp.plus(60)),
        Err(AccessError::Expired)
    ));
    let strict = AccessPolicy {
        leeway_secs: -5,
        ..policy()
    };
    assert!(matches!(
        verify(&token, &ring, &strict, exp),
        Err(AccessError::Expired)
    ));
    assert!(verify(&token, &ring, &strict, exp.plus(-1)).is_ok());
    // iat in the future while nbf is fine.
    let future = AccessClaims {
        iat: NOW.plus(120),
        nbf: NOW,
        ..claims()
    };
    let token = issue(ring.current().unwrap(), &future).unwrap();
    assert!(matches!(
        verify(&token, &ring, &p, NOW),
        Err(AccessError::IssuedInFuture)
    ));
}

#[test]
fn issuer_and_audience() {
    let (ring, _) = ring_with(Algorithm::EdDSA);
    let token = issue(ring.current().unwrap(), &claims()).unwrap();
    let other_iss = AccessPolicy {
        issuer: "https://evil.example".into(),
        ..policy()
    };
    assert!(matches!(
        verify(&token, &ring, &other_iss, NOW),
        Err(AccessError::WrongIssuer)
    ));
    let other_aud = AccessPolicy {
        audience: "billing".into(),
        ..policy()
    };
    assert!(matches!(
        verify(&token, &ring, &other_aud, NOW),
        Err(AccessError::WrongAudience)
    ));

    let mut payload = serde_json::to_value(claims()).unwrap();
    payload["aud"] = json!(["other", "api"]);
    let token = sign_raw(&ring, ACCESS_TOKEN_TYP, &payload);
    assert_eq!(verify(&token, &ring, &policy(), NOW).unwrap().aud, "api");
    for bad_aud in [json!([]), json!(["api", 1]), json!(7), Value::Null] {
        payload["aud"] = bad_aud;
        let token = sign_raw(&ring, ACCESS_TOKEN_TYP, &payload);
        assert!(matches!(
            verify(&token, &ring, &policy(), NOW),
            Err(AccessError::BadClaims("aud"))
        ));
    }
}

#[test]
fn claim_types_are_strict() {
    let (ring, _) = ring_with(Algorithm::EdDSA);
    let base = serde_json::to_value(claims()).unwrap();
    for name in ["exp", "iat", "nbf"] {
        for bad in [
            json!("1700000600"),
            json!(1_700_000_600.0),
            json!(-1),
            json!(1.7e9),
            json!(u64::MAX),
            Value::Null,
        ] {
            let mut payload = base.clone();
            payload[name] = bad.clone();
            let token = sign_raw(&ring, ACCESS_TOKEN_TYP, &payload);
            let res = verify(&token, &ring, &policy(), NOW);
            assert!(
                matches!(res, Err(AccessError::BadClaims(n)) if n == name),
                "{name}={bad}: {res:?}"
            );
        }
    }
    for name in ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id"] {
        let mut payload = base.clone();
        payload.as_object_mut().unwrap().remove(name);
        let token = sign_raw(&ring, ACCESS_TOKEN_TYP, &payload);
        assert!(
            matches!(
                verify(&token, &ring, &policy(), NOW),
                Err(AccessError::BadClaims(_))
            ),
            "{name}"
        );
    }
    let mut payload = base;
    payload["sid"] = json!(5);
    let token = sign_raw(&ring, ACCESS_TOKEN_TYP, &payload);
    assert!(matches!(
        verify(&token, &ring, &policy(), NOW),
        Err(AccessError::BadClaims("sid"))
    ));
}

#[test]
fn typ_confusion_is_refused() {
    let (ring, _) = ring_with(Algorithm::EdDSA);
    let payload = serde_json::to_value(claims()).unwrap();
    for typ in ["AT+JWT", "application/at+jwt", "Application/AT+JWT"] {
        assert!(
            verify(&sign_raw(&ring, typ, &payload), &ring, &policy(), NOW).is_ok(),
            "{typ}"
        );
    }
    for typ in [
        "JWT",
        "jwt",
        "id_token",
        "at+jwt ",
        "application/jwt",
        "logout+jwt",
        "",
    ] {
        let res = verify(&sign_raw(&ring, typ, &payload), &ring, &policy(), NOW);
        assert!(
            matches!(res, Err(AccessError::Jose(JoseError::WrongType))),
            "{typ}"
        );
    }
    // No typ at all.
    let key = ring.current().unwrap();
    let header = b64::encode(format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, key.kid()).as_bytes());
    let input = format!("{header}.{}", b64::encode(payload.to_string().as_bytes()));
    let token = format!(
        "{input}.{}",
        b64::encode(&key.sign_raw(input.as_bytes()).unwrap())
    );
    assert!(matches!(
        verify(&token, &ring, &policy(), NOW),
        Err(AccessError::Jose(JoseError::WrongType))
    ));
}

#[test]
fn an_empty_payload_is_a_valid_jws_but_never_an_access_token() {
    let (ring, _) = ring_with(Algorithm::EdDSA);
    let key = ring.current().unwrap();
    // Everything an access token needs in its header, and nothing in its payload.
    let header = format!(
        r#"{{"alg":"EdDSA","kid":"{}","typ":"{ACCESS_TOKEN_TYP}"}}"#,
        key.kid()
    );
    let input = format!("{}.", b64::encode(header.as_bytes()));
    let token = format!(
        "{input}.{}",
        b64::encode(&key.sign_raw(input.as_bytes()).unwrap())
    );
    let jws = jose::verify_compact(&token, |kid| kid.and_then(|k| ring.verifier(k))).unwrap();
    assert!(jws.payload().is_empty());
    assert!(matches!(
        verify(&token, &ring, &policy(), NOW),
        Err(AccessError::Jose(JoseError::BadJson))
    ));
    // The public helper makes the same shape without `typ`: refused for its type first.
    let untyped = key.sign_bytes(b"").unwrap();
    assert!(untyped.contains(".."));
    assert!(matches!(
        verify(&untyped, &ring, &policy(), NOW),
        Err(AccessError::Jose(JoseError::WrongType))
    ));
}

#[test]
fn kid_is_required_and_must_be_trusted() {
    let (ring, record) = ring_with(Algorithm::EdDSA);
    let token = issue(ring.current().unwrap(), &claims()).unwrap();
    // A ring that does not know (or has revoked) the key refuses the token.
    let (other_ring, _) = ring_with(Algorithm::EdDSA);
    assert!(matches!(
        verify(&token, &other_ring, &policy(), NOW),
        Err(AccessError::Jose(JoseError::UnknownKey))
    ));
    let mut revoked = record.clone();
    revoked.status = KeyStatus::Revoked;
    let revoked_ring = KeyRing::from_records(&[revoked]).unwrap();
    assert!(matches!(
        verify(&token, &revoked_ring, &policy(), NOW),
        Err(AccessError::Jose(JoseError::UnknownKey))
    ));
    // A token without kid is refused even though the ring holds the signing key.
    let key =
        crate::jose::SigningKey::from_secret(record.alg, String::new(), &record.secret).unwrap();
    let no_kid = key
        .sign_compact(ACCESS_TOKEN_TYP, &serde_json::to_value(claims()).unwrap())
        .unwrap();
    assert!(matches!(
        verify(&no_kid, &ring, &policy(), NOW),
        Err(AccessError::Jose(JoseError::UnknownKey))
    ));
}

#[test]
fn hs256_forged_with_public_key_is_refused_by_asymmetric_ring() {
    use aws_lc_rs::hmac;
    for alg in [Algorithm::EdDSA, Algorithm::RS256] {
        let (ring, record) = ring_with(alg);
        let jwk = ring.verifier(&record.kid).unwrap().public_jwk().unwrap();
        let public = b64::decode(
            jwk.get("x")
                .or_else(|| jwk.get("n"))
                .and_then(Value::as_str)
                .unwrap(),
        )
        .unwrap();
        let header = b64::encode(
            format!(r#"{{"alg":"HS256","kid":"{}","typ":"at+jwt"}}"#, record.kid).as_bytes(),
        );
        let body = b64::encode(serde_json::to_vec(&claims()).unwrap().as_slice());
        let input = format!("{header}.{body}");
        for secret in [public.as_slice(), jwk.to_string().as_bytes()] {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
            let forged = format!("{input}.{}", b64::encode(tag.as_ref()));
            let res = verify(&forged, &ring, &policy(), NOW);
            assert!(
                matches!(res, Err(AccessError::Jose(JoseError::AlgorithmMismatch))),
                "{alg}"
            );
        }
    }
}

#[test]
fn opaque_and_garbage_tokens_fail_cleanly() {
    let (ring, _) = ring_with(Algorithm::EdDSA);
    for token in [
        "tss_0123456789abcdef",
        "trt_0123456789abcdef",
        "",
        "a.b",
        "....",
        "eyJ.eyJ.x",
    ] {
        assert!(
            matches!(
                verify(token, &ring, &policy(), NOW),
                Err(AccessError::Jose(_))
            ),
            "{token}"
        );
    }
}

#[test]
fn verify_with_public_keys_runs_the_same_checks() {
    let (ring, record) = ring_with(Algorithm::EdDSA);
    let set = crate::keys::PublicKeySet::from_jwks(ring.jwks()).unwrap();
    let token = issue(ring.current().unwrap(), &claims()).unwrap();
    let lookup = |kid: &str| set.get(kid);
    assert_eq!(
        verify_with(&token, lookup, &policy(), NOW).unwrap(),
        claims()
    );
    let asked = std::cell::RefCell::new(Vec::new());
    let refused = verify_with(
        &token,
        |kid: &str| {
            asked.borrow_mut().push(kid.to_owned());
            None
        },
        &policy(),
        NOW,
    );
    assert!(matches!(
        refused,
        Err(AccessError::Jose(JoseError::UnknownKey))
    ));
    assert_eq!(asked.into_inner(), [record.kid]);
    let late = NOW.plus(3600);
    assert!(matches!(
        verify_with(&token, lookup, &policy(), late),
        Err(AccessError::Expired)
    ));
    let other = AccessPolicy {
        audience: "other".into(),
        ..policy()
    };
    assert!(matches!(
        verify_with(&token, lookup, &other, NOW),
        Err(AccessError::WrongAudience)
    ));
    let id_token = sign_raw(&ring, "JWT", &serde_json::to_value(claims()).unwrap());
    assert!(matches!(
        verify_with(&id_token, lookup, &policy(), NOW),
        Err(AccessError::Jose(JoseError::WrongType))
    ));
}

#[test]
fn a_bound_token_round_trips_its_cnf_and_a_malformed_cnf_is_refused() {
    let (ring, _) = ring_with(Algorithm::EdDSA);
    let bound = AccessClaims {
        cnf: Some(Confirmation {
            jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into(),
        }),
        ..claims()
    };
    let token = issue(ring.current().unwrap(), &bound).unwrap();
    assert_eq!(verify(&token, &ring, &policy(), NOW).unwrap(), bound);
    for cnf in [
        json!("jkt"),
        json!({}),
        json!({"jkt": 1}),
        json!({"jkt": ""}),
        json!({"x5t#S256": "abc"}),
    ] {
        let mut payload = serde_json::to_value(claims()).unwrap();
        payload["cnf"] = cnf.clone();
        let token = sign_raw(&ring, ACCESS_TOKEN_TYP, &payload);
        assert!(
            matches!(
                verify(&token, &ring, &policy(), NOW),
                Err(AccessError::BadClaims("cnf"))
            ),
            "{cnf}"
        );
    }
}
