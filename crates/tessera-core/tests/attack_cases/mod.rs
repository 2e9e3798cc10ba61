//! Forged and malformed tokens for the attack suites: RFC 8725 §2–3, the jwt_tool and jwt-hack
//! playbooks, OWASP ASVS 5.0 V9.
//!
//! Shared by `tessera-core/tests/suite/attacks.rs` (the library verifier) and
//! `tessera-server/tests/suite/attacks.rs` (the real HTTP path), which includes this file by
//! `#[path]`; it only needs `tessera-core`, `aws-lc-rs`, `base64` and `serde_json`.
//!
//! Every case starts from the real thing: the public keys as the JWKS publishes them (all an
//! attacker has) and a genuine, accepted access token per key. Many cases are additionally
//! signed with the *real private key* over the malformed header or payload bytes — something no
//! attacker can do — so that the one rule under test, not a bad signature, is what has to refuse
//! them. The generator also returns *controls*: tokens built through the same raw-signing and
//! raw-JSON paths that must be accepted, proving those paths make valid tokens (otherwise every
//! "signed by the real key" case could be passing for the wrong reason).

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use tessera_core::jose::{Algorithm, SigningKey, b64};
use tessera_core::opaque::{OpaqueToken, TokenKind};

// The families, named as in the issue.
/// `alg: none` in every spelling, with and without a signature.
pub const NONE: &str = "none (every spelling, with/without signature)";
/// Stripped, truncated, extended, bit-flipped and transplanted signatures.
pub const SIGNATURE: &str = "stripped/truncated/bit-flipped signatures";
/// Payload (or header) changed, signature kept.
pub const TAMPERED: &str = "claims tampered under a kept signature";
/// HMAC keyed with the public key in every encoding; asymmetric algorithm substitution.
pub const KEY_CONFUSION: &str = "HS/asymmetric key confusion";
/// HS256 with empty and common secrets.
pub const WEAK_HMAC: &str = "empty and common HMAC secrets";
/// Header parameters that carry or point at a key.
pub const EMBEDDED: &str = "embedded jwk/jku/x5u/x5c";
/// `kid` path traversal, SQL and command injection, unknown, missing, mistyped, cross-key.
pub const KID: &str = "kid traversal/injection/unknown/missing";
/// ECDSA r = s = 0 (CVE-2022-21449), out-of-range scalars, non-canonical encodings.
pub const ECDSA: &str = "ECDSA r=s=0 and signature malleability";
/// `crit` and `b64: false` (RFC 7797).
pub const CRIT: &str = "crit and b64:false";
/// Nested JWTs and `cty`.
pub const NESTED: &str = "nested JWT and cty";
/// Another kind of token offered as an access token.
pub const TYP: &str = "typ confusion (ID/refresh/session/other JWTs)";
/// Issuer and audience.
pub const ISS_AUD: &str = "wrong iss/aud";
/// Required claims missing or of the wrong JSON type.
pub const REQUIRED: &str = "missing/mistyped required claims";
/// Time claims of the wrong type or range.
pub const TIME: &str = "exp/nbf/iat as strings/floats/negative/huge/missing";
/// Duplicate JSON member names.
pub const DUPLICATE: &str = "duplicate keys";
/// Encodings: non-UTF-8, BOM, whitespace, padding, segments, JWE and JSON serialisations.
pub const ENCODING: &str = "non-UTF-8/BOM/whitespace/padding/extra segments/JWE-shaped";
/// Tokens and headers beyond the size bound.
pub const OVERSIZED: &str = "oversized tokens and headers";

/// Every family, in report order.
pub const FAMILIES: [&str; 17] = [
    NONE,
    SIGNATURE,
    TAMPERED,
    KEY_CONFUSION,
    WEAK_HMAC,
    EMBEDDED,
    KID,
    ECDSA,
    CRIT,
    NESTED,
    TYP,
    ISS_AUD,
    REQUIRED,
    TIME,
    DUPLICATE,
    ENCODING,
    OVERSIZED,
];

/// One forged or malformed token.
#[derive(Clone, Debug)]
pub struct AttackCase {
    /// Which family of the issue it belongs to (one of [`FAMILIES`]).
    pub family: &'static str,
    /// What exactly it tries, prefixed by the key it attacks.
    pub name: String,
    /// The token, as it would be sent.
    pub token: String,
}

/// A real signing key of the ring under attack.
pub struct RealKey {
    /// Its algorithm.
    pub alg: Algorithm,
    /// Its `kid`.
    pub kid: String,
    /// PKCS#8 of the private key: lets the suite sign arbitrary bytes as only the issuer could.
    pub pkcs8: Vec<u8>,
    /// The public JWK as the JWKS publishes it: all an attacker has.
    pub public_jwk: Value,
    /// A genuine access token signed by this key, accepted as it is.
    pub genuine: String,
}

/// The attacker's own key pairs (one per asymmetric algorithm).
pub struct Attacker {
    /// The keys.
    pub keys: Vec<AttackerKey>,
}

/// One attacker key pair.
pub struct AttackerKey {
    /// Its algorithm.
    pub alg: Algorithm,
    /// Its `kid`.
    pub kid: String,
    /// PKCS#8 of the private key.
    pub pkcs8: Vec<u8>,
    /// Its public JWK.
    pub jwk: Value,
}

impl Attacker {
    /// Fresh Ed25519, P-256 and RSA-2048 key pairs.
    pub fn new() -> Self {
        let keys = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256]
            .into_iter()
            .map(|alg| {
                let kid = format!("attacker-{alg}");
                let key = SigningKey::generate(alg, kid.clone()).unwrap();
                AttackerKey {
                    alg,
                    kid,
                    pkcs8: key.secret_bytes_dangerously().to_vec(),
                    jwk: key.verifying_key().public_jwk().unwrap(),
                }
            })
            .collect();
        Self { keys }
    }
}

/// What the generator attacks.
pub struct Setup<'a> {
    /// The ring's keys, each with a genuine token.
    pub keys: &'a [RealKey],
    /// The published JWKS document.
    pub jwks: &'a Value,
    /// The attacker's keys.
    pub attacker: &'a Attacker,
    /// `http://127.0.0.1:<port>` of a listener that must never be contacted.
    pub canary: &'a str,
}

/// The generator's output.
#[derive(Default)]
pub struct Generated {
    /// Tokens that must be refused, deduplicated.
    pub cases: Vec<AttackCase>,
    /// `(name, token)` pairs built through the same raw paths that must be accepted.
    pub controls: Vec<(String, String)>,
}

/// Every attack against every key of `setup`.
pub fn generate(setup: &Setup<'_>) -> Generated {
    let mut cases = Vec::new();
    let mut controls = Vec::new();
    for key in setup.keys {
        let ctx = Ctx::new(key);
        let mut out = Out {
            tag: format!("{}:{}", key.alg, key.kid.get(..6).unwrap_or(&key.kid)),
            cases: &mut cases,
        };
        make_controls(&ctx, &out.tag, &mut controls);
        none(&ctx, &mut out);
        signature(&ctx, &mut out);
        tampered(&ctx, setup, &mut out);
        key_confusion(&ctx, setup, &mut out);
        weak_hmac(&ctx, &mut out);
        embedded(&ctx, setup, &mut out);
        kid(&ctx, setup, &mut out);
        ecdsa(&ctx, &mut out);
        crit(&ctx, &mut out);
        nested(&ctx, &mut out);
        typ(&ctx, &mut out);
        iss_aud(&ctx, &mut out);
        required(&ctx, &mut out);
        time(&ctx, &mut out);
        duplicate(&ctx, &mut out);
        encoding(&ctx, setup, &mut out);
        oversized(&ctx, &mut out);
    }
    let mut out = Out {
        tag: "any".into(),
        cases: &mut cases,
    };
    for kind in [TokenKind::Session, TokenKind::Refresh] {
        // Fresh (never stored) opaque tokens where a JWT is expected.
        let t = OpaqueToken::generate(kind).unwrap();
        out.add(
            TYP,
            format!(
                "fresh {} token as an access token",
                kind.prefix().unwrap_or_default()
            ),
            t.expose_secret().to_owned(),
        );
    }
    let mut seen = HashSet::new();
    cases.retain(|c| seen.insert(c.token.clone()));
    Generated { cases, controls }
}

// ---------------------------------------------------------------------------------------------
// Plumbing.

struct Out<'a> {
    tag: String,
    cases: &'a mut Vec<AttackCase>,
}

impl Out<'_> {
    fn add(&mut self, family: &'static str, name: impl std::fmt::Display, token: String) {
        self.cases.push(AttackCase {
            family,
            name: format!("[{}] {name}", self.tag),
            token,
        });
    }
}

/// A real key and its genuine token, taken apart.
struct Ctx<'a> {
    key: &'a RealKey,
    /// Genuine header, payload and signature segments.
    h: String,
    p: String,
    s: String,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    sig: Vec<u8>,
}

impl<'a> Ctx<'a> {
    fn new(key: &'a RealKey) -> Self {
        let parts: Vec<&str> = key.genuine.split('.').collect();
        assert_eq!(parts.len(), 3, "genuine token is a compact JWS");
        Self {
            key,
            h: parts[0].to_owned(),
            p: parts[1].to_owned(),
            s: parts[2].to_owned(),
            header: obj(serde_json::from_slice(&b64::decode(parts[0]).unwrap()).unwrap()),
            claims: obj(serde_json::from_slice(&b64::decode(parts[1]).unwrap()).unwrap()),
            sig: b64::decode(parts[2]).unwrap(),
        }
    }

    fn kid(&self) -> &str {
        &self.key.kid
    }

