use super::*;
use crate::jose::verify_compact;

const T0: UnixTime = UnixTime(1_700_000_000);

fn record(alg: Algorithm, status: KeyStatus) -> KeyRecord {
    KeyRing::generate_record(alg, status, T0).unwrap()
}

#[test]
fn status_names_round_trip() {
    for s in [
        KeyStatus::Next,
        KeyStatus::Current,
        KeyStatus::Retiring,
        KeyStatus::Retired,
        KeyStatus::Revoked,
    ] {
        assert_eq!(KeyStatus::parse(s.as_str()), Some(s));
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    assert_eq!(KeyStatus::parse("Current"), None);
}

#[test]
fn generated_records_have_random_kids_and_redacted_debug() {
    let a = record(Algorithm::EdDSA, KeyStatus::Current);
    let b = record(Algorithm::EdDSA, KeyStatus::Current);
    assert_ne!(a.kid, b.kid);
    assert_eq!(b64::decode(&a.kid).unwrap().len(), 16);
    let text = format!("{a:?}");
    assert!(text.contains("<redacted>") && !text.contains(&format!("{:?}", a.secret.as_slice())));
}

#[test]
fn rotation_statuses_decide_what_keys_do() {
    let next = record(Algorithm::EdDSA, KeyStatus::Next);
    let current = record(Algorithm::EdDSA, KeyStatus::Current);
    let retiring = record(Algorithm::ES256, KeyStatus::Retiring);
    let revoked = record(Algorithm::EdDSA, KeyStatus::Revoked);
    let retired = record(Algorithm::EdDSA, KeyStatus::Retired);
    let hmac = record(Algorithm::HS256, KeyStatus::Retiring);
    let ring = KeyRing::from_records(&[
        next.clone(),
        current.clone(),
        retiring.clone(),
        revoked.clone(),
        retired.clone(),
        hmac.clone(),
    ])
    .unwrap();
    assert_eq!(ring.current().unwrap().kid(), current.kid);
    for r in [&next, &current, &retiring, &hmac] {
        assert_eq!(ring.verifier(&r.kid).unwrap().alg(), r.alg);
    }
    assert!(ring.verifier(&revoked.kid).is_none());
    assert!(ring.verifier(&retired.kid).is_none());
    assert!(ring.verifier("nope").is_none());

    let jwks = ring.jwks();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        [
            next.kid.as_str(),
            current.kid.as_str(),
            retiring.kid.as_str()
        ]
    );
    for k in jwks["keys"].as_array().unwrap() {
        assert!(k.get("d").is_none() && k.get("k").is_none());
    }

    // A token signed by a key that is later revoked no longer verifies.
    let token = ring
        .current()
        .unwrap()
        .sign_compact("JWT", &json!({}))
        .unwrap();
    assert!(verify_compact(&token, |kid| kid.and_then(|k| ring.verifier(k))).is_ok());
    let mut revoked_now = current.clone();
    revoked_now.status = KeyStatus::Revoked;
    let ring2 = KeyRing::from_records(&[next, revoked_now, retiring]).unwrap();
    assert!(ring2.current().is_none());
    let res = verify_compact(&token, |kid| kid.and_then(|k| ring2.verifier(k)));
    assert!(matches!(res, Err(JoseError::UnknownKey)));
}

#[test]
fn inconsistent_rings_are_refused() {
    let a = record(Algorithm::EdDSA, KeyStatus::Current);
    let b = record(Algorithm::EdDSA, KeyStatus::Current);
    assert!(matches!(
        KeyRing::from_records(&[a.clone(), b]),
        Err(JoseError::InvalidKeyRing(_))
    ));
    let mut dup = record(Algorithm::EdDSA, KeyStatus::Next);
    dup.kid = a.kid.clone();
    assert!(matches!(
        KeyRing::from_records(&[a.clone(), dup]),
        Err(JoseError::DuplicateKid)
    ));
    let mut short = record(Algorithm::HS256, KeyStatus::Next);
    short.secret = Zeroizing::new(vec![1; 16]);
    assert!(matches!(
        KeyRing::from_records(&[short]),
        Err(JoseError::KeyTooShort)
    ));
    let mut wrong = a;
    wrong.alg = Algorithm::ES256;
    assert!(matches!(
        KeyRing::from_records(&[wrong]),
        Err(JoseError::InvalidKey)
    ));
}

#[test]
fn public_key_set_trusts_exactly_the_published_keys() {
    let current = record(Algorithm::EdDSA, KeyStatus::Current);
    let next = record(Algorithm::ES256, KeyStatus::Next);
    let ring = KeyRing::from_records(&[current.clone(), next.clone()]).unwrap();
    let text = serde_json::to_vec(&ring.jwks()).unwrap();
    let set = PublicKeySet::from_jwks_json(&text).unwrap();
    assert_eq!(set.len(), 2);
    let mut kids: Vec<&str> = set.kids().collect();
    kids.sort_unstable();
    let mut expected = [current.kid.as_str(), next.kid.as_str()];
    expected.sort_unstable();
    assert_eq!(kids, expected);
    assert_eq!(set.get(&next.kid).unwrap().alg(), Algorithm::ES256);
    assert!(set.get("nope").is_none());

    let token = ring
        .current()
        .unwrap()
        .sign_compact("JWT", &json!({}))
        .unwrap();
    assert!(verify_compact(&token, |kid| kid.and_then(|k| set.get(k))).is_ok());
    assert!(
        PublicKeySet::from_jwks(json!({ "keys": [] }))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn public_key_set_refuses_documents_it_cannot_wholly_trust() {
    let ring = KeyRing::from_records(&[record(Algorithm::EdDSA, KeyStatus::Current)]).unwrap();
    let good = ring.jwks()["keys"][0].clone();
    let with = |member: &str, value: Value| {
        let mut key = good.clone();
        key[member] = value;
        json!({ "keys": [key] })
    };
    let mut no_kid = good.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    let hmac = json!({"kty": "oct", "k": b64::encode(&[7u8; 32]), "kid": "h", "alg": "HS256"});
    let cases = [
        (with("use", json!("enc")), "use enc"),
        (with("key_ops", json!(["sign"])), "key_ops without verify"),
        (with("alg", json!("none")), "alg none"),
        (with("x", json!("AAAA")), "short key"),
        (
            json!({ "keys": [good.clone(), good.clone()] }),
            "duplicate kid",
        ),
        (json!({ "keys": [hmac] }), "symmetric key"),
        (json!({ "keys": [no_kid] }), "no kid"),
        (json!({ "keys": {} }), "keys not an array"),
        (json!({}), "no keys"),
        (json!([good]), "not an object"),
    ];
    for (document, why) in cases {
        assert!(PublicKeySet::from_jwks(document).is_err(), "{why}");
    }
    assert!(matches!(
        PublicKeySet::from_jwks_json(br#"{"keys":[],"keys":[]}"#),
        Err(JoseError::DuplicateKey)
    ));
    assert!(matches!(
        PublicKeySet::from_jwks(json!({ "keys": [good.clone(), good] })),
        Err(JoseError::DuplicateKid)
    ));
}
