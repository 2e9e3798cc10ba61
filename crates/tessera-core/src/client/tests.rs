use super::*;

const NOW: UnixTime = UnixTime(1_700_000_000);

fn confidential() -> NewClient {
    NewClient {
        name: "Billing service".into(),
        scope: Scope::parse("read write").unwrap(),
        redirect_uris: vec!["https://billing.example/cb".into()],
        ..NewClient::default()
    }
}

#[test]
fn secret_has_the_prefix_length_and_checksum_of_an_opaque_token() {
    let secret = ClientSecret::generate().unwrap();
    let s = secret.expose_secret();
    assert!(s.starts_with("tcs_"), "{s}");
    assert_eq!(s.len(), crate::opaque::TOKEN_LEN);
    assert_eq!(TokenKind::of(s), Some(TokenKind::ClientSecret));
    assert_eq!(ClientSecret::parse(s).unwrap().hash(), secret.hash());
    assert_ne!(ClientSecret::generate().unwrap(), secret);
}

#[test]
fn secret_with_a_broken_checksum_or_another_prefix_is_refused() {
    let secret = ClientSecret::generate().unwrap();
    let s = secret.expose_secret();
    let last = if s.ends_with('A') { "B" } else { "A" };
    let corrupted = format!("{}{last}", &s[..s.len() - 1]);
    assert_eq!(
        ClientSecret::parse(&corrupted),
        Err(OpaqueError::BadChecksum)
    );
    let session = OpaqueToken::generate(TokenKind::Session).unwrap();
    assert_eq!(
        ClientSecret::parse(session.expose_secret()),
        Err(OpaqueError::Malformed)
    );
    // The same body under the session prefix is another token, not this secret.
    let relabelled = format!("tss_{}", &s[4..]);
    assert!(ClientSecret::parse(&relabelled).is_err());
}

#[test]
fn debug_never_prints_the_secret_or_its_hash() {
    let (record, secret) = confidential().register(NOW).unwrap();
    let secret = secret.unwrap();
    let hex = record.secret_hash.unwrap().to_hex();
    for dbg in [format!("{secret:?}"), format!("{record:?}")] {
        assert!(!dbg.contains(&secret.expose_secret()[4..]), "{dbg}");
        assert!(!dbg.contains(&hex[..12]), "{dbg}");
    }
    assert!(format!("{record:?}").contains("<redacted>"));
}

#[test]
fn registration_keeps_only_the_hash_and_verifies_the_secret() {
    let (record, secret) = confidential().register(NOW).unwrap();
    let secret = secret.unwrap();
    assert_eq!(record.secret_hash, Some(secret.hash()));
    assert_eq!(record.created_at, NOW);
    assert!(!record.public);
    assert!(record.verify_secret(secret.expose_secret()));
    let other = ClientSecret::generate().unwrap();
    assert!(!record.verify_secret(other.expose_secret()));
    assert!(!record.verify_secret(""));
    assert!(!record.verify_secret(&secret.expose_secret()[..20]));
    assert!(secret.matches(&secret.hash()));
    assert!(!secret.matches(&other.hash()));
}

#[test]
fn a_public_client_has_no_secret_and_verifies_none() {
    let (record, secret) = NewClient {
        public: true,
        redirect_uris: vec!["http://127.0.0.1:8123/callback".into()],
        ..confidential()
    }
    .register(NOW)
    .unwrap();
    assert!(secret.is_none());
    assert_eq!(record.secret_hash, None);
    let stranger = ClientSecret::generate().unwrap();
    assert!(!record.verify_secret(stranger.expose_secret()));
}

#[test]
fn secret_hash_must_match_the_client_type() {
    let (mut record, _) = confidential().register(NOW).unwrap();
    record.public = true;
    assert_eq!(record.validate(), Err(ClientError::PublicWithSecret));
    record.public = false;
    record.secret_hash = None;
    assert_eq!(
        record.validate(),
        Err(ClientError::ConfidentialWithoutSecret)
    );
}

#[test]
fn ids_are_random_and_url_safe() {
    let a = ClientId::generate().unwrap();
    assert_ne!(a, ClientId::generate().unwrap());
    assert_eq!(ClientId::parse(a.as_str()), Ok(a));
    for bad in ["", "a b", "a/b", "ä", "a%20", &"a".repeat(ID_MAX_CHARS + 1)] {
        assert_eq!(ClientId::parse(bad), Err(ClientError::Id), "{bad:?}");
    }
    assert!(ClientId::parse("-leading_hyphen").is_ok());
}

