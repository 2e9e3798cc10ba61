//! Tests of the strict JOSE rules: every rule has a test that breaks it.

use aws_lc_rs::hmac;
use serde_json::json;

use super::*;

/// Builds `b64(header).b64(payload).b64(sig)` from raw JSON text, signing with `key`.
fn forge(key: &SigningKey, header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(payload.as_bytes())
    );
    let sig = key.sign_raw(input.as_bytes()).unwrap();
    format!("{input}.{}", b64::encode(&sig))
}

/// An HS256 token MACed with arbitrary bytes — the attacker's tool in key-confusion attacks.
fn forge_hs256(secret: &[u8], header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(payload.as_bytes())
    );
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", b64::encode(tag.as_ref()))
}

fn key(alg: Algorithm) -> SigningKey {
    SigningKey::generate(alg, format!("kid-{alg}")).unwrap()
}

fn verify_with(token: &str, vk: &VerifyingKey) -> Result<VerifiedJws, JoseError> {
    verify_compact(token, |_| Some(vk))
}

#[test]
fn algorithm_names_are_exact() {
    for alg in Algorithm::ALL {
        assert_eq!(Algorithm::parse(alg.as_str()), Some(alg));
    }
    for bad in [
        "none", "None", "NONE", "nOnE", "", "eddsa", "EDDSA", "hs256", "HS384", "ES512", "RS256 ",
        "PS384",
    ] {
        assert_eq!(Algorithm::parse(bad), None, "{bad}");
    }
}

#[test]
fn round_trip_every_algorithm_and_reload_from_secret() {
    for alg in Algorithm::ALL {
        let sk = key(alg);
        let token = sk
            .sign_compact("JWT", &json!({"sub": "alice", "n": 1}))
            .unwrap();
        let vk = sk.verifying_key();
        let verified =
            verify_compact(&token, |kid| (kid == Some(sk.kid())).then_some(&vk)).unwrap();
        assert_eq!(verified.header().alg, alg);
        assert_eq!(verified.header().kid.as_deref(), Some(sk.kid()));
        assert_eq!(verified.header().typ.as_deref(), Some("JWT"));
        assert_eq!(verified.payload_json().unwrap()["sub"], "alice");

        let reloaded =
            SigningKey::from_secret(alg, sk.kid().into(), &sk.secret_bytes_dangerously()).unwrap();
        let again = reloaded.sign_compact("JWT", &json!({"x": true})).unwrap();
        verify_with(&again, &vk).unwrap();

        // The published JWK rebuilds an equivalent verifier (asymmetric keys only).
        match vk.public_jwk() {
            Some(jwk) => {
                assert_eq!(jwk["alg"], alg.as_str());
                assert_eq!(jwk["use"], "sig");
                assert!(jwk.get("d").is_none() && jwk.get("k").is_none());
                let from_jwk = VerifyingKey::from_jwk(&Jwk::from_value(jwk).unwrap()).unwrap();
                assert_eq!(from_jwk.alg(), alg);
                verify_with(&token, &from_jwk).unwrap();
            }
            None => assert_eq!(alg, Algorithm::HS256),
        }
    }
}