    fn alg(&self) -> &'static str {
        self.key.alg.as_str()
    }

    /// `iat` of the genuine token: "now" for the verifier under test.
    fn now(&self) -> i64 {
        self.claims["iat"].as_i64().unwrap()
    }

    fn header(&self) -> Map<String, Value> {
        self.header.clone()
    }

    fn claims(&self) -> Map<String, Value> {
        self.claims.clone()
    }

    /// `input.signature` with the real key, over exactly `input`.
    fn sign(&self, input: &str) -> String {
        let sig = sign_with(self.key.alg, &self.key.pkcs8, input.as_bytes());
        format!("{input}.{}", b64::encode(&sig))
    }

    fn real_segments(&self, h: &str, p: &str) -> String {
        self.sign(&format!("{h}.{p}"))
    }

    fn real_bytes(&self, h: &[u8], p: &[u8]) -> String {
        self.real_segments(&b64::encode(h), &b64::encode(p))
    }

    fn real(&self, header: &Map<String, Value>, claims: &Map<String, Value>) -> String {
        self.real_bytes(&to_json(header), &to_json(claims))
    }

    fn real_header(&self, header: &Map<String, Value>) -> String {
        self.real(header, &self.claims)
    }

    fn real_claims(&self, claims: &Map<String, Value>) -> String {
        self.real(&self.header, claims)
    }

    /// The genuine header and claims, with `raw` JSON text as the value of claim `name`.
    fn real_raw_claim(&self, name: &str, raw: &str) -> String {
        self.real_bytes(&to_json(&self.header), &json_raw(&self.claims, name, raw))
    }

    fn real_raw_header(&self, name: &str, raw: &str) -> String {
        self.real_bytes(&json_raw(&self.header, name, raw), &to_json(&self.claims))
    }

    /// Header and payload segments of the caller's choosing, the genuine signature kept.
    fn kept(&self, h: &str, p: &str) -> String {
        format!("{h}.{p}.{}", self.s)
    }

    /// Genuine header and payload with the given signature bytes.
    fn with_sig(&self, sig: &[u8]) -> String {
        format!("{}.{}.{}", self.h, self.p, b64::encode(sig))
    }
}

/// The raw JOSE signature of `input` under a PKCS#8 key (or an HMAC secret for HS256).
pub fn sign_with(alg: Algorithm, pkcs8: &[u8], input: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    match alg {
        Algorithm::EdDSA => Ed25519KeyPair::from_pkcs8(pkcs8)
            .unwrap()
            .sign(input)
            .as_ref()
            .to_vec(),
        Algorithm::ES256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .unwrap()
            .sign(&rng, input)
            .unwrap()
            .as_ref()
            .to_vec(),
        Algorithm::RS256 | Algorithm::PS256 => {
            let pair = RsaKeyPair::from_pkcs8(pkcs8).unwrap();
            let mut sig = vec![0u8; pair.public_modulus_len()];
            let padding = if alg == Algorithm::PS256 {
                &RSA_PSS_SHA256
            } else {
                &RSA_PKCS1_SHA256
            };
            pair.sign(padding, &rng, input, &mut sig).unwrap();
            sig
        }
        Algorithm::HS256 => hmac_sign(hmac::HMAC_SHA256, pkcs8, input),
    }
}

fn hmac_sign(alg: hmac::Algorithm, secret: &[u8], input: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(alg, secret), input)
        .as_ref()
        .to_vec()
}

/// `header.payload.HMAC(secret)` with the header's `alg` set to `label`.
fn hmac_token(
    label: &str,
    alg: hmac::Algorithm,
    secret: &[u8],
    header: &Map<String, Value>,
    p: &str,
) -> String {
    let header = with(header.clone(), "alg", json!(label));
    let input = format!("{}.{p}", b64::encode(&to_json(&header)));
    let sig = hmac_sign(alg, secret, input.as_bytes());
    format!("{input}.{}", b64::encode(&sig))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn with(mut m: Map<String, Value>, name: &str, v: Value) -> Map<String, Value> {
    m.insert(name.to_owned(), v);
    m
}

fn without(mut m: Map<String, Value>, name: &str) -> Map<String, Value> {
    m.remove(name);
    m
}

fn to_json(m: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(m).unwrap()
}

const RAW: &str = "@@tessera-raw@@";

/// `m` as JSON with member `name` set to the raw JSON text `raw` (which may be invalid JSON).
fn json_raw(m: &Map<String, Value>, name: &str, raw: &str) -> Vec<u8> {
    let m = with(m.clone(), name, json!(RAW));
    let text = serde_json::to_string(&m).unwrap();
    text.replacen(&format!("\"{RAW}\""), raw, 1).into_bytes()
}

/// `m` without the members `remove`, with the raw member text `members` put first.
fn json_prepend(m: &Map<String, Value>, remove: &[&str], members: &str) -> Vec<u8> {
    let mut m = m.clone();
    for name in remove {
        m.remove(*name);
    }
    let rest = serde_json::to_string(&m).unwrap();
    let inner = &rest[1..rest.len() - 1];
    let sep = if inner.is_empty() { "" } else { "," };
    format!("{{{members}{sep}{inner}}}").into_bytes()
}

/// `m` with member `name` twice: first `first`, then `second` (raw JSON texts).
fn json_dup(m: &Map<String, Value>, name: &str, first: &str, second: &str) -> Vec<u8> {
    let key = json!(name);
    json_prepend(m, &[name], &format!("{key}:{first},{key}:{second}"))
}

fn replace_bytes(haystack: &[u8], needle: &[u8], replacement: &[u8]) -> Vec<u8> {
    let at = haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let mut out = haystack[..at].to_vec();
    out.extend_from_slice(replacement);
    out.extend_from_slice(&haystack[at + needle.len()..]);
    out
}

const URL_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The same bytes with a non-zero unused trailing bit (a lenient decoder's second spelling),
/// if the segment has trailing bits at all.
fn noncanonical(seg: &str) -> Option<String> {
    if seg.len() % 4 == 0 {
        return None;
    }
    let last = *seg.as_bytes().last()?;
    let idx = URL_ALPHABET.iter().position(|&c| c == last)?;
    let mut out = seg[..seg.len() - 1].to_owned();
    out.push(char::from(URL_ALPHABET[idx ^ 1]));
    Some(out)
}

/// `seg` with `=` padding (at least one `=`, even where none would be due).
fn padded(seg: &str) -> String {
    match seg.len() % 4 {
        0 => format!("{seg}===="),
        2 => format!("{seg}=="),
        _ => format!("{seg}="),
    }
}

fn std_alphabet(seg: &str) -> String {
    seg.replace('-', "+").replace('_', "/")
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 256-bit arithmetic for signature malleability (big-endian u64 limbs).

/// The order n of the P-256 group.
pub const P256_N: &str = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
/// The order L of the Ed25519 group, big-endian.
pub const ED25519_L: &str = "1000000000000000000000000000000014DEF9DEA2F79CD65812631A5CF5D3ED";

fn limbs(bytes: &[u8]) -> [u64; 4] {
    assert_eq!(bytes.len(), 32);
    let mut out = [0u64; 4];
    for (i, limb) in out.iter_mut().enumerate() {
        *limb = u64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
    }
    out
}

fn limb_bytes(l: [u64; 4]) -> Vec<u8> {
    l.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// `a - b` for 256-bit big-endian numbers; panics on underflow.
pub fn sub256(a: &[u8], b: &[u8]) -> Vec<u8> {
    let (a, b) = (limbs(a), limbs(b));
    let mut out = [0u64; 4];
    let mut borrow = false;
    for i in (0..4).rev() {
        let (d1, b1) = a[i].overflowing_sub(b[i]);
        let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
        out[i] = d2;
        borrow = b1 || b2;
    }
    assert!(!borrow, "256-bit subtraction underflowed");
    limb_bytes(out)
}

/// `a + b` for 256-bit big-endian numbers; panics on overflow.
pub fn add256(a: &[u8], b: &[u8]) -> Vec<u8> {
    let (a, b) = (limbs(a), limbs(b));
    let mut out = [0u64; 4];
    let mut carry = false;
    for i in (0..4).rev() {
        let (s1, c1) = a[i].overflowing_add(b[i]);
        let (s2, c2) = s1.overflowing_add(u64::from(carry));
        out[i] = s2;
        carry = c1 || c2;
    }
    assert!(!carry, "256-bit addition overflowed");
    limb_bytes(out)
}

/// The ECDSA twin of a JOSE ES256 signature `r || s`: `r || (n − s)`. Mathematically valid
/// for the same message and key (ECDSA malleability).
pub fn p256_high_s(sig: &[u8]) -> Vec<u8> {
    assert_eq!(sig.len(), 64);
    let mut out = sig[..32].to_vec();
    out.extend(sub256(&hex(P256_N), &sig[32..]));
    out
}

/// An Ed25519 signature `R || S` with `S + L` (little-endian S): the non-canonical spelling
/// RFC 8032 §5.1.7 requires verifiers to refuse.
fn ed25519_s_plus_l(sig: &[u8]) -> Vec<u8> {
    let mut s_be: Vec<u8> = sig[32..].iter().rev().copied().collect();
    s_be = add256(&s_be, &hex(ED25519_L));
    let mut out = sig[..32].to_vec();
    out.extend(s_be.iter().rev());
    out
}

// ---------------------------------------------------------------------------------------------
// DER, PEM and OpenSSH encodings of a public key, built from the JWK alone.

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap());
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).unwrap());
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::new();
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    der(0x02, &content)
}

fn der_seq(items: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &items.concat())
}

fn member_bytes(jwk: &Value, name: &str) -> Vec<u8> {
    b64::decode(jwk[name].as_str().unwrap()).unwrap()
}

const ED25519_SPKI_PREFIX: &str = "302a300506032b6570032100";
const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

/// PKCS#1 `RSAPublicKey` of an RSA JWK.
fn rsa_pkcs1(jwk: &Value) -> Vec<u8> {
    der_seq(&[
        der_uint(&member_bytes(jwk, "n")),
        der_uint(&member_bytes(jwk, "e")),
    ])
}

/// The X.509 `SubjectPublicKeyInfo` DER of a public JWK.
pub fn spki_der(jwk: &Value) -> Vec<u8> {
    match jwk["kty"].as_str().unwrap() {
        "OKP" => [hex(ED25519_SPKI_PREFIX), member_bytes(jwk, "x")].concat(),
        "EC" => [
            hex(P256_SPKI_PREFIX),
            vec![4],
            member_bytes(jwk, "x"),
            member_bytes(jwk, "y"),
        ]
        .concat(),
        "RSA" => {
            let algorithm = der_seq(&[hex("06092a864886f70d010101"), hex("0500")]);
            let bits = der(0x03, &[&[0u8][..], &rsa_pkcs1(jwk)].concat());
            der_seq(&[algorithm, bits])
        }
        other => panic!("no SPKI for {other}"),
    }
}

fn pem(label: &str, der: &[u8], eol: &str, final_eol: bool) -> Vec<u8> {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let mut text = format!("-----BEGIN {label}-----{eol}");
    for line in lines {
        text.push_str(line);
        text.push_str(eol);
    }
    text.push_str(&format!("-----END {label}-----"));
    if final_eol {
        text.push_str(eol);
    }
    text.into_bytes()
}

