#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The attack suite against the library verifier, `tessera_core::access::verify`.
//!
//! Every forged or malformed token of `attack_cases` (RFC 8725 §2–3, the jwt_tool / jwt-hack
//! playbooks, OWASP ASVS 5.0 V9) is run against rings of EdDSA, ES256 and RS256 keys — each
//! alone as the current key, and all three together (so `kid`/`alg` cross-key confusion is
//! tried too) — and must be refused. Controls built through the same raw paths must be
//! accepted. Run with `--nocapture` to see the case count per family and the refusal reasons.
//!
//! The same generator drives `tessera-server/tests/suite/attacks.rs` over the real HTTP path.

#[path = "../attack_cases/mod.rs"]
mod attack_cases;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::TcpListener;

use attack_cases::{Attacker, FAMILIES, RealKey, Setup, generate, p256_high_s};
use serde_json::Value;
use tessera_core::access::{self, AccessClaims, AccessPolicy};
use tessera_core::jose::{Algorithm, SigningKey, b64};
use tessera_core::keys::{KeyRecord, KeyRing, KeyStatus};
use tessera_core::revocation::{Revocation, RevocationList, RevocationSubject};
use tessera_core::time::UnixTime;

const NOW: UnixTime = UnixTime(1_700_000_000);
const ISSUER: &str = "http://tessera.test";
/// Whatever the ring, at least this many cases must run.
const MIN_CASES: usize = 150;

fn policy() -> AccessPolicy {
    AccessPolicy {
        issuer: ISSUER.into(),
        audience: ISSUER.into(),
        leeway_secs: 30,
    }
}

fn claims(jti: &str) -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        sub: "user-1".into(),
        aud: ISSUER.into(),
        exp: NOW.plus(600),
        iat: NOW,
        nbf: NOW,
        jti: jti.into(),
        sid: Some("sid-1".into()),
        scope: Some("read".into()),
        client_id: "first-party".into(),
        username: Some("alice".into()),
        cnf: None,
    }
}

fn signing_key(record: &KeyRecord) -> SigningKey {
    SigningKey::from_secret(record.alg, record.kid.clone(), &record.secret).unwrap()
}

/// The key as the attack generator sees it: public JWK from the ring's JWKS, a genuine token.
fn real_key(record: &KeyRecord, jwks: &Value) -> RealKey {
    let public_jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == record.kid.as_str())
        .cloned()
        .expect("key published");
    RealKey {
        alg: record.alg,
        kid: record.kid.clone(),
        pkcs8: record.secret.to_vec(),
        public_jwk,
        genuine: access::issue(
            &signing_key(record),
            &claims(&format!("jti-{}", record.alg)),
        )
        .unwrap(),
    }
}

/// Runs every case against `ring`; returns the count per family.
fn run(
    label: &str,
    records: &[KeyRecord],
    attacker: &Attacker,
    canary: &str,
) -> BTreeMap<&'static str, usize> {
    let ring = KeyRing::from_records(records).unwrap();
    let jwks = ring.jwks();
    let keys: Vec<RealKey> = records.iter().map(|r| real_key(r, &jwks)).collect();
    let generated = generate(&Setup {
        keys: &keys,
        jwks: &jwks,
        attacker,
        canary,
    });
    for (name, token) in &generated.controls {
        if let Err(e) = access::verify(token, &ring, &policy(), NOW) {
            panic!("{label}: control {name} refused ({e}): the generator is broken");
        }
    }
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut reasons: BTreeMap<&'static str, BTreeMap<String, usize>> = BTreeMap::new();
    let mut accepted = Vec::new();
    for case in &generated.cases {
        *counts.entry(case.family).or_default() += 1;
        match access::verify(&case.token, &ring, &policy(), NOW) {
            Ok(claims) => accepted.push(format!("{} / {}: {claims:?}", case.family, case.name)),
            Err(e) => {
                *reasons
                    .entry(case.family)
                    .or_default()
                    .entry(e.to_string())
                    .or_default() += 1;
            }
        }
    }
    assert!(
        accepted.is_empty(),
        "{label}: {} forged tokens ACCEPTED:\n{}",
        accepted.len(),
        accepted.join("\n")
    );
    let total: usize = counts.values().sum();
    println!("\n== library verifier, ring {label}: {total} cases, all refused");
    for family in FAMILIES {
        let n = counts.get(family).copied().unwrap_or(0);
        let why: Vec<String> = reasons
            .get(family)
            .map(|r| r.iter().map(|(k, v)| format!("{k} ×{v}")).collect())
            .unwrap_or_default();
        println!("{family:>62}: {n:>4}   [{}]", why.join("; "));
    }
    assert!(total >= MIN_CASES, "{label}: only {total} cases");
    for family in FAMILIES {
        assert!(
            counts.get(family).copied().unwrap_or(0) >= 3,
            "{label}: family {family:?} has fewer than 3 cases"
        );
    }
    counts
}