#[test]
fn debug_never_shows_key_material() {
    let sk = key(Algorithm::HS256);
    let text = format!("{sk:?} {:?}", sk.verifying_key());
    assert!(text.contains("kid-HS256") && text.contains("HS256"));
    let secret = b64::encode(&sk.secret_bytes_dangerously());
    let jwk = Jwk::from_json(&format!(r#"{{"kty":"oct","k":"{secret}"}}"#)).unwrap();
    assert!(!format!("{jwk:?}").contains(&secret));
}

#[test]
fn size_bound_is_checked_first() {
    let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
    let vk = key(Algorithm::EdDSA).verifying_key();
    assert!(matches!(verify_with(&huge, &vk), Err(JoseError::TooLarge)));
    assert!(matches!(
        decode_unverified_dangerously(&huge),
        Err(JoseError::TooLarge)
    ));
    // A signed token over the bound is refused at signing time too.
    let big = json!({"blob": "x".repeat(MAX_TOKEN_BYTES)});
    assert!(matches!(
        key(Algorithm::EdDSA).sign_compact("JWT", &big),
        Err(JoseError::TooLarge)
    ));
}

#[test]
fn segment_rules() {
    let sk = key(Algorithm::EdDSA);
    let vk = sk.verifying_key();
    let good = sk.sign_compact("JWT", &json!({"a": 1})).unwrap();
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    for bad in [
        String::new(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}."),
        format!("{h}.{p}.{s}.{s}"),
        format!(".{p}.{s}"),
        format!("{h}.{p}."),
        "tss_abcdefghijklmnop".to_owned(),
        "trt_abcdefghijklmnop".to_owned(),
    ] {
        assert!(
            matches!(verify_with(&bad, &vk), Err(JoseError::Malformed(_))),
            "{bad}"
        );
    }
    // An empty payload is well-formed (RFC 7515); this one carries another payload's
    // signature, so only the signature check refuses it.
    assert!(matches!(
        verify_with(&format!("{h}..{s}"), &vk),
        Err(JoseError::BadSignature)
    ));
}

#[test]
fn an_empty_payload_verifies_but_is_not_claims() {
    let sk = key(Algorithm::EdDSA);
    let token = forge(&sk, r#"{"alg":"EdDSA","kid":"kid-EdDSA"}"#, "");
    assert!(token.contains(".."), "{token}");
    let verified = verify_with(&token, &sk.verifying_key()).unwrap();
    assert!(verified.payload().is_empty());
    assert!(matches!(verified.payload_json(), Err(JoseError::BadJson)));
}

#[test]
fn base64_must_be_canonical() {
    let sk = key(Algorithm::EdDSA);
    let vk = sk.verifying_key();
    let good = sk.sign_compact("JWT", &json!({"a": 1})).unwrap();
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    // A 64-byte signature encodes to 86 chars whose last char carries 4 zero bits: flip one.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = ALPHABET
        .iter()
        .position(|c| *c == s.as_bytes()[s.len() - 1])
        .unwrap();
    assert_eq!(
        last & 0b1111,
        0,
        "canonical encoding has zero trailing bits"
    );
    let sibling = char::from(ALPHABET[last | 1]);
    let stray_bits = format!("{}{sibling}", &s[..s.len() - 1]);
    for bad in [
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}.{s}=="),
        format!("{h}.{p} .{s}"),
        format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/") + "+"),
        format!("{h}.{p}.{stray_bits}"),
        format!("{h}.{p}\n.{s}"),
    ] {
        assert!(
            matches!(verify_with(&bad, &vk), Err(JoseError::BadBase64)),
            "{bad}"
        );
    }
}

#[test]
fn header_json_rules() {
    let sk = key(Algorithm::EdDSA);
    let vk = sk.verifying_key();
    let p = r#"{"a":1}"#;
    type Check = fn(&JoseError) -> bool;
    let cases: [(&str, Check); 12] = [
        (r#"{"alg":"EdDSA","alg":"EdDSA"}"#, |e| {
            matches!(e, JoseError::DuplicateKey)
        }),
        (r#"{"alg":"EdDSA","x":{"y":1,"y":2}}"#, |e| {
            matches!(e, JoseError::DuplicateKey)
        }),
        (r#"["EdDSA"]"#, |e| matches!(e, JoseError::BadJson)),
        (r#"{"alg":"EdDSA""#, |e| matches!(e, JoseError::BadJson)),
        (r#"{"kid":"k"}"#, |e| matches!(e, JoseError::Malformed(_))),
        (r#"{"alg":["EdDSA"]}"#, |e| {
            matches!(e, JoseError::Malformed(_))
        }),
        (r#"{"alg":"EdDSA","kid":7}"#, |e| {
            matches!(e, JoseError::Malformed(_))
        }),
        (r#"{"alg":"EdDSA","crit":["exp"],"exp":1}"#, |e| {
            matches!(e, JoseError::UnsupportedCritical)
        }),
        (r#"{"alg":"EdDSA","crit":[]}"#, |e| {
            matches!(e, JoseError::UnsupportedCritical)
        }),
        (r#"{"alg":"EdDSA","b64":false,"crit":["b64"]}"#, |e| {
            matches!(e, JoseError::UnsupportedCritical)
        }),
        (r#"{"alg":"EdDSA","b64":true}"#, |e| {
            matches!(e, JoseError::UnsupportedHeader("b64"))
        }),
        (r#"{"alg":"Ed25519"}"#, |e| {
            matches!(e, JoseError::UnsupportedAlgorithm)
        }),
    ];
    for (header, expected) in cases {
        let err = verify_with(&forge(&sk, header, p), &vk).unwrap_err();
        assert!(expected(&err), "{header}: {err:?}");
    }
    // Duplicate members in the payload are refused by payload_json.
    let dup = verify_with(
        &forge(&sk, r#"{"alg":"EdDSA"}"#, r#"{"sub":"a","sub":"b"}"#),
        &vk,
    )
    .unwrap();
    assert!(matches!(dup.payload_json(), Err(JoseError::DuplicateKey)));
}

