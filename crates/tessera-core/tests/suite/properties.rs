#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Property tests (proptest): round trips, and "any mutation of a valid token is rejected".
//!
//! For every algorithm, a token signed with arbitrary claims verifies back to exactly those
//! claims; changing any one byte of it, cutting it short or adding to it makes it fail. The
//! same for opaque tokens. Base64url decoding accepts exactly one spelling per byte string, and
//! revocation-list entries stay revoked until their own expiry, however often the list is pruned.
//! Case counts stay modest so the suite is fast; the fuzz targets in `fuzz/` run the
//! long campaigns.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Value};
use tessera_core::jose::{
    Algorithm, SigningKey, VerifyingKey, b64, decode_unverified_dangerously, verify_compact,
};
use tessera_core::opaque::{OpaqueToken, TOKEN_LEN, TokenKind};
use tessera_core::revocation::{Revocation, RevocationList, RevocationSubject};
use tessera_core::time::UnixTime;

const CASES: u32 = 256;

/// One key per algorithm, generated once (RSA generation is slow).
fn keys() -> &'static [(SigningKey, VerifyingKey)] {
    static KEYS: OnceLock<Vec<(SigningKey, VerifyingKey)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        Algorithm::ALL
            .iter()
            .map(|&alg| {
                let key = SigningKey::generate(alg, format!("kid-{alg}")).unwrap();
                let verifying = key.verifying_key();
                (key, verifying)
            })
            .collect()
    })
}

fn any_alg() -> impl Strategy<Value = usize> {
    0..Algorithm::ALL.len()
}

/// JSON values as claims hold them: strings (any Unicode), integers, booleans, null, and
/// nested arrays and objects. (No floats: JSON does not promise their exact round trip.)
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn claims() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,8}|.{0,8}", json_value(), 0..6)
        .prop_map(|m: BTreeMap<String, Value>| m.into_iter().collect())
}

/// A valid token of algorithm `alg` over arbitrary claims.
fn signed(alg: usize, claims: &Map<String, Value>) -> String {
    keys()[alg]
        .0
        .sign_compact("JWT", &Value::Object(claims.clone()))
        .unwrap()
}

fn verifies(alg: usize, token: &str) -> bool {
    let (key, verifying) = &keys()[alg];
    verify_compact(token, |kid| (kid == Some(key.kid())).then_some(verifying)).is_ok()
}

/// Replaces the byte at `at` with `with` (ASCII, so the result stays a `str`).
fn replace_byte(token: &str, at: usize, with: u8) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[at] = with;
    String::from_utf8(bytes).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn every_algorithm_round_trips_arbitrary_claims(
        alg in any_alg(),
        claims in claims(),
        typ in "[ -~]{0,16}",
    ) {
        let (key, verifying) = &keys()[alg];
        let payload = Value::Object(claims.clone());
        let token = key.sign_compact(&typ, &payload).unwrap();
        let v = verify_compact(&token, |kid| (kid == Some(key.kid())).then_some(verifying))
            .unwrap();
        prop_assert_eq!(v.header().alg, Algorithm::ALL[alg]);
        prop_assert_eq!(v.header().kid.as_deref(), Some(key.kid()));
        prop_assert_eq!(v.header().typ.as_deref(), Some(typ.as_str()));
        let bytes = serde_json::to_vec(&payload).unwrap();
        prop_assert_eq!(v.payload(), bytes.as_slice());
        prop_assert_eq!(v.payload_json().unwrap(), claims);
        let (_, decoded) = decode_unverified_dangerously(&token).unwrap();
        prop_assert_eq!(decoded, payload);
    }

    #[test]
    fn any_single_byte_change_is_rejected(
        alg in any_alg(),
        claims in claims(),
        position in any::<prop::sample::Index>(),
        with in 0u8..0x80,
    ) {
        let token = signed(alg, &claims);
        let at = position.index(token.len());
        let mutated = replace_byte(&token, at, with);
        prop_assert_eq!(verifies(alg, &mutated), mutated == token, "byte {} -> {:?}", at, with);
    }

    #[test]
    fn any_truncation_is_rejected(
        alg in any_alg(),
        claims in claims(),
        cut in any::<prop::sample::Index>(),
    ) {
        let token = signed(alg, &claims);
        let keep = cut.index(token.len());
        prop_assert!(!verifies(alg, &token[..keep]), "prefix of {} bytes accepted", keep);
    }

    #[test]
    fn any_extension_is_rejected(
        alg in any_alg(),
        claims in claims(),
        tail in "[A-Za-z0-9_\\-.=+/ ]{1,8}|.{1,4}",
        at_front in any::<bool>(),
    ) {
        let token = signed(alg, &claims);
        let extended = if at_front { format!("{tail}{token}") } else { format!("{token}{tail}") };
        prop_assert!(!verifies(alg, &extended), "{:?} accepted", extended);
    }

    #[test]
    fn a_token_verifies_under_its_own_key_only(
        alg in any_alg(),
        other in any_alg(),
        claims in claims(),
    ) {
        let token = signed(alg, &claims);
        let verifying = &keys()[other].1;
        prop_assert_eq!(verify_compact(&token, |_| Some(verifying)).is_ok(), alg == other);
    }

    #[test]
    fn base64url_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        let text = b64::encode(&bytes);
        prop_assert!(!text.contains(['=', '+', '/']));
        prop_assert_eq!(b64::decode(&text).unwrap(), bytes);
    }

    #[test]
    fn base64url_has_one_spelling_per_value(text in "[A-Za-z0-9_\\-+/= ]{0,16}|.{0,8}") {
        // Whatever decodes must be exactly what encoding that value produces.
        if let Ok(bytes) = b64::decode(&text) {
            prop_assert_eq!(b64::encode(&bytes), text);
        }
    }

    #[test]
    fn opaque_tokens_round_trip(session in any::<bool>()) {
        let kind = if session { TokenKind::Session } else { TokenKind::Refresh };
        let token = OpaqueToken::generate(kind).unwrap();
        let back = OpaqueToken::parse(kind, token.expose_secret()).unwrap();
        prop_assert_eq!(back.expose_secret(), token.expose_secret());
        prop_assert_eq!(back.hash(), token.hash());
        prop_assert_eq!(token.expose_secret().len(), TOKEN_LEN);
    }

    #[test]
    fn opaque_parse_returns_its_input(text in "(tss_|trt_)[A-Za-z0-9_\\-]{49}|.{0,60}") {
        for kind in [TokenKind::Session, TokenKind::Refresh] {
            if let Ok(token) = OpaqueToken::parse(kind, &text) {
                prop_assert_eq!(token.expose_secret(), text.as_str());
            }
        }
    }

    #[test]
    fn any_change_to_an_opaque_token_is_rejected(
        session in any::<bool>(),
        position in any::<prop::sample::Index>(),
        with in 0u8..0x80,
        cut in any::<prop::sample::Index>(),
        tail in "[A-Za-z0-9_\\-]{1,4}",
    ) {
        let kind = if session { TokenKind::Session } else { TokenKind::Refresh };
        let token = OpaqueToken::generate(kind).unwrap();
        let raw = token.expose_secret();
        let at = position.index(raw.len());
        let mutated = replace_byte(raw, at, with);
        prop_assert_eq!(OpaqueToken::parse(kind, &mutated).is_ok(), mutated == raw);
        prop_assert!(OpaqueToken::parse(kind, &raw[..cut.index(raw.len())]).is_err());
        let extended = format!("{raw}{tail}");
        prop_assert!(OpaqueToken::parse(kind, &extended).is_err());
        let other = if session { TokenKind::Refresh } else { TokenKind::Session };
        prop_assert!(OpaqueToken::parse(other, raw).is_err());
    }

    #[test]
    fn revocations_hold_until_their_expiry(
        entries in prop::collection::vec(revocation(), 1..24),
        mut prunes in prop::collection::vec(0i64..120, 0..6),
    ) {
        let mut list = RevocationList::new();
        for e in &entries {
            list.insert(e);
        }
        prunes.sort_unstable();
        for now in prunes {
            list.prune(UnixTime(now));
            for e in &entries {
                if e.expires_at().0 > now {
                    prop_assert!(still_revoked(&list, e), "{:?} forgotten at {}", e, now);
                }
            }
            prop_assert_eq!(list.len(), live_keys(&entries, now));
        }
    }
}