fn ssh_string(out: &mut Vec<u8>, data: &[u8]) {
    out.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
    out.extend_from_slice(data);
}

fn ssh_mpint(out: &mut Vec<u8>, data: &[u8]) {
    let trimmed: Vec<u8> = data.iter().copied().skip_while(|b| *b == 0).collect();
    let mut v = Vec::new();
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend(trimmed);
    ssh_string(out, &v);
}

/// The OpenSSH wire blob and its key-type name.
fn openssh_blob(jwk: &Value) -> (&'static str, Vec<u8>) {
    let mut blob = Vec::new();
    let name = match jwk["kty"].as_str().unwrap() {
        "OKP" => {
            ssh_string(&mut blob, b"ssh-ed25519");
            ssh_string(&mut blob, &member_bytes(jwk, "x"));
            "ssh-ed25519"
        }
        "EC" => {
            ssh_string(&mut blob, b"ecdsa-sha2-nistp256");
            ssh_string(&mut blob, b"nistp256");
            let point = [vec![4], member_bytes(jwk, "x"), member_bytes(jwk, "y")].concat();
            ssh_string(&mut blob, &point);
            "ecdsa-sha2-nistp256"
        }
        "RSA" => {
            ssh_string(&mut blob, b"ssh-rsa");
            ssh_mpint(&mut blob, &member_bytes(jwk, "e"));
            ssh_mpint(&mut blob, &member_bytes(jwk, "n"));
            "ssh-rsa"
        }
        other => panic!("no OpenSSH form for {other}"),
    };
    (name, blob)
}

/// Every encoding of a public key an HMAC-confusion attacker would try as the secret.
pub fn public_encodings(jwk: &Value, jwks: &Value) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut push = |name: &str, bytes: Vec<u8>| out.push((name.to_owned(), bytes));
    match jwk["kty"].as_str().unwrap() {
        "OKP" => {
            push("raw Ed25519 public key (JWK x)", member_bytes(jwk, "x"));
            push("JWK x as base64url text", jwk["x"].as_str().unwrap().into());
        }
        "EC" => {
            let (x, y) = (member_bytes(jwk, "x"), member_bytes(jwk, "y"));
            push(
                "raw uncompressed point 04||x||y",
                [vec![4], x.clone(), y.clone()].concat(),
            );
            push("raw x||y", [x.clone(), y].concat());
            push("raw x", x);
            push("JWK x as base64url text", jwk["x"].as_str().unwrap().into());
        }
        "RSA" => {
            push("raw modulus n", member_bytes(jwk, "n"));
            push("JWK n as base64url text", jwk["n"].as_str().unwrap().into());
            let pkcs1 = rsa_pkcs1(jwk);
            push("PKCS#1 DER", pkcs1.clone());
            push("PKCS#1 PEM", pem("RSA PUBLIC KEY", &pkcs1, "\n", true));
        }
        other => panic!("unexpected kty {other}"),
    }
    let spki = spki_der(jwk);
    push("DER SPKI", spki.clone());
    push("PEM SPKI", pem("PUBLIC KEY", &spki, "\n", true));
    push(
        "PEM SPKI without final newline",
        pem("PUBLIC KEY", &spki, "\n", false),
    );
    push("PEM SPKI with CRLF", pem("PUBLIC KEY", &spki, "\r\n", true));
    push("hex SPKI", {
        spki.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes()
    });
    push("JWK JSON as published", serde_json::to_vec(jwk).unwrap());
    push("JWK JSON pretty", serde_json::to_vec_pretty(jwk).unwrap());
    let thumb_members: Vec<&str> = match jwk["kty"].as_str().unwrap() {
        "OKP" => vec!["crv", "kty", "x"],
        "EC" => vec!["crv", "kty", "x", "y"],
        _ => vec!["e", "kty", "n"],
    };
    let thumb: Map<String, Value> = thumb_members
        .into_iter()
        .map(|m| (m.to_owned(), jwk[m].clone()))
        .collect();
    push(
        "JWK thumbprint input (RFC 7638)",
        serde_json::to_vec(&thumb).unwrap(),
    );
    push("JWKS document", serde_json::to_vec(jwks).unwrap());
    let (name, blob) = openssh_blob(jwk);
    let text = STANDARD.encode(&blob);
    push("OpenSSH wire blob", blob);
    push("OpenSSH public key", format!("{name} {text}").into_bytes());
    push(
        "OpenSSH public key with comment and newline",
        format!("{name} {text} tessera@host\n").into_bytes(),
    );
    push(
        "OpenSSH public key with newline",
        format!("{name} {text}\n").into_bytes(),
    );
    out
}

// ---------------------------------------------------------------------------------------------
// The families.

fn make_controls(ctx: &Ctx<'_>, tag: &str, controls: &mut Vec<(String, String)>) {
    let exp = ctx.claims["exp"].to_string();
    let alg = json!(ctx.alg());
    controls.push((format!("[{tag}] genuine"), ctx.key.genuine.clone()));
    controls.push((
        format!("[{tag}] re-signed through the raw path"),
        ctx.real(&ctx.header, &ctx.claims),
    ));
    controls.push((
        format!("[{tag}] raw claim path"),
        ctx.real_raw_claim("exp", &exp),
    ));
    controls.push((
        format!("[{tag}] raw header path"),
        ctx.real_bytes(
            &json_prepend(&ctx.header, &["alg"], &format!("\"alg\":{alg}")),
            &to_json(&ctx.claims),
        ),
    ));
}

fn none(ctx: &Ctx<'_>, out: &mut Out<'_>) {
    let spellings = [
        "none",
        "None",
        "NONE",
        "nOnE",
        "NoNe",
        "nONE",
        "noNE",
        "none ",
        " none",
        "none\u{0}",
        "\u{FF4E}\u{FF4F}\u{FF4E}\u{FF45}",
    ];
    for spelling in spellings {
        let header = with(ctx.header(), "alg", json!(spelling));
        let h = b64::encode(&to_json(&header));
        let input = format!("{h}.{}", ctx.p);
        out.add(
            NONE,
            format!("alg {spelling:?}, empty signature"),
            format!("{input}."),
        );
        out.add(
            NONE,
            format!("alg {spelling:?}, no signature segment"),
            input.clone(),
        );
        out.add(
            NONE,
            format!("alg {spelling:?}, genuine signature kept"),
            ctx.kept(&h, &ctx.p),
        );
        out.add(
            NONE,
            format!("alg {spelling:?}, signed by the real key"),
            ctx.sign(&input),
        );
        let bare = b64::encode(&to_json(&obj(json!({ "alg": spelling }))));
        out.add(
            NONE,
            format!("bare header {{alg: {spelling:?}}}, empty signature"),
            format!("{bare}.{}.", ctx.p),
        );
    }
    // The escaped spelling: the same string after decoding, different bytes.
    let escaped = json_raw(&ctx.header, "alg", "\"\\u006eone\"");
    let h = b64::encode(&escaped);
    out.add(
        NONE,
        "alg \"\\u006eone\", empty signature",
        format!("{h}.{}.", ctx.p),
    );
    out.add(
        NONE,
        "alg \"\\u006eone\", signed by the real key",
        ctx.real_segments(&h, &ctx.p),
    );
    // alg absent, empty or not a string.
    for (what, raw) in [
        ("empty", "\"\""),
        ("null", "null"),
        ("array [\"none\"]", "[\"none\"]"),
        ("array [real alg]", &format!("[\"{}\"]", ctx.alg())),
        ("object", "{\"none\":true}"),
        ("number", "0"),
        ("false", "false"),
    ] {
        let h = b64::encode(&json_raw(&ctx.header, "alg", raw));
        out.add(
            NONE,
            format!("alg {what}, empty signature"),
            format!("{h}.{}.", ctx.p),
        );
        out.add(
            NONE,
            format!("alg {what}, signed by the real key"),
            ctx.real_segments(&h, &ctx.p),
        );
    }
    let header = without(ctx.header(), "alg");
    let h = b64::encode(&to_json(&header));
    out.add(
        NONE,
        "alg missing, empty signature",
        format!("{h}.{}.", ctx.p),
    );
    out.add(
        NONE,
        "alg missing, genuine signature kept",
        ctx.kept(&h, &ctx.p),
    );
    out.add(
        NONE,
        "alg missing, signed by the real key",
        ctx.real_segments(&h, &ctx.p),
    );
    // The classic: unsigned, with claims the attacker likes.
    let admin = with(ctx.claims(), "sub", json!("admin"));
    let header = obj(json!({"alg": "none", "typ": "at+jwt"}));
    out.add(
        NONE,
        "alg none, admin claims, no kid, empty signature",
        format!(
            "{}.{}.",
            b64::encode(&to_json(&header)),
            b64::encode(&to_json(&admin))
        ),
    );
}

fn signature(ctx: &Ctx<'_>, out: &mut Out<'_>) {
    let sig = &ctx.sig;
    let n = sig.len();
    out.add(
        SIGNATURE,
        "stripped (empty segment)",
        format!("{}.{}.", ctx.h, ctx.p),
    );
    out.add(
        SIGNATURE,
        "stripped (no segment)",
        format!("{}.{}", ctx.h, ctx.p),
    );
    for (what, bytes) in [
        ("truncated by one byte", sig[..n - 1].to_vec()),
        ("truncated to half", sig[..n / 2].to_vec()),
        ("truncated to one byte", sig[..1].to_vec()),
        ("first byte dropped", sig[1..].to_vec()),
        ("zero byte appended", [sig.clone(), vec![0]].concat()),
        ("zero byte prepended", [vec![0], sig.clone()].concat()),
        ("doubled", [sig.clone(), sig.clone()].concat()),
        ("all zero", vec![0; n]),
        ("all 0xff", vec![0xff; n]),
        ("reversed", sig.iter().rev().copied().collect()),
    ] {
        out.add(SIGNATURE, what, ctx.with_sig(&bytes));
    }
    for at in [0, 1, n / 2, n - 2, n - 1] {
        for bit in [0u8, 7] {
            let mut bytes = sig.clone();
            bytes[at] ^= 1 << bit;
            out.add(
                SIGNATURE,
                format!("bit {bit} of byte {at} flipped"),
                ctx.with_sig(&bytes),
            );
        }
    }
    let (head, last) = ctx.s.split_at(ctx.s.len() - 1);
    let other = if last == "A" { 'Q' } else { 'A' };
    out.add(
        SIGNATURE,
        "last base64 character changed",
        format!("{}.{}.{head}{other}", ctx.h, ctx.p),
    );
    // Transplants: a genuine signature, but over other bytes.
    let other = ctx.real_claims(&with(ctx.claims(), "jti", json!("another-token")));
    let other_sig = other.rsplit('.').next().unwrap();
    out.add(
        SIGNATURE,
        "signature of another genuine token",
        format!("{}.{}.{other_sig}", ctx.h, ctx.p),
    );
    let admin = b64::encode(&to_json(&with(ctx.claims(), "sub", json!("admin"))));
    out.add(
        SIGNATURE,
        "signature of the genuine token over admin claims",
        ctx.kept(&ctx.h, &admin),
    );
    out.add(
        SIGNATURE,
        "signature segment holds the header",
        format!("{}.{}.{}", ctx.h, ctx.p, ctx.h),
    );
}

