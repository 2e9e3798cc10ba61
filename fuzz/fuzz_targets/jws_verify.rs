//! Compact JWS and RFC 9068 access tokens: arbitrary text through `verify_compact` (with the
//! ring's `kid` lookup and with every key pinned), `access::verify`,
//! `decode_unverified_dangerously` and `inspect`.
//!
//! Two extra modes reach the success paths, which random bytes cannot (no forged signatures):
//! an input starting with `0x00` is a JSON payload that is signed and must verify back to the
//! same bytes; one starting with `0x01` is `AccessClaims` JSON that is issued and must verify
//! exactly when the claims satisfy the policy.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tessera_core::access::{self, AccessClaims, MAX_LEEWAY_SECS};
use tessera_core::jose::{
    Algorithm, JoseError, MAX_TOKEN_BYTES, VerifyingKey, decode_unverified_dangerously,
    verify_compact,
};
use tessera_core::keys::KeyStatus;
use tessera_fuzz::{Fixture, NOW, REVOKED_KID, fixture};

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    match data.split_first() {
        Some((0, rest)) => sign_round_trip(f, rest),
        Some((1, rest)) => issue_round_trip(f, rest),
        _ => {
            if let Ok(token) = std::str::from_utf8(data) {
                check_token(f, token);
            }
        }
    }
});

/// Any text: nothing panics, and whatever verifies obeys the pinning rules.
fn check_token(f: &Fixture, token: &str) {
    // The ring's lookup: by `kid`, trusted keys only.
    let by_kid = verify_compact(token, |kid| kid.and_then(|kid| f.ring.verifier(kid)));
    if let Ok(v) = &by_kid {
        let kid = v.header().kid.as_deref().expect("verified without a kid");
        let key = f.ring.verifier(kid).expect("verified by an unknown kid");
        assert_eq!(
            v.header().alg,
            key.alg(),
            "header alg differs from the key's"
        );
        assert_ne!(kid, REVOKED_KID, "a revoked key verified");
        assert_accepted_shape(token);
    }
    // Every key pinned, whatever the `kid` says.
    for key in &f.verifiers {
        match verify_compact(token, |_| Some(key)) {
            Ok(v) => {
                assert_eq!(
                    v.header().alg,
                    key.alg(),
                    "header alg differs from the key's"
                );
                assert_accepted_shape(token);
                let again = verify_compact(token, |_| Some(key)).expect("verifies once, not twice");
                assert_eq!(again.header(), v.header());
                assert_eq!(again.payload(), v.payload());
                // The signature is bound to the algorithm: a key of any other algorithm refuses.
                for other in f.verifiers.iter().filter(|k| k.alg() != key.alg()) {
                    assert!(verify_compact(token, |_| Some(other)).is_err());
                }
            }
            Err(JoseError::AlgorithmMismatch) => {
                let (header, _) = decode_unverified_dangerously(token)
                    .or_else(|_| header_only(token))
                    .expect("alg mismatch on an undecodable header");
                let alg = header.get("alg").and_then(Value::as_str);
                assert_ne!(alg, Some(key.alg().as_str()));
            }
            Err(_) => {}
        }
    }
    if let Ok(claims) = access::verify(token, &f.ring, &f.policy, NOW) {
        assert!(by_kid.is_ok(), "access token verified but the JWS did not");
        assert_eq!(claims.iss, f.policy.issuer);
        assert_eq!(claims.aud, f.policy.audience);
        let leeway = f.policy.leeway_secs.clamp(0, MAX_LEEWAY_SECS);
        assert!(claims.exp > NOW.plus(-leeway), "expired token accepted");
        assert!(claims.nbf <= NOW.plus(leeway) && claims.iat <= NOW.plus(leeway));
        let (header, _) = decode_unverified_dangerously(token).expect("verified but undecodable");
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(f.ring.status(kid).is_some_and(KeyStatus::is_trusted));
    }
    let _ = decode_unverified_dangerously(token);
    let report = tessera_core::inspect::inspect(token, NOW);
    let _ = report.worst();
    let _ = report.to_string();
}

