//! JSON Web Keys: arbitrary bytes through `Jwk::from_json` and `VerifyingKey::from_jwk`.
//!
//! Invariants: a key that loads is pinned to the JWK's declared `alg` when there is one, and
//! its `use`/`key_ops` (if present) permit verifying; its published form (if it has one: HMAC
//! keys never do) loads back to the same key; and a refused JWK is refused for a reason, never
//! a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::jose::{Algorithm, Jwk, VerifyingKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(jwk) = Jwk::from_json(text) else {
        return;
    };
    let _ = format!("{jwk:?}");
    let Ok(key) = VerifyingKey::from_jwk(&jwk) else {
        return;
    };
    if let Some(declared) = jwk.alg.as_deref() {
        assert_eq!(
            Algorithm::parse(declared),
            Some(key.alg()),
            "alg not pinned"
        );
    }
    assert_eq!(key.kid(), jwk.kid.as_deref());
    assert!(jwk.key_use.as_deref().is_none_or(|u| u == "sig"));
    assert!(
        jwk.key_ops
            .as_ref()
            .is_none_or(|ops| ops.iter().any(|op| op == "verify")),
        "a key whose key_ops lack verify loaded"
    );
    match key.public_jwk() {
        Some(public) => {
            assert_ne!(key.alg(), Algorithm::HS256, "an HMAC key was published");
            let text = public.to_string();
            assert!(!text.contains("\"k\"") && !text.contains("\"d\""));
            let back = VerifyingKey::from_jwk(&Jwk::from_json(&text).expect("own JWK parses"))
                .expect("own JWK loads");
            assert_eq!(back.alg(), key.alg());
            assert_eq!(back.kid(), key.kid());
            assert_eq!(back.public_jwk(), Some(public));
        }
        None => assert_eq!(key.alg(), Algorithm::HS256),
    }
    // The key checks signatures without panicking, whatever their length.
    for len in [0, 32, 64, 256] {
        assert!(key.verify_signature(data, &vec![0u8; len]).is_err());
    }
});