#[test]
fn scope_parses_rfc_6749_tokens_as_a_set() {
    let s = Scope::parse("write read write").unwrap();
    assert_eq!(s.to_string(), "read write");
    assert_eq!(s.iter().collect::<Vec<_>>(), ["read", "write"]);
    assert!(s.contains("read") && !s.contains("admin"));
    assert!(Scope::parse("").unwrap().is_empty());
    assert!(Scope::parse("!#[]~ a:b/c").is_ok());
    assert_eq!("read".parse::<Scope>(), Scope::parse("read"));
}

#[test]
fn scope_refuses_empty_tokens_and_forbidden_characters() {
    for bad in [
        " ",
        "read ",
        " read",
        "read  write",
        "read\twrite",
        "a\"b",
        "a\\b",
        "é",
        "a\nb",
        "a\u{7f}",
        &"a".repeat(SCOPE_MAX_LEN + 1),
    ] {
        assert_eq!(Scope::parse(bad), Err(InvalidScope), "{bad:?}");
    }
    let why = InvalidScope.to_string();
    assert!(why.contains(r#"except '"' and '\', at most 1024"#), "{why}");
}

#[test]
fn scope_subset() {
    let all = Scope::parse("read write admin").unwrap();
    let some = Scope::parse("write read").unwrap();
    assert!(some.is_subset(&all));
    assert!(!all.is_subset(&some));
    assert!(Scope::default().is_subset(&some));
    assert!(some.is_subset(&some));
    assert!(!Scope::parse("delete").unwrap().is_subset(&all));
}

#[test]
fn name_is_trimmed_then_bounded() {
    let (record, _) = NewClient {
        name: "  Billing  ".into(),
        ..confidential()
    }
    .register(NOW)
    .unwrap();
    assert_eq!(record.name, "Billing");
    let max = "é".repeat(NAME_MAX_CHARS);
    assert!(
        NewClient {
            name: max,
            ..confidential()
        }
        .register(NOW)
        .is_ok(),
        "the bound is in characters, not bytes"
    );
    for bad in [
        "",
        "   ",
        "a\u{0}b",
        "line\nbreak",
        &"a".repeat(NAME_MAX_CHARS + 1),
    ] {
        let err = NewClient {
            name: bad.into(),
            ..confidential()
        }
        .register(NOW)
        .unwrap_err();
        assert_eq!(err, ClientError::Name, "{bad:?}");
    }
}

#[test]
fn redirect_uris_that_are_accepted() {
    for good in [
        "https://app.example/cb",
        "https://app.example",
        "https://app.example:8443/cb?tenant=a%20b",
        "HTTPS://App.Example/cb",
        "https://192.0.2.1/cb",
        "https://[2001:db8::1]:443/cb",
        "http://127.0.0.1:53123/callback",
        "http://127.8.9.10/cb",
        "http://[::1]:8080/",
        "http://localhost:3000/cb",
    ] {
        assert_eq!(check_redirect_uri(good), Ok(()), "{good}");
    }
}

#[test]
fn redirect_uris_that_are_refused() {
    for bad in [
        "",
        "/relative/cb",
        "app.example/cb",
        "https://app.example/cb#frag",
        "https://app.example/cb#",
        "http://app.example/cb",
        "http://192.0.2.1/cb",
        "http://localhost.evil.example/cb",
        "http://127.0.0.1.nip.io/cb",
        "http://[::2]/cb",
        "ftp://app.example/cb",
        "com.example.app:/cb",
        "javascript://app.example/%0aalert(1)",
        "https:///cb",
        "https://:443/cb",
        "https://user:pw@app.example/cb",
        "https://app.example:/cb",
        "https://app.example:65536/cb",
        "https://app.example:x/cb",
        "https://[::1/cb",
        "https://[nope]/cb",
        "https://[::1]x/cb",
        "https://app example/cb",
        "https://app.example/c b",
        "https://app.example/é",
        "https://app.example/%zz",
        "https://app.example/%4",
        "https://app_example/cb",
        &format!("https://app.example/{}", "a".repeat(REDIRECT_URI_MAX_LEN)),
    ] {
        assert!(check_redirect_uri(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn registration_refuses_a_bad_or_repeated_redirect_uri() {
    let err = NewClient {
        redirect_uris: vec!["http://app.example/cb".into()],
        ..confidential()
    }
    .register(NOW)
    .unwrap_err();
    assert!(
        matches!(&err, ClientError::RedirectUri { uri, .. } if uri == "http://app.example/cb"),
        "{err:?}"
    );
    assert!(err.to_string().contains("loopback"), "{err}");
    let twice = "https://app.example/cb".to_owned();
    let err = NewClient {
        redirect_uris: vec![twice.clone(), twice.clone()],
        ..confidential()
    }
    .register(NOW)
    .unwrap_err();
    assert_eq!(err, ClientError::DuplicateRedirectUri(twice));
}
