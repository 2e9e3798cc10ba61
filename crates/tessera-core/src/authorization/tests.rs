use super::*;
use crate::client::NewClient;

const NOW: UnixTime = UnixTime(1_700_000_000);
const CALLBACK: &str = "https://app.example/callback";

// RFC 7636 Appendix B: the verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn client() -> ClientRecord {
    NewClient {
        name: "Photo app".into(),
        scope: Scope::parse("photos profile").unwrap(),
        redirect_uris: vec![CALLBACK.into(), "http://127.0.0.1:8123/cb".into()],
        public: true,
        ..NewClient::default()
    }
    .register(NOW)
    .unwrap()
    .0
}

fn params() -> RequestParams {
    RequestParams {
        response_type: Some("code".into()),
        redirect_uri: Some(CALLBACK.into()),
        code_challenge: Some(CHALLENGE.into()),
        code_challenge_method: Some("S256".into()),
        state: Some("xyz".into()),
        scope: None,
    }
}

#[test]
fn rfc_7636_appendix_b_verifier_matches_its_challenge() {
    let challenge = CodeChallenge::parse(Some(CHALLENGE), Some("S256")).unwrap();
    assert_eq!(challenge.verify(VERIFIER), Ok(()));
    let other = format!("{}A", &VERIFIER[..VERIFIER.len() - 1]);
    assert_eq!(challenge.verify(&other), Err(PkceError::Mismatch));
}

#[test]
fn plain_missing_and_malformed_challenges_are_refused() {
    assert_eq!(
        CodeChallenge::parse(Some(CHALLENGE), Some("plain")),
        Err(PkceError::Method)
    );
    // RFC 7636's default method is plain: no method is a downgrade too.
    assert_eq!(
        CodeChallenge::parse(Some(CHALLENGE), None),
        Err(PkceError::Method)
    );
    assert_eq!(
        CodeChallenge::parse(Some("S256"), Some("s256")),
        Err(PkceError::Method)
    );
    assert_eq!(
        CodeChallenge::parse(None, Some("S256")),
        Err(PkceError::Missing)
    );
    assert_eq!(
        CodeChallenge::parse(Some(""), Some("S256")),
        Err(PkceError::Missing)
    );
    // A plain-style challenge (the verifier itself) under S256, too short, too long, padded,
    // or outside the alphabet.
    for bad in [
        VERIFIER.to_owned(),
        CHALLENGE[..42].to_owned(),
        format!("{CHALLENGE}A"),
        format!("{}=", &CHALLENGE[..42]),
        format!("{}+", &CHALLENGE[..42]),
    ] {
        if bad == VERIFIER {
            // 43 base64url characters decode to 32 bytes: the verifier of Appendix B happens to
            // be a well-formed challenge; it just never matches.
            let c = CodeChallenge::parse(Some(&bad), Some("S256")).unwrap();
            assert_eq!(c.verify(VERIFIER), Err(PkceError::Mismatch));
            continue;
        }
        assert_eq!(
            CodeChallenge::parse(Some(&bad), Some("S256")),
            Err(PkceError::Challenge),
            "{bad}"
        );
    }
}

#[test]
fn malformed_verifiers_are_refused_before_hashing() {
    let challenge = CodeChallenge::parse(Some(CHALLENGE), Some("S256")).unwrap();
    for bad in [
        "short".to_owned(),
        "a".repeat(129),
        format!("{} ", &VERIFIER[..42]),
        format!("{}+", &VERIFIER[..42]),
        format!("{}é", &VERIFIER[..41]),
    ] {
        assert_eq!(challenge.verify(&bad), Err(PkceError::Verifier), "{bad:?}");
    }
}

#[test]
fn a_good_request_is_accepted_with_the_clients_scope_by_default() {
    let c = client();
    let ok = check_request(&c, &params()).unwrap();
    assert_eq!(ok.redirect_uri, CALLBACK);
    assert_eq!(ok.state.as_deref(), Some("xyz"));
    assert_eq!(ok.scope, c.scope);
    let narrower = RequestParams {
        scope: Some("photos".into()),
        ..params()
    };
    assert_eq!(
        check_request(&c, &narrower).unwrap().scope.to_string(),
        "photos"
    );
}

#[test]
fn redirect_uris_match_exactly_and_their_errors_never_redirect() {
    let c = client();
    for uri in [
        None,
        Some(""),
        Some("https://app.example/callback/"),
        Some("https://app.example/callback?x=1"),
        Some("https://app.example/callback#f"),
        Some("https://APP.example/callback"),
        Some("https://app.example/Callback"),
        Some("https://app.example.evil/callback"),
        Some("https://evil.example/?https://app.example/callback"),
        Some("http://127.0.0.1:9999/cb"),
        Some("https://app.example/callback%2F..%2Fevil"),
    ] {
        let p = RequestParams {
            redirect_uri: uri.map(str::to_owned),
            // Even with every other parameter wrong, the redirect URI decides first.
            response_type: Some("token".into()),
            code_challenge: None,
            ..params()
        };
        let err = check_request(&c, &p).unwrap_err();
        assert_eq!(err, RequestError::RedirectUri, "{uri:?}");
        assert!(!err.redirects());
    }
}

#[test]
fn request_errors_after_the_redirect_uri_are_redirected_with_their_code() {
    let c = client();
    let cases = [
        (
            RequestParams {
                response_type: Some("token".into()),
                ..params()
            },
            "unsupported_response_type",
        ),
        (
            RequestParams {
                code_challenge_method: Some("plain".into()),
                ..params()
            },
            "invalid_request",
        ),
        (
            RequestParams {
                code_challenge: None,
                ..params()
            },
            "invalid_request",
        ),
        (
            RequestParams {
                scope: Some("photos admin".into()),
                ..params()
            },
            "invalid_scope",
        ),
        (
            RequestParams {
                state: Some("s".repeat(MAX_STATE_LEN + 1)),
                ..params()
            },
            "invalid_request",
        ),
    ];
    for (p, code) in cases {
        let err = check_request(&c, &p).unwrap_err();
        assert!(err.redirects(), "{err:?}");
        assert_eq!(err.code(), code, "{err:?}");
    }
}

fn issued(c: &ClientRecord) -> AuthorizationCode {
    AuthorizationCode {
        client_id: c.id.clone(),
        redirect_uri: CALLBACK.into(),
        user_id: "alice".into(),
        credential_epoch: 0,
        sid: "sid-1".into(),
        scope: c.scope.clone(),
        challenge: CodeChallenge::parse(Some(CHALLENGE), Some("S256")).unwrap(),
        created_at: NOW,
        expires_at: NOW.plus(CODE_TTL_SECS),
    }
}

#[test]
fn a_code_redeems_only_for_its_client_redirect_uri_verifier_and_lifetime() {
    let c = client();
    let code = issued(&c);
    assert_eq!(code.redeem(&c.id, CALLBACK, VERIFIER, NOW.plus(59)), Ok(()));
    let other = client();
    assert_eq!(
        code.redeem(&other.id, CALLBACK, VERIFIER, NOW),
        Err(RedeemError::Client)
    );
    assert_eq!(
        code.redeem(&c.id, "http://127.0.0.1:8123/cb", VERIFIER, NOW),
        Err(RedeemError::RedirectUri)
    );
    assert_eq!(
        code.redeem(&c.id, CALLBACK, VERIFIER, NOW.plus(CODE_TTL_SECS)),
        Err(RedeemError::Expired)
    );
    assert_eq!(
        code.redeem(&c.id, CALLBACK, CHALLENGE, NOW),
        Err(RedeemError::Pkce(PkceError::Mismatch))
    );
}
