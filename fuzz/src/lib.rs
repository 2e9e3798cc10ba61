//! Fixtures shared by the fuzz targets and the seed generator (`examples/make_seeds.rs`).
//!
//! The one design decision: the signing keys are **fixed files** (`fuzz/keys/`, test-only keys
//! made once with `openssl genpkey`), not generated per process. Then the valid tokens in the
//! seed corpus verify in every run, the fuzzer mutates real signed tokens instead of only ever
//! seeing "bad signature", and a crash input reproduces exactly.

#![forbid(unsafe_code)]

use std::sync::OnceLock;

use tessera_core::access::AccessPolicy;
use tessera_core::jose::{Algorithm, Jwk, SigningKey, VerifyingKey};
use tessera_core::keys::{KeyRecord, KeyRing, KeyStatus};
use tessera_core::time::UnixTime;

/// The fixed "now" of every fuzz run.
pub const NOW: UnixTime = UnixTime(1_700_000_000);
/// The issuer the fixture's access-token policy expects.
pub const ISSUER: &str = "https://tessera.fuzz";
/// The audience the fixture's access-token policy expects.
pub const AUDIENCE: &str = "https://api.tessera.fuzz";
/// A key id that is in the ring but `revoked`: tokens under it must never verify.
pub const REVOKED_KID: &str = "fuzz-revoked";

const ED25519: &[u8] = include_bytes!("../keys/ed25519.pk8");
const P256: &[u8] = include_bytes!("../keys/p256.pk8");
const RSA2048: &[u8] = include_bytes!("../keys/rsa2048.pk8");
const HS256: &[u8] = include_bytes!("../keys/hs256.key");

/// The RFC 7520 / RFC 8037 example documents, whose keys join the fixture so that the
/// cookbook's compact tokens (in the seed corpus) verify.
/// (The cookbook's PS384 and ES512 examples use algorithms Tessera does not implement.)
const COOKBOOK: [&str; 3] = [
    include_str!(
        "../../crates/tessera-core/tests/vectors/jose-cookbook/jws/4_1.rsa_v15_signature.json"
    ),
    include_str!(
        "../../crates/tessera-core/tests/vectors/jose-cookbook/jws/4_4.hmac-sha2_integrity_protection.json"
    ),
    include_str!("../../crates/tessera-core/tests/vectors/jose-cookbook/curve25519/jws.json"),
];

/// Every key the fuzz targets verify with.
pub struct Fixture {
    /// One signing key per algorithm (`kid` = `fuzz-<alg>`), in [`Algorithm::ALL`] order.
    pub signers: Vec<SigningKey>,
    /// A signer whose `kid` is [`REVOKED_KID`] (the Ed25519 secret under another name).
    pub revoked: SigningKey,
    /// The verifying keys: the signers' and the cookbook's.
    pub verifiers: Vec<VerifyingKey>,
    /// The ring: EdDSA current, ES256 next, the rest retiring, [`REVOKED_KID`] revoked.
    pub ring: KeyRing,
    /// What access tokens must satisfy.
    pub policy: AccessPolicy,
}

fn secret_of(alg: Algorithm) -> &'static [u8] {
    match alg {
        Algorithm::EdDSA => ED25519,
        Algorithm::ES256 => P256,
        Algorithm::RS256 | Algorithm::PS256 => RSA2048,
        Algorithm::HS256 => HS256,
    }
}

/// The `kid` of the fixture key for `alg`.
#[must_use]
pub fn kid_of(alg: Algorithm) -> String {
    format!("fuzz-{}", alg.as_str().to_ascii_lowercase())
}

/// The cookbook keys: each document's `input.key` pinned to its `input.alg`, where Tessera
/// supports both.
fn cookbook_keys() -> Vec<VerifyingKey> {
    COOKBOOK
        .iter()
        .filter_map(|text| {
            let doc: serde_json::Value = serde_json::from_str(text).ok()?;
            let mut key = doc.get("input")?.get("key")?.clone();
            let alg = doc.get("input")?.get("alg")?.clone();
            key.as_object_mut()?.insert("alg".into(), alg);
            VerifyingKey::from_jwk(&Jwk::from_value(key).ok()?).ok()
        })
        .collect()
}

fn build() -> Fixture {
    let signers: Vec<SigningKey> = Algorithm::ALL
        .iter()
        .map(|&alg| {
            SigningKey::from_secret(alg, kid_of(alg), secret_of(alg)).expect("fixture key loads")
        })
        .collect();
    let revoked = SigningKey::from_secret(Algorithm::EdDSA, REVOKED_KID.into(), ED25519)
        .expect("fixture key loads");
    let mut records: Vec<KeyRecord> = signers
        .iter()
        .map(|key| KeyRecord {
            kid: key.kid().to_owned(),
            alg: key.alg(),
            status: match key.alg() {
                Algorithm::EdDSA => KeyStatus::Current,
                Algorithm::ES256 => KeyStatus::Next,
                _ => KeyStatus::Retiring,
            },
            created_at: NOW,
            status_since: NOW,
            secret: key.secret_bytes_dangerously(),
        })
        .collect();
    records.push(KeyRecord {
        kid: REVOKED_KID.into(),
        alg: Algorithm::EdDSA,
        status: KeyStatus::Revoked,
        created_at: NOW,
        status_since: NOW,
        secret: revoked.secret_bytes_dangerously(),
    });
    let ring = KeyRing::from_records(&records).expect("fixture ring loads");
    let mut verifiers: Vec<VerifyingKey> = signers.iter().map(SigningKey::verifying_key).collect();
    let cookbook = cookbook_keys();
    assert_eq!(cookbook.len(), 3, "cookbook keys: RS256, HS256, EdDSA");
    verifiers.extend(cookbook);
    Fixture {
        signers,
        revoked,
        verifiers,
        ring,
        policy: AccessPolicy {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            leeway_secs: 30,
        },
    }
}

/// The fixture, built once per process.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}
