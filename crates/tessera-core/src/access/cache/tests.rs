//! Attacks on the verified-token cache: it must answer exactly as full verification would.
use std::sync::{Arc, Barrier};

use super::*;
use crate::access::issue;
use crate::jose::{Algorithm, JoseError};
use crate::keys::{KeyRecord, KeyRing, KeyStatus};

const NOW: UnixTime = UnixTime(1_700_000_000);

fn ring() -> (KeyRing, KeyRecord) {
    let record = KeyRing::generate_record(Algorithm::EdDSA, KeyStatus::Current, NOW).unwrap();
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

fn claims(jti: &str) -> AccessClaims {
    AccessClaims {
        iss: "https://auth.example".into(),
        sub: "user-1".into(),
        aud: "api".into(),
        exp: NOW.plus(600),
        iat: NOW,
        nbf: NOW,
        jti: jti.into(),
        sid: Some("sid-1".into()),
        scope: Some("read".into()),
        client_id: "first-party".into(),
        username: None,
        cnf: None,
    }
}

fn token(ring: &KeyRing, jti: &str) -> String {
    issue(ring.current().unwrap(), &claims(jti)).unwrap()
}

/// Replaces the character at `at` with another base64url character.
fn flip(token: &str, at: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_hit_returns_the_claims_full_verification_returned() {
    let (ring, _) = ring();
    let cache = VerifiedCache::new(16);
    let jwt = token(&ring, "a");
    let lookup = |kid: &str| ring.verifier(kid);
    let cold = cache.verify_with(&jwt, lookup, &policy(), NOW).unwrap();
    assert!(cache.contains(&jwt));
    let warm = cache.verify_with(&jwt, lookup, &policy(), NOW).unwrap();
    assert_eq!(cold, warm);
    assert_eq!(warm, claims("a"));
    assert_eq!(cache.len(), 1);
}

#[test]
fn a_token_one_byte_away_from_a_cached_one_is_verified_from_scratch_and_refused() {
    let (ring, _) = ring();
    let cache = VerifiedCache::new(16);
    let jwt = token(&ring, "a");
    let lookup = |kid: &str| ring.verifier(kid);
    cache.verify_with(&jwt, lookup, &policy(), NOW).unwrap();
    let signature_start = jwt.rfind('.').unwrap() + 1;
    let payload_start = jwt.find('.').unwrap() + 1;
    for at in [signature_start, signature_start + 10, payload_start + 3, 2] {
        let forged = flip(&jwt, at);
        assert_ne!(forged, jwt);
        let refused = cache.verify_with(&forged, lookup, &policy(), NOW);
        assert!(refused.is_err(), "byte {at}: {refused:?}");
        assert!(!cache.contains(&forged));
    }
    // The genuine token is still there and still accepted.
    assert_eq!(cache.len(), 1);
    assert!(cache.verify_with(&jwt, lookup, &policy(), NOW).is_ok());
}

#[test]
fn a_refused_token_is_never_cached() {
    let (ring, _) = ring();
    let cache = VerifiedCache::new(16);
    let jwt = token(&ring, "a");
    let other = AccessPolicy {
        audience: "elsewhere".into(),
        ..policy()
    };
    let lookup = |kid: &str| ring.verifier(kid);
    assert!(matches!(
        cache.verify_with(&jwt, lookup, &other, NOW),
        Err(AccessError::WrongAudience)
    ));
    assert!(cache.is_empty());
}

#[test]
fn a_cached_token_is_refused_once_its_key_is_no_longer_trusted() {
    let (ring, mut record) = ring();
    let cache = VerifiedCache::new(16);
    let jwt = token(&ring, "a");
    cache
        .verify_with(&jwt, |kid| ring.verifier(kid), &policy(), NOW)
        .unwrap();
    // Revoked (the caller's lookup refuses the kid) or retired/revoked in a reloaded ring.
    assert!(matches!(
        cache.verify_with(&jwt, |_| None, &policy(), NOW),
        Err(AccessError::Jose(JoseError::UnknownKey))
    ));
    assert!(!cache.contains(&jwt));
    cache
        .verify_with(&jwt, |kid| ring.verifier(kid), &policy(), NOW)
        .unwrap();
    for status in [KeyStatus::Retired, KeyStatus::Revoked] {
        record.status = status;
        let reloaded = KeyRing::from_records(std::slice::from_ref(&record)).unwrap();
        assert!(matches!(
            cache.verify_with(&jwt, |kid| reloaded.verifier(kid), &policy(), NOW),
            Err(AccessError::Jose(JoseError::UnknownKey))
        ));
    }
}

#[test]
fn a_cached_token_is_refused_when_its_kid_now_names_other_key_material() {
    let (ring, record) = ring();
    let cache = VerifiedCache::new(16);
    let jwt = token(&ring, "a");
    cache
        .verify_with(&jwt, |kid| ring.verifier(kid), &policy(), NOW)
        .unwrap();
    let mut replacement =
        KeyRing::generate_record(Algorithm::EdDSA, KeyStatus::Current, NOW).unwrap();
    replacement.kid = record.kid.clone();
    let reloaded = KeyRing::from_records(std::slice::from_ref(&replacement)).unwrap();
    assert!(matches!(
        cache.verify_with(&jwt, |kid| reloaded.verifier(kid), &policy(), NOW),
        Err(AccessError::Jose(JoseError::BadSignature))
    ));
    assert!(!cache.contains(&jwt));
}

#[test]
fn a_cached_token_expires_and_waits_for_nbf_like_any_other() {
    let (ring, _) = ring();
    let cache = VerifiedCache::new(16);
    let lookup = |kid: &str| ring.verifier(kid);
    let jwt = token(&ring, "a");
    cache.verify_with(&jwt, lookup, &policy(), NOW).unwrap();
    // Within the leeway past exp: still valid; one second later: expired, and forgotten.
    assert!(
        cache
            .verify_with(&jwt, lookup, &policy(), NOW.plus(629))
            .is_ok()
    );
    assert!(matches!(
        cache.verify_with(&jwt, lookup, &policy(), NOW.plus(630)),
        Err(AccessError::Expired)
    ));
    assert!(!cache.contains(&jwt));
    // nbf in the future beyond the leeway: refused on a hit too (time moved backwards).
    cache.verify_with(&jwt, lookup, &policy(), NOW).unwrap();
    assert!(matches!(
        cache.verify_with(&jwt, lookup, &policy(), NOW.plus(-31)),
        Err(AccessError::NotYetValid)
    ));
}

#[test]
fn a_hit_for_another_policy_is_verified_against_that_policy() {
    let (ring, _) = ring();
    let cache = VerifiedCache::new(16);
    let lookup = |kid: &str| ring.verifier(kid);
    let jwt = token(&ring, "a");
    cache.verify_with(&jwt, lookup, &policy(), NOW).unwrap();
    let other_audience = AccessPolicy {
        audience: "other".into(),
        ..policy()
    };
    let other_issuer = AccessPolicy {
        issuer: "https://evil.example".into(),
        ..policy()
    };
    assert!(matches!(
        cache.verify_with(&jwt, lookup, &other_audience, NOW),
        Err(AccessError::WrongAudience)
    ));
    cache.verify_with(&jwt, lookup, &policy(), NOW).unwrap();
    assert!(matches!(
        cache.verify_with(&jwt, lookup, &other_issuer, NOW),
        Err(AccessError::WrongIssuer)
    ));
}

#[test]
fn a_burst_of_distinct_tokens_never_grows_the_cache_past_its_capacity() {
    let (ring, _) = ring();
    let cache = VerifiedCache::new(64);
    assert_eq!(cache.capacity(), 64);
    let lookup = |kid: &str| ring.verifier(kid);
    let tokens: Vec<String> = (0..3 * 64)
        .map(|n| token(&ring, &format!("t{n}")))
        .collect();
    for jwt in &tokens {
        assert!(cache.verify_with(jwt, lookup, &policy(), NOW).is_ok());
        assert!(cache.len() <= 64);
    }
    // Evicted or not, every token still verifies.
    for jwt in &tokens {
        assert!(cache.verify_with(jwt, lookup, &policy(), NOW).is_ok());
        assert!(cache.len() <= 64);
    }
    assert!(!cache.is_empty());
}

#[test]
fn a_zero_capacity_cache_caches_nothing_and_still_verifies() {
    let (ring, _) = ring();
    let cache = VerifiedCache::new(0);
    let jwt = token(&ring, "a");
    assert!(
        cache
            .verify_with(&jwt, |kid| ring.verifier(kid), &policy(), NOW)
            .is_ok()
    );
    assert!(cache.is_empty());
}

#[test]
fn concurrent_verifications_of_one_token_all_agree() {
    let (ring, _) = ring();
    let ring = Arc::new(ring);
    let cache = Arc::new(VerifiedCache::new(16));
    let jwt = Arc::new(token(&ring, "a"));
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (ring, cache, jwt, barrier) = (
                Arc::clone(&ring),
                Arc::clone(&cache),
                Arc::clone(&jwt),
                Arc::clone(&barrier),
            );
            std::thread::spawn(move || {
                barrier.wait();
                (0..50)
                    .map(|_| {
                        cache
                            .verify_with(&jwt, |kid| ring.verifier(kid), &policy(), NOW)
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for thread in threads {
        for claims in thread.join().unwrap() {
            assert_eq!(claims.jti, "a");
            assert_eq!(claims, self::claims("a"));
        }
    }
    assert_eq!(cache.len(), 1);
}