fn tampered(ctx: &Ctx<'_>, setup: &Setup<'_>, out: &mut Out<'_>) {
    let c = ctx.claims();
    let later = ctx.claims["exp"].as_i64().unwrap() + 10 * 365 * 86_400;
    let mut reordered: Vec<(String, Value)> = c.clone().into_iter().collect();
    reordered.reverse();
    let reordered_text = format!(
        "{{{}}}",
        reordered
            .iter()
            .map(|(k, v)| format!("{}:{v}", json!(k)))
            .collect::<Vec<_>>()
            .join(",")
    );
    let payloads: Vec<(&str, Vec<u8>)> = vec![
        (
            "sub = admin",
            to_json(&with(c.clone(), "sub", json!("admin"))),
        ),
        (
            "username = root",
            to_json(&with(c.clone(), "username", json!("root"))),
        ),
        (
            "scope widened",
            to_json(&with(
                c.clone(),
                "scope",
                json!("admin openid offline_access"),
            )),
        ),
        (
            "admin: true added",
            to_json(&with(c.clone(), "admin", json!(true))),
        ),
        (
            "exp + 10 years",
            to_json(&with(c.clone(), "exp", json!(later))),
        ),
        ("jti changed", to_json(&with(c.clone(), "jti", json!("x")))),
        ("sid removed", to_json(&without(c.clone(), "sid"))),
        (
            "aud changed",
            to_json(&with(c.clone(), "aud", json!("http://evil.test"))),
        ),
        (
            "iss changed",
            to_json(&with(c.clone(), "iss", json!("http://evil.test"))),
        ),
        (
            "client_id changed",
            to_json(&with(c.clone(), "client_id", json!("admin-console"))),
        ),
        ("same claims pretty-printed", {
            serde_json::to_vec_pretty(&c).unwrap()
        }),
        (
            "same claims, members reordered",
            reordered_text.into_bytes(),
        ),
        (
            "same claims plus a trailing space",
            [to_json(&c), b" ".to_vec()].concat(),
        ),
        (
            "same claims plus a leading newline",
            [b"\n".to_vec(), to_json(&c)].concat(),
        ),
        ("empty object", b"{}".to_vec()),
    ];
    for (what, bytes) in payloads {
        out.add(
            TAMPERED,
            format!("payload: {what}"),
            ctx.kept(&ctx.h, &b64::encode(&bytes)),
        );
    }
    let h = ctx.header();
    let mut headers: Vec<(String, Map<String, Value>)> = vec![
        ("typ = JWT".into(), with(h.clone(), "typ", json!("JWT"))),
        (
            "jku added".into(),
            with(
                h.clone(),
                "jku",
                json!(format!("{}/jwks.json", setup.canary)),
            ),
        ),
        ("kid removed".into(), without(h.clone(), "kid")),
        ("cty added".into(), with(h.clone(), "cty", json!("JWT"))),
    ];
    for other in setup.keys.iter().filter(|k| k.kid != ctx.kid()) {
        headers.push((
            format!("kid of the {} key", other.alg),
            with(h.clone(), "kid", json!(other.kid)),
        ));
        headers.push((
            format!("kid and alg of the {} key", other.alg),
            with(
                with(h.clone(), "kid", json!(other.kid)),
                "alg",
                json!(other.alg.as_str()),
            ),
        ));
    }
    for (what, header) in headers {
        out.add(
            TAMPERED,
            format!("header: {what}"),
            ctx.kept(&b64::encode(&to_json(&header)), &ctx.p),
        );
    }
    out.add(
        TAMPERED,
        "header: same members pretty-printed",
        ctx.kept(
            &b64::encode(&serde_json::to_vec_pretty(&h).unwrap()),
            &ctx.p,
        ),
    );
}

fn key_confusion(ctx: &Ctx<'_>, setup: &Setup<'_>, out: &mut Out<'_>) {
    let hmacs = [
        ("HS256", hmac::HMAC_SHA256),
        ("HS384", hmac::HMAC_SHA384),
        ("HS512", hmac::HMAC_SHA512),
    ];
    for (name, secret) in public_encodings(&ctx.key.public_jwk, setup.jwks) {
        for (label, alg) in hmacs {
            out.add(
                KEY_CONFUSION,
                format!("{label} keyed with the {name}"),
                hmac_token(label, alg, &secret, &ctx.header, &ctx.p),
            );
        }
        out.add(
            KEY_CONFUSION,
            format!("HS256 keyed with the {name}, no kid"),
            hmac_token(
                "HS256",
                hmac::HMAC_SHA256,
                &secret,
                &without(ctx.header(), "kid"),
                &ctx.p,
            ),
        );
    }
    // Algorithm substitution: the real key signs, the header names another algorithm.
    let own = ctx.alg();
    let labels = [
        "EdDSA", "ES256", "RS256", "PS256", "HS256", "Ed25519", "Ed448", "ES384", "ES512",
        "ES256K", "RS384", "RS512", "PS384", "PS512", "RS1", "HS1",
    ];
    let lower = own.to_lowercase();
    let spaced = format!("{own} ");
    for label in labels
        .iter()
        .copied()
        .chain([lower.as_str(), spaced.as_str()])
        .filter(|l| *l != own)
    {
        out.add(
            KEY_CONFUSION,
            format!("real {own} signature under alg {label:?}"),
            ctx.real_header(&with(ctx.header(), "alg", json!(label))),
        );
    }
    // Same RSA key, the other padding.
    if ctx.key.alg == Algorithm::RS256 {
        for label in ["PS256", "RS256"] {
            let header = with(ctx.header(), "alg", json!(label));
            let input = format!(
                "{}.{}",
                b64::encode(&to_json(&header)),
                b64::encode(&to_json(&ctx.claims))
            );
            let sig = sign_with(Algorithm::PS256, &ctx.key.pkcs8, input.as_bytes());
            out.add(
                KEY_CONFUSION,
                format!("PSS signature by the real RSA key under alg {label}"),
                format!("{input}.{}", b64::encode(&sig)),
            );
        }
    }
}

fn weak_hmac(ctx: &Ctx<'_>, out: &mut Out<'_>) {
    let mut secrets: Vec<(String, Vec<u8>)> = [
        "",
        "secret",
        "Secret",
        "SECRET",
        "password",
        "123456",
        "12345678",
        "changeme",
        "changeit",
        "your-256-bit-secret",
        "your-secret-key",
        "secretkey",
        "secret_key",
        "jwt_secret",
        "JWT_SECRET",
        "jwt-secret",
        "key",
        "jwt",
        "tessera",
        "admin",
        "test",
        "default",
        "qwerty",
        "shhhhh",
        "none",
        "null",
        "0",
        "s3cr3t",
        "mysecret",
        "supersecret",
        "hmac-secret",
    ]
    .into_iter()
    .map(|s| (format!("{s:?}"), s.as_bytes().to_vec()))
    .collect();
    secrets.push(("32 zero bytes".into(), vec![0; 32]));
    secrets.push(("64 zero bytes".into(), vec![0; 64]));
    secrets.push(("32 x 'a'".into(), vec![b'a'; 32]));
    secrets.push(("the kid".into(), ctx.kid().as_bytes().to_vec()));
    secrets.push((
        "the issuer".into(),
        ctx.claims["iss"].as_str().unwrap().as_bytes().to_vec(),
    ));
    for (what, secret) in secrets {
        out.add(
            WEAK_HMAC,
            format!("HS256 with secret {what}"),
            hmac_token("HS256", hmac::HMAC_SHA256, &secret, &ctx.header, &ctx.p),
        );
        out.add(
            WEAK_HMAC,
            format!("HS256 with secret {what}, no kid"),
            hmac_token(
                "HS256",
                hmac::HMAC_SHA256,
                &secret,
                &without(ctx.header(), "kid"),
                &ctx.p,
            ),
        );
    }
}