fn revocation() -> impl Strategy<Value = Revocation> {
    // Few names, so entries collide and the "widest reach" merge is exercised: short ones
    // (kept as text), ids shaped like the server's (kept packed), and a non-canonical twin of
    // one of those, which must stay a different name.
    let name = "[abc]|AAAAAAAAAAAAAAAAAAAAA[AB]|BBBBBBBBBBBBBBBBBBBBBA";
    let time = 0i64..100;
    prop_oneof![
        (name, time.clone()).prop_map(|(jti, exp)| Revocation::Token {
            jti,
            expires_at: UnixTime(exp),
        }),
        (name, time.clone()).prop_map(|(sid, exp)| Revocation::Session {
            sid,
            expires_at: UnixTime(exp),
        }),
        (name, time.clone(), time.clone()).prop_map(|(user_id, nb, exp)| Revocation::User {
            user_id,
            not_before: UnixTime(nb),
            expires_at: UnixTime(exp),
        }),
        (name, time).prop_map(|(kid, exp)| Revocation::Key {
            kid,
            expires_at: UnixTime(exp),
        }),
    ]
}

/// Whether the list still refuses a token that `r` names: its `jti`, its `sid`, a token of
/// its principal issued just before the cutoff (as subject, and as the client it was issued
/// to), or its key.
fn still_revoked(list: &RevocationList, r: &Revocation) -> bool {
    let subject = |jti, sid, sub, iat| RevocationSubject {
        jti,
        sid,
        sub,
        client_id: None,
        iat,
    };
    match r {
        Revocation::Token { jti, .. } => list.is_revoked(subject(jti, None, "nobody", UnixTime(0))),
        Revocation::Session { sid, .. } => {
            list.is_session_revoked(sid)
                && list.is_revoked(subject("unrelated", Some(sid), "nobody", UnixTime(0)))
        }
        Revocation::User {
            user_id,
            not_before,
            ..
        } => {
            let issued_to = RevocationSubject {
                client_id: Some(user_id),
                ..subject("unrelated", None, "nobody", not_before.plus(-1))
            };
            list.is_revoked(subject("unrelated", None, user_id, not_before.plus(-1)))
                && list.is_revoked(issued_to)
        }
        Revocation::Key { kid, .. } => list.is_key_revoked(kid),
    }
}

/// How many distinct entries (per kind and name) have a latest expiry after `now`.
fn live_keys(entries: &[Revocation], now: i64) -> usize {
    let mut latest: HashMap<(u8, &str), i64> = HashMap::new();
    for e in entries {
        let key = match e {
            Revocation::Token { jti, .. } => (0, jti.as_str()),
            Revocation::Session { sid, .. } => (1, sid.as_str()),
            Revocation::User { user_id, .. } => (2, user_id.as_str()),
            Revocation::Key { kid, .. } => (3, kid.as_str()),
        };
        let slot = latest.entry(key).or_insert(i64::MIN);
        *slot = (*slot).max(e.expires_at().0);
    }
    latest.values().filter(|&&exp| exp > now).count()
}
