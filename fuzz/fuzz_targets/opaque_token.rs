//! Opaque `tss_` / `trt_` tokens and `tcs_` client secrets: arbitrary text through
//! `OpaqueToken::parse` for every opaque kind, and `TokenHash::from_hex`.
//!
//! Invariants: a token that parses is exactly the input (it round-trips through
//! `expose_secret`), has the kind's prefix and length, parses as one kind only, and any change
//! to one of its characters is refused.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::opaque::{OpaqueToken, TOKEN_LEN, TokenHash, TokenKind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parsed = 0;
    for kind in TokenKind::OPAQUE {
        let Ok(token) = OpaqueToken::parse(kind, text) else {
            continue;
        };
        parsed += 1;
        assert_eq!(token.expose_secret(), text, "parse changed the token");
        assert_eq!(token.kind(), kind);
        assert_eq!(text.len(), TOKEN_LEN);
        assert!(text.starts_with(kind.prefix().unwrap_or_default()));
        assert!(
            !format!("{token:?}").contains(&text[4..]),
            "Debug leaks the secret"
        );
        let again = OpaqueToken::parse(kind, token.expose_secret()).expect("re-parses");
        assert_eq!(again.hash(), token.hash());
        assert_eq!(
            TokenHash::from_hex(&token.hash().to_hex()),
            Some(token.hash())
        );
        // One changed character anywhere (the input picks which and to what) is refused.
        let at = usize::from(data[text.len() / 2]) % text.len();
        let mut bytes = text.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).expect("ASCII");
        assert!(
            OpaqueToken::parse(kind, &changed).is_err(),
            "mutation at {at} accepted"
        );
    }
    assert!(parsed <= 1, "a token parsed as two kinds");
    if let Some(hash) = TokenHash::from_hex(text) {
        assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
    }
});