fn embedded(ctx: &Ctx<'_>, setup: &Setup<'_>, out: &mut Out<'_>) {
    let canary = setup.canary;
    let base = without(ctx.header(), "kid");
    for ak in &setup.attacker.keys {
        let alg = ak.alg.as_str();
        let h = with(base.clone(), "alg", json!(alg));
        let real_kid = |m: Map<String, Value>| with(m, "kid", json!(ctx.kid()));
        let x5c = json!([STANDARD.encode(spki_der(&ak.jwk))]);
        let headers: Vec<(&str, Map<String, Value>)> = vec![
            ("jwk, no kid", with(h.clone(), "jwk", ak.jwk.clone())),
            (
                "jwk, real kid",
                real_kid(with(h.clone(), "jwk", ak.jwk.clone())),
            ),
            (
                "jwk, attacker kid",
                with(with(h.clone(), "jwk", ak.jwk.clone()), "kid", json!(ak.kid)),
            ),
            (
                "jwk = the real public JWK, real kid",
                real_kid(with(h.clone(), "jwk", ctx.key.public_jwk.clone())),
            ),
            (
                "jku, attacker kid",
                with(
                    with(h.clone(), "jku", json!(format!("{canary}/jwks.json"))),
                    "kid",
                    json!(ak.kid),
                ),
            ),
            (
                "jku, real kid",
                real_kid(with(
                    h.clone(),
                    "jku",
                    json!(format!("{canary}/.well-known/jwks.json")),
                )),
            ),
            (
                "jku with userinfo trick, real kid",
                real_kid(with(
                    h.clone(),
                    "jku",
                    json!(format!(
                        "http://tessera.test@{}/jwks.json",
                        canary.trim_start_matches("http://")
                    )),
                )),
            ),
            (
                "x5u, real kid",
                real_kid(with(h.clone(), "x5u", json!(format!("{canary}/cert.pem")))),
            ),
            (
                "x5u, no kid",
                with(h.clone(), "x5u", json!(format!("{canary}/cert.pem"))),
            ),
            (
                "x5c, real kid",
                real_kid(with(h.clone(), "x5c", x5c.clone())),
            ),
            ("x5c, no kid", with(h.clone(), "x5c", x5c)),
            (
                "x5t and x5t#S256, real kid",
                real_kid(with(
                    with(h.clone(), "x5t", json!(b64::encode(&[7u8; 20]))),
                    "x5t#S256",
                    json!(b64::encode(&[7u8; 32])),
                )),
            ),
            (
                "jwk + jku + x5u + x5c together, real kid",
                real_kid(obj(json!({
                    "alg": alg, "typ": "at+jwt", "jwk": ak.jwk,
                    "jku": format!("{canary}/jwks.json"), "x5u": format!("{canary}/x.pem"),
                    "x5c": [STANDARD.encode(spki_der(&ak.jwk))],
                }))),
            ),
        ];
        for (what, header) in headers {
            let input = format!("{}.{}", b64::encode(&to_json(&header)), ctx.p);
            let sig = sign_with(ak.alg, &ak.pkcs8, input.as_bytes());
            out.add(
                EMBEDDED,
                format!("attacker {alg} key, {what}"),
                format!("{input}.{}", b64::encode(&sig)),
            );
        }
    }
    // A symmetric key carried in the token itself.
    let secret = b"attacker-chosen-secret-of-32-bytes!!";
    let oct = json!({"kty": "oct", "k": b64::encode(secret)});
    for (what, header) in [
        ("no kid", with(base.clone(), "jwk", oct.clone())),
        (
            "real kid",
            with(
                with(base.clone(), "jwk", oct.clone()),
                "kid",
                json!(ctx.kid()),
            ),
        ),
        (
            "jku, real kid",
            with(
                with(base.clone(), "jku", json!(format!("{canary}/oct.json"))),
                "kid",
                json!(ctx.kid()),
            ),
        ),
    ] {
        out.add(
            EMBEDDED,
            format!("HS256 with an embedded oct jwk, {what}"),
            hmac_token("HS256", hmac::HMAC_SHA256, secret, &header, &ctx.p),
        );
    }
}

