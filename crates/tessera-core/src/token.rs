//! Which kind of credential a token string is, decided in one place by its form alone.
//!
//! Design decision: classification never verifies anything — it only routes a string to the
//! one parser that may accept it (the opaque-token parser for `tss_`/`trt_`/`tcs_`, the strict
//! JWS verifier for JWTs). Every caller — authentication, the token and revocation endpoints,
//! `tessera token inspect` — asks [`TokenKind::of`], so a new kind is added here once.

/// The kinds of token Tessera issues or is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// An opaque login-session token (cookie or bearer), prefix `tss_`.
    Session,
    /// An opaque refresh token, prefix `trt_`.
    Refresh,
    /// A confidential OAuth client's secret, prefix `tcs_` ([`crate::client::ClientSecret`]).
    /// Not a bearer token: it authenticates a client, never a user.
    ClientSecret,
    /// A single-use OAuth authorization code (`tac_`, RFC 6749 §4.1.2): not a bearer token for
    /// any resource, only redeemable once at the token endpoint with its PKCE verifier.
    AuthorizationCode,
    /// A compact JWS (three dot-separated segments): an access token, or a third party's JWT.
    Jwt,
}

impl TokenKind {
    /// The opaque kinds, each with its own prefix.
    pub const OPAQUE: [Self; 4] = [
        Self::Session,
        Self::Refresh,
        Self::ClientSecret,
        Self::AuthorizationCode,
    ];

    /// The kind `token` has the form of, or `None` if it has none of them. A match says where
    /// to send the token, never that it is valid.
    #[must_use]
    pub fn of(token: &str) -> Option<Self> {
        if let Some(kind) = Self::OPAQUE
            .into_iter()
            .find(|k| k.prefix().is_some_and(|p| token.starts_with(p)))
        {
            return Some(kind);
        }
        (token.split('.').count() == 3).then_some(Self::Jwt)
    }

    /// The prefix of an opaque kind, including the underscore; `None` for [`TokenKind::Jwt`].
    #[must_use]
    pub fn prefix(self) -> Option<&'static str> {
        match self {
            Self::Session => Some("tss_"),
            Self::Refresh => Some("trt_"),
            Self::ClientSecret => Some("tcs_"),
            Self::AuthorizationCode => Some("tac_"),
            Self::Jwt => None,
        }
    }

    /// Human name, as `tessera token inspect` prints it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "tessera session token",
            Self::Refresh => "tessera refresh token",
            Self::ClientSecret => "tessera client secret",
            Self::AuthorizationCode => "tessera authorization code",
            Self::Jwt => "jwt",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TokenKind;

    #[test]
    fn classification_by_form() {
        assert_eq!(TokenKind::of("tss_abc"), Some(TokenKind::Session));
        assert_eq!(TokenKind::of("trt_abc"), Some(TokenKind::Refresh));
        assert_eq!(TokenKind::of("tcs_abc"), Some(TokenKind::ClientSecret));
        assert_eq!(TokenKind::of("tac_abc"), Some(TokenKind::AuthorizationCode));
        assert_eq!(TokenKind::of("a.b.c"), Some(TokenKind::Jwt));
        assert_eq!(TokenKind::of(".."), Some(TokenKind::Jwt));
        for none in [
            "", "abc", "a.b", "a.b.c.d", "TSS_abc", "tss", "TCS_abc", "tcs",
        ] {
            assert_eq!(TokenKind::of(none), None, "{none}");
        }
    }

    #[test]
    fn opaque_prefixes_are_distinct() {
        let prefixes = TokenKind::OPAQUE.map(|k| k.prefix());
        for (i, a) in prefixes.iter().enumerate() {
            assert!(a.is_some(), "{:?} has no prefix", TokenKind::OPAQUE[i]);
            for b in &prefixes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(TokenKind::Jwt.prefix(), None);
    }
}
