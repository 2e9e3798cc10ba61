//! Micro-benchmark of the per-request work of tessera-core: JWS verification per algorithm next
//! to the raw aws-lc-rs primitive on the same signature and bytes; the JWS layer, the claim
//! checks, base64url and the header parse alone; a cached verification, opaque-token parsing,
//! the revocation check (with an estimate of memory per entry), token issuance and Argon2id at
//! the server's default cost.
//!
//! Run: `cargo bench -p tessera-core --bench hotpath` (release). Each row warms up, then takes
//! samples of a batch of calls each (batches for operations too short to time one by one);
//! median and p99 are per call. `ratio` is the row's median over the raw primitive's; a cold
//! verification and its primitive are sampled in turn (`measure_paired`), so drift of the
//! machine's speed during the run moves both alike.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RSA_PSS_2048_8192_SHA256, RsaPublicKeyComponents,
};
use tessera_core::access::cache::VerifiedCache;
use tessera_core::access::{self, AccessClaims, AccessPolicy};
use tessera_core::jose::{Algorithm, b64, json, verify_compact};
use tessera_core::keys::{KeyRing, KeyStatus};
use tessera_core::opaque::{OpaqueToken, TokenKind};
use tessera_core::password::PasswordHasher;
use tessera_core::revocation::{Revocation, RevocationList, RevocationSubject};
use tessera_core::time::UnixTime;

const NOW: UnixTime = UnixTime(1_700_000_000);
/// Time spent per row after warm-up, unless `max_samples` is reached first.
const BUDGET: Duration = Duration::from_millis(1500);

struct Stats {
    n: usize,
    median: Duration,
    p99: Duration,
}

/// Times `f` in samples of `batch` calls: warm-up (a tenth of the budget), then samples
/// until the budget or `max_samples`.
fn measure(batch: u32, max_samples: usize, mut f: impl FnMut()) -> Stats {
    let warm = Instant::now();
    while warm.elapsed() < BUDGET / 10 {
        f();
    }
    let mut samples = Vec::with_capacity(max_samples.min(100_000));
    let start = Instant::now();
    while samples.len() < max_samples && (start.elapsed() < BUDGET || samples.len() < 5) {
        samples.push(sample(batch, &mut f));
    }
    stats(samples, batch)
}

/// The time per call of one batch of `batch` calls of `f`.
fn sample(batch: u32, f: &mut dyn FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..batch {
        f();
    }
    t.elapsed() / batch
}

/// The median and p99 of per-call samples, each taken over `batch` calls.
fn stats(mut samples: Vec<Duration>, batch: u32) -> Stats {
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        n: samples.len() * batch as usize,
        median: pick(0.5),
        p99: pick(0.99),
    }
}