fn kid(ctx: &Ctx<'_>, setup: &Setup<'_>, out: &mut Out<'_>) {
    let canary = setup.canary;
    let real = ctx.kid().to_owned();
    let mut kids: Vec<String> = [
        "../../../../../../../dev/null",
        "/dev/null",
        "../../../../../../etc/passwd",
        "....//....//....//dev/null",
        "..%2f..%2f..%2f..%2fdev%2fnull",
        "..\\..\\..\\..\\windows\\win.ini",
        "/proc/self/environ",
        "file:///dev/null",
        "keys/../../../../../dev/null",
        "' OR '1'='1",
        "' OR 1=1 --",
        "x' UNION SELECT 'secret' --",
        "x' UNION SELECT '' --",
        "1; DROP TABLE keys; --",
        "\" OR \"\"=\"",
        "1' AND SLEEP(5) --",
        "| id",
        "; id",
        "&& id",
        "`id`",
        "$(id)",
        "; sleep 10 #",
        "x\nid",
        "{{7*7}}",
        "",
        " ",
        "*",
        "%",
        "null",
        "undefined",
        "0",
        "-1",
        "AAAAAAAAAAAAAAAAAAAAAA",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    kids.push(format!("{canary}/kid"));
    kids.push(format!("$(curl {canary}/kid)"));
    kids.push(format!(
        "${{jndi:ldap://{}/a}}",
        canary.trim_start_matches("http://")
    ));
    kids.push("A".repeat(2000));
    for variant in [
        real.to_uppercase(),
        real.to_lowercase(),
        format!("{real} "),
        format!(" {real}"),
        format!("{real}\u{0}"),
        format!("{real}="),
        format!("{real}\n"),
        format!("{real}/../{real}"),
        real.chars().rev().collect(),
        {
            let mut chars = real.chars();
            let first = chars.next().unwrap();
            let wide = char::from_u32(u32::from(first) + 0xFEE0).unwrap_or('\u{FF21}');
            format!("{wide}{}", chars.as_str())
        },
    ] {
        if variant != real {
            kids.push(variant);
        }
    }
    for k in &kids {
        let header = with(ctx.header(), "kid", json!(k));
        let shown: String = k.chars().take(40).collect();
        out.add(
            KID,
            format!("kid {shown:?}, signed by the real key"),
            ctx.real_header(&header),
        );
        for secret in ["", "secret"] {
            out.add(
                KID,
                format!("kid {shown:?}, HS256 with secret {secret:?}"),
                hmac_token(
                    "HS256",
                    hmac::HMAC_SHA256,
                    secret.as_bytes(),
                    &header,
                    &ctx.p,
                ),
            );
        }
    }
    for (what, raw) in [
        ("null", "null".to_owned()),
        ("number", "0".to_owned()),
        ("true", "true".to_owned()),
        ("array [real kid]", format!("[{}]", json!(real))),
        ("object", format!("{{\"kid\":{}}}", json!(real))),
    ] {
        out.add(
            KID,
            format!("kid {what}, signed by the real key"),
            ctx.real_raw_header("kid", &raw),
        );
    }
    let missing = without(ctx.header(), "kid");
    out.add(
        KID,
        "kid missing, signed by the real key",
        ctx.real_header(&missing),
    );
    for secret in ["", "secret"] {
        out.add(
            KID,
            format!("kid missing, HS256 with secret {secret:?}"),
            hmac_token(
                "HS256",
                hmac::HMAC_SHA256,
                secret.as_bytes(),
                &missing,
                &ctx.p,
            ),
        );
    }
    // Cross-key: the real key signs under another real key's kid.
    for other in setup.keys.iter().filter(|k| k.kid != ctx.kid()) {
        out.add(
            KID,
            format!(
                "real {} signature under the {} key's kid",
                ctx.alg(),
                other.alg
            ),
            ctx.real_header(&with(ctx.header(), "kid", json!(other.kid))),
        );
        out.add(
            KID,
            format!(
                "real {} signature under the {} key's kid and alg",
                ctx.alg(),
                other.alg
            ),
            ctx.real_header(&with(
                with(ctx.header(), "kid", json!(other.kid)),
                "alg",
                json!(other.alg.as_str()),
            )),
        );
    }
}

fn ecdsa(ctx: &Ctx<'_>, out: &mut Out<'_>) {
    let admin = b64::encode(&to_json(&with(ctx.claims(), "sub", json!("admin"))));
    let zero = b64::encode(&[0u8; 64]);
    out.add(
        ECDSA,
        "r = s = 0 (CVE-2022-21449 psychic signature)",
        ctx.with_sig(&[0; 64]),
    );
    out.add(
        ECDSA,
        "r = s = 0 over admin claims",
        format!("{}.{admin}.{zero}", ctx.h),
    );
    for label in ["ES256", "ES384", "ES512"] {
        let header = with(ctx.header(), "alg", json!(label));
        out.add(
            ECDSA,
            format!("r = s = 0 under alg {label}"),
            format!("{}.{admin}.{zero}", b64::encode(&to_json(&header))),
        );
    }
    let sig = &ctx.sig;
    match ctx.key.alg {
        Algorithm::ES256 => {
            let n = hex(P256_N);
            let (r, s) = sig.split_at(32);
            let one = [vec![0u8; 31], vec![1]].concat();
            let n_minus_1 = sub256(&n, &one);
            let der_sig = der_seq(&[der_uint(r), der_uint(s)]);
            for (what, bytes) in [
                ("r = 0", [vec![0; 32], s.to_vec()].concat()),
                ("s = 0", [r.to_vec(), vec![0; 32]].concat()),
                ("r = s = n", [n.clone(), n.clone()].concat()),
                ("r = n", [n.clone(), s.to_vec()].concat()),
                ("s = n", [r.to_vec(), n.clone()].concat()),
                ("r = s = 1", [one.clone(), one.clone()].concat()),
                ("r = s = n - 1", [n_minus_1.clone(), n_minus_1].concat()),
                ("r and s swapped", [s.to_vec(), r.to_vec()].concat()),
                ("DER-encoded (r, s)", der_sig),
                (
                    "r and s zero-padded to 33 bytes",
                    [vec![0], r.to_vec(), vec![0], s.to_vec()].concat(),
                ),
                (
                    "s + n, or s = 2^256 - 1 (out of range)",
                    // s + n fits in 256 bits only when s <= 2^256 - 1 - n.
                    if *s <= *sub256(&[0xff; 32], &n) {
                        [r.to_vec(), add256(s, &n)].concat()
                    } else {
                        [r.to_vec(), vec![0xff; 32]].concat()
                    },
                ),
            ] {
                out.add(ECDSA, what, ctx.with_sig(&bytes));
            }
        }
        Algorithm::EdDSA => {
            let l = hex(ED25519_L);
            let l_le: Vec<u8> = l.iter().rev().copied().collect();
            let identity = [vec![1u8], vec![0; 31]].concat();
            for (what, bytes) in [
                ("S + L (non-canonical S)", ed25519_s_plus_l(sig)),
                ("S = L", [sig[..32].to_vec(), l_le].concat()),
                ("R = identity, S = 0", [identity, vec![0; 32]].concat()),
                ("S = 0", [sig[..32].to_vec(), vec![0; 32]].concat()),
                ("R = 0", [vec![0; 32], sig[32..].to_vec()].concat()),
            ] {
                out.add(ECDSA, what, ctx.with_sig(&bytes));
            }
        }
        Algorithm::RS256 | Algorithm::PS256 => {
            let n = member_bytes(&ctx.key.public_jwk, "n");
            let len = sig.len();
            let mut one = vec![0u8; len];
            one[len - 1] = 1;
            let mut n_minus_1 = n.clone();
            n_minus_1[len - 1] -= 1;
            for (what, bytes) in [
                ("zero of modulus length", vec![0; len]),
                ("signature = 1", one),
                ("signature = n", n),
                ("signature = n - 1", n_minus_1),
                ("leading zero byte added", [vec![0], sig.clone()].concat()),
            ] {
                out.add(ECDSA, what, ctx.with_sig(&bytes));
            }
        }
        Algorithm::HS256 => {}
    }
}

fn crit(ctx: &Ctx<'_>, out: &mut Out<'_>) {
    let h = ctx.header();
    let exp = ctx.claims["exp"].clone();
    let b64_false = with(h.clone(), "b64", json!(false));
    let headers: Vec<(&str, Map<String, Value>)> = vec![
        (
            "crit [\"exp\"] with exp in the header",
            with(with(h.clone(), "crit", json!(["exp"])), "exp", exp),
        ),
        (
            "crit [\"b64\"], b64 false, encoded payload",
            with(b64_false.clone(), "crit", json!(["b64"])),
        ),
        ("b64 false, encoded payload", b64_false.clone()),
        ("b64 true", with(h.clone(), "b64", json!(true))),
        ("b64 \"false\"", with(h.clone(), "b64", json!("false"))),
        ("crit []", with(h.clone(), "crit", json!([]))),
        (
            "crit \"b64\" (a string)",
            with(h.clone(), "crit", json!("b64")),
        ),
        ("crit null", with(h.clone(), "crit", Value::Null)),
        ("crit [\"alg\"]", with(h.clone(), "crit", json!(["alg"]))),
        ("crit [\"kid\"]", with(h.clone(), "crit", json!(["kid"]))),
        (
            "crit with an unknown extension",
            with(
                with(h.clone(), "crit", json!(["http://example.com/ext"])),
                "http://example.com/ext",
                json!(true),
            ),
        ),
        (
            "crit [\"b64\",\"b64\"]",
            with(b64_false.clone(), "crit", json!(["b64", "b64"])),
        ),
        (
            "crit, no kid",
            without(with(h.clone(), "crit", json!(["exp"])), "kid"),
        ),
    ];
    for (what, header) in headers {
        out.add(
            CRIT,
            format!("{what}, signed by the real key"),
            ctx.real_header(&header),
        );
    }
    // RFC 7797 unencoded payload: the signing input holds the raw payload.
    for (what, header) in [
        (
            "crit [\"b64\"], b64 false",
            with(b64_false.clone(), "crit", json!(["b64"])),
        ),
        ("b64 false", b64_false),
    ] {
        let raw = String::from_utf8(to_json(&ctx.claims)).unwrap();
        let h = b64::encode(&to_json(&header));
        let input = format!("{h}.{raw}");
        let sig = sign_with(ctx.key.alg, &ctx.key.pkcs8, input.as_bytes());
        out.add(
            CRIT,
            format!("{what}, unencoded payload (RFC 7797), signed by the real key"),
            format!("{input}.{}", b64::encode(&sig)),
        );
        let detached = format!("{h}..{}", b64::encode(&sig));
        out.add(
            CRIT,
            format!("{what}, detached unencoded payload"),
            detached,
        );
    }
}

fn nested(ctx: &Ctx<'_>, out: &mut Out<'_>) {
    let h = ctx.header();
    let genuine = ctx.key.genuine.as_bytes();
    let cty = |v: &str| with(h.clone(), "cty", json!(v));
    let inner_none = format!(
        "{}.{}.",
        b64::encode(br#"{"alg":"none","typ":"at+jwt"}"#),
        b64::encode(&to_json(&with(ctx.claims(), "sub", json!("admin"))))
    );
    out.add(
        NESTED,
        "cty JWT wrapping the genuine token, signed by the real key",
        ctx.real_bytes(&to_json(&cty("JWT")), genuine),
    );
    out.add(
        NESTED,
        "cty JWT wrapping an unsigned admin token, signed by the real key",
        ctx.real_bytes(&to_json(&cty("JWT")), inner_none.as_bytes()),
    );
    for v in ["JWT", "jwt", "application/jwt", "application/JWT"] {
        out.add(
            NESTED,
            format!(
                "cty {v:?} over plain claims (RFC 7519 §7.2: a nested JWT), signed by the real key"
            ),
            ctx.real_header(&cty(v)),
        );
    }
    out.add(
        NESTED,
        "no cty, the genuine token as payload, signed by the real key",
        ctx.real_bytes(&to_json(&h), genuine),
    );
    out.add(
        NESTED,
        "the genuine token as a JSON string payload, signed by the real key",
        ctx.real_bytes(&to_json(&h), json!(ctx.key.genuine).to_string().as_bytes()),
    );
    out.add(
        NESTED,
        "claims wrapped in an array, signed by the real key",
        ctx.real_bytes(&to_json(&h), format!("[{}]", json!(ctx.claims)).as_bytes()),
    );
    out.add(
        NESTED,
        "typ JWT, cty at+jwt (swapped), signed by the real key",
        ctx.real_header(&with(
            with(h.clone(), "typ", json!("JWT")),
            "cty",
            json!("at+jwt"),
        )),
    );
    // The attacker's own outer layer around the genuine token.
    let outer_none = obj(json!({"alg": "none", "cty": "JWT"}));
    out.add(
        NESTED,
        "unsigned outer JWS wrapping the genuine token",
        format!(
            "{}.{}.",
            b64::encode(&to_json(&outer_none)),
            b64::encode(genuine)
        ),
    );
    out.add(
        NESTED,
        "HS256 outer JWS (secret \"secret\") wrapping the genuine token",
        hmac_token(
            "HS256",
            hmac::HMAC_SHA256,
            b"secret",
            &cty("JWT"),
            &b64::encode(genuine),
        ),
    );
    out.add(
        NESTED,
        "genuine header, the genuine token as payload, genuine signature",
        ctx.kept(&ctx.h, &b64::encode(genuine)),
    );
}

fn typ(ctx: &Ctx<'_>, out: &mut Out<'_>) {
    let h = ctx.header();
    for v in [
        "JWT",
        "jwt",
        "JOSE",
        "JOSE+JSON",
        "application/jwt",
        "id_token",
        "id+jwt",
        "refresh+jwt",
        "logout+jwt",
        "secevent+jwt",
        "dpop+jwt",
        "token-introspection+jwt",
        "application/token-introspection+jwt",
        "at+jwt ",
        " at+jwt",
        "at+jwt\u{0}",
        "at+jw",
        "at-jwt",
        "atjwt",
        "at+jwt+jwt",
        "application/at+jwt; charset=utf-8",
        "x-at+jwt",
        "",
    ] {
        out.add(
            TYP,
            format!("typ {v:?}, signed by the real key"),
            ctx.real_header(&with(h.clone(), "typ", json!(v))),
        );
    }
    out.add(
        TYP,
        "typ missing, signed by the real key",
        ctx.real_header(&without(h.clone(), "typ")),
    );
    for (what, raw) in [
        ("null", "null"),
        ("number", "1"),
        ("array", "[\"at+jwt\"]"),
        ("object", "{\"typ\":\"at+jwt\"}"),
    ] {
        out.add(
            TYP,
            format!("typ {what}, signed by the real key"),
            ctx.real_raw_header("typ", raw),
        );
    }
    // ID-token-shaped JWTs from the same issuer and key.
    let c = &ctx.claims;
    let id_token = obj(json!({
        "iss": c["iss"], "sub": c["sub"], "aud": "some-client", "exp": c["exp"], "iat": c["iat"],
        "auth_time": c["iat"], "nonce": "n-0S6_WzA2Mj", "azp": "some-client",
    }));
    for (what, header) in [
        ("typ JWT", with(h.clone(), "typ", json!("JWT"))),
        ("no typ", without(h.clone(), "typ")),
        ("typ at+jwt", h.clone()),
    ] {
        out.add(
            TYP,
            format!("ID token ({what}), signed by the real key"),
            ctx.real(&header, &id_token),
        );
    }
    out.add(
        TYP,
        "ID token carrying every access claim, typ JWT, signed by the real key",
        ctx.real(
            &with(h.clone(), "typ", json!("JWT")),
            &with(ctx.claims(), "nonce", json!("n")),
        ),
    );
    let logout = obj(json!({
        "iss": c["iss"], "sub": c["sub"], "aud": c["aud"], "iat": c["iat"], "jti": "logout-1",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }));
    out.add(
        TYP,
        "logout token, signed by the real key",
        ctx.real(&with(h.clone(), "typ", json!("logout+jwt")), &logout),
    );
    let dpop = obj(
        json!({"htm": "GET", "htu": "http://tessera.test/v1/userinfo", "jti": "d", "iat": c["iat"]}),
    );
    out.add(
        TYP,
        "DPoP proof, signed by the real key",
        ctx.real(&with(h.clone(), "typ", json!("dpop+jwt")), &dpop),
    );
    out.add(
        TYP,
        "refresh-token-shaped JWT, signed by the real key",
        ctx.real(
            &with(h, "typ", json!("refresh+jwt")),
            &with(ctx.claims(), "token_use", json!("refresh")),
        ),
    );
}

fn iss_aud(ctx: &Ctx<'_>, out: &mut Out<'_>) {
    let iss = ctx.claims["iss"].as_str().unwrap().to_owned();
    let aud = ctx.claims["aud"].as_str().unwrap().to_owned();
    for (name, value) in [("iss", &iss), ("aud", &aud)] {
        let q = |s: &str| json!(s).to_string();
        let raws: Vec<(String, String)> = vec![
            ("another origin".into(), q("http://evil.test")),
            ("trailing slash".into(), q(&format!("{value}/"))),
            ("upper case".into(), q(&value.to_uppercase())),
            (
                "https instead of http".into(),
                q(&value.replace("http://", "https://")),
            ),
            ("suffix".into(), q(&format!("{value}.evil.test"))),
            ("userinfo".into(), q(&format!("{value}@evil.test"))),
            ("leading space".into(), q(&format!(" {value}"))),
            ("trailing NUL".into(), q(&format!("{value}\u{0}"))),
            ("empty".into(), q("")),
            ("wildcard".into(), q("*")),
            ("null".into(), "null".into()),
            ("number".into(), "1".into()),
            ("object".into(), format!("{{\"{name}\":{}}}", q(value))),
            ("empty array".into(), "[]".into()),
            (
                "array of another".into(),
                format!("[{}]", q("http://evil.test")),
            ),
            ("array holding a number".into(), format!("[{},1]", q(value))),
            ("nested array".into(), format!("[[{}]]", q(value))),
        ];
        for (what, raw) in raws {
            if name == "iss" && what == "array of another" {
                continue;
            }
            out.add(
                ISS_AUD,
                format!("{name} {what}, signed by the real key"),
                ctx.real_raw_claim(name, &raw),
            );
        }
        if name == "iss" {
            out.add(
                ISS_AUD,
                "iss as a one-element array, signed by the real key",
                ctx.real_raw_claim("iss", &format!("[{}]", q(value))),
            );
        }
        out.add(
            ISS_AUD,
            format!("{name} missing, signed by the real key"),
            ctx.real_claims(&without(ctx.claims(), name)),
        );
    }
}

fn required(ctx: &Ctx<'_>, out: &mut Out<'_>) {
    for name in ["sub", "jti", "client_id"] {
        out.add(
            REQUIRED,
            format!("{name} missing, signed by the real key"),
            ctx.real_claims(&without(ctx.claims(), name)),
        );
        for raw in ["null", "1", "true", "[\"x\"]", "{}"] {
            out.add(
                REQUIRED,
                format!("{name} = {raw}, signed by the real key"),
                ctx.real_raw_claim(name, raw),
            );
        }
    }
    for name in ["sid", "scope", "username"] {
        for raw in ["1", "[\"x\"]", "{}"] {
            out.add(
                REQUIRED,
                format!("optional {name} = {raw}, signed by the real key"),
                ctx.real_raw_claim(name, raw),
            );
        }
    }
    out.add(
        REQUIRED,
        "empty claims object, signed by the real key",
        ctx.real_claims(&Map::new()),
    );
}

fn time(ctx: &Ctx<'_>, out: &mut Out<'_>) {
    for name in ["exp", "nbf", "iat"] {
        let v = ctx.claims[name].as_i64().unwrap();
        let raws: Vec<(&str, String)> = vec![
            ("as a string", format!("\"{v}\"")),
            ("as a float", format!("{v}.0")),
            ("with a fraction", format!("{v}.5")),
            ("in exponent form", format!("{v}e0")),
            (
                "in float exponent form",
                format!("{}.{}e9", v / 1_000_000_000, v % 1_000_000_000),
            ),
            ("negative", "-1".into()),
            ("i64::MIN", i64::MIN.to_string()),
            ("2^63", "9223372036854775808".into()),
            ("u64::MAX", u64::MAX.to_string()),
            ("beyond u64", "99999999999999999999999".into()),
            ("1e300", "1e300".into()),
            ("1e400 (beyond f64)", "1e400".into()),
            ("NaN", "NaN".into()),
            ("Infinity", "Infinity".into()),
            ("null", "null".into()),
            ("true", "true".into()),
            ("an array", format!("[{v}]")),
            ("an object", format!("{{\"$date\":{v}}}")),
            ("a hex string", format!("\"0x{v:x}\"")),
            ("an ISO date string", "\"2099-01-01T00:00:00Z\"".into()),
            ("an empty string", "\"\"".into()),
            ("with a leading zero", format!("0{v}")),
            ("with a plus sign", format!("+{v}")),
        ];
        for (what, raw) in raws {
            out.add(
                TIME,
                format!("{name} {what}, signed by the real key"),
                ctx.real_raw_claim(name, &raw),
            );
        }
        out.add(
            TIME,
            format!("{name} missing, signed by the real key"),
            ctx.real_claims(&without(ctx.claims(), name)),
        );
    }
    let now = ctx.now();
    for (name, value, what) in [
        ("exp", now - 30, "exp = now - leeway"),
        ("exp", now - 3600, "exp an hour ago"),
        ("exp", 0, "exp = 0"),
        ("nbf", now + 31, "nbf just past the leeway"),
        ("nbf", now + 3600, "nbf in an hour"),
        ("nbf", i64::MAX, "nbf = i64::MAX"),
        ("iat", now + 3600, "iat in an hour"),
        ("iat", i64::MAX, "iat = i64::MAX"),
    ] {
        out.add(
            TIME,
            format!("{what}, signed by the real key"),
            ctx.real_claims(&with(ctx.claims(), name, json!(value))),
        );
    }
}

fn duplicate(ctx: &Ctx<'_>, out: &mut Out<'_>) {
    let h = &ctx.header;
    let c = &ctx.claims;
    let alg = json!(ctx.alg()).to_string();
    let kid = json!(ctx.kid()).to_string();
    let q = |s: &str| json!(s).to_string();
    let headers: Vec<(&str, Vec<u8>)> = vec![
        ("alg: real then none", json_dup(h, "alg", &alg, &q("none"))),
        ("alg: none then real", json_dup(h, "alg", &q("none"), &alg)),
        (
            "alg: real then HS256",
            json_dup(h, "alg", &alg, &q("HS256")),
        ),
        (
            "kid: real then unknown",
            json_dup(h, "kid", &kid, &q("unknown")),
        ),
        (
            "kid: unknown then real",
            json_dup(h, "kid", &q("unknown"), &kid),
        ),
        (
            "typ: at+jwt then JWT",
            json_dup(h, "typ", &q("at+jwt"), &q("JWT")),
        ),
        (
            "typ: JWT then at+jwt",
            json_dup(h, "typ", &q("JWT"), &q("at+jwt")),
        ),
        (
            "alg written once plain, once escaped",
            json_prepend(
                h,
                &["alg"],
                &format!("\"alg\":{alg},\"\\u0061lg\":{}", q("none")),
            ),
        ),
        ("crit twice", json_dup(h, "crit", "[]", "[]")),
    ];
    for (what, bytes) in headers {
        out.add(
            DUPLICATE,
            format!("header {what}, signed by the real key"),
            ctx.real_bytes(&bytes, &to_json(c)),
        );
    }
    let sub = c["sub"].to_string();
    let exp = c["exp"].to_string();
    let aud = c["aud"].to_string();
    let iss = c["iss"].to_string();
    let jti = c["jti"].to_string();
    let payloads: Vec<(&str, Vec<u8>)> = vec![
        (
            "sub: real then admin",
            json_dup(c, "sub", &sub, &q("admin")),
        ),
        (
            "sub: admin then real",
            json_dup(c, "sub", &q("admin"), &sub),
        ),
        (
            "exp: real then huge",
            json_dup(c, "exp", &exp, "99999999999"),
        ),
        (
            "aud: real then evil",
            json_dup(c, "aud", &aud, &q("http://evil.test")),
        ),
        (
            "aud: evil then real",
            json_dup(c, "aud", &q("http://evil.test"), &aud),
        ),
        (
            "iss: real then evil",
            json_dup(c, "iss", &iss, &q("http://evil.test")),
        ),
        (
            "jti: real then other",
            json_dup(c, "jti", &jti, &q("other")),
        ),
        ("scope twice", json_dup(c, "scope", &q("read"), &q("admin"))),
        (
            "sub written once plain, once escaped",
            json_prepend(
                c,
                &["sub"],
                &format!("\"sub\":{sub},\"\\u0073ub\":{}", q("admin")),
            ),
        ),
        (
            "duplicate inside a nested object",
            json_raw(c, "ext", "{\"role\":\"user\",\"role\":\"admin\"}"),
        ),
        (
            "duplicate inside an array element",
            json_raw(c, "ext", "[{\"a\":1,\"a\":2}]"),
        ),
    ];
    for (what, bytes) in payloads {
        out.add(
            DUPLICATE,
            format!("payload {what}, signed by the real key"),
            ctx.real_bytes(&to_json(h), &bytes),
        );
    }
}

fn encoding(ctx: &Ctx<'_>, setup: &Setup<'_>, out: &mut Out<'_>) {
    let g = &ctx.key.genuine;
    let (h, p, s) = (&ctx.h, &ctx.p, &ctx.s);
    let hj = to_json(&ctx.header);
    let cj = to_json(&ctx.claims);
    const BOM: &[u8] = b"\xef\xbb\xbf";
    const M: &str = "\"@@marker@@\"";
    let mark = b"@@marker@@";

    // BOM.
    out.add(ENCODING, "BOM before the token", format!("\u{feff}{g}"));
    out.add(
        ENCODING,
        "BOM inside the header JSON, signed by the real key",
        ctx.real_bytes(&[BOM, &hj].concat(), &cj),
    );
    out.add(
        ENCODING,
        "BOM inside the payload JSON, signed by the real key",
        ctx.real_bytes(&hj, &[BOM, &cj].concat()),
    );
    // Not UTF-8, or not JSON text.
    for (what, bytes) in [
        ("a raw 0xff byte", &b"\xff"[..]),
        ("an overlong '/' (C0 AF)", b"\xc0\xaf"),
        ("a Latin-1 e-acute", b"caf\xe9"),
        ("a UTF-8 surrogate (ED A0 80)", b"\xed\xa0\x80"),
        ("a raw NUL", b"\x00"),
        ("a raw newline", b"\n"),
    ] {
        let header = replace_bytes(&json_raw(&ctx.header, "x", M), mark, bytes);
        out.add(
            ENCODING,
            format!("header with {what}, signed by the real key"),
            ctx.real_bytes(&header, &cj),
        );
        let claims = replace_bytes(&json_raw(&ctx.claims, "sub", M), mark, bytes);
        out.add(
            ENCODING,
            format!("sub with {what}, signed by the real key"),
            ctx.real_bytes(&hj, &claims),
        );
    }
    out.add(
        ENCODING,
        "sub with a lone surrogate escape, signed by the real key",
        ctx.real_raw_claim("sub", "\"\\ud800\""),
    );
    let utf16: Vec<u8> = String::from_utf8(cj.clone())
        .unwrap()
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    out.add(
        ENCODING,
        "payload in UTF-16LE, signed by the real key",
        ctx.real_bytes(&hj, &utf16),
    );
    out.add(
        ENCODING,
        "payload in UTF-16LE with BOM, signed by the real key",
        ctx.real_bytes(&hj, &[&b"\xff\xfe"[..], &utf16].concat()),
    );
    // Not JSON objects.
    for (what, text) in [
        ("an array", "[]".to_owned()),
        ("a string", "\"at+jwt\"".to_owned()),
        ("null", "null".to_owned()),
        ("a number", "1".to_owned()),
        ("empty", String::new()),
        (
            "a comment then the object",
            format!("/*x*/{}", String::from_utf8(hj.clone()).unwrap()),
        ),
        (
            "the object then garbage",
            format!("{}x", String::from_utf8(hj.clone()).unwrap()),
        ),
        (
            "two objects",
            format!("{0}{0}", String::from_utf8(hj.clone()).unwrap()),
        ),
        (
            "single quotes",
            String::from_utf8(hj.clone()).unwrap().replace('"', "'"),
        ),
        (
            "nested 200 deep",
            String::from_utf8(json_raw(
                &ctx.header,
                "x",
                &format!("{}{}", "[".repeat(200), "]".repeat(200)),
            ))
            .unwrap(),
        ),
    ] {
        out.add(
            ENCODING,
            format!("header is {what}, signed by the real key"),
            ctx.real_bytes(text.as_bytes(), &cj),
        );
        let text = text.replace(
            &String::from_utf8(hj.clone()).unwrap(),
            &String::from_utf8(cj.clone()).unwrap(),
        );
        out.add(
            ENCODING,
            format!("payload is {what}, signed by the real key"),
            ctx.real_bytes(&hj, text.as_bytes()),
        );
    }
    // Whitespace in the compact form.
    for (what, t) in [
        ("leading space", format!(" {g}")),
        ("trailing space", format!("{g} ")),
        ("trailing newline", format!("{g}\n")),
        ("leading newline", format!("\n{g}")),
        ("trailing tab", format!("{g}\t")),
        ("tab after the first dot", format!("{h}.\t{p}.{s}")),
        ("space before the last dot", format!("{h}.{p} .{s}")),
        ("CRLF after the first dot", format!("{h}.\r\n{p}.{s}")),
        (
            "space inside the signature",
            format!("{h}.{p}.{} {}", &s[..10], &s[10..]),
        ),
        (
            "newline inside the payload",
            format!("{h}.{}\n{}.{s}", &p[..10], &p[10..]),
        ),
    ] {
        out.add(ENCODING, what, t);
    }
    // Padding, trailing bits, alphabets.
    out.add(
        ENCODING,
        "padded signature",
        format!("{h}.{p}.{}", padded(s)),
    );
    out.add(ENCODING, "padded header", format!("{}.{p}.{s}", padded(h)));
    out.add(ENCODING, "padded payload", format!("{h}.{}.{s}", padded(p)));
    out.add(
        ENCODING,
        "every segment padded",
        format!("{}.{}.{}", padded(h), padded(p), padded(s)),
    );
    let hp = padded(h);
    let pp = padded(p);
    out.add(
        ENCODING,
        "padded header and payload, signed by the real key over the padded text",
        ctx.real_segments(&hp, &pp),
    );
    if let Some(ns) = noncanonical(s) {
        out.add(
            ENCODING,
            "signature with non-zero trailing bits",
            format!("{h}.{p}.{ns}"),
        );
    }
    // Header and payload with non-zero trailing bits, signed over exactly that text.
    let mut header = ctx.header();
    let mut pad = String::new();
    while to_json(&header).len() % 3 == 0 {
        pad.push('x');
        header = with(ctx.header(), "pad", json!(pad));
    }
    let hx = b64::encode(&to_json(&header));
    let nh = noncanonical(&hx).unwrap();
    out.add(
        ENCODING,
        "header with non-zero trailing bits, signed by the real key over that text",
        ctx.real_segments(&nh, p),
    );
    let mut claims = ctx.claims();
    let mut pad = String::new();
    while to_json(&claims).len() % 3 == 0 {
        pad.push('x');
        claims = with(ctx.claims(), "pad", json!(pad));
    }
    let px = b64::encode(&to_json(&claims));
    let hx = b64::encode(&hj);
    let np = noncanonical(&px).unwrap();
    out.add(
        ENCODING,
        "payload with non-zero trailing bits, signed by the real key over that text",
        ctx.real_segments(&hx, &np),
    );
    if std_alphabet(s) != *s {
        out.add(
            ENCODING,
            "signature in the standard base64 alphabet",
            format!("{h}.{p}.{}", std_alphabet(s)),
        );
    }
    // A header whose encoding has '-' or '_', re-spelt in the standard alphabet.
    let mut header = ctx.header();
    let mut pad = String::new();
    let mut text = b64::encode(&to_json(&header));
    while std_alphabet(&text) == text {
        pad.push('?');
        header = with(ctx.header(), "pad", json!(pad));
        text = b64::encode(&to_json(&header));
    }
    out.add(
        ENCODING,
        "header in the standard base64 alphabet, signed by the real key over that text",
        ctx.real_segments(&std_alphabet(&text), p),
    );
    let standard = |seg: &str| STANDARD.encode(b64::decode(seg).unwrap());
    out.add(
        ENCODING,
        "every segment in padded standard base64",
        format!("{}.{}.{}", standard(h), standard(p), standard(s)),
    );
    out.add(ENCODING, "dots percent-encoded", format!("{h}%2E{p}%2E{s}"));
    out.add(ENCODING, "quoted", format!("\"{g}\""));
    out.add(
        ENCODING,
        "\"Bearer \" inside the token",
        format!("Bearer {g}"),
    );
    // Segment counts.
    for (what, t) in [
        ("four segments (trailing dot)", format!("{g}.")),
        ("four segments (signature twice)", format!("{g}.{s}")),
        ("leading dot", format!(".{g}")),
        ("empty header segment", format!(".{p}.{s}")),
        ("empty payload segment", format!("{h}..{s}")),
        ("two dots inside", format!("{h}.{p}..{s}")),
        ("six segments", format!("{g}.{p}.{s}.{h}")),
        ("a single dot", ".".to_owned()),
        ("two dots", "..".to_owned()),
        ("three dots", "...".to_owned()),
        ("four dots", "....".to_owned()),
        ("header only", h.clone()),
        ("header and dot", format!("{h}.")),
        ("header and two dots", format!("{h}..")),
    ] {
        out.add(ENCODING, what, t);
    }
    out.add(
        ENCODING,
        "detached content (empty payload segment), signed by the real key",
        ctx.sign(&format!("{h}.")),
    );
    // JWE-shaped input.
    let ec = &setup.attacker.keys[1].jwk;
    let kid = ctx.kid();
    for (what, header) in [
        (
            "RSA-OAEP",
            json!({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": kid}),
        ),
        (
            "RSA1_5",
            json!({"alg": "RSA1_5", "enc": "A128CBC-HS256", "kid": kid}),
        ),
        ("dir", json!({"alg": "dir", "enc": "A256GCM"})),
        (
            "PBES2 with p2c 2^31-1",
            json!({"alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "p2c": 2_147_483_647, "p2s": "AAAAAAAAAAA"}),
        ),
        (
            "ECDH-ES with the attacker's epk",
            json!({"alg": "ECDH-ES", "enc": "A128GCM", "epk": ec}),
        ),
        (
            "dir, cty JWT",
            json!({"alg": "dir", "enc": "A256GCM", "cty": "JWT", "typ": "at+jwt"}),
        ),
        (
            "A256KW, zip DEF",
            json!({"alg": "A256KW", "enc": "A256GCM", "zip": "DEF"}),
        ),
    ] {
        out.add(
            ENCODING,
            format!("JWE-shaped ({what})"),
            format!(
                "{}.{}.{}.{}.{}",
                b64::encode(&serde_json::to_vec(&header).unwrap()),
                b64::encode(&[9; 40]),
                b64::encode(&[1; 12]),
                b64::encode(&cj),
                b64::encode(&[2; 16])
            ),
        );
    }
    out.add(
        ENCODING,
        "JWE-shaped, empty encrypted key",
        format!(
            "{}..{}.{p}.{}",
            b64::encode(br#"{"alg":"dir","enc":"A256GCM"}"#),
            b64::encode(&[1; 12]),
            b64::encode(&[2; 16])
        ),
    );
    out.add(
        ENCODING,
        "the genuine parts as five segments",
        format!("{g}.{p}.{s}"),
    );
    // JSON serialisations of the genuine JWS.
    out.add(
        ENCODING,
        "flattened JSON serialisation",
        json!({"protected": h, "payload": p, "signature": s}).to_string(),
    );
    out.add(
        ENCODING,
        "general JSON serialisation",
        json!({"payload": p, "signatures": [{"protected": h, "signature": s}]}).to_string(),
    );
}

fn oversized(ctx: &Ctx<'_>, out: &mut Out<'_>) {
    const MAX: usize = 8192;
    let big = "A".repeat(9000);
    out.add(
        OVERSIZED,
        "9000-byte header member, signed by the real key",
        ctx.real_header(&with(ctx.header(), "x", json!(big))),
    );
    out.add(
        OVERSIZED,
        "9000-byte kid, signed by the real key",
        ctx.real_header(&with(ctx.header(), "kid", json!(big))),
    );
    out.add(
        OVERSIZED,
        "9000-byte claim, signed by the real key",
        ctx.real_claims(&with(ctx.claims(), "x", json!(big))),
    );
    out.add(
        OVERSIZED,
        "genuine token with 9000 junk signature characters",
        format!("{}{big}", ctx.key.genuine),
    );
    out.add(
        OVERSIZED,
        "10000-character header segment",
        format!("{}.{}.{}", "A".repeat(10_000), ctx.p, ctx.s),
    );
    out.add(OVERSIZED, "10000 dots", ".".repeat(10_000));
    out.add(
        OVERSIZED,
        "12000 base64 characters, no dots",
        "A".repeat(12_000),
    );
    // Exactly one byte over the bound, signed by the real key.
    let b64_len = |n: usize| (4 * n).div_ceil(3);
    let sig_len = b64_len(ctx.sig.len());
    let mut found = None;
    'search: for hpad in 0..4 {
        let header = with(ctx.header(), "hpad", json!("h".repeat(hpad)));
        let hl = b64_len(to_json(&header).len());
        for k in 0..MAX {
            let claims = with(ctx.claims(), "pad", json!("p".repeat(k)));
            let total = hl + 1 + b64_len(to_json(&claims).len()) + 1 + sig_len;
            if total == MAX + 1 {
                found = Some((header, claims));
                break 'search;
            }
        }
    }
    let (header, claims) = found.expect("a token of exactly MAX + 1 bytes");
    let token = ctx.real(&header, &claims);
    assert_eq!(token.len(), MAX + 1);
    out.add(
        OVERSIZED,
        "exactly 8193 bytes, signed by the real key",
        token,
    );
}