/// A token that verified has exactly the shape the strict parser demands.
fn assert_accepted_shape(token: &str) {
    assert!(token.len() <= MAX_TOKEN_BYTES);
    assert_eq!(token.split('.').count(), 3);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
        "accepted a token outside the base64url alphabet"
    );
}

/// The header alone, for tokens whose payload is not JSON (allowed by `verify_compact`).
fn header_only(token: &str) -> Result<(Value, Value), JoseError> {
    let head = token.split('.').next().unwrap_or_default();
    let bytes = tessera_core::jose::b64::decode(head)?;
    let header = tessera_core::jose::json::parse(&bytes)?;
    Ok((header, Value::Null))
}

/// The keys the sign modes use: RSA signing costs a millisecond, so the fast ones only
/// (RSA round trips are in the property tests).
fn fast_signer(f: &Fixture, selector: u8) -> &tessera_core::jose::SigningKey {
    let fast: Vec<_> = f
        .signers
        .iter()
        .filter(|k| !matches!(k.alg(), Algorithm::RS256 | Algorithm::PS256))
        .collect();
    fast[usize::from(selector) % fast.len()]
}

/// `0x00 selector json…`: sign the payload; it must verify back to the same bytes.
fn sign_round_trip(f: &Fixture, data: &[u8]) {
    let Some((&selector, json)) = data.split_first() else {
        return;
    };
    let Ok(payload) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let key = fast_signer(f, selector);
    let token = match key.sign_compact("JWT", &payload) {
        Ok(token) => token,
        Err(JoseError::TooLarge) => return,
        Err(e) => panic!("signing failed: {e}"),
    };
    let verifying: VerifyingKey = key.verifying_key();
    let v = verify_compact(&token, |_| Some(&verifying)).expect("own token refused");
    assert_eq!(v.header().alg, key.alg());
    assert_eq!(v.header().kid.as_deref(), Some(key.kid()));
    assert_eq!(v.header().typ.as_deref(), Some("JWT"));
    assert_eq!(
        v.payload(),
        serde_json::to_vec(&payload).expect("serialises")
    );
    decode_unverified_dangerously(&token).expect("own token undecodable");
    // Not an access token (wrong `typ`), whatever the claims say.
    assert!(access::verify(&token, &f.ring, &f.policy, NOW).is_err());
}

/// `0x01 selector json…`: issue an access token; it verifies iff the claims meet the policy,
/// and then to exactly the claims issued.
fn issue_round_trip(f: &Fixture, data: &[u8]) {
    let Some((&selector, json)) = data.split_first() else {
        return;
    };
    let Ok(claims) = serde_json::from_slice::<AccessClaims>(json) else {
        return;
    };
    let key = fast_signer(f, selector);
    let token = match access::issue(key, &claims) {
        Ok(token) => token,
        Err(JoseError::TooLarge) => return,
        Err(e) => panic!("issuing failed: {e}"),
    };
    let leeway = f.policy.leeway_secs.clamp(0, MAX_LEEWAY_SECS);
    let acceptable = claims.iss == f.policy.issuer
        && claims.aud == f.policy.audience
        && [claims.exp, claims.iat, claims.nbf]
            .iter()
            .all(|t| t.0 >= 0)
        && claims.exp > NOW.plus(-leeway)
        && claims.nbf <= NOW.plus(leeway)
        && claims.iat <= NOW.plus(leeway);
    match access::verify(&token, &f.ring, &f.policy, NOW) {
        Ok(back) => {
            assert!(acceptable, "accepted claims outside the policy: {claims:?}");
            assert_eq!(back, claims);
        }
        Err(e) => assert!(!acceptable, "refused acceptable claims ({e}): {claims:?}"),
    }
}