/// Times `base` and `test` in alternating samples (one of each, in turn, until the budget),
/// so that a machine that speeds up or slows down meanwhile moves both alike: the ratio of
/// their medians then compares the two calls, not two moments.
fn measure_paired(
    batch: u32,
    max_samples: usize,
    mut base: impl FnMut(),
    mut test: impl FnMut(),
) -> (Stats, Stats) {
    let warm = Instant::now();
    while warm.elapsed() < BUDGET / 10 {
        base();
        test();
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let start = Instant::now();
    while a.len() < max_samples && (start.elapsed() < 2 * BUDGET || a.len() < 5) {
        a.push(sample(batch, &mut base));
        b.push(sample(batch, &mut test));
    }
    (stats(a, batch), stats(b, batch))
}

fn row(name: &str, s: &Stats, baseline: Option<&Stats>) {
    let ratio = baseline.map_or_else(String::new, |b| {
        format!("{:.3}×", s.median.as_secs_f64() / b.median.as_secs_f64())
    });
    println!(
        "| {name:<44} | {:>9} | {:>10.2?} | {:>10.2?} | {ratio:>7} |",
        s.n, s.median, s.p99
    );
}

fn policy() -> AccessPolicy {
    AccessPolicy {
        issuer: "https://auth.example".into(),
        audience: "https://auth.example".into(),
        leeway_secs: 30,
    }
}

/// An identifier shaped like the server's (`opaque::random_id`: 16 bytes, base64url), unique
/// per `n` and `kind`.
fn server_id(n: usize, kind: u8) -> String {
    let mut bytes = [kind; 16];
    bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
    b64::encode(&bytes)
}

fn claims(n: usize) -> AccessClaims {
    AccessClaims {
        iss: "https://auth.example".into(),
        sub: server_id(n, 1),
        aud: "https://auth.example".into(),
        exp: NOW.plus(600),
        iat: NOW,
        nbf: NOW,
        jti: server_id(n, 2),
        sid: Some(server_id(n, 3)),
        scope: Some("read write".into()),
        client_id: "first-party".into(),
        username: Some("alice".into()),
        cnf: None,
    }
}

/// The raw aws-lc-rs check of `signature` over `input`, with the key parsed once (as
/// `VerifyingKey` does), rebuilt here from the published JWK or the HMAC secret.
enum Raw {
    Public(ParsedPublicKey),
    Hmac(Box<hmac::Key>),
}

impl Raw {
    fn of(ring: &KeyRing, kid: &str, alg: Algorithm) -> Self {
        let jwk = ring.verifier(kid).unwrap().public_jwk();
        let part = |name: &str| b64::decode(jwk.as_ref().unwrap()[name].as_str().unwrap()).unwrap();
        match alg {
            Algorithm::EdDSA => Self::Public(ParsedPublicKey::new(&ED25519, part("x")).unwrap()),
            Algorithm::ES256 => {
                let mut point = vec![4];
                point.extend(part("x"));
                point.extend(part("y"));
                Self::Public(ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).unwrap())
            }
            Algorithm::RS256 | Algorithm::PS256 => {
                let params = if alg == Algorithm::RS256 {
                    &RSA_PKCS1_2048_8192_SHA256
                } else {
                    &RSA_PSS_2048_8192_SHA256
                };
                let (n, e) = (part("n"), part("e"));
                Self::Public(
                    RsaPublicKeyComponents { n: &n, e: &e }
                        .to_parsed_public_key(params)
                        .unwrap(),
                )
            }
            Algorithm::HS256 => {
                let secret = ring.secret_of(kid).unwrap();
                Self::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, &secret)))
            }
        }
    }

    fn verify(&self, input: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Public(key) => key.verify_sig(input, signature).is_ok(),
            Self::Hmac(key) => hmac::verify(key, input, signature).is_ok(),
        }
    }
}

/// Resident set size in bytes (Linux `/proc/self/statm`), for memory per revocation entry.
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn revocation_list(entries: usize) -> RevocationList {
    let mut list = RevocationList::new();
    for n in 0..entries {
        // A mix like the server's: mostly single tokens, some sessions, a few users.
        let r = match n % 10 {
            0..=6 => Revocation::Token {
                jti: claims(n).jti,
                expires_at: NOW.plus(600),
            },
            7 | 8 => Revocation::Session {
                sid: claims(n).sid.unwrap(),
                expires_at: NOW.plus(600),
            },
            _ => Revocation::User {
                user_id: claims(n).sub,
                not_before: NOW,
                expires_at: NOW.plus(600),
            },
        };
        list.insert(&r);
    }
    list
}

