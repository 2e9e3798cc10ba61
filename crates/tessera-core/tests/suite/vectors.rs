//! Published test vectors, run through Tessera's own JOSE verifier.
//!
//! Wycheproof (Ed25519, ECDSA P-256 in the JOSE `r || s` encoding, HMAC-SHA-256) goes through
//! `VerifyingKey::from_jwk` + `verify_signature`; the JOSE cookbook (RFC 7520 §4, RFC 8037) goes
//! through `verify_compact`. Every file's cases are counted, so a vector file that silently
//! stops being read fails the test. Wycheproof's "acceptable" verdict is treated as "must be
//! rejected" (Tessera is strict where the standard allows a choice); these files contain none,
//! and the count of them is asserted too.

// A test harness: failing loudly on unexpected data is the point. (clippy's allow-*-in-tests
// settings cover `#[test]` functions but not the helpers of an integration-test crate.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use serde_json::Value;
use tessera_core::jose::{Algorithm, JoseError, Jwk, VerifyingKey, b64, verify_compact};

fn load(relative: &str) -> Value {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "vectors", relative]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn str_of<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("missing {name}"))
}

/// Per-file tallies of a Wycheproof signature run.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    cases: u64,
    valid: u64,
    invalid: u64,
    acceptable: u64,
}

/// Runs every case of a Wycheproof signature file: `key_of` builds the verifier for a group.
fn run_signature_file(
    file: &str,
    key_of: impl Fn(&Value) -> Result<VerifyingKey, JoseError>,
) -> Tally {
    let doc = load(file);
    let mut tally = Tally::default();
    for group in doc["testGroups"].as_array().unwrap() {
        let key = key_of(group);
        for case in group["tests"].as_array().unwrap() {
            let id = &case["tcId"];
            let accepted = match &key {
                Ok(key) => key
                    .verify_signature(&hex(str_of(case, "msg")), &hex(str_of(case, "sig")))
                    .is_ok(),
                Err(e) => panic!("{file} tcId {id}: key refused: {e}"),
            };
            tally.cases += 1;
            match str_of(case, "result") {
                "valid" => {
                    tally.valid += 1;
                    assert!(
                        accepted,
                        "{file} tcId {id} ({}) should verify",
                        case["comment"]
                    );
                }
                "invalid" | "acceptable" => {
                    if str_of(case, "result") == "acceptable" {
                        tally.acceptable += 1;
                    } else {
                        tally.invalid += 1;
                    }
                    assert!(
                        !accepted,
                        "{file} tcId {id} ({}) should be rejected",
                        case["comment"]
                    );
                }
                other => panic!("{file} tcId {id}: unknown result {other}"),
            }
        }
    }
    assert_eq!(
        tally.cases,
        doc["numberOfTests"].as_u64().unwrap(),
        "{file}: every case processed"
    );
    tally
}

#[test]
fn wycheproof_ed25519() {
    let tally = run_signature_file("wycheproof/ed25519_test.json", |group| {
        let key = VerifyingKey::from_jwk(&Jwk::from_value(group["publicKeyJwk"].clone())?)?;
        assert_eq!(key.alg(), Algorithm::EdDSA);
        Ok(key)
    });
    assert_eq!(
        tally,
        Tally {
            cases: 151,
            valid: 88,
            invalid: 63,
            acceptable: 0
        }
    );
}

#[test]
fn wycheproof_ecdsa_p256_p1363() {
    let tally = run_signature_file(
        "wycheproof/ecdsa_secp256r1_sha256_p1363_test.json",
        |group| {
            // Most groups carry a JWK; a few only the raw coordinates, from which one is built.
            let jwk = match group.get("publicKeyJwk") {
                Some(jwk) => jwk.clone(),
                None => {
                    let coord = |name: &str| {
                        let bytes = hex(str_of(&group["publicKey"], name));
                        let trimmed: Vec<u8> =
                            bytes.iter().copied().skip_while(|b| *b == 0).collect();
                        let mut fixed = vec![0u8; 32 - trimmed.len()];
                        fixed.extend(trimmed);
                        b64::encode(&fixed)
                    };
                    serde_json::json!({"kty": "EC", "crv": "P-256", "x": coord("wx"), "y": coord("wy")})
                }
            };
            let key = VerifyingKey::from_jwk(&Jwk::from_value(jwk)?)?;
            assert_eq!(key.alg(), Algorithm::ES256);
            Ok(key)
        },
    );
    assert_eq!(
        tally,
        Tally {
            cases: 262,
            valid: 173,
            invalid: 89,
            acceptable: 0
        }
    );
}

