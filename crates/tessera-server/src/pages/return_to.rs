//! `return_to`: where a sign-in sends the browser afterwards — a path on this origin, never
//! anywhere else (an open redirect would let a phishing link borrow Tessera's address).
//!
//! Design decision: the value is not pattern-matched alone but *resolved* the way a browser
//! resolves a `Location` header (the `url` crate follows the WHATWG URL standard, which turns
//! `\` into `/` in web URLs), against a base whose host cannot be typed; only a result on that
//! same base is accepted, and the redirect sends the resolved path, not the raw text. The
//! literal checks before it refuse what needs no resolving to be suspicious.

use url::Url;

/// The most bytes of `return_to` considered.
const MAX_LEN: usize = 1024;

/// A base no input can name: `.invalid` is reserved (RFC 6761), so a resolved URL still on it
/// was a local path.
const BASE: &str = "https://tessera.invalid/";

/// A local path (with its query) to send the browser to after signing in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    /// Reads a `return_to` value; `None` for anything that is not a plain local path.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        let plain = raw.len() <= MAX_LEN
            && raw.starts_with('/')
            && !raw.starts_with("//")
            // Decoded by nobody here, but refused all the same: some agents and proxies decode.
            && !raw.to_ascii_lowercase().starts_with("/%2f")
            && !raw.to_ascii_lowercase().starts_with("/%5c")
            && raw.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
        if !plain {
            return None;
        }
        let base = Url::parse(BASE).ok()?;
        let resolved = base.join(raw).ok()?;
        let local = resolved.scheme() == base.scheme()
            && resolved.host_str() == base.host_str()
            && resolved.port() == base.port()
            && resolved.username().is_empty()
            && resolved.password().is_none()
            && resolved.fragment().is_none();
        if !local {
            return None;
        }
        let mut path = resolved.path().to_owned();
        // `/.//evil` resolves to the path `//evil`, which a browser would read as a host.
        if path.starts_with("//") {
            return None;
        }
        if let Some(query) = resolved.query() {
            path.push('?');
            path.push_str(query);
        }
        Some(Self(path))
    }

    /// Where to go when no `return_to` was given, or it was refused.
    #[must_use]
    pub fn home() -> Self {
        Self("/account".to_owned())
    }

    /// The path, as sent in `Location`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `raw` when it is a local path, else [`ReturnTo::home`].
    #[must_use]
    pub fn or_home(raw: Option<&str>) -> Self {
        raw.and_then(Self::parse).unwrap_or_else(Self::home)
    }
}

#[cfg(test)]
mod tests {
    use super::ReturnTo;

    #[test]
    fn local_paths_are_kept() {
        for (raw, kept) in [
            ("/account", "/account"),
            ("/account/sessions?x=1", "/account/sessions?x=1"),
            ("/a/../account", "/account"),
            ("/admin?q=a%20b", "/admin?q=a%20b"),
        ] {
            assert_eq!(
                ReturnTo::parse(raw).map(|r| r.0),
                Some(kept.to_owned()),
                "{raw}"
            );
        }
    }

    /// Open-redirect attempts: other hosts, schemes, the backslash browsers read as a slash,
    /// encoded slashes, control characters, credentials and fragments.
    #[test]
    fn anything_that_could_leave_the_origin_is_refused() {
        for raw in [
            "",
            "account",
            "//evil.example",
            "//evil.example/account",
            "/\\evil.example",
            "\\/evil.example",
            "/\\/evil.example",
            "https://evil.example",
            "https:evil.example",
            "javascript:alert(1)",
            "/%2F%2Fevil.example",
            "/%2f/evil.example",
            "/%5Cevil.example",
            "/%5c%5cevil.example",
            "/\tevil",
            "/ /evil",
            "/\r\nLocation: https://evil.example",
            "/account#frag",
            "///evil.example",
            "/.//evil",
            "/a/..//evil",
        ] {
            assert_eq!(ReturnTo::parse(raw), None, "{raw:?}");
        }
        assert_eq!(ReturnTo::or_home(Some("//evil.example")), ReturnTo::home());
        assert_eq!(ReturnTo::or_home(None), ReturnTo::home());
    }
}