fn main() {
    println!(
        "tessera-core hot-path benchmark ({} CPUs), per call",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| {:<44} | {:>9} | {:>10} | {:>10} | {:>7} |",
        "", "n", "median", "p99", "ratio"
    );
    println!(
        "|{:-<46}|{:-<11}|{:-<12}|{:-<12}|{:-<9}|",
        "", "", "", "", ""
    );
    let policy = policy();

    for alg in Algorithm::ALL {
        let record = KeyRing::generate_record(alg, KeyStatus::Current, NOW).unwrap();
        let ring = KeyRing::from_records(std::slice::from_ref(&record)).unwrap();
        let token = access::issue(ring.current().unwrap(), &claims(1)).unwrap();
        let (input, signature) = token.rsplit_once('.').unwrap();
        let signature = b64::decode(signature).unwrap();
        let raw = Raw::of(&ring, &record.kid, alg);
        let slow = matches!(alg, Algorithm::RS256 | Algorithm::PS256);
        let batch = if alg == Algorithm::HS256 { 20 } else { 1 };
        let max = if slow { 20_000 } else { 200_000 };

        let (primitive, full) = measure_paired(
            batch,
            max,
            || assert!(raw.verify(black_box(input.as_bytes()), black_box(&signature))),
            || {
                black_box(access::verify(black_box(&token), &ring, &policy, NOW).unwrap());
            },
        );
        row(
            &format!("{alg} raw aws-lc-rs verify"),
            &primitive,
            Some(&primitive),
        );
        row(
            &format!("{alg} access::verify, cold"),
            &full,
            Some(&primitive),
        );
        if alg == Algorithm::EdDSA {
            // The JWS layer alone (segments, base64url, header, key lookup, signature), to
            // tell its overhead from the claim checks'.
            let (primitive, jws) = measure_paired(
                batch,
                max,
                || assert!(raw.verify(black_box(input.as_bytes()), black_box(&signature))),
                || {
                    black_box(
                        verify_compact(black_box(&token), |kid| ring.verifier(kid?)).unwrap(),
                    );
                },
            );
            row(
                "EdDSA jose::verify_compact (JWS only), cold",
                &jws,
                Some(&primitive),
            );
            let cache = VerifiedCache::default();
            let lookup = |kid: &str| ring.verifier(kid);
            let hit = measure(50, 200_000, || {
                black_box(
                    cache
                        .verify_with(black_box(&token), lookup, &policy, NOW)
                        .unwrap(),
                );
            });
            row(
                "EdDSA VerifiedCache::verify_with, re-used",
                &hit,
                Some(&primitive),
            );
        }
        let to_sign = claims(1);
        let issue = measure(batch, if slow { 500 } else { 100_000 }, || {
            black_box(access::issue(ring.current().unwrap(), black_box(&to_sign)).unwrap());
        });
        row(&format!("{alg} access::issue"), &issue, None);
    }

    let record = KeyRing::generate_record(Algorithm::EdDSA, KeyStatus::Current, NOW).unwrap();
    let ring = KeyRing::from_records(std::slice::from_ref(&record)).unwrap();
    let token = access::issue(ring.current().unwrap(), &claims(1)).unwrap();
    let payload = b64::decode(token.split('.').nth(1).unwrap()).unwrap();
    let checks = measure(20, 200_000, || {
        black_box(access::check_claims(black_box(&payload), &policy, NOW).unwrap());
    });
    row("claim checks alone (access::check_claims)", &checks, None);
    // The other parts of a cold EdDSA verification, each alone (so warm): the base64url of
    // the three segments and the strict parse of the header.
    let segments: Vec<&str> = token.split('.').collect();
    let decode = measure(20, 200_000, || {
        for segment in &segments {
            black_box(b64::decode(black_box(segment)).unwrap());
        }
    });
    row("base64url of the three segments", &decode, None);
    let header = b64::decode(segments[0]).unwrap();
    let parse = measure(20, 200_000, || {
        json::parse_members(black_box(&header), |_, value| {
            black_box(value);
        })
        .unwrap();
    });
    row("header strict JSON (json::parse_members)", &parse, None);

    let opaque = OpaqueToken::generate(TokenKind::Session).unwrap();
    let text = opaque.expose_secret().to_owned();
    let parse = measure(50, 200_000, || {
        black_box(OpaqueToken::parse(TokenKind::Session, black_box(&text)).unwrap());
    });
    row("OpaqueToken::parse (session)", &parse, None);

    let mut memory = Vec::new();
    for entries in [1_000usize, 1_000_000] {
        let before = rss();
        let list = revocation_list(entries);
        let after = rss();
        // A present jti (a hit), and an absent one: the common case (every check misses).
        let present = claims(entries / 2 - entries / 2 % 10);
        let absent = claims(entries + 7);
        for (what, c) in [("absent", &absent), ("present", &present)] {
            let subject = RevocationSubject {
                jti: &c.jti,
                sid: c.sid.as_deref(),
                sub: &c.sub,
                client_id: Some(&c.client_id),
                iat: c.iat,
            };
            let s = measure(100, 200_000, || {
                black_box(list.is_revoked(black_box(subject)));
            });
            row(
                &format!(
                    "RevocationList::is_revoked, 10^{} ({what})",
                    entries.ilog10()
                ),
                &s,
                None,
            );
        }
        if let (Some(b), Some(a)) = (before, after) {
            memory.push((entries, a.saturating_sub(b)));
        }
        drop(list);
    }

    let hasher = PasswordHasher::owasp().unwrap();
    let phc = hasher.hash("violet tugboat anagram 1987").unwrap();
    let argon = measure(1, 30, || {
        assert!(hasher.verify(black_box("violet tugboat anagram 1987"), &phc));
    });
    row("Argon2id verify (owasp: m=19 MiB, t=2, p=1)", &argon, None);

    for (entries, grown) in memory {
        // RSS moves in pages and the allocator reuses memory it already holds, so a small
        // list is below what this can see.
        if grown < 64 * 4096 {
            println!("revocation list memory, {entries} entries: below RSS resolution");
        } else {
            println!(
                "revocation list memory, {entries} entries: {:.0} bytes/entry (RSS growth while \
                 building it; 70% jti, 20% sid, 10% user entries, ids shaped like the server's)",
                grown as f64 / entries as f64
            );
        }
    }
}