#[test]
fn wycheproof_hmac_sha256() {
    let doc = load("wycheproof/hmac_sha256_test.json");
    let (mut applied, mut skipped_tag, mut refused_short_key) = (0u64, 0u64, 0u64);
    let (mut valid, mut invalid) = (0u64, 0u64);
    for group in doc["testGroups"].as_array().unwrap() {
        let tag_bits = group["tagSize"].as_u64().unwrap();
        for case in group["tests"].as_array().unwrap() {
            let key = hex(str_of(case, "key"));
            let jwk =
                Jwk::from_value(serde_json::json!({"kty": "oct", "k": b64::encode(&key)})).unwrap();
            let built = VerifyingKey::from_jwk(&jwk);
            if key.len() < 32 {
                // Short keys are refused when the key is built, whatever the tag size.
                assert!(
                    matches!(built, Err(JoseError::KeyTooShort)),
                    "tcId {}",
                    case["tcId"]
                );
                refused_short_key += 1;
                continue;
            }
            if tag_bits != 256 {
                // Truncated tags are not HS256; nothing to apply.
                skipped_tag += 1;
                continue;
            }
            let key = built.unwrap();
            let accepted = key
                .verify_signature(&hex(str_of(case, "msg")), &hex(str_of(case, "tag")))
                .is_ok();
            match str_of(case, "result") {
                "valid" => {
                    valid += 1;
                    assert!(accepted, "tcId {}", case["tcId"]);
                }
                _ => {
                    invalid += 1;
                    assert!(!accepted, "tcId {}", case["tcId"]);
                }
            }
            applied += 1;
        }
    }
    assert_eq!(
        applied + skipped_tag + refused_short_key,
        doc["numberOfTests"].as_u64().unwrap()
    );
    assert_eq!((applied, skipped_tag, refused_short_key), (84, 84, 6));
    assert_eq!((valid, invalid), (30, 54));
}

/// Verifies a cookbook example's compact form with the example's own key, pinned by the JWK.
fn cookbook_compact(doc: &Value) -> Result<Vec<u8>, JoseError> {
    let key = VerifyingKey::from_jwk(&Jwk::from_value(doc["input"]["key"].clone())?)?;
    let kid = key.kid().map(str::to_owned);
    let token = str_of(&doc["output"], "compact");
    let verified = verify_compact(token, |header_kid| {
        (header_kid.map(str::to_owned) == kid).then_some(&key)
    })?;
    Ok(verified.payload().to_vec())
}