#[test]
fn every_forged_token_is_refused_by_the_library_verifier() {
    // jku / x5u / URL-shaped kids point here; the verifier must never connect.
    let canary = TcpListener::bind("127.0.0.1:0").unwrap();
    let canary_url = format!("http://{}", canary.local_addr().unwrap());
    let attacker = Attacker::new();
    let record = |alg| KeyRing::generate_record(alg, KeyStatus::Current, NOW).unwrap();
    let (ed, es, rs) = (
        record(Algorithm::EdDSA),
        record(Algorithm::ES256),
        record(Algorithm::RS256),
    );
    let next = |r: &KeyRecord| KeyRecord {
        status: KeyStatus::Next,
        ..r.clone()
    };
    let mut grand: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (label, records) in [
        ("EdDSA", vec![ed.clone()]),
        ("ES256", vec![es.clone()]),
        ("RS256", vec![rs.clone()]),
        (
            "EdDSA (current) + ES256 + RS256 (next)",
            vec![ed.clone(), next(&es), next(&rs)],
        ),
    ] {
        for (family, n) in run(label, &records, &attacker, &canary_url) {
            *grand.entry(family).or_default() += n;
        }
    }
    println!("\n== library verifier, all rings");
    for family in FAMILIES {
        println!(
            "{family:>62}: {:>5}",
            grand.get(family).copied().unwrap_or(0)
        );
    }
    println!("{:>62}: {:>5}", "total", grand.values().sum::<usize>());

    canary.set_nonblocking(true).unwrap();
    match canary.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the verifier made an outbound connection: {other:?}"),
    }
}

/// ECDSA high-S malleability. `(r, s)` and `(r, n − s)` are both valid signatures of the same
/// message: JWS (RFC 7518 §3.4) does not require low-S and Wycheproof treats high-S as valid,
/// so Tessera may accept the twin. That is harmless because a Tessera token is identified by
/// its `jti`, never by its bytes: the twin carries the identical claims, so revoking the
/// original's `jti` refuses the twin too. This test asserts exactly that — the twin is either
/// refused, or accepted with identical claims and caught by the same revocation.
#[test]
fn ecdsa_high_s_twin_is_refused_or_revoked_with_the_original() {
    let record = KeyRing::generate_record(Algorithm::ES256, KeyStatus::Current, NOW).unwrap();
    let ring = KeyRing::from_records(std::slice::from_ref(&record)).unwrap();
    let key = signing_key(&record);
    let (mut refused, mut accepted) = (0, 0);
    // ECDSA signatures are randomised: over several tokens both low→high and high→low occur.
    for i in 0..16 {
        let original = access::issue(&key, &claims(&format!("jti-high-s-{i}"))).unwrap();
        let (input, sig) = original.rsplit_once('.').unwrap();
        let sig = b64::decode(sig).unwrap();
        let twin_sig = p256_high_s(&sig);
        assert_ne!(twin_sig, sig);
        assert_eq!(p256_high_s(&twin_sig), sig, "n − (n − s) = s");
        let twin = format!("{input}.{}", b64::encode(&twin_sig));

        let original_claims = access::verify(&original, &ring, &policy(), NOW).unwrap();
        let mut list = RevocationList::new();
        list.insert(&Revocation::Token {
            jti: original_claims.jti.clone(),
            expires_at: original_claims.exp,
        });
        match access::verify(&twin, &ring, &policy(), NOW) {
            Err(_) => refused += 1,
            Ok(twin_claims) => {
                accepted += 1;
                assert_eq!(
                    twin_claims, original_claims,
                    "the twin carries other claims"
                );
                let subject = RevocationSubject {
                    jti: &twin_claims.jti,
                    sid: twin_claims.sid.as_deref(),
                    sub: &twin_claims.sub,
                    client_id: Some(&twin_claims.client_id),
                    iat: twin_claims.iat,
                };
                assert!(
                    list.is_revoked(subject),
                    "revoking the original's jti must refuse the twin"
                );
            }
        }
    }
    println!(
        "ES256 (r, n − s) twins: {accepted} accepted with identical claims, {refused} refused"
    );
}