#[test]
fn none_is_refused_in_every_spelling() {
    let vk = key(Algorithm::EdDSA).verifying_key();
    let payload = b64::encode(br#"{"sub":"admin"}"#);
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64::encode(format!(r#"{{"alg":"{alg}"}}"#).as_bytes());
        let unsigned = format!("{header}.{payload}.");
        assert!(
            matches!(verify_with(&unsigned, &vk), Err(JoseError::Malformed(_))),
            "{alg}"
        );
        let with_junk_sig = format!("{header}.{payload}.AAAA");
        assert!(
            matches!(
                verify_with(&with_junk_sig, &vk),
                Err(JoseError::UnsupportedAlgorithm)
            ),
            "{alg}"
        );
    }
}

#[test]
fn key_reference_headers_are_ignored_not_followed() {
    let sk = key(Algorithm::EdDSA);
    let vk = sk.verifying_key();
    let attacker = key(Algorithm::EdDSA);
    let attacker_jwk = attacker.verifying_key().public_jwk().unwrap();
    let header =
        json!({"alg": "EdDSA", "jku": "https://evil.example/jwks", "x5u": "https://evil.example/c",
        "jwk": attacker_jwk, "x5c": ["MIIB"], "x5t": "abc"})
        .to_string();
    // Signed by the real key: accepted, the extra members change nothing.
    assert!(verify_with(&forge(&sk, &header, "{}"), &vk).is_ok());
    // Signed by the key embedded in the header: refused, the embedded key is never used.
    assert!(matches!(
        verify_with(&forge(&attacker, &header, "{}"), &vk),
        Err(JoseError::BadSignature)
    ));
}

#[test]
fn tampered_tokens_fail() {
    for alg in Algorithm::ALL {
        let sk = key(alg);
        let vk = sk.verifying_key();
        let token = sk.sign_compact("JWT", &json!({"sub": "alice"})).unwrap();
        let (h, rest) = token.split_once('.').unwrap();
        let (_, s) = rest.split_once('.').unwrap();
        let evil = format!("{h}.{}.{s}", b64::encode(br#"{"sub":"admin"}"#));
        assert!(
            matches!(verify_with(&evil, &vk), Err(JoseError::BadSignature)),
            "{alg}"
        );
        // Signature of the wrong length (truncated by one byte).
        let sig = b64::decode(s).unwrap();
        let short = format!(
            "{h}.{}.{}",
            rest.split_once('.').unwrap().0,
            b64::encode(&sig[..sig.len() - 1])
        );
        assert!(
            matches!(verify_with(&short, &vk), Err(JoseError::BadSignature)),
            "{alg}"
        );
        // Another key of the same algorithm does not verify it.
        assert!(matches!(
            verify_with(&token, &key(alg).verifying_key()),
            Err(JoseError::BadSignature)
        ));
    }
}

#[test]
fn unknown_kid_and_algorithm_pin() {
    let sk = key(Algorithm::EdDSA);
    let vk = sk.verifying_key();
    let token = sk.sign_compact("JWT", &json!({})).unwrap();
    assert!(matches!(
        verify_compact(&token, |_| None),
        Err(JoseError::UnknownKey)
    ));
    assert!(matches!(
        verify_compact(&token, |kid| (kid == Some("other")).then_some(&vk)),
        Err(JoseError::UnknownKey)
    ));
    // An ES256 key never verifies an EdDSA-labelled token, whatever the header says.
    let es = key(Algorithm::ES256).verifying_key();
    assert!(matches!(
        verify_with(&token, &es),
        Err(JoseError::AlgorithmMismatch)
    ));
    // RS256 and PS256 are distinct pins on the same RSA material.
    let rs = key(Algorithm::RS256);
    let rs_token = rs.sign_compact("JWT", &json!({})).unwrap();
    let mut jwk = Jwk::from_value(rs.verifying_key().public_jwk().unwrap()).unwrap();
    jwk.alg = Some("PS256".into());
    let ps_view = VerifyingKey::from_jwk(&jwk).unwrap();
    assert!(matches!(
        verify_with(&rs_token, &ps_view),
        Err(JoseError::AlgorithmMismatch)
    ));
}

#[test]
fn hs256_signed_with_public_key_bytes_is_rejected() {
    // Classic key confusion: the attacker MACs with the bytes of the public key and labels the
    // token HS256. The ring holds the asymmetric key, pinned to its own algorithm.
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
        let sk = key(alg);
        let vk = sk.verifying_key();
        let jwk = vk.public_jwk().unwrap();
        let mut secrets: Vec<Vec<u8>> = vec![jwk.to_string().into_bytes()];
        for member in ["x", "y", "n"] {
            if let Some(text) = jwk.get(member).and_then(|v| v.as_str()) {
                secrets.push(b64::decode(text).unwrap());
                secrets.push(text.as_bytes().to_vec());
            }
        }
        let header = format!(r#"{{"alg":"HS256","kid":"{}"}}"#, sk.kid());
        for secret in secrets {
            let forged = forge_hs256(&secret, &header, r#"{"sub":"admin"}"#);
            let res = verify_compact(&forged, |kid| (kid == Some(sk.kid())).then_some(&vk));
            assert!(matches!(res, Err(JoseError::AlgorithmMismatch)), "{alg}");
        }
    }
}

#[test]
fn jwk_rules() {
    let short = b64::encode(&[7u8; 31]);
    let ok = b64::encode(&[7u8; 32]);
    let from = |text: String| VerifyingKey::from_jwk(&Jwk::from_json(&text).unwrap());
    assert!(matches!(
        from(format!(r#"{{"kty":"oct","k":"{short}"}}"#)),
        Err(JoseError::KeyTooShort)
    ));
    assert!(matches!(
        SigningKey::from_secret(Algorithm::HS256, "k".into(), &[7u8; 31]),
        Err(JoseError::KeyTooShort)
    ));
    assert_eq!(
        from(format!(r#"{{"kty":"oct","k":"{ok}"}}"#))
            .unwrap()
            .alg(),
        Algorithm::HS256
    );
    assert!(
        from(format!(r#"{{"kty":"oct","k":"{ok}"}}"#))
            .unwrap()
            .public_jwk()
            .is_none()
    );
    assert!(matches!(
        from(format!(r#"{{"kty":"oct","k":"{ok}","alg":"RS256"}}"#)),
        Err(JoseError::AlgorithmMismatch)
    ));
    assert!(matches!(
        from(format!(r#"{{"kty":"oct","k":"{ok}","alg":"none"}}"#)),
        Err(JoseError::UnsupportedAlgorithm)
    ));
    assert!(matches!(
        from(r#"{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}"#.into()),
        Err(JoseError::UnsupportedKey(_))
    ));
    assert!(matches!(
        from(r#"{"kty":"OKP","crv":"X25519","x":"AA"}"#.into()),
        Err(JoseError::UnsupportedKey(_))
    ));
    assert!(matches!(
        from(r#"{"kty":"XYZ"}"#.into()),
        Err(JoseError::UnsupportedKey(_))
    ));
    assert!(matches!(
        from(r#"{"kty":"OKP","crv":"Ed25519"}"#.into()),
        Err(JoseError::Malformed(_))
    ));
    let x31 = b64::encode(&[1u8; 31]);
    assert!(matches!(
        from(format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x31}"}}"#)),
        Err(JoseError::InvalidKey)
    ));
    // P-256 point not on the curve.
    let x = b64::encode(&[1u8; 32]);
    assert!(matches!(
        from(format!(
            r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{x}"}}"#
        )),
        Err(JoseError::InvalidKey)
    ));
    // RSA-1024 modulus.
    let n = b64::encode(&[0xc5u8; 128]);
    assert!(matches!(
        from(format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#)),
        Err(JoseError::KeyTooShort)
    ));
    assert!(matches!(
        Jwk::from_json(r#"{"kty":"oct","kty":"oct"}"#),
        Err(JoseError::DuplicateKey)
    ));
    assert!(matches!(
        Jwk::from_json(r#"{"kty":"oct","k":5}"#),
        Err(JoseError::BadJson)
    ));
}

#[test]
fn jwk_use_and_key_ops_must_permit_verify() {
    let ok = b64::encode(&[7u8; 32]);
    let from = |extra: &str| {
        VerifyingKey::from_jwk(
            &Jwk::from_json(&format!(r#"{{"kty":"oct","k":"{ok}"{extra}}}"#)).unwrap(),
        )
    };
    for allowed in [
        "",
        r#","use":"sig""#,
        r#","key_ops":["verify"]"#,
        r#","key_ops":["sign","verify"]"#,
        r#","use":"sig","key_ops":["verify"]"#,
    ] {
        assert!(from(allowed).is_ok(), "{allowed}");
    }
    for forbidden in [
        r#","use":"enc""#,
        r#","use":"SIG""#,
        r#","use":"""#,
        r#","key_ops":["sign"]"#,
        r#","key_ops":[]"#,
        r#","key_ops":["encrypt","wrapKey"]"#,
        r#","use":"sig","key_ops":["sign"]"#,
    ] {
        assert!(
            matches!(from(forbidden), Err(JoseError::KeyUseForbidden(_))),
            "{forbidden}"
        );
    }
    // Malformed key_ops is refused when the JWK is parsed, before any use is considered.
    for members in [
        r#""key_ops":"verify""#,
        r#""key_ops":[1]"#,
        r#""key_ops":null"#,
        r#""key_ops":{"verify":true}"#,
    ] {
        let parsed = Jwk::from_json(&format!(r#"{{"kty":"oct","k":"{ok}",{members}}}"#));
        assert!(matches!(parsed, Err(JoseError::BadJson)), "{members}");
    }
    let twice = Jwk::from_json(&format!(
        r#"{{"kty":"oct","k":"{ok}","key_ops":["verify","verify"]}}"#
    ));
    assert!(matches!(twice, Err(JoseError::Malformed(_))));
}

#[test]
fn decode_unverified_shows_unsigned_tokens() {
    let header = b64::encode(br#"{"alg":"none"}"#);
    let payload = b64::encode(br#"{"sub":"x"}"#);
    let (h, p) = decode_unverified_dangerously(&format!("{header}.{payload}.")).unwrap();
    assert_eq!(h["alg"], "none");
    assert_eq!(p["sub"], "x");
    assert!(matches!(
        decode_unverified_dangerously(&format!("{header}.{payload}")),
        Err(JoseError::Malformed(_))
    ));
    assert!(matches!(
        decode_unverified_dangerously(&format!("{header}=.{payload}.")),
        Err(JoseError::BadBase64)
    ));
}