#[test]
fn jose_cookbook_rfc7520_and_rfc8037() {
    let (mut verified, mut refused, mut skipped_by_design) = (0u32, 0u32, 0u32);

    // 4.1 RS256, 4.4 HS256 (key 3.5), RFC 8037 Ed25519: verified, payload intact.
    for file in [
        "jose-cookbook/jws/4_1.rsa_v15_signature.json",
        "jose-cookbook/jws/4_4.hmac-sha2_integrity_protection.json",
        "jose-cookbook/curve25519/jws.json",
    ] {
        let doc = load(file);
        let payload = cookbook_compact(&doc).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            payload,
            str_of(&doc["input"], "payload").as_bytes(),
            "{file}"
        );
        verified += 1;
    }
    // 4.4's key is the published 3.5 key.
    let k35 = Jwk::from_value(load(
        "jose-cookbook/jwk/3_5.symmetric_key_mac_computation.json",
    ))
    .unwrap();
    let doc44 = load("jose-cookbook/jws/4_4.hmac-sha2_integrity_protection.json");
    assert_eq!(
        k35.k,
        doc44["input"]["key"]["k"].as_str().map(str::to_owned)
    );

    // 4.2 PS384 and 4.3 ES512 (P-521): algorithms Tessera does not implement are refused.
    let doc42 = load("jose-cookbook/jws/4_2.rsa-pss_signature.json");
    assert!(matches!(
        cookbook_compact(&doc42),
        Err(JoseError::UnsupportedAlgorithm)
    ));
    refused += 1;
    let doc43 = load("jose-cookbook/jws/4_3.ecdsa_signature.json");
    assert!(matches!(
        cookbook_compact(&doc43),
        Err(JoseError::UnsupportedKey(_))
    ));
    let rsa = VerifyingKey::from_jwk(
        &Jwk::from_value(load("jose-cookbook/jwk/3_3.rsa_public_key.json")).unwrap(),
    )
    .unwrap();
    let es512 = verify_compact(str_of(&doc43["output"], "compact"), |_| Some(&rsa));
    assert!(matches!(es512, Err(JoseError::UnsupportedAlgorithm)));
    refused += 1;

    // 4.5 detached content: its "compact" form has an empty payload segment. Tessera reads it
    // as an empty payload (RFC 7515 allows one) and never re-attaches detached content, so
    // the signature, made over the absent payload, does not verify.
    let doc45 = load("jose-cookbook/jws/4_5.signature_with_detached_content.json");
    assert!(matches!(
        cookbook_compact(&doc45),
        Err(JoseError::BadSignature)
    ));
    skipped_by_design += 1;
    // 4.6 (unprotected header), 4.7 (no protected header), 4.8 (multiple signatures) exist
    // only in the JSON serializations, which Tessera does not accept.
    for file in [
        "jose-cookbook/jws/4_6.protecting_specific_header_fields.json",
        "jose-cookbook/jws/4_7.protecting_content_only.json",
        "jose-cookbook/jws/4_8.multiple_signatures.json",
    ] {
        assert!(load(file)["output"].get("compact").is_none(), "{file}");
        skipped_by_design += 1;
    }
    assert_eq!((verified, refused, skipped_by_design), (3, 2, 4));
}

#[test]
fn jose_cookbook_keys() {
    type Check = fn(&JoseError) -> bool;
    let expect: [(&str, Result<Algorithm, Check>); 6] = [
        (
            "3_1.ec_public_key.json",
            Err(|e| matches!(e, JoseError::UnsupportedKey(_))),
        ),
        (
            "3_2.ec_private_key.json",
            Err(|e| matches!(e, JoseError::UnsupportedKey(_))),
        ),
        ("3_3.rsa_public_key.json", Ok(Algorithm::RS256)),
        ("3_4.rsa_private_key.json", Ok(Algorithm::RS256)),
        (
            "3_5.symmetric_key_mac_computation.json",
            Ok(Algorithm::HS256),
        ),
        (
            "3_6.symmetric_key_encryption.json",
            Err(|e| matches!(e, JoseError::UnsupportedAlgorithm)),
        ),
    ];
    for (file, expected) in expect {
        let jwk = Jwk::from_value(load(&format!("jose-cookbook/jwk/{file}"))).unwrap();
        match (VerifyingKey::from_jwk(&jwk), expected) {
            (Ok(key), Ok(alg)) => {
                assert_eq!(key.alg(), alg, "{file}");
                // Private members never reach the published form.
                if let Some(public) = key.public_jwk() {
                    assert!(
                        public.get("d").is_none() && public.get("p").is_none(),
                        "{file}"
                    );
                }
            }
            (Err(e), Err(check)) => assert!(check(&e), "{file}: {e:?}"),
            (got, _) => panic!("{file}: unexpected {got:?}"),
        }
    }
    // The private RSA JWK publishes exactly the public one.
    let public = |file: &str| {
        let jwk = Jwk::from_value(load(&format!("jose-cookbook/jwk/{file}"))).unwrap();
        VerifyingKey::from_jwk(&jwk).unwrap().public_jwk().unwrap()
    };
    assert_eq!(
        public("3_3.rsa_public_key.json"),
        public("3_4.rsa_private_key.json")
    );
}
